//! `lncnode.Budget`: the node's own read-only service, reached through the tunnel like
//! LND's, so an app can ask what it may still spend before it tries.
//!
//! `Remaining` takes an empty message and answers [`RemainingResponse`]; a session without
//! a budget gets `NOT_FOUND`. The messages (prost types and their descriptor, so apps can
//! call the method by name) live in `lnd_api::lncnode`.

use http::Response;

use super::frames::frame;
use super::ledger::Remaining;
use tonic::body::Body as ProxyBody;

pub use lnd_api::lncnode::{REMAINING_PATH, RemainingResponse};

fn response(r: &Remaining) -> RemainingResponse {
    RemainingResponse {
        limit_msat: r.budget.limit_msat,
        period: r.budget.period.name().into(),
        spent_msat: r.spent_msat,
        reserved_msat: r.reserved_msat,
        left_msat: r.left_msat,
        resets_at: r.resets_at.unwrap_or(0),
        max_payment_msat: r.budget.max_payment_msat.unwrap_or(0),
    }
}

/// The gRPC answer (a message, then `grpc-status: 0` in the trailers).
pub fn answer(r: &Remaining) -> Response<ProxyBody> {
    use prost::Message as _;
    let msg = response(r).encode_to_vec();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let frames = futures_util::stream::iter([
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(frame(&msg))),
        Ok(http_body::Frame::trailers(trailers)),
    ]);
    let mut resp = Response::new(ProxyBody::new(http_body_util::StreamBody::new(frames)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    resp
}
