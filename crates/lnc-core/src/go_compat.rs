//! Every behaviour of the Go implementation (lightning-node-connect v0.3.1-alpha, as
//! litd and lnc-web run it) that our side must accommodate, in one place.
//!
//! Each quirk is a pure rule here (sans-IO, like the rest of lnc-core); the async drivers
//! in lnc-tunnel only apply it. Each has a test against the real Go peer in
//! `crates/lnc-client/tests/go_interop.rs` that fails without it (the cells
//! `our_app_*_go_node_*`, and `go_app_*_our_node_*` for the restart rule).
//!
//! | quirk | Go code | rule here |
//! |---|---|---|
//! | Go's `NoiseGrpcConn.Read` hands out one decrypted record per `Read` and drops the part that does not fit the caller's buffer; grpc-go's server reads the 24-byte HTTP/2 client preface with `io.ReadFull` straight on that conn | `mailbox/grpc_noise_conn.go` `Read`; grpc-go `internal/transport/http2_server.go` `newHTTP2Server` | [`RecordPlanner`]: the preface is a record of its own |
//! | the same `Read` never hands out more than 32 KiB (`defaultGrpcWriteBufSize`) at once, and grpc-go writes at most that much per record | `mailbox/grpc_noise_conn.go` | [`RecordPlanner`]: records carry at most [`GO_MAX_RECORD_PAYLOAD`] |
//! | a Go node creates only its receive mailbox (app→node) up front and its send mailbox (node→app) once the app's GBN SYN arrived | `mailbox/server_conn.go` `NewServerConn` / `createSendMailBox` | [`SendGate`]: the app writes its SYN while its receive stream still answers "stream not found" |
//! | aperture's HashMail server (grpc-go) answers a `RecvStream` on an existing mailbox with nothing at all until the first message: grpc-go sends response headers only with the first message (a refusal comes at once, as headers + error status). "Receive stream opened" therefore cannot mean "the relay said yes" | aperture `hashmail_server.go` `RecvStream`; grpc-go `internal/transport/http2_server.go` `WriteHeader` | "quiet `RecvStream`": lnc-tunnel's `GrpcMailbox::open_recv` counts a receive stream as open once its request is on a live relay connection; [`SendGate`] then opens at once, and a SYN the relay refuses because the mailbox is not there yet is resent on the next open of the write stream (lnc-tunnel `driver`) |
//! | aperture's WebSocket gateway (lnd's `WebsocketProxy`) cancels a socket's `SendStream` the moment the socket closes, and aperture's `SendStream` loop checks that before taking the next message: the last message (our FIN) is lost and a Go node keeps the dead connection until its keepalive (≈ 30 s), delaying the KK reconnect | lnd `lnrpc/websocket_proxy.go`; aperture `hashmail_server.go` `SendStream` | lnc-tunnel `native::WS_CLOSE_LINGER`: a dropped WebSocket send socket stays open 100 ms, then closes with a close frame |
//! | a Go app restarts (a new process: a new GBN connection, SYN first) often within a second of its previous handshake, and resends an unanswered SYN only after its 2 s handshake timeout, so a server that holds back a SYN arriving that soon (as a possible late duplicate of the last handshake's) costs it 2 s | `gbn/gbn_client.go` `clientHandshake` | `gbn::Config::fifo_transport` (the default): the mailbox is in order, so a SYN after any other packet of the client's is a restart, never a duplicate; tested by the `go_app_*_our_node_*` cells' quick second restart (2.98 s without it) |
//! | the same gateway answers a `RecvStream` that fails before its first message with grpc-gateway's bare status body `{"code":2,"message":"stream not found",…}`, not `{"error":…}` | grpc-gateway `runtime.HTTPError` | `lnc_hashmail::json::parse_recv_frame` reads it as an error frame (Session Not Found) |

/// The HTTP/2 client connection preface (RFC 9113 §3.4), the first bytes an HTTP/2
/// client writes.
pub const HTTP2_CLIENT_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The most plaintext Go's `NoiseGrpcConn.Read` hands to grpc-go at once
/// (`defaultGrpcWriteBufSize`, 32 KiB), and the most grpc-go's 32 KiB write buffer puts
/// in one record. Go splits a larger record over two reads, which only works while the
/// caller's buffer holds 32 KiB; records no larger than this are what Go itself sends,
/// so they are the size every Go reader is known to take whole.
pub const GO_MAX_RECORD_PAYLOAD: usize = 32 * 1024;

/// Cuts the plaintext a Noise stream writes into records a Go peer reads completely.
///
/// Go hands grpc-go one record per `Read` and drops whatever does not fit the buffer
/// passed in. grpc-go's server reads the client preface with `io.ReadFull(conn, [24]byte)`
/// before it wraps the conn in its 32 KiB buffered reader, so a record holding the
/// preface and the SETTINGS frame behind it loses the SETTINGS: the server then sees a
/// HEADERS frame first ("invalid preface type *http2.MetaHeadersFrame") and closes.
/// hyper writes preface and SETTINGS in one write, so the first record of an HTTP/2
/// client must end right after the preface.
///
/// Records (several may share one relay message: Go's mailbox conn buffers a message
/// and reads it as a byte stream) otherwise carry up to [`GO_MAX_RECORD_PAYLOAD`].
#[derive(Debug, Clone, Default)]
pub struct RecordPlanner {
    first_done: bool,
}

impl RecordPlanner {
    /// A planner for a fresh stream (nothing written yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// The plaintext length of the next record, given the plaintext waiting to be sent
    /// (`buffered`, non-empty). Call once per record, in order.
    pub fn next_record_len(&mut self, buffered: &[u8]) -> usize {
        let first = !core::mem::replace(&mut self.first_done, true);
        if first
            && buffered.len() > HTTP2_CLIENT_PREFACE.len()
            && buffered.starts_with(HTTP2_CLIENT_PREFACE)
        {
            return HTTP2_CLIENT_PREFACE.len();
        }
        buffered.len().min(GO_MAX_RECORD_PAYLOAD)
    }
}

/// App side: when the send direction (app→node) may open.
///
/// Our node creates both mailboxes before it listens, so an app that opens its send
/// stream only after its receive stream opened rarely writes into a mailbox that does not
/// exist yet (the relay refuses that SYN with the stream; the driver resends it on the
/// next open). Over gRPC "opened" only means the request is on a live relay connection:
/// aperture says nothing about a mailbox that exists (see the table above).
/// A Go node creates the app→node mailbox up front but the node→app one only after the
/// app's SYN arrived, so waiting for the receive stream would wait forever. Once the
/// receive stream answered "stream not found" the app therefore sends anyway: the SYN
/// reaches a Go node, which then creates the other mailbox.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendGate {
    recv_opened: bool,
    recv_missing: bool,
}

impl SendGate {
    /// The receive stream opened.
    pub fn on_recv_opened(&mut self) {
        self.recv_opened = true;
    }

    /// The relay answered the receive stream with "stream not found".
    pub fn on_recv_not_found(&mut self) {
        self.recv_missing = true;
    }

    /// Whether the send stream may open now.
    pub fn may_open_send(&self) -> bool {
        self.recv_opened || self.recv_missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preface_alone_in_the_first_record() {
        let mut p = RecordPlanner::new();
        let mut buf = HTTP2_CLIENT_PREFACE.to_vec();
        buf.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS
        assert_eq!(p.next_record_len(&buf), 24);
        assert_eq!(p.next_record_len(&buf[24..]), 9);
    }

    #[test]
    fn preface_alone_is_one_record_and_later_prefaces_are_data() {
        let mut p = RecordPlanner::new();
        assert_eq!(p.next_record_len(HTTP2_CLIENT_PREFACE), 24);
        let mut buf = HTTP2_CLIENT_PREFACE.to_vec();
        buf.extend_from_slice(b"more");
        assert_eq!(p.next_record_len(&buf), 28);
    }

    #[test]
    fn records_at_most_32k() {
        let mut p = RecordPlanner::new();
        let buf = vec![0u8; 70_000];
        assert_eq!(p.next_record_len(&buf), GO_MAX_RECORD_PAYLOAD);
        assert_eq!(p.next_record_len(&buf[..100]), 100);
    }

    #[test]
    fn send_gate() {
        let mut g = SendGate::default();
        assert!(!g.may_open_send());
        g.on_recv_not_found();
        assert!(g.may_open_send());
        let mut g = SendGate::default();
        g.on_recv_opened();
        assert!(g.may_open_send());
    }
}
