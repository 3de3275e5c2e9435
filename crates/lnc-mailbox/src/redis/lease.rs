//! A side (reader or writer) of one stream held by this instance: its lease in Redis,
//! renewed every third of the lease time and released when the side detaches.

use std::sync::{Arc, Mutex};

use fred::prelude::*;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{RENEW_CHUNK, RedisStore, int, lock};
use crate::error::RelayError;
use crate::stream::{StreamId, Transport};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Side {
    Read,
    Write,
}

impl Side {
    pub(super) fn suffix(self) -> &'static str {
        match self {
            Side::Read => "r",
            Side::Write => "w",
        }
    }
    pub(super) fn other(self) -> Side {
        match self {
            Side::Read => Side::Write,
            Side::Write => Side::Read,
        }
    }
    pub(super) fn label(self) -> &'static str {
        match self {
            Side::Read => "read",
            Side::Write => "write",
        }
    }
}

/// One side of one stream held by this instance.
pub(super) struct Hold {
    pub(super) id: StreamId,
    pub(super) side: Side,
    pub(super) lease: String,
    pub(super) transport: Transport,
    /// Data wake-up (permit semantics: a wake before the wait is kept).
    pub(super) wake: Notify,
    pub(super) closed: Mutex<Option<RelayError>>,
    pub(super) closed_notify: Notify,
    pub(super) last_msg: Mutex<Option<Instant>>,
}

impl Hold {
    pub(super) fn close(&self, why: RelayError) {
        {
            let mut c = lock(&self.closed);
            if c.is_none() {
                *c = Some(why);
            }
        }
        self.wake.notify_one();
        self.closed_notify.notify_waiters();
    }

    pub(super) fn closed_err(&self) -> Option<RelayError> {
        lock(&self.closed).clone()
    }

    pub(super) async fn closed(&self) -> RelayError {
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

pub(super) fn instance_id() -> String {
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

impl RedisStore {
    pub(super) fn detach(self: &Arc<Self>, hold: &Arc<Hold>) {
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
        self.events.bump();
        let (store, hold) = (self.clone(), hold.clone());
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move { store.release(&hold).await });
        }
    }

    pub(super) async fn release(&self, hold: &Hold) {
        let keys = self.hold_keys(hold);
        let args = vec![
            Value::from(hold.lease.clone()),
            Value::from(i64::try_from(self.idle_ms).unwrap_or(i64::MAX)),
            Value::from(hex::encode(hold.id)),
            Value::from(self.prefix.clone()),
        ];
        // On failure the lease simply lapses (lease_ttl later).
        let _ = self.eval(&self.scripts.release, keys, args).await;
    }

    pub(super) async fn renew_all(&self) {
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
}
