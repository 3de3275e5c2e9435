//! The Go LNC stack and ours, side by side, measured in one run on one machine.
//!
//! `cargo bench -p lnc-client --bench go_side_by_side` (after `bash interop/build.sh`)
//! prints BENCHMARKS.md's "Side by side with Go" table. For every app {Go, ours} ×
//! relay {aperture, ours} × node {Go, ours} over HashMail gRPC: pairing (phrase → Noise
//! XX done, scrypt included), KK reconnect p50/p99 (an app restart: the Go app is a new
//! process each time, timed inside it; ours is `connect` from stored credentials),
//! unary GetInfo p50/p99, a bulk server stream (MB/s) over gRPC and over the WebSocket
//! gateway (an app restart with `--transport ws`), and, where the relay is ours (it
//! counts what it delivers), relay messages per unary call. Then the resources: relay
//! memory per idle pair (aperture against our relay, each a process of its own),
//! app memory after pairing (the Go app against ours, each a process of its own), and
//! scrypt: Go's stretch (x/crypto/scrypt as lightning-node-connect calls it) against ours.
//!
//! Our relay and app run as processes of their own by starting this bench's executable
//! again with `LNC_BENCH_CHILD=relay|app`, so their memory is theirs alone.
//! `LNC_BENCH_CELL=ours/aperture/ours` (app/relay/node) runs one cell; `RUST_LOG`
//! traces it.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it only says how to run it:
//! the interop matrix tests already check that every cell works.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lnc_client::{ConnectOptions, MailboxInfo, TlsMode, Transport};
use lnc_testkit::dirs::temp_dir;
use lnc_testkit::go::{GoProc, field, go_app_args, go_node, go_relay};
use lnc_testkit::node::{FAR_FUTURE, next_listening, node, session};
use lnc_testkit::relay::Relay;
use lnc_tunnel::TunnelOptions;
use lnc_tunnel::native::{GrpcMailbox, RelayAddr};
use lnd_api::lnrpc;
use rand_chacha::rand_core::SeedableRng;

const KK_RUNS: usize = 15;
const UNARY_CALLS: usize = 300;
const BULK_ITEMS: u64 = 2_000;
const BULK_SIZE: u64 = 1_000;
const SCRYPT_RUNS: usize = 5;
const IDLE_PAIRS: usize = 2_000;
const IDLE_CONNECTIONS: usize = 16;
const STEP: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Go,
    Ours,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Go => "Go",
            Side::Ours => "ours",
        }
    }
}

#[derive(Default)]
struct Row {
    pairing_ms: f64,
    kk_ms: Vec<f64>,
    unary_p50_us: f64,
    unary_p99_us: f64,
    bulk_mb_s: f64,
    ws_bulk_mb_s: f64,
    /// Messages our relay delivered per unary call, both directions.
    relay_msgs_per_call: Option<f64>,
}

/// What our relay has delivered to readers so far (its `messages_relayed` counter).
fn relayed(relay: Option<&Relay>) -> Option<f64> {
    let text = relay?.handle.metrics_text();
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains("messages_relayed"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

fn pct(v: &mut [f64], p: usize) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[(v.len() * p / 100).min(v.len() - 1)]
}

async fn timed<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {STEP:?}"))
}

/// One Go app run; returns its stdout lines.
async fn go_app(relay: &str, state: &Path, phrase: Option<&str>, extra: &[&str]) -> GoProc {
    let args = go_app_args(relay, false, state, phrase);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(extra);
    GoProc::spawn("go-lnc-app", &args)
}

async fn go_app_row(relay: &str, phrase: &str, our_relay: Option<&Relay>) -> Row {
    let state = temp_dir("bench-app").join("app.json");
    let unary = UNARY_CALLS.to_string();
    let items = BULK_ITEMS.to_string();
    let size = BULK_SIZE.to_string();
    let mut app = go_app(
        relay,
        &state,
        Some(phrase),
        &[
            "--unary-calls",
            &unary,
            "--bulk-items",
            &items,
            "--bulk-size",
            &size,
        ],
    )
    .await;
    let num = |l: &str, k: &str| -> f64 { field(l, k).and_then(|v| v.parse().ok()).unwrap() };
    let c = timed("go pairing", app.expect("CONNECTED")).await.unwrap();
    let u = timed("go unary", app.expect("UNARY")).await.unwrap();
    let b = timed("go bulk", app.expect("BULK")).await.unwrap();
    timed("go done", app.expect("DONE")).await.unwrap();
    let mut row = Row {
        pairing_ms: num(&c, "ms"),
        unary_p50_us: num(&u, "p50_us"),
        unary_p99_us: num(&u, "p99_us"),
        bulk_mb_s: num(&b, "bytes") / 1e6 / (num(&b, "ms").max(1.0) / 1e3),
        ..Row::default()
    };
    // KK runs; the first also makes UNARY_CALLS calls, so that the relay's count over it
    // less a plain run's is the calls' share.
    let mut plain_msgs = Vec::new();
    let mut unary_msgs = None;
    for i in 0..KK_RUNS {
        let extra: &[&str] = if i == 0 {
            &["--unary-calls", &unary]
        } else {
            &[]
        };
        let before = relayed(our_relay);
        let mut app = go_app(relay, &state, None, extra).await;
        let c = timed("go KK", app.expect("CONNECTED")).await.unwrap();
        timed("go KK done", app.expect("DONE")).await.unwrap();
        let _ = app.child.wait().await;
        if let (Some(a), Some(z)) = (before, relayed(our_relay)) {
            if i == 0 {
                unary_msgs = Some(z - a);
            } else {
                plain_msgs.push(z - a);
            }
        }
        row.kk_ms.push(num(&c, "ms"));
    }
    if let Some(u) = unary_msgs.filter(|_| !plain_msgs.is_empty()) {
        row.relay_msgs_per_call = Some((u - pct(&mut plain_msgs, 50)) / UNARY_CALLS as f64);
    }
    // An app restart over the WebSocket gateway, with the bulk stream.
    let mut app = go_app(
        relay,
        &state,
        None,
        &[
            "--transport",
            "ws",
            "--bulk-items",
            &items,
            "--bulk-size",
            &size,
        ],
    )
    .await;
    let b = timed("go WS bulk", app.expect("BULK")).await.unwrap();
    timed("go WS done", app.expect("DONE")).await.unwrap();
    row.ws_bulk_mb_s = num(&b, "bytes") / 1e6 / (num(&b, "ms").max(1.0) / 1e3);
    row
}

async fn our_bulk(client: &lnc_client::Client) -> f64 {
    let t = Instant::now();
    let mut s = client
        .lightning()
        .subscribe_invoices(lnrpc::InvoiceSubscription {
            add_index: BULK_ITEMS,
            settle_index: BULK_SIZE,
        })
        .await
        .unwrap()
        .into_inner();
    let mut bytes = 0usize;
    while let Some(item) = timed("our bulk", s.next()).await {
        bytes += item.unwrap().memo.len();
    }
    bytes as f64 / 1e6 / t.elapsed().as_secs_f64()
}

async fn our_app_row(relay: &str, phrase: &str, our_relay: Option<&Relay>) -> Row {
    let info = MailboxInfo::new(relay.to_owned(), Transport::Grpc, TlsMode::SkipVerify);
    let opts = || ConnectOptions {
        wait: STEP,
        ..Default::default()
    };
    let t = Instant::now();
    let (client, creds) = timed(
        "our pairing",
        lnc_client::native::pair(info, phrase, opts()),
    )
    .await
    .unwrap();
    let mut row = Row {
        pairing_ms: t.elapsed().as_secs_f64() * 1e3,
        ..Row::default()
    };
    let mut lat = Vec::with_capacity(UNARY_CALLS);
    let before = relayed(our_relay);
    for _ in 0..UNARY_CALLS {
        let t = Instant::now();
        timed(
            "our unary",
            client.lightning().get_info(lnrpc::GetInfoRequest {}),
        )
        .await
        .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    if let (Some(a), Some(z)) = (before, relayed(our_relay)) {
        row.relay_msgs_per_call = Some((z - a) / UNARY_CALLS as f64);
    }
    row.unary_p50_us = pct(&mut lat, 50);
    row.unary_p99_us = pct(&mut lat, 99);
    row.bulk_mb_s = our_bulk(&client).await;
    client.close();
    drop(client);
    for _ in 0..KK_RUNS {
        let t = Instant::now();
        let c = timed("our KK", lnc_client::native::connect(&creds, opts()))
            .await
            .unwrap();
        timed(
            "our KK call",
            c.lightning().get_info(lnrpc::GetInfoRequest {}),
        )
        .await
        .unwrap();
        row.kk_ms.push(t.elapsed().as_secs_f64() * 1e3);
        c.close();
    }
    // An app restart over the WebSocket gateway, with the bulk stream.
    let mut ws = creds.clone();
    ws.set_mailbox(MailboxInfo::new(
        relay.to_owned(),
        Transport::WebSocket,
        TlsMode::SkipVerify,
    ));
    let c = timed("our WS KK", lnc_client::native::connect(&ws, opts()))
        .await
        .unwrap();
    row.ws_bulk_mb_s = our_bulk(&c).await;
    timed("our WS close", c.shutdown()).await;
    row
}

async fn cell(app: Side, relay_side: Side, node_side: Side, seed: u64) -> Row {
    let (_go_relay, _our_relay, relay) = match relay_side {
        Side::Go => {
            let (p, a) = go_relay(true).await.unwrap();
            (Some(p), None, a)
        }
        Side::Ours => {
            let r = Relay::tls().await;
            let a = r.addr().to_string();
            (None, Some(r), a)
        }
    };
    let (_go_node, _our_node, phrase) = match node_side {
        Side::Go => {
            let (p, phrase) = go_node(&relay, &temp_dir("bench-node").join("node.json"))
                .await
                .unwrap();
            (Some(p), None, phrase)
        }
        Side::Ours => {
            let s = session(seed, FAR_FUTURE);
            let mb = Arc::new(
                GrpcMailbox::new(RelayAddr {
                    addr: relay.clone(),
                    tls: TlsMode::SkipVerify,
                })
                .unwrap(),
            );
            let mut l = node(mb, &s, TunnelOptions::default());
            next_listening(&mut l).await;
            (None, Some(l), s.phrase)
        }
    };
    match app {
        Side::Go => go_app_row(&relay, &phrase, _our_relay.as_ref()).await,
        Side::Ours => our_app_row(&relay, &phrase, _our_relay.as_ref()).await,
    }
}

fn relay_name(relay: Side) -> &'static str {
    match relay {
        Side::Go => "aperture",
        Side::Ours => "ours",
    }
}

async fn run() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    println!(
        "| app | relay | node | pairing | KK p50 / p99 | unary p50 / p99 | bulk gRPC | bulk WS | relay msgs / call |\n|---|---|---|---|---|---|---|---|---|"
    );
    let only = std::env::var("LNC_BENCH_CELL").ok();
    let mut seed = 100;
    for relay in [Side::Go, Side::Ours] {
        for node_side in [Side::Go, Side::Ours] {
            for app in [Side::Go, Side::Ours] {
                seed += 1;
                let name = format!("{}/{}/{}", app.name(), relay_name(relay), node_side.name());
                if only.as_ref().is_some_and(|o| *o != name) {
                    continue;
                }
                let mut r = cell(app, relay, node_side, seed).await;
                println!(
                    "| {} | {} | {} | {:.0} ms | {:.1} / {:.1} ms | {:.0} / {:.0} µs | {:.1} MB/s | {:.1} MB/s | {} |",
                    app.name(),
                    relay_name(relay),
                    node_side.name(),
                    r.pairing_ms,
                    pct(&mut r.kk_ms, 50),
                    pct(&mut r.kk_ms, 99),
                    r.unary_p50_us,
                    r.unary_p99_us,
                    r.bulk_mb_s,
                    r.ws_bulk_mb_s,
                    r.relay_msgs_per_call
                        .map_or("–".to_owned(), |m| format!("{m:.2}")),
                );
            }
        }
    }
    resources().await;
    // scrypt: Go's stretch against ours, same machine, same minute.
    let mut go = GoProc::spawn("go-lnc-app", &["--scrypt", &SCRYPT_RUNS.to_string()]);
    let l = timed("go scrypt", go.expect("SCRYPT")).await.unwrap();
    let go_ms: f64 = field(&l, "ms_each").and_then(|v| v.parse().ok()).unwrap();
    let entropy =
        lnc_core::pairing::Entropy::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(7));
    let t = Instant::now();
    for _ in 0..SCRYPT_RUNS {
        std::hint::black_box(lnc_core::pairing::stretch(&entropy));
    }
    let ours_ms = t.elapsed().as_secs_f64() * 1e3 / SCRYPT_RUNS as f64;
    println!(
        "\n| scrypt stretch (N=2^16, r=8, p=1) | Go | ours | ours / Go |\n|---|---|---|---|\n| per pairing, mean of {SCRYPT_RUNS} | {go_ms:.0} ms | {ours_ms:.0} ms | {:.2}× |",
        ours_ms / go_ms
    );
}

/// Relay memory per idle pair and app memory after pairing: Go against ours, each side a
/// process of its own.
async fn resources() {
    // Relays: aperture and ours, both plaintext h2c here (the pairs are what is measured).
    let (aperture, aperture_addr) = go_relay(false).await.unwrap();
    let (ours, ours_addr) = child_relay().await;
    let go_kb = idle_pair_bytes(&aperture_addr, aperture.child.id().unwrap()).await;
    let our_kb = idle_pair_bytes(&ours_addr, ours.id().unwrap()).await;
    drop((aperture, ours));
    println!(
        "\n| resource | Go | ours | ours / Go |\n|---|---|---|---|\n| relay memory per idle pair ({IDLE_PAIRS} pairs: 2 mailboxes + 2 `RecvStream` readers each, over {IDLE_CONNECTIONS} h2 connections) | {:.1} KB (aperture) | {:.1} KB | {:.2}× |",
        go_kb / 1e3,
        our_kb / 1e3,
        our_kb / go_kb
    );

    // Apps: pairing, GetInfo, AddInvoice, a 3-item stream, then their RSS; our relay and
    // node (in this process) serve both.
    let relay = Relay::tls().await;
    let addr = relay.addr().to_string();
    let mut rss = Vec::new();
    for (app, seed) in [(Side::Go, 201), (Side::Ours, 202)] {
        let s = session(seed, FAR_FUTURE);
        let mb = Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap());
        let mut l = node(mb, &s, TunnelOptions::default());
        next_listening(&mut l).await;
        let kb: f64 = match app {
            Side::Go => {
                let state = temp_dir("bench-rss").join("app.json");
                let mut p = go_app(&addr, &state, Some(&s.phrase), &["--report-rss"]).await;
                let line = timed("go RSS", p.expect("RSS")).await.unwrap();
                field(&line, "kb").and_then(|v| v.parse().ok()).unwrap()
            }
            Side::Ours => {
                let (mut p, line) = child_line(
                    "app",
                    &[("LNC_BENCH_RELAY", &addr), ("LNC_BENCH_PHRASE", &s.phrase)],
                    "RSS",
                )
                .await;
                let _ = p.wait().await;
                field(&line, "kb").and_then(|v| v.parse().ok()).unwrap()
            }
        };
        rss.push(kb);
    }
    println!(
        "| app RSS after pairing, GetInfo, AddInvoice and a 3-item stream | {:.1} MiB | {:.1} MiB | {:.2}× |",
        rss[0] / 1024.0,
        rss[1] / 1024.0,
        rss[1] / rss[0]
    );
}

/// Holds IDLE_PAIRS idle pairs on the relay at `addr` (plaintext) and returns its RSS
/// growth per pair, in bytes, once the RSS has settled.
async fn idle_pair_bytes(addr: &str, pid: u32) -> f64 {
    use lnc_hashmail::pb::hash_mail_client::HashMailClient;
    use lnc_testkit::hashmail::{create, desc};
    let mut clients = Vec::new();
    for _ in 0..IDLE_CONNECTIONS {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        clients.push(HashMailClient::new(ch));
    }
    let before = settled_rss(pid).await;
    let mut readers = Vec::with_capacity(IDLE_PAIRS * 2);
    for i in 0..IDLE_PAIRS {
        let mut c = clients[i % IDLE_CONNECTIONS].clone();
        for side in 0..2u8 {
            let mut id = [0u8; 64];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            id[63] = side;
            create(&mut c, &id).await;
            // aperture answers a quiet RecvStream only with its first message: the call
            // is held, not awaited.
            let mut c = c.clone();
            readers.push(tokio::spawn(async move {
                if let Ok(r) = c.recv_stream(desc(&id)).await {
                    let mut s = r.into_inner();
                    while s.next().await.is_some() {}
                }
            }));
        }
    }
    let after = settled_rss(pid).await;
    for r in &readers {
        r.abort();
    }
    (after - before) * 1024.0 / IDLE_PAIRS as f64
}

/// The RSS (KiB) of `pid` once four readings 250 ms apart agree within 0.5 % (at most
/// 30 s): a relay registers held calls in its own time, and aperture says nothing when
/// it has.
async fn settled_rss(pid: u32) -> f64 {
    let mut last = Vec::new();
    let t = Instant::now();
    loop {
        let v = lnc_testkit::process::rss_kib(pid).unwrap() as f64;
        last.push(v);
        if last.len() >= 4 {
            let w = &last[last.len() - 4..];
            let (lo, hi) = w
                .iter()
                .fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            if hi - lo <= hi * 0.005 || t.elapsed() > Duration::from_secs(30) {
                return hi;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// This bench's executable again, as `LNC_BENCH_CHILD=mode`; returns it and its first
/// stdout line starting with `kind`.
async fn child_line(
    mode: &str,
    env: &[(&str, &str)],
    kind: &str,
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut c = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg("--bench")
        .env("LNC_BENCH_CHILD", mode)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(c.stdout.take().unwrap()).lines();
    let line = timed(&format!("child {mode}"), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.starts_with(kind) {
                return l;
            }
        }
        panic!("child {mode} ended without a {kind} line");
    })
    .await;
    (c, line)
}

/// Our relay as a child process: returns it and its plaintext address.
async fn child_relay() -> (tokio::process::Child, String) {
    let (c, line) = child_line("relay", &[], "READY").await;
    let addr = field(&line, "addr").unwrap();
    (c, addr)
}

/// The child processes' side (see [`child_line`]).
async fn run_child(mode: &str) {
    match mode {
        "relay" => {
            let mut config = lnc_testkit::relay::config(false);
            config.limits.max_streams_per_ip = usize::MAX;
            config.limits.max_streams = usize::MAX;
            let relay = Relay::start(config).await;
            println!("READY addr={}", relay.addr());
            std::future::pending::<()>().await;
        }
        "app" => {
            let var = |k: &str| std::env::var(k).unwrap();
            let info =
                MailboxInfo::new(var("LNC_BENCH_RELAY"), Transport::Grpc, TlsMode::SkipVerify);
            let opts = ConnectOptions {
                wait: STEP,
                ..Default::default()
            };
            let (client, _) = lnc_client::native::pair(info, &var("LNC_BENCH_PHRASE"), opts)
                .await
                .unwrap();
            let mut ln = client.lightning();
            ln.get_info(lnrpc::GetInfoRequest {}).await.unwrap();
            ln.add_invoice(lnrpc::Invoice {
                memo: "call-7".into(),
                value: 7,
                ..Default::default()
            })
            .await
            .unwrap();
            let mut s = ln
                .subscribe_invoices(lnrpc::InvoiceSubscription {
                    add_index: 3,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            while s.next().await.is_some() {}
            let kb = lnc_testkit::process::rss_kib(std::process::id()).unwrap();
            println!("RSS kb={kb}");
            client.shutdown().await;
        }
        other => panic!("unknown LNC_BENCH_CHILD={other}"),
    }
}

fn main() {
    if let Ok(mode) = std::env::var("LNC_BENCH_CHILD") {
        lnc_testkit::bench::block_on(run_child(&mode));
        return;
    }
    lnc_testkit::bench::main_when_benched(
        "go_side_by_side: run with `cargo bench -p lnc-client --bench go_side_by_side` \
             (after `bash interop/build.sh`)",
        run(),
    );
}
