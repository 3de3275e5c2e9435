//! Several addresses of one relay (instances of a scaled-out mailbox behind
//! no load balancer, or several load balancers): a [`Mailbox`] that uses one
//! at a time and moves to the next when the current one fails.
//!
//! Every instance serves the same mailboxes (they share their state), so a
//! stream re-opened on another instance continues where it stopped; the GBN
//! driver's retransmission recovers the packets that were in flight on the
//! failed instance. Only transport failures ([`Status::NotConnected`]: refused,
//! reset, timed out, relay storage unavailable) move to the next address;
//! `stream not found` and `stream occupied` are answers of the relay and are
//! retried on the same address (an occupied side lapses within the relay's
//! lease, e.g. 3 s, after its instance crashed). The backoff between attempts
//! is the driver's (25 ms doubling to 2 s), so a dead address costs one
//! failed attempt, not a timeout per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{SinkExt, StreamExt};
use lnc_core::pairing::StreamId;

use crate::mailbox::{Mailbox, MailboxError, PacketSink, PacketStream, Status};
use crate::rt::BoxFuture;

/// Which address is in use; shared with the open streams so that one failing
/// mid-stream moves the next open elsewhere.
struct Cursor {
    current: AtomicUsize,
    len: usize,
}

impl Cursor {
    /// Moves past `from` unless another failure already did.
    fn fail(&self, from: usize) {
        let next = (from + 1) % self.len;
        let _ = self
            .current
            .compare_exchange(from, next, Ordering::AcqRel, Ordering::Acquire);
    }
}

fn is_transport(e: &MailboxError) -> bool {
    e.status == Status::NotConnected
}

/// A [`Mailbox`] over several addresses of the same relay, failing over
/// between them (see the module docs).
pub struct FailoverMailbox {
    relays: Vec<Arc<dyn Mailbox>>,
    cursor: Arc<Cursor>,
}

impl FailoverMailbox {
    /// Uses `relays` in order, starting with the first. Fails if empty.
    pub fn new(relays: Vec<Arc<dyn Mailbox>>) -> Result<Self, MailboxError> {
        if relays.is_empty() {
            return Err(MailboxError {
                status: Status::NotConnected,
                message: "no mailbox address given".into(),
                tls: false,
            });
        }
        let len = relays.len();
        Ok(FailoverMailbox {
            relays,
            cursor: Arc::new(Cursor {
                current: AtomicUsize::new(0),
                len,
            }),
        })
    }

    /// Index of the address in use (for status displays and tests).
    pub fn current(&self) -> usize {
        self.cursor.current.load(Ordering::Acquire) % self.cursor.len
    }

    fn pick(&self) -> (usize, &Arc<dyn Mailbox>) {
        let i = self.current();
        // `current() < len == relays.len()`; fall back to the first anyway.
        match self.relays.get(i) {
            Some(m) => (i, m),
            None => (0, &self.relays[0]),
        }
    }

    fn guard<T: 'static>(
        &self,
        i: usize,
        fut: BoxFuture<Result<T, MailboxError>>,
    ) -> BoxFuture<Result<T, MailboxError>> {
        let cursor = self.cursor.clone();
        Box::pin(async move {
            let r = fut.await;
            if let Err(e) = &r
                && is_transport(e)
            {
                cursor.fail(i);
            }
            r
        })
    }
}

impl Mailbox for FailoverMailbox {
    fn open_recv(&self, id: StreamId) -> BoxFuture<Result<PacketStream, MailboxError>> {
        let (i, mb) = self.pick();
        let open = mb.open_recv(id);
        let cursor = self.cursor.clone();
        self.guard(
            i,
            Box::pin(async move {
                let s = open.await?;
                let s = s.inspect(move |item| {
                    if let Err(e) = item
                        && is_transport(e)
                    {
                        cursor.fail(i);
                    }
                });
                Ok(Box::pin(s) as PacketStream)
            }),
        )
    }

    fn open_send(&self, id: StreamId) -> BoxFuture<Result<PacketSink, MailboxError>> {
        let (i, mb) = self.pick();
        let open = mb.open_send(id);
        let cursor = self.cursor.clone();
        self.guard(
            i,
            Box::pin(async move {
                let s = open.await?;
                let s = s.sink_map_err(move |e| {
                    if is_transport(&e) {
                        cursor.fail(i);
                    }
                    e
                });
                Ok(Box::pin(s) as PacketSink)
            }),
        )
    }

    fn create(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        let (i, mb) = self.pick();
        self.guard(i, mb.create(id))
    }

    fn delete(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        let (i, mb) = self.pick();
        self.guard(i, mb.delete(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A fake relay: fails `open_recv`/`create` with `err` while it is set,
    /// and records how often it was asked.
    struct Fake {
        err: Mutex<Option<&'static str>>,
        calls: AtomicUsize,
    }

    impl Fake {
        fn new(err: Option<&'static str>) -> Arc<Self> {
            Arc::new(Fake {
                err: Mutex::new(err),
                calls: AtomicUsize::new(0),
            })
        }
        fn result(&self) -> Result<(), MailboxError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match *self.err.lock().unwrap_or_else(|p| p.into_inner()) {
                Some(m) => Err(MailboxError::new(m)),
                None => Ok(()),
            }
        }
    }

    impl Mailbox for Fake {
        fn open_recv(&self, _: StreamId) -> BoxFuture<Result<PacketStream, MailboxError>> {
            let r = self.result();
            Box::pin(async move {
                r?;
                let s = futures_util::stream::iter(vec![
                    Ok(vec![1u8]),
                    Err(MailboxError::new("connection reset")),
                ]);
                Ok(Box::pin(s) as PacketStream)
            })
        }
        fn open_send(&self, _: StreamId) -> BoxFuture<Result<PacketSink, MailboxError>> {
            let r = self.result();
            Box::pin(async move {
                r?;
                Err(MailboxError::new("unused"))
            })
        }
        fn create(&self, _: StreamId) -> BoxFuture<Result<(), MailboxError>> {
            let r = self.result();
            Box::pin(async move { r })
        }
        fn delete(&self, _: StreamId) -> BoxFuture<Result<(), MailboxError>> {
            let r = self.result();
            Box::pin(async move { r })
        }
    }

    fn id() -> StreamId {
        StreamId::from_bytes([7; 64])
    }

    #[test]
    fn moves_on_transport_failure_only() {
        futures_executor_lite(async {
            let a = Fake::new(Some("connection refused"));
            let b = Fake::new(Some("stream not found"));
            let f = FailoverMailbox::new(vec![a.clone(), b.clone()]).unwrap();
            assert!(f.create(id()).await.is_err());
            assert_eq!(f.current(), 1, "refused: next address");
            // An answer from the relay keeps the address.
            let e = f.create(id()).await.unwrap_err();
            assert_eq!(e.status, Status::SessionNotFound);
            assert_eq!(f.current(), 1);
            *b.err.lock().unwrap() = None;
            f.create(id()).await.unwrap();
            assert_eq!(
                (
                    a.calls.load(Ordering::Relaxed),
                    b.calls.load(Ordering::Relaxed)
                ),
                (1, 2)
            );
        });
    }

    #[test]
    fn a_stream_dying_mid_way_moves_the_next_open() {
        futures_executor_lite(async {
            let a = Fake::new(None);
            let b = Fake::new(None);
            let f = FailoverMailbox::new(vec![a.clone(), b.clone(), Fake::new(None)]).unwrap();
            let mut s = f.open_recv(id()).await.unwrap();
            assert_eq!(s.next().await.unwrap().unwrap(), vec![1u8]);
            assert_eq!(f.current(), 0);
            assert!(s.next().await.unwrap().is_err());
            assert_eq!(f.current(), 1);
            assert!(FailoverMailbox::new(Vec::new()).is_err());
        });
    }

    /// Polls a future that never waits on I/O (the fakes are ready at once).
    fn futures_executor_lite(f: impl std::future::Future<Output = ()>) {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        for _ in 0..1000 {
            if f.as_mut().poll(&mut cx).is_ready() {
                return;
            }
        }
        panic!("future did not complete");
    }
}
