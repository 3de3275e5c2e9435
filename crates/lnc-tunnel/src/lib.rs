//! Async drivers for Lightning Node Connect on top of the sans-IO `lnc-core`.
//!
//! Layers, bottom up (each module says why it exists):
//! * [`rt`] — the runtime abstraction (clock, timers, spawn); tokio behind `native`.
//! * [`mailbox`] — how GBN packets reach the relay; statuses as upstream reports them.
//! * [`driver`] — the go-back-N driver task: reliable messages, transport re-open with
//!   backoff, FIN on close.
//! * [`stream`] — the Noise handshake over GBN and the encrypted byte stream after it.
//! * [`tunnel`] — `dial` (app side) and what both sides share about a tunnel.
//! * [`listener`] — `listen` (node side): the accept loop as named steps.
//! * [`tls`] — how a client secures its connection to the relay (one type for every
//!   crate).
//! * [`failover`] — several addresses of one (scaled-out) relay, used in turn.
//! * [`reconnect`] — tier 2: a self-healing client (fresh GBN + KK after GBN died).
//! * [`h2`] — gRPC over the tunnel: an HTTP/2 client usable by tonic clients, and an
//!   HTTP/2 server for any tower service.
//! * `native` (feature) — HashMail gRPC and WebSocket mailbox transports.

pub mod driver;
pub mod failover;
pub mod h2;
pub mod listener;
pub mod mailbox;
pub mod reconnect;
pub mod rt;
pub mod stream;
pub mod tls;
pub mod tunnel;

#[cfg(feature = "native")]
pub mod native;

pub use driver::{DriverOptions, DriverStats, GbnError, GbnHandle, spawn_gbn};
pub use failover::FailoverMailbox;
pub use h2::{TunnelChannel, macaroon_from_auth_data, serve_http2};
pub use listener::{Listener, ListenerEvent, PairingAttemptFailure, attempt_failure, listen};
pub use mailbox::{Mailbox, MailboxError, Status};
pub use reconnect::{Client, ClientError, ClientEvent, ReconnectError};
pub use rt::Runtime;
pub use stream::NoiseStream;
pub use tls::TlsMode;
pub use tunnel::{SessionInfo, Tunnel, TunnelError, TunnelOptions, dial, dial_observed};
