//! Native mailbox transports (tokio): HashMail gRPC and the WebSocket JSON protocol.
//!
//! Both can be used by either role. The node creates and deletes boxes over gRPC
//! (`NewCipherBox`/`DelCipherBox`, as litd does); the WebSocket transport delegates box
//! management to gRPC on the same relay address (the relay serves both on one port).

use crate::mailbox::{Mailbox, MailboxError, PacketSink, PacketStream, Status};
use crate::rt::BoxFuture;
use crate::tls::TlsMode;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use lnc_core::pairing::StreamId;
use lnc_hashmail::json;
use lnc_hashmail::pb;
use lnc_hashmail::pb::hash_mail_client::HashMailClient;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tonic::transport::{Channel, Endpoint};

/// Where the relay is and how to reach it.
#[derive(Clone, Debug)]
pub struct RelayAddr {
    /// `host:port`, as the user gives it.
    pub addr: String,
    /// TLS mode.
    pub tls: TlsMode,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
type BoxIo = Box<dyn Io>;

/// The rustls client config for `tls` offering `alpn`, `None` for [`TlsMode::Insecure`].
/// Public so that tools and tests reach a relay with exactly the trust rules the
/// mailboxes use (one home for the skip-verify verifier, for one).
pub fn tls_config(
    tls: &TlsMode,
    alpn: &[&[u8]],
) -> Result<Option<Arc<rustls::ClientConfig>>, MailboxError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MailboxError::tls(format!("tls: {e}")))?;
    let mut cfg = match tls {
        TlsMode::Insecure => return Ok(None),
        TlsMode::CaPem(pem) => {
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| MailboxError::tls(format!("tls: bad CA PEM: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| MailboxError::tls(format!("tls: bad CA cert: {e}")))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsMode::System => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(MailboxError::tls(
                    "tls: no usable CA certificates in the system trust store; pass the relay's CA file",
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsMode::SkipVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PeerCert::new(None)))
            .with_no_client_auth(),
        TlsMode::Pinned(pem) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| MailboxError::tls(format!("tls: bad certificate PEM: {e}")))?;
            if certs.is_empty() {
                return Err(MailboxError::tls(
                    "tls: the certificate file holds no CERTIFICATE block",
                ));
            }
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PeerCert::new(Some(certs))))
                .with_no_client_auth()
        }
    };
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(Some(Arc::new(cfg)))
}

async fn connect_io(relay: &RelayAddr, alpn: &[u8]) -> Result<BoxIo, MailboxError> {
    let tcp = TcpStream::connect(&relay.addr)
        .await
        .map_err(|e| MailboxError::new(format!("connect {}: {e}", relay.addr)))?;
    let _ = tcp.set_nodelay(true);
    match tls_config(&relay.tls, &[alpn])? {
        None => Ok(Box::new(tcp)),
        Some(cfg) => {
            let host = relay
                .addr
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(&relay.addr)
                .trim_matches(|c| c == '[' || c == ']')
                .to_owned();
            let name = rustls::pki_types::ServerName::try_from(host)
                .map_err(|e| MailboxError::tls(format!("tls: bad server name: {e}")))?;
            let s = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await
                .map_err(|e| MailboxError::tls(format!("tls handshake: {e}")))?;
            Ok(Box::new(s))
        }
    }
}

/// The relay's answer, or the connection's failure: a TLS failure of our connector is found
/// by type in the status's sources (tonic wraps it), not by its text.
fn status_err(s: tonic::Status) -> MailboxError {
    let mut e = MailboxError::new(s.message().to_owned());
    let mut src = std::error::Error::source(&s);
    while let Some(cause) = src {
        if let Some(m) = cause.downcast_ref::<MailboxError>() {
            e.tls = m.tls;
            if e.tls {
                e.status = Status::NotConnected;
                e.message = format!("{}: {}", e.message, m.message);
            }
            break;
        }
        src = cause.source();
    }
    e
}

/// HashMail over gRPC (upstream's native client transport; also the node's).
#[derive(Clone, Debug)]
pub struct GrpcMailbox {
    client: HashMailClient<Channel>,
    create_token: Option<Arc<str>>,
    /// Whether the last connection attempt to the relay succeeded (false while one is
    /// under way): what [`GrpcMailbox::open_recv`] waits for instead of response headers
    /// a grpc-go relay does not send.
    relay_up: Arc<tokio::sync::watch::Sender<bool>>,
}

impl GrpcMailbox {
    /// A lazily connected client for the relay (reconnects by itself after a drop).
    pub fn new(relay: RelayAddr) -> Result<Self, MailboxError> {
        let relay = Arc::new(relay);
        let relay_up = Arc::new(tokio::sync::watch::Sender::new(false));
        let up = relay_up.clone();
        let ch = Endpoint::from_shared(format!("http://{}", relay.addr))
            .map_err(|e| MailboxError::new(format!("bad relay address: {e}")))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .initial_stream_window_size(crate::h2::STREAM_WINDOW)
            .initial_connection_window_size(crate::h2::CONNECTION_WINDOW)
            .connect_with_connector_lazy(tower::service_fn(move |_| {
                let (relay, up) = (relay.clone(), up.clone());
                async move {
                    up.send_replace(false);
                    let io = connect_io(&relay, b"h2").await?;
                    up.send_replace(true);
                    Ok::<_, MailboxError>(TokioIo::new(io))
                }
            }));
        Ok(GrpcMailbox {
            client: HashMailClient::new(ch).max_decoding_message_size(8 << 20),
            create_token: None,
            relay_up,
        })
    }

    /// Sends `authorization: Bearer <token>` with box creation and deletion, for relays
    /// that restrict who may create mailboxes (lnc-mailbox `--create-auth`).
    pub fn with_create_token(mut self, token: Option<String>) -> Self {
        self.create_token = token.map(Arc::from);
        self
    }

    fn auth_request(&self, id: StreamId) -> tonic::Request<pb::CipherBoxAuth> {
        let mut r = tonic::Request::new(Self::auth(id));
        if let Some(v) = self
            .create_token
            .as_ref()
            .and_then(|t| format!("Bearer {t}").parse().ok())
        {
            r.metadata_mut().insert("authorization", v);
        }
        r
    }

    fn auth(id: StreamId) -> pb::CipherBoxAuth {
        pb::CipherBoxAuth {
            desc: Some(pb::CipherBoxDesc {
                stream_id: id.as_bytes().to_vec().into(),
            }),
            auth: Some(pb::cipher_box_auth::Auth::LndAuth(pb::LndAuth {})),
        }
    }
}

impl Mailbox for GrpcMailbox {
    /// Opens `RecvStream`. Resolves with the relay's answer if it comes before the relay
    /// connection is known to be up (a refusal is then an `Err` here), otherwise as soon
    /// as the request is on a live connection, with the answer still to come on the
    /// stream: a grpc-go relay (aperture) sends a found stream's response headers only
    /// with its first message, so waiting for them would wait for the peer — and an app
    /// that holds its SYN until its receive stream opened would wait forever for a peer
    /// that waits for that SYN ([`lnc_core::go_compat`], "quiet `RecvStream`").
    fn open_recv(&self, id: StreamId) -> BoxFuture<Result<PacketStream, MailboxError>> {
        let mut c = self.client.clone();
        let mut up = self.relay_up.subscribe();
        Box::pin(async move {
            let desc = pb::CipherBoxDesc {
                stream_id: id.as_bytes().to_vec().into(),
            };
            let mut call = Box::pin(async move { c.recv_stream(desc).await.map_err(status_err) });
            let answered = tokio::select! {
                biased;
                r = &mut call => Some(r?),
                // The sender lives as long as the channel's connector, so in `self`.
                _ = up.wait_for(|up| *up) => None,
            };
            let items = |resp: tonic::Response<tonic::Streaming<pb::CipherBox>>| {
                resp.into_inner()
                    .map(|r| r.map(|b| b.msg.to_vec()).map_err(status_err))
            };
            Ok(match answered {
                Some(resp) => Box::pin(items(resp)) as PacketStream,
                None => Box::pin(futures_util::stream::once(call).flat_map(move |r| match r {
                    Ok(resp) => futures_util::future::Either::Left(items(resp)),
                    Err(e) => {
                        futures_util::future::Either::Right(futures_util::stream::iter([Err(e)]))
                    }
                })) as PacketStream,
            })
        })
    }

    fn open_send(&self, id: StreamId) -> BoxFuture<Result<PacketSink, MailboxError>> {
        let mut c = self.client.clone();
        Box::pin(async move {
            let (tx, rx) = futures_channel::mpsc::channel::<pb::CipherBox>(64);
            let desc = pb::CipherBoxDesc {
                stream_id: id.as_bytes().to_vec().into(),
            };
            let (done_tx, done) = futures_channel::oneshot::channel();
            tokio::spawn(async move {
                let msg = match c.send_stream(rx).await {
                    Ok(_) => "hashmail SendStream ended".to_owned(),
                    Err(e) => e.message().to_owned(),
                };
                let _ = done_tx.send(msg);
            });
            let sink = tx
                .sink_map_err(|_| MailboxError {
                    status: Status::NotConnected,
                    message: "hashmail send stream closed".into(),
                    tls: false,
                })
                .with(move |msg: Vec<u8>| {
                    let b = pb::CipherBox {
                        desc: Some(desc.clone()),
                        msg: msg.into(),
                    };
                    futures_util::future::ready(Ok::<_, MailboxError>(b))
                });
            Ok(Box::pin(WatchedSink { inner: sink, done }) as PacketSink)
        })
    }

    fn create(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        let mut c = self.client.clone();
        let req = self.auth_request(id);
        Box::pin(async move {
            match c.new_cipher_box(req).await {
                Ok(_) => Ok(()),
                Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
                Err(s) => Err(status_err(s)),
            }
        })
    }

    fn delete(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        let mut c = self.client.clone();
        let req = self.auth_request(id);
        Box::pin(async move {
            match c.del_cipher_box(req).await {
                Ok(_) => Ok(()),
                Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
                Err(s) => Err(status_err(s)),
            }
        })
    }
}

/// HashMail over WebSocket with the JSON text frames the Go/browser client sends
/// (`/v1/lightning-node-connect/hashmail/{receive,send}?method=POST`).
#[derive(Clone, Debug)]
pub struct WsMailbox {
    relay: RelayAddr,
    boxes: GrpcMailbox,
}

/// Largest frame accepted on a receive socket (Go's limit is 100 KiB; a little more for
/// our own coalesced messages' base64 overhead).
const WS_RECV_LIMIT: usize = 256 * 1024;

impl WsMailbox {
    /// A WebSocket transport for the relay; box management goes over gRPC.
    pub fn new(relay: RelayAddr) -> Result<Self, MailboxError> {
        Ok(WsMailbox {
            boxes: GrpcMailbox::new(relay.clone())?,
            relay,
        })
    }

    async fn dial(
        relay: &RelayAddr,
        path: &str,
    ) -> Result<tokio_tungstenite::WebSocketStream<BoxIo>, MailboxError> {
        let io = connect_io(relay, b"http/1.1").await?;
        let scheme = match relay.tls {
            TlsMode::Insecure => "ws",
            _ => "wss",
        };
        let url = format!("{scheme}://{}{path}?method=POST", relay.addr);
        let cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(WS_RECV_LIMIT))
            .max_frame_size(Some(WS_RECV_LIMIT));
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, io, Some(cfg))
            .await
            .map_err(|e| MailboxError::new(format!("websocket: {e}")))?;
        Ok(ws)
    }
}

fn ws_err(e: tokio_tungstenite::tungstenite::Error) -> MailboxError {
    MailboxError::new(format!("websocket: {e}"))
}

impl Mailbox for WsMailbox {
    fn open_recv(&self, id: StreamId) -> BoxFuture<Result<PacketStream, MailboxError>> {
        let relay = self.relay.clone();
        Box::pin(async move {
            let mut ws = Self::dial(&relay, lnc_hashmail::paths::WS_RECEIVE).await?;
            ws.send(Message::Text(json::desc_frame(id.as_bytes()).into()))
                .await
                .map_err(ws_err)?;
            // The relay answers a missing stream with an error frame before it reads
            // further; a pong to this ping therefore means the reader is attached.
            ws.send(Message::Ping(bytes::Bytes::from_static(b"lnc")))
                .await
                .map_err(ws_err)?;
            let mut first: Option<Vec<u8>> = None;
            let wait = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Pong(_))) => return Ok(()),
                        Some(Ok(Message::Text(t))) => match json::parse_recv_frame(&t) {
                            Ok(json::RecvFrame::Result(b)) => {
                                first = Some(b.msg.0);
                                return Ok(());
                            }
                            Ok(json::RecvFrame::Error(s)) => {
                                return Err(MailboxError::new(s.message));
                            }
                            Err(e) => return Err(MailboxError::new(e.to_string())),
                        },
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(ws_err(e)),
                        None => return Err(MailboxError::new("websocket closed")),
                    }
                }
            })
            .await;
            if let Ok(r) = wait {
                r?;
            }
            let rest = ws.filter_map(|m| async move {
                match m {
                    Ok(Message::Text(t)) => Some(match json::parse_recv_frame(&t) {
                        Ok(json::RecvFrame::Result(b)) => Ok(b.msg.0),
                        Ok(json::RecvFrame::Error(s)) => Err(MailboxError::new(s.message)),
                        Err(e) => Err(MailboxError::new(e.to_string())),
                    }),
                    Ok(Message::Close(_)) => Some(Err(MailboxError::new("websocket closed"))),
                    Ok(_) => None,
                    Err(e) => Some(Err(ws_err(e))),
                }
            });
            let s = futures_util::stream::iter(first.map(Ok)).chain(rest);
            Ok(Box::pin(s) as PacketStream)
        })
    }

    fn open_send(&self, id: StreamId) -> BoxFuture<Result<PacketSink, MailboxError>> {
        let relay = self.relay.clone();
        Box::pin(async move {
            let ws = Self::dial(&relay, lnc_hashmail::paths::WS_SEND).await?;
            let (sink, mut read) = ws.split();
            // Read and discard what the relay sends (answers its pings); an error frame
            // or a close ends the socket, and the next write then fails and re-opens.
            let (done_tx, done) = futures_channel::oneshot::channel();
            // Dropping the sink drops `alive`, which ends this reader; with both halves
            // gone the socket closes, so the relay frees the stream for the next writer
            // (otherwise a reconnect sees "write stream occupied" until the process exits).
            let (alive, mut dropped) = futures_channel::oneshot::channel::<()>();
            tokio::spawn(async move {
                let mut why = "websocket send socket closed".to_owned();
                loop {
                    let m = tokio::select! {
                        m = read.next() => m,
                        _ = &mut dropped => break,
                    };
                    let Some(Ok(m)) = m else { break };
                    if let Message::Text(t) = m
                        && let Ok(json::RecvFrame::Error(st)) = json::parse_recv_frame(&t)
                    {
                        why = st.message;
                    }
                }
                let _ = done_tx.send(why);
            });
            let sid = id;
            let sink = LingeringWsSink(Some(sink));
            let sink = sink.sink_map_err(ws_err).with(move |msg: Vec<u8>| {
                let _keep = &alive;
                let f = json::send_frame(sid.as_bytes(), &msg);
                futures_util::future::ready(Ok::<_, MailboxError>(Message::Text(f.into())))
            });
            Ok(Box::pin(WatchedSink { inner: sink, done }) as PacketSink)
        })
    }

    fn create(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        self.boxes.create(id)
    }

    fn delete(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        self.boxes.delete(id)
    }
}

/// How long a dropped WebSocket send socket stays open before it closes.
///
/// aperture's WebSocket gateway (lnd's `lnrpc.WebsocketProxy` in front of grpc-gateway)
/// cancels the socket's `SendStream` call the moment it reads the close (or the TCP
/// end), and the relay's `SendStream` loop checks for that cancellation before it takes
/// the next message: a message still on its way through the gateway (JSON → pipe →
/// loopback gRPC) is dropped. That message is typically the GBN FIN of a closing
/// connection; a Go node that misses it keeps serving the dead connection until its
/// keepalive gives up (≈ 30 s), and only then accepts the app's KK reconnect. The
/// forwarding happens inside the relay, so the time it needs does not grow with the
/// network distance; Go's own client gets its margin by closing its receive socket
/// (one round trip) first.
const WS_CLOSE_LINGER: Duration = Duration::from_millis(100);

/// The write half of a WebSocket send socket that, once dropped, flushes, stays open
/// for [`WS_CLOSE_LINGER`] and then closes with a close frame ([`lnc_core::go_compat`],
/// "WebSocket gateway drops the last message").
struct LingeringWsSink(
    Option<futures_util::stream::SplitSink<tokio_tungstenite::WebSocketStream<BoxIo>, Message>>,
);

impl LingeringWsSink {
    fn inner(
        &mut self,
    ) -> Result<
        &mut futures_util::stream::SplitSink<tokio_tungstenite::WebSocketStream<BoxIo>, Message>,
        tokio_tungstenite::tungstenite::Error,
    > {
        self.0
            .as_mut()
            .ok_or(tokio_tungstenite::tungstenite::Error::AlreadyClosed)
    }
}

impl futures_util::Sink<Message> for LingeringWsSink {
    type Error = tokio_tungstenite::tungstenite::Error;
    fn poll_ready(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::pin::Pin::new(self.inner()?).poll_ready(cx)
    }
    fn start_send(mut self: std::pin::Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        std::pin::Pin::new(self.inner()?).start_send(item)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::pin::Pin::new(self.inner()?).poll_flush(cx)
    }
    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::pin::Pin::new(self.inner()?).poll_close(cx)
    }
}

impl Drop for LingeringWsSink {
    fn drop(&mut self) {
        let Some(mut sink) = self.0.take() else {
            return;
        };
        // Without a runtime (process exit) the socket just closes.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if sink.flush().await.is_ok() {
                    tokio::time::sleep(WS_CLOSE_LINGER).await;
                    let _ = sink.close().await;
                }
            });
        }
    }
}

/// A send sink that fails as soon as its relay stream ended (the gRPC call returned or
/// the socket closed), not only at the next write: the driver re-opens at once and
/// replays what the dead stream may have swallowed.
struct WatchedSink<S> {
    inner: S,
    done: futures_channel::oneshot::Receiver<String>,
}

impl<S> WatchedSink<S> {
    fn check(&mut self, cx: &mut std::task::Context<'_>) -> Result<(), MailboxError> {
        match std::pin::Pin::new(&mut self.done).poll(cx) {
            std::task::Poll::Ready(Ok(msg)) => Err(MailboxError::new(msg)),
            std::task::Poll::Ready(Err(_)) => Err(MailboxError::new("relay stream ended")),
            std::task::Poll::Pending => Ok(()),
        }
    }
}

impl<S: futures_util::Sink<Vec<u8>, Error = MailboxError> + Unpin> futures_util::Sink<Vec<u8>>
    for WatchedSink<S>
{
    type Error = MailboxError;
    fn poll_ready(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), MailboxError>> {
        self.check(cx)?;
        std::pin::Pin::new(&mut self.inner).poll_ready(cx)
    }
    fn start_send(mut self: std::pin::Pin<&mut Self>, item: Vec<u8>) -> Result<(), MailboxError> {
        std::pin::Pin::new(&mut self.inner).start_send(item)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), MailboxError>> {
        self.check(cx)?;
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), MailboxError>> {
        std::pin::Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// The certificate check of [`TlsMode::SkipVerify`] (any certificate) and
/// [`TlsMode::Pinned`] (exactly the pinned ones). Either way the handshake signatures are
/// verified as usual, so the peer holds the key of the certificate it showed.
#[derive(Debug)]
struct PeerCert {
    /// `None`: any certificate.
    pinned: Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl PeerCert {
    fn new(pinned: Option<Vec<rustls::pki_types::CertificateDer<'static>>>) -> Self {
        let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        PeerCert { pinned, algorithms }
    }
}

impl rustls::client::danger::ServerCertVerifier for PeerCert {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match &self.pinned {
            Some(certs) if !certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) => {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
            _ => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_configs_build() {
        assert!(tls_config(&TlsMode::Insecure, &[b"h2"]).unwrap().is_none());
        let c = tls_config(&TlsMode::SkipVerify, &[b"h2"]).unwrap().unwrap();
        assert_eq!(c.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(tls_config(&TlsMode::CaPem(b"not a pem".to_vec()), &[b"h2"]).is_ok());
        assert!(tls_config(&TlsMode::Pinned(b"not a pem".to_vec()), &[b"h2"]).is_err());
        // The system store may be empty in a container; either outcome is a clean result.
        let _ = tls_config(&TlsMode::System, &[b"http/1.1"]);
    }

    #[test]
    fn relay_errors_map_to_statuses() {
        let e = status_err(tonic::Status::unknown("stream not found"));
        assert_eq!(e.status, Status::SessionNotFound);
        let e = status_err(tonic::Status::unknown("read stream occupied"));
        assert_eq!(e.status, Status::SessionInUse);
    }
}
