//! Listener, TLS, per-IP connection limits, request routing and shutdown.
//!
//! One port serves gRPC (HTTP/2, `content-type: application/grpc`), WebSocket
//! upgrades and REST (HTTP/1.1): hyper-util's auto builder picks the HTTP
//! version per connection (ALPN or the h2 preface), an axum router picks the
//! front end per request.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, post};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use lnc_hashmail::paths;
use lnc_hashmail::pb::hash_mail_server::HashMailServer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::activity::{CallTable, ConnActivity, GuardedBody};
use crate::auth::Auth;
use crate::client::{Admission, ClientInfo, ConnGuard, ConnTable, client_ip};
use crate::config::Config;
use crate::error::RelayError;
use crate::grpc::HashMailService;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tls;
use crate::web::{self, App};
use crate::{rest, ws};

/// What a bound server exposes (tests use the address and certificate).
#[derive(Clone)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    tls: Option<(String, String)>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
}

impl ServerHandle {
    /// The public listener's bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    /// The metrics listener's bound address, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }
    /// SHA-256 fingerprint of the TLS certificate (None when insecure).
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.0.as_str())
    }
    /// The TLS certificate PEM (None when insecure).
    pub fn tls_cert_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.1.as_str())
    }
    /// Current store counts.
    pub fn stats(&self) -> crate::store::StoreStats {
        self.store.stats()
    }
    /// Waits until `pred` holds for the store counts, re-checking on every
    /// lifecycle event (no polling).
    pub async fn wait_for(&self, pred: impl Fn(&crate::store::StoreStats) -> bool) {
        let mut rx = self.store.subscribe();
        loop {
            rx.borrow_and_update();
            if pred(&self.store.stats()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
    /// Whether this instance can serve (what `/healthz` reports): always
    /// with the memory backend; with Redis, whether Redis answers.
    pub fn healthy(&self) -> bool {
        self.store.healthy()
    }
    /// Waits until readiness equals `up`, re-checking on every store event
    /// (the Redis health check bumps one on each change).
    pub async fn wait_ready(&self, up: bool) {
        let mut rx = self.store.subscribe();
        loop {
            rx.borrow_and_update();
            if self.store.healthy() == up {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
    /// Whether the stream id is live (on any instance sharing the store).
    pub async fn contains(&self, id: &crate::store::StreamId) -> Result<bool, RelayError> {
        self.store.contains(id).await
    }
    /// The metrics text exposition (as served on `/metrics`).
    pub fn metrics_text(&self) -> String {
        render_metrics(&self.store, &self.metrics)
    }
}

fn render_metrics(store: &Store, metrics: &Metrics) -> String {
    let s = store.stats();
    metrics
        .sessions
        .get_or_create(&vec![("state", "active")])
        .set(s.active as i64);
    metrics
        .sessions
        .get_or_create(&vec![("state", "idle")])
        .set((s.readers - s.active) as i64);
    metrics.encode()
}

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding a listener.
    #[error("mailbox: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// TLS setup.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The Redis URL is unusable.
    #[error(transparent)]
    Redis(#[from] crate::redis::RedisSetupError),
}

/// A bound, not yet running relay.
pub struct Server {
    config: Config,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handle: ServerHandle,
    auth: Arc<Auth>,
}

impl Server {
    /// Binds the listeners and prepares TLS (generating a certificate on
    /// first start in self-signed mode).
    pub async fn bind(config: Config) -> Result<Self, ServeError> {
        let tls = tls::load(&config.tls, &config.data_dir)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?,
            ),
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
        let metrics = Arc::new(Metrics::default());
        let store = match &config.redis {
            None => Store::new(
                config.limits.clone(),
                config.timers.clone(),
                metrics.clone(),
            ),
            Some(redis) => Store::redis(
                redis,
                config.limits.clone(),
                config.timers.clone(),
                metrics.clone(),
            )?,
        };
        let auth = Arc::new(Auth::new(config.create_tokens.as_deref()));
        let handle = ServerHandle {
            local_addr,
            metrics_addr,
            tls: tls
                .as_ref()
                .map(|t| (t.fingerprint.clone(), t.cert_pem.clone())),
            store,
            metrics,
        };
        Ok(Server {
            tls: tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config)),
            config,
            listener,
            metrics_listener,
            handle,
            auth,
        })
    }

    /// The handle (address, certificate, counts).
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Runs until `shutdown` resolves, then stops accepting, ends every
    /// stream with `server shutting down`, gives connections
    /// `shutdown_grace` to finish, and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let Server {
            config,
            listener,
            metrics_listener,
            tls,
            handle,
            auth,
        } = self;
        let store = handle.store.clone();
        let metrics = handle.metrics.clone();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let service = HashMailService {
            store: store.clone(),
            auth,
            metrics: metrics.clone(),
        };
        let grpc = HashMailServer::new(service.clone())
            .max_decoding_message_size(config.limits.max_message_bytes + 1024);
        let app = App {
            service,
            store: store.clone(),
            metrics: metrics.clone(),
            limits: config.limits.clone(),
            timers: config.timers.clone(),
            shutdown: stop_rx.clone(),
        };
        let router: Router = Router::new()
            .route_service(&format!("{}{{*method}}", paths::GRPC_PREFIX), grpc)
            .route(paths::WS_RECEIVE, any(ws::receive))
            .route(paths::WS_SEND, any(ws::send))
            .route(paths::REST_BOX, post(rest::create).delete(rest::delete))
            .route(HEALTH_PATH, axum::routing::get(health))
            .route(READY_PATH, axum::routing::get(health))
            .fallback(web::not_found)
            .layer(axum::middleware::from_fn(web::cors))
            .with_state(app.clone());

        // Idle-mailbox GC.
        let gc = {
            let store = store.clone();
            let every = config.timers.gc_interval;
            let enabled = config.timers.idle_timeout.is_some();
            tokio::spawn(async move {
                if !enabled {
                    return;
                }
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let n = store.collect_idle(tokio::time::Instant::now());
                    if n > 0 {
                        tracing::info!(removed = n, "idle mailboxes collected");
                    }
                }
            })
        };

        // Metrics listener.
        let metrics_task = metrics_listener.map(|l| {
            let store = store.clone();
            let metrics = metrics.clone();
            let mut stop = stop_rx.clone();
            let router = Router::new()
                .route(HEALTH_PATH, axum::routing::get(health))
                .route(READY_PATH, axum::routing::get(health))
                .with_state(app.clone())
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
                );
            tokio::spawn(async move {
                let _ = axum::serve(l, router)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
            })
        });

        let conns = Arc::new(ConnTable::default());
        let calls = Arc::new(CallTable::default());
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.timers.handshake_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(Some(
                u32::try_from(config.limits.max_streams_per_ip.saturating_mul(2))
                    .unwrap_or(u32::MAX)
                    .max(100),
            ))
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20))
            .initial_stream_window_size(256 * 1024)
            .initial_connection_window_size(4 * 1024 * 1024)
            .max_send_buf_size(256 * 1024);
        let builder = Arc::new(builder);

        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = &mut shutdown => break,
            };
            let (tcp, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let peer_ip = peer.ip().to_canonical();
            let exempt = config.trusted_proxies.contains(&peer_ip);
            let guard = match conns.admit(peer_ip, config.limits.max_connections_per_ip, exempt) {
                Admission::Ok(g) => (g, false),
                Admission::Reject(g) => (g, true),
                Admission::Drop => {
                    metrics.reject("max_connections_per_ip");
                    continue;
                }
            };
            metrics
                .connections
                .get_or_create(&vec![(
                    "transport",
                    if tls.is_some() { "tls" } else { "plain" },
                )])
                .inc();
            let ctx = ConnCtx {
                router: router.clone(),
                builder: builder.clone(),
                trusted: Arc::new(config.trusted_proxies.clone()),
                peer_ip,
                guard: guard.0,
                over_limit: guard.1.then_some(config.limits.max_connections_per_ip),
                metrics: metrics.clone(),
                handshake_timeout: config.timers.handshake_timeout,
                connection_idle: config.timers.connection_idle,
                calls: calls.clone(),
                max_calls: config.limits.max_calls_per_ip(),
            };
            match &tls {
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let hs = tokio::time::timeout(ctx.handshake_timeout, acceptor.accept(tcp));
                        match hs.await {
                            Ok(Ok(stream)) => ctx.serve(stream, watcher).await,
                            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!("TLS handshake timed out"),
                        }
                    });
                }
                None => {
                    let watcher = graceful.watcher();
                    tokio::spawn(ctx.serve(tcp, watcher));
                }
            }
        }

        tracing::info!("shutting down: no new connections, ending streams");
        drop(listener);
        let _ = stop_tx.send(true);
        store.shutdown().await;
        gc.abort();
        if tokio::time::timeout(config.timers.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the shutdown grace period");
        }
        if let Some(t) = metrics_task {
            let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
        }
        Ok(())
    }
}

struct ConnCtx {
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    trusted: Arc<Vec<IpAddr>>,
    peer_ip: IpAddr,
    guard: Arc<ConnGuard>,
    over_limit: Option<usize>,
    metrics: Arc<Metrics>,
    handshake_timeout: Duration,
    connection_idle: Option<Duration>,
    calls: Arc<CallTable>,
    max_calls: usize,
}

impl ConnCtx {
    async fn serve<S>(self, io: S, watcher: hyper_util::server::graceful::Watcher)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let ConnCtx {
            router,
            builder,
            trusted,
            peer_ip,
            guard,
            over_limit,
            metrics,
            handshake_timeout,
            connection_idle,
            calls,
            max_calls,
        } = self;
        if let Some(limit) = over_limit {
            // Explain the refusal on this connection, briefly, then close.
            let svc = tower::service_fn(move |req: http::Request<Incoming>| {
                let metrics = metrics.clone();
                async move {
                    metrics.reject("max_connections_per_ip");
                    Ok::<_, Infallible>(limit_response(&req, RelayError::TooManyConnections(limit)))
                }
            });
            let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
            let _ = tokio::time::timeout(handshake_timeout, conn).await;
            drop(guard);
            return;
        }
        let activity = ConnActivity::new();
        let svc = tower::service_fn({
            let activity = activity.clone();
            move |mut req: http::Request<Incoming>| {
                let ip = client_ip(peer_ip, req.headers(), &trusted);
                let request = Arc::new(activity.begin());
                req.extensions_mut().insert(ClientInfo {
                    ip,
                    _conn: guard.clone(),
                    _request: request.clone(),
                });
                let call = calls.admit(ip, max_calls);
                let (router, metrics) = (router.clone(), metrics.clone());
                async move {
                    let Some(call) = call else {
                        metrics.reject("max_calls_per_ip");
                        return Ok(limit_response(&req, RelayError::TooManyCalls(max_calls)));
                    };
                    let resp = tower::ServiceExt::oneshot(router, req).await?;
                    Ok::<_, Infallible>(
                        resp.map(|b| axum::body::Body::new(GuardedBody::new(b, request, call))),
                    )
                }
            }
        });
        let conn =
            builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(svc));
        let conn = watcher.watch(conn.into_owned());
        tokio::select! {
            r = conn => if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with error");
            },
            () = activity.expired(handshake_timeout, connection_idle) => {
                tracing::debug!("closing a connection with no request in flight");
            }
        }
    }
}

/// Readiness path for load balancers (on the public and metrics listeners).
pub const HEALTH_PATH: &str = "/healthz";
/// Alias of [`HEALTH_PATH`] (Kubernetes naming).
pub const READY_PATH: &str = "/readyz";

/// 200 `ok <backend>` while the store can serve, else 503: a load balancer
/// then routes new clients to instances that can reach Redis.
async fn health(axum::extract::State(app): axum::extract::State<App>) -> axum::response::Response {
    use axum::response::IntoResponse;
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

fn limit_response(
    req: &http::Request<Incoming>,
    e: RelayError,
) -> http::Response<axum::body::Body> {
    let is_grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if is_grpc {
        let status = tonic::Status::new(e.code(), e.to_string());
        let (parts, ()) = status.into_http::<()>().into_parts();
        http::Response::from_parts(parts, axum::body::Body::empty())
    } else {
        let body = lnc_hashmail::json::error_frame(e.code() as i32, &e.to_string());
        let mut r = http::Response::new(axum::body::Body::from(body));
        *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
        r
    }
}

/// Binds and runs a relay until `shutdown` resolves.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    Server::bind(config).await?.serve(shutdown).await
}
