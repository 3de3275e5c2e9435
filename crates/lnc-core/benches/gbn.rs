//! Go-back-N throughput: messages through the deterministic simulator (both machines plus
//! the simulated network) at 0 % and 5 % loss, and the machines alone on a lossless
//! in-memory loop (CPU per message of the protocol itself).
//!
//! Run: `cargo bench -p lnc-core --bench gbn`. Before the benchmarks it prints the
//! goodput in simulated time (messages per simulated second over a 20 ms one-way link).

#![allow(clippy::unwrap_used)] // a benchmark may panic

use core::time::Duration;
use divan::counter::ItemsCount;
use lnc_core::gbn::testing::{Link, Pair, message};
use lnc_core::gbn::{Config, Connection};
use lnc_core::time::Instant;

const MESSAGES: u32 = 2_000;
const SIZE: usize = 200;

fn link(loss_permille: u32) -> Link {
    Link {
        loss_permille,
        dup_permille: 0,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        fifo: true,
    }
}

/// Sends `MESSAGES` client → server through the simulator; returns simulated time.
fn run(loss_permille: u32, seed: u64) -> Duration {
    let mut p = Pair::new(
        seed,
        Config::client(),
        Config::server(),
        link(loss_permille),
        link(loss_permille),
    );
    assert!(p.connect(Duration::from_secs(60)));
    let start = p.now;
    let payload = message(0, SIZE);
    let (mut sent, mut got) = (0, 0);
    while got < MESSAGES {
        while sent < MESSAGES && p.client.can_send() {
            p.client.send(&payload).unwrap();
            sent += 1;
        }
        while p.server.recv().is_some() {
            got += 1;
        }
        assert!(p.step() && !p.client.is_closed());
    }
    p.now.saturating_duration_since(start)
}

#[divan::bench(args = [0, 50])]
fn simulator(bencher: divan::Bencher, loss_permille: u32) {
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .bench(|| run(divan::black_box(loss_permille), 7));
}

/// Both machines wired back to back without a network model: send, transmit, receive,
/// ACK, per message — the protocol's own CPU cost.
#[divan::bench]
fn machines_only(bencher: divan::Bencher) {
    bencher.counter(ItemsCount::new(MESSAGES)).bench(|| {
        let mut c = Connection::new_client(Config::client()).unwrap();
        let mut s = Connection::new_server(Config::server()).unwrap();
        let mut buf = Vec::with_capacity(512);
        let now = Instant::EPOCH;
        let payload = [7u8; SIZE];
        let mut got = 0;
        let mut sent = 0;
        while got < MESSAGES {
            if sent < MESSAGES && c.can_send() {
                c.send(&payload).unwrap();
                sent += 1;
            }
            while c.poll_transmit(now, &mut buf) {
                let _ = s.handle_packet(now, &buf);
            }
            while s.poll_transmit(now, &mut buf) {
                let _ = c.handle_packet(now, &buf);
            }
            while s.recv().is_some() {
                got += 1;
            }
        }
    });
}

fn main() {
    for loss in [0, 50] {
        let t = run(loss, 7);
        println!(
            "goodput in simulated time, {}% loss, 20 ms one-way: {:.0} messages/s ({} × {} B in {:.2?})",
            loss / 10,
            f64::from(MESSAGES) / t.as_secs_f64(),
            MESSAGES,
            SIZE,
            t
        );
    }
    divan::main();
}
