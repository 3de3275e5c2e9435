//! What the tunnel and `lnc node` add to a call to a real LND, measured in one run.
//!
//! `cargo bench -p lnc --bench real_lnd_overhead` (after `bash interop/lnd/build.sh`) starts
//! the regtest network (`lnc_testkit::lnd`), `lnc mailbox` and `lnc node` in front of alice,
//! pairs an admin app, then times the same unary calls (GetInfo; AddInvoice, which writes
//! to LND's database) direct to LND (TLS + macaroon, as lncli) and through the tunnel
//! (app → relay → node → LND), interleaved, and prints p50/p99 and the ratios that
//! BENCHMARKS.md's "A real LND on regtest" table holds.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it only says how to run it:
//! the real_lnd tests already check that the calls work.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use lnc_testkit::lnd::regtest;
use lnc_testkit::stack::{App, LndTarget, Stack};
use lnd_api::lnrpc;

const LNC: &str = env!("CARGO_BIN_EXE_lnc");
const CALLS: usize = 300;
const WARMUP: usize = 20;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run() {
    let net = regtest().await;
    println!("regtest network started in {:?}", net.started_in);
    let env = Stack::with_lnd(LNC, "bench-real-lnd", LndTarget::of(&net.alice)).await;
    let node = env.node().await;
    let (_, phrase) = env.add(&["--type", "admin"]).await;
    let app = App::pair(&env, &phrase).await;
    let direct = net.alice.admin().await.unwrap();

    let invoice = || lnrpc::Invoice {
        memo: "bench".into(),
        value: 1,
        ..Default::default()
    };
    println!("| call | direct to LND p50 / p99 | through tunnel + node p50 / p99 | ratio (p50) |");
    println!("|---|---|---|---|");
    for call in ["GetInfo", "AddInvoice"] {
        let (mut d, mut t) = (Vec::new(), Vec::new());
        for i in 0..WARMUP + CALLS {
            let t0 = Instant::now();
            match call {
                "GetInfo" => drop(
                    direct
                        .lightning()
                        .get_info(lnrpc::GetInfoRequest {})
                        .await
                        .unwrap(),
                ),
                _ => drop(direct.lightning().add_invoice(invoice()).await.unwrap()),
            }
            let dd = t0.elapsed();
            let t0 = Instant::now();
            match call {
                "GetInfo" => drop(app.ln().get_info(lnrpc::GetInfoRequest {}).await.unwrap()),
                _ => drop(app.ln().add_invoice(invoice()).await.unwrap()),
            }
            let tt = t0.elapsed();
            if i >= WARMUP {
                d.push(dd);
                t.push(tt);
            }
        }
        d.sort();
        t.sort();
        println!(
            "| {call} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2}× (+{:.2} ms) |",
            ms(pct(&d, 0.5)),
            ms(pct(&d, 0.99)),
            ms(pct(&t, 0.5)),
            ms(pct(&t, 0.99)),
            ms(pct(&t, 0.5)) / ms(pct(&d, 0.5)),
            ms(pct(&t, 0.5)) - ms(pct(&d, 0.5)),
        );
    }
    app.client.close();
    node.interrupt().await;
}

fn main() {
    lnc_testkit::bench::main_when_benched(
        "real_lnd_overhead: run with `cargo bench -p lnc --bench real_lnd_overhead` (after \
             `bash interop/lnd/build.sh`)",
        run(),
    );
}
