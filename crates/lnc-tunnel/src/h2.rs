//! gRPC over the tunnel: HTTP/2 on the [`NoiseStream`] (transport.md §4).
//!
//! App side: [`TunnelChannel`], a tower `Service` over hyper's HTTP/2 client that any
//! tonic-generated client accepts, adding the `macaroon` metadata from the node's auth
//! data to every call. Node side: [`serve_http2`] runs hyper's HTTP/2 server for any tower
//! service (the node routes or proxies on it).
//!
//! Settings (CRATES.md): no locally-reset-stream queue (`max_concurrent_reset_streams(0)`:
//! h2 would read `std::time::Instant` there, which panics in the browser), no HTTP/2
//! keep-alive or adaptive window (GBN already pings), and large initial windows so a
//! slowly read stream of tiny messages does not trip h2's small-frame budget.

use crate::rt::{HyperExecutor, Runtime};
use crate::stream::NoiseStream;
use bytes::Bytes;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use std::error::Error as StdError;

/// Connection-level HTTP/2 flow-control window.
pub const CONNECTION_WINDOW: u32 = 16 << 20;
/// Per-stream HTTP/2 flow-control window.
pub const STREAM_WINDOW: u32 = 1 << 20;

/// A boxed error, as tower/tonic pass them around.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Extracts the hex macaroon from the node's auth data (`Macaroon: <hex>`, litd's format,
/// possibly one line among several). Returns the header value for the `macaroon`
/// metadata key, or `None` if the auth data carries no macaroon.
pub fn macaroon_from_auth_data(auth_data: &[u8]) -> Option<HeaderValue> {
    let text = core::str::from_utf8(auth_data).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if !k.trim().eq_ignore_ascii_case("macaroon") {
            return None;
        }
        let v = v.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        HeaderValue::from_str(v).ok()
    })
}

/// The error of a call through the tunnel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The HTTP/2 connection failed or ended (the tunnel dropped): retry once the tunnel
    /// is reconnected.
    #[error("lnc tunnel: HTTP/2 connection failed, retry after reconnecting: {0}")]
    Http(#[from] hyper::Error),
}

/// An HTTP/2 client connection over the tunnel as a tower `Service`, for tonic clients
/// (`FooClient::new(channel)`). Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct TunnelChannel {
    send: hyper::client::conn::http2::SendRequest<tonic::body::Body>,
    macaroon: Option<HeaderValue>,
}

impl TunnelChannel {
    /// Runs the HTTP/2 client handshake on `stream` and spawns the connection task.
    /// `macaroon` (see [`macaroon_from_auth_data`]) is added to every request.
    pub async fn connect<R: Runtime>(
        rt: &R,
        stream: NoiseStream,
        macaroon: Option<HeaderValue>,
    ) -> Result<Self, ChannelError> {
        let mut builder = hyper::client::conn::http2::Builder::new(HyperExecutor(rt.clone()));
        builder
            .max_concurrent_reset_streams(0)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .initial_stream_window_size(STREAM_WINDOW);
        let (send, conn) = builder.handshake(stream).await?;
        rt.spawn(Box::pin(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "tunnel HTTP/2 client connection ended");
            }
        }));
        Ok(TunnelChannel { send, macaroon })
    }

    /// Whether the HTTP/2 connection is closed (the tunnel is gone).
    pub fn is_closed(&self) -> bool {
        self.send.is_closed()
    }
}

impl tower::Service<Request<tonic::body::Body>> for TunnelChannel {
    type Response = Response<Incoming>;
    type Error = ChannelError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Incoming>, ChannelError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ChannelError>> {
        self.send.poll_ready(cx).map_err(ChannelError::from)
    }

    fn call(&mut self, mut req: Request<tonic::body::Body>) -> Self::Future {
        // h2 needs :scheme and :authority; tonic clients built with `new` send only a path.
        let uri = req.uri();
        if uri.scheme().is_none() || uri.authority().is_none() {
            let pq = uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned());
            if let Ok(u) = Uri::builder()
                .scheme("http")
                .authority("lnc")
                .path_and_query(pq)
                .build()
            {
                *req.uri_mut() = u;
            }
        }
        if let Some(m) = &self.macaroon {
            req.headers_mut().insert("macaroon", m.clone());
        }
        let fut = self.send.send_request(req);
        Box::pin(async move { Ok(fut.await?) })
    }
}

/// What a node serves through a tunnel: an HTTP service that hyper can drive on the
/// tunnel's runtime. Named once so that everything that hands a service down to
/// [`serve_http2`] says one bound instead of six.
pub trait TunnelService:
    tower::Service<
        Request<Incoming>,
        Response = Response<Self::ResBody>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
    /// The response body.
    type ResBody: hyper::body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> TunnelService for S
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type ResBody = B;
}

/// Serves HTTP/2 on `stream` with `service` until the connection ends (the app closed
/// it or the tunnel dropped).
pub async fn serve_http2<R: Runtime, S: TunnelService>(
    rt: &R,
    stream: NoiseStream,
    service: S,
) -> Result<(), hyper::Error> {
    let mut builder = hyper::server::conn::http2::Builder::new(HyperExecutor(rt.clone()));
    builder
        .initial_connection_window_size(CONNECTION_WINDOW)
        .initial_stream_window_size(STREAM_WINDOW)
        .auto_date_header(false);
    builder
        .serve_connection(stream, TowerToHyper(service))
        .await
}

struct TowerToHyper<S>(S);

impl<S, B> hyper::service::Service<Request<Incoming>> for TowerToHyper<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(tower::ServiceExt::oneshot(svc, req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macaroon_header_from_auth_data() {
        assert_eq!(
            macaroon_from_auth_data(b"Macaroon: 0201abcd").unwrap(),
            "0201abcd"
        );
        assert_eq!(
            macaroon_from_auth_data(b"Other: x\r\nmacaroon: 02ff").unwrap(),
            "02ff"
        );
        assert!(macaroon_from_auth_data(b"Macaroon: not hex").is_none());
        assert!(macaroon_from_auth_data(&[0xff, 0xfe]).is_none());
        assert!(macaroon_from_auth_data(b"").is_none());
    }
}
