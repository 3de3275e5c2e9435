//! Relay-message faults without a faulty network: a [`Mailbox`] wrapper whose send
//! streams lose, duplicate and reorder whole messages at chosen rates, from a seed (so a
//! failing soak replays). The real relays are FIFO and lossless; this is what GBN exists
//! for all the same (a relay that restarts loses its queues, a proxy in between may
//! replay), and what its recovery speed is measured on (BENCHMARKS.md, "Relay-message
//! faults").

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::Sink;
use lnc_core::pairing::StreamId;
use lnc_tunnel::mailbox::{PacketSink, PacketStream};
use lnc_tunnel::rt::BoxFuture;
use lnc_tunnel::{Mailbox, MailboxError};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// Rates in `[0, 1]` of each fault, per message written.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// The message never arrives.
    pub loss: f64,
    /// The message arrives twice in a row.
    pub duplicate: f64,
    /// The message arrives after the next one.
    pub reorder: f64,
    /// The seed of the fault sequence.
    pub seed: u64,
}

impl Faults {
    /// The same rate of every fault.
    pub fn each(rate: f64, seed: u64) -> Faults {
        Faults {
            loss: rate,
            duplicate: rate,
            reorder: rate,
            seed,
        }
    }
}

/// What the faults did so far.
#[derive(Debug, Default)]
pub struct FaultStats {
    /// Messages written.
    pub written: AtomicU64,
    /// Messages dropped.
    pub lost: AtomicU64,
    /// Messages sent twice.
    pub duplicated: AtomicU64,
    /// Messages held back behind the next one.
    pub reordered: AtomicU64,
}

impl std::fmt::Display for FaultStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        write!(
            f,
            "written={} lost={} duplicated={} reordered={}",
            g(&self.written),
            g(&self.lost),
            g(&self.duplicated),
            g(&self.reordered)
        )
    }
}

/// `inner` with faults on every send stream it opens.
pub struct FaultyMailbox {
    inner: Arc<dyn Mailbox>,
    faults: Faults,
    rng: Arc<Mutex<ChaCha8Rng>>,
    /// Shared by every stream of this mailbox.
    pub stats: Arc<FaultStats>,
}

impl FaultyMailbox {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Mailbox>, faults: Faults) -> Self {
        FaultyMailbox {
            inner,
            faults,
            rng: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(faults.seed))),
            stats: Arc::default(),
        }
    }
}

impl Mailbox for FaultyMailbox {
    fn open_recv(&self, id: StreamId) -> BoxFuture<Result<PacketStream, MailboxError>> {
        self.inner.open_recv(id)
    }

    fn open_send(&self, id: StreamId) -> BoxFuture<Result<PacketSink, MailboxError>> {
        let open = self.inner.open_send(id);
        let (faults, rng, stats) = (self.faults, self.rng.clone(), self.stats.clone());
        Box::pin(async move {
            let inner = open.await?;
            Ok(Box::pin(FaultySink {
                inner,
                out: VecDeque::new(),
                held: None,
                faults,
                rng,
                stats,
            }) as PacketSink)
        })
    }

    fn create(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        self.inner.create(id)
    }

    fn delete(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        self.inner.delete(id)
    }
}

struct FaultySink {
    inner: PacketSink,
    /// Messages decided on, waiting for the inner sink.
    out: VecDeque<Vec<u8>>,
    /// A message to be sent after the next one (reordering).
    held: Option<Vec<u8>>,
    faults: Faults,
    rng: Arc<Mutex<ChaCha8Rng>>,
    stats: Arc<FaultStats>,
}

impl FaultySink {
    fn roll(&self, rate: f64) -> bool {
        let r = self.rng.lock().unwrap().next_u32();
        f64::from(r) < rate * f64::from(u32::MAX)
    }

    /// Hands the decided messages to the inner sink while it takes them.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), MailboxError>> {
        while !self.out.is_empty() {
            match self.inner.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let m = self.out.pop_front().unwrap_or_default();
                    self.inner.as_mut().start_send(m)?;
                }
                other => return other,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Sink<Vec<u8>> for FaultySink {
    type Error = MailboxError;

    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), MailboxError>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => self.inner.as_mut().poll_ready(cx),
            other => other,
        }
    }

    fn start_send(mut self: Pin<&mut Self>, msg: Vec<u8>) -> Result<(), MailboxError> {
        self.stats.written.fetch_add(1, Ordering::Relaxed);
        if self.roll(self.faults.loss) {
            self.stats.lost.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if self.held.is_none() && self.roll(self.faults.reorder) {
            self.stats.reordered.fetch_add(1, Ordering::Relaxed);
            self.held = Some(msg);
            return Ok(());
        }
        if self.roll(self.faults.duplicate) {
            self.stats.duplicated.fetch_add(1, Ordering::Relaxed);
            self.out.push_back(msg.clone());
        }
        self.out.push_back(msg);
        if let Some(h) = self.held.take() {
            self.out.push_back(h);
        }
        Ok(())
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), MailboxError>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => self.inner.as_mut().poll_flush(cx),
            other => other,
        }
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), MailboxError>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => self.inner.as_mut().poll_close(cx),
            other => other,
        }
    }
}
