//! What a connection and an IP are doing: requests in flight, and since when none is.
//!
//! An open connection costs a file descriptor and an in-flight call costs memory, whoever
//! holds them, so neither may be free to keep:
//! - a connection that sent no request within the handshake timeout is closed (it never
//!   sent a byte, or stopped after TLS), and so is one that has had no request in flight
//!   for the connection idle timeout (an HTTP/2 client that only answers our pings); a
//!   client reconnects when it has something to ask;
//! - the calls in flight from one IP are capped (a `SendStream` whose first message never
//!   comes holds its buffers like any other call).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::budget::{CALL_COST, MemoryBudget, Reservation, over_share};
use crate::error::RelayError;
use crate::ip_counts::{IpCount, IpCounts};

/// One connection's requests in flight.
pub(crate) struct ConnActivity {
    active: AtomicUsize,
    seen_request: AtomicBool,
    /// When the last request in flight ended (or the connection was accepted).
    idle_since: Mutex<Instant>,
    changed: Notify,
}

impl ConnActivity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(ConnActivity {
            active: AtomicUsize::new(0),
            seen_request: AtomicBool::new(false),
            idle_since: Mutex::new(Instant::now()),
            changed: Notify::new(),
        })
    }

    /// Counts a request until the returned guard drops (keep it with the response body).
    pub(crate) fn begin(self: &Arc<Self>) -> RequestGuard {
        self.seen_request.store(true, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        RequestGuard { conn: self.clone() }
    }

    /// Resolves once the connection should be closed: no request within `first` of being
    /// accepted, or none in flight for `idle` after that (`None`: never, once one came).
    pub(crate) async fn expired(&self, first: Duration, idle: Option<Duration>) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.active.load(Ordering::Acquire) > 0 {
                changed.await;
                continue;
            }
            let limit = if self.seen_request.load(Ordering::Relaxed) {
                match idle {
                    Some(d) => d,
                    None => {
                        changed.await;
                        continue;
                    }
                }
            } else {
                first
            };
            let since = *self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
            let deadline = since + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// A request in flight on its connection (see [`ConnActivity::begin`]).
pub(crate) struct RequestGuard {
    conn: Arc<ConnActivity>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.conn.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self
                .conn
                .idle_since
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Instant::now();
        }
        self.conn.changed.notify_waiters();
    }
}

/// Calls in flight per client IP.
#[derive(Default)]
pub(crate) struct CallTable {
    counts: Arc<IpCounts>,
}

impl CallTable {
    /// Counts a call of `ip` and reserves its memory, or says why it cannot be taken:
    /// `limit` calls in flight already, or its IP's share of the budget is held.
    pub(crate) fn admit(
        &self,
        ip: IpAddr,
        limit: usize,
        budget: &Arc<MemoryBudget>,
    ) -> Result<CallGuard, RelayError> {
        let (count, _) = self
            .counts
            .add(ip, limit)
            .ok_or(RelayError::TooManyCalls(limit))?;
        let memory = budget
            .reserve(ip, CALL_COST)
            .map_err(|over| over_share(over, budget))?;
        Ok(CallGuard {
            _count: count,
            _memory: memory,
        })
    }

    #[cfg(test)]
    fn in_flight(&self, ip: IpAddr) -> usize {
        self.counts.get(ip)
    }
}

/// One call counted against its IP, and its memory reserved, until dropped.
pub(crate) struct CallGuard {
    _count: IpCount,
    _memory: Reservation,
}

/// A response body that keeps its request counted until it has been sent or dropped (a
/// `RecvStream` answers at once and lives in its body).
pub(crate) struct GuardedBody<B> {
    inner: B,
    _guards: (Arc<RequestGuard>, CallGuard),
}

impl<B> GuardedBody<B> {
    pub(crate) fn new(inner: B, request: Arc<RequestGuard>, call: CallGuard) -> Self {
        GuardedBody {
            inner,
            _guards: (request, call),
        }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_requests_expires_after_the_first_deadline() {
        let c = ConnActivity::new();
        let t = Instant::now();
        c.expired(Duration::from_secs(10), None).await;
        assert_eq!(t.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_clock_runs_only_while_no_request_is_in_flight() {
        let c = ConnActivity::new();
        let first = Duration::from_secs(10);
        let idle = Some(Duration::from_secs(60));
        let g = c.begin();
        // A long call: never idle while it runs.
        let watch = tokio::spawn({
            let c = c.clone();
            async move {
                let t = Instant::now();
                c.expired(first, idle).await;
                t.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!watch.is_finished());
        drop(g);
        // Idle from the end of the call on.
        assert_eq!(watch.await.unwrap(), Duration::from_secs(360));
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_idle_timeout_a_used_connection_stays() {
        let c = ConnActivity::new();
        drop(c.begin());
        let r = tokio::time::timeout(
            Duration::from_secs(3600),
            c.expired(Duration::from_secs(10), None),
        )
        .await;
        assert!(r.is_err());
    }

    #[test]
    fn calls_are_capped_per_ip_and_released() {
        let t = Arc::new(CallTable::default());
        let budget = MemoryBudget::new(1 << 30, 1 << 30);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let g1 = t.admit(a, 2, &budget).unwrap();
        let _g2 = t.admit(a, 2, &budget).unwrap();
        assert!(matches!(
            t.admit(a, 2, &budget),
            Err(RelayError::TooManyCalls(2))
        ));
        let _other = t.admit(b, 2, &budget).unwrap();
        drop(g1);
        assert_eq!(t.in_flight(a), 1);
        assert!(t.admit(a, 2, &budget).is_ok());
        assert_eq!(budget.reserved(), 2 * CALL_COST, "g2 and b's call");
    }

    #[test]
    fn calls_are_refused_at_the_ips_memory_share() {
        let t = Arc::new(CallTable::default());
        let budget = MemoryBudget::new(1 << 30, 2 * CALL_COST);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let _g = (
            t.admit(a, 100, &budget).unwrap(),
            t.admit(a, 100, &budget).unwrap(),
        );
        let refused = t.admit(a, 100, &budget).err().unwrap();
        assert!(matches!(refused, RelayError::OverMemoryShare { share } if share == 2 * CALL_COST));
        // The refused call is not counted.
        assert_eq!(t.in_flight(a), 2);
    }
}
