//! The node's costs, all in one process on loopback (relay, lnd-sim, node, app):
//! * proxy overhead per unary call: `GetInfo` through the tunnel and the node against the
//!   same call made directly to lnd-sim over TLS, in the same run;
//! * what a budget session adds (`spend`): the same GetInfo through a spend session (rate
//!   limit, stream cap, audit log), and a payment (`SendPaymentV2` settling an lnd-sim
//!   invoice) through an admin session and through a spend session (policy, request decoding,
//!   a durable reservation, the result read back, a durable settlement);
//! * memory per idle session: RSS growth while `LNC_BENCH_SESSIONS` (default 1,000) sessions
//!   are created and listening on the relay (an upper bound: it includes the relay's boxes
//!   and lnd-sim's root key per session, which live in this process too).
//!
//! Run: `cargo bench -p lnc-node --bench node` (the memory figure is printed first;
//! `LNC_BENCH_SESSIONS=0` skips it).
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use divan::Bencher;
use lnc_core::keys::SecretKey;
use lnc_core::pairing::{ConnectionState, PairingPhrase, Role};
use lnc_node::create::NewSession;
use lnc_node::session::SessionType;
use lnc_node::spend::{Budget, Limits, Period};
use lnc_node::{Lnd, MailboxConfig, Node, NodeConfig};
use lnc_tunnel::TlsMode;
use lnc_tunnel::native::{GrpcMailbox, RelayAddr};
use lnc_tunnel::rt::TokioRuntime;
use lnc_tunnel::{Client, Mailbox, TunnelOptions};
use lnd_api::lnrpc;
use lnd_api::lnrpc::lightning_client::LightningClient;
use lnd_api::routerrpc;
use lnd_api::routerrpc::router_client::RouterClient;
use lnd_sim::{Config, LndSim, LndSimHandle, MacaroonKind};

struct World {
    rt: tokio::runtime::Runtime,
    relay: lnc_mailbox::ServerHandle,
    _sim: LndSimHandle,
    node: Node,
    direct: Lnd,
    tunnel: Client,
    /// A spend session's tunnel (budget large enough for every iteration).
    spend: Client,
}

fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("lnc-node-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (relay, sim, node, direct, tunnel, spend) = rt.block_on(async {
            // One node holds two boxes per session: lift the relay's per-IP stream limit.
            let mut rc = lnc_mailbox::Config::loopback_insecure();
            rc.limits.max_streams_per_ip = usize::MAX;
            rc.limits.max_streams = usize::MAX;
            let srv = lnc_mailbox::Server::bind(rc).await.unwrap();
            let relay = srv.handle();
            tokio::spawn(srv.serve(std::future::pending()));
            let sim = LndSim::start(Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: dir.join("lnd"),
            })
            .await
            .unwrap();
            let cfg = NodeConfig::new(
                sim.addr().to_string(),
                sim.tls_cert_path(),
                sim.macaroon_path(MacaroonKind::Admin),
                dir.join("node"),
                MailboxConfig {
                    addr: relay.local_addr().to_string(),
                    tls: lnc_tunnel::TlsMode::Insecure,
                    creation_token: None,
                },
            );
            let node = Node::start(cfg).await.unwrap();
            let direct = Lnd::connect(
                &sim.addr().to_string(),
                &sim.tls_cert_path(),
                &sim.macaroon_path(MacaroonKind::Admin),
            )
            .await
            .unwrap();
            let tunnel = pair(
                &node,
                &relay,
                NewSession::new("bench", SessionType::Admin, ""),
            )
            .await;
            let mut spend = NewSession::new("bench spend", SessionType::Spend, "");
            spend.budget = Some(Budget {
                limit_msat: u64::MAX / 2,
                period: Period::Day,
                max_payment_msat: None,
            });
            // The default budget-session rate (20/s) would be the benchmark's bottleneck.
            spend.limits = Limits {
                calls_per_second: Some(1_000_000),
                burst: Some(1_000_000),
                max_streams: None,
            };
            let spend = pair(&node, &relay, spend).await;
            (relay, sim, node, direct, tunnel, spend)
        });
        World {
            rt,
            relay,
            _sim: sim,
            node,
            direct,
            tunnel,
            spend,
        }
    })
}

/// Creates a session on `node` and pairs an app with it.
async fn pair(node: &Node, relay: &lnc_mailbox::ServerHandle, params: NewSession) -> Client {
    let c = node.create_session(params).await.unwrap();
    let entropy = PairingPhrase::parse(&c.expose_phrase().to_phrase_string())
        .unwrap()
        .into_entropy();
    let state = ConnectionState::new(Role::Client, SecretKey::generate(&mut rng()), entropy);
    let mb: Arc<dyn Mailbox> = Arc::new(
        GrpcMailbox::new(RelayAddr {
            addr: relay.local_addr().to_string(),
            tls: TlsMode::Insecure,
        })
        .unwrap(),
    );
    let (tunnel, _events) = Client::connect(
        &TokioRuntime::new(),
        mb,
        state,
        TunnelOptions::default(),
        rng(),
    )
    .await
    .unwrap();
    tunnel
}

/// Adds an lnd-sim invoice (directly) and pays it through `tunnel` (a spontaneous payment to
/// its hash, as lnd-sim's payment requests are not BOLT11); returns the final status.
async fn pay_through(w: &World, tunnel: &Client) -> i32 {
    let inv = w
        .direct
        .lightning()
        .add_invoice(w.direct.request(lnrpc::Invoice {
            value: 10,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let mut s = RouterClient::new(tunnel.clone())
        .send_payment_v2(routerrpc::SendPaymentRequest {
            dest: vec![2; 33],
            amt: 10,
            payment_hash: inv.r_hash,
            timeout_seconds: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = 0;
    while let Some(p) = s.message().await.unwrap() {
        last = p.status;
    }
    assert_eq!(last, lnrpc::payment::PaymentStatus::Succeeded as i32);
    last
}

fn memory_per_idle_session(n: usize) {
    let w = world();
    let before_boxes = w.relay.stats().mailboxes;
    let before = rss_kib();
    let t0 = Instant::now();
    w.rt.block_on(async {
        for i in 0..n {
            w.node
                .create_session(NewSession::new(
                    format!("idle {i}"),
                    SessionType::ReadOnly,
                    "",
                ))
                .await
                .unwrap();
        }
        // Every listener first stretches its phrase (scrypt), then creates its two boxes.
        let mut last = Instant::now();
        while w.relay.stats().mailboxes < before_boxes + 2 * n {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if last.elapsed() > Duration::from_secs(10) {
                last = Instant::now();
                eprintln!(
                    "… {} of {} boxes after {:.0?}",
                    w.relay.stats().mailboxes - before_boxes,
                    2 * n,
                    t0.elapsed()
                );
            }
        }
    });
    let after = rss_kib();
    println!(
        "memory per idle session: {n} sessions listening after {:.1?}; RSS {before} KiB → \
         {after} KiB = {:.1} KiB per session (includes relay boxes and lnd-sim root keys)",
        t0.elapsed(),
        (after.saturating_sub(before)) as f64 / n as f64
    );
}

fn main() {
    let n: usize = std::env::var("LNC_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // Warm both paths once (connections, first-call allocations) before measuring.
    let w = world();
    w.rt.block_on(async {
        LightningClient::new(w.tunnel.clone())
            .get_info(lnrpc::GetInfoRequest {})
            .await
            .unwrap();
    });
    // `cargo test --all-targets` runs this binary without `--bench`: skip the slow part.
    let benching = std::env::args().any(|a| a == "--bench");
    if n > 0 && benching {
        memory_per_idle_session(n);
    }
    divan::main();
}

/// Baseline: GetInfo straight to lnd-sim (TLS, HTTP/2, macaroon check).
#[divan::bench(sample_count = 200)]
fn unary_direct_to_lnd_sim(b: Bencher) {
    let w = world();
    b.bench(|| {
        w.rt.block_on(async {
            w.direct
                .lightning()
                .get_info(w.direct.request(lnrpc::GetInfoRequest {}))
                .await
                .unwrap()
        })
    });
}

/// The same call from an app: tunnel (Noise, GBN, relay) → node proxy → lnd-sim.
#[divan::bench(sample_count = 200)]
fn unary_through_node(b: Bencher) {
    let w = world();
    b.bench(|| {
        w.rt.block_on(async {
            LightningClient::new(w.tunnel.clone())
                .get_info(lnrpc::GetInfoRequest {})
                .await
                .unwrap()
        })
    });
}

/// GetInfo through a spend session: the rate limit, the stream cap and the audit log on
/// top of `unary_through_node`.
#[divan::bench(sample_count = 200)]
fn unary_through_node_spend_session(b: Bencher) {
    let w = world();
    b.bench(|| {
        w.rt.block_on(async {
            LightningClient::new(w.spend.clone())
                .get_info(lnrpc::GetInfoRequest {})
                .await
                .unwrap()
        })
    });
}

/// A payment (an lnd-sim invoice added directly, paid through the tunnel) by an admin
/// session: no budget.
#[divan::bench(sample_count = 100)]
fn payment_through_node_admin(b: Bencher) {
    let w = world();
    b.bench(|| w.rt.block_on(pay_through(w, &w.tunnel)));
}

/// The same payment by a spend session: decoded, reserved (a durable write), settled from
/// the result (another durable write).
#[divan::bench(sample_count = 100)]
fn payment_through_node_spend_session(b: Bencher) {
    let w = world();
    b.bench(|| w.rt.block_on(pay_through(w, &w.spend)));
}
