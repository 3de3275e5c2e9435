//! Test harness for the browser tests (web/test): a mailbox relay, lnd-sim and the node
//! daemon (lnc-node's `Node`, the code `lnc node` runs: per-session listeners and the gRPC
//! proxy to lnd-sim), all on 127.0.0.1 with random ports, in one process.
//!
//! The relay is embedded (plain TCP), or with `LNC_HARNESS_TLS=1` embedded with a
//! self-signed certificate (lnc-web's Go client always dials `wss://`), or with
//! `LNC_HARNESS_RELAY=host:port` an external TLS relay such as aperture (not verified).
//!
//! Prints one JSON line `{"mailbox","phrase","demo_phrase","cli_phrase","alias"}` when ready, then JSON event lines
//! (`{"event":"paired"}`, `{"event":"invoice",…}`). Commands on stdin, one per line:
//! `invoice <memo> <sats>` (AddInvoice on lnd-sim with its admin macaroon, as `lnc call`
//! would), `restart-relay` (the embedded relay stops, ending every stream, and starts again
//! on the same address: `{"event":"relay-restarted"}`), `quit`. Exits when stdin closes, so the test runner never leaks it.
#![allow(missing_docs)]

use lnc_mailbox::{Config as RelayConfig, Server};
use lnc_node::create::NewSession;
use lnc_node::lnd::Lnd;
use lnc_node::node::{MailboxConfig, Node, NodeConfig, NodeEvent};
use lnc_node::session::{SessionId, SessionType};
use lnd_sim::{Config as SimConfig, LndSim, MacaroonKind};
use std::io::Write as _;
use tokio::io::AsyncBufReadExt as _;

fn emit(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr (which the browser tests pass through) when RUST_LOG is set.
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let dir = std::env::temp_dir().join(format!("lnc-web-harness-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let external = std::env::var("LNC_HARNESS_RELAY").ok();
    let tls = external.is_some() || std::env::var("LNC_HARNESS_TLS").is_ok_and(|v| v == "1");
    let (relay_addr, mut relay) = match external {
        Some(addr) => (addr, None),
        None => {
            let mut config = RelayConfig::loopback_insecure();
            if tls {
                config.tls = lnc_mailbox::TlsMode::SelfSigned { hosts: vec![] };
                config.data_dir = dir.join("relay");
            }
            let running = EmbeddedRelay::start(config).await?;
            (running.addr.to_string(), Some(running))
        }
    };

    let sim = LndSim::start(SimConfig {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.join("lnd"),
    })
    .await?;
    let lnd = Lnd::connect(
        &sim.addr().to_string(),
        &sim.tls_cert_path(),
        &sim.macaroon_path(MacaroonKind::Admin),
    )
    .await?;
    // The real node daemon (lnc-node's `Node`, as `lnc node` runs it): per-session
    // listeners, the gRPC proxy to LND, pairing bookkeeping.
    let node = Node::start(NodeConfig::new(
        sim.addr().to_string(),
        sim.tls_cert_path(),
        sim.macaroon_path(MacaroonKind::Admin),
        dir.join("node"),
        MailboxConfig {
            addr: relay_addr.clone(),
            tls: if tls {
                lnc_tunnel::TlsMode::SkipVerify
            } else {
                lnc_tunnel::TlsMode::Insecure
            },
            creation_token: None,
        },
    ))
    .await?;
    // Three sessions: the API tests' page, the demo page, and `lnc connect`/`lnc call`.
    let mut labels = std::collections::HashMap::new();
    let mut phrases = Vec::new();
    let mut events = node.subscribe();
    for label in ["test", "demo", "cli"] {
        let created = node
            .create_session(NewSession::new(label, SessionType::Admin, ""))
            .await?;
        labels.insert(created.session.id, label);
        phrases.push(created.expose_phrase().to_phrase_string().to_string());
    }
    // Node events as JSON lines for the tests; a connection right after `Paired` is the
    // pairing (XX), every later one a reconnect with stored keys (KK).
    tokio::spawn(async move {
        let mut just_paired = std::collections::HashSet::new();
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            let name = |id: &SessionId| labels.get(id).copied().unwrap_or("?");
            let line = match ev {
                NodeEvent::Paired(id) => {
                    just_paired.insert(id);
                    serde_json::json!({"event": "paired", "session": name(&id)})
                }
                NodeEvent::Connected(id) => {
                    let pattern = if just_paired.remove(&id) { "Xx" } else { "Kk" };
                    serde_json::json!({"event": "connected", "session": name(&id), "pattern": pattern})
                }
                NodeEvent::Disconnected(id) => {
                    serde_json::json!({"event": "disconnected", "session": name(&id)})
                }
                NodeEvent::AttemptFailed { id, kind, attempts } => serde_json::json!({
                    "event": "pairing_attempt_failed",
                    "session": name(&id),
                    "error": format!("{kind:?}"),
                    "attempts": attempts,
                }),
                NodeEvent::Ended { id, state } => serde_json::json!({
                    "event": "ended",
                    "session": name(&id),
                    "state": format!("{state:?}"),
                }),
            };
            emit(line);
        }
    });

    emit(serde_json::json!({
        "mailbox": relay_addr,
        "tls": tls,
        "phrase": phrases[0],
        "demo_phrase": phrases[1],
        "cli_phrase": phrases[2],
        "alias": lnd_sim::service::ALIAS,
    }));

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("invoice") => {
                let memo = parts.next().unwrap_or("").to_owned();
                let value: i64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
                let req = lnd.request(lnd_api::lnrpc::Invoice {
                    memo: memo.clone(),
                    value,
                    ..Default::default()
                });
                match lnd.lightning().add_invoice(req).await {
                    Ok(r) => emit(serde_json::json!({
                        "event": "invoice",
                        "memo": memo,
                        "r_hash": hex::encode(r.into_inner().r_hash),
                    })),
                    Err(e) => emit(serde_json::json!({"event": "error", "error": e.message()})),
                }
            }
            // A network drop as the apps see one: every mailbox stream ends (the relay's
            // shutdown), and a relay is back on the same address with no mailbox state.
            Some("restart-relay") => match relay.take() {
                Some(running) => {
                    relay = Some(running.restart().await?);
                    emit(serde_json::json!({"event": "relay-restarted"}));
                }
                None => {
                    emit(serde_json::json!({"event": "error", "error": "the relay is external"}))
                }
            },
            Some("quit") => break,
            _ => emit(
                serde_json::json!({"event": "error", "error": format!("unknown command {line:?}")}),
            ),
        }
    }
    node.shutdown().await;
    if let Some(running) = relay {
        running.stop().await;
    }
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The embedded relay, restartable on its address.
struct EmbeddedRelay {
    addr: std::net::SocketAddr,
    config: RelayConfig,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl EmbeddedRelay {
    async fn start(config: RelayConfig) -> anyhow::Result<Self> {
        let server = Server::bind(config.clone()).await?;
        let addr = server.handle().local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = server
                .serve(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(EmbeddedRelay {
            addr,
            config,
            stop,
            task,
        })
    }

    async fn stop(self) -> (std::net::SocketAddr, RelayConfig) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        (self.addr, self.config)
    }

    async fn restart(self) -> anyhow::Result<Self> {
        let (addr, mut config) = self.stop().await;
        config.listen = addr;
        Self::start(config).await
    }
}
