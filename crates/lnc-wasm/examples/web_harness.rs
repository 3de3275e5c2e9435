//! Test harness for the browser tests (web/test): a mailbox relay, lnd-sim and a node side
//! (lnc-node's session creation + lnc-tunnel's `listen`, proxying to lnd-sim), all on
//! 127.0.0.1 with random ports, in one process.
//!
//! Prints one JSON line `{"mailbox","phrase","demo_phrase","cli_phrase","alias"}` when ready, then JSON event lines
//! (`{"event":"paired"}`, `{"event":"invoice",…}`). Commands on stdin, one per line:
//! `invoice <memo> <sats>` (AddInvoice on lnd-sim with its admin macaroon, as `lnc call`
//! would), `quit`. Exits when stdin closes, so the test runner never leaks it.
#![allow(missing_docs)]

use hyper::body::Incoming;
use lnc_core::pairing::{ConnectionState, Role};
use lnc_mailbox::{Config as RelayConfig, Server};
use lnc_node::create::{NewSession, create_session};
use lnc_node::lnd::Lnd;
use lnc_node::session::SessionType;
use lnc_node::store::SessionStore;
use lnc_tunnel::native::{GrpcMailbox, RelayAddr, Tls};
use lnc_tunnel::rt::TokioRuntime;
use lnc_tunnel::{ListenerEvent, TunnelOptions, listen};
use lnd_sim::{Config as SimConfig, LndSim, MacaroonKind};
use std::io::Write as _;
use std::sync::Arc;
use tokio::io::AsyncBufReadExt as _;

fn emit(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("lnc-web-harness-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let relay = Server::bind(RelayConfig::for_tests()).await?;
    let relay_addr = relay.handle().local_addr();
    let (stop_relay, relay_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relay.serve(async move {
        let _ = relay_stopped.await;
    }));

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
    let store = SessionStore::open(&dir.join("node"))?;
    let rt = TokioRuntime::new();
    let mailbox = Arc::new(GrpcMailbox::new(RelayAddr {
        addr: relay_addr.to_string(),
        tls: Tls::Insecure,
    })?);
    // Three sessions: the API tests' page, the demo page, and `lnc connect`/`lnc call`.
    let mut phrases = Vec::new();
    for label in ["test", "demo", "cli"] {
        let created = create_session(
            &lnd,
            &store,
            NewSession::new(label, SessionType::Admin, relay_addr.to_string()),
            std::time::SystemTime::now(),
        )
        .await?;
        phrases.push(created.expose_phrase().to_phrase_string().to_string());
        let state = ConnectionState::new(
            Role::Server,
            created.session.local_key().clone(),
            created.session.entropy().clone(),
        )
        .with_auth_data(created.expose_auth_data().as_bytes().to_vec());
        // The node proxies every call to LND unchanged: the app's macaroon is the
        // session's, baked by LND, so LND itself checks it.
        let channel = lnd.channel();
        let proxy = tower::service_fn(move |req: http::Request<Incoming>| {
            let ch = channel.clone();
            async move {
                let (parts, body) = req.into_parts();
                let req = http::Request::from_parts(parts, tonic::body::Body::new(body));
                tower::ServiceExt::oneshot(ch, req).await
            }
        });
        let mut listener = listen(
            &rt,
            mailbox.clone(),
            state,
            proxy,
            TunnelOptions::default(),
            rand_core::UnwrapErr(getrandom::SysRng),
        );
        tokio::spawn(async move {
            while let Some(ev) = listener.next_event().await {
                let line = match ev {
                    ListenerEvent::Listening(_) => {
                        serde_json::json!({"event": "listening", "session": label})
                    }
                    ListenerEvent::Connected { session, .. } => serde_json::json!({
                        "event": "connected",
                        "session": label,
                        "pattern": format!("{:?}", session.pattern),
                    }),
                    ListenerEvent::PairingAttemptFailed(e) => {
                        serde_json::json!({"event": "pairing_attempt_failed", "session": label, "error": format!("{e:?}")})
                    }
                    ListenerEvent::HandshakeFailed(e) => {
                        serde_json::json!({"event": "handshake_failed", "session": label, "error": e})
                    }
                    ListenerEvent::Disconnected(r) => serde_json::json!({
                        "event": "disconnected",
                        "session": label,
                        "reason": format!("{r:?}"),
                    }),
                    ListenerEvent::Stopped => break,
                };
                emit(line);
            }
        });
    }

    emit(serde_json::json!({
        "mailbox": relay_addr.to_string(),
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
            Some("quit") => break,
            _ => emit(
                serde_json::json!({"event": "error", "error": format!("unknown command {line:?}")}),
            ),
        }
    }
    let _ = stop_relay.send(());
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
