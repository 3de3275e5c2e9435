//! Round-trip measurement and the resend/handshake timeouts derived from it
//! (transport.md §1.7, "Dynamic resend timeout" and "Boosting").

use super::config::Config;
use crate::time::Instant;
use core::time::Duration;

/// `base × (1 + permille/1000 × count)`, saturating.
fn boosted(base: Duration, count: u32, permille: u32) -> Duration {
    base.saturating_add(base.saturating_mul(count.saturating_mul(permille)) / 1000)
}

/// Doublings of the fast-recovery timeout: 2^6 × the floor (9.6 s) exceeds upstream's
/// timeout, the cap, anyway.
const MAX_BACKOFF: u32 = 6;

/// The timeout manager: upstream's update and boost rules, plus a smoothed RTT (our
/// addition, used for the pong timeout and exposed in stats).
#[derive(Clone, Debug)]
pub(crate) struct Timeouts {
    multiplier: u32,
    min_resend: Duration,
    update_frequency: u32,
    permille: u32,
    max_resend_boosts: u32,
    dynamic: bool,

    resend_base: Duration,
    resend_boosts: u32,
    /// Frequency limit of resend boosts: at most one per `resend_base`.
    last_resend_boost: Option<Instant>,

    handshake_base: Duration,
    handshake_boosts: u32,

    updated_once: bool,
    samples_since_update: u32,
    srtt: Option<Duration>,
    /// RTT variation (RFC 6298's RTTVAR), for the fast-recovery timeout.
    rttvar: Option<Duration>,
    latest: Option<Duration>,

    /// `Config::fast_recovery`'s floor; `None` = upstream's timers for our sender.
    fast_floor: Option<Duration>,
    /// Timer-driven retransmissions since the last progress: each doubles the
    /// fast-recovery timeout (a peer that is slow rather than lossy gets fewer resends).
    backoff: u32,
}

impl Timeouts {
    pub(crate) fn new(c: &Config) -> Self {
        Timeouts {
            multiplier: c.resend_multiplier,
            min_resend: c.min_resend_timeout,
            update_frequency: c.timeout_update_frequency,
            permille: c.boost_permille,
            max_resend_boosts: c.max_resend_boosts,
            dynamic: c.static_resend_timeout.is_none(),
            resend_base: c.static_resend_timeout.unwrap_or(c.initial_resend_timeout),
            resend_boosts: 0,
            last_resend_boost: None,
            handshake_base: c.handshake_timeout,
            handshake_boosts: 0,
            updated_once: false,
            samples_since_update: 0,
            srtt: None,
            rttvar: None,
            latest: None,
            fast_floor: c.fast_recovery,
            backoff: 0,
        }
    }

    /// How long our sender waits for an ACK before it resends the queue. Upstream's
    /// timeout, or with fast recovery an RFC 6298-style one from the measured RTT, capped
    /// at upstream's so fast recovery is never slower.
    pub(crate) fn sender_timeout(&self) -> Duration {
        let upstream = self.resend_timeout();
        let (Some(floor), Some(srtt), Some(var)) = (self.fast_floor, self.srtt, self.rttvar) else {
            return upstream;
        };
        let base = srtt
            .saturating_add(var.saturating_mul(4))
            .max(srtt.saturating_mul(2))
            .max(floor);
        base.saturating_mul(1u32 << self.backoff.min(MAX_BACKOFF))
            .min(upstream)
    }

    /// Minimum spacing of two queue resends: upstream's handshake timeout, or with fast
    /// recovery one smoothed RTT (a resend's own echoes need that long to come back).
    pub(crate) fn resend_spacing(&self) -> Duration {
        match (self.fast_floor, self.srtt) {
            (Some(_), Some(srtt)) => srtt.min(self.sender_timeout()),
            _ => self.handshake_timeout(),
        }
    }

    /// Whether our sender uses fast recovery (once it has an RTT to derive timers from).
    pub(crate) fn fast(&self) -> bool {
        self.fast_floor.is_some() && self.srtt.is_some()
    }

    /// The resend timer fired without the queue moving since the last resend.
    pub(crate) fn timer_resend(&mut self) {
        self.backoff = self.backoff.saturating_add(1).min(MAX_BACKOFF);
    }

    /// The peer acknowledged new data: the path works again.
    pub(crate) fn progressed(&mut self) {
        self.backoff = 0;
    }

    /// Current (boosted) resend timeout.
    pub(crate) fn resend_timeout(&self) -> Duration {
        boosted(self.resend_base, self.resend_boosts, self.permille)
    }

    /// Current (boosted) handshake timeout; also the minimum spacing of queue resends.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        boosted(self.handshake_base, self.handshake_boosts, self.permille)
    }

    /// A SYN was resent: the peer or relay is slow, wait longer next time (never reset).
    pub(crate) fn boost_handshake(&mut self) {
        self.handshake_boosts = self.handshake_boosts.saturating_add(1);
    }

    /// DATA was retransmitted: boost the resend timeout, at most once per base period so
    /// that one queue resend boosts once.
    pub(crate) fn boost_resend(&mut self, now: Instant) {
        let allowed = match self.last_resend_boost {
            None => true,
            Some(t) => now.saturating_duration_since(t) >= self.resend_base,
        };
        if allowed && self.resend_boosts < self.max_resend_boosts {
            self.resend_boosts = self.resend_boosts.saturating_add(1);
            self.last_resend_boost = Some(now);
        }
    }

    fn smooth(&mut self, rtt: Duration) {
        self.latest = Some(rtt);
        self.rttvar = Some(match (self.rttvar, self.srtt) {
            (Some(v), Some(s)) => (v.saturating_mul(3) + s.abs_diff(rtt)) / 4,
            _ => rtt / 2,
        });
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(s) => (s.saturating_mul(7) + rtt) / 8,
        });
    }

    fn update(&mut self, rtt: Duration, now: Instant) {
        self.updated_once = true;
        self.samples_since_update = 0;
        if self.dynamic {
            self.resend_base = rtt.saturating_mul(self.multiplier).max(self.min_resend);
            self.resend_boosts = 0;
            self.last_resend_boost = Some(now);
        }
    }

    /// SYN→SYN (client) or SYN→SYNACK (server) of a SYN that was not resent.
    pub(crate) fn handshake_sample(&mut self, rtt: Duration, now: Instant) {
        self.smooth(rtt);
        self.update(rtt, now);
    }

    /// First transmission of DATA → its ACK. Updates the resend timeout on the first sample
    /// (if the handshake gave none) and then every `update_frequency` samples.
    pub(crate) fn data_sample(&mut self, rtt: Duration, now: Instant) {
        self.smooth(rtt);
        if !self.updated_once {
            self.update(rtt, now);
            return;
        }
        self.samples_since_update = self.samples_since_update.saturating_add(1);
        if self.samples_since_update >= self.update_frequency {
            self.update(rtt, now);
        }
    }

    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub(crate) fn latest_rtt(&self) -> Option<Duration> {
        self.latest
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn update_and_boost_rules() {
        let mut c = Config::client();
        c.timeout_update_frequency = 3;
        let mut t = Timeouts::new(&c);
        assert_eq!(t.resend_timeout(), ms(1000));
        assert_eq!(t.handshake_timeout(), ms(2000));
        t.boost_handshake();
        t.boost_handshake();
        assert_eq!(t.handshake_timeout(), ms(4000));

        let now = Instant::from_millis(10_000);
        // Handshake sample of 300 ms → 5 × 300 = 1.5 s.
        t.handshake_sample(ms(300), now);
        assert_eq!(t.resend_timeout(), ms(1500));
        // Boosts are frequency-limited: the reset restarted the limit clock.
        t.boost_resend(now + ms(10));
        assert_eq!(t.resend_timeout(), ms(1500));
        t.boost_resend(now + ms(1500));
        assert_eq!(t.resend_timeout(), ms(2250));
        t.boost_resend(now + ms(1600));
        assert_eq!(t.resend_timeout(), ms(2250));
        // Two samples do nothing; the third updates (min 1 s) and resets the boost.
        t.data_sample(ms(10), now);
        t.data_sample(ms(10), now);
        assert_eq!(t.resend_timeout(), ms(2250));
        t.data_sample(ms(10), now);
        assert_eq!(t.resend_timeout(), ms(1000));
        assert!(t.srtt().unwrap() < ms(300));
        assert_eq!(t.latest_rtt(), Some(ms(10)));
    }

    #[test]
    fn first_data_sample_updates_without_handshake_sample() {
        let mut t = Timeouts::new(&Config::server());
        t.data_sample(ms(400), Instant::EPOCH);
        assert_eq!(t.resend_timeout(), ms(2000));
        t.data_sample(ms(100), Instant::EPOCH);
        assert_eq!(t.resend_timeout(), ms(2000));
    }

    #[test]
    fn static_timeout_never_moves() {
        let mut c = Config::client();
        c.static_resend_timeout = Some(ms(700));
        let mut t = Timeouts::new(&c);
        t.handshake_sample(ms(900), Instant::EPOCH);
        assert_eq!(t.resend_timeout(), ms(700));
    }
}
