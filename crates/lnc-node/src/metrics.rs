//! The node's Prometheus metrics: what an operator of `lnc node` alerts on — sessions by
//! state, connected apps, proxied calls by method and status, handshake failures by kind,
//! the proxy's latency. No label carries a session ID, a key or a message.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Distinct method labels kept; a paired app chooses the paths it calls, so the label set
/// is bounded or one app could grow the node's memory and every scrape without limit.
/// LND's whole API is about 250 methods.
pub const MAX_METHOD_LABELS: usize = 512;
/// The method label of calls beyond [`MAX_METHOD_LABELS`].
pub const OTHER_METHOD: &str = "other";

/// All of the node's metrics (atomics on the call path; gauges of the store are read at
/// scrape time).
pub struct NodeMetrics {
    registry: Registry,
    /// Sessions by `state` (created, in use, revoked, expired), set at scrape time.
    pub sessions: Family<Labels, Gauge>,
    /// Sessions being served (a listener on the mailbox), set at scrape time.
    pub live_sessions: Gauge,
    /// Sessions with an app connected now, set at scrape time.
    pub connected_apps: Gauge,
    /// Finished calls by `method` and gRPC `status`.
    pub calls: Family<Labels, Counter>,
    /// Calls in flight (a stream counts until it ends).
    pub calls_in_flight: Gauge,
    /// Time from a call's arrival at the node to its backend's response headers, seconds.
    pub proxy_latency: Histogram,
    /// Failed tunnel handshakes by `reason` (connection, malformed, noise, timeout, …).
    pub handshake_failures: Family<Labels, Counter>,
    /// Pairing attempts that used up a guess at a phrase, by `kind` (rejected, stalled).
    pub pairing_failures: Family<Labels, Counter>,
    methods: Mutex<HashSet<String>>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("lnc_node");
        let m = NodeMetrics {
            registry: Registry::default(),
            sessions: Family::default(),
            live_sessions: Gauge::default(),
            connected_apps: Gauge::default(),
            calls: Family::default(),
            calls_in_flight: Gauge::default(),
            // 100 µs .. ~3.3 s.
            proxy_latency: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            handshake_failures: Family::default(),
            pairing_failures: Family::default(),
            methods: Mutex::new(HashSet::new()),
        };
        registry.register("sessions", "Sessions by state", m.sessions.clone());
        registry.register(
            "live_sessions",
            "Sessions being served on their mailbox",
            m.live_sessions.clone(),
        );
        registry.register(
            "connected_apps",
            "Sessions with an app connected now",
            m.connected_apps.clone(),
        );
        registry.register(
            "calls",
            "Proxied gRPC calls by method and final status",
            m.calls.clone(),
        );
        registry.register(
            "calls_in_flight",
            "Proxied calls and streams not yet finished",
            m.calls_in_flight.clone(),
        );
        registry.register(
            "proxy_latency_seconds",
            "Time from a call's arrival to the backend's response headers",
            m.proxy_latency.clone(),
        );
        registry.register(
            "handshake_failures",
            "Failed tunnel handshakes by reason",
            m.handshake_failures.clone(),
        );
        registry.register(
            "pairing_failures",
            "Pairing attempts that used up a guess at a phrase, by kind",
            m.pairing_failures.clone(),
        );
        NodeMetrics { registry, ..m }
    }
}

impl NodeMetrics {
    /// The label for `path`: itself (escaped) while fewer than [`MAX_METHOD_LABELS`]
    /// distinct paths were seen, else [`OTHER_METHOD`].
    pub fn method_label(&self, path: &str) -> String {
        let label = escape_label_value(path);
        let mut seen = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&label) {
            return label;
        }
        if seen.len() < MAX_METHOD_LABELS {
            seen.insert(label.clone());
            return label;
        }
        OTHER_METHOD.to_owned()
    }

    /// Counts one finished call.
    pub fn call_finished(&self, method: String, code: tonic::Code) {
        self.calls
            .get_or_create(&vec![
                ("method", method),
                ("status", code_name(code).into()),
            ])
            .inc();
    }

    /// Counts one failed handshake.
    pub fn handshake_failed(&self, reason: &'static str) {
        self.handshake_failures
            .get_or_create(&vec![("reason", reason.into())])
            .inc();
    }

    /// Counts one failed pairing attempt.
    pub fn pairing_failed(&self, kind: &'static str) {
        self.pairing_failures
            .get_or_create(&vec![("kind", kind.into())])
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

/// `s` escaped as an OpenMetrics label value (`\\`, `\"`, `\n`). prometheus-client writes
/// label values as they are, and a call's path is the app's choice: HTTP/2 paths may hold
/// `"` and `\`, and one such call would otherwise make every later scrape unparseable.
fn escape_label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// gRPC's canonical code names (as grpc-go and the gRPC docs spell them), stable labels.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn method_labels_are_bounded() {
        let m = NodeMetrics::default();
        for i in 0..MAX_METHOD_LABELS {
            assert_eq!(m.method_label(&format!("/a.B/M{i}")), format!("/a.B/M{i}"));
        }
        assert_eq!(m.method_label("/a.B/new"), OTHER_METHOD);
        assert_eq!(
            m.method_label("/a.B/M0"),
            "/a.B/M0",
            "known paths keep their label"
        );
    }

    #[test]
    fn method_labels_are_escaped() {
        let m = NodeMetrics::default();
        let label = m.method_label("/a\"b\\c/d\n");
        assert_eq!(label, r#"/a\"b\\c/d\n"#);
        m.call_finished(label, tonic::Code::Ok);
        assert!(
            m.encode()
                .contains(r#"lnc_node_calls_total{method="/a\"b\\c/d\n",status="OK"} 1"#)
        );
    }

    #[test]
    fn a_finished_call_is_counted_by_method_and_status() {
        let m = NodeMetrics::default();
        m.call_finished("/lnrpc.Lightning/GetInfo".into(), tonic::Code::Ok);
        let text = m.encode();
        assert!(
            text.contains(
                r#"lnc_node_calls_total{method="/lnrpc.Lightning/GetInfo",status="OK"} 1"#
            ),
            "{text}"
        );
    }
}
