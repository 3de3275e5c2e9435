//! The relay's life: bind the listeners, assemble the front ends, run, shut down.
//!
//! One port serves gRPC (HTTP/2, `content-type: application/grpc`), WebSocket
//! upgrades and REST (HTTP/1.1): hyper-util's auto builder picks the HTTP
//! version per connection (ALPN or the h2 preface, in `conn`), an axum router
//! built here picks the front end per request.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, post};
use lnc_hashmail::paths;
use lnc_hashmail::pb::hash_mail_server::HashMailServer;
use tokio::net::TcpListener;

use crate::auth::Auth;
use crate::config::Config;
use crate::conn::Listener;
use crate::error::RelayError;
use crate::grpc::HashMailService;
use crate::metrics::Metrics;
use crate::ops::{self, HEALTH_PATH, READY_PATH};
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
        ops::render_metrics(&self.store, &self.metrics)
    }
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
            .route(HEALTH_PATH, axum::routing::get(ops::health))
            .route(READY_PATH, axum::routing::get(ops::health))
            .fallback(web::not_found)
            .layer(axum::middleware::from_fn(web::cors))
            .with_state(app.clone());
        let gc = tokio::spawn(collect_idle(store.clone(), config.clone()));
        let metrics_task = metrics_listener.map(|l| {
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let _ = axum::serve(l, ops::router(app))
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
            })
        });

        let graceful = Listener::new(listener, tls, router, &config, metrics, store.budget())
            .run(shutdown)
            .await;

        tracing::info!("shutting down: no new connections, ending streams");
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

/// Removes mailboxes idle for longer than `idle_timeout` (if set), every `gc_interval`.
async fn collect_idle(store: Arc<Store>, config: Config) {
    if config.timers.idle_timeout.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(config.timers.gc_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let n = store.collect_idle(tokio::time::Instant::now());
        if n > 0 {
            tracing::info!(removed = n, "idle mailboxes collected");
        }
    }
}

/// Binds and runs a relay until `shutdown` resolves.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    Server::bind(config).await?.serve(shutdown).await
}
