//! A deterministic network simulator for GBN: two [`Connection`]s, a simulated clock, and
//! lossy links that drop, duplicate, delay and reorder packets from a seed (or from fuzzer
//! bytes). No real time, no threads: a run is a pure function of its inputs, so any
//! failure reproduces from its seed. Public (but hidden) so the fuzz targets and
//! benchmarks can use it; not a stable API.

use super::config::Config;
use super::conn::Connection;
use crate::time::Instant;
use core::cmp::Reverse;
use core::time::Duration;
use std::collections::BinaryHeap;

/// SplitMix64: tiny, fast, good enough to pick packet fates; seeded, so reproducible.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Where packet fates come from.
#[derive(Clone, Debug)]
enum Entropy {
    Seeded(SplitMix64),
    /// Fuzzer bytes, consumed one u64 at a time; then a generator seeded from them.
    Bytes(Vec<u8>, usize, SplitMix64),
}

impl Entropy {
    fn next_u64(&mut self) -> u64 {
        match self {
            Entropy::Seeded(r) => r.next_u64(),
            Entropy::Bytes(b, pos, rng) => match b.get(*pos..*pos + 8) {
                Some(chunk) => {
                    *pos += 8;
                    let mut v = [0u8; 8];
                    v.copy_from_slice(chunk);
                    u64::from_le_bytes(v)
                }
                None => rng.next_u64(),
            },
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// Behaviour of one direction of the simulated mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Probability (per mille) that a packet is lost.
    pub loss_permille: u32,
    /// Probability (per mille) that a delivered packet arrives twice.
    pub dup_permille: u32,
    /// Minimum one-way delay.
    pub delay: Duration,
    /// Extra uniformly random delay in `[0, jitter]`; reorders packets unless `fifo`.
    pub jitter: Duration,
    /// Keep packets in send order (as the real relay does) despite jitter.
    pub fifo: bool,
}

impl Link {
    /// A perfect 10 ms link.
    pub fn perfect() -> Self {
        Link {
            loss_permille: 0,
            dup_permille: 0,
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            fifo: true,
        }
    }

    /// A link that delivers nothing (a dead peer or relay).
    pub fn dead() -> Self {
        Link {
            loss_permille: 1000,
            ..Link::perfect()
        }
    }
}

/// Which endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    /// The client.
    Client,
    /// The server.
    Server,
}

/// Network counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetStats {
    /// Packets handed to the network.
    pub sent: u64,
    /// Packets lost.
    pub dropped: u64,
    /// Extra copies created.
    pub duplicated: u64,
    /// Packets delivered to an endpoint.
    pub delivered: u64,
}

/// A packet on the simulated wire: arrival time, send order (tie-break), destination, bytes.
type InFlight = (Instant, u64, End, Vec<u8>);

/// A client and a server connected by two simulated links.
#[derive(Debug)]
pub struct Pair {
    /// Simulated time.
    pub now: Instant,
    /// The client endpoint.
    pub client: Connection,
    /// The server endpoint.
    pub server: Connection,
    /// Client → server link.
    pub c2s: Link,
    /// Server → client link.
    pub s2c: Link,
    /// Network counters.
    pub net: NetStats,
    /// Print every packet event to stderr (debugging a failing seed).
    pub trace: bool,
    entropy: Entropy,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    last_arrival: [Instant; 2],
    order: u64,
    buf: Vec<u8>,
}

impl Pair {
    /// A pair whose packet fates come from `seed`.
    pub fn new(seed: u64, client: Config, server: Config, c2s: Link, s2c: Link) -> Self {
        Self::build(
            Entropy::Seeded(SplitMix64::new(seed)),
            client,
            server,
            c2s,
            s2c,
        )
    }

    /// A pair whose packet fates come from `bytes` (fuzzing).
    pub fn from_bytes(bytes: &[u8], client: Config, server: Config, c2s: Link, s2c: Link) -> Self {
        let seed = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        let rng = SplitMix64::new(seed);
        Self::build(
            Entropy::Bytes(bytes.to_vec(), 0, rng),
            client,
            server,
            c2s,
            s2c,
        )
    }

    fn build(entropy: Entropy, client: Config, server: Config, c2s: Link, s2c: Link) -> Self {
        #[allow(clippy::expect_used)]
        let (client, server) = (
            Connection::new_client(client).expect("simulator: invalid client config"),
            Connection::new_server(server).expect("simulator: invalid server config"),
        );
        Pair {
            now: Instant::EPOCH,
            client,
            server,
            c2s,
            s2c,
            net: NetStats::default(),
            trace: false,
            entropy,
            in_flight: BinaryHeap::new(),
            last_arrival: [Instant::EPOCH; 2],
            order: 0,
            buf: Vec::new(),
        }
    }

    /// The endpoint `end`.
    pub fn conn(&mut self, end: End) -> &mut Connection {
        match end {
            End::Client => &mut self.client,
            End::Server => &mut self.server,
        }
    }

    /// Moves every packet both endpoints want to send into the network.
    pub fn flush(&mut self) {
        for from in [End::Client, End::Server] {
            loop {
                let now = self.now;
                let mut buf = core::mem::take(&mut self.buf);
                let more = self.conn(from).poll_transmit(now, &mut buf);
                if more {
                    self.send(from, &buf);
                }
                self.buf = buf;
                if !more {
                    break;
                }
            }
        }
    }

    fn send(&mut self, from: End, bytes: &[u8]) {
        let (to, link) = match from {
            End::Client => (End::Server, self.c2s.clone()),
            End::Server => (End::Client, self.s2c.clone()),
        };
        self.net.sent += 1;
        let lost = self.entropy.below(1000) < u64::from(link.loss_permille);
        if self.trace {
            eprintln!(
                "{:>12?} {from:?} sends {:?}{}",
                self.now.since_epoch(),
                super::wire::Packet::decode(bytes).map(|p| p.kind()),
                if lost { " LOST" } else { "" }
            );
            if let Ok(super::wire::Packet::Data { seq, is_ping, .. }) =
                super::wire::Packet::decode(bytes)
            {
                eprintln!("             seq {seq} ping {is_ping}");
            } else if bytes.len() > 1 {
                eprintln!("             seq {}", bytes[1]);
            }
        }
        if lost {
            self.net.dropped += 1;
            return;
        }
        let copies = if self.entropy.below(1000) < u64::from(link.dup_permille) {
            self.net.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter_ns = u64::try_from(link.jitter.as_nanos()).unwrap_or(u64::MAX);
            let extra = Duration::from_nanos(self.entropy.below(jitter_ns.saturating_add(1)));
            let mut at = self.now + link.delay + extra;
            let slot = &mut self.last_arrival[to as usize];
            if link.fifo {
                at = at.max(*slot);
            }
            *slot = (*slot).max(at);
            self.order += 1;
            self.in_flight
                .push(Reverse((at, self.order, to, bytes.to_vec())));
        }
    }

    /// The next moment something happens: a packet arrives or a timer fires.
    pub fn next_event(&self) -> Option<Instant> {
        let arrival = self.in_flight.peek().map(|Reverse((t, ..))| *t);
        [
            arrival,
            self.client.poll_timeout(),
            self.server.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Flushes, advances the clock to the next event, and processes everything due then.
    /// Returns false when nothing is left to happen (both sides idle, network empty).
    pub fn step(&mut self) -> bool {
        self.flush();
        let Some(t) = self.next_event() else {
            return false;
        };
        self.now = self.now.max(t);
        let now = self.now;
        while let Some(Reverse((at, ..))) = self.in_flight.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, _, to, bytes))) = self.in_flight.pop() else {
                break;
            };
            self.net.delivered += 1;
            let _ = self.conn(to).handle_packet(now, &bytes);
        }
        for end in [End::Client, End::Server] {
            if self.conn(end).poll_timeout().is_some_and(|t| t <= now) {
                self.conn(end).handle_timeout(now);
            }
        }
        self.flush();
        true
    }

    /// Steps until both sides are connected (or `limit` of simulated time passes).
    pub fn connect(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        while !(self.client.is_connected() && self.server.is_connected()) {
            if self.client.is_closed() || self.server.is_closed() || self.now > end {
                return false;
            }
            if !self.step() {
                return false;
            }
        }
        true
    }
}

/// A test message: `index` (u32 LE) followed by bytes derived from the index, so the
/// receiver can check order, completeness and content without keeping a copy.
pub fn message(index: u32, len: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(len.max(4));
    m.extend_from_slice(&index.to_le_bytes());
    let mut r = SplitMix64::new(u64::from(index));
    while m.len() < len {
        m.push(r.next_u64() as u8);
    }
    m
}

/// Checks a received test message: returns its index if its content is intact.
pub fn check_message(m: &[u8]) -> Option<u32> {
    let index = u32::from_le_bytes(m.get(..4)?.try_into().ok()?);
    (message(index, m.len()) == m).then_some(index)
}
