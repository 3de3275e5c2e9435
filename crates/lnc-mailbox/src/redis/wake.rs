//! Wake-ups: each instance SUBSCRIBEs to `Pwake:INSTANCE`; scripts publish `r<H>` (data
//! for a reader), `w<H>` (room for a writer) and `c<H>` (deleted) to the holder's instance.

use std::sync::{Arc, Weak};

use fred::prelude::*;
use tokio::task::JoinHandle;

use super::lease::Side;
use super::{RedisStore, lock};
use crate::error::RelayError;

/// (Re)subscribes on every (re)connect, then wakes every local waiter (wake-ups may have
/// been lost while disconnected); hands each wake-up message to its hold.
pub(super) fn spawn_subscription(
    store: &Arc<RedisStore>,
    weak: Weak<RedisStore>,
    mut reconnects: tokio::sync::broadcast::Receiver<fred::types::config::Server>,
    mut messages: tokio::sync::broadcast::Receiver<fred::types::Message>,
) -> Vec<JoinHandle<()>> {
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
    tasks
}

impl RedisStore {
    pub(super) fn on_wake(&self, msg: &[u8]) {
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

    pub(super) fn wake_all(&self) {
        for h in lock(&self.holds).values() {
            h.wake.notify_one();
        }
    }
}
