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

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
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

const LUA_LIB: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function extend(m, q, id, prefix, ttl, now)
  redis.call('PEXPIRE', m, ttl)
  redis.call('PEXPIRE', q, ttl)
  local score = now + ttl
  redis.call('ZADD', prefix .. 'streams', 'XX', score, id)
  local o = redis.call('HGET', m, 'o')
  if o then
    local ipk = prefix .. 'ip:' .. o
    redis.call('ZADD', ipk, 'XX', score, id)
    if redis.call('PTTL', ipk) < ttl then redis.call('PEXPIRE', ipk, ttl) end
  end
end
local function wake(lease, prefix, msg)
  if lease then
    local inst = string.match(lease, '^([^:]+):')
    if inst then redis.call('PUBLISH', prefix .. 'wake:' .. inst, msg) end
  end
end
";

// KEYS: m, streams, ipset. ARGV: id, owner, creator, max_streams, max_per_ip, idle_ms.
const LUA_CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 2 end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then return 3 end
redis.call('HSET', KEYS[1], 'o', ARGV[2], 'c', ARGV[3], 'b', 0, 'wf', 0)
local idle = tonumber(ARGV[6])
local score = '+inf'
if idle > 0 then
  redis.call('PEXPIRE', KEYS[1], idle)
  score = now + idle
end
redis.call('ZADD', KEYS[2], score, ARGV[1])
redis.call('ZADD', KEYS[3], score, ARGV[1])
if idle > 0 and redis.call('PTTL', KEYS[3]) < idle then redis.call('PEXPIRE', KEYS[3], idle) end
return 0
";

// KEYS: m, q, r, w, streams. ARGV: id, token, prefix.
const LUA_DELETE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
local c = redis.call('HGET', KEYS[1], 'c')
if c and c ~= '-1' and c ~= ARGV[2] then return 2 end
local o = redis.call('HGET', KEYS[1], 'o')
local r = redis.call('GET', KEYS[3])
local w = redis.call('GET', KEYS[4])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
if o then redis.call('ZREM', ARGV[3] .. 'ip:' .. o, ARGV[1]) end
wake(r, ARGV[3], 'c' .. ARGV[1])
wake(w, ARGV[3], 'c' .. ARGV[1])
return 0
";

// KEYS: m, q, lease. ARGV: value, lease_ms, idle_ms, id, prefix.
const LUA_ATTACH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return 2 end
local idle = tonumber(ARGV[3])
if idle > 0 then extend(KEYS[1], KEYS[2], ARGV[4], ARGV[5], tonumber(ARGV[2]) + idle, now_ms()) end
return 0
";

// KEYS: (m, q, lease)*. ARGV: lease_ms, idle_ms, prefix, (value, id)*.
const LUA_RENEW: &str = r"
local lease = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local now = now_ms()
local out = {}
for i = 0, #KEYS / 3 - 1 do
  local m, q, l = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  if redis.call('EXISTS', m) == 0 then
    out[i + 1] = 1
  elseif redis.call('GET', l) ~= ARGV[4 + 2 * i] then
    out[i + 1] = 2
  else
    redis.call('PEXPIRE', l, lease)
    if idle > 0 then extend(m, q, ARGV[5 + 2 * i], ARGV[3], lease + idle, now) end
    out[i + 1] = 0
  end
end
return out
";

// KEYS: m, q, own lease, other lease. ARGV: value, idle_ms, id, prefix.
const LUA_RELEASE: &str = r"
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[3])
local idle = tonumber(ARGV[2])
if idle > 0 and redis.call('EXISTS', KEYS[1]) == 1 and redis.call('EXISTS', KEYS[4]) == 0 then
  extend(KEYS[1], KEYS[2], ARGV[3], ARGV[4], idle, now_ms())
end
return 1
";

// KEYS: m, q, w (own), r. ARGV: value, msg, max_n, max_b, id, prefix.
const LUA_PUSH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -2 end
local n = redis.call('LLEN', KEYS[2])
local b = tonumber(redis.call('HGET', KEYS[1], 'b') or '0')
local len = string.len(ARGV[2])
if n >= tonumber(ARGV[3]) or (n > 0 and b + len > tonumber(ARGV[4])) then
  redis.call('HSET', KEYS[1], 'wf', 1)
  return 0
end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'b', len)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
if n == 0 then wake(redis.call('GET', KEYS[4]), ARGV[6], 'r' .. ARGV[5]) end
return 1
";

// KEYS: m, q, r (own), w. ARGV: value, batch, id, prefix.
const LUA_POP: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {-2} end
local items = redis.call('LPOP', KEYS[2], ARGV[2])
if not items then return {0} end
local total = 0
for _, it in ipairs(items) do total = total + string.len(it) end
redis.call('HINCRBY', KEYS[1], 'b', -total)
if redis.call('HGET', KEYS[1], 'wf') == '1' then
  redis.call('HSET', KEYS[1], 'wf', 0)
  wake(redis.call('GET', KEYS[4]), ARGV[4], 'w' .. ARGV[3])
end
table.insert(items, 1, 1)
return items
";

/// A Lua script run by EVALSHA. The SHA1 comes from Redis' `SCRIPT LOAD`
/// (no local hashing), loaded lazily and again after `NOSCRIPT` (a Redis
/// restart empties its script cache).
struct Script {
    lua: String,
    sha: Mutex<Option<String>>,
}

impl Script {
    fn from_lua(lua: String) -> Self {
        Script {
            lua,
            sha: Mutex::new(None),
        }
    }
}

struct Scripts {
    create: Script,
    delete: Script,
    attach: Script,
    renew: Script,
    release: Script,
    push: Script,
    pop: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::from_lua(format!("{LUA_LIB}\n{body}"));
        Scripts {
            create: s(LUA_CREATE),
            delete: s(LUA_DELETE),
            attach: s(LUA_ATTACH),
            renew: s(LUA_RENEW),
            release: s(LUA_RELEASE),
            push: s(LUA_PUSH),
            pop: s(LUA_POP),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Side {
    Read,
    Write,
}

impl Side {
    fn suffix(self) -> &'static str {
        match self {
            Side::Read => "r",
            Side::Write => "w",
        }
    }
    fn other(self) -> Side {
        match self {
            Side::Read => Side::Write,
            Side::Write => Side::Read,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Side::Read => "read",
            Side::Write => "write",
        }
    }
}

/// One side of one stream held by this instance.
struct Hold {
    id: StreamId,
    side: Side,
    lease: String,
    transport: Transport,
    /// Data wake-up (permit semantics: a wake before the wait is kept).
    wake: Notify,
    closed: Mutex<Option<RelayError>>,
    closed_notify: Notify,
    last_msg: Mutex<Option<Instant>>,
}

impl Hold {
    fn close(&self, why: RelayError) {
        {
            let mut c = lock(&self.closed);
            if c.is_none() {
                *c = Some(why);
            }
        }
        self.wake.notify_one();
        self.closed_notify.notify_waiters();
    }

    fn closed_err(&self) -> Option<RelayError> {
        lock(&self.closed).clone()
    }

    async fn closed(&self) -> RelayError {
        loop {
            let notified = self.closed_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = self.closed_err() {
                return e;
            }
            notified.await;
        }
    }
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
    events: tokio::sync::watch::Sender<u64>,
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

fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    // Unique per process start (not secret): random SipHash keys, the pid
    // and the time.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    format!("{:016x}", h.finish())
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
            events: tokio::sync::watch::channel(0).0,
            healthy: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            total: AtomicUsize::new(0),
            nonce: AtomicU64::new(0),
            holds: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&store);
        let mut reconnects = store.sub.reconnect_rx();
        let mut messages = store.sub.message_rx();
        drop(store.client.connect());
        drop(store.sub.connect());
        let channel = format!("{}wake:{}", store.prefix, store.instance);
        let mut tasks = Vec::new();
        // Subscription: (re)subscribe on every (re)connect, then wake every
        // local waiter (wake-ups may have been lost while disconnected).
        tasks.push(tokio::spawn({
            let weak = weak.clone();
            async move {
                while reconnects.recv().await.is_ok() {
                    let Some(s) = weak.upgrade() else { return };
                    if let Err(e) = s.sub.subscribe(channel.clone()).await {
                        s.metrics.redis_errors.inc();
                        tracing::warn!(error = %e, "redis: subscribe failed");
                    }
                    s.wake_all();
                }
            }
        }));
        tasks.push(tokio::spawn({
            let weak = weak.clone();
            async move {
                loop {
                    match messages.recv().await {
                        Ok(m) => {
                            let Some(s) = weak.upgrade() else { return };
                            if let Some(b) = m.value.as_bytes() {
                                s.on_wake(b);
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let Some(s) = weak.upgrade() else { return };
                            s.wake_all();
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        }));
        // Lease renewal.
        tasks.push(tokio::spawn({
            let weak = weak.clone();
            let every = Duration::from_millis(lease_ms / 3);
            async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(s) = weak.upgrade() else { return };
                    s.renew_all().await;
                }
            }
        }));
        // Health (readiness) and the shared mailbox count.
        tasks.push(tokio::spawn({
            let every = Duration::from_millis((lease_ms / 3).min(500));
            async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(s) = weak.upgrade() else { return };
                    s.check_health().await;
                }
            }
        }));
        *lock(&store.tasks) = tasks;
        Ok(store)
    }

    fn bump(&self) {
        self.events.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// See [`crate::store::Store::subscribe`].
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.events.subscribe()
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
            self.bump();
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

    /// Runs one script with latency and error accounting. Fails fast while
    /// the health check says Redis is down, so clients get a clear error at
    /// once instead of after a command timeout.
    async fn eval(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<Value, RelayError> {
        if !self.healthy() {
            return Err(RelayError::StorageUnavailable("redis not reachable".into()));
        }
        let t = std::time::Instant::now();
        let res =
            tokio::time::timeout(self.command_timeout, self.evalsha(script, keys, args)).await;
        self.metrics
            .redis_latency
            .observe(t.elapsed().as_secs_f64());
        match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.metrics.redis_errors.inc();
                tracing::debug!(error = %e, "redis command failed");
                if matches!(
                    e.kind(),
                    ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled
                ) {
                    self.set_healthy(false);
                }
                Err(storage_err(e.details()))
            }
            Err(_) => {
                self.metrics.redis_errors.inc();
                self.set_healthy(false);
                Err(storage_err("timeout"))
            }
        }
    }

    async fn evalsha(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<Value, fred::error::Error> {
        let cached = lock(&script.sha).clone();
        let sha = match cached {
            Some(sha) => sha,
            None => self.load(script).await?,
        };
        match self
            .client
            .evalsha::<Value, _, _, _>(sha, keys.clone(), args.clone())
            .await
        {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                let sha = self.load(script).await?;
                self.client.evalsha(sha, keys, args).await
            }
            r => r,
        }
    }

    async fn load(&self, script: &Script) -> Result<String, fred::error::Error> {
        let sha: String = self.client.script_load(script.lua.clone()).await?;
        *lock(&script.sha) = Some(sha.clone());
        Ok(sha)
    }

    async fn eval_int(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<i64, RelayError> {
        let v = self.eval(script, keys, args).await?;
        int(&v).ok_or_else(|| storage_err("unexpected script reply"))
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
            self.bump();
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
            self.bump();
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
        self.bump();
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

    fn detach(self: &Arc<Self>, hold: &Arc<Hold>) {
        {
            let mut holds = lock(&self.holds);
            if holds
                .get(&(hold.id, hold.side))
                .is_some_and(|h| Arc::ptr_eq(h, hold))
            {
                holds.remove(&(hold.id, hold.side));
            }
        }
        self.metrics
            .attached
            .get_or_create(&vec![
                ("transport", hold.transport.label()),
                ("side", hold.side.label()),
            ])
            .dec();
        self.bump();
        let (store, hold) = (self.clone(), hold.clone());
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move { store.release(&hold).await });
        }
    }

    async fn release(&self, hold: &Hold) {
        let keys = vec![
            self.key(&hold.id, "m"),
            self.key(&hold.id, "q"),
            self.key(&hold.id, hold.side.suffix()),
            self.key(&hold.id, hold.side.other().suffix()),
        ];
        let args = vec![
            Value::from(hold.lease.clone()),
            Value::from(i64::try_from(self.idle_ms).unwrap_or(i64::MAX)),
            Value::from(hex::encode(hold.id)),
            Value::from(self.prefix.clone()),
        ];
        // On failure the lease simply lapses (lease_ttl later).
        let _ = self.eval(&self.scripts.release, keys, args).await;
    }

    async fn renew_all(&self) {
        let holds: Vec<Arc<Hold>> = lock(&self.holds).values().cloned().collect();
        for chunk in holds.chunks(RENEW_CHUNK) {
            let mut keys = Vec::with_capacity(chunk.len() * 3);
            let mut args = vec![
                Value::from(i64::try_from(self.lease_ms).unwrap_or(i64::MAX)),
                Value::from(i64::try_from(self.idle_ms).unwrap_or(i64::MAX)),
                Value::from(self.prefix.clone()),
            ];
            for h in chunk {
                keys.push(self.key(&h.id, "m"));
                keys.push(self.key(&h.id, "q"));
                keys.push(self.key(&h.id, h.side.suffix()));
                args.push(Value::from(h.lease.clone()));
                args.push(Value::from(hex::encode(h.id)));
            }
            let Ok(v) = self.eval(&self.scripts.renew, keys, args).await else {
                // Redis down: the halves' own calls fail and end them; a
                // lease that lapses meanwhile is caught on the next renewal.
                continue;
            };
            for (h, st) in chunk.iter().zip(v.into_array()) {
                if int(&st).unwrap_or(0) != 0 {
                    tracing::debug!(side = h.side.label(), "lease lost or mailbox gone");
                    h.close(RelayError::StreamClosed);
                }
            }
        }
    }

    fn on_wake(&self, msg: &[u8]) {
        let Some((&kind, hex_id)) = msg.split_first() else {
            return;
        };
        let mut id = [0u8; 64];
        if hex::decode_to_slice(hex_id, &mut id).is_err() {
            return;
        }
        let holds = lock(&self.holds);
        match kind {
            b'r' => {
                if let Some(h) = holds.get(&(id, Side::Read)) {
                    h.wake.notify_one();
                }
            }
            b'w' => {
                if let Some(h) = holds.get(&(id, Side::Write)) {
                    h.wake.notify_one();
                }
            }
            b'c' => {
                for side in [Side::Read, Side::Write] {
                    if let Some(h) = holds.get(&(id, side)) {
                        h.close(RelayError::StreamClosed);
                    }
                }
            }
            _ => {}
        }
    }

    fn wake_all(&self) {
        for h in lock(&self.holds).values() {
            h.wake.notify_one();
        }
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
        self.bump();
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
        let keys = vec![
            self.key(&hold.id, "m"),
            self.key(&hold.id, "q"),
            self.key(&hold.id, "r"),
            self.key(&hold.id, "w"),
        ];
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
        let keys = vec![
            self.key(&hold.id, "m"),
            self.key(&hold.id, "q"),
            self.key(&hold.id, "w"),
            self.key(&hold.id, "r"),
        ];
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

type FetchFuture = Pin<Box<dyn Future<Output = Result<Vec<Bytes>, RelayError>> + Send>>;

/// The attached reader of one Redis-kept mailbox.
pub struct RedisReadHalf {
    store: Arc<RedisStore>,
    hold: Arc<Hold>,
    buf: VecDeque<Bytes>,
    /// The pending Redis round trip, kept across polls so dropping a
    /// `recv()` future (e.g. in a `select!`) never loses popped messages.
    fetch: Option<FetchFuture>,
}

impl RedisReadHalf {
    /// Next message in order, or why the stream ended.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, RelayError>> {
        loop {
            if let Some(m) = self.buf.pop_front() {
                *lock(&self.hold.last_msg) = Some(Instant::now());
                self.store.metrics.messages.inc();
                self.store.metrics.bytes.inc_by(m.len() as u64);
                return Poll::Ready(Ok(m));
            }
            let fut = self
                .fetch
                .get_or_insert_with(|| Box::pin(self.store.clone().fetch(self.hold.clone())));
            match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => {
                    self.fetch = None;
                    self.buf.extend(r?);
                }
            }
        }
    }
}

impl Drop for RedisReadHalf {
    fn drop(&mut self) {
        self.store.detach(&self.hold);
    }
}

/// The attached writer of one Redis-kept mailbox.
pub struct RedisWriteHalf {
    store: Arc<RedisStore>,
    hold: Arc<Hold>,
    /// The writer's rate limit.
    bucket: Mutex<TokenBucket>,
}

impl RedisWriteHalf {
    /// Queues one message in Redis, after the rate limiter and while the
    /// queue has room (count and bytes); otherwise waits for the reader.
    pub async fn send(&self, msg: Bytes) -> Result<(), RelayError> {
        let store = &self.store;
        let limits = &store.limits;
        if msg.len() > limits.max_message_bytes {
            return Err(RelayError::MessageTooLarge {
                len: msg.len(),
                limit: limits.max_message_bytes,
            });
        }
        let wait = lock(&self.bucket).take(limits, Instant::now());
        if let Some(d) = wait {
            store.metrics.rate_limited.inc();
            tokio::time::sleep(d).await;
        }
        let mut counted = false;
        loop {
            if let Some(e) = self.hold.closed_err() {
                return Err(e);
            }
            match store.push(&self.hold, &msg).await? {
                1 => return Ok(()),
                0 => {
                    if !counted {
                        counted = true;
                        store.metrics.backpressure.inc();
                        store.bump();
                    }
                    let _ = tokio::time::timeout(POLL_FALLBACK, self.hold.wake.notified()).await;
                }
                _ => return Err(RelayError::StreamClosed),
            }
        }
    }

    /// Resolves when the mailbox is deleted, the lease lost or the instance
    /// shuts down.
    pub async fn closed(&self) -> RelayError {
        self.hold.closed().await
    }
}

impl Drop for RedisWriteHalf {
    fn drop(&mut self) {
        self.store.detach(&self.hold);
    }
}
