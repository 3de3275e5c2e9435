//! The node's wall clock, which tests can move forward.
//!
//! Session expiry and the first-connection deadline are wall-clock times (they are baked into
//! macaroons and shown to users), measured in hours or days. A test cannot wait that long and
//! must not sleep, so everything in the node that asks "what time is it?" asks a [`Clock`]:
//! the system's clock in production, the system's clock plus an offset the test advances
//! ([`Clock::advance`]) in tests. Timers that wait for such a time wake when the offset
//! changes ([`Clock::changed`]) and recompute, so an advance past an expiry ends the session
//! at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// A wall clock: `SystemTime::now()` plus an offset (zero unless a test advances it).
/// Cheap to clone; clones share the offset.
#[derive(Clone, Debug)]
pub struct Clock {
    offset: Arc<watch::Sender<Duration>>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Clock {
            offset: Arc::new(watch::Sender::new(Duration::ZERO)),
        }
    }

    /// Now, on this clock.
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + *self.offset.borrow()
    }

    /// Moves this clock (and every clone) forward by `by`, waking every timer waiting on it.
    /// Only tests have a reason to call this.
    pub fn advance(&self, by: Duration) {
        self.offset.send_modify(|o| *o = o.saturating_add(by));
    }

    /// Resolves when the clock is next advanced.
    pub(crate) async fn changed(&self) {
        let mut rx = self.offset.subscribe();
        // The sender lives as long as `self`, so this only returns on an advance.
        let _ = rx.changed().await;
    }

    /// A tokio sleep until `t` on this clock (at once if `t` has passed). Wall-clock
    /// deadlines far ahead are capped at a year: the caller re-arms after any wake-up.
    pub(crate) fn sleep_until(&self, t: SystemTime) -> tokio::time::Sleep {
        let d = t.duration_since(self.now()).unwrap_or(Duration::ZERO);
        tokio::time::sleep(d.min(Duration::from_secs(60 * 60 * 24 * 365)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn advance_moves_every_clone_and_wakes_waiters() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now();
        let waiter = tokio::spawn({
            let c = clock.clone();
            async move { c.changed().await }
        });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(3600));
        tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("woken by the advance")
            .expect("waiter task");
        assert!(other.now() >= before + Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn a_time_already_passed_sleeps_not_at_all() {
        let clock = Clock::system();
        let past = clock.now();
        clock.advance(Duration::from_secs(10));
        tokio::time::timeout(Duration::from_secs(30), clock.sleep_until(past))
            .await
            .expect("a passed time is due at once");
    }
}
