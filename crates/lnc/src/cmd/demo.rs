//! `lnc demo`: the whole system in one process, on embedded defaults — a mailbox on
//! loopback, lnd-sim (the LND stand-in) in a temp dir, a node; a session is created, an app
//! pairs with its phrase, calls LND through the tunnel, watches an invoice stream, and
//! reconnects with its stored keys (Noise KK). Each step is printed with its time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use lnc_client::credentials::{MailboxInfo, TlsMode, Transport};
use lnc_client::native::ProfileStore;
use lnc_client::{ConnectOptions, native};
use lnc_node::{MailboxConfig, NodeConfig, SessionType};
use lnd_api::lnrpc;

/// Flags of `lnc demo` (none needed).
#[derive(Args, Debug, Default)]
pub struct DemoArgs {
    /// Keep the temp dir (lnd-sim and node data) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

struct Steps(Instant);

impl Steps {
    fn say(&self, what: impl std::fmt::Display) {
        println!("[{:>8.3}s] {what}", self.0.elapsed().as_secs_f64());
    }
}

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("lnc-demo-{}-{nanos}", std::process::id()))
}

const STEP: Duration = Duration::from_secs(30);

/// The demo's profile password (the profile lives in the demo's temp dir).
const DEMO_PASSWORD: &[u8] = b"lnc demo password";

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the demo; `Ok` means every step worked.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = temp_dir();
    let r = demo(&dir).await;
    if args.keep {
        println!("data kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

async fn demo(dir: &std::path::Path) -> anyhow::Result<()> {
    let t = Steps(Instant::now());
    // 1. Mailbox on loopback, plaintext.
    let relay_srv = lnc_mailbox::Server::bind(lnc_mailbox::Config::loopback_insecure()).await?;
    let relay_addr: SocketAddr = relay_srv.handle().local_addr();
    let (stop_relay, relay_stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay_srv.serve(async move {
        let _ = relay_stopped.await;
    }));
    t.say(format_args!(
        "mailbox listening on {relay_addr} (plaintext, loopback)"
    ));

    // 2. lnd-sim.
    let sim = lnd_sim::LndSim::start(lnd_sim::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.join("lnd-sim"),
    })
    .await?;
    t.say(format_args!(
        "lnd-sim (LND stand-in) listening on {}",
        sim.addr()
    ));

    // 3. The node.
    let cfg = NodeConfig::new(
        sim.addr().to_string(),
        sim.tls_cert_path(),
        sim.macaroon_path(lnd_sim::MacaroonKind::Admin),
        dir.join("node"),
        MailboxConfig {
            addr: relay_addr.to_string(),
            tls: lnc_tunnel::TlsMode::Insecure,
            creation_token: None,
        },
    );
    let crate::cmd::node::Running { node, admin, .. } = crate::cmd::node::start(cfg).await?;
    t.say(format_args!("node running, admin API on {}", admin.addr));

    // 4. A session.
    let created = node
        .create_session(lnc_node::create::NewSession::new(
            "demo",
            SessionType::InvoiceOnly,
            "",
        ))
        .await?;
    let phrase = created.expose_phrase().to_phrase_string().to_string();
    t.say(format_args!(
        "session {} created (invoice-only, macaroon baked by LND); phrase: {phrase}",
        created.session.id
    ));

    // 5. The app pairs with the phrase (lnc-client, as `lnc connect` does) and stores its
    //    credentials encrypted with a password, as `lnc connect` does.
    let mailbox = MailboxInfo::new(relay_addr.to_string(), Transport::Grpc, TlsMode::Insecure);
    let (app, creds) = tokio::time::timeout(
        STEP,
        native::pair(mailbox, &phrase, ConnectOptions::default()),
    )
    .await
    .context("pairing timed out")??;
    t.say("app paired (Noise XX with SPAKE2, the phrase stretched by scrypt)");
    let profiles = ProfileStore::new(dir.join("profiles"));
    profiles.save("demo", &creds, DEMO_PASSWORD)?;
    drop(creds);
    t.say(format_args!(
        "credentials saved encrypted (scrypt + ChaCha20-Poly1305) in {}",
        profiles.dir().display()
    ));

    let mut ln = app.lightning();
    let info = ln.get_info(lnrpc::GetInfoRequest {}).await?.into_inner();
    t.say(format_args!(
        "GetInfo through the tunnel: alias {:?}, pubkey {}…",
        info.alias,
        info.identity_pubkey.get(..16).unwrap_or_default()
    ));

    let mut sub = ln
        .subscribe_invoices(lnrpc::InvoiceSubscription::default())
        .await?
        .into_inner();
    t.say("SubscribeInvoices stream open");
    let inv = ln
        .add_invoice(lnrpc::Invoice {
            memo: "lnc demo".into(),
            value: 1000,
            ..Default::default()
        })
        .await?
        .into_inner();
    t.say(format_args!(
        "AddInvoice: {}…",
        inv.payment_request.get(..24).unwrap_or_default()
    ));
    let seen = tokio::time::timeout(STEP, sub.message())
        .await
        .context("the invoice did not show up on the stream")??
        .context("the stream ended")?;
    if seen.r_hash != inv.r_hash {
        bail!("the stream showed another invoice");
    }
    t.say(format_args!(
        "SubscribeInvoices saw the new invoice (add_index {})",
        seen.add_index
    ));
    drop(sub);

    // The same call by name with JSON, as `lnc call` and web apps make it.
    let json = app
        .call(
            "lnrpc.Lightning.LookupInvoice",
            &format!(r#"{{"r_hash_str":"{}"}}"#, hex_of(&inv.r_hash)),
        )
        .await?;
    let state = serde_json::from_str::<serde_json::Value>(&json)
        .ok()
        .and_then(|v| v.get("state").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_default();
    t.say(format_args!(
        "LookupInvoice by name with JSON: state {state}"
    ));

    // 6. Reconnect with the stored keys only (no phrase): Noise KK.
    app.close();
    let stored = profiles.load("demo", DEMO_PASSWORD)?;
    let app2 = tokio::time::timeout(STEP, native::connect(&stored, ConnectOptions::default()))
        .await
        .context("reconnect timed out")??;
    let info2 = app2
        .lightning()
        .get_info(lnrpc::GetInfoRequest {})
        .await?
        .into_inner();
    if info2.identity_pubkey != info.identity_pubkey {
        bail!("reconnected to another node");
    }
    t.say("reconnected with the stored keys (Noise KK, new stream IDs, no phrase); GetInfo ok");
    app2.close();

    admin.stop();
    node.shutdown().await;
    sim.shutdown().await;
    let _ = stop_relay.send(());
    let _ = relay_task.await;
    t.say("all steps passed");
    Ok(())
}

/// Flags of the hidden `lnc lnd-sim` (tests spawn it as a process).
#[derive(Args, Debug)]
pub struct LndSimArgs {
    /// gRPC listen address (port 0: a free port, printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Data dir (tls.cert, macaroons, root keys).
    #[arg(long)]
    data_dir: PathBuf,
}

/// Runs lnd-sim until Ctrl-C; prints `lnd-sim listening on ADDR` when ready.
pub async fn run_lnd_sim(args: LndSimArgs) -> anyhow::Result<()> {
    let sim = lnd_sim::LndSim::start(lnd_sim::Config {
        listen: args.listen,
        data_dir: args.data_dir,
    })
    .await?;
    println!("lnd-sim listening on {}", sim.addr());
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    Ok(())
}
