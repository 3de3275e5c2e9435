//! Reconnect tier 2: when GBN itself dies (keepalive timeout, FIN, the node restarted),
//! a fresh GBN connection and KK handshake are set up in the background with backoff
//! (25 ms doubling to 2 s). Calls in flight at that moment fail with a retryable error;
//! later calls go over the new tunnel. [`Client::close`] stops everything at once.

use crate::driver::{BACKOFF_MAX, BACKOFF_MIN, GbnHandle};
use crate::h2::{ChannelError, TunnelChannel, macaroon_from_auth_data};
use crate::mailbox::Mailbox;
use crate::rt::Runtime;
use crate::tunnel::{SessionInfo, TunnelError, TunnelOptions, dial};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_channel::{mpsc, oneshot};
use http::{Request, Response};
use hyper::body::Incoming;
use lnc_core::gbn::CloseReason;
use lnc_core::pairing::ConnectionState;
use rand_core::CryptoRng;
use std::sync::{Arc, Mutex};

/// What a [`Client`] reports, in order.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// A tunnel is up (first connection or a reconnect); persist `state`.
    Connected {
        /// The session facts.
        session: Box<SessionInfo>,
        /// The updated pairing state (keys for KK).
        state: Box<ConnectionState>,
    },
    /// The tunnel died; a reconnect is under way.
    Disconnected(CloseReason),
    /// A reconnect attempt failed; the next one follows after the backoff.
    ReconnectFailed(Arc<ReconnectError>),
    /// [`Client::close`] was called; nothing more happens.
    Closed,
}

/// Why one reconnect attempt failed (the client tries again after its backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconnectError {
    /// The GBN connection or the KK handshake failed.
    #[error(transparent)]
    Tunnel(#[from] TunnelError),
    /// The tunnel came up but HTTP/2 over it did not.
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// Why a call through a [`Client`] failed before reaching the node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No tunnel right now (reconnecting): retry shortly.
    #[error("lnc tunnel: reconnecting to the node, retry the call")]
    Reconnecting,
    /// The client was closed.
    #[error("lnc tunnel: client closed")]
    Closed,
    /// The call failed on the HTTP/2 connection (the tunnel dropped mid-call): retry.
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// Whether `e` or an error in its source chain is the tunnel's HTTP/2 connection failing
/// (hyper's error, an h2 [`ChannelError`], the reconnecting client's error), as opposed to an
/// answer from the node. Tonic keeps such a failure as the source of the `Status` it makes
/// (e.g. a stream whose body broke off when the node was killed), while a status the node
/// sent has no source; without this, a dead node reads as "the node returned Unknown: h2
/// protocol error".
pub fn is_connection_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<hyper::Error>() || e.is::<ChannelError>() || e.is::<ClientError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

struct Shared {
    channel: Option<TunnelChannel>,
    gbn: Option<GbnHandle>,
    closed: bool,
    stop: Option<oneshot::Sender<()>>,
}

/// An app-side connection that heals itself; a tower `Service` for tonic clients.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Mutex<Shared>>,
    channel: Option<TunnelChannel>,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    /// Dials once (XX or KK per `state`) and then keeps the tunnel alive in the
    /// background. Returns the client and its event stream.
    pub async fn connect<R, G>(
        rt: &R,
        mailbox: Arc<dyn Mailbox>,
        mut state: ConnectionState,
        options: TunnelOptions,
        mut rng: G,
    ) -> Result<(Client, mpsc::UnboundedReceiver<ClientEvent>), TunnelError>
    where
        R: Runtime,
        G: CryptoRng + Send + 'static,
    {
        let (events, rx) = mpsc::unbounded();
        let first = dial(rt, mailbox.clone(), &mut state, &options, &mut rng).await?;
        let macaroon = macaroon_from_auth_data(&first.session.auth_data);
        let channel = TunnelChannel::connect(rt, first.stream, macaroon.clone())
            .await
            .map_err(|_| TunnelError::Gbn(crate::GbnError::Closed(CloseReason::Local)))?;
        let _ = events.unbounded_send(ClientEvent::Connected {
            session: Box::new(first.session),
            state: Box::new(state.clone()),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let shared = Arc::new(Mutex::new(Shared {
            channel: Some(channel),
            gbn: Some(first.gbn.clone()),
            closed: false,
            stop: Some(stop_tx),
        }));
        let sh = shared.clone();
        let rt2 = rt.clone();
        let supervisor = async move {
            let rt = rt2;
            let mut gbn = first.gbn;
            loop {
                let reason = gbn.closed().await;
                {
                    let mut s = lock(&sh);
                    s.channel = None;
                    s.gbn = None;
                    if s.closed {
                        return;
                    }
                }
                let _ = events.unbounded_send(ClientEvent::Disconnected(reason));
                let mut delay = BACKOFF_MIN;
                loop {
                    match dial(&rt, mailbox.clone(), &mut state, &options, &mut rng).await {
                        Ok(t) => {
                            match TunnelChannel::connect(&rt, t.stream, macaroon.clone()).await {
                                Ok(ch) => {
                                    let mut s = lock(&sh);
                                    if s.closed {
                                        t.gbn.close();
                                        return;
                                    }
                                    s.channel = Some(ch);
                                    s.gbn = Some(t.gbn.clone());
                                    drop(s);
                                    gbn = t.gbn;
                                    let _ = events.unbounded_send(ClientEvent::Connected {
                                        session: Box::new(t.session),
                                        state: Box::new(state.clone()),
                                    });
                                    break;
                                }
                                Err(e) => {
                                    let _ = events.unbounded_send(ClientEvent::ReconnectFailed(
                                        Arc::new(e.into()),
                                    ));
                                }
                            }
                        }
                        Err(e) => {
                            let _ = events
                                .unbounded_send(ClientEvent::ReconnectFailed(Arc::new(e.into())));
                        }
                    }
                    rt.sleep(delay).await;
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        };
        rt.spawn(Box::pin(async move {
            // Whichever ends first: close() wins over a reconnect in progress (dropping
            // the dial drops its GBN handle, which stops that driver too).
            let _ = futures_util::future::select(Box::pin(supervisor), stop_rx).await;
        }));
        let client = Client {
            shared,
            channel: None,
        };
        Ok((client, rx))
    }

    /// Stops reconnecting and closes the tunnel (FIN to the node) at once.
    pub fn close(&self) {
        let mut s = lock(&self.shared);
        s.closed = true;
        s.channel = None;
        if let Some(g) = s.gbn.take() {
            g.close();
        }
        if let Some(stop) = s.stop.take() {
            let _ = stop.send(());
        }
    }

    /// [`close`](Self::close), then waits until the FIN has gone out (or the driver gave
    /// up on it, after at most half a second). A process that exits right after `close`
    /// may take its FIN with it; the node then notices the app has gone only by its
    /// keepalive, seconds later, and a new process's reconnect waits for that.
    pub async fn close_and_flush(&self) {
        let gbn = lock(&self.shared).gbn.clone();
        self.close();
        if let Some(g) = gbn {
            g.closed().await;
        }
    }

    /// Whether a tunnel is up right now.
    pub fn is_connected(&self) -> bool {
        lock(&self.shared)
            .channel
            .as_ref()
            .is_some_and(|c| !c.is_closed())
    }

    /// The current GBN connection (status, stats), if any.
    pub fn gbn(&self) -> Option<GbnHandle> {
        lock(&self.shared).gbn.clone()
    }
}

impl tower::Service<Request<tonic::body::Body>> for Client {
    type Response = Response<Incoming>;
    type Error = ClientError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Incoming>, ClientError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ClientError>> {
        if self.channel.as_ref().is_none_or(|c| c.is_closed()) {
            let s = lock(&self.shared);
            if s.closed {
                return Poll::Ready(Err(ClientError::Closed));
            }
            self.channel = s.channel.clone();
        }
        match &mut self.channel {
            None => Poll::Ready(Err(ClientError::Reconnecting)),
            Some(c) => match tower::Service::poll_ready(c, cx) {
                Poll::Ready(Err(e)) => {
                    self.channel = None;
                    Poll::Ready(Err(e.into()))
                }
                other => other.map_err(ClientError::from),
            },
        }
    }

    fn call(&mut self, req: Request<tonic::body::Body>) -> Self::Future {
        match &mut self.channel {
            Some(c) => {
                let f = tower::Service::call(c, req);
                Box::pin(async move { Ok(f.await?) })
            }
            None => Box::pin(async { Err(ClientError::Reconnecting) }),
        }
    }
}
