//! Relay configuration: listen addresses, TLS mode, limits and timers.
//!
//! Every limit exists because a peer could otherwise grow the relay's memory or
//! CPU without bound (the Go relay has none of them). Defaults are chosen so a
//! normal LNC session never meets one; see BENCHMARKS.md for how they were tuned.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// How the public listener speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP/1.1 + h2c: only behind a TLS-terminating proxy (browsers and
    /// Go clients always dial `wss://`/TLS).
    Insecure,
    /// Self-signed certificate generated on first start and kept in `data_dir`
    /// (`tls.cert`/`tls.key`), so its fingerprint stays stable across restarts.
    SelfSigned {
        /// Extra DNS names / IPs for the certificate (besides localhost).
        hosts: Vec<String>,
    },
    /// A real certificate chain and key (PEM files).
    Files {
        /// Certificate chain, PEM.
        cert: PathBuf,
        /// Private key, PEM (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

/// Limits a peer cannot exceed. Exceeding one gets RESOURCE_EXHAUSTED (or the
/// WebSocket error frame with code 8) naming the limit.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest message (one go-back-N packet). LNC packets are ≤ ~32 KiB; the
    /// browser client refuses frames over 100 KiB anyway.
    pub max_message_bytes: usize,
    /// Messages queued per stream before the writer is held back.
    pub max_queue_messages: usize,
    /// Bytes queued per stream before the writer is held back.
    pub max_queue_bytes: usize,
    /// Live mailboxes in total (each LNC session uses 2).
    pub max_streams: usize,
    /// Live mailboxes created from one client IP.
    pub max_streams_per_ip: usize,
    /// Open TCP connections from one client IP (trusted proxies are exempt).
    pub max_connections_per_ip: usize,
    /// Sustained messages per second per stream (token bucket refill).
    pub stream_rate_per_sec: f64,
    /// Token bucket size: messages a stream may send in a burst.
    pub stream_burst: u32,
    /// The relay's memory budget: bytes queued relay-wide (in every mailbox, waiting for
    /// readers) plus a fixed reservation per call in flight (16 KiB) and per open
    /// connection (64 KiB). Writers are held back and new calls and connections refused
    /// when it is spent. `None`: a quarter of the machine's memory.
    pub queue_budget_bytes: Option<usize>,
    /// One IP's share of the budget: its queued messages, calls and connections together.
    /// Its writers are held back, and its new calls and connections refused, at the share.
    /// `None`: 64 MiB (at most the budget): its calls and connections at the count limits
    /// reserve ≈ 48 MiB, a node's hundreds of sessions queue a few KB each.
    pub queue_budget_per_ip_bytes: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 128 * 1024,
            max_queue_messages: 64,
            max_queue_bytes: 2 * 1024 * 1024,
            max_streams: 200_000,
            max_streams_per_ip: 1_000,
            max_connections_per_ip: 256,
            stream_rate_per_sec: 1_000.0,
            stream_burst: 2_000,
            queue_budget_bytes: None,
            queue_budget_per_ip_bytes: None,
        }
    }
}

impl Limits {
    /// Calls in flight from one IP: a reader and a writer for each mailbox it may create,
    /// plus room for its control calls. Not a setting of its own: it follows
    /// `max_streams_per_ip`, whoever created the mailboxes it reads and writes.
    pub fn max_calls_per_ip(&self) -> usize {
        self.max_streams_per_ip.saturating_mul(2).saturating_add(64)
    }

    /// The relay-wide queue budget in force (see [`Limits::queue_budget_bytes`]).
    pub fn queue_budget(&self) -> usize {
        self.queue_budget_bytes
            .unwrap_or_else(crate::budget::default_queue_budget)
    }

    /// One IP's share in force (see [`Limits::queue_budget_per_ip_bytes`]).
    pub fn queue_budget_per_ip(&self, budget: usize) -> usize {
        self.queue_budget_per_ip_bytes
            .unwrap_or(64 << 20)
            .min(budget)
    }
}

/// Timers. Tests shorten them; production keeps the defaults.
#[derive(Clone, Debug)]
pub struct Timers {
    /// How long a second reader/writer waits for the side to free up before it
    /// gets `read/write stream occupied` (250 ms, as the Go relay: a client that
    /// reconnects quickly must not lose to its own dying previous stream).
    pub occupied_wait: Duration,
    /// A mailbox with neither reader nor writer for this long is deleted.
    /// `None` disables the GC (mailboxes live until deleted).
    pub idle_timeout: Option<Duration>,
    /// How often the GC looks for idle mailboxes.
    pub gc_interval: Duration,
    /// WebSocket ping interval; a socket not answering within another interval is
    /// closed. `None` disables pings.
    pub ws_ping_interval: Option<Duration>,
    /// Time a new WebSocket has to send its first frame, and a new connection
    /// to finish TLS and send its first request.
    pub handshake_timeout: Duration,
    /// A connection with no request in flight for this long is closed (its client
    /// reconnects when it has something to ask). `None` keeps such connections open.
    pub connection_idle: Option<Duration>,
    /// On shutdown, how long connections get to finish before they are cut.
    pub shutdown_grace: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            occupied_wait: Duration::from_millis(250),
            idle_timeout: Some(Duration::from_secs(3600)),
            gc_interval: Duration::from_secs(60),
            ws_ping_interval: Some(Duration::from_secs(30)),
            handshake_timeout: Duration::from_secs(10),
            connection_idle: Some(Duration::from_secs(120)),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Public listener (gRPC + WebSocket + REST on one port).
    pub listen: SocketAddr,
    /// Prometheus `/metrics` listener; `None` disables it. Loopback by default
    /// because metrics reveal traffic patterns.
    pub metrics_listen: Option<SocketAddr>,
    /// TLS mode of the public listener.
    pub tls: TlsMode,
    /// Directory for the generated certificate.
    pub data_dir: PathBuf,
    /// Bearer tokens allowed to create/delete mailboxes; `None` = anyone may
    /// (compatible with unmodified Go nodes).
    pub create_tokens: Option<Vec<String>>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Limits.
    pub limits: Limits,
    /// Timers.
    pub timers: Timers,
    /// Keep mailboxes in this Redis (shared by every instance pointed at it)
    /// instead of in memory. `None` = in memory, one instance.
    pub redis: Option<RedisConfig>,
}

/// The shared store of a scaled-out relay: every instance with the same
/// `url` and `prefix` serves the same mailboxes.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://[user:pass@]HOST:PORT[/DB]` (a single Redis or a Sentinel-
    /// managed primary; Redis Cluster is not supported: the scripts touch
    /// keys of several streams).
    pub url: String,
    /// How long a reader/writer hold lives without renewal. An instance
    /// renews its holds every third of this; a crashed instance's holds lapse
    /// after at most this long, and then its clients can attach elsewhere.
    pub lease_ttl: Duration,
    /// Prefix of every key and channel (to share a Redis with other data).
    pub prefix: String,
    /// Timeout of one Redis command; a slower answer counts as unavailable.
    pub command_timeout: Duration,
}

impl RedisConfig {
    /// Defaults for `url`: 3 s leases, prefix `lnc:`, 2 s command timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            lease_ttl: Duration::from_secs(3),
            prefix: "lnc:".into(),
            command_timeout: Duration::from_secs(2),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9091))),
            tls: TlsMode::SelfSigned { hosts: Vec::new() },
            data_dir: PathBuf::from("."),
            create_tokens: None,
            trusted_proxies: Vec::new(),
            limits: Limits::default(),
            timers: Timers::default(),
            redis: None,
        }
    }
}

impl Config {
    /// A relay on `127.0.0.1`, a free port, plaintext, no metrics listener: what the demo
    /// and the tests run in one process (never reachable from another machine).
    pub fn loopback_insecure() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: None,
            tls: TlsMode::Insecure,
            ..Self::default()
        }
    }
}

/// Reads a token file: one token per line, blank lines and `#` comments ignored.
pub fn parse_token_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_file_skips_comments() {
        assert_eq!(parse_token_file("# c\n\n a \nb\n"), vec!["a", "b"]);
    }

    #[test]
    fn limits_from_toml_fragment() {
        let l: Limits = serde_json::from_str(r#"{"max_streams": 5}"#).unwrap();
        assert_eq!(l.max_streams, 5);
        assert_eq!(l.max_message_bytes, 128 * 1024);
    }
}
