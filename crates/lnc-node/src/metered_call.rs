//! The proxy's path for a budget session's payment: read the request's one message, let
//! the meter reserve what it commits to, forward it, and read the result as it streams
//! back to settle or release the reservation.
//!
//! The bytes pass through unchanged; the decoders only look (bounded: a request is read up
//! to [`MAX_REQUEST`], a result message up to [`MAX_RESULT`]). A call that ends without a
//! final payment state is resolved with LND (`TrackPaymentV2`) in the background, so an
//! app that closes the stream early, a cut tunnel or a node restart never loses a spend.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tonic::transport::Channel;
use tower::ServiceExt as _;

use crate::backend_body::BackendBody;
use crate::spend::amount::{Outcome, commitment, outcome};
use crate::spend::frames::{Decoded, FrameDecoder};
use crate::spend::meter::{Meter, StreamPermit};
use crate::spend::policy::PaymentRpc;

type ProxyBody = tonic::body::Body;

/// Largest payment request the node reads (invoices and routes fit many times over).
pub const MAX_REQUEST: usize = 64 * 1024;
/// Largest payment result the node reads (a payment with many HTLC attempts).
pub const MAX_RESULT: usize = 4 * 1024 * 1024;

fn refuse(status: tonic::Status) -> Response<ProxyBody> {
    status.into_http()
}

const ONE_PAYMENT: &str =
    "lnc node: budget sessions send one payment per call; open a new call for the next payment";

/// Reserves, forwards and follows one payment call.
pub(crate) async fn forward_payment(
    meter: Arc<Meter>,
    rpc: PaymentRpc,
    path: String,
    parts: http::request::Parts,
    mut body: Incoming,
    channel: Channel,
    permit: Option<StreamPermit>,
) -> Response<ProxyBody> {
    let mut decoder = FrameDecoder::new(MAX_REQUEST);
    let mut raw = Vec::new();
    let first = loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    return refuse(tonic::Status::invalid_argument(
                        "lnc node: the payment call ended before its request",
                    ));
                };
                raw.extend_from_slice(&data);
                let mut found = decoder.push(&data).into_iter();
                match found.next() {
                    None => continue,
                    Some(Decoded::Skipped) => {
                        return refuse(tonic::Status::invalid_argument(format!(
                            "lnc node: a payment request may be at most {MAX_REQUEST} bytes, uncompressed"
                        )));
                    }
                    Some(Decoded::Message(m)) => {
                        if found.next().is_some() || decoder.buffered() > 0 {
                            return refuse(tonic::Status::invalid_argument(ONE_PAYMENT));
                        }
                        break m;
                    }
                }
            }
            Some(Err(_)) | None => {
                return refuse(tonic::Status::cancelled(
                    "lnc node: the payment call ended before its request",
                ));
            }
        }
    };
    let c = match commitment(rpc, &first) {
        Ok(c) => c,
        Err(e) => return refuse(tonic::Status::invalid_argument(format!("lnc node: {e}"))),
    };
    if let Err(e) = meter.reserve(&c, &path).await {
        tracing::info!(session = %meter.id(), method = %path, "payment refused by the session's budget");
        return refuse(e.status());
    }
    tracing::debug!(session = %meter.id(), method = %path, "payment reserved");
    let hash = c.hash_hex();
    let req = Request::from_parts(
        parts,
        ProxyBody::new(OneMessage {
            first: Some(Bytes::from(raw)),
            rest: body,
        }),
    );
    let follow = Follow {
        meter,
        rpc,
        hash,
        method: path,
        done: false,
        refused: false,
    };
    match channel.oneshot(req).await {
        Ok(resp) => {
            let mut follow = follow;
            follow.refused_up_front(resp.headers());
            resp.map(|b| {
                ProxyBody::new(Settling {
                    inner: ProxyBody::new(BackendBody::new(b, std::borrow::Cow::Borrowed("LND"))),
                    decoder: FrameDecoder::new(MAX_RESULT),
                    follow,
                    pending: None,
                    _permit: permit,
                })
            })
        }
        // Whether LND saw it is unknown: the reconciler asks (Drop of `follow`).
        Err(e) => refuse(tonic::Status::unavailable(format!(
            "lnc node: LND is unreachable: {e}"
        ))),
    }
}

/// The request body: the message already read, then nothing more (one payment per call).
struct OneMessage {
    first: Option<Bytes>,
    rest: Incoming,
}

impl Body for OneMessage {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match ready!(Pin::new(&mut self.rest).poll_frame(cx)) {
            Some(Ok(f)) if f.data_ref().is_some_and(|d| !d.is_empty()) => {
                Poll::Ready(Some(Err(ONE_PAYMENT.into())))
            }
            Some(Ok(f)) => Poll::Ready(Some(Ok(f))),
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }
}

/// What is known about the payment as its result streams back.
struct Follow {
    meter: Arc<Meter>,
    rpc: PaymentRpc,
    hash: String,
    method: String,
    /// The final state was seen (settled or released).
    done: bool,
    /// LND refused the call up front (an error status and no message): nothing was sent.
    refused: bool,
}

impl Follow {
    /// LND's refusals that mean the payment never started (a bad or paid invoice, …), as
    /// opposed to transport trouble, after which the payment may be in flight.
    fn refused_up_front(&mut self, headers: &http::HeaderMap) {
        let Some(code) = headers
            .get("grpc-status")
            .map(|v| tonic::Code::from_bytes(v.as_bytes()))
        else {
            return;
        };
        use tonic::Code::*;
        self.refused = !matches!(
            code,
            Ok | Cancelled | Unknown | DeadlineExceeded | Internal | Unavailable | DataLoss
        );
    }

    fn finish(&mut self, o: Outcome) -> Recording {
        self.done = true;
        let (meter, hash, method) = (self.meter.clone(), self.hash.clone(), self.method.clone());
        Box::pin(async move { meter.finish(&hash, &method, &o).await })
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.refused {
            let (meter, hash, method) =
                (self.meter.clone(), self.hash.clone(), self.method.clone());
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { meter.finish(&hash, &method, &Outcome::Failed).await });
            }
            return;
        }
        self.meter.reconcile(
            std::mem::take(&mut self.hash),
            std::mem::take(&mut self.method),
        );
    }
}

/// The ledger recording a payment's outcome.
type Recording = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The response body of a payment call: passes every frame through, and holds back the
/// frame that carries the final state until the ledger has recorded it, so an app that
/// pays again on seeing a failure finds the budget already released.
struct Settling {
    inner: ProxyBody,
    decoder: FrameDecoder,
    follow: Follow,
    pending: Option<(Frame<Bytes>, Recording)>,
    _permit: Option<StreamPermit>,
}

impl Body for Settling {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        if let Some((_, fut)) = this.pending.as_mut() {
            ready!(fut.as_mut().poll(cx));
            if let Some((frame, _)) = this.pending.take() {
                return Poll::Ready(Some(Ok(frame)));
            }
        }
        let polled = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        let frame = match polled {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        if this.follow.done {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(data) = frame.data_ref() {
            for d in this.decoder.push(data) {
                let Decoded::Message(m) = d else { continue };
                match outcome(this.follow.rpc, &m) {
                    Ok((Outcome::Pending, _)) | Err(_) => {}
                    Ok((o, _)) => {
                        let mut fut = this.follow.finish(o);
                        if fut.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        this.pending = Some((frame, fut));
                        return Poll::Pending;
                    }
                }
            }
        } else if let Some(t) = frame.trailers_ref() {
            let mut probe = http::HeaderMap::new();
            if let Some(v) = t.get("grpc-status") {
                probe.insert("grpc-status", v.clone());
            }
            this.follow.refused_up_front(&probe);
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body holding a stream-cap permit until the call ends.
pub(crate) struct Permitted<B> {
    inner: B,
    _permit: StreamPermit,
}

impl<B> Permitted<B> {
    pub(crate) fn new(inner: B, permit: StreamPermit) -> Self {
        Permitted {
            inner,
            _permit: permit,
        }
    }
}

impl<B: Body + Unpin> Body for Permitted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
