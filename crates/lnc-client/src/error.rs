//! The client's error type: every variant says what went wrong and what the user can do.

use crate::credentials::CredentialsError;
use core::time::Duration;

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
    /// The pairing phrase is not ten valid words.
    #[error("lnc: invalid pairing phrase: {0}; it is ten words from the node's session")]
    Phrase(String),
    /// The handshake with the node failed (wrong keys, incompatible peer).
    #[error("lnc: handshake with the node failed: {0}")]
    Handshake(String),
    /// The call failed while the tunnel was reconnecting; retrying is safe for reads.
    #[error(
        "lnc: the connection to the node dropped during the call; it is reconnecting, retry the call"
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
    /// The method name or the JSON request is invalid.
    #[error("lnc: {0}")]
    Request(String),
    /// Reading or writing the profile store failed.
    #[error("lnc: profile store {path}: {message}")]
    Store {
        /// The file or directory.
        path: String,
        /// What failed.
        message: String,
    },
}

impl Error {
    /// Whether retrying the same call later may succeed (the tunnel is reconnecting).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Retryable)
    }

    /// Maps a tonic status: a failure below gRPC (our tunnel client's error inside the
    /// status) is [`Error::Retryable`] / [`Error::Closed`]; anything else came from the node.
    pub fn from_status(s: tonic::Status) -> Error {
        use std::error::Error as _;
        let mut src: Option<&(dyn std::error::Error + 'static)> = s.source();
        while let Some(e) = src {
            if let Some(ce) = e.downcast_ref::<lnc_tunnel::ClientError>() {
                return match ce {
                    lnc_tunnel::ClientError::Closed => Error::Closed,
                    _ => Error::Retryable,
                };
            }
            if e.downcast_ref::<lnc_tunnel::h2::ChannelError>().is_some() {
                return Error::Retryable;
            }
            src = e.source();
        }
        Error::Rpc {
            code: s.code(),
            message: s.message().to_owned(),
        }
    }
}
