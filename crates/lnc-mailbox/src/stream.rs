//! What both store backends and the front ends share about a stream: its 64-byte id, the
//! protocol an attached half speaks, and the counts a store reports. Kept apart from
//! `store` (the dispatch over the backends) so `memory` and `redis` depend on it, not on
//! the module that depends on them.

use crate::error::RelayError;

/// A 64-byte stream id.
pub type StreamId = [u8; 64];

/// Checks the id length before any lookup (the Go relay pads/truncates).
pub fn stream_id(bytes: &[u8]) -> Result<StreamId, RelayError> {
    if bytes.is_empty() {
        return Err(RelayError::MissingStreamId);
    }
    StreamId::try_from(bytes).map_err(|_| RelayError::BadStreamId(bytes.len()))
}

/// Which protocol an attached half speaks (a metrics label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Native gRPC.
    Grpc,
    /// WebSocket JSON frames.
    Ws,
}

impl Transport {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Ws => "ws",
        }
    }
}

/// Counts the store exposes for tests and the scrape handler. With the Redis
/// backend, `readers`, `writers` and `active` count this instance's attached
/// halves, `mailboxes` is the shared total (refreshed every health check) and
/// `queued` is not tracked (0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Live mailboxes.
    pub mailboxes: usize,
    /// Mailboxes with a reader.
    pub readers: usize,
    /// Mailboxes with a writer.
    pub writers: usize,
    /// Messages queued over all mailboxes.
    pub queued: usize,
    /// Bytes queued over all mailboxes (memory backend: what the queue budget counts).
    pub queued_bytes: usize,
    /// Readers that got a message in the last 10 s.
    pub active: usize,
}

/// Lifecycle events of a store (create, delete, attach, detach, back-pressure, health
/// change) as a counter that waiters watch, so tests and `ServerHandle::wait_for` wait
/// for an event instead of polling.
pub(crate) struct Events(tokio::sync::watch::Sender<u64>);

impl Default for Events {
    fn default() -> Self {
        Events(tokio::sync::watch::channel(0).0)
    }
}

impl Events {
    /// Records one event, waking every subscriber.
    pub(crate) fn bump(&self) {
        self.0.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that is notified on each later event.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
}
