//! The operator's endpoints: readiness (`/healthz`, `/readyz`, on the public and the
//! metrics listener) and the Prometheus text on the metrics listener.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::metrics::Metrics;
use crate::store::Store;
use crate::web::App;

/// Readiness path for load balancers (on the public and metrics listeners).
pub const HEALTH_PATH: &str = "/healthz";
/// Alias of [`HEALTH_PATH`] (Kubernetes naming).
pub const READY_PATH: &str = "/readyz";

/// 200 `ok <backend>` while the store can serve, else 503: a load balancer
/// then routes new clients to instances that can reach Redis.
pub(crate) async fn health(State(app): State<App>) -> Response {
    let backend = app.store.backend_name();
    if app.store.healthy() {
        (http::StatusCode::OK, format!("ok {backend}\n")).into_response()
    } else {
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            format!("unavailable: {backend} store not reachable\n"),
        )
            .into_response()
    }
}

/// The metrics listener's routes: readiness and `/metrics`.
pub(crate) fn router(app: App) -> Router {
    let (store, metrics) = (app.store.clone(), app.metrics.clone());
    Router::new()
        .route(HEALTH_PATH, axum::routing::get(health))
        .route(READY_PATH, axum::routing::get(health))
        .with_state(app)
        .route(
            "/metrics",
            axum::routing::get(move || {
                let body = render_metrics(&store, &metrics);
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
}

/// The text exposition, with the store's gauges read at scrape time.
pub(crate) fn render_metrics(store: &Store, metrics: &Metrics) -> String {
    let s = store.stats();
    metrics
        .sessions
        .get_or_create(&vec![("state", "active")])
        .set(s.active as i64);
    metrics
        .sessions
        .get_or_create(&vec![("state", "idle")])
        .set((s.readers - s.active) as i64);
    metrics.queued_bytes.set(s.queued_bytes as i64);
    metrics.reserved_bytes.set(store.budget().reserved() as i64);
    metrics.encode()
}
