//! The client's error type: every variant says what went wrong and what the user can do.

use crate::credentials::CredentialsError;
use core::time::Duration;
use lnc_core::pairing::PhraseError;

/// Why pairing, connecting or a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing answered on the session's mailbox streams within the wait. A wrong phrase
    /// derives streams no node serves, so it looks exactly like an offline node.
    #[error(
        "lnc: session not found after {waited:?}: the pairing phrase may be wrong, or the node is offline, or the session was revoked or has expired; check the phrase, make sure the node is running, or create a new session"
    )]
    SessionNotFound {
        /// How long we waited.
        waited: Duration,
    },
    /// Another client holds the session's stream.
    #[error(
        "lnc: session in use: another app is connected with this session; close it (or wait for it to time out) and try again"
    )]
    SessionInUse,
    /// The relay could not be reached.
    #[error("lnc: mailbox {addr} unreachable: {message}; check the address and your network")]
    MailboxUnreachable {
        /// The relay address.
        addr: String,
        /// The last transport error.
        message: String,
    },
    /// The TLS connection to the relay failed.
    #[error(
        "lnc: TLS to mailbox {addr} failed: {message}; for a self-hosted relay pass its CA (--ca FILE), for a plaintext one --insecure"
    )]
    Tls {
        /// The relay address.
        addr: String,
        /// The TLS error.
        message: String,
    },
    /// The session macaroon has expired: the node would refuse every call.
    #[error(
        "lnc: the session expired at {expiry} (Unix time); create a new session on the node and pair again"
    )]
    Expired {
        /// Expiry, Unix seconds.
        expiry: i64,
    },
    /// The credentials could not be read or decrypted (includes a wrong password).
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The pairing phrase is not ten valid words. Its [`PhraseError::hint`] has the
    /// spelling suggestions to show the person who typed it.
    #[error(transparent)]
    Phrase(#[from] PhraseError),
    /// The handshake with the node failed (wrong keys, incompatible peer). The tunnel's
    /// typed error is kept for callers that tell the cases apart; its text is part of
    /// this message, so it is not also reported as the `source`.
    #[error("lnc: handshake with the node failed: {0}")]
    Handshake(lnc_tunnel::TunnelError),
    /// The connection to the node broke during the call (or the tunnel was reconnecting
    /// when it started); retrying is safe for reads.
    #[error(
        "lnc: the connection to the node dropped during the call (the node stopped or restarted, the relay went away, or the network failed); the client reconnects by itself: retry the call"
    )]
    Retryable,
    /// The client was closed.
    #[error("lnc: client closed")]
    Closed,
    /// The node answered with a gRPC error.
    #[error("lnc: the node returned {code:?}: {message}")]
    Rpc {
        /// gRPC status code.
        code: tonic::Code,
        /// The node's message.
        message: String,
    },
    /// The method is unknown, or the JSON request or a response does not fit its
    /// protobuf message (the registry's typed error, its text is the message).
    #[error("lnc: {0}")]
    Method(lnd_api::dynamic::DynamicError),
    /// The method exists, but not as this call: a unary method through `subscribe`, a
    /// streaming one through `call`, or a client-streaming one (JSON calls send one message).
    #[error("lnc: {method} {shape}")]
    CallShape {
        /// The method's full name.
        method: String,
        /// What the method is, and what to use instead.
        shape: CallShape,
    },
    /// The registry gave a method path HTTP/2 cannot carry (a broken descriptor set).
    #[error("lnc: method path {path} is not a valid request path: {source}")]
    MethodPath {
        /// The path.
        path: String,
        /// Why http refused it.
        source: http::uri::InvalidUri,
    },
    /// A profile name that cannot be a file name in the profile store.
    #[error(
        "lnc: invalid profile name {name:?}: use letters, digits, '-', '_' or '.' (at most 64, not starting with '.')"
    )]
    ProfileName {
        /// The name given.
        name: String,
    },
    /// No profile of that name in the store.
    #[error("lnc: no profile {name:?} in {dir}; pair with `lnc connect` (or `lnc.pair`) first")]
    NoProfile {
        /// The name asked for.
        name: String,
        /// The profile store's directory.
        dir: String,
    },
    /// Reading or writing the profile store failed.
    #[error("lnc: profile store {path}: {source}")]
    Store {
        /// The file or directory.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// No data directory for the profile store: neither `LNC_HOME` nor `HOME` is set.
    #[error("lnc: HOME is not set; set LNC_HOME to choose lnc's data directory")]
    NoHome,
}

/// What a method is, when a call used it as something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallShape {
    /// Client-streaming or bidirectional: JSON calls send one message.
    ClientStreaming,
    /// Unary, called as a subscription.
    Unary,
    /// Server-streaming, called as a unary call.
    ServerStreaming,
}

impl core::fmt::Display for CallShape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CallShape::ClientStreaming => "is client-streaming, which JSON calls do not support",
            CallShape::Unary => "is a unary method: use call",
            CallShape::ServerStreaming => "is server-streaming: use subscribe",
        })
    }
}

/// How tonic's generated client stubs begin the status of a call whose service was not
/// ready (its `ready()` error, as text).
const NOT_READY: &str = "Service was not ready: ";

impl Error {
    /// Whether retrying the same call later may succeed (the tunnel is reconnecting).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Retryable)
    }

    /// Maps a tonic status: a failure below gRPC (the tunnel's HTTP/2 connection, kept by
    /// tonic as the status's source) is [`Error::Retryable`], or [`Error::Closed`] after
    /// [`Client::close`](crate::Client::close); anything else came from the node.
    pub fn from_status(s: tonic::Status) -> Error {
        use std::error::Error as _;
        let mut src: Option<&(dyn std::error::Error + 'static)> = s.source();
        while let Some(e) = src {
            if let Some(lnc_tunnel::ClientError::Closed) = e.downcast_ref() {
                return Error::Closed;
            }
            src = e.source();
        }
        if s.source()
            .is_some_and(lnc_tunnel::reconnect::is_connection_error)
        {
            return Error::Retryable;
        }
        // tonic's generated stubs (`Client::lightning()`, any `FooClient` on
        // `Client::channel()`) turn a readiness failure into `Unknown "Service was not
        // ready: {error}"` and drop the error itself, so only its words are left: the
        // tunnel's own, from its type's Display. Without this, a call made while the tunnel
        // reconnects reads "the node returned Unknown", though it never left this process.
        if s.code() == tonic::Code::Unknown
            && s.source().is_none()
            && let Some(e) = s.message().strip_prefix(NOT_READY)
        {
            if e == lnc_tunnel::ClientError::Closed.to_string() {
                return Error::Closed;
            }
            if e == lnc_tunnel::ClientError::Reconnecting.to_string() {
                return Error::Retryable;
            }
        }
        Error::Rpc {
            code: s.code(),
            message: s.message().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    /// What a typed stub (`Client::lightning()`) returns for a call made while the tunnel
    /// reconnects, or after `close()`: the status tonic's generated code builds.
    #[test]
    fn not_ready_statuses_are_the_tunnels() {
        let st = |e: lnc_tunnel::ClientError| {
            tonic::Status::unknown(format!("Service was not ready: {e}"))
        };
        assert!(Error::from_status(st(lnc_tunnel::ClientError::Reconnecting)).is_retryable());
        assert!(matches!(
            Error::from_status(st(lnc_tunnel::ClientError::Closed)),
            Error::Closed
        ));
        // Anything else is the node's answer.
        assert!(matches!(
            Error::from_status(tonic::Status::unknown("Service was not ready: LND is busy")),
            Error::Rpc { .. }
        ));
    }
}
