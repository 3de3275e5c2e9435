//! Accounting of one proxied call for the node's metrics: in flight from its arrival until
//! its final gRPC status is known — in the response headers (a trailers-only answer, such as
//! the node's own refusals), in the trailers at the end of the body, or never (the app went
//! away first: counted as `CANCELLED`).
//!
//! The proxy never parses or buffers the call's messages; the body passes through frame by
//! frame and only the trailers are read.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::metrics::{NodeMetrics, code_name};
use crate::proxy::ProxyBody;
use crate::spend::Meter;
use crate::spend::store::AuditEntry;

/// One call in flight; counted as finished exactly once (on [`finish`](Self::finish) or
/// when dropped).
pub(crate) struct CallRecord {
    metrics: Arc<NodeMetrics>,
    method: String,
    /// The session's audit log, and the call's path as the log shows it.
    audit: Option<(Arc<Meter>, String)>,
    done: bool,
}

impl CallRecord {
    /// A call to `path` arrived.
    pub(crate) fn start(metrics: Arc<NodeMetrics>, path: &str, meter: Option<Arc<Meter>>) -> Self {
        metrics.calls_in_flight.inc();
        CallRecord {
            method: metrics.method_label(path),
            metrics,
            audit: meter.map(|m| (m, path.to_owned())),
            done: false,
        }
    }

    fn finish(&mut self, code: tonic::Code, detail: Option<String>) {
        if !self.done {
            self.done = true;
            self.metrics.calls_in_flight.dec();
            self.metrics
                .call_finished(std::mem::take(&mut self.method), code);
            if let Some((meter, path)) = self.audit.take() {
                meter.audit(AuditEntry {
                    at: crate::spend::meter::unix(std::time::SystemTime::now()),
                    method: path,
                    status: code_name(code).into(),
                    amount_msat: None,
                    fee_msat: None,
                    payment_hash: None,
                    detail,
                });
            }
        }
    }

    /// Follows `resp` to its final status: at once for a trailers-only answer, else as its
    /// body is read by the tunnel.
    pub(crate) fn observe(mut self, resp: http::Response<ProxyBody>) -> http::Response<ProxyBody> {
        if let Some(code) = status_of(resp.headers()) {
            // A trailers-only answer: the node's own refusals, whose reason goes to the log.
            let detail = (code != tonic::Code::Ok)
                .then(|| tonic::Status::from_header_map(resp.headers()))
                .flatten()
                .map(|s| s.message().chars().take(300).collect());
            self.finish(code, detail);
            return resp;
        }
        resp.map(|inner| {
            ProxyBody::new(Observed {
                inner,
                record: self,
            })
        })
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        // The app cancelled, or the tunnel closed, before the status arrived.
        self.finish(tonic::Code::Cancelled, None);
    }
}

fn status_of(headers: &HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .map(|v| tonic::Code::from_bytes(v.as_bytes()))
}

/// A response body that passes every frame through and reads the final status from the
/// trailers.
struct Observed {
    inner: ProxyBody,
    record: CallRecord,
}

impl Body for Observed {
    type Data = <ProxyBody as Body>::Data;
    type Error = <ProxyBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    self.record.finish(code, None);
                }
            }
            // The backend's stream broke (LND went away or reset the call).
            Poll::Ready(Some(Err(_))) => self.record.finish(tonic::Code::Unavailable, None),
            // Ended without a status: not a gRPC answer.
            Poll::Ready(None) => self.record.finish(tonic::Code::Unknown, None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt as _;

    fn count(m: &NodeMetrics, status: &str) -> bool {
        m.encode().contains(&format!(
            r#"lnc_node_calls_total{{method="/a.B/C",status="{status}"}} 1"#
        ))
    }

    #[tokio::test]
    async fn the_status_comes_from_the_trailers() {
        let m = Arc::new(NodeMetrics::default());
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "5".parse().unwrap());
        let body = http_body_util::StreamBody::new(futures_util::stream::iter([
            Ok::<_, tonic::Status>(Frame::data(bytes::Bytes::from_static(b"x"))),
            Ok(Frame::trailers(trailers)),
        ]));
        let resp = CallRecord::start(m.clone(), "/a.B/C", None)
            .observe(http::Response::new(ProxyBody::new(body)));
        assert_eq!(m.calls_in_flight.get(), 1);
        let collected = resp.into_body().collect().await.unwrap();
        assert!(collected.trailers().is_some(), "frames pass through");
        assert!(count(&m, "NOT_FOUND"), "{}", m.encode());
        assert_eq!(m.calls_in_flight.get(), 0);
    }

    #[tokio::test]
    async fn a_trailers_only_answer_counts_at_once_and_a_dropped_call_as_cancelled() {
        let m = Arc::new(NodeMetrics::default());
        let refusal = tonic::Status::permission_denied("no").into_http::<ProxyBody>();
        drop(CallRecord::start(m.clone(), "/a.B/C", None).observe(refusal));
        assert!(count(&m, "PERMISSION_DENIED"), "{}", m.encode());

        let m = Arc::new(NodeMetrics::default());
        let open =
            http::Response::new(ProxyBody::new(http_body_util::Empty::<bytes::Bytes>::new()));
        drop(CallRecord::start(m.clone(), "/a.B/C", None).observe(open));
        assert!(count(&m, "CANCELLED"), "{}", m.encode());
        assert_eq!(m.calls_in_flight.get(), 0);
    }
}
