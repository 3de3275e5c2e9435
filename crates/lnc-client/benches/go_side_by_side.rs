//! The Go LNC stack and ours, side by side, measured in one run on one machine.
//!
//! `cargo bench -p lnc-client --bench go_side_by_side` (after `bash interop/build.sh`)
//! prints BENCHMARKS.md's "Side by side with Go" table. For every app {Go, ours} ×
//! relay {aperture, ours} × node {Go, ours} over HashMail gRPC: pairing (phrase → Noise
//! XX done, scrypt included), KK reconnect p50/p99 (an app restart: the Go app is a new
//! process each time, timed inside it; ours is `connect` from stored credentials),
//! unary GetInfo p50/p99 and a bulk server stream (MB/s). Then scrypt: Go's stretch
//! (x/crypto/scrypt as lightning-node-connect calls it) against ours.
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
use lnc_tunnel::native::{GrpcMailbox, RelayAddr, Tls};
use lnd_api::lnrpc;
use rand_chacha::rand_core::SeedableRng;

const KK_RUNS: usize = 15;
const UNARY_CALLS: usize = 300;
const BULK_ITEMS: u64 = 2_000;
const BULK_SIZE: u64 = 1_000;
const SCRYPT_RUNS: usize = 5;
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

async fn go_app_row(relay: &str, phrase: &str) -> Row {
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
    for _ in 0..KK_RUNS {
        let mut app = go_app(relay, &state, None, &[]).await;
        let c = timed("go KK", app.expect("CONNECTED")).await.unwrap();
        timed("go KK done", app.expect("DONE")).await.unwrap();
        row.kk_ms.push(num(&c, "ms"));
    }
    row
}

async fn our_app_row(relay: &str, phrase: &str) -> Row {
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
    row.unary_p50_us = pct(&mut lat, 50);
    row.unary_p99_us = pct(&mut lat, 99);
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
    row.bulk_mb_s = bytes as f64 / 1e6 / t.elapsed().as_secs_f64();
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
                    tls: Tls::SkipVerify,
                })
                .unwrap(),
            );
            let mut l = node(mb, &s, TunnelOptions::default());
            next_listening(&mut l).await;
            (None, Some(l), s.phrase)
        }
    };
    match app {
        Side::Go => go_app_row(&relay, &phrase).await,
        Side::Ours => our_app_row(&relay, &phrase).await,
    }
}

async fn run() {
    println!(
        "| app | relay | node | pairing | KK p50 / p99 | unary p50 / p99 | bulk stream |\n|---|---|---|---|---|---|---|"
    );
    let mut seed = 100;
    for relay in [Side::Go, Side::Ours] {
        for node_side in [Side::Go, Side::Ours] {
            for app in [Side::Go, Side::Ours] {
                seed += 1;
                let mut r = cell(app, relay, node_side, seed).await;
                println!(
                    "| {} | {} | {} | {:.0} ms | {:.1} / {:.1} ms | {:.0} / {:.0} µs | {:.1} MB/s |",
                    app.name(),
                    if relay == Side::Go {
                        "aperture"
                    } else {
                        "ours"
                    },
                    node_side.name(),
                    r.pairing_ms,
                    pct(&mut r.kk_ms, 50),
                    pct(&mut r.kk_ms, 99),
                    r.unary_p50_us,
                    r.unary_p99_us,
                    r.bulk_mb_s,
                );
            }
        }
    }
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

fn main() {
    lnc_testkit::bench::main_when_benched(
        "go_side_by_side: run with `cargo bench -p lnc-client --bench go_side_by_side` \
             (after `bash interop/build.sh`)",
        run(),
    );
}
