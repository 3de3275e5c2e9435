//! Prometheus metrics of the relay, served on a separate (loopback by default)
//! listener. Counters never include stream ids or message contents.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// All relay metrics (cheap atomics on the hot path).
pub struct Metrics {
    registry: Registry,
    /// Live mailboxes.
    pub mailboxes: Gauge,
    /// Mailboxes with a reader, by `state` = active (a message in the last
    /// 10 s) or idle; computed at scrape time.
    pub sessions: Family<Labels, Gauge>,
    /// Messages handed to readers.
    pub messages: Counter,
    /// Message bytes handed to readers.
    pub bytes: Counter,
    /// Refused requests by `reason`.
    pub rejections: Family<Labels, Counter>,
    /// Accepted TCP connections by `transport` (tls, plain).
    pub connections: Family<Labels, Counter>,
    /// Currently attached readers/writers by `transport` (grpc, ws) and `side`.
    pub attached: Family<Labels, Gauge>,
    /// Writers held back because a queue was full (back-pressure events).
    pub backpressure: Counter,
    /// Messages delayed by the per-stream rate limit.
    pub rate_limited: Counter,
    /// Bytes queued relay-wide (memory backend), against `queue_budget_bytes`.
    pub queued_bytes: Gauge,
    /// Bytes reserved relay-wide for calls in flight and open connections, against the
    /// same budget as the queued bytes.
    pub reserved_bytes: Gauge,
    /// The relay-wide memory budget.
    pub queue_budget_bytes: Gauge,
    /// One IP's share of it.
    pub queue_budget_per_ip_bytes: Gauge,
    /// Times a writer was held back by the queue budget (its IP's share or the relay's).
    pub budget_held: Family<Labels, Counter>,
    /// Redis backend: round-trip time of each command/script, seconds.
    pub redis_latency: Histogram,
    /// Redis backend: commands that failed (unreachable, timeout, error reply).
    pub redis_errors: Counter,
    /// Redis backend: 1 while the last health check reached Redis (readiness).
    pub redis_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("lnc_mailbox");
        let m = Metrics {
            registry: Registry::default(),
            mailboxes: Gauge::default(),
            sessions: Family::default(),
            messages: Counter::default(),
            bytes: Counter::default(),
            rejections: Family::default(),
            connections: Family::default(),
            attached: Family::default(),
            backpressure: Counter::default(),
            rate_limited: Counter::default(),
            queued_bytes: Gauge::default(),
            reserved_bytes: Gauge::default(),
            queue_budget_bytes: Gauge::default(),
            queue_budget_per_ip_bytes: Gauge::default(),
            budget_held: Family::default(),
            // 50 µs .. ~1.6 s.
            redis_latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            redis_errors: Counter::default(),
            redis_up: Gauge::default(),
        };
        registry.register("mailboxes", "Live mailboxes", m.mailboxes.clone());
        registry.register(
            "sessions",
            "Mailboxes with a reader attached, by activity in the last 10 s",
            m.sessions.clone(),
        );
        registry.register(
            "messages_relayed",
            "Messages delivered to readers",
            m.messages.clone(),
        );
        registry.register(
            "bytes_relayed",
            "Message bytes delivered to readers",
            m.bytes.clone(),
        );
        registry.register(
            "rejections",
            "Refused requests by reason",
            m.rejections.clone(),
        );
        registry.register(
            "connections",
            "Accepted connections by transport",
            m.connections.clone(),
        );
        registry.register(
            "attached",
            "Attached readers and writers by transport and side",
            m.attached.clone(),
        );
        registry.register(
            "writer_backpressure",
            "Times a writer was held back by a full queue",
            m.backpressure.clone(),
        );
        registry.register(
            "rate_limited",
            "Messages delayed by the per-stream rate limit",
            m.rate_limited.clone(),
        );
        registry.register(
            "queued_bytes",
            "Message bytes waiting for readers, relay-wide (memory backend)",
            m.queued_bytes.clone(),
        );
        registry.register(
            "reserved_bytes",
            "Bytes of the memory budget reserved for calls in flight and open connections",
            m.reserved_bytes.clone(),
        );
        registry.register(
            "queue_budget_bytes",
            "The relay-wide memory budget (queued bytes, calls, connections)",
            m.queue_budget_bytes.clone(),
        );
        registry.register(
            "queue_budget_per_ip_bytes",
            "One IP's share of the memory budget (its queued bytes, calls and connections)",
            m.queue_budget_per_ip_bytes.clone(),
        );
        registry.register(
            "budget_held",
            "Times a writer was held back by the queue budget, by which cap (ip_share, relay)",
            m.budget_held.clone(),
        );
        registry.register(
            "redis_roundtrip_seconds",
            "Round-trip time of Redis commands (Redis backend only)",
            m.redis_latency.clone(),
        );
        registry.register(
            "redis_errors",
            "Failed Redis commands (Redis backend only)",
            m.redis_errors.clone(),
        );
        registry.register(
            "redis_up",
            "1 while Redis answers health checks (Redis backend only)",
            m.redis_up.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts one refusal.
    pub fn reject(&self, reason: &'static str) {
        self.rejections
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
