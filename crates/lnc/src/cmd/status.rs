//! `lnc status`: connect with a profile and report the session's state.

use clap::Args;

/// Arguments of `lnc status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Profile to connect with.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Seconds to wait for the node before giving up.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
}

/// `lnc status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let (client, creds) = super::connect::connect_profile(&args.profile, args.wait, true).await?;
    println!("status: {}", client.status());
    println!("profile: {}", args.profile);
    println!("mailbox: {}", creds.mailbox().addr());
    println!("node: {}", super::connect::hex_key(&creds));
    println!("expires: {}", super::connect::expiry_text(&creds));
    let perms: Vec<String> = creds.permissions().iter().map(|o| o.to_string()).collect();
    println!("permissions: {}", perms.join(" "));
    client.shutdown().await;
    Ok(())
}
