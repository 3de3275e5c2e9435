//! The attached reader and writer of one Redis-kept mailbox.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::time::Instant;

use super::{Hold, POLL_FALLBACK, RedisStore, lock};
use crate::error::RelayError;
use crate::rate::TokenBucket;

pub(super) type FetchFuture = Pin<Box<dyn Future<Output = Result<Vec<Bytes>, RelayError>> + Send>>;

/// The attached reader of one Redis-kept mailbox.
pub struct RedisReadHalf {
    pub(super) store: Arc<RedisStore>,
    pub(super) hold: Arc<Hold>,
    pub(super) buf: VecDeque<Bytes>,
    /// The pending Redis round trip, kept across polls so dropping a
    /// `recv()` future (e.g. in a `select!`) never loses popped messages.
    pub(super) fetch: Option<FetchFuture>,
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
    pub(super) store: Arc<RedisStore>,
    pub(super) hold: Arc<Hold>,
    /// The writer's rate limit.
    pub(super) bucket: Mutex<TokenBucket>,
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
                        store.events.bump();
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
