//! `lncnode.Budget`: the node's own read-only service, reached through the tunnel like
//! LND's, so an app can ask what it may still spend before it tries.
//!
//! `Remaining` takes an empty message and answers [`RemainingResponse`]; a session without
//! a budget gets `NOT_FOUND`. The messages are declared here with prost (field numbers are
//! the wire contract; `docs/ARCHITECTURE.md` lists them for other languages).

use http::Response;

use super::frames::frame;
use super::ledger::Remaining;
use tonic::body::Body as ProxyBody;

/// `/lncnode.Budget/Remaining`.
pub const REMAINING_PATH: &str = "/lncnode.Budget/Remaining";

/// The answer to `Remaining`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemainingResponse {
    /// The budget per period, msat.
    #[prost(uint64, tag = "1")]
    pub limit_msat: u64,
    /// `total`, `day`, `week` or `month`.
    #[prost(string, tag = "2")]
    pub period: String,
    /// Settled in the current period, msat.
    #[prost(uint64, tag = "3")]
    pub spent_msat: u64,
    /// Reserved by payments in flight, msat.
    #[prost(uint64, tag = "4")]
    pub reserved_msat: u64,
    /// Left to spend now, msat.
    #[prost(uint64, tag = "5")]
    pub left_msat: u64,
    /// When more budget comes back, Unix seconds (0: never, or nothing spent yet).
    #[prost(uint64, tag = "6")]
    pub resets_at: u64,
    /// Most one payment may commit (amount + fee limit), msat (0: no cap).
    #[prost(uint64, tag = "7")]
    pub max_payment_msat: u64,
}

impl From<&Remaining> for RemainingResponse {
    fn from(r: &Remaining) -> Self {
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
}

/// The gRPC answer (a message, then `grpc-status: 0` in the trailers).
pub fn answer(r: &Remaining) -> Response<ProxyBody> {
    use prost::Message as _;
    let msg = RemainingResponse::from(r).encode_to_vec();
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
