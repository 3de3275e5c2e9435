//! Relay errors and how each is reported on gRPC and WebSocket.
//!
//! The texts of the first group are what unmodified Go clients substring-match
//! (`stream not found`, `stream occupied`), and they keep the Go relay's gRPC
//! code (2 = Unknown) so our frames are byte-equal to aperture's.

use lnc_hashmail::errors;
use tonic::Code;

/// Why a relay operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// No live mailbox with this stream id.
    #[error("{}", errors::STREAM_NOT_FOUND)]
    NotFound,
    /// The read side is held by another reader (after waiting).
    #[error("{}", errors::READ_OCCUPIED)]
    ReadOccupied,
    /// The write side is held by another writer (after waiting).
    #[error("{}", errors::WRITE_OCCUPIED)]
    WriteOccupied,
    /// NewCipherBox on a live mailbox.
    #[error("{}", errors::ALREADY_ACTIVE)]
    AlreadyExists,
    /// Request without `desc`.
    #[error("cipher box descriptor required")]
    MissingDesc,
    /// `desc.stream_id` empty.
    #[error("stream_id required")]
    MissingStreamId,
    /// Create/delete without the `lnd_auth` marker.
    #[error("auth type required")]
    MissingAuth,
    /// Stream id not 64 bytes.
    #[error("invalid stream_id: must be 64 bytes, got {0}")]
    BadStreamId(usize),
    /// A message above `max_message_bytes`.
    #[error("message too large: {len} bytes exceeds limit max_message_bytes={limit}")]
    MessageTooLarge {
        /// Size received.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// `max_streams` reached.
    #[error("mailbox limit reached: max_streams={0}")]
    TooManyStreams(usize),
    /// `max_streams_per_ip` reached.
    #[error("mailbox limit reached: max_streams_per_ip={0}")]
    TooManyStreamsPerIp(usize),
    /// `max_connections_per_ip` reached.
    #[error("connection limit reached: max_connections_per_ip={0}")]
    TooManyConnections(usize),
    /// Calls in flight from one IP at [`crate::Limits::max_calls_per_ip`].
    #[error(
        "call limit reached: {0} calls in flight from this address (2 x max_streams_per_ip + 64)"
    )]
    TooManyCalls(usize),
    /// A call or connection would take this IP (or the relay) past its memory budget.
    #[error(
        "memory limit reached: this address's calls, connections and queued messages hold its share of the relay's memory ({share} bytes); read or delete its mailboxes, or close idle connections"
    )]
    OverMemoryShare {
        /// The per-IP share (`queue_budget_per_ip_bytes`), or the relay's budget.
        share: usize,
    },
    /// Create/delete without a valid bearer token.
    #[error("create auth: {0}")]
    Unauthenticated(&'static str),
    /// Delete with a valid token that did not create this mailbox.
    #[error("create auth: mailbox was created with another token")]
    NotCreator,
    /// The mailbox was deleted or collected while in use.
    #[error("stream shutting down")]
    StreamClosed,
    /// The relay is shutting down.
    #[error("server shutting down")]
    ShuttingDown,
    /// The shared store (Redis) cannot be reached or failed; the client should
    /// retry shortly (another instance, or this one once Redis is back).
    #[error("mailbox storage unavailable, retry shortly: {0}")]
    StorageUnavailable(String),
    /// Undecodable client input (bad JSON, bad base64, binary frame, …).
    #[error("malformed request: {0}")]
    Malformed(String),
}

impl RelayError {
    /// The gRPC code sent with this error.
    pub fn code(&self) -> Code {
        match self {
            // Go relay: plain errors → Unknown. Kept for byte-equal frames.
            RelayError::NotFound | RelayError::ReadOccupied | RelayError::WriteOccupied => {
                Code::Unknown
            }
            RelayError::AlreadyExists => Code::AlreadyExists,
            RelayError::MissingDesc
            | RelayError::MissingStreamId
            | RelayError::MissingAuth
            | RelayError::BadStreamId(_)
            | RelayError::Malformed(_) => Code::InvalidArgument,
            RelayError::MessageTooLarge { .. }
            | RelayError::TooManyStreams(_)
            | RelayError::TooManyStreamsPerIp(_)
            | RelayError::TooManyConnections(_)
            | RelayError::TooManyCalls(_)
            | RelayError::OverMemoryShare { .. } => Code::ResourceExhausted,
            RelayError::Unauthenticated(_) => Code::Unauthenticated,
            RelayError::NotCreator => Code::PermissionDenied,
            RelayError::StreamClosed
            | RelayError::ShuttingDown
            | RelayError::StorageUnavailable(_) => Code::Unavailable,
        }
    }

    /// Label for the `rejections` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            RelayError::NotFound => "not_found",
            RelayError::ReadOccupied => "read_occupied",
            RelayError::WriteOccupied => "write_occupied",
            RelayError::AlreadyExists => "already_exists",
            RelayError::MissingDesc
            | RelayError::MissingStreamId
            | RelayError::MissingAuth
            | RelayError::BadStreamId(_)
            | RelayError::Malformed(_) => "malformed",
            RelayError::MessageTooLarge { .. } => "message_too_large",
            RelayError::TooManyStreams(_) => "max_streams",
            RelayError::TooManyStreamsPerIp(_) => "max_streams_per_ip",
            RelayError::TooManyConnections(_) => "max_connections_per_ip",
            RelayError::TooManyCalls(_) => "max_calls_per_ip",
            RelayError::OverMemoryShare { .. } => "memory_share",
            RelayError::Unauthenticated(_) | RelayError::NotCreator => "auth",
            RelayError::StreamClosed => "stream_closed",
            RelayError::ShuttingDown => "shutting_down",
            RelayError::StorageUnavailable(_) => "storage_unavailable",
        }
    }

    /// grpc-gateway's HTTP status for REST answers.
    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self.code() {
            Code::AlreadyExists => S::CONFLICT,
            Code::InvalidArgument => S::BAD_REQUEST,
            Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
            Code::Unauthenticated => S::UNAUTHORIZED,
            Code::PermissionDenied => S::FORBIDDEN,
            Code::Unavailable => S::SERVICE_UNAVAILABLE,
            Code::NotFound => S::NOT_FOUND,
            _ => S::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<RelayError> for tonic::Status {
    fn from(e: RelayError) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}
