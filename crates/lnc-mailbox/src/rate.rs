//! The per-stream message rate limit: one token bucket, used by both store backends.
//!
//! A writer over its rate is delayed, never refused and never dropped, as the Go relay's
//! limiter does: a burst of `stream_burst` messages passes at once, then messages pass at
//! `stream_rate_per_sec`.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::Limits;

/// A writer's bucket. It lives with the attached writer (only one exists at a time,
/// wherever it is attached), so it needs no shared state.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    tokens: f64,
    refilled: Instant,
}

/// The longest a writer is delayed for one message, whatever the configured rate.
const MAX_WAIT: f64 = 60.0;

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn full(limits: &Limits, now: Instant) -> Self {
        TokenBucket {
            tokens: f64::from(limits.stream_burst),
            refilled: now,
        }
    }

    /// Takes one token for a message sent at `now`: `None` to send at once, else how long
    /// to wait first (the token is reserved, so waiters queue up fairly). A rate of zero or
    /// less means no limit.
    pub(crate) fn take(&mut self, limits: &Limits, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        let burst = f64::from(limits.stream_burst.max(1));
        self.tokens = (self.tokens + elapsed * limits.stream_rate_per_sec).min(burst) - 1.0;
        if self.tokens >= 0.0 || limits.stream_rate_per_sec <= 0.0 {
            None
        } else {
            Some(Duration::from_secs_f64(
                (-self.tokens / limits.stream_rate_per_sec).min(MAX_WAIT),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: f64, burst: u32) -> Limits {
        Limits {
            stream_rate_per_sec: rate,
            stream_burst: burst,
            ..Limits::default()
        }
    }

    #[test]
    fn burst_then_rate() {
        let l = limits(10.0, 3);
        let t0 = Instant::now();
        let mut b = TokenBucket::full(&l, t0);
        for _ in 0..3 {
            assert_eq!(b.take(&l, t0), None);
        }
        // The 4th waits one refill interval, the 5th two (reservations queue up).
        assert_eq!(b.take(&l, t0), Some(Duration::from_millis(100)));
        assert_eq!(b.take(&l, t0), Some(Duration::from_millis(200)));
        // Later the bucket is full again, never above the burst.
        let t1 = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(b.take(&l, t1), None);
        }
        assert!(b.take(&l, t1).is_some());
    }

    #[test]
    fn zero_rate_is_unlimited_and_waits_are_capped() {
        let l = limits(0.0, 1);
        let t0 = Instant::now();
        let mut b = TokenBucket::full(&l, t0);
        for _ in 0..100 {
            assert_eq!(b.take(&l, t0), None);
        }
        let l = limits(0.001, 1);
        let mut b = TokenBucket::full(&l, t0);
        assert_eq!(b.take(&l, t0), None);
        assert_eq!(b.take(&l, t0), Some(Duration::from_secs(60)));
    }
}
