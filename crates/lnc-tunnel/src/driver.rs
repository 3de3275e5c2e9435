//! The GBN driver: one task that runs [`lnc_core::gbn::Connection`] on real timers over a
//! [`Mailbox`] transport.
//!
//! The application side ([`GbnHandle`]) sends and receives whole messages with
//! back-pressure (the GBN window). The task re-opens a transport direction that dropped
//! (relay restart, socket closed) with a backoff of 25 ms doubling to 2 s, while the GBN
//! state lives on, so nothing is lost and calls continue (tier 1 of "connections that
//! break"). [`GbnHandle::close`] queues a FIN, sends it if the send stream is open, and
//! stops every retry at once.

use crate::mailbox::{Mailbox, MailboxError, PacketSink, PacketStream, Status};
use crate::rt::{BoxFuture, Runtime};
use core::fmt;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use lnc_core::gbn::{CloseReason, Config, ConfigError, Connection, Event, SendError, Side};
use lnc_core::go_compat::SendGate;
use lnc_core::pairing::MailboxStreams;
use lnc_core::time::Instant;
use std::sync::{Arc, Mutex, MutexGuard};

/// First retry delay after a transport failure (upstream waits a fixed 2 s).
pub const BACKOFF_MIN: Duration = Duration::from_millis(25);
/// Largest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a closing driver tries to deliver its FIN before giving up.
const FIN_GRACE: Duration = Duration::from_millis(500);
/// Bytes of received messages the driver takes off GBN ahead of the application. GBN
/// refuses DATA once N messages wait undelivered, and the peer may then wait out its
/// ≥ 2 s resend spacing; a reader that is merely bursty (hyper reads a 64 KB message in
/// several small reads) should never hit that, a stalled one still does (bounded memory).
const INBOX_CAP: usize = 4 << 20;
/// Steps one driver poll may take before yielding to other tasks.
const POLL_BUDGET: u32 = 64;

/// Whether a relay error refuses a write stream as a whole, so that nothing written on it
/// was delivered: "stream not found" (the peer has not created its mailbox yet) and
/// "write stream occupied" (the relay still holds another writer's stream, e.g. the app's
/// previous connection's: aperture refuses at once where our relay first waits 250 ms).
fn refuses_stream(status: Status) -> bool {
    matches!(status, Status::SessionNotFound | Status::SessionInUse)
}

/// Why a message could not be sent or received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GbnError {
    /// The GBN connection is over; start a new one to continue.
    #[error("tunnel: {0}")]
    Closed(CloseReason),
    /// The message exceeds the configured maximum.
    #[error("tunnel: message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Message length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Which extra steps the driver takes when it (re-)opens a direction.
#[derive(Debug, Clone, Copy, Default)]
pub struct DriverOptions {
    /// Node side: create both mailboxes before opening either direction (eagerly, so the
    /// app never sees "stream not found" once the node is online, and again after a relay
    /// restart lost them).
    pub create_boxes: bool,
    /// App side: open the send direction only once the receive direction opened, or
    /// the relay said it does not exist ([`lnc_core::go_compat::SendGate`]). The relay
    /// fails a send stream only after its first message, so writing before our node
    /// created the boxes would lose the SYN and cost a 2 s GBN retry (a successful
    /// receive open proves the node created both); a Go node, though, creates the
    /// app's receive box only after our SYN, so "not found" must not hold the SYN back.
    pub send_after_recv: bool,
}

/// A receive stream passed from one GBN connection to the next on the same stream ID.
///
/// The node side serves one app connection after another on the same mailbox. If each
/// connection re-opened the receive stream, whatever the relay had already pushed into
/// the old one — typically the app's SYN right after its FIN — would die with it, and the
/// app would wait out its 2 s SYN resend. Handing the open stream over keeps one reader
/// attached at the relay and loses nothing: packets after a FIN stay in the stream.
#[derive(Clone, Default)]
pub(crate) struct RecvHandoff(Arc<Mutex<Option<PacketStream>>>);

impl RecvHandoff {
    fn take(&self) -> Option<PacketStream> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn put(&self, s: PacketStream) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }

    /// True while a stream waits for the next connection.
    fn is_held(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Node side, while the pairing connection is served: reads the session's next
    /// receive stream (opened by `open`) until a SYN arrives, and keeps that SYN at the
    /// stream's front for the next connection. True when a SYN came: the app reconnected
    /// with KK, so the pairing connection is dead even if no FIN said so (a browser
    /// reload). False if the stream failed. Dropping the future keeps the stream, and
    /// whatever is buffered in it, for the next connection.
    pub(crate) async fn watch_for_syn(
        &self,
        open: BoxFuture<Result<PacketStream, MailboxError>>,
    ) -> bool {
        match open.await {
            Ok(s) => self.put(s),
            Err(e) => {
                tracing::debug!(error = %e, "could not watch the session's next stream");
                return false;
            }
        }
        futures_util::future::poll_fn(|cx| {
            let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let Some(s) = held.as_mut() else {
                    return Poll::Ready(false);
                };
                match s.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(pkt)))
                        if pkt.first() == Some(&lnc_core::gbn::wire::TYPE_SYN) =>
                    {
                        if let Some(s) = held.take() {
                            *held = Some(prepend(pkt, s));
                        }
                        return Poll::Ready(true);
                    }
                    // Stale traffic of an earlier connection on these streams.
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(Some(Err(_)) | None) => {
                        *held = None;
                        return Poll::Ready(false);
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    }
}

/// `first`, then the rest of `s`.
fn prepend(first: Vec<u8>, s: PacketStream) -> PacketStream {
    Box::pin(futures_util::StreamExt::chain(
        futures_util::stream::once(core::future::ready(Ok(first))),
        s,
    ))
}

impl fmt::Debug for RecvHandoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvHandoff")
            .field("held", &self.is_held())
            .finish()
    }
}

/// Counters of relay traffic, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Relay messages (GBN packets) written.
    pub packets_sent: u64,
    /// Relay messages (GBN packets) read.
    pub packets_received: u64,
    /// Times a direction was (re-)opened successfully.
    pub opens: u64,
    /// Transport failures (each followed by a backoff).
    pub transport_errors: u64,
}

struct Shared {
    conn: Connection,
    inbox: std::collections::VecDeque<Vec<u8>>,
    inbox_bytes: usize,
    driver: Option<Waker>,
    reader: Option<Waker>,
    writer: Option<Waker>,
    waiters: Vec<Waker>,
    connected: bool,
    closed: Option<CloseReason>,
    done: bool,
    status: Status,
    stats: DriverStats,
    /// Live [`GbnHandle`]s. None left: nobody can use the connection any more, so the
    /// driver closes it (and its retries stop).
    handles: usize,
}

impl Shared {
    fn wake_all(&mut self) {
        for w in [self.reader.take(), self.writer.take()]
            .into_iter()
            .flatten()
        {
            w.wake();
        }
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }
    fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }
    fn add_waiter(&mut self, w: &Waker) {
        if !self.waiters.iter().any(|x| x.will_wake(w)) {
            self.waiters.push(w.clone());
        }
    }
    fn set_status(&mut self, s: Status) {
        // As upstream: a generic failure does not hide a more specific status.
        if s == Status::NotConnected
            && matches!(self.status, Status::SessionNotFound | Status::SessionInUse)
        {
            return;
        }
        if self.status != s {
            self.status = s;
            for w in self.waiters.drain(..) {
                w.wake();
            }
        }
    }
    fn closed_err(&self) -> GbnError {
        GbnError::Closed(self.closed.clone().unwrap_or(CloseReason::Local))
    }
}

/// The application's side of a GBN connection (cheap to clone). Dropping every handle
/// closes the connection.
pub struct GbnHandle {
    shared: Arc<Mutex<Shared>>,
}

impl core::fmt::Debug for GbnHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GbnHandle").finish_non_exhaustive()
    }
}

impl Clone for GbnHandle {
    fn clone(&self) -> Self {
        lock(&self.shared).handles += 1;
        GbnHandle {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for GbnHandle {
    fn drop(&mut self) {
        let mut sh = lock(&self.shared);
        sh.handles = sh.handles.saturating_sub(1);
        if sh.handles == 0 {
            // The last handle is gone: wake the driver so it closes the connection now
            // rather than at its next timer.
            sh.wake_driver();
        }
    }
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GbnHandle {
    /// Queues `msg` as one GBN message; `Pending` while the window is full.
    pub fn poll_send(&self, cx: &mut Context<'_>, msg: &[u8]) -> Poll<Result<(), GbnError>> {
        let mut sh = lock(&self.shared);
        if sh.closed.is_some() {
            return Poll::Ready(Err(sh.closed_err()));
        }
        match sh.conn.send(msg) {
            Ok(()) => {
                sh.wake_driver();
                Poll::Ready(Ok(()))
            }
            Err(SendError::WouldBlock) => {
                sh.writer = Some(cx.waker().clone());
                sh.wake_driver();
                Poll::Pending
            }
            Err(SendError::TooLarge { len, max }) => {
                Poll::Ready(Err(GbnError::TooLarge { len, max }))
            }
            Err(SendError::Closed) => Poll::Ready(Err(sh.closed_err())),
        }
    }

    /// Sends one message, waiting for window space.
    pub async fn send(&self, msg: &[u8]) -> Result<(), GbnError> {
        futures_util::future::poll_fn(|cx| self.poll_send(cx, msg)).await
    }

    /// The next message from the peer; `Pending` until one arrives.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, GbnError>> {
        let mut sh = lock(&self.shared);
        if let Some(m) = sh.inbox.pop_front() {
            let was_full = sh.inbox_bytes >= INBOX_CAP;
            sh.inbox_bytes -= m.len();
            if was_full {
                sh.wake_driver();
            }
            return Poll::Ready(Ok(m));
        }
        if let Some(m) = sh.conn.recv() {
            // Receiving may free window space we asked the peer to resend into.
            sh.wake_driver();
            return Poll::Ready(Ok(m));
        }
        if sh.closed.is_some() {
            return Poll::Ready(Err(sh.closed_err()));
        }
        sh.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Receives one message.
    pub async fn recv(&self) -> Result<Vec<u8>, GbnError> {
        futures_util::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Waits for the GBN handshake to complete.
    pub async fn connected(&self) -> Result<(), GbnError> {
        futures_util::future::poll_fn(|cx| {
            let mut sh = lock(&self.shared);
            if sh.connected {
                Poll::Ready(Ok(()))
            } else if sh.closed.is_some() {
                Poll::Ready(Err(sh.closed_err()))
            } else {
                sh.add_waiter(cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Closes the connection: a FIN goes out if the send stream is open, every retry
    /// stops at once, pending receives end.
    pub fn close(&self) {
        let mut sh = lock(&self.shared);
        sh.conn.close();
        sh.wake_driver();
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared).closed.is_some()
    }

    /// Waits until the connection is over and the driver task has ended.
    pub async fn closed(&self) -> CloseReason {
        self.wait_for(|sh| {
            sh.done
                .then(|| sh.closed.clone().unwrap_or(CloseReason::Local))
        })
        .await
    }

    /// The current upstream-compatible status string class.
    pub fn status(&self) -> Status {
        lock(&self.shared).status
    }

    /// Waits until the status differs from `seen`, and returns the new status.
    pub async fn status_changed(&self, seen: Status) -> Status {
        self.wait_for(|sh| (sh.status != seen || sh.done).then_some(sh.status))
            .await
    }

    /// Waits until `ready` yields a value, re-checking whenever the driver wakes waiters.
    async fn wait_for<T>(&self, ready: impl Fn(&Shared) -> Option<T>) -> T {
        futures_util::future::poll_fn(|cx| {
            let mut sh = lock(&self.shared);
            match ready(&sh) {
                Some(v) => Poll::Ready(v),
                None => {
                    sh.add_waiter(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Relay traffic counters.
    pub fn stats(&self) -> DriverStats {
        lock(&self.shared).stats
    }

    /// GBN counters (packets, resends, RTT).
    pub fn gbn_stats(&self) -> lnc_core::gbn::Stats {
        lock(&self.shared).conn.stats()
    }
}

struct Backoff(Duration);

impl Backoff {
    fn reset(&mut self) {
        self.0 = BACKOFF_MIN;
    }
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (d * 2).min(BACKOFF_MAX);
        d
    }
}

enum Dir<T> {
    Idle,
    Opening(BoxFuture<Result<T, MailboxError>>),
    Open(T),
    Backoff(BoxFuture<()>),
}

struct Driver<R: Runtime> {
    rt: R,
    mailbox: Arc<dyn Mailbox>,
    streams: MailboxStreams,
    opts: DriverOptions,
    shared: Arc<Mutex<Shared>>,
    recv: Dir<PacketStream>,
    handoff: Option<RecvHandoff>,
    send: Dir<PacketSink>,
    recv_backoff: Backoff,
    send_backoff: Backoff,
    /// When the send direction may open (app side, `send_after_recv`).
    send_gate: SendGate,
    outbox: Option<Vec<u8>>,
    need_flush: bool,
    timer: Option<(Instant, BoxFuture<()>)>,
    fin_deadline: Option<BoxFuture<()>>,
    /// The last send stream failed: whatever was queued on it may be lost, which GBN is
    /// told when the next one opens (`Connection::handle_transport_reopened`).
    send_failed: bool,
    /// The last send stream was refused as a whole ([`refuses_stream`]): the relay refuses
    /// a write stream at its first message, before it delivers anything, so whatever was
    /// written on it is lost (see `poll_send`).
    send_refused: bool,
    /// Node side: the SYN of a restarted app that ended this connection, for the next.
    pushback: Option<Vec<u8>>,
    /// Which side this is (the trace logs, and only a server passes a SYN on).
    side: Side,
}

/// Starts a GBN connection over `mailbox` on `streams` and spawns its driver task.
pub fn spawn_gbn<R: Runtime>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    streams: MailboxStreams,
    side: Side,
    config: Config,
    opts: DriverOptions,
) -> Result<GbnHandle, ConfigError> {
    spawn_gbn_with_handoff(rt, mailbox, streams, side, config, opts, None)
}

/// [`spawn_gbn`] that starts on the receive stream a previous connection left in
/// `handoff` (if any) and leaves its own there when it ends.
pub(crate) fn spawn_gbn_with_handoff<R: Runtime>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    streams: MailboxStreams,
    side: Side,
    config: Config,
    opts: DriverOptions,
    handoff: Option<RecvHandoff>,
) -> Result<GbnHandle, ConfigError> {
    let conn = match side {
        Side::Client => Connection::new_client(config)?,
        Side::Server => Connection::new_server(config)?,
    };
    let shared = Arc::new(Mutex::new(Shared {
        conn,
        inbox: Default::default(),
        inbox_bytes: 0,
        driver: None,
        reader: None,
        writer: None,
        waiters: Vec::new(),
        connected: false,
        closed: None,
        done: false,
        status: Status::NotConnected,
        stats: DriverStats::default(),
        handles: 1,
    }));
    let inherited = handoff.as_ref().and_then(RecvHandoff::take);
    let mut send_gate = SendGate::default();
    if inherited.is_some() {
        send_gate.on_recv_opened();
    }
    let mut driver = Driver {
        rt: rt.clone(),
        mailbox,
        streams,
        opts,
        shared: shared.clone(),
        recv: inherited.map_or(Dir::Idle, Dir::Open),
        handoff,
        send: Dir::Idle,
        recv_backoff: Backoff(BACKOFF_MIN),
        send_backoff: Backoff(BACKOFF_MIN),
        send_gate,
        outbox: None,
        need_flush: false,
        timer: None,
        fin_deadline: None,
        send_failed: false,
        send_refused: false,
        pushback: None,
        side,
    };
    rt.spawn(Box::pin(futures_util::future::poll_fn(move |cx| {
        driver.poll(cx)
    })));
    Ok(GbnHandle { shared })
}

impl<R: Runtime> Driver<R> {
    fn open_recv(&self) -> BoxFuture<Result<PacketStream, MailboxError>> {
        let (mb, s, create) = (self.mailbox.clone(), self.streams, self.opts.create_boxes);
        Box::pin(async move {
            if create {
                mb.create(s.receive).await?;
                mb.create(s.send).await?;
            }
            mb.open_recv(s.receive).await
        })
    }

    fn open_send(&self) -> BoxFuture<Result<PacketSink, MailboxError>> {
        let (mb, s, create) = (self.mailbox.clone(), self.streams, self.opts.create_boxes);
        Box::pin(async move {
            if create {
                mb.create(s.send).await?;
            }
            mb.open_send(s.send).await
        })
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.shared.clone();
        let mut budget = POLL_BUDGET;
        loop {
            let mut sh = lock(&shared);
            sh.driver = Some(cx.waker().clone());
            if sh.handles == 0 {
                sh.conn.close();
            }
            let now = self.rt.now();
            let mut progress = false;
            let closed = sh.conn.is_closed();

            if !closed {
                progress |= self.poll_recv(cx, &mut sh, now);
            } else {
                self.release_recv();
            }
            let (p, send_done) = self.poll_send(cx, &mut sh, now, closed);
            progress |= p;

            // Timers.
            match sh.conn.poll_timeout() {
                Some(t) if t <= now => {
                    sh.conn.handle_timeout(now);
                    self.timer = None;
                    progress = true;
                }
                Some(t) => {
                    if self.timer.as_ref().map(|(at, _)| *at) != Some(t) {
                        self.timer = Some((t, self.rt.sleep_until(t)));
                    }
                    if let Some((_, f)) = &mut self.timer
                        && f.as_mut().poll(cx).is_ready()
                    {
                        self.timer = None;
                        progress = true;
                    }
                }
                None => self.timer = None,
            }

            // Events for the application.
            while let Some(ev) = sh.conn.poll_event() {
                progress = true;
                match ev {
                    Event::Connected => {
                        sh.connected = true;
                        sh.wake_all();
                    }
                    Event::Writable => {
                        if let Some(w) = sh.writer.take() {
                            w.wake();
                        }
                    }
                    Event::Closed(r) => {
                        if r == CloseReason::PeerFin {
                            sh.set_status(Status::SessionNotFound);
                        }
                        sh.closed = Some(r);
                        sh.wake_all();
                    }
                }
            }
            while sh.inbox_bytes < INBOX_CAP {
                let Some(m) = sh.conn.recv() else { break };
                sh.inbox_bytes += m.len();
                sh.inbox.push_back(m);
            }
            if (sh.conn.pending_messages() > 0 || !sh.inbox.is_empty())
                && let Some(w) = sh.reader.take()
            {
                w.wake();
            }

            if sh.conn.is_closed() {
                let deadline = self
                    .fin_deadline
                    .get_or_insert_with(|| self.rt.sleep(FIN_GRACE));
                if send_done || deadline.as_mut().poll(cx).is_ready() {
                    sh.done = true;
                    if sh.closed.is_none() {
                        sh.closed = Some(CloseReason::Local);
                    }
                    sh.driver = None;
                    sh.wake_all();
                    self.release_recv();
                    self.send = Dir::Idle;
                    return Poll::Ready(());
                }
            }
            drop(sh);
            if !progress {
                return Poll::Pending;
            }
            budget -= 1;
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Drops the receive direction, or leaves an open stream for the next connection.
    fn release_recv(&mut self) {
        if let (Dir::Open(s), Some(h)) =
            (core::mem::replace(&mut self.recv, Dir::Idle), &self.handoff)
        {
            h.put(match self.pushback.take() {
                Some(first) => prepend(first, s),
                None => s,
            });
        }
    }

    fn fail(sh: &mut Shared, e: &MailboxError) {
        tracing::debug!(error = %e, "mailbox transport failed; retrying");
        sh.stats.transport_errors += 1;
        sh.set_status(e.status);
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>, sh: &mut Shared, now: Instant) -> bool {
        let next = match &mut self.recv {
            Dir::Idle => Dir::Opening(self.open_recv()),
            Dir::Opening(f) => match f.as_mut().poll(cx) {
                Poll::Ready(Ok(s)) => {
                    tracing::trace!(side = ?self.side, recv = ?self.streams.receive, "recv opened");
                    self.send_gate.on_recv_opened();
                    sh.stats.opens += 1;
                    Dir::Open(s)
                }
                Poll::Ready(Err(e)) => {
                    if e.status == Status::SessionNotFound {
                        self.send_gate.on_recv_not_found();
                    }
                    Self::fail(sh, &e);
                    Dir::Backoff(self.rt.sleep(self.recv_backoff.next()))
                }
                Poll::Pending => return false,
            },
            Dir::Open(s) => {
                let mut got = false;
                for _ in 0..32 {
                    match s.as_mut().poll_next(cx) {
                        Poll::Ready(Some(Ok(pkt))) => {
                            got = true;
                            sh.stats.packets_received += 1;
                            tracing::trace!(side = ?self.side, recv = ?self.streams.receive, ty = pkt.first(), seq = pkt.get(1), "gbn packet in");
                            sh.set_status(Status::Connected);
                            self.recv_backoff.reset();
                            let was_connected = sh.connected;
                            if let Err(e) = sh.conn.handle_packet(now, &pkt) {
                                tracing::debug!(error = %e, "malformed gbn packet");
                            }
                            if sh.conn.is_closed() {
                                // Whatever follows (a new SYN after a FIN) belongs to the
                                // next connection: leave it in the stream.
                                if self.side == Side::Server
                                    && was_connected
                                    && pkt.first() == Some(&lnc_core::gbn::wire::TYPE_SYN)
                                {
                                    // The app restarted without a FIN (a browser reload):
                                    // its SYN ended this connection and opens the next one.
                                    self.pushback = Some(pkt);
                                }
                                return true;
                            }
                        }
                        Poll::Ready(Some(Err(e))) => {
                            Self::fail(sh, &e);
                            self.recv = Dir::Backoff(self.rt.sleep(self.recv_backoff.next()));
                            return true;
                        }
                        Poll::Ready(None) => {
                            Self::fail(sh, &MailboxError::new("receive stream ended"));
                            self.recv = Dir::Backoff(self.rt.sleep(self.recv_backoff.next()));
                            return true;
                        }
                        Poll::Pending => return got,
                    }
                }
                return true;
            }
            Dir::Backoff(f) => match f.as_mut().poll(cx) {
                Poll::Ready(()) => Dir::Idle,
                Poll::Pending => return false,
            },
        };
        self.recv = next;
        true
    }

    /// Returns (progress, done sending after close).
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        sh: &mut Shared,
        now: Instant,
        closed: bool,
    ) -> (bool, bool) {
        let next = match &mut self.send {
            Dir::Idle | Dir::Backoff(_) | Dir::Opening(_) if closed => {
                // Closing: never (re-)open just to say goodbye.
                self.send = Dir::Idle;
                return (false, true);
            }
            Dir::Idle => {
                if self.opts.send_after_recv && !self.send_gate.may_open_send() {
                    return (false, false);
                }
                Dir::Opening(self.open_send())
            }
            Dir::Opening(f) => match f.as_mut().poll(cx) {
                Poll::Ready(Ok(s)) => {
                    sh.stats.opens += 1;
                    if core::mem::take(&mut self.send_failed) {
                        let refused = core::mem::take(&mut self.send_refused);
                        tracing::trace!(side = ?self.side, refused, "send stream reopened");
                        sh.conn.handle_transport_reopened(now, refused);
                    }
                    Dir::Open(s)
                }
                Poll::Ready(Err(e)) => {
                    Self::fail(sh, &e);
                    self.send_failed = true;
                    self.send_refused |= refuses_stream(e.status);
                    Dir::Backoff(self.rt.sleep(self.send_backoff.next()))
                }
                Poll::Pending => return (false, false),
            },
            Dir::Open(sink) => {
                let mut progress = false;
                let mut err = None;
                loop {
                    if self.outbox.is_none() {
                        let mut buf = Vec::new();
                        if !sh.conn.poll_transmit(now, &mut buf) {
                            break;
                        }
                        self.outbox = Some(buf);
                    }
                    match sink.as_mut().poll_ready(cx) {
                        Poll::Ready(Ok(())) => {
                            let pkt = self.outbox.take().unwrap_or_default();
                            tracing::trace!(side = ?self.side, send = ?self.streams.send, ty = pkt.first(), seq = pkt.get(1), len = pkt.len(), "gbn packet out");
                            progress = true;
                            self.need_flush = true;
                            sh.stats.packets_sent += 1;
                            if let Err(e) = sink.as_mut().start_send(pkt) {
                                err = Some(e);
                                break;
                            }
                        }
                        Poll::Ready(Err(e)) => {
                            err = Some(e);
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
                // Flushing also when idle lets a transport report a dead stream at once.
                if err.is_none() {
                    match sink.as_mut().poll_flush(cx) {
                        Poll::Ready(Ok(())) => {
                            if core::mem::take(&mut self.need_flush) {
                                self.send_backoff.reset();
                            }
                        }
                        Poll::Ready(Err(e)) => err = Some(e),
                        Poll::Pending => {}
                    }
                }
                match err {
                    None => {
                        let done = closed && self.outbox.is_none() && !self.need_flush;
                        return (progress, done);
                    }
                    Some(e) => {
                        Self::fail(sh, &e);
                        self.send_failed = true;
                        self.send_refused |= refuses_stream(e.status);
                        self.need_flush = false;
                        if closed {
                            self.send = Dir::Idle;
                            return (true, true);
                        }
                        Dir::Backoff(self.rt.sleep(self.send_backoff.next()))
                    }
                }
            }
            Dir::Backoff(f) => match f.as_mut().poll(cx) {
                Poll::Ready(()) => Dir::Idle,
                Poll::Pending => return (false, false),
            },
        };
        self.send = next;
        (true, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_25ms_to_2s_and_resets() {
        let mut b = Backoff(BACKOFF_MIN);
        let seq: Vec<u64> = (0..9).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(seq, [25, 50, 100, 200, 400, 800, 1600, 2000, 2000]);
        b.reset();
        assert_eq!(b.next(), BACKOFF_MIN);
    }
}
