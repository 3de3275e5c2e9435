//! What the app sees when LND (or an upstream daemon) goes away in the middle of a call:
//! the call ends with gRPC status `UNAVAILABLE` and a message naming the backend, in the
//! trailers of the response already under way. Without this, the proxy's HTTP/2 server
//! resets the stream, and all the app can tell its user is that "the connection to the
//! node dropped" — which sends them looking at the node, the relay and the network, while
//! the tunnel is fine and a retry works as soon as the backend is back.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};

use crate::proxy::ProxyBody;

/// A backend's response body whose failure becomes `UNAVAILABLE` trailers.
pub(crate) struct BackendBody {
    inner: ProxyBody,
    backend: Cow<'static, str>,
    ended: bool,
}

impl BackendBody {
    /// `inner` from `backend` ("LND", or the upstream daemon's service prefix).
    pub(crate) fn new(inner: ProxyBody, backend: impl Into<Cow<'static, str>>) -> Self {
        BackendBody {
            inner,
            backend: backend.into(),
            ended: false,
        }
    }
}

impl Body for BackendBody {
    type Data = <ProxyBody as Body>::Data;
    type Error = <ProxyBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                self.ended = true;
                // The transport's own words (h2, TLS) stay in the node's log: they would
                // send the app's user after the wrong part.
                tracing::info!(backend = %self.backend, error = %e, "a backend broke during a call");
                let status = tonic::Status::unavailable(format!(
                    "lnc node: the connection to {} broke during the call (it stopped or restarted); retry the call once it is back",
                    self.backend
                ));
                let mut trailers = http::HeaderMap::new();
                match status.add_header(&mut trailers) {
                    Ok(()) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
                    // A message that cannot be a header: reset the stream as before.
                    Err(_) => Poll::Ready(Some(Err(e))),
                }
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
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

    #[tokio::test]
    async fn a_broken_backend_stream_ends_with_unavailable_trailers() {
        let broken = http_body_util::StreamBody::new(futures_util::stream::iter([
            Ok::<_, tonic::Status>(Frame::data(bytes::Bytes::from_static(b"item"))),
            Err(tonic::Status::unknown("connection reset")),
        ]));
        let body = BackendBody::new(ProxyBody::new(broken), "LND");
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        assert_eq!(
            collected.to_bytes(),
            &b"item"[..],
            "data before the break passes"
        );
        let status = tonic::Status::from_header_map(&trailers).unwrap();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(
            status.message().contains("connection to LND broke"),
            "{status:?}"
        );
    }
}
