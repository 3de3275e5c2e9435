//! A clock-free point in time for the sans-IO protocol machines.
//!
//! lnc-core never reads a clock: `std::time::Instant::now()` panics on
//! `wasm32-unknown-unknown`, and tests must run on simulated time so that loss, timeouts
//! and keepalive are reproducible without sleeping. Drivers therefore pick an epoch (for
//! example the moment the connection was created) and pass `now` as the time elapsed since
//! that epoch, mapped from whatever monotonic clock the platform has (tokio's `Instant`,
//! the browser's `performance.now()`).

use core::ops::{Add, AddAssign};
use core::time::Duration;

/// A monotonic instant: the time elapsed since a driver-chosen epoch.
///
/// Only differences between instants of the same driver are meaningful. Arithmetic
/// saturates instead of panicking, so a huge configured timeout can never crash a
/// connection; it just never fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The driver's epoch (time zero).
    pub const EPOCH: Instant = Instant(Duration::ZERO);

    /// The instant `since_epoch` after the driver's epoch.
    pub const fn from_since_epoch(since_epoch: Duration) -> Self {
        Instant(since_epoch)
    }

    /// Convenience for simulators and tests: `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(Duration::from_millis(ms))
    }

    /// Time elapsed since the epoch.
    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or `None` if `earlier` is later than `self`.
    pub fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        self.0.checked_sub(earlier.0)
    }

    /// `self - earlier`, or zero if `earlier` is later than `self`.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + d`, or `None` on overflow.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        self.0.checked_add(d).map(Instant)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating: an instant past the end of representable time is "never".
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_order() {
        let a = Instant::from_millis(1500);
        let b = a + Duration::from_millis(500);
        assert!(b > a);
        assert_eq!(b, Instant::from_since_epoch(Duration::from_secs(2)));
        assert_eq!(
            b.checked_duration_since(a),
            Some(Duration::from_millis(500))
        );
        assert_eq!(a.checked_duration_since(b), None);
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        let far = Instant::from_since_epoch(Duration::MAX);
        assert_eq!(far + Duration::from_secs(1), far);
        assert_eq!(far.checked_add(Duration::from_secs(1)), None);
        let mut c = Instant::EPOCH;
        c += Duration::from_millis(3);
        assert_eq!(c.since_epoch(), Duration::from_millis(3));
    }
}
