//! The mailbox transport abstraction: how GBN packets reach the relay.
//!
//! The relay gives each side one stream to read and one to write (transport.md §2); the
//! node also creates and deletes them. A transport opens one direction at a time so the
//! GBN driver can re-open a direction that dropped while the other keeps working, exactly
//! like upstream's independent send/receive loops, but without their fixed 2 s waits.

use crate::rt::BoxFuture;
use core::fmt;
use core::pin::Pin;
use futures_util::{Sink, Stream};
use lnc_core::pairing::StreamId;

/// The connection status strings upstream reports to JS/mobile apps (transport.md §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Initial state, or a transport failure that is not classified below.
    NotConnected,
    /// The relay does not know the stream: the node is offline, the session was revoked,
    /// or the pairing phrase is wrong. A FIN from the node also reports this.
    SessionNotFound,
    /// Another client holds the stream.
    SessionInUse,
    /// A message was received from the relay.
    Connected,
}

impl Status {
    /// The exact string upstream uses (apps match on it).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotConnected => "Not Connected",
            Status::SessionNotFound => "Session Not Found",
            Status::SessionInUse => "Session In Use",
            Status::Connected => "Connected",
        }
    }

    /// Classifies a relay error by the substrings Go clients match: `stream not found`
    /// → Session Not Found, `stream occupied` → Session In Use, else Not Connected.
    pub fn classify(message: &str) -> Status {
        if message.contains("stream not found") {
            Status::SessionNotFound
        } else if message.contains("stream occupied") {
            Status::SessionInUse
        } else {
            Status::NotConnected
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure talking to the relay. Every one is retried by the driver (with backoff);
/// `status` is what the app is shown meanwhile.
#[derive(Debug, Clone, thiserror::Error)]
#[error("mailbox transport: {message} ({status})")]
pub struct MailboxError {
    /// The status class of the failure.
    pub status: Status,
    /// The relay's or the socket's error text.
    pub message: String,
    /// The TLS layer failed: the relay's certificate or our trust settings (not the
    /// network, not the relay's answer), so retrying will not help until one changes.
    pub tls: bool,
}

impl MailboxError {
    /// An error classified from its message text.
    pub fn new(message: impl Into<String>) -> Self {
        let message = message.into();
        MailboxError {
            status: Status::classify(&message),
            message,
            tls: false,
        }
    }

    /// A failure of the TLS layer (see [`MailboxError::tls`]).
    pub fn tls(message: impl Into<String>) -> Self {
        MailboxError {
            status: Status::NotConnected,
            message: message.into(),
            tls: true,
        }
    }
}

/// Packets arriving on the stream we read; ends (or errors) when the relay drops it.
#[cfg(not(target_arch = "wasm32"))]
pub type PacketStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, MailboxError>> + Send>>;
/// Packets we write to the peer's stream; each item is one relay message.
#[cfg(not(target_arch = "wasm32"))]
pub type PacketSink = Pin<Box<dyn Sink<Vec<u8>, Error = MailboxError> + Send>>;
/// Packets arriving on the stream we read (wasm32: not `Send`, see [`crate::rt::BoxFuture`]).
#[cfg(target_arch = "wasm32")]
pub type PacketStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, MailboxError>>>>;
/// Packets we write to the peer's stream (wasm32: not `Send`).
#[cfg(target_arch = "wasm32")]
pub type PacketSink = Pin<Box<dyn Sink<Vec<u8>, Error = MailboxError>>>;

/// A way to reach the mailbox relay (HashMail gRPC, WebSocket, or a test double).
///
/// Each call opens a fresh relay stream; a dropped stream is re-opened by calling again.
pub trait Mailbox: crate::rt::MaybeSend + 'static {
    /// Starts reading the stream `id`.
    fn open_recv(&self, id: StreamId) -> BoxFuture<Result<PacketStream, MailboxError>>;
    /// Starts writing the stream `id`.
    fn open_send(&self, id: StreamId) -> BoxFuture<Result<PacketSink, MailboxError>>;
    /// Node side: creates the mailbox `id` (already existing is success).
    fn create(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>>;
    /// Node side: deletes the mailbox `id` (not found is success).
    fn delete(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_relay_errors() {
        assert_eq!(
            Status::classify("status: Unknown, message: \"stream not found\""),
            Status::SessionNotFound
        );
        assert_eq!(
            Status::classify("read stream occupied"),
            Status::SessionInUse
        );
        assert_eq!(
            Status::classify("write stream occupied"),
            Status::SessionInUse
        );
        assert_eq!(Status::classify("connection reset"), Status::NotConnected);
        assert_eq!(Status::SessionNotFound.as_str(), "Session Not Found");
    }
}
