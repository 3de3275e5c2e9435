//! Go-back-N: reliable, ordered messages over the mailbox's two lossy one-way pipes
//! (transport.md §1), as a sans-IO state machine.
//!
//! The mailbox relay gives each side a send pipe and a receive pipe that may lose messages
//! (socket drops, relay restarts) and, when a driver retransmits after reconnecting,
//! duplicate them. GBN turns that into the reliable message stream the Noise layer needs,
//! and it must speak exactly the Go reference's protocol: the packet codec is in [`wire`],
//! the knobs in [`config`], the machine in [`Connection`].
//!
//! The machine never reads a clock and never does IO (quinn-proto style): the driver
//! passes `now` ([`crate::time::Instant`]) to [`Connection::handle_packet`],
//! [`Connection::handle_timeout`] and [`Connection::poll_transmit`], sends what
//! `poll_transmit` yields as one mailbox message per packet, and arms one timer at
//! [`Connection::poll_timeout`].
//!
//! A driver loop, sketched with two machines wired back to back (a real driver sends
//! each packet as one mailbox message and sleeps until the next packet or `poll_timeout`):
//!
//! ```
//! use lnc_core::gbn::{Config, Connection, Event};
//! use lnc_core::time::Instant;
//!
//! let mut client = Connection::new_client(Config::client()).unwrap();
//! let mut server = Connection::new_server(Config::server()).unwrap();
//! let now = Instant::EPOCH; // drivers map their monotonic clock onto this
//! let mut buf = Vec::new();
//! client.send(b"hello").unwrap(); // queued until the handshake is done
//! for _ in 0..4 {
//!     while client.poll_transmit(now, &mut buf) {
//!         server.handle_packet(now, &buf).unwrap();
//!     }
//!     while server.poll_transmit(now, &mut buf) {
//!         client.handle_packet(now, &buf).unwrap();
//!     }
//! }
//! assert_eq!(client.poll_event(), Some(Event::Connected));
//! assert_eq!(server.recv().as_deref(), Some(&b"hello"[..]));
//! assert!(client.is_flushed()); // acknowledged: a close now loses nothing
//! client.close(); // queues FIN and emits Event::Closed(CloseReason::Local)
//! ```
//!
//! ## Where we differ from upstream (all interoperable with Go peers)
//! Upstream's timers are tuned for a FIFO relay that rarely loses anything; under real
//! loss its keepalive either never fires (window full) or kills live connections. Our
//! sender-side choices keep the wire protocol identical:
//! - Keepalive ([`keepalive`](self) module docs): after the ping interval of silence we
//!   send a train of 16 probes spread over the pong timeout (`clamp(3 × smoothed RTT, 3 s,
//!   15 s)` instead of a fixed 3 s; spaced at least one RTT apart) and declare the peer
//!   dead only when none was answered. A probe is a new ping, the unanswered ping again, or
//!   — with no window slot free — the oldest unacknowledged DATA again. So a dead peer is
//!   found within ping interval + pong timeout on a fast link, even with a full window
//!   (upstream cannot ping then and never notices), and a live peer on a lossy link is not
//!   declared dead because one ping or its ACK was lost. One slot of the window is kept
//!   for the ping.
//! - Probes are always answered: pings, and DATA that arrives after a pause (a probe
//!   of a peer without a free slot), bypass the NACK rate limit; the limit also lapses once
//!   we have sent nothing for a resend timeout.
//! - The resend timer is restarted by progress (an ACK that advances the window) and by
//!   resends, not by every received packet, so a peer busy sending its own data cannot
//!   postpone our retransmission forever. A NACK-requested resend that the minimum spacing
//!   (the handshake timeout) forbids is done as soon as the spacing allows.
//! - Resend-timeout boosts are capped (`max_resend_boosts`, default 2) and a NACK that
//!   advances the window ends the sync wait early: otherwise 3 × a boosted timeout of
//!   silence outlasts the peer's keepalive.
//! - Bounded receive memory: with N undelivered messages, in-order DATA is refused (no
//!   ACK; a duplicate ACK of the last accepted packet keeps the peer from declaring us
//!   dead); when the application catches up we send NACK(expected) to get the data at once.
//!   Reassembled messages are capped (`max_message_size`); a larger one closes with an
//!   error.
//! - Server handshake: DATA while waiting for SYNACK means the client finished (its
//!   SYNACK was lost), so we connect instead of failing the handshake; a FIN there closes.
//!   Stale ACK/NACK are ignored. A SYN within one handshake timeout after connecting is a
//!   late duplicate and ignored; later it means the client restarted and closes (as Go).
//!   A client ignores SYN after connecting (Go closes). A SYN proposing N = 0 is ignored;
//!   N = 255 works (our modulus is computed in 16 bits).
//! - The client does not restart its SYN timer for each ignored stale packet.
//! - With chunking enabled an empty message still sends one empty final chunk.
//! - `max_in_flight` may be set to N/2 or less for networks that reorder (see [`Config`]);
//!   the default (N) is upstream's and right for the FIFO relay.

pub mod config;
mod conn;
mod keepalive;
mod rtt;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wire;

pub use config::{Config, ConfigError, PongTimeout};
pub use conn::{
    CloseReason, Connection, ConnectionError, Event, REPLAY_AGE, SendError, Side, Stats,
};
pub use wire::{DecodeError, Packet, PacketKind};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
