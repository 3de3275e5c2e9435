//! Knobs of a GBN connection (transport.md §1.7), with the values the Go mailbox layer uses
//! as presets, and our own choices where upstream is silent.

use core::time::Duration;
use thiserror::Error;

/// How long to wait for any packet after a keepalive ping before declaring the peer dead.
///
/// Upstream uses a fixed 3 s. On a slow relay (mobile, far away) 3 s is tight, so by default
/// we scale it with the measured round-trip time and clamp it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PongTimeout {
    /// Always this long (upstream behaviour).
    Fixed(Duration),
    /// `clamp(multiplier × smoothed RTT, min, max)`; `min` until an RTT was measured.
    RttScaled {
        /// Factor applied to the smoothed RTT.
        multiplier: u32,
        /// Lower bound (and the value before any RTT sample).
        min: Duration,
        /// Upper bound.
        max: Duration,
    },
}

impl PongTimeout {
    pub(crate) fn get(&self, srtt: Option<Duration>) -> Duration {
        match *self {
            PongTimeout::Fixed(d) => d,
            PongTimeout::RttScaled {
                multiplier,
                min,
                max,
            } => match srtt {
                None => min,
                Some(r) => r.saturating_mul(multiplier).clamp(min, max.max(min)),
            },
        }
    }
}

/// Configuration of one GBN connection. Start from [`Config::client`] or
/// [`Config::server`] (the values the Go mailbox layer uses) and adjust fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Window size N the client proposes in SYN (sequence numbers run mod N+1). A server
    /// ignores it and adopts the client's N. Must be 1..=254: a Go server computes N+1 in
    /// a byte, so 255 would break it.
    pub window: u8,
    /// Our sender keeps at most this many unacknowledged DATA packets in flight (capped at
    /// N); `None` = N, as upstream. Sequence numbers run mod N+1, so with a full window of
    /// N a stale or reordered ACK/NACK is indistinguishable from a fresh one: that is safe
    /// on the mailbox relay, whose streams are FIFO, but not on a network that reorders.
    /// At most N/2 in flight makes late packets from up to N/2 sequence numbers back
    /// recognisable as stale, at some throughput cost (this needs N >= 2; with N = 1 a
    /// reordering network can always confuse GBN). Even then reordering must be bounded:
    /// no packet may arrive later than about three minimum one-way delays after it was
    /// sent.
    pub max_in_flight: Option<u8>,
    /// The transport keeps packet order, as the mailbox relay's streams do. A server then
    /// knows that a SYN arriving after any other packet of the client's is a restart, not
    /// a late duplicate of the handshake's SYN, and closes at once so the new handshake
    /// can start (a Go app restarting within 2 s otherwise waits a whole resend of its
    /// SYN). Without it (a reordering network) a SYN counts as a restart only once a
    /// handshake timeout has passed since the handshake.
    pub fifo_transport: bool,
    /// Initial SYN/SYNACK wait; each resent SYN boosts it. Its current value is also the
    /// minimum spacing between two resends of the queue (as upstream).
    pub handshake_timeout: Duration,
    /// Resend timeout before any RTT was measured.
    pub initial_resend_timeout: Duration,
    /// Lower bound of the dynamic resend timeout.
    pub min_resend_timeout: Duration,
    /// Dynamic resend timeout = `max(min_resend_timeout, multiplier × RTT sample)`.
    pub resend_multiplier: u32,
    /// Acknowledged-and-sampled DATA packets between two resend-timeout updates.
    pub timeout_update_frequency: u32,
    /// Per-boost increase of the resend and handshake timeouts, in permille of their base
    /// (upstream: 50 %, i.e. 500).
    pub boost_permille: u32,
    /// Cap on resend-timeout boosts between two updates (upstream: unbounded). Under
    /// heavy loss upstream's timeout grows by 50 % per resend until the next update, 200
    /// samples later, and the sync wait after a resend lasts 3 × that timeout in silence,
    /// long enough for the peer's keepalive to give up on a live connection.
    pub max_resend_boosts: u32,
    /// If set, the resend timeout is this fixed value (no RTT-based updates).
    pub static_resend_timeout: Option<Duration>,
    /// Our sender's loss recovery, `Some(floor)`: retransmit after an RTT-derived timeout
    /// (`max(srtt + 4·rttvar, 2·srtt, floor)`, doubled per fruitless retransmission and
    /// never above upstream's timeout), at most one queue resend per smoothed RTT instead
    /// of per handshake timeout, and, on a FIFO transport, no extra wait after the resent
    /// queue is acknowledged. `None`: upstream's policy, where every lost packet costs a
    /// call about two seconds (a 1 s floor, then a 2 s spacing or a sync wait). Only our
    /// sender's timing changes: the packets are ordinary GBN, so a Go peer sees a sender
    /// that retransmits sooner, which GBN's receiver handles as any duplicate.
    pub fast_recovery: Option<Duration>,
    /// Send a ping after this long with nothing received; `None` disables keepalive.
    pub ping_interval: Option<Duration>,
    /// How long a silent peer is probed before it is declared dead (at least; the probe
    /// train stretches to `keepalive_probes` × the smoothed RTT on a slow link).
    pub pong_timeout: PongTimeout,
    /// Probes sent to a silent peer, evenly over the pong timeout, before it is declared
    /// dead; any packet from the peer ends the train. Upstream sends one, which a single
    /// lost packet turns into a false "peer dead" on a lossy link.
    pub keepalive_probes: u32,
    /// Split outgoing messages into DATA packets of at most this many bytes; 0 = never
    /// split (upstream mailbox behaviour: one message is one DATA packet).
    pub max_chunk_size: usize,
    /// Largest message we send or reassemble. A peer that sends a larger one is
    /// disconnected with an error, so it cannot make us buffer without bound.
    pub max_message_size: usize,
}

/// Floor of the fast-recovery resend timeout: below ~100 ms a relay's scheduling jitter
/// (Redis round trips, a busy Go runtime) alone would trigger spurious whole-queue resends;
/// Linux TCP's minimum RTO is 200 ms for the same reason.
const FAST_RECOVERY_FLOOR: Duration = Duration::from_millis(150);

/// Upstream gbn's handshake timeout as configured by the mailbox layer.
const MAILBOX_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

impl Config {
    fn base(ping: Duration) -> Self {
        Config {
            window: 20,
            max_in_flight: None,
            fifo_transport: true,
            handshake_timeout: MAILBOX_HANDSHAKE_TIMEOUT,
            initial_resend_timeout: Duration::from_secs(1),
            min_resend_timeout: Duration::from_secs(1),
            resend_multiplier: 5,
            timeout_update_frequency: 200,
            boost_permille: 500,
            max_resend_boosts: 2,
            static_resend_timeout: None,
            fast_recovery: Some(FAST_RECOVERY_FLOOR),
            ping_interval: Some(ping),
            pong_timeout: PongTimeout::RttScaled {
                multiplier: 3,
                min: Duration::from_secs(3),
                max: Duration::from_secs(15),
            },
            keepalive_probes: 16,
            max_chunk_size: 0,
            max_message_size: 1 << 20,
        }
    }

    /// The mailbox client's settings (browser/mobile side): N = 20, handshake 2 s,
    /// ping after 7 s of silence.
    pub fn client() -> Self {
        Self::base(Duration::from_secs(7))
    }

    /// The mailbox server's settings (node side): as the client but ping after 5 s, so the
    /// server normally pings first and the client never needs to.
    pub fn server() -> Self {
        Self::base(Duration::from_secs(5))
    }

    /// Checks the values a connection relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window == 0 || self.window == 255 {
            return Err(ConfigError::Window(self.window));
        }
        if self.max_in_flight == Some(0) {
            return Err(ConfigError::ZeroInFlight);
        }
        if self.handshake_timeout.is_zero()
            || self.initial_resend_timeout.is_zero()
            || self.min_resend_timeout.is_zero()
            || self.static_resend_timeout.is_some_and(|d| d.is_zero())
            || self.fast_recovery.is_some_and(|d| d.is_zero())
            || self.ping_interval.is_some_and(|d| d.is_zero())
        {
            return Err(ConfigError::ZeroTimeout);
        }
        if self.resend_multiplier == 0
            || self.timeout_update_frequency == 0
            || self.keepalive_probes == 0
        {
            return Err(ConfigError::ZeroFactor);
        }
        if self.max_message_size == 0 {
            return Err(ConfigError::ZeroMessageSize);
        }
        Ok(())
    }
}

/// An unusable [`Config`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Window outside 1..=254.
    #[error("gbn config: window {0} is invalid; use 1..=254 (the mailbox uses 20)")]
    Window(u8),
    /// Nothing could ever be sent.
    #[error("gbn config: max_in_flight must be at least 1")]
    ZeroInFlight,
    /// A timeout of zero would spin.
    #[error("gbn config: timeouts and intervals must be non-zero")]
    ZeroTimeout,
    /// A zero multiplier, update frequency or probe count.
    #[error(
        "gbn config: resend multiplier, timeout update frequency and keepalive probes must be non-zero"
    )]
    ZeroFactor,
    /// Nothing could be sent.
    #[error("gbn config: max_message_size must be non-zero")]
    ZeroMessageSize,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_mailbox_constants() {
        let c = Config::client();
        let s = Config::server();
        assert_eq!(c.window, 20);
        assert_eq!(c.handshake_timeout, Duration::from_secs(2));
        assert_eq!(c.ping_interval, Some(Duration::from_secs(7)));
        assert_eq!(s.ping_interval, Some(Duration::from_secs(5)));
        assert_eq!(c.timeout_update_frequency, 200);
        assert!(c.validate().is_ok() && s.validate().is_ok());
        let mut bad = Config::client();
        bad.window = 255;
        assert_eq!(bad.validate(), Err(ConfigError::Window(255)));
        bad.window = 0;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn pong_timeout_clamps() {
        let p = Config::client().pong_timeout;
        assert_eq!(p.get(None), Duration::from_secs(3));
        assert_eq!(
            p.get(Some(Duration::from_millis(50))),
            Duration::from_secs(3)
        );
        assert_eq!(p.get(Some(Duration::from_secs(2))), Duration::from_secs(6));
        assert_eq!(
            p.get(Some(Duration::from_secs(60))),
            Duration::from_secs(15)
        );
    }
}
