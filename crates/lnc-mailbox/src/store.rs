//! The stream store: the boundary between the protocol front ends (`grpc`,
//! `ws`) and where mailboxes live.
//!
//! The front ends only use [`Store`], [`ReadHalf`] and [`WriteHalf`]; the
//! backend behind them is either [`crate::memory`] (one process, the default)
//! or [`crate::redis`] (many relay instances sharing one Redis). Both give the
//! same errors with the same texts and codes, because unmodified Go clients
//! match on them.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::budget::MemoryBudget;
use crate::config::{Limits, Timers};
use crate::error::RelayError;
use crate::memory::{MemReadHalf, MemWriteHalf, MemoryStore};
use crate::metrics::Metrics;
use crate::redis::{RedisReadHalf, RedisStore, RedisWriteHalf};

pub use crate::stream::{StoreStats, StreamId, Transport, stream_id};

enum Backend {
    Memory(Arc<MemoryStore>),
    Redis(Arc<RedisStore>),
}

/// All live mailboxes, wherever they are kept.
pub struct Store {
    backend: Backend,
    /// The relay's memory budget: queued messages (memory backend), calls and connections.
    budget: Arc<MemoryBudget>,
}

/// The budget the limits ask for, with its caps published as metrics.
fn budget(limits: &Limits, metrics: &Metrics) -> Arc<MemoryBudget> {
    let total = limits.queue_budget();
    let budget = MemoryBudget::new(total, limits.queue_budget_per_ip(total));
    metrics.queue_budget_bytes.set(budget.total_cap() as i64);
    metrics
        .queue_budget_per_ip_bytes
        .set(budget.per_ip_cap() as i64);
    budget
}

impl Store {
    /// An empty in-memory store (single instance).
    pub fn new(limits: Limits, timers: Timers, metrics: Arc<Metrics>) -> Arc<Self> {
        let budget = budget(&limits, &metrics);
        Arc::new(Store {
            backend: Backend::Memory(MemoryStore::new(limits, timers, metrics, budget.clone())),
            budget,
        })
    }

    /// A store kept in Redis, shared with every relay instance using the same
    /// Redis and key prefix. Starts even while Redis is down (readiness then
    /// reports unhealthy and requests fail with `mailbox storage unavailable`).
    pub fn redis(
        config: &crate::config::RedisConfig,
        limits: Limits,
        timers: Timers,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, crate::redis::RedisSetupError> {
        let budget = budget(&limits, &metrics);
        Ok(Arc::new(Store {
            backend: Backend::Redis(RedisStore::start(config, limits, timers, metrics)?),
            budget,
        }))
    }

    /// The relay's memory budget, which the listener charges calls and connections to.
    pub(crate) fn budget(&self) -> Arc<MemoryBudget> {
        self.budget.clone()
    }

    /// Receives a notification on each lifecycle event (create, delete,
    /// attach, detach, back-pressure, health change), so tests can wait for
    /// an event instead of sleeping.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        match &self.backend {
            Backend::Memory(s) => s.events().subscribe(),
            Backend::Redis(s) => s.events().subscribe(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        match &self.backend {
            Backend::Memory(s) => s.limits(),
            Backend::Redis(s) => s.limits(),
        }
    }

    /// Whether the store can serve requests (readiness): always for memory;
    /// for Redis, whether the last health check reached it.
    pub fn healthy(&self) -> bool {
        match &self.backend {
            Backend::Memory(_) => true,
            Backend::Redis(s) => s.healthy(),
        }
    }

    /// The backend's name ("memory" or "redis"), for logs and `/healthz`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// NewCipherBox: creates a mailbox owned by `owner` (for the per-IP cap)
    /// and, with create auth on, bound to the token index `creator`.
    pub async fn create(
        &self,
        id: StreamId,
        owner: IpAddr,
        creator: Option<u32>,
    ) -> Result<(), RelayError> {
        match &self.backend {
            Backend::Memory(s) => s.create(id, owner, creator),
            Backend::Redis(s) => s.create(id, owner, creator).await,
        }
    }

    /// DelCipherBox: removes the mailbox and ends its reader and writer
    /// (on any instance). With create auth on, only the creating token may
    /// delete.
    pub async fn delete(&self, id: &StreamId, token: Option<u32>) -> Result<(), RelayError> {
        match &self.backend {
            Backend::Memory(s) => s.delete(id, token),
            Backend::Redis(s) => s.delete(id, token).await,
        }
    }

    /// RecvStream: attaches as the single reader of `id`, waiting up to
    /// `occupied_wait` for a current reader to leave.
    pub async fn open_reader(
        &self,
        id: &StreamId,
        transport: Transport,
    ) -> Result<ReadHalf, RelayError> {
        match &self.backend {
            Backend::Memory(s) => s.open_reader(id, transport).await.map(ReadHalf::Memory),
            Backend::Redis(s) => s.open_reader(id, transport).await.map(ReadHalf::Redis),
        }
    }

    /// SendStream: attaches as the single writer of `id`. What it queues is charged to
    /// `writer` (the client IP) in the queue budget (memory backend; Redis holds the queues
    /// of the Redis backend).
    pub async fn open_writer(
        &self,
        id: &StreamId,
        transport: Transport,
        writer: IpAddr,
    ) -> Result<WriteHalf, RelayError> {
        match &self.backend {
            Backend::Memory(s) => s
                .open_writer(id, transport, writer)
                .await
                .map(WriteHalf::Memory),
            Backend::Redis(s) => s.open_writer(id, transport).await.map(WriteHalf::Redis),
        }
    }

    /// Memory backend: deletes mailboxes idle for `idle_timeout`, returns how
    /// many. Redis expires idle mailboxes itself (key TTLs), so this is 0.
    pub fn collect_idle(&self, now: tokio::time::Instant) -> usize {
        match &self.backend {
            Backend::Memory(s) => s.collect_idle(now),
            Backend::Redis(_) => 0,
        }
    }

    /// Ends every stream attached here with `server shutting down` and
    /// accepts no new ones. Memory: the mailboxes go too. Redis: the
    /// mailboxes stay (other instances serve them) and this instance's
    /// leases are released so clients can re-attach elsewhere at once.
    pub async fn shutdown(&self) {
        match &self.backend {
            Backend::Memory(s) => s.shutdown(),
            Backend::Redis(s) => s.shutdown().await,
        }
    }

    /// Current counts (see [`StoreStats`] for what Redis mode counts).
    pub fn stats(&self) -> StoreStats {
        match &self.backend {
            Backend::Memory(s) => s.stats(),
            Backend::Redis(s) => s.stats(),
        }
    }

    /// Whether the stream id is live (on any instance).
    pub async fn contains(&self, id: &StreamId) -> Result<bool, RelayError> {
        match &self.backend {
            Backend::Memory(s) => Ok(s.contains(id)),
            Backend::Redis(s) => s.contains(id).await,
        }
    }
}

/// The attached reader of one mailbox; dropping it frees the read side.
pub enum ReadHalf {
    /// In this process.
    Memory(MemReadHalf),
    /// In Redis (holds the read lease).
    Redis(RedisReadHalf),
}

impl ReadHalf {
    /// Polls for the next message in order, or why the stream ended.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, RelayError>> {
        match self {
            ReadHalf::Memory(h) => h.poll_recv(cx),
            ReadHalf::Redis(h) => h.poll_recv(cx),
        }
    }

    /// Next message in order, or why the stream ended. Cancel-safe: a message
    /// is never lost by dropping this future.
    pub async fn recv(&mut self) -> Result<Bytes, RelayError> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

/// The attached writer of one mailbox; dropping it frees the write side.
pub enum WriteHalf {
    /// In this process.
    Memory(MemWriteHalf),
    /// In Redis (holds the write lease).
    Redis(RedisWriteHalf),
}

impl WriteHalf {
    /// Queues one message, after the rate limiter and while the queue has
    /// room; otherwise waits (back-pressure). Fails if the message is too
    /// large or the stream ended.
    pub async fn send(&self, msg: Bytes) -> Result<(), RelayError> {
        match self {
            WriteHalf::Memory(h) => h.send(msg).await,
            WriteHalf::Redis(h) => h.send(msg).await,
        }
    }

    /// Resolves when the mailbox is closed (deleted, collected, shutdown,
    /// lease lost), so a writer idle on its client can end with a status.
    pub async fn closed(&self) -> RelayError {
        match self {
            WriteHalf::Memory(h) => h.closed().await,
            WriteHalf::Redis(h) => h.closed().await,
        }
    }
}
