//! The operator's endpoints of `lnc node`, on their own listener (loopback by default, as
//! the relay's): `/healthz` (and `/readyz`) for supervisors and load balancers, and the
//! Prometheus text at `/metrics`. Separate from the admin API, which needs its token, and
//! from every tunnel: nothing here changes state or shows a secret.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use lnd_api::lnrpc;

use crate::node::{Node, NodeError};
use crate::session::SessionState;

/// Readiness path.
pub const HEALTH_PATH: &str = "/healthz";
/// Alias of [`HEALTH_PATH`] (Kubernetes naming).
pub const READY_PATH: &str = "/readyz";
/// Longest wait for LND's answer to the health check's GetInfo.
const LND_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The running listener.
#[derive(Debug)]
pub struct OpsServer {
    /// The bound address.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl OpsServer {
    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` of `node` on `addr`.
pub async fn serve_ops(node: Node, addr: SocketAddr) -> Result<OpsServer, NodeError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        NodeError::Config(format!(
            "cannot listen on {addr} for metrics: {e}; choose another --metrics-listen"
        ))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::Config(format!("metrics listener: {e}")))?;
    let app = axum::Router::new()
        .route(HEALTH_PATH, axum::routing::get(health))
        .route(READY_PATH, axum::routing::get(health))
        .route("/metrics", axum::routing::get(metrics))
        .with_state(node);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    });
    tracing::info!(%addr, "lnc node: metrics and /healthz");
    Ok(OpsServer { addr, task })
}

/// 200 `ok` while the session store reads and LND answers GetInfo; else 503 with what is
/// wrong, so a supervisor restarts or alerts on the part that failed.
async fn health(State(node): State<Node>) -> Response {
    let unavailable = |why: String| {
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            format!("unavailable: {why}\n"),
        )
    };
    if let Err(e) = node.store().list() {
        return unavailable(format!("the session store: {e}")).into_response();
    }
    let lnd = node.lnd();
    let mut client = lnd.lightning();
    let info = client.get_info(lnd.request(lnrpc::GetInfoRequest {}));
    match tokio::time::timeout(LND_CHECK_TIMEOUT, info).await {
        Ok(Ok(_)) => (http::StatusCode::OK, "ok\n").into_response(),
        Ok(Err(s)) => {
            unavailable(format!("LND answered {:?}: {}", s.code(), s.message())).into_response()
        }
        Err(_) => unavailable(format!(
            "LND did not answer within {} s",
            LND_CHECK_TIMEOUT.as_secs()
        ))
        .into_response(),
    }
}

async fn metrics(State(node): State<Node>) -> Response {
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&node),
    )
        .into_response()
}

/// The text exposition, with the store's and the listeners' gauges read now.
pub fn render(node: &Node) -> String {
    let m = node.metrics();
    let states = ["created", "in_use", "revoked", "expired"];
    let mut counts = [0i64; 4];
    match node.store().list() {
        Ok(sessions) => {
            for s in &sessions {
                let i = match s.state {
                    SessionState::Created => 0,
                    SessionState::InUse => 1,
                    SessionState::Revoked { .. } => 2,
                    SessionState::Expired => 3,
                };
                counts[i] += 1;
            }
            for (state, n) in states.iter().zip(counts) {
                m.sessions
                    .get_or_create(&vec![("state", (*state).to_owned())])
                    .set(n);
            }
        }
        // The gauges keep their last values; /healthz reports the store.
        Err(e) => tracing::warn!(error = %e, "metrics: reading the session store failed"),
    }
    m.live_sessions.set(node.live_sessions() as i64);
    m.connected_apps.set(node.connected_apps() as i64);
    m.encode()
}
