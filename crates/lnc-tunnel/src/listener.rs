//! `listen` (node side): one app connection at a time on a session's streams, XX while the
//! session is unpaired and KK after, HTTP/2 served on each connection.
//!
//! The accept loop is [`Accept`], one method per step of a connection's life:
//! [`Accept::switch_streams`] (after pairing, move to the session's own stream IDs),
//! [`Accept::open`] (GBN on the streams, boxes created, wait for the app's SYN),
//! [`Accept::handshake`] (Noise, bounded by [`TunnelOptions::handshake_timeout`]),
//! [`Accept::serve`] (record the outcome, serve HTTP/2 until the connection ends or the
//! app reconnects on the new streams) and [`Accept::end`] (close, report). What a failed
//! handshake means for the phrase is decided by the pure [`attempt_failure`].

use crate::driver::{DriverOptions, GbnHandle, RecvHandoff, spawn_gbn_with_handoff};
use crate::h2::serve_http2;
use crate::mailbox::Mailbox;
use crate::rt::{BoxFuture, Runtime};
use crate::stream::{HandshakeFailure, NoiseStream, respond_tracked};
use crate::tunnel::{SessionInfo, TunnelError, TunnelOptions};
use futures_channel::mpsc;
use futures_util::future::{Either, select};
use lnc_core::gbn::{self, CloseReason, Side};
use lnc_core::noise::{Established, Pattern};
use lnc_core::pairing::{ConnectionState, HandshakeInputs, HandshakeOutcome, MailboxStreams};
use rand_core::CryptoRng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// Longest a starting listener spends telling a stale pairing connection to end.
const STALE_PAIRING_FIN_WAIT: core::time::Duration = core::time::Duration::from_secs(2);

/// What a [`Listener`] reports.
#[derive(Debug, Clone)]
pub enum ListenerEvent {
    /// Waiting for the app on these streams; their boxes exist (unless the relay could
    /// not be reached: then the driver creates them when it reaches it).
    Listening(MailboxStreams),
    /// A handshake completed; persist `state` (it holds the app's key after pairing).
    Connected {
        /// The session facts.
        session: Box<SessionInfo>,
        /// The updated pairing state.
        state: Box<ConnectionState>,
    },
    /// A connection attempt failed before it was up (wrong phrase, stale keys, a timeout,
    /// a key other than the stored one); the listener goes on. Shared, so that every
    /// consumer of the event keeps the error's sources.
    HandshakeFailed(Arc<TunnelError>),
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

/// Which guess at the phrase, if any, a failed handshake used up. Only pairing (XX)
/// handshakes guess; a KK failure is stale keys, not a guess. A message that failed
/// authentication is a wrong guess; any other failure after act 2 went out may be a peer
/// that checked its guess against act 2 and left; before act 2 nothing was revealed.
pub fn attempt_failure(
    pattern: Pattern,
    error: &TunnelError,
    act2_sent: bool,
) -> Option<PairingAttemptFailure> {
    if pattern != Pattern::Xx {
        return None;
    }
    match error {
        TunnelError::Handshake(HandshakeFailure::Noise(_) | HandshakeFailure::MsgData(_)) => {
            Some(PairingAttemptFailure::Rejected)
        }
        _ => act2_sent.then_some(PairingAttemptFailure::StalledAfterAct2),
    }
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
        let mut sh = lock(&self.shared);
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

fn lock(shared: &Mutex<ListenerShared>) -> std::sync::MutexGuard<'_, ListenerShared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Node side: serves `service` (any tower HTTP service, e.g. a tonic router or a proxy)
/// to the app holding this session, one connection at a time. Both mailboxes are created
/// eagerly; after pairing the stream IDs are recomputed and the next connection is
/// awaited on the new ones (the pairing boxes are deleted).
pub fn listen<R, S, G>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    state: ConnectionState,
    service: S,
    options: TunnelOptions,
    rng: G,
) -> Listener
where
    R: Runtime,
    S: crate::h2::TunnelService,
    G: CryptoRng + Send + 'static,
{
    let shared = Arc::new(Mutex::new(ListenerShared {
        stopped: false,
        current: None,
    }));
    let (events, rx) = mpsc::unbounded();
    let auth = state.auth_data().map(<[u8]>::to_vec).unwrap_or_default();
    let accept = Accept {
        rt: rt.clone(),
        mailbox,
        state,
        service,
        options,
        rng,
        events,
        shared: shared.clone(),
        prev: None,
        handoff: RecvHandoff::default(),
        next_handoff: None,
        auth: Zeroizing::new(auth),
    };
    rt.spawn(Box::pin(accept.run()));
    Listener { shared, events: rx }
}

/// The listener task's state between the steps of one connection.
struct Accept<R, S, G> {
    rt: R,
    mailbox: Arc<dyn Mailbox>,
    state: ConnectionState,
    service: S,
    options: TunnelOptions,
    rng: G,
    events: mpsc::UnboundedSender<ListenerEvent>,
    shared: Arc<Mutex<ListenerShared>>,
    /// The streams of the previous connection.
    prev: Option<MailboxStreams>,
    /// One receive stream serves consecutive connections on the same stream IDs.
    handoff: RecvHandoff,
    /// The receive stream already opened on the session's post-pairing streams.
    next_handoff: Option<RecvHandoff>,
    /// The auth data sent to the app in act 2 (the session's macaroon).
    auth: Zeroizing<Vec<u8>>,
}

impl<R, S, G> Accept<R, S, G>
where
    R: Runtime,
    S: crate::h2::TunnelService,
    G: CryptoRng + Send + 'static,
{
    async fn run(mut self) {
        if self.state.remote_static().is_some() {
            let send = self.state.pairing_stream_ids().send;
            end_stale_pairing_connection(
                self.mailbox.clone(),
                send,
                self.rt.sleep(STALE_PAIRING_FIN_WAIT),
            )
            .await;
        }
        // Kept while the pattern stays: XX's cost a scrypt run, computed here before the
        // boxes exist, so the app never waits on it.
        let mut inputs = self.state.handshake();
        loop {
            let first = self.prev.is_none();
            let streams = self.switch_streams(&mut inputs).await;
            let Some(gbn) = self.open(streams, first).await else {
                break;
            };
            match self.handshake(&gbn, &inputs).await {
                Ok(est) => self.serve(&gbn, est, streams).await,
                Err(e) => {
                    if !self.stopped() {
                        self.emit(ListenerEvent::HandshakeFailed(Arc::new(e)));
                    }
                }
            }
            if self.end(&gbn).await {
                break;
            }
        }
        self.emit(ListenerEvent::Stopped);
    }

    fn emit(&self, event: ListenerEvent) {
        let _ = self.events.unbounded_send(event);
    }

    fn stopped(&self) -> bool {
        lock(&self.shared).stopped
    }

    /// The streams of the next connection. When pairing moved the session to its own
    /// stream IDs, takes over the receive stream opened on them while the pairing
    /// connection ran, deletes the pairing boxes and prepares the KK inputs.
    async fn switch_streams(&mut self, inputs: &mut HandshakeInputs) -> MailboxStreams {
        let streams = self.state.stream_ids();
        if let Some(p) = self.prev.filter(|p| *p != streams) {
            self.handoff = self.next_handoff.take().unwrap_or_default();
            let _ = self.mailbox.delete(p.receive).await;
            let _ = self.mailbox.delete(p.send).await;
        }
        self.prev = Some(streams);
        if inputs.pattern() != self.state.handshake_pattern() {
            *inputs = self.state.handshake();
        }
        streams
    }

    /// Starts the GBN server on `streams`; `None` when the listener was stopped or cannot
    /// run (then reported). On the `first` streams it creates both boxes before it reports
    /// [`ListenerEvent::Listening`], so an app that dials on that event finds them instead
    /// of "stream not found" and a backoff. Later connections reuse boxes that exist (the
    /// post-pairing ones are created while the pairing connection runs) and take over the
    /// open receive stream, so a reconnecting app never waits on box creation. A relay
    /// that cannot be reached now is left to the driver, which creates the boxes when it
    /// (re)opens its streams.
    async fn open(&mut self, streams: MailboxStreams, first: bool) -> Option<GbnHandle> {
        if first {
            for id in [streams.receive, streams.send] {
                if let Err(e) = self.mailbox.create(id).await {
                    tracing::debug!(error = %e, "creating the session's mailbox failed; the driver retries");
                    break;
                }
            }
        }
        let config = self.options.gbn.clone().unwrap_or_else(gbn::Config::server);
        let opts = DriverOptions {
            create_boxes: true,
            send_after_recv: false,
        };
        let gbn = match spawn_gbn_with_handoff(
            &self.rt,
            self.mailbox.clone(),
            streams,
            Side::Server,
            config,
            opts,
            Some(self.handoff.clone()),
        ) {
            Ok(g) => g,
            Err(e) => {
                self.emit(ListenerEvent::HandshakeFailed(Arc::new(e.into())));
                return None;
            }
        };
        {
            let mut s = lock(&self.shared);
            if s.stopped {
                gbn.close();
                return None;
            }
            s.current = Some(gbn.clone());
        }
        self.emit(ListenerEvent::Listening(streams));
        Some(gbn)
    }

    /// Waits for the app's connection and runs the Noise handshake on it. A failure that
    /// used up a guess at the phrase is reported here ([`attempt_failure`]).
    async fn handshake(
        &mut self,
        gbn: &GbnHandle,
        inputs: &HandshakeInputs,
    ) -> Result<Established, TunnelError> {
        let act2_sent = AtomicBool::new(false);
        let Accept {
            rt,
            options,
            rng,
            auth,
            ..
        } = self;
        let result = async {
            gbn.connected().await?;
            let hs = respond_tracked(gbn, inputs, auth, &options.noise, rng, &act2_sent);
            match options.handshake_timeout {
                None => Ok(hs.await?),
                Some(d) => match select(core::pin::pin!(hs), rt.sleep(d)).await {
                    Either::Left((r, _)) => Ok(r?),
                    Either::Right(((), _)) => Err(TunnelError::HandshakeTimeout(d)),
                },
            }
        }
        .await;
        if let Err(e) = &result {
            let guess = attempt_failure(inputs.pattern(), e, act2_sent.load(Ordering::Relaxed));
            if let Some(kind) = guess.filter(|_| !self.stopped()) {
                self.emit(ListenerEvent::PairingAttemptFailed(kind));
            }
        }
        result
    }

    /// Records the handshake in the pairing state, reports the connection and serves
    /// HTTP/2 on it until it ends — or, after pairing, until the app's SYN arrives on the
    /// session's new streams (the pairing connection is then dead even if no FIN said so).
    async fn serve(&mut self, gbn: &GbnHandle, est: Established, streams: MailboxStreams) {
        let record = match self.state.record_handshake(HandshakeOutcome::of(&est)) {
            Ok(r) => r,
            Err(e) => {
                self.emit(ListenerEvent::HandshakeFailed(Arc::new(e.into())));
                return;
            }
        };
        let next = self.state.stream_ids();
        let watch = (next != streams).then(|| self.prepare_next_streams(next));
        let session = SessionInfo {
            remote_static: est.remote_static,
            version: est.version,
            pattern: est.pattern,
            auth_data: Zeroizing::new(Vec::new()),
            record,
            streams,
        };
        self.emit(ListenerEvent::Connected {
            session: Box::new(session),
            state: Box::new(self.state.clone()),
        });
        let serve = serve_http2(
            &self.rt,
            NoiseStream::new(gbn.clone(), est),
            self.service.clone(),
        );
        let served = match watch {
            None => Some(serve.await),
            Some(syn_seen) => match select(core::pin::pin!(serve), syn_seen).await {
                Either::Left((r, _)) => Some(r),
                Either::Right(_) => None,
            },
        };
        match served {
            Some(Err(e)) => tracing::debug!(error = %e, "tunnel HTTP/2 server ended"),
            Some(Ok(())) => {}
            None => tracing::debug!(
                "the app reconnected with its stored keys: the pairing connection is superseded"
            ),
        }
    }

    /// Creates the boxes of the session's post-pairing streams now (an app that reconnects
    /// at once finds them, instead of "stream not found" and a backoff) and opens their
    /// receive stream for the next connection. The returned future resolves when the app's
    /// SYN arrives there.
    fn prepare_next_streams(&mut self, next: MailboxStreams) -> BoxFuture<()> {
        let h = RecvHandoff::default();
        self.next_handoff = Some(h.clone());
        let mb = self.mailbox.clone();
        let open: BoxFuture<_> = Box::pin(async move {
            mb.create(next.receive).await?;
            mb.create(next.send).await?;
            mb.open_recv(next.receive).await
        });
        Box::pin(async move {
            if !h.watch_for_syn(open).await {
                futures_util::future::pending::<()>().await;
            }
        })
    }

    /// Closes the connection (FIN) and reports how it ended; `true` when the listener
    /// was stopped.
    async fn end(&mut self, gbn: &GbnHandle) -> bool {
        gbn.close();
        let reason = gbn.closed().await;
        self.emit(ListenerEvent::Disconnected(reason));
        let mut s = lock(&self.shared);
        s.current = None;
        s.stopped
    }
}

/// A paired session's listener starts on the post-pairing streams. An app still on the
/// pairing connection of a node process that died (killed, crashed) would wait there for
/// its keepalive, ≈ 10 s; one GBN FIN on the pairing streams ends that connection at once
/// and the app reconnects with KK. Nobody else reads those streams once the session is
/// paired (a client in its handshake skips a FIN anyway: Go's `clientHandshake` and ours).
/// Best effort, bounded by `deadline`: the boxes are usually gone.
async fn end_stale_pairing_connection(
    mailbox: Arc<dyn Mailbox>,
    send: lnc_core::pairing::StreamId,
    deadline: BoxFuture<()>,
) {
    let mut fin = Vec::new();
    gbn::wire::Packet::Fin.encode(&mut fin);
    let say_goodbye = Box::pin(async move {
        use futures_util::SinkExt as _;
        if let Ok(mut sink) = mailbox.open_send(send).await
            && sink.send(fin).await.is_ok()
        {
            let _ = sink.close().await;
        }
    });
    let _ = select(say_goodbye, deadline).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::GbnError;
    use core::time::Duration;

    #[test]
    fn only_a_pairing_handshake_uses_up_a_guess() {
        let timeout = || TunnelError::HandshakeTimeout(Duration::from_secs(1));
        // KK: stale keys or a timeout are never guesses at the phrase.
        assert_eq!(attempt_failure(Pattern::Kk, &timeout(), true), None);
        // XX: nothing revealed before act 2.
        assert_eq!(attempt_failure(Pattern::Xx, &timeout(), false), None);
        assert_eq!(
            attempt_failure(Pattern::Xx, &timeout(), true),
            Some(PairingAttemptFailure::StalledAfterAct2)
        );
        let gone = TunnelError::Gbn(GbnError::Closed(CloseReason::PeerFin));
        assert_eq!(
            attempt_failure(Pattern::Xx, &gone, true),
            Some(PairingAttemptFailure::StalledAfterAct2)
        );
        // A message that failed authentication is a wrong guess, act 2 sent or not.
        let wrong = TunnelError::Handshake(HandshakeFailure::Noise(
            lnc_core::noise::HandshakeError::AuthFailed {
                act: 1,
                what: "payload",
                hint: "",
            },
        ));
        for act2 in [false, true] {
            assert_eq!(
                attempt_failure(Pattern::Xx, &wrong, act2),
                Some(PairingAttemptFailure::Rejected)
            );
        }
        assert_eq!(attempt_failure(Pattern::Kk, &wrong, true), None);
    }
}
