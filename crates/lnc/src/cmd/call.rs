//! `lnc call`: one RPC by name with a JSON request through a saved profile.

use anyhow::Context as _;
use clap::Args;
use futures_util::StreamExt as _;
use lnc_client::Registry;
use std::io::Read as _;
use std::path::PathBuf;

/// Arguments of `lnc call`.
#[derive(Args, Debug)]
pub struct CallArgs {
    /// The method: `lnrpc.Lightning.GetInfo` or `/lnrpc.Lightning/GetInfo`.
    pub method: String,
    /// The JSON request (`-` reads it from stdin; default `{}`).
    pub json: Option<String>,
    /// Profile to connect with.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// One-line JSON output.
    #[arg(long)]
    pub compact: bool,
    /// Extra descriptors (a FileDescriptorSet) for services other than LND's.
    #[arg(long, value_name = "FILE")]
    pub protoset: Option<PathBuf>,
    /// Seconds to wait for the node before giving up.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
}

/// `lnc call`.
pub async fn run(args: CallArgs) -> anyhow::Result<()> {
    let mut registry = Registry::lnd();
    if let Some(p) = &args.protoset {
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        registry.add_file_descriptor_set(&bytes)?;
    }
    let method = registry.method(&args.method)?;
    let json = match args.json.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the request from stdin")?;
            s
        }
        Some(j) => j.to_owned(),
        None => "{}".to_owned(),
    };
    // Validate the request before connecting.
    method.request_from_json(&json)?;
    let (client, _) = super::connect::connect_profile(&args.profile, args.wait, false).await?;
    let result = if method.is_server_streaming() {
        let mut s = client
            .subscribe_with(&registry, &args.method, &json, false)
            .await?;
        loop {
            tokio::select! {
                item = s.next() => match item {
                    Some(Ok(j)) => println!("{j}"),
                    Some(Err(e)) => break Err(e.into()),
                    None => break Ok(()),
                },
                _ = tokio::signal::ctrl_c() => break Ok(()),
            }
        }
    } else {
        client
            .call_with(&registry, &args.method, &json, !args.compact)
            .await
            .map(|j| println!("{j}"))
            .map_err(Into::into)
    };
    client.shutdown().await;
    result
}
