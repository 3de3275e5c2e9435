//! HashMail wire types shared by the mailbox relay and the tunnel clients.
//!
//! The HashMail relay ("mailbox") is where an LNC app and node meet: each side
//! writes to one simplex stream and reads from the other. Unmodified Go peers
//! speak it either as gRPC (`hashmailrpc.HashMail`, [`pb`]) or, in the browser,
//! as JSON text frames over WebSocket ([`json`]). Both must stay byte-compatible
//! with the Go relay (aperture), so the protobuf package, message names and field
//! numbers come from the upstream field table, and the JSON follows grpc-gateway's
//! `UseProtoNames` + standard-base64 conventions.
//!
//! This crate has no I/O and builds for `wasm32-unknown-unknown` (tonic is used
//! with codegen only), so the browser client can reuse the JSON types.

pub mod codec;
pub mod json;

/// Protobuf messages and tonic stubs generated from `proto/hashmail.proto`.
///
/// `hash_mail_client::HashMailClient` is generic over any tower
/// `GrpcService`, so it runs over a tonic channel natively or over a custom
/// HTTP/2 connection (e.g. inside a browser). `hash_mail_server` carries the
/// service trait the relay implements.
#[allow(missing_docs, clippy::all, clippy::unwrap_used)]
pub mod pb {
    tonic::include_proto!("hashmailrpc");
}

/// Length of a stream id. LNC derives it as SHA-512 of the session id, so any
/// other length is a client bug; the Go relay silently pads/truncates, we refuse.
pub const STREAM_ID_LEN: usize = 64;

/// gRPC method paths, for routing and logging without the generated server.
pub mod paths {
    /// Prefix shared by all HashMail gRPC methods.
    pub const GRPC_PREFIX: &str = "/hashmailrpc.HashMail/";
    /// REST create (POST) and delete (DELETE) path.
    pub const REST_BOX: &str = "/v1/lightning-node-connect/hashmail";
    /// WebSocket (or REST) receive path; clients add `?method=POST`.
    pub const WS_RECEIVE: &str = "/v1/lightning-node-connect/hashmail/receive";
    /// WebSocket (or REST) send path; clients add `?method=POST`.
    pub const WS_SEND: &str = "/v1/lightning-node-connect/hashmail/send";
}

/// Error strings Go clients substring-match on (`mailbox/client_conn.go`):
/// changing them breaks the status shown to users (Session Not Found / In Use).
pub mod errors {
    /// The stream id is not live on the relay.
    pub const STREAM_NOT_FOUND: &str = "stream not found";
    /// Another reader holds the read side.
    pub const READ_OCCUPIED: &str = "read stream occupied";
    /// Another writer holds the write side.
    pub const WRITE_OCCUPIED: &str = "write stream occupied";
    /// NewCipherBox on a live stream (sent with code ALREADY_EXISTS, which
    /// litd treats as success).
    pub const ALREADY_ACTIVE: &str = "stream already active";
}
