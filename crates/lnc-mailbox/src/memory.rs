//! The in-memory backend: live mailboxes, their bounded queues, and who is
//! attached, all in this process (the default; one relay instance).
//!
//! A mailbox is a small struct with a bounded `VecDeque` of whole messages.
//! Readers and writers are woken through stored wakers, so an idle mailbox
//! with an idle reader costs no task and no timer on the relay.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::budget::{HELD_WRITER_COST, MemoryBudget, Over, Reservation, over_share};
use crate::config::{Limits, Timers};
use crate::error::RelayError;
use crate::metrics::Metrics;
use crate::rate::TokenBucket;
#[cfg(test)]
use crate::stream::stream_id;
use crate::stream::{StoreStats, StreamId, Transport};

/// Locks a mutex, recovering from poisoning: a panic elsewhere must not take
/// every other session down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct State {
    /// Messages in order, each with the IP charged for it in the queue budget (its writer's).
    queue: VecDeque<(Bytes, IpAddr)>,
    queued_bytes: usize,
    reader: bool,
    writer: bool,
    reader_waker: Option<Waker>,
    writer_waker: Option<Waker>,
    closed: Option<RelayError>,
    /// Set while neither half is attached (GC clock).
    idle_since: Option<Instant>,
    /// Last message delivered (active/idle classification).
    last_msg: Option<Instant>,
    /// The writer's rate limit.
    bucket: TokenBucket,
}

struct Mailbox {
    owner: IpAddr,
    creator: Option<u32>,
    state: Mutex<State>,
    /// Signalled when a half is released or the mailbox closes.
    slot_freed: Notify,
}

impl Mailbox {
    fn close(&self, st: &mut State, why: RelayError, budget: &MemoryBudget) {
        if st.closed.is_none() {
            st.closed = Some(why);
        }
        for (msg, ip) in st.queue.drain(..) {
            budget.refund(ip, msg.len());
        }
        st.queued_bytes = 0;
        if let Some(w) = st.reader_waker.take() {
            w.wake();
        }
        if let Some(w) = st.writer_waker.take() {
            w.wake();
        }
        self.slot_freed.notify_waiters();
    }
}

struct Inner {
    boxes: HashMap<StreamId, Arc<Mailbox>>,
    per_ip: HashMap<IpAddr, usize>,
    shutting_down: bool,
}

/// All live mailboxes.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    limits: Limits,
    timers: Timers,
    metrics: Arc<Metrics>,
    /// The relay's memory budget (queued bytes are charged to their writer's IP here).
    budget: Arc<MemoryBudget>,
    /// Bumped on lifecycle events (create/delete/attach/detach/back-pressure),
    /// so tests can wait for an event instead of sleeping.
    events: crate::stream::Events,
}

impl MemoryStore {
    /// An empty store.
    pub(crate) fn new(
        limits: Limits,
        timers: Timers,
        metrics: Arc<Metrics>,
        budget: Arc<MemoryBudget>,
    ) -> Arc<Self> {
        Arc::new(MemoryStore {
            budget,
            inner: Mutex::new(Inner {
                boxes: HashMap::new(),
                per_ip: HashMap::new(),
                shutting_down: false,
            }),
            limits,
            timers,
            metrics,
            events: crate::stream::Events::default(),
        })
    }

    /// The lifecycle events (see [`crate::store::Store::subscribe`]).
    pub(crate) fn events(&self) -> &crate::stream::Events {
        &self.events
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// NewCipherBox: creates a mailbox owned by `owner` (for the per-IP cap)
    /// and, with create auth on, bound to the token index `creator`.
    pub fn create(
        &self,
        id: StreamId,
        owner: IpAddr,
        creator: Option<u32>,
    ) -> Result<(), RelayError> {
        let mut inner = lock(&self.inner);
        if inner.shutting_down {
            return Err(RelayError::ShuttingDown);
        }
        if inner.boxes.contains_key(&id) {
            return Err(RelayError::AlreadyExists);
        }
        if inner.boxes.len() >= self.limits.max_streams {
            return Err(RelayError::TooManyStreams(self.limits.max_streams));
        }
        let n = inner.per_ip.get(&owner).copied().unwrap_or(0);
        if n >= self.limits.max_streams_per_ip {
            return Err(RelayError::TooManyStreamsPerIp(
                self.limits.max_streams_per_ip,
            ));
        }
        let now = Instant::now();
        let mailbox = Mailbox {
            owner,
            creator,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued_bytes: 0,
                reader: false,
                writer: false,
                reader_waker: None,
                writer_waker: None,
                closed: None,
                idle_since: Some(now),
                last_msg: None,
                bucket: TokenBucket::full(&self.limits, now),
            }),
            slot_freed: Notify::new(),
        };
        inner.boxes.insert(id, Arc::new(mailbox));
        inner.per_ip.insert(owner, n + 1);
        self.metrics.mailboxes.set(inner.boxes.len() as i64);
        drop(inner);
        self.events.bump();
        Ok(())
    }

    fn remove_locked(&self, inner: &mut Inner, id: &StreamId) -> Option<Arc<Mailbox>> {
        let mb = inner.boxes.remove(id)?;
        if let Some(n) = inner.per_ip.get_mut(&mb.owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.per_ip.remove(&mb.owner);
            }
        }
        self.metrics.mailboxes.set(inner.boxes.len() as i64);
        Some(mb)
    }

    /// DelCipherBox: removes the mailbox and ends its reader and writer. With
    /// create auth on, only the creating token may delete.
    pub fn delete(&self, id: &StreamId, token: Option<u32>) -> Result<(), RelayError> {
        let mut inner = lock(&self.inner);
        let mb = inner.boxes.get(id).ok_or(RelayError::NotFound)?;
        if mb.creator.is_some() && mb.creator != token {
            return Err(RelayError::NotCreator);
        }
        if let Some(mb) = self.remove_locked(&mut inner, id) {
            drop(inner);
            let mut st = lock(&mb.state);
            mb.close(&mut st, RelayError::StreamClosed, &self.budget);
        }
        self.events.bump();
        Ok(())
    }

    fn get(&self, id: &StreamId) -> Result<Arc<Mailbox>, RelayError> {
        let inner = lock(&self.inner);
        if inner.shutting_down {
            return Err(RelayError::ShuttingDown);
        }
        inner.boxes.get(id).cloned().ok_or(RelayError::NotFound)
    }

    /// Takes a side, waiting up to `occupied_wait` for the current holder.
    async fn acquire(&self, mb: &Arc<Mailbox>, read: bool) -> Result<(), RelayError> {
        let deadline = Instant::now() + self.timers.occupied_wait;
        loop {
            let notified = mb.slot_freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = lock(&mb.state);
                if let Some(e) = &st.closed {
                    return Err(closed_to_lookup_error(e));
                }
                let side = if read { &mut st.reader } else { &mut st.writer };
                if !*side {
                    *side = true;
                    st.idle_since = None;
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(if read {
                    RelayError::ReadOccupied
                } else {
                    RelayError::WriteOccupied
                });
            }
        }
    }

    /// RecvStream: attaches as the single reader of `id`.
    pub async fn open_reader(
        self: &Arc<Self>,
        id: &StreamId,
        transport: Transport,
    ) -> Result<MemReadHalf, RelayError> {
        let mb = self.get(id)?;
        self.acquire(&mb, true).await?;
        self.metrics
            .attached
            .get_or_create(&vec![("transport", transport.label()), ("side", "read")])
            .inc();
        self.events.bump();
        Ok(MemReadHalf {
            mb,
            store: self.clone(),
            transport,
        })
    }

    /// SendStream: attaches as the single writer of `id`.
    pub async fn open_writer(
        self: &Arc<Self>,
        id: &StreamId,
        transport: Transport,
        writer: IpAddr,
    ) -> Result<MemWriteHalf, RelayError> {
        let mb = self.get(id)?;
        self.acquire(&mb, false).await?;
        self.metrics
            .attached
            .get_or_create(&vec![("transport", transport.label()), ("side", "write")])
            .inc();
        self.events.bump();
        Ok(MemWriteHalf {
            mb,
            store: self.clone(),
            transport,
            ip: writer.to_canonical(),
        })
    }

    /// Deletes mailboxes idle (no reader, no writer) for `idle_timeout`.
    /// Returns how many were removed.
    pub fn collect_idle(&self, now: Instant) -> usize {
        let Some(timeout) = self.timers.idle_timeout else {
            return 0;
        };
        let mut inner = lock(&self.inner);
        let mut stale = Vec::new();
        for (id, mb) in &inner.boxes {
            let mut st = lock(&mb.state);
            if let Some(since) = st.idle_since
                && now.saturating_duration_since(since) >= timeout
            {
                // Closed under the mailbox lock: a racing attach sees it.
                mb.close(&mut st, RelayError::NotFound, &self.budget);
                stale.push(*id);
            }
        }
        for id in &stale {
            self.remove_locked(&mut inner, id);
        }
        drop(inner);
        if !stale.is_empty() {
            self.events.bump();
        }
        stale.len()
    }

    /// Ends every mailbox (shutdown): readers and writers get
    /// `server shutting down`; no new mailbox or attach is accepted.
    pub fn shutdown(&self) {
        let mut inner = lock(&self.inner);
        inner.shutting_down = true;
        for mb in inner.boxes.values() {
            let mut st = lock(&mb.state);
            mb.close(&mut st, RelayError::ShuttingDown, &self.budget);
        }
        inner.boxes.clear();
        inner.per_ip.clear();
        self.metrics.mailboxes.set(0);
        drop(inner);
        self.events.bump();
    }

    /// Current counts (walks all mailboxes: for scrapes and tests).
    pub fn stats(&self) -> StoreStats {
        let inner = lock(&self.inner);
        let now = Instant::now();
        let mut s = StoreStats {
            mailboxes: inner.boxes.len(),
            ..StoreStats::default()
        };
        for mb in inner.boxes.values() {
            let st = lock(&mb.state);
            s.readers += usize::from(st.reader);
            s.writers += usize::from(st.writer);
            s.queued += st.queue.len();
            s.queued_bytes += st.queued_bytes;
            if st.reader
                && st
                    .last_msg
                    .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(10))
            {
                s.active += 1;
            }
        }
        s
    }

    /// Whether the stream id is live.
    pub fn contains(&self, id: &StreamId) -> bool {
        lock(&self.inner).boxes.contains_key(id)
    }
}

/// A reader that finds its mailbox gone reports it the way a fresh lookup
/// would, so clients see the familiar `stream not found`.
fn closed_to_lookup_error(e: &RelayError) -> RelayError {
    match e {
        RelayError::ShuttingDown => RelayError::ShuttingDown,
        _ => RelayError::NotFound,
    }
}

fn release(store: &MemoryStore, mb: &Mailbox, read: bool, transport: Transport) {
    {
        let mut st = lock(&mb.state);
        if read {
            st.reader = false;
            st.reader_waker = None;
        } else {
            st.writer = false;
            st.writer_waker = None;
        }
        if !st.reader && !st.writer {
            st.idle_since = Some(Instant::now());
        }
    }
    mb.slot_freed.notify_waiters();
    let side = if read { "read" } else { "write" };
    store
        .metrics
        .attached
        .get_or_create(&vec![("transport", transport.label()), ("side", side)])
        .dec();
    store.events.bump();
}

/// The attached reader of one mailbox; dropping it frees the read side.
pub struct MemReadHalf {
    mb: Arc<Mailbox>,
    store: Arc<MemoryStore>,
    transport: Transport,
}

impl MemReadHalf {
    /// Next message in order, or why the stream ended.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Bytes, RelayError>> {
        let mut st = lock(&self.mb.state);
        if let Some((msg, ip)) = st.queue.pop_front() {
            st.queued_bytes -= msg.len();
            self.store.budget.refund(ip, msg.len());
            st.last_msg = Some(Instant::now());
            if let Some(w) = st.writer_waker.take() {
                w.wake();
            }
            drop(st);
            self.store.metrics.messages.inc();
            self.store.metrics.bytes.inc_by(msg.len() as u64);
            return Poll::Ready(Ok(msg));
        }
        if let Some(e) = &st.closed {
            return Poll::Ready(Err(e.clone()));
        }
        match &st.reader_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.reader_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Next message in order, or why the stream ended.
    pub async fn recv(&self) -> Result<Bytes, RelayError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl Drop for MemReadHalf {
    fn drop(&mut self) {
        release(&self.store, &self.mb, true, self.transport);
    }
}

/// The attached writer of one mailbox; dropping it frees the write side.
pub struct MemWriteHalf {
    mb: Arc<Mailbox>,
    store: Arc<MemoryStore>,
    transport: Transport,
    /// The writing client, charged for what it queues.
    ip: IpAddr,
}

impl MemWriteHalf {
    /// Queues one message, after the rate limiter and while the queue has
    /// room; otherwise waits (back-pressure on the writer, never unbounded
    /// buffering). Fails if the message is too large or the stream ended.
    pub async fn send(&self, msg: Bytes) -> Result<(), RelayError> {
        let limits = &self.store.limits;
        if msg.len() > limits.max_message_bytes {
            return Err(RelayError::MessageTooLarge {
                len: msg.len(),
                limit: limits.max_message_bytes,
            });
        }
        let wait = lock(&self.mb.state).bucket.take(limits, Instant::now());
        if let Some(d) = wait {
            self.store.metrics.rate_limited.inc();
            tokio::time::sleep(d).await;
        }
        let len = msg.len();
        let mut msg = Some(msg);
        let (mut counted, mut budget_counted) = (false, false);
        // While held back, this writer pins its message and its stream's HTTP/2 buffers:
        // reserved in the budget until the message is queued (dropped on return).
        let mut held: Option<Reservation> = None;
        loop {
            // Armed before the check, so a refund in between is not missed.
            let freed = self.store.budget.freed();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let over = poll_fn(|cx| match self.poll_push(cx, &mut msg, &mut counted) {
                Poll::Pending => match self.hold(&mut held, len) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                },
                ready => ready,
            })
            .await?;
            let Some(over) = over else {
                return Ok(());
            };
            if !budget_counted {
                budget_counted = true;
                let cap = match over {
                    Over::IpShare => "ip_share",
                    Over::Relay => "relay",
                };
                self.store
                    .metrics
                    .budget_held
                    .get_or_create(&vec![("cap", cap)])
                    .inc();
                self.store.events.bump();
            }
            self.hold(&mut held, len)?;
            tokio::select! {
                () = freed => {}
                e = self.closed() => return Err(e),
            }
        }
    }

    /// Reserves a held writer's cost once (see [`HELD_WRITER_COST`]); at its IP's share the
    /// writer is refused instead of kept.
    fn hold(&self, held: &mut Option<Reservation>, len: usize) -> Result<(), RelayError> {
        if held.is_none() {
            let budget = &self.store.budget;
            let r = budget
                .reserve_within_share(self.ip, HELD_WRITER_COST.saturating_add(len))
                .map_err(|over| over_share(over, budget))?;
            *held = Some(r);
        }
        Ok(())
    }

    /// Queues `msg` if its mailbox has room (else waits for the reader) and the budget
    /// takes it: `Ready(Ok(None))` once queued, `Ready(Ok(Some(over)))` when the budget
    /// holds it back.
    fn poll_push(
        &self,
        cx: &mut Context<'_>,
        msg: &mut Option<Bytes>,
        counted: &mut bool,
    ) -> Poll<Result<Option<Over>, RelayError>> {
        let limits = &self.store.limits;
        let mut st = lock(&self.mb.state);
        if let Some(e) = &st.closed {
            return Poll::Ready(Err(e.clone()));
        }
        let len = msg.as_ref().map_or(0, Bytes::len);
        let fits = st.queue.len() < limits.max_queue_messages
            && (st.queued_bytes + len <= limits.max_queue_bytes || st.queue.is_empty());
        if !fits {
            st.writer_waker = Some(cx.waker().clone());
            drop(st);
            if !*counted {
                *counted = true;
                self.store.metrics.backpressure.inc();
                self.store.events.bump();
            }
            return Poll::Pending;
        }
        if let Err(over) = self.store.budget.charge(self.ip, len) {
            return Poll::Ready(Ok(Some(over)));
        }
        if let Some(m) = msg.take() {
            st.queued_bytes += m.len();
            st.queue.push_back((m, self.ip));
        }
        if let Some(w) = st.reader_waker.take() {
            w.wake();
        }
        Poll::Ready(Ok(None))
    }

    /// Resolves when the mailbox is closed (deleted, collected, shutdown),
    /// so a writer idle on its client can end with a status.
    pub async fn closed(&self) -> RelayError {
        loop {
            let notified = self.mb.slot_freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = &lock(&self.mb.state).closed {
                return e.clone();
            }
            notified.await;
        }
    }
}

impl Drop for MemWriteHalf {
    fn drop(&mut self) {
        release(&self.store, &self.mb, false, self.transport);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store(limits: Limits) -> Arc<MemoryStore> {
        let timers = Timers {
            occupied_wait: Duration::from_millis(20),
            idle_timeout: Some(Duration::from_secs(5)),
            ..Timers::default()
        };
        let budget = MemoryBudget::new(
            limits.queue_budget(),
            limits.queue_budget_per_ip(limits.queue_budget()),
        );
        MemoryStore::new(limits, timers, Arc::new(Metrics::default()), budget)
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn queue_is_fifo_and_bounded() {
        let s = store(Limits {
            max_queue_messages: 2,
            ..Limits::default()
        });
        let id = [1u8; 64];
        s.create(id, IP, None).unwrap();
        let w = s
            .open_writer(&id, Transport::Grpc, IpAddr::from([127, 0, 0, 1]))
            .await
            .unwrap();
        w.send(Bytes::from_static(b"a")).await.unwrap();
        w.send(Bytes::from_static(b"b")).await.unwrap();
        // Third message is held back until the reader takes one.
        let third = w.send(Bytes::from_static(b"c"));
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut third)
                .await
                .is_err()
        );
        let r = s.open_reader(&id, Transport::Grpc).await.unwrap();
        assert_eq!(&r.recv().await.unwrap()[..], b"a");
        third.await.unwrap();
        assert_eq!(&r.recv().await.unwrap()[..], b"b");
        assert_eq!(&r.recv().await.unwrap()[..], b"c");
    }

    #[tokio::test]
    async fn occupancy_and_release() {
        let s = store(Limits::default());
        let id = [2u8; 64];
        s.create(id, IP, None).unwrap();
        let r = s.open_reader(&id, Transport::Ws).await.unwrap();
        assert_eq!(
            s.open_reader(&id, Transport::Ws).await.err(),
            Some(RelayError::ReadOccupied)
        );
        drop(r);
        let _r2 = s.open_reader(&id, Transport::Ws).await.unwrap();
        let _w = s
            .open_writer(&id, Transport::Ws, IpAddr::from([127, 0, 0, 1]))
            .await
            .unwrap();
        assert_eq!(
            s.open_writer(&id, Transport::Ws, IpAddr::from([127, 0, 0, 1]))
                .await
                .err(),
            Some(RelayError::WriteOccupied)
        );
    }

    #[tokio::test]
    async fn limits_and_ids() {
        let s = store(Limits {
            max_streams: 2,
            max_streams_per_ip: 1,
            ..Limits::default()
        });
        s.create([1; 64], IP, None).unwrap();
        assert_eq!(s.create([1; 64], IP, None), Err(RelayError::AlreadyExists));
        assert_eq!(
            s.create([2; 64], IP, None),
            Err(RelayError::TooManyStreamsPerIp(1))
        );
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
        s.create([2; 64], other, None).unwrap();
        assert_eq!(
            s.create([3; 64], "10.0.0.2".parse().unwrap(), None),
            Err(RelayError::TooManyStreams(2))
        );
        s.delete(&[1; 64], None).unwrap();
        s.create([3; 64], IP, None).unwrap();
        assert_eq!(stream_id(&[0; 63]), Err(RelayError::BadStreamId(63)));
        assert_eq!(stream_id(&[]), Err(RelayError::MissingStreamId));
    }

    #[tokio::test]
    async fn delete_requires_creator_token() {
        let s = store(Limits::default());
        s.create([1; 64], IP, Some(0)).unwrap();
        assert_eq!(s.delete(&[1; 64], Some(1)), Err(RelayError::NotCreator));
        s.delete(&[1; 64], Some(0)).unwrap();
        assert_eq!(s.delete(&[1; 64], Some(0)), Err(RelayError::NotFound));
    }

    #[tokio::test(start_paused = true)]
    async fn gc_spares_attached_mailboxes() {
        let s = store(Limits::default());
        s.create([1; 64], IP, None).unwrap();
        s.create([2; 64], IP, None).unwrap();
        let r = s.open_reader(&[2; 64], Transport::Grpc).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(s.collect_idle(Instant::now()), 1);
        assert!(!s.contains(&[1; 64]) && s.contains(&[2; 64]));
        drop(r);
        assert_eq!(s.collect_idle(Instant::now()), 0);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(s.collect_idle(Instant::now()), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_delays_after_burst() {
        let s = store(Limits {
            stream_rate_per_sec: 10.0,
            stream_burst: 3,
            ..Limits::default()
        });
        s.create([1; 64], IP, None).unwrap();
        let w = s
            .open_writer(&[1; 64], Transport::Grpc, IpAddr::from([127, 0, 0, 1]))
            .await
            .unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            w.send(Bytes::from_static(b"x")).await.unwrap();
        }
        assert_eq!(Instant::now(), t0);
        for _ in 0..2 {
            w.send(Bytes::from_static(b"x")).await.unwrap();
        }
        assert!(Instant::now() - t0 >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn delete_ends_reader_and_writer() {
        let s = store(Limits {
            max_queue_messages: 1,
            ..Limits::default()
        });
        s.create([1; 64], IP, None).unwrap();
        let r = s.open_reader(&[1; 64], Transport::Grpc).await.unwrap();
        let w = s
            .open_writer(&[1; 64], Transport::Grpc, IpAddr::from([127, 0, 0, 1]))
            .await
            .unwrap();
        s.delete(&[1; 64], None).unwrap();
        assert_eq!(r.recv().await, Err(RelayError::StreamClosed));
        assert_eq!(
            w.send(Bytes::from_static(b"x")).await,
            Err(RelayError::StreamClosed)
        );
        assert_eq!(w.closed().await, RelayError::StreamClosed);
    }
}
