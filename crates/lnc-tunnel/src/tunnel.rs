//! `dial` (app side) and `listen` (node side): a GBN connection, the Noise handshake and
//! the encrypted stream, on the stream IDs the pairing state names (transport.md §6).

use crate::driver::{
    DriverOptions, GbnError, GbnHandle, RecvHandoff, spawn_gbn, spawn_gbn_with_handoff,
};
use crate::h2::serve_http2;
use crate::mailbox::Mailbox;
use crate::rt::{BoxFuture, Runtime};
use crate::stream::{HandshakeFailure, NoiseStream, initiate, respond_tracked};
use bytes::Bytes;
use core::time::Duration;
use futures_channel::mpsc;
use http::{Request, Response};
use hyper::body::Incoming;
use lnc_core::gbn::{self, CloseReason, Side};
use lnc_core::keys::PublicKey;
use lnc_core::noise::{HandshakeVersion, NoiseConfig, Pattern};
use lnc_core::pairing::{
    ConnectionState, HandshakeInputs, HandshakeOutcome, HandshakeRecord, MailboxStreams, StateError,
};
use rand_core::CryptoRng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// Settings of the layers below gRPC.
#[derive(Debug, Clone, Default)]
pub struct TunnelOptions {
    /// GBN settings; `None` = upstream's client/server defaults for our role.
    pub gbn: Option<gbn::Config>,
    /// Noise handshake settings.
    pub noise: NoiseConfig,
    /// Node side: the longest a handshake may take once the app's GBN connection is up
    /// (`None`: no limit). Without it a peer that stops mid-handshake holds the session's
    /// only connection slot, and a pairing that stalls after act 2 is never counted.
    pub handshake_timeout: Option<Duration>,
}

/// Why a tunnel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The GBN settings are invalid.
    #[error("tunnel: invalid GBN configuration: {0}")]
    Config(#[from] gbn::ConfigError),
    /// The GBN connection ended before the tunnel was up.
    #[error(transparent)]
    Gbn(#[from] GbnError),
    /// The handshake failed (wrong phrase or keys, incompatible peer).
    #[error(transparent)]
    Handshake(#[from] HandshakeFailure),
    /// The handshake did not finish within [`TunnelOptions::handshake_timeout`].
    #[error("tunnel: the handshake did not finish within {0:?}; waiting for the app again")]
    HandshakeTimeout(Duration),
    /// The handshake authenticated a key other than the stored one.
    #[error(transparent)]
    State(#[from] StateError),
}

/// What a finished handshake established about the session.
#[derive(Clone)]
pub struct SessionInfo {
    /// The peer's static key (persist it when `record.remote_static_stored`).
    pub remote_static: PublicKey,
    /// The negotiated handshake version.
    pub version: HandshakeVersion,
    /// XX (pairing) or KK (reconnect).
    pub pattern: Pattern,
    /// App side: the node's auth data (`Macaroon: <hex>`); empty on the node.
    pub auth_data: Zeroizing<Vec<u8>>,
    /// What changed in the pairing state (persist it; new stream IDs next time).
    pub record: HandshakeRecord,
    /// The streams this connection runs on.
    pub streams: MailboxStreams,
}

impl core::fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionInfo")
            .field("remote_static", &self.remote_static)
            .field("version", &self.version)
            .field("pattern", &self.pattern)
            .field(
                "auth_data",
                &format_args!("<{} bytes redacted>", self.auth_data.len()),
            )
            .field("record", &self.record)
            .finish()
    }
}

/// An established tunnel: the encrypted stream and what the handshake established.
#[derive(Debug)]
pub struct Tunnel {
    /// The encrypted byte stream (run HTTP/2 on it).
    pub stream: NoiseStream,
    /// The session facts.
    pub session: SessionInfo,
    /// The GBN connection (status, stats, close).
    pub gbn: GbnHandle,
}

fn outcome(est: &lnc_core::noise::Established) -> HandshakeOutcome {
    HandshakeOutcome {
        version: est.version.as_u8(),
        remote_static: est.remote_static,
        received_auth_data: est.auth_data.clone().unwrap_or_default(),
    }
}

/// App side: connects to the node through the mailbox, with XX and the phrase on the
/// first connection or KK with the stored keys afterwards. `state` is updated (remote
/// key, auth data); persist it when `session.record` says so.
///
/// While the node is offline the relay answers "stream not found" and this keeps
/// retrying (25 ms doubling to 2 s; see [`GbnHandle::status`]); bound it with a timeout.
pub async fn dial<R: Runtime, G: CryptoRng + ?Sized>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    state: &mut ConnectionState,
    options: &TunnelOptions,
    rng: &mut G,
) -> Result<Tunnel, TunnelError> {
    dial_observed(rt, mailbox, state, options, rng, |_| {}).await
}

/// [`dial`], handing the GBN connection to `observe` as soon as it starts, so the app can
/// show upstream's status strings ("Session Not Found" while the node is offline or the
/// phrase is wrong) with [`GbnHandle::status_changed`] or [`GbnHandle::close`] it.
pub async fn dial_observed<R: Runtime, G: CryptoRng + ?Sized>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    state: &mut ConnectionState,
    options: &TunnelOptions,
    rng: &mut G,
    observe: impl FnOnce(GbnHandle),
) -> Result<Tunnel, TunnelError> {
    let streams = state.stream_ids();
    let config = options.gbn.clone().unwrap_or_else(gbn::Config::client);
    let opts = DriverOptions {
        create_boxes: false,
        send_after_recv: true,
    };
    let gbn = spawn_gbn(rt, mailbox, streams, Side::Client, config, opts)?;
    observe(gbn.clone());
    // For XX this runs scrypt while GBN connects.
    let inputs = state.handshake();
    gbn.connected().await?;
    let est = initiate(&gbn, &inputs, &options.noise, rng).await?;
    let record = state.record_handshake(outcome(&est))?;
    let session = SessionInfo {
        remote_static: est.remote_static,
        version: est.version,
        pattern: est.pattern,
        auth_data: est.auth_data.clone().unwrap_or_default(),
        record,
        streams,
    };
    Ok(Tunnel {
        stream: NoiseStream::new(gbn.clone(), est),
        session,
        gbn,
    })
}

/// What a [`Listener`] reports.
#[derive(Debug, Clone)]
pub enum ListenerEvent {
    /// Waiting for the app on these streams (boxes are created eagerly).
    Listening(MailboxStreams),
    /// A handshake completed; persist `state` (it holds the app's key after pairing).
    Connected {
        /// The session facts.
        session: Box<SessionInfo>,
        /// The updated pairing state.
        state: Box<ConnectionState>,
    },
    /// A handshake failed (wrong phrase, stale keys); the listener goes on.
    HandshakeFailed(String),
    /// A pairing (XX) handshake failed in a way that used up one guess at the phrase's
    /// password; sent just before the matching [`ListenerEvent::HandshakeFailed`]. The
    /// node decides what to do (burn the phrase, count towards a limit).
    PairingAttemptFailed(PairingAttemptFailure),
    /// The connection ended.
    Disconnected(CloseReason),
    /// The listener stopped (after [`Listener::close`]).
    Stopped,
}

/// How a pairing attempt failed (crypto.md §7: only someone holding the stream IDs, i.e. the
/// phrase's entropy hash, can attempt one at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingAttemptFailure {
    /// Act 1 or act 3 failed authentication (or was malformed): the peer does not know the
    /// SPAKE2 password — a relay or anyone who learned the stream IDs guessing. Burn the
    /// phrase.
    Rejected,
    /// Act 2 was sent but no act 3 came within the handshake timeout (or the connection
    /// ended): either a flaky network or a peer that tested its guess against act 2 and
    /// left. Counts as an attempt, up to a limit.
    StalledAfterAct2,
}

struct ListenerShared {
    stopped: bool,
    current: Option<GbnHandle>,
}

/// The node side: accepts one app connection at a time and serves HTTP/2 on it.
pub struct Listener {
    shared: Arc<Mutex<ListenerShared>>,
    events: mpsc::UnboundedReceiver<ListenerEvent>,
}

impl core::fmt::Debug for Listener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// The next event; `None` once the listener task ended.
    pub async fn next_event(&mut self) -> Option<ListenerEvent> {
        futures_util::StreamExt::next(&mut self.events).await
    }

    /// Stops accepting and closes the current connection (FIN to the app).
    pub fn close(&self) {
        let mut sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        sh.stopped = true;
        if let Some(g) = sh.current.take() {
            g.close();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.close();
    }
}

/// Node side: serves `service` (any tower HTTP service, e.g. a tonic router or a proxy)
/// to the app holding this session, one connection at a time. Both mailboxes are created
/// eagerly; after pairing the stream IDs are recomputed and the next connection is
/// awaited on the new ones (the pairing boxes are deleted).
pub fn listen<R, S, B, G>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    state: ConnectionState,
    service: S,
    options: TunnelOptions,
    mut rng: G,
) -> Listener
where
    R: Runtime,
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<crate::h2::BoxError>,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::h2::BoxError>,
    G: CryptoRng + Send + 'static,
{
    let shared = Arc::new(Mutex::new(ListenerShared {
        stopped: false,
        current: None,
    }));
    let (tx, events) = mpsc::unbounded();
    let sh = shared.clone();
    let rt2 = rt.clone();
    rt.spawn(Box::pin(async move {
        let rt = rt2;
        let mut state = state;
        let mut prev: Option<MailboxStreams> = None;
        // One receive stream serves consecutive connections on the same stream IDs.
        let mut handoff = RecvHandoff::default();
        let mut next_handoff: Option<RecvHandoff> = None;
        let mut inputs: Option<HandshakeInputs> = None;
        let auth: Vec<u8> = state.auth_data().map(<[u8]>::to_vec).unwrap_or_default();
        loop {
            let streams = state.stream_ids();
            if let Some(p) = prev.filter(|p| *p != streams) {
                // The pairing connection ended: start on the stream it watched.
                handoff = next_handoff.take().unwrap_or_default();
                let _ = mailbox.delete(p.receive).await;
                let _ = mailbox.delete(p.send).await;
            }
            prev = Some(streams);
            // The XX inputs cost a scrypt run: compute them once, before the boxes exist
            // (so the app never waits on it), and again only when the pattern changed.
            if inputs.as_ref().map(HandshakeInputs::pattern) != Some(state.handshake_pattern()) {
                inputs = Some(state.handshake());
            }
            let Some(inputs) = inputs.as_ref() else {
                break;
            };
            let config = options.gbn.clone().unwrap_or_else(gbn::Config::server);
            let opts = DriverOptions {
                create_boxes: true,
                send_after_recv: false,
            };
            let gbn = match spawn_gbn_with_handoff(
                &rt,
                mailbox.clone(),
                streams,
                Side::Server,
                config,
                opts,
                Some(handoff.clone()),
            ) {
                Ok(g) => g,
                Err(e) => {
                    let _ = tx.unbounded_send(ListenerEvent::HandshakeFailed(e.to_string()));
                    break;
                }
            };
            {
                let mut s = sh.lock().unwrap_or_else(|e| e.into_inner());
                if s.stopped {
                    gbn.close();
                    break;
                }
                s.current = Some(gbn.clone());
            }
            let _ = tx.unbounded_send(ListenerEvent::Listening(streams));
            let act2_sent = AtomicBool::new(false);
            let result = async {
                gbn.connected().await?;
                let hs = respond_tracked(&gbn, inputs, &auth, &options.noise, &mut rng, &act2_sent);
                match options.handshake_timeout {
                    None => Ok(hs.await?),
                    Some(d) => {
                        let hs = core::pin::pin!(hs);
                        match futures_util::future::select(hs, rt.sleep(d)).await {
                            futures_util::future::Either::Left((r, _)) => Ok(r?),
                            futures_util::future::Either::Right(((), _)) => {
                                Err(TunnelError::HandshakeTimeout(d))
                            }
                        }
                    }
                }
            }
            .await;
            if let Err(e) = &result {
                let stopped = sh.lock().unwrap_or_else(|e| e.into_inner()).stopped;
                if !stopped && inputs.pattern() == lnc_core::pairing::HandshakePattern::Xx {
                    let kind = match e {
                        TunnelError::Handshake(
                            HandshakeFailure::Noise(_) | HandshakeFailure::MsgData(_),
                        ) => Some(PairingAttemptFailure::Rejected),
                        _ => act2_sent
                            .load(Ordering::Relaxed)
                            .then_some(PairingAttemptFailure::StalledAfterAct2),
                    };
                    if let Some(kind) = kind {
                        let _ = tx.unbounded_send(ListenerEvent::PairingAttemptFailed(kind));
                    }
                }
            }
            match result {
                Ok(est) => {
                    let out = outcome(&est);
                    let session_base = (est.remote_static, est.version, est.pattern);
                    match state.record_handshake(out) {
                        Ok(record) => {
                            let next = state.stream_ids();
                            let watch = (next != streams).then(|| {
                                // Pairing moved the session to its own stream IDs. Create
                                // those boxes now (an app that reconnects at once finds
                                // them, instead of "stream not found" and a backoff) and
                                // watch them: the app's KK SYN there means the pairing
                                // connection is dead even if no FIN said so.
                                let h = RecvHandoff::default();
                                next_handoff = Some(h.clone());
                                let mb = mailbox.clone();
                                let open: BoxFuture<_> = Box::pin(async move {
                                    mb.create(next.receive).await?;
                                    mb.create(next.send).await?;
                                    mb.open_recv(next.receive).await
                                });
                                (h, open)
                            });
                            let session = SessionInfo {
                                remote_static: session_base.0,
                                version: session_base.1,
                                pattern: session_base.2,
                                auth_data: Zeroizing::new(Vec::new()),
                                record,
                                streams,
                            };
                            let _ = tx.unbounded_send(ListenerEvent::Connected {
                                session: Box::new(session),
                                state: Box::new(state.clone()),
                            });
                            let stream = NoiseStream::new(gbn.clone(), est);
                            let serve = serve_http2(&rt, stream, service.clone());
                            let served = match watch {
                                None => Some(serve.await),
                                Some((h, open)) => {
                                    let watch = async move {
                                        if !h.watch_for_syn(open).await {
                                            futures_util::future::pending::<()>().await;
                                        }
                                    };
                                    match futures_util::future::select(
                                        core::pin::pin!(serve),
                                        core::pin::pin!(watch),
                                    )
                                    .await
                                    {
                                        futures_util::future::Either::Left((r, _)) => Some(r),
                                        futures_util::future::Either::Right(_) => None,
                                    }
                                }
                            };
                            match served {
                                Some(Err(e)) => {
                                    tracing::debug!(error = %e, "tunnel HTTP/2 server ended")
                                }
                                Some(Ok(())) => {}
                                None => tracing::debug!(
                                    "the app reconnected with its stored keys: the pairing connection is superseded"
                                ),
                            }
                        }
                        Err(e) => {
                            let _ =
                                tx.unbounded_send(ListenerEvent::HandshakeFailed(e.to_string()));
                        }
                    }
                }
                Err(e) => {
                    if !sh.lock().unwrap_or_else(|e| e.into_inner()).stopped {
                        let _ = tx.unbounded_send(ListenerEvent::HandshakeFailed(e.to_string()));
                    }
                }
            }
            gbn.close();
            let reason = gbn.closed().await;
            let _ = tx.unbounded_send(ListenerEvent::Disconnected(reason));
            let mut s = sh.lock().unwrap_or_else(|e| e.into_inner());
            s.current = None;
            if s.stopped {
                break;
            }
        }
        let _ = tx.unbounded_send(ListenerEvent::Stopped);
    }));
    Listener { shared, events }
}
