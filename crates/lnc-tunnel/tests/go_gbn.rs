//! Our go-back-N machine against upstream's, the real Go code (lightning-node-connect's
//! `gbn` package with the mailbox layer's settings, run by `interop/cmd/go-gbn-peer`): a
//! lossy transfer, an idle connection kept alive by both keepalives, a relay outage shorter
//! than the keepalive with data in flight (our probe is then the unacknowledged DATA), and a
//! dead relay that both sides must notice. Go must never see our probes as an error, and we
//! must never take Go's keepalive for one.
//!
//! Needs the Go harness programs: `bash interop/build.sh` (run by `.ci/run`); their folder
//! is `$LNC_GOBIN`, default `~/.cache/lnc-rs/gobin`.
#![cfg(feature = "native")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use lnc_core::gbn::testing::SplitMix64;
use lnc_core::gbn::{CloseReason, Config, Connection, Event};
use lnc_core::time::Instant;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// What the Go peer said on stderr.
#[derive(Debug, Clone, PartialEq)]
enum GoEvent {
    Connected,
    Exit(String),
}

struct Harness {
    conn: Connection,
    epoch: tokio::time::Instant,
    go: Child,
    stdin: ChildStdin,
    packets: mpsc::UnboundedReceiver<Vec<u8>>,
    go_events: mpsc::UnboundedReceiver<GoEvent>,
    go_exit: Option<(String, Duration)>,
    our_close: Option<(CloseReason, Duration)>,
    rng: SplitMix64,
    /// Per mille of packets lost in each direction.
    loss: u32,
    echoes: Vec<Vec<u8>>,
    /// Messages to send as the window allows.
    outbox: std::collections::VecDeque<Vec<u8>>,
    buf: Vec<u8>,
    trace: bool,
}

impl Harness {
    async fn start(go_role: &str, ours: Connection, seed: u64) -> Self {
        // GO_GBN_TRACE=1: both sides' packets on stderr, for a failure's timeline.
        let trace = std::env::var_os("GO_GBN_TRACE").is_some();
        let mut go = Command::new(lnc_testkit::go::gobin("go-gbn-peer"))
            .arg("-role")
            .arg(go_role)
            .arg(format!("-trace={trace}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start go-gbn-peer");
        let stdin = go.stdin.take().unwrap();
        let mut stdout = go.stdout.take().unwrap();
        let stderr = go.stderr.take().unwrap();
        let (ptx, packets) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let mut hdr = [0u8; 4];
                if stdout.read_exact(&mut hdr).await.is_err() {
                    return;
                }
                let mut p = vec![0u8; u32::from_be_bytes(hdr) as usize];
                if stdout.read_exact(&mut p).await.is_err() || ptx.send(p).is_err() {
                    return;
                }
            }
        });
        let (etx, go_events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if trace {
                    eprintln!("go: {l}");
                }
                let ev = if l == "CONNECTED" {
                    GoEvent::Connected
                } else if let Some(r) = l.strip_prefix("EXIT ") {
                    GoEvent::Exit(r.to_owned())
                } else {
                    continue;
                };
                if etx.send(ev).is_err() {
                    return;
                }
            }
        });
        Harness {
            conn: ours,
            epoch: tokio::time::Instant::now(),
            go,
            stdin,
            packets,
            go_events,
            go_exit: None,
            our_close: None,
            rng: SplitMix64::new(seed),
            loss: 0,
            echoes: Vec::new(),
            outbox: Default::default(),
            buf: Vec::new(),
            trace,
        }
    }

    fn now(&self) -> Instant {
        Instant::EPOCH + self.epoch.elapsed()
    }

    fn lost(&mut self) -> bool {
        self.loss > 0 && (self.rng.next_u64() % 1000) < u64::from(self.loss)
    }

    /// Sends what our machine wants to send, minus the simulated loss.
    async fn flush(&mut self) {
        while self.conn.can_send()
            && let Some(m) = self.outbox.pop_front()
        {
            self.conn.send(&m).unwrap();
        }
        loop {
            let now = self.now();
            let mut buf = std::mem::take(&mut self.buf);
            let more = self.conn.poll_transmit(now, &mut buf);
            let lost = more && self.lost();
            if more && self.trace {
                eprintln!(
                    "{:?} ours sends {:?}{}",
                    self.epoch.elapsed(),
                    lnc_core::gbn::Packet::decode(&buf),
                    if lost { " LOST" } else { "" }
                );
            }
            if more && !lost {
                let mut frame = (buf.len() as u32).to_be_bytes().to_vec();
                frame.extend_from_slice(&buf);
                // A Go peer that exited closes its stdin: that shows as its EXIT event.
                let _ = self.stdin.write_all(&frame).await;
            }
            self.buf = buf;
            if !more {
                break;
            }
        }
        while let Some(ev) = self.conn.poll_event() {
            if let Event::Closed(r) = ev
                && self.our_close.is_none()
            {
                self.our_close = Some((r, self.epoch.elapsed()));
            }
        }
        while let Some(m) = self.conn.recv() {
            self.echoes.push(m);
        }
    }

    /// Handles the next packet, Go event or timer, waiting at most until `until`.
    async fn step(&mut self, until: tokio::time::Instant) {
        self.flush().await;
        let timer = self
            .conn
            .poll_timeout()
            .map(|t| self.epoch + t.saturating_duration_since(Instant::EPOCH))
            .unwrap_or(until)
            .min(until);
        tokio::select! {
            p = self.packets.recv() => {
                let lost = self.lost();
                if self.trace && let Some(p) = &p {
                    eprintln!("{:?} ours gets {:?}{}", self.epoch.elapsed(), lnc_core::gbn::Packet::decode(p), if lost { " LOST" } else { "" });
                }
                if let Some(p) = p && !lost {
                    let now = self.now();
                    let _ = self.conn.handle_packet(now, &p);
                }
            }
            ev = self.go_events.recv() => {
                if let Some(GoEvent::Exit(r)) = ev && self.go_exit.is_none() {
                    self.go_exit = Some((r, self.epoch.elapsed()));
                }
            }
            () = tokio::time::sleep_until(timer) => {
                let now = self.now();
                self.conn.handle_timeout(now);
            }
        }
        self.flush().await;
    }

    fn assert_alive(&self, phase: &str) {
        assert!(
            self.go_exit.is_none() && self.our_close.is_none(),
            "{phase}: the connection died: Go {:?}, ours {:?}",
            self.go_exit,
            self.our_close
        );
    }

    /// Steps until `done` holds (checked after every step), failing after `limit`.
    async fn run_until(&mut self, phase: &str, limit: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{phase}: not done after {limit:?} (echoes {}, Go {:?}, ours {:?}, stats {:?})",
                self.echoes.len(),
                self.go_exit,
                self.our_close,
                self.conn.stats()
            );
            self.step(deadline).await;
        }
    }

    /// Sends `count` numbered messages (as the window allows) and waits for their echoes.
    async fn echo(&mut self, phase: &str, count: usize, limit: Duration) {
        let first = self.echoes.len();
        self.outbox.extend((first..first + count).map(message));
        self.run_until(phase, limit, |h| {
            h.assert_alive(phase);
            h.echoes.len() >= first + count
        })
        .await;
        for (i, m) in self.echoes[first..].iter().enumerate() {
            assert_eq!(m, &message(first + i), "{phase}: echo {i} differs");
        }
    }
}

fn message(i: usize) -> Vec<u8> {
    let mut m = format!("message {i} ").into_bytes();
    m.resize(20 + i % 200, b'x');
    m
}

/// The script against one Go peer. `ours` is the other side's machine; `full` adds the
/// idle phase (both keepalives at work) and the dead relay.
async fn against_go(go_role: &str, ours: Config, our_side_server: bool, full: bool) {
    let conn = if our_side_server {
        Connection::new_server(ours).unwrap()
    } else {
        Connection::new_client(ours).unwrap()
    };
    let mut h = Harness::start(go_role, conn, 21).await;
    let t = Duration::from_secs;

    // 1. Handshake and a transfer at 3 % loss each way (upstream's resend policy is slow
    //    under loss, so more would only make the test long).
    h.run_until("handshake", t(30), |h| h.conn.is_connected())
        .await;
    h.loss = 30;
    h.echo("lossy transfer", 60, t(120)).await;
    h.loss = 0;
    h.echo("clean transfer", 10, t(30)).await;
    eprintln!("{go_role}: transfers done at {:?}", h.epoch.elapsed());

    // 2. Idle past both ping intervals: Go's pings are answered, ours do not upset Go.
    if full {
        let idle_from = h.epoch.elapsed();
        h.run_until("idle", t(30), |h| {
            h.assert_alive("idle");
            h.epoch.elapsed() >= idle_from + t(13)
        })
        .await;
        h.echo("after idle", 5, t(30)).await;
    }

    // 3. A relay outage shorter than either keepalive, with data in flight.
    h.loss = 1000;
    let cut = h.epoch.elapsed();
    let before = h.echoes.len();
    h.outbox.extend((before..before + 3).map(message));
    h.run_until("outage", t(30), |h| {
        h.assert_alive("outage");
        h.epoch.elapsed() >= cut + t(4)
    })
    .await;
    h.loss = 0;
    h.run_until("after the outage", t(30), |h| {
        h.assert_alive("after the outage");
        h.echoes.len() >= before + 3 && h.conn.is_flushed()
    })
    .await;
    for (i, m) in h.echoes[before..].iter().enumerate() {
        assert_eq!(
            m,
            &message(before + i),
            "after the outage: echo {i} differs"
        );
    }

    eprintln!("{go_role}: outage done at {:?}", h.epoch.elapsed());
    if !full {
        return;
    }

    // 4. The relay dies: we notice within ping interval + pong timeout (+ slack). (Go's
    //    own keepalive is upstream's business; its time is printed for the record.)
    h.loss = 1000;
    let cut = h.epoch.elapsed();
    h.run_until("dead relay", t(40), |h| h.our_close.is_some())
        .await;
    let (reason, ours_at) = h.our_close.clone().unwrap();
    assert_eq!(reason, CloseReason::KeepaliveTimeout);
    let ours = ours_at - cut;
    let go = h.go_exit.as_ref().map(|(r, at)| (r.clone(), *at - cut));
    eprintln!("dead relay: ours closed after {ours:?}; Go ({go_role}) by then: {go:?}");
    let our_limit = if our_side_server {
        t(5 + 3 + 2)
    } else {
        t(7 + 3 + 2)
    };
    assert!(
        ours <= our_limit,
        "we noticed the dead relay after {ours:?}"
    );
    let _ = h.go.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_go_server() {
    against_go("server", Config::client(), false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_server_against_go_client() {
    against_go("client", Config::server(), true, true).await;
}

/// One packet in flight at most, so a probe while DATA is unacknowledged must be that DATA
/// (issue 21's counterexample shape), against Go's receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_with_one_packet_in_flight_against_go_server() {
    let mut c = Config::client();
    c.window = 2;
    c.max_in_flight = Some(1);
    against_go("server", c, false, false).await;
}
