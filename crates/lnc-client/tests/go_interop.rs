//! The interop matrix against the Go LNC stack, run as real processes on 127.0.0.1.
//!
//! One test per cell: app {Go, ours} × relay {aperture, ours in memory, ours as two
//! instances sharing a redis-server (app on one, node on the other)} × node {Go, ours}
//! × transport {grpc, ws}. Each cell pairs with a fresh phrase, makes a unary call
//! (GetInfo, AddInvoice), reads a server stream (SubscribeInvoices, 3 items), restarts
//! the app, reconnects with Noise KK from the stored keys and calls again.
//!
//! The Go side is our harness programs in `interop/cmd/` on the pinned upstream modules
//! (`interop/go.mod`): `go-relay` (aperture's HashMail server), `go-lnc-node`
//! (lightning-node-connect's `mailbox.NewServer`, the server path litd uses) and
//! `go-lnc-app` (lightning-node-connect's client). Build them first:
//! `bash interop/build.sh` (into `$LNC_GOBIN`, default `/root/.cache/lnc-rs/gobin`).
//!
//! Ours: the relay is `lnc-mailbox` in this process (TLS, self-signed), the node is
//! `lnc_tunnel::listen` serving the test `lnrpc.Lightning` of `common`, the app is
//! `lnc_client`. Both nodes serve the same method shapes, so one check fits both.
//!
//! Nothing sleeps to wait: processes are awaited on their stdout lines (`READY …`,
//! `DONE`), ours on their futures, each step under a generous timeout. A failure names
//! the cell (app, relay, node, transport) and the step. Each cell prints one `MATRIX`
//! line with its pairing and KK times (`--nocapture` shows them).
//!
//! Tracing a cell: `RUST_LOG=lnc_tunnel=trace` logs our side (to the test's output),
//! `LNC_INTEROP_GO_DEBUG=trace` passes `--debuglevel trace` to every Go program (stderr).
#![allow(clippy::unwrap_used, missing_docs)]

use futures_util::StreamExt;
use lnc_client::{ConnectOptions, MailboxInfo, TlsMode, Transport};
use lnc_testkit::dirs::temp_dir;
use lnc_testkit::go::{GoProc, field, go_app_args, go_node, go_relay};
use lnc_testkit::node::{FAR_FUTURE, next_listening, node, session};
use lnc_testkit::redis::{Instance, RedisServer, instance_config};
use lnc_testkit::relay::Relay;
use lnc_tunnel::TunnelOptions;
use lnc_tunnel::native::{GrpcMailbox, RelayAddr};
use lnd_api::lnrpc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One step's limit. Generous: Go's GBN handshake alone waits 2 s per retry, and a Go
/// node behind aperture's WebSocket gateway has been seen taking ~35 s to notice a
/// closed app (its keepalive) before it accepts the KK reconnect.
const STEP: Duration = Duration::from_secs(120);

/// A KK reconnect this slow waited for a timer (GBN's 2 s SYN resend or a keepalive)
/// instead of an event; generous for a loaded 2-core CI machine.
const KK_STALL_MS: u64 = 1_500;

/// Go's GBN handshake resends an unanswered SYN after this long.
const GBN_SYN_RESEND_MS: u64 = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Go,
    Ours,
}

/// The relay of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RelayKind {
    /// aperture's HashMail server (`go-relay`).
    Aperture,
    /// `lnc-mailbox`, one instance in memory.
    Ours,
    /// Two `lnc-mailbox` instances sharing one redis-server: the app on one, the node on
    /// the other, so every message crosses Redis.
    OursRedis,
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    app: Side,
    relay: RelayKind,
    node: Side,
    ws: bool,
}

impl core::fmt::Display for Cell {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n =
            |s: Side, go: &'static str, ours: &'static str| if s == Side::Go { go } else { ours };
        write!(
            f,
            "app={} relay={} node={} transport={}",
            n(self.app, "go", "ours"),
            match self.relay {
                RelayKind::Aperture => "aperture",
                RelayKind::Ours => "ours",
                RelayKind::OursRedis => "ours-redis-2x",
            },
            n(self.node, "go", "ours"),
            if self.ws { "ws" } else { "grpc" }
        )
    }
}

impl Cell {
    fn fail(&self, step: &str, why: impl core::fmt::Display) -> ! {
        panic!("interop cell {self}: step '{step}' failed: {why}")
    }

    /// Runs `fut` as `step`, failing the cell on a timeout.
    async fn step<T>(&self, step: &str, fut: impl core::future::Future<Output = T>) -> T {
        match tokio::time::timeout(STEP, fut).await {
            Ok(v) => v,
            Err(_) => self.fail(step, format!("no result within {STEP:?}")),
        }
    }
}

enum RelayUnderTest {
    Go(#[allow(dead_code)] Box<GoProc>, String),
    Ours(Relay),
    /// Instances A (the app's) and B (the node's), and their Redis.
    Redis(Box<(Instance, Instance, RedisServer)>),
}

impl RelayUnderTest {
    /// Where the app connects.
    fn app_addr(&self) -> String {
        match self {
            RelayUnderTest::Go(_, a) => a.clone(),
            RelayUnderTest::Ours(r) => r.addr().to_string(),
            RelayUnderTest::Redis(r) => r.0.handle.local_addr().to_string(),
        }
    }

    /// Where the node connects.
    fn node_addr(&self) -> String {
        match self {
            RelayUnderTest::Redis(r) => r.1.handle.local_addr().to_string(),
            other => other.app_addr(),
        }
    }
}

enum NodeUnderTest {
    Go(#[allow(dead_code)] Box<GoProc>),
    Ours(#[allow(dead_code)] lnc_tunnel::Listener),
}

async fn start_relay(cell: &Cell) -> RelayUnderTest {
    match cell.relay {
        RelayKind::Aperture => {
            let (p, addr) = cell
                .step("relay start", go_relay(true))
                .await
                .unwrap_or_else(|e| cell.fail("relay start", e));
            RelayUnderTest::Go(Box::new(p), addr)
        }
        RelayKind::Ours => RelayUnderTest::Ours(Relay::tls().await),
        RelayKind::OursRedis => {
            let redis = RedisServer::start().await;
            let config = || {
                let mut c = instance_config(&redis);
                c.tls = lnc_mailbox::TlsMode::SelfSigned { hosts: vec![] };
                c.data_dir = temp_dir("relay-instance");
                c
            };
            let a = Instance::start(config()).await;
            let b = Instance::start(config()).await;
            RelayUnderTest::Redis(Box::new((a, b, redis)))
        }
    }
}

/// Starts the node; returns it, the phrase and the alias its GetInfo answers.
async fn start_node(cell: &Cell, relay: &str, seed: u64) -> (NodeUnderTest, String, &'static str) {
    match cell.node {
        Side::Go => {
            let state = temp_dir("node").join("node.json");
            let (p, phrase) = cell
                .step("node start", go_node(relay, &state))
                .await
                .unwrap_or_else(|e| cell.fail("node start", e));
            (NodeUnderTest::Go(Box::new(p)), phrase, "go-lnc-node")
        }
        Side::Ours => {
            let s = session(seed, FAR_FUTURE);
            let mb = Arc::new(
                GrpcMailbox::new(RelayAddr {
                    addr: relay.to_owned(),
                    tls: TlsMode::SkipVerify,
                })
                .unwrap(),
            );
            let mut l = node(mb, &s, TunnelOptions::default());
            cell.step("node start", next_listening(&mut l)).await;
            (NodeUnderTest::Ours(l), s.phrase, "lnc-test-node")
        }
    }
}

/// One run of the Go app; returns its `CONNECTED` time in ms.
async fn go_app_run(
    cell: &Cell,
    step: &str,
    relay: &str,
    state: &std::path::Path,
    phrase: Option<&str>,
    alias: &str,
) -> u64 {
    let args = go_app_args(relay, cell.ws, state, phrase);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--wait", "110s"]);
    let mut app = GoProc::spawn("go-lnc-app", &args);
    let run = async {
        let c = app.expect("CONNECTED").await?;
        let g = app.expect("GETINFO").await?;
        if field(&g, "alias").as_deref() != Some(alias) {
            return Err(format!("GetInfo answered {g}, expected alias {alias}"));
        }
        let a = app.expect("ADDINVOICE").await?;
        if field(&a, "payment_request").as_deref() != Some("call-7") {
            return Err(format!("AddInvoice answered {a}"));
        }
        let s = app.expect("STREAM").await?;
        if field(&s, "n").as_deref() != Some("3") {
            return Err(format!("stream gave {s}"));
        }
        app.expect("DONE").await?;
        Ok(field(&c, "ms").and_then(|m| m.parse().ok()).unwrap_or(0))
    };
    let ms = cell
        .step(step, run)
        .await
        .unwrap_or_else(|e| cell.fail(step, e));
    let status = cell.step(step, app.child.wait()).await;
    if !status.as_ref().is_ok_and(|s| s.success()) {
        cell.fail(step, format!("go-lnc-app exit status {status:?}"));
    }
    ms
}

async fn our_calls(cell: &Cell, step: &str, c: &lnc_client::Client, alias: &str, stream: bool) {
    let info = cell
        .step(step, c.lightning().get_info(lnrpc::GetInfoRequest {}))
        .await
        .unwrap_or_else(|e| cell.fail(&format!("{step}: GetInfo"), e));
    assert_eq!(info.into_inner().alias, alias, "cell {cell}: {step}");
    if !stream {
        return;
    }
    let r = cell
        .step(
            step,
            c.lightning().add_invoice(lnrpc::Invoice {
                memo: "call-7".into(),
                value: 7,
                ..Default::default()
            }),
        )
        .await
        .unwrap_or_else(|e| cell.fail(&format!("{step}: AddInvoice"), e))
        .into_inner();
    assert_eq!(r.payment_request, "call-7", "cell {cell}: {step}");
    let mut s = cell
        .step(
            step,
            c.lightning()
                .subscribe_invoices(lnrpc::InvoiceSubscription {
                    add_index: 3,
                    ..Default::default()
                }),
        )
        .await
        .unwrap_or_else(|e| cell.fail(&format!("{step}: SubscribeInvoices"), e))
        .into_inner();
    let mut n = 0u64;
    while let Some(item) = cell.step(step, s.next()).await {
        let item = item.unwrap_or_else(|e| cell.fail(&format!("{step}: stream item"), e));
        assert_eq!(item.add_index, n, "cell {cell}: {step}");
        n += 1;
    }
    assert_eq!(n, 3, "cell {cell}: {step}: stream items");
}

/// Our side's logs when `RUST_LOG` asks for them (once per test process).
async fn run(cell: Cell, seed: u64) {
    lnc_testkit::init_tracing();
    let relay = start_relay(&cell).await;
    let addr = relay.app_addr();
    let (_node, phrase, alias) = start_node(&cell, &relay.node_addr(), seed).await;

    let (pair_ms, kk_ms) = match cell.app {
        Side::Go => {
            let state = temp_dir("app").join("app.json");
            let p = go_app_run(
                &cell,
                "pairing + calls + stream",
                &addr,
                &state,
                Some(&phrase),
                alias,
            )
            .await;
            // App restart: a new process with the stored keys (Noise KK).
            let k = go_app_run(&cell, "KK reconnect + calls", &addr, &state, None, alias).await;
            // And again at once: this SYN reaches our node well within its duplicate-SYN
            // window (one handshake timeout after the last handshake), which must not
            // hold it back when the client has sent anything since (gbn's
            // `fifo_transport`): a held SYN shows as a KK of ≥ 2 s (Go's resend).
            let quick = match cell.node {
                Side::Ours => {
                    go_app_run(
                        &cell,
                        "quick restart: KK + calls",
                        &addr,
                        &state,
                        None,
                        alias,
                    )
                    .await
                }
                Side::Go => 0,
            };
            (p, k.max(quick))
        }
        Side::Ours => {
            let info = MailboxInfo::new(
                addr.clone(),
                if cell.ws {
                    Transport::WebSocket
                } else {
                    Transport::Grpc
                },
                TlsMode::SkipVerify,
            );
            let opts = || ConnectOptions {
                wait: STEP - Duration::from_secs(10),
                ..Default::default()
            };
            let t = Instant::now();
            let (client, creds) = cell
                .step("pairing", lnc_client::native::pair(info, &phrase, opts()))
                .await
                .unwrap_or_else(|e| cell.fail("pairing", e));
            let p = t.elapsed().as_millis() as u64;
            our_calls(&cell, "calls after pairing", &client, alias, true).await;
            // App restart: drop every handle of the first client, reconnect from the
            // credentials alone.
            client.close();
            drop(client);
            let t = Instant::now();
            let client = cell
                .step("KK reconnect", lnc_client::native::connect(&creds, opts()))
                .await
                .unwrap_or_else(|e| cell.fail("KK reconnect", e));
            let k = t.elapsed().as_millis() as u64;
            our_calls(&cell, "call after KK", &client, alias, false).await;
            client.close();
            (p, k)
        }
    };
    println!("MATRIX {cell} pairing_ms={pair_ms} kk_ms={kk_ms}");
    // Where our side takes part, a KK reconnect that waited for a GBN resend (2 s) or
    // a keepalive (≈ 30 s: a FIN lost in aperture's WebSocket gateway) is a bug of ours;
    // measured KK times are 5–90 ms. Go app ↔ Go node stalls are upstream's (16 s seen).
    // A Go node may still lose our first KK SYN when it arrives while the node is
    // re-listening after the previous connection (seen once, at load 6 on 2 cores:
    // 3.2 s, our app through aperture's WebSocket gateway): one GBN resend is allowed
    // there, a second is a stall.
    let limit = match cell.node {
        Side::Ours => KK_STALL_MS,
        Side::Go => KK_STALL_MS + GBN_SYN_RESEND_MS,
    };
    if (cell.app == Side::Ours || cell.node == Side::Ours) && kk_ms >= limit {
        cell.fail(
            "KK reconnect",
            format!("took {kk_ms} ms (a stall: at most {limit} ms expected)"),
        );
    }
    if let RelayUnderTest::Ours(mut r) = relay {
        r.stop().await;
    }
}

macro_rules! cells {
    ($($(#[$attr:meta])* $name:ident: $app:ident $relay:ident $node:ident $ws:expr, $seed:expr;)*) => {$(
        $(#[$attr])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run(Cell { app: Side::$app, relay: RelayKind::$relay, node: Side::$node, ws: $ws }, $seed).await;
        }
    )*};
}

cells! {
    go_app_aperture_go_node_grpc: Go Aperture Go false, 1;
    go_app_aperture_go_node_ws: Go Aperture Go true, 2;
    go_app_aperture_our_node_grpc: Go Aperture Ours false, 3;
    go_app_aperture_our_node_ws: Go Aperture Ours true, 4;
    go_app_our_relay_go_node_grpc: Go Ours Go false, 5;
    go_app_our_relay_go_node_ws: Go Ours Go true, 6;
    go_app_our_relay_our_node_grpc: Go Ours Ours false, 7;
    go_app_our_relay_our_node_ws: Go Ours Ours true, 8;
    go_app_redis_relays_go_node_grpc: Go OursRedis Go false, 9;
    go_app_redis_relays_go_node_ws: Go OursRedis Go true, 10;
    go_app_redis_relays_our_node_grpc: Go OursRedis Ours false, 11;
    go_app_redis_relays_our_node_ws: Go OursRedis Ours true, 12;
    our_app_aperture_go_node_grpc: Ours Aperture Go false, 13;
    our_app_aperture_go_node_ws: Ours Aperture Go true, 14;
    our_app_aperture_our_node_grpc: Ours Aperture Ours false, 15;
    our_app_aperture_our_node_ws: Ours Aperture Ours true, 16;
    our_app_our_relay_go_node_grpc: Ours Ours Go false, 17;
    our_app_our_relay_go_node_ws: Ours Ours Go true, 18;
    our_app_our_relay_our_node_grpc: Ours Ours Ours false, 19;
    our_app_our_relay_our_node_ws: Ours Ours Ours true, 20;
    our_app_redis_relays_go_node_grpc: Ours OursRedis Go false, 21;
    our_app_redis_relays_go_node_ws: Ours OursRedis Go true, 22;
    our_app_redis_relays_our_node_grpc: Ours OursRedis Ours false, 23;
    our_app_redis_relays_our_node_ws: Ours OursRedis Ours true, 24;
}

/// aperture (a grpc-go server) sends a found `RecvStream`'s response headers only with its
/// first message, so a receive stream on a mailbox nobody writes to yet answers nothing
/// at all. Opening one must still complete at once (the app's SYN waits for it, and the
/// node's answer waits for that SYN); without `GrpcMailbox::open_recv`'s rule it hangs.
/// A refusal still arrives: on the stream if not at open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aperture_quiet_recv_stream_opens_at_once() {
    use lnc_core::pairing::StreamId;
    use lnc_tunnel::{Mailbox, Status};
    let cell = Cell {
        app: Side::Ours,
        relay: RelayKind::Aperture,
        node: Side::Ours,
        ws: false,
    };
    let relay = start_relay(&cell).await;
    let mb = GrpcMailbox::new(RelayAddr {
        addr: relay.app_addr(),
        tls: TlsMode::SkipVerify,
    })
    .unwrap();
    let id = StreamId::from_bytes([0x5a; 64]);
    mb.create(id).await.unwrap();
    let limit = Duration::from_secs(10);
    let mut rx = tokio::time::timeout(limit, mb.open_recv(id))
        .await
        .expect("a quiet RecvStream on aperture must open without waiting for a message")
        .unwrap();
    // The stream works: what is written afterwards arrives.
    let mut tx = mb.open_send(id).await.unwrap();
    futures_util::SinkExt::send(&mut tx, b"hello".to_vec())
        .await
        .unwrap();
    let got = tokio::time::timeout(STEP, rx.next()).await.unwrap();
    assert_eq!(got.unwrap().unwrap(), b"hello");
    // A missing mailbox is still refused, at open or as the stream's first item.
    let missing = StreamId::from_bytes([0xa5; 64]);
    let err = match tokio::time::timeout(STEP, mb.open_recv(missing))
        .await
        .unwrap()
    {
        Err(e) => e,
        Ok(mut s) => tokio::time::timeout(STEP, s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap_err(),
    };
    assert_eq!(err.status, Status::SessionNotFound, "{err}");
}
