//! Keepalive: when to probe a silent peer, and when to give it up (transport.md §1.8, with
//! the deviations listed in the module docs of [`super`]).
//!
//! Upstream sends one ping after `ping_interval` of silence and closes if nothing arrives
//! within the pong timeout. On a lossy link that is a coin toss: one lost ping or one lost
//! ACK kills a live connection (the complaint behind lightning-node-connect PR #123), and
//! with a full window upstream cannot ping at all. Here silence starts a *probe train*:
//! `probes` probes, one every `spacing`, each with its own deadline (the next probe). Any
//! packet from the peer is proof of life and ends the train; the peer is declared dead only
//! when every probe's deadline passed unanswered. So on a link that loses a fraction `p` of
//! packets each way a live peer is mistaken for dead with probability about
//! `(1 - (1 - p)²)^probes` (with 16 probes at 25 % loss each way: 2 × 10⁻⁶), while a dead
//! peer is found within `ping_interval + pong_timeout`, as upstream.
//!
//! The train lasts the pong timeout, which is derived from the measured RTT
//! ([`PongTimeout::RttScaled`]: three RTTs, at least 3 s), so the last probes' answers have
//! time to come back even on a slow link. What a probe *is* (a new ping, the unanswered ping
//! again, or the oldest unacknowledged DATA when no slot is free) is the connection's
//! choice; this type only keeps time.

use super::config::PongTimeout;
use crate::time::Instant;
use core::time::Duration;

/// What [`Keepalive::on_timeout`] asks the connection to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send one probe the peer must answer.
    Probe,
    /// Every probe went unanswered: the peer (or the relay) is gone.
    Dead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Keepalive disabled, not connected yet, or closed.
    Off,
    /// The peer was heard from recently; start probing at `probe_at`.
    Quiet { probe_at: Instant },
    /// Probing: `sent` probes are out and unanswered; the next one (or the verdict, once
    /// all were sent) is due at `next`.
    Probing {
        next: Instant,
        spacing: Duration,
        sent: u32,
    },
}

/// The keepalive timer of one connection.
#[derive(Clone, Debug)]
pub(crate) struct Keepalive {
    interval: Option<Duration>,
    pong: PongTimeout,
    probes: u32,
    state: State,
}

impl Keepalive {
    pub(crate) fn new(interval: Option<Duration>, pong: PongTimeout, probes: u32) -> Self {
        Keepalive {
            interval,
            pong,
            probes: probes.max(1),
            state: State::Off,
        }
    }

    /// The connection is up (or the peer was just heard from): silence counts from `now`.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.state = match self.interval {
            Some(i) => State::Quiet { probe_at: now + i },
            None => State::Off,
        };
    }

    /// The connection closed: no more timers.
    pub(crate) fn stop(&mut self) {
        self.state = State::Off;
    }

    /// When [`on_timeout`](Self::on_timeout) has work.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Off => None,
            State::Quiet { probe_at } => Some(probe_at),
            State::Probing { next, .. } => Some(next),
        }
    }

    /// Runs the timer at `now`; `srtt` is the connection's smoothed RTT, if measured.
    pub(crate) fn on_timeout(&mut self, now: Instant, srtt: Option<Duration>) -> Option<Action> {
        match self.state {
            State::Off => None,
            State::Quiet { probe_at } if now >= probe_at => {
                // A zero spacing (a zero pong timeout) would spin; a millisecond is plenty.
                let spacing = (self.pong.get(srtt) / self.probes).max(Duration::from_millis(1));
                self.state = State::Probing {
                    next: now + spacing,
                    spacing,
                    sent: 1,
                };
                Some(Action::Probe)
            }
            State::Probing {
                next,
                spacing,
                sent,
            } if now >= next => {
                if sent >= self.probes {
                    self.state = State::Off;
                    return Some(Action::Dead);
                }
                self.state = State::Probing {
                    next: now + spacing,
                    spacing,
                    sent: sent + 1,
                };
                Some(Action::Probe)
            }
            State::Quiet { .. } | State::Probing { .. } => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::EPOCH + Duration::from_millis(ms)
    }

    fn scaled() -> PongTimeout {
        PongTimeout::RttScaled {
            multiplier: 3,
            min: Duration::from_secs(3),
            max: Duration::from_secs(15),
        }
    }

    /// Runs the timer to its verdict with no answer; returns (probe times, death time).
    fn silence(k: &mut Keepalive, srtt: Option<Duration>) -> (Vec<Instant>, Instant) {
        let mut probes = Vec::new();
        loop {
            let t = k.poll_timeout().unwrap();
            match k.on_timeout(t, srtt) {
                Some(Action::Probe) => probes.push(t),
                Some(Action::Dead) => return (probes, t),
                None => panic!("timer fired without work"),
            }
        }
    }

    #[test]
    fn fast_link_dies_after_interval_plus_pong_timeout() {
        let mut k = Keepalive::new(Some(Duration::from_secs(5)), scaled(), 16);
        k.heard(at(0));
        let (probes, dead) = silence(&mut k, Some(Duration::from_millis(20)));
        assert_eq!(probes.len(), 16);
        assert_eq!(probes[0], at(5000));
        assert_eq!(probes[1], at(5187) + Duration::from_micros(500));
        assert_eq!(dead, at(8000), "as upstream: ping interval + 3 s");
        assert_eq!(k.poll_timeout(), None);
    }

    #[test]
    fn slow_link_lengthens_the_train_with_the_rtt() {
        let mut k = Keepalive::new(Some(Duration::from_secs(5)), scaled(), 16);
        k.heard(at(0));
        // 2 s RTT: the pong timeout is three RTTs, so the last probe's answer can arrive.
        let (probes, dead) = silence(&mut k, Some(Duration::from_secs(2)));
        assert_eq!(probes.len(), 16);
        assert_eq!(dead, at(5000 + 6000));
    }

    #[test]
    fn any_packet_ends_the_train() {
        let mut k = Keepalive::new(Some(Duration::from_secs(7)), scaled(), 16);
        k.heard(at(0));
        assert_eq!(k.on_timeout(at(7000), None), Some(Action::Probe));
        assert!(matches!(k.state, State::Probing { sent: 1, .. }));
        assert_eq!(k.on_timeout(at(7100), None), None, "not due yet");
        k.heard(at(7150));
        assert!(matches!(k.state, State::Quiet { .. }));
        assert_eq!(k.poll_timeout(), Some(at(14150)));
    }

    #[test]
    fn disabled_and_stopped_have_no_timer() {
        let mut k = Keepalive::new(None, scaled(), 16);
        k.heard(at(0));
        assert_eq!(k.poll_timeout(), None);
        let mut k = Keepalive::new(Some(Duration::from_secs(5)), scaled(), 16);
        k.heard(at(0));
        k.stop();
        assert_eq!(k.poll_timeout(), None);
        assert_eq!(k.on_timeout(at(99_000), None), None);
    }
}
