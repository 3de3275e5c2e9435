//! The Redis backend: many relay instances behind a load balancer act as one
//! relay by keeping every mailbox in one shared Redis.
//!
//! Per stream (hex id `H`, prefix `P`, the `{H}` hash tag groups a stream's
//! keys):
//! - `P{H}:m` hash: owner IP `o`, creating token `c` (-1 = none), queued
//!   bytes `b`, writer-waiting flag `wf`;
//! - `P{H}:q` list: the queued messages, oldest first (RPUSH/LPOP);
//! - `P{H}:r`, `P{H}:w`: the read and write leases, `INSTANCE:NONCE`, with a
//!   PX expiry the holding instance renews every third of the lease;
//! - `Pstreams` and `Pip:IP` sorted sets: live ids scored by their expiry
//!   deadline, for the `max_streams` and `max_streams_per_ip` caps.
//!
//! Every state change is one Lua script (atomic on the Redis side), so two
//! instances can never both take a side or both see room for a message.
//! Idle GC is Redis key expiry: while a half is attached its instance keeps
//! pushing the mailbox's expiry to `lease + idle_timeout`; when the last half
//! leaves (or its instance dies and the lease lapses) the clock runs down and
//! Redis deletes the keys, with no scanning and no instance needed.
//!
//! Wake-ups: each instance SUBSCRIBEs to one channel, `Pwake:INSTANCE`. A
//! writer that fills an empty queue publishes `r<H>` to the reader's instance
//! (named in the read lease); a reader that frees room for a waiting writer
//! publishes `w<H>`; a delete publishes `c<H>` to both holders. Pub/sub is
//! at-most-once, so every waiter also re-polls after [`POLL_FALLBACK`], and
//! all local waiters are woken when the subscription reconnects.
//!
//! Files: this one holds the store (set-up, health, mailbox operations); `scripts` runs
//! the Lua in `lua/`; `lease` is a side held by this instance (renewal, release); `wake`
//! the wake-up subscription; `halves` the attached reader and writer.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{Limits, RedisConfig, Timers};
use crate::error::RelayError;
use crate::metrics::Metrics;
use crate::rate::TokenBucket;
use crate::stream::{StoreStats, StreamId, Transport};

/// How long a waiting reader or writer sleeps before re-polling Redis when
/// no wake-up arrives (pub/sub messages can be lost across a reconnect).
pub const POLL_FALLBACK: Duration = Duration::from_millis(500);

/// Messages a reader takes from Redis per round trip (they are then handed
/// out locally in order; a reader dropped mid-batch loses the rest exactly
/// like a client dropped mid-message: GBN resends).
const POP_BATCH: usize = 16;

/// Leases renewed per script call.
const RENEW_CHUNK: usize = 256;

/// Why the Redis backend could not be set up (a bad URL; an unreachable
/// Redis is not an error at start: readiness reports it).
#[derive(Debug, thiserror::Error)]
#[error("mailbox: bad --redis URL {url:?}: {reason} (expected redis://HOST:PORT[/DB])")]
pub struct RedisSetupError {
    url: String,
    reason: String,
}

mod halves;
mod lease;
mod scripts;
mod wake;

pub use halves::{RedisReadHalf, RedisWriteHalf};
use lease::{Hold, Side, instance_id};
use scripts::Scripts;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Mailboxes kept in a shared Redis (see the module docs for the layout).
pub struct RedisStore {
    client: Client,
    sub: SubscriberClient,
    scripts: Scripts,
    prefix: String,
    instance: String,
    lease_ms: u64,
    idle_ms: u64,
    command_timeout: Duration,
    limits: Limits,
    timers: Timers,
    metrics: Arc<Metrics>,
    events: crate::stream::Events,
    healthy: AtomicBool,
    shutting_down: AtomicBool,
    total: AtomicUsize,
    nonce: AtomicU64,
    holds: Mutex<HashMap<(StreamId, Side), Arc<Hold>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        let (c, s) = (self.client.clone(), self.sub.clone());
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                let _ = c.quit().await;
                let _ = s.quit().await;
            });
        }
    }
}

fn storage_err(e: impl std::fmt::Display) -> RelayError {
    RelayError::StorageUnavailable(format!("redis: {e}"))
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        other => other.as_i64(),
    }
}

/// Runs `job` on the store every `period` until the store is dropped.
fn every<F, Fut>(
    store: std::sync::Weak<RedisStore>,
    period: Duration,
    job: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(Arc<RedisStore>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(s) = store.upgrade() else { return };
            job(s).await;
        }
    })
}

impl RedisStore {
    /// Connects (in the background: an unreachable Redis only makes the
    /// store unhealthy until it answers) and starts the lease renewal,
    /// health check and wake-up subscription tasks.
    pub fn start(
        config: &RedisConfig,
        limits: Limits,
        timers: Timers,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, RedisSetupError> {
        if !config.url.starts_with("redis://") {
            return Err(RedisSetupError {
                url: config.url.clone(),
                reason:
                    "only plain redis:// is supported (TLS to Redis: use a local stunnel/sidecar)"
                        .into(),
            });
        }
        let mut fc = Config::from_url(&config.url).map_err(|e| RedisSetupError {
            url: config.url.clone(),
            reason: e.details().to_owned(),
        })?;
        fc.fail_fast = false;
        let mut builder = Builder::from_config(fc);
        builder
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 1_000, 2))
            .with_connection_config(|c| {
                c.connection_timeout = config.command_timeout;
                c.internal_command_timeout = config.command_timeout;
                c.max_command_attempts = 2;
            })
            .with_performance_config(|p| {
                p.default_command_timeout = config.command_timeout;
            });
        let setup = |e: fred::error::Error| RedisSetupError {
            url: config.url.clone(),
            reason: e.details().to_owned(),
        };
        let client = builder.build().map_err(setup)?;
        let sub = builder.build_subscriber_client().map_err(setup)?;
        let lease_ms = u64::try_from(config.lease_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(300);
        let idle_ms = timers.idle_timeout.map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        let store = Arc::new(RedisStore {
            client,
            sub,
            scripts: Scripts::new(),
            prefix: config.prefix.clone(),
            instance: instance_id(),
            lease_ms,
            idle_ms,
            command_timeout: config.command_timeout,
            limits,
            timers,
            metrics,
            events: crate::stream::Events::default(),
            healthy: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            total: AtomicUsize::new(0),
            nonce: AtomicU64::new(0),
            holds: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&store);
        let reconnects = store.sub.reconnect_rx();
        let messages = store.sub.message_rx();
        drop(store.client.connect());
        drop(store.sub.connect());
        let mut tasks = wake::spawn_subscription(&store, weak.clone(), reconnects, messages);
        // Lease renewal.
        tasks.push(every(
            weak.clone(),
            Duration::from_millis(lease_ms / 3),
            |s| async move { s.renew_all().await },
        ));
        // Health (readiness) and the shared mailbox count.
        tasks.push(every(
            weak,
            Duration::from_millis((lease_ms / 3).min(500)),
            |s| async move { s.check_health().await },
        ));
        *lock(&store.tasks) = tasks;
        Ok(store)
    }

    /// The lifecycle events (see [`crate::store::Store::subscribe`]).
    pub(crate) fn events(&self) -> &crate::stream::Events {
        &self.events
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the last health check reached Redis.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn set_healthy(&self, up: bool) {
        let was = self.healthy.swap(up, Ordering::Relaxed);
        self.metrics.redis_up.set(i64::from(up));
        if was != up {
            if up {
                tracing::info!("redis reachable: mailbox ready");
            } else {
                tracing::warn!("redis unreachable: mailbox not ready");
            }
            self.events.bump();
        }
    }

    async fn check_health(&self) {
        let t = std::time::Instant::now();
        let res = tokio::time::timeout(
            self.command_timeout,
            self.client
                .zcard::<i64, _>(format!("{}streams", self.prefix)),
        )
        .await;
        self.metrics
            .redis_latency
            .observe(t.elapsed().as_secs_f64());
        match res {
            Ok(Ok(n)) => {
                self.total
                    .store(usize::try_from(n).unwrap_or(0), Ordering::Relaxed);
                self.metrics.mailboxes.set(n);
                self.set_healthy(true);
            }
            Ok(Err(e)) => {
                self.metrics.redis_errors.inc();
                tracing::debug!(error = %e, "redis health check failed");
                self.set_healthy(false);
            }
            Err(_) => {
                self.metrics.redis_errors.inc();
                self.set_healthy(false);
            }
        }
    }

    fn key(&self, id: &StreamId, suffix: &str) -> String {
        format!("{}{{{}}}:{}", self.prefix, hex::encode(id), suffix)
    }

    /// The keys the pop, push and release scripts take for a held side: the mailbox, its
    /// queue, the holder's own lease and the other side's (whose holder a wake-up goes to).
    fn hold_keys(&self, hold: &Hold) -> Vec<String> {
        vec![
            self.key(&hold.id, "m"),
            self.key(&hold.id, "q"),
            self.key(&hold.id, hold.side.suffix()),
            self.key(&hold.id, hold.side.other().suffix()),
        ]
    }

    fn check_running(&self) -> Result<(), RelayError> {
        if self.shutting_down.load(Ordering::Relaxed) {
            Err(RelayError::ShuttingDown)
        } else {
            Ok(())
        }
    }

    /// NewCipherBox across all instances.
    pub async fn create(
        &self,
        id: StreamId,
        owner: IpAddr,
        creator: Option<u32>,
    ) -> Result<(), RelayError> {
        self.check_running()?;
        let hex_id = hex::encode(id);
        let owner = owner.to_canonical().to_string();
        let keys = vec![
            self.key(&id, "m"),
            format!("{}streams", self.prefix),
            format!("{}ip:{}", self.prefix, owner),
        ];
        let args = vec![
            Value::from(hex_id),
            Value::from(owner),
            Value::from(creator.map_or(-1, i64::from)),
            Value::from(i64::try_from(self.limits.max_streams).unwrap_or(i64::MAX)),
            Value::from(i64::try_from(self.limits.max_streams_per_ip).unwrap_or(i64::MAX)),
            Value::from(i64::try_from(self.idle_ms).unwrap_or(i64::MAX)),
        ];
        let r = match self.eval_int(&self.scripts.create, keys, args).await? {
            0 => Ok(()),
            1 => Err(RelayError::AlreadyExists),
            2 => Err(RelayError::TooManyStreams(self.limits.max_streams)),
            _ => Err(RelayError::TooManyStreamsPerIp(
                self.limits.max_streams_per_ip,
            )),
        };
        if r.is_ok() {
            self.events.bump();
        }
        r
    }

    /// DelCipherBox across all instances; the holders (wherever they are)
    /// are told through their wake channel.
    pub async fn delete(&self, id: &StreamId, token: Option<u32>) -> Result<(), RelayError> {
        let keys = vec![
            self.key(id, "m"),
            self.key(id, "q"),
            self.key(id, "r"),
            self.key(id, "w"),
            format!("{}streams", self.prefix),
        ];
        let args = vec![
            Value::from(hex::encode(id)),
            Value::from(token.map_or(-1, i64::from)),
            Value::from(self.prefix.clone()),
        ];
        let r = match self.eval_int(&self.scripts.delete, keys, args).await? {
            0 => Ok(()),
            1 => Err(RelayError::NotFound),
            _ => Err(RelayError::NotCreator),
        };
        if r.is_ok() {
            // Local holders learn it at once (the publish reaches us too).
            for side in [Side::Read, Side::Write] {
                if let Some(h) = lock(&self.holds).get(&(*id, side)) {
                    h.close(RelayError::StreamClosed);
                }
            }
            self.events.bump();
        }
        r
    }

    /// Whether the mailbox exists (on any instance).
    pub async fn contains(&self, id: &StreamId) -> Result<bool, RelayError> {
        let key = self.key(id, "m");
        let r = tokio::time::timeout(self.command_timeout, self.client.exists::<i64, _>(key))
            .await
            .map_err(|_| storage_err("timeout"))?
            .map_err(|e| storage_err(e.details()))?;
        Ok(r > 0)
    }

    async fn attach(
        self: &Arc<Self>,
        id: &StreamId,
        side: Side,
        transport: Transport,
    ) -> Result<Arc<Hold>, RelayError> {
        self.check_running()?;
        let deadline = Instant::now() + self.timers.occupied_wait;
        let lease = format!(
            "{}:{}",
            self.instance,
            self.nonce.fetch_add(1, Ordering::Relaxed)
        );
        loop {
            let keys = vec![
                self.key(id, "m"),
                self.key(id, "q"),
                self.key(id, side.suffix()),
            ];
            let args = vec![
                Value::from(lease.clone()),
                Value::from(i64::try_from(self.lease_ms).unwrap_or(i64::MAX)),
                Value::from(i64::try_from(self.idle_ms).unwrap_or(i64::MAX)),
                Value::from(hex::encode(id)),
                Value::from(self.prefix.clone()),
            ];
            match self.eval_int(&self.scripts.attach, keys, args).await? {
                0 => break,
                1 => return Err(RelayError::NotFound),
                _ => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(match side {
                            Side::Read => RelayError::ReadOccupied,
                            Side::Write => RelayError::WriteOccupied,
                        });
                    }
                    // The holder may be on another instance: poll briefly.
                    tokio::time::sleep((deadline - now).min(Duration::from_millis(25))).await;
                }
            }
        }
        let hold = Arc::new(Hold {
            id: *id,
            side,
            lease,
            transport,
            wake: Notify::new(),
            closed: Mutex::new(None),
            closed_notify: Notify::new(),
            last_msg: Mutex::new(None),
        });
        if let Some(old) = lock(&self.holds).insert((*id, side), hold.clone()) {
            // Its lease is gone (we just took the side): end it.
            old.close(RelayError::StreamClosed);
        }
        if self.shutting_down.load(Ordering::Relaxed) {
            hold.close(RelayError::ShuttingDown);
        }
        self.metrics
            .attached
            .get_or_create(&vec![
                ("transport", transport.label()),
                ("side", side.label()),
            ])
            .inc();
        self.events.bump();
        Ok(hold)
    }

    /// RecvStream: attaches as the single reader of `id` across instances.
    pub async fn open_reader(
        self: &Arc<Self>,
        id: &StreamId,
        transport: Transport,
    ) -> Result<RedisReadHalf, RelayError> {
        let hold = self.attach(id, Side::Read, transport).await?;
        Ok(RedisReadHalf {
            store: self.clone(),
            hold,
            buf: VecDeque::new(),
            fetch: None,
        })
    }

    /// SendStream: attaches as the single writer of `id` across instances.
    pub async fn open_writer(
        self: &Arc<Self>,
        id: &StreamId,
        transport: Transport,
    ) -> Result<RedisWriteHalf, RelayError> {
        let hold = self.attach(id, Side::Write, transport).await?;
        let now = Instant::now();
        Ok(RedisWriteHalf {
            store: self.clone(),
            hold,
            bucket: Mutex::new(TokenBucket::full(&self.limits, now)),
        })
    }

    /// Ends this instance's halves with `server shutting down` and releases
    /// their leases (the mailboxes stay for the other instances).
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let holds: Vec<Arc<Hold>> = lock(&self.holds).drain().map(|(_, h)| h).collect();
        for h in &holds {
            h.close(RelayError::ShuttingDown);
        }
        let releases = holds.iter().map(|h| self.release(h));
        let _ = tokio::time::timeout(
            self.command_timeout,
            futures_util::future::join_all(releases),
        )
        .await;
        self.events.bump();
    }

    /// This instance's counts (see [`StoreStats`]).
    pub fn stats(&self) -> StoreStats {
        let holds = lock(&self.holds);
        let now = Instant::now();
        let mut s = StoreStats {
            mailboxes: self.total.load(Ordering::Relaxed),
            ..StoreStats::default()
        };
        for h in holds.values() {
            match h.side {
                Side::Read => {
                    s.readers += 1;
                    if lock(&h.last_msg)
                        .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(10))
                    {
                        s.active += 1;
                    }
                }
                Side::Write => s.writers += 1,
            }
        }
        s
    }

    /// Takes up to [`POP_BATCH`] messages, or none; `Err` once the stream is
    /// gone or the read lease lost.
    async fn pop(&self, hold: &Hold) -> Result<Vec<Bytes>, RelayError> {
        let keys = self.hold_keys(hold);
        let args = vec![
            Value::from(hold.lease.clone()),
            Value::from(POP_BATCH as i64),
            Value::from(hex::encode(hold.id)),
            Value::from(self.prefix.clone()),
        ];
        let v = self.eval(&self.scripts.pop, keys, args).await?;
        let mut items = v.into_array().into_iter();
        match items.next().as_ref().and_then(int) {
            Some(1) => Ok(items.filter_map(Value::into_bytes).collect()),
            Some(0) => Ok(Vec::new()),
            Some(_) => Err(RelayError::StreamClosed),
            None => Err(storage_err("unexpected script reply")),
        }
    }

    async fn fetch(self: Arc<Self>, hold: Arc<Hold>) -> Result<Vec<Bytes>, RelayError> {
        loop {
            if let Some(e) = hold.closed_err() {
                return Err(e);
            }
            let got = self.pop(&hold).await?;
            if !got.is_empty() {
                return Ok(got);
            }
            let _ = tokio::time::timeout(POLL_FALLBACK, hold.wake.notified()).await;
        }
    }

    /// 1 = queued, 0 = full, < 0 = gone.
    async fn push(&self, hold: &Hold, msg: &Bytes) -> Result<i64, RelayError> {
        let keys = self.hold_keys(hold);
        let args = vec![
            Value::from(hold.lease.clone()),
            Value::Bytes(msg.clone()),
            Value::from(i64::try_from(self.limits.max_queue_messages).unwrap_or(i64::MAX)),
            Value::from(i64::try_from(self.limits.max_queue_bytes).unwrap_or(i64::MAX)),
            Value::from(hex::encode(hold.id)),
            Value::from(self.prefix.clone()),
        ];
        self.eval_int(&self.scripts.push, keys, args).await
    }
}
