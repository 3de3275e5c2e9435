//! What the browser-facing front ends (`ws`, `rest`) share: their state, the JSON error
//! answer, CORS and the 404 fallback (HTTP plumbing).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lnc_hashmail::json;

use crate::config::{Limits, Timers};
use crate::error::RelayError;
use crate::grpc::HashMailService;
use crate::metrics::Metrics;
use crate::store::Store;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct App {
    pub(crate) service: HashMailService,
    pub(crate) store: Arc<Store>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Limits,
    pub(crate) timers: Timers,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

/// An HTTP error answer (a REST call, or a WebSocket upgrade refused before it happens):
/// the relay error's HTTP status and grpc-gateway's JSON body, counted as a rejection.
pub(crate) fn error_response(app: &App, e: RelayError) -> Response {
    app.metrics.reject(e.reason());
    http_error(&e)
}

/// A request refused before it reaches the router (per-IP connection or call limit),
/// answered in the client's protocol: a gRPC status for gRPC, else what
/// [`error_response`] answers. Counted as a rejection.
pub(crate) fn refusal<B>(metrics: &Metrics, req: &http::Request<B>, e: RelayError) -> Response {
    metrics.reject(e.reason());
    let is_grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if is_grpc {
        let status = tonic::Status::new(e.code(), e.to_string());
        let (parts, ()) = status.into_http::<()>().into_parts();
        Response::from_parts(parts, Body::empty())
    } else {
        http_error(&e)
    }
}

/// The one encoding of a relay error as an HTTP answer (the WebSocket error *frame*, sent
/// inside an open socket, is `ws`'s).
fn http_error(e: &RelayError) -> Response {
    (
        e.http_status(),
        [(header::CONTENT_TYPE, "application/json")],
        json::status_json(e.code() as i32, &e.to_string()),
    )
        .into_response()
}

/// Anything else: a gRPC-gateway-style 404.
pub async fn not_found(State(app): State<App>) -> Response {
    app.metrics.reject("no_route");
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        json::status_json(tonic::Code::NotFound as i32, "Not Found"),
    )
        .into_response()
}

/// CORS for browsers (the Go relay allows any origin): preflights are
/// answered here, every response gets `Access-Control-Allow-Origin: *`.
pub async fn cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.method() == Method::OPTIONS {
        let allow_headers = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or(HeaderValue::from_static("*"));
        let mut resp = Response::new(Body::empty());
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        return resp;
    }
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}
