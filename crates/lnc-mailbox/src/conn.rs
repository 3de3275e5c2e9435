//! The accept loop and the per-connection handler, split as mini-redis splits its
//! `Listener` and `Handler`: the [`Listener`] admits a TCP connection (per-IP count, TLS
//! handshake under a deadline) and spawns a [`Handler`], which serves HTTP/1.1 or HTTP/2
//! on it until the client closes, the connection idles out or the relay shuts down.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::activity::{CallTable, ConnActivity, GuardedBody};
use crate::budget::MemoryBudget;
use crate::client::{Admission, ClientInfo, ConnGuard, ConnTable, client_ip};
use crate::config::Config;
use crate::error::RelayError;
use crate::metrics::Metrics;
use crate::web;

/// How long the accept loop pauses after an accept error (EMFILE and friends), so a
/// relay out of file descriptors backs off instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The accept loop: admission per IP, TLS, and one spawned [`Handler`] per connection.
pub(crate) struct Listener {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    conns: Arc<ConnTable>,
    graceful: GracefulShutdown,
}

/// What every connection's handler reads: the router, the HTTP builder and the limits.
struct Shared {
    router: Router,
    builder: auto::Builder<TokioExecutor>,
    trusted: Vec<IpAddr>,
    metrics: Arc<Metrics>,
    calls: CallTable,
    /// The relay's memory budget: every call and connection reserves its cost here.
    budget: Arc<MemoryBudget>,
    max_calls: usize,
    max_connections: usize,
    handshake_timeout: Duration,
    connection_idle: Option<Duration>,
}

impl Listener {
    pub(crate) fn new(
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        router: Router,
        config: &Config,
        metrics: Arc<Metrics>,
        budget: Arc<MemoryBudget>,
    ) -> Self {
        Listener {
            listener,
            tls,
            shared: Arc::new(Shared {
                router,
                builder: http_builder(config),
                trusted: config.trusted_proxies.clone(),
                metrics,
                calls: CallTable::default(),
                budget,
                max_calls: config.limits.max_calls_per_ip(),
                max_connections: config.limits.max_connections_per_ip,
                handshake_timeout: config.timers.handshake_timeout,
                connection_idle: config.timers.connection_idle,
            }),
            conns: Arc::new(ConnTable::default()),
            graceful: GracefulShutdown::new(),
        }
    }

    /// Accepts until `shutdown` resolves; returns what the caller needs to drain the
    /// connections still open.
    pub(crate) async fn run(self, shutdown: impl Future<Output = ()>) -> GracefulShutdown {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                () = &mut shutdown => break,
            };
            match accepted {
                Ok((tcp, peer)) => self.admit(tcp, peer.ip().to_canonical()),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
        self.graceful
    }

    /// Counts the connection against its IP and spawns its handler: one over the limit
    /// still gets a handler that explains the refusal in the client's protocol, and one
    /// far over it is closed at once.
    fn admit(&self, tcp: tokio::net::TcpStream, peer_ip: IpAddr) {
        let shared = &self.shared;
        let _ = tcp.set_nodelay(true);
        let exempt = shared.trusted.contains(&peer_ip);
        let admission = self
            .conns
            .admit(peer_ip, shared.max_connections, exempt, &shared.budget);
        let (guard, refusal) = match admission {
            Admission::Ok(g) => (g, None),
            Admission::Reject(g, why) => (g, Some(why)),
            Admission::Drop => {
                shared.metrics.reject("max_connections_per_ip");
                return;
            }
        };
        let transport = if self.tls.is_some() { "tls" } else { "plain" };
        shared
            .metrics
            .connections
            .get_or_create(&vec![("transport", transport)])
            .inc();
        let handler = Handler {
            shared: shared.clone(),
            peer_ip,
            guard,
            refusal,
        };
        let watcher = self.graceful.watcher();
        match &self.tls {
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let hs = tokio::time::timeout(
                        handler.shared.handshake_timeout,
                        acceptor.accept(tcp),
                    );
                    match hs.await {
                        Ok(Ok(stream)) => handler.run(stream, watcher).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
            None => {
                tokio::spawn(handler.run(tcp, watcher));
            }
        }
    }
}

/// hyper-util's auto builder: HTTP/1.1 (WebSocket, REST) or HTTP/2 (gRPC) per connection,
/// with the relay's header deadline, stream cap and flow-control windows.
fn http_builder(config: &Config) -> auto::Builder<TokioExecutor> {
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
    builder
}

/// One connection: tags each request with who sent it ([`ClientInfo`]), counts calls per
/// IP, and closes the connection once it has had no request in flight for too long.
struct Handler {
    shared: Arc<Shared>,
    peer_ip: IpAddr,
    guard: Arc<ConnGuard>,
    /// Over the per-IP connection limit or memory share: answer every request with this
    /// refusal, then close.
    refusal: Option<RelayError>,
}

impl Handler {
    async fn run<S>(self, io: S, watcher: Watcher)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        match self.refusal.clone() {
            Some(why) => self.refuse(io, why).await,
            None => self.serve(io, watcher).await,
        }
    }

    /// Explains the refusal on this connection, briefly, then closes it.
    async fn refuse<S>(self, io: S, why: RelayError)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let shared = self.shared.clone();
        let svc = tower::service_fn(move |req: http::Request<Incoming>| {
            let answer = web::refusal(&shared.metrics, &req, why.clone());
            async move { Ok::<_, Infallible>(answer) }
        });
        let conn = self
            .shared
            .builder
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
        let _ = tokio::time::timeout(self.shared.handshake_timeout, conn).await;
    }

    async fn serve<S>(self, io: S, watcher: Watcher)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let Handler {
            shared,
            peer_ip,
            guard,
            ..
        } = self;
        let activity = ConnActivity::new();
        let svc = tower::service_fn({
            let (activity, shared) = (activity.clone(), shared.clone());
            move |mut req: http::Request<Incoming>| {
                let ip = client_ip(peer_ip, req.headers(), &shared.trusted);
                let request = Arc::new(activity.begin());
                req.extensions_mut().insert(ClientInfo {
                    ip,
                    _conn: guard.clone(),
                    _request: request.clone(),
                });
                let call = shared.calls.admit(ip, shared.max_calls, &shared.budget);
                let shared = shared.clone();
                async move {
                    let call = match call {
                        Ok(call) => call,
                        Err(e) => return Ok(web::refusal(&shared.metrics, &req, e)),
                    };
                    let resp = tower::ServiceExt::oneshot(shared.router.clone(), req).await?;
                    Ok::<_, Infallible>(
                        resp.map(|b| axum::body::Body::new(GuardedBody::new(b, request, call))),
                    )
                }
            }
        });
        let conn = shared
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(svc));
        let conn = watcher.watch(conn.into_owned());
        tokio::select! {
            r = conn => if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with error");
            },
            () = activity.expired(shared.handshake_timeout, shared.connection_idle) => {
                tracing::debug!("closing a connection with no request in flight");
            }
        }
    }
}
