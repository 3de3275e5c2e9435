//! A raw HashMail client for any relay (ours or aperture): tonic gRPC over h2, the
//! browser's WebSocket JSON protocol (tokio-tungstenite), plain HTTP/1.1 for REST and
//! metrics; and the protocol messages the relay tests build.

use std::sync::atomic::{AtomicU64, Ordering};

use hyper_util::rt::TokioIo;
use lnc_hashmail::pb;
use lnc_hashmail::pb::hash_mail_client::HashMailClient;
use lnc_tunnel::TlsMode;
use lnc_tunnel::native::tls_config;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tonic::transport::{Channel, Endpoint};

/// Any byte stream to the relay (TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
/// A boxed [`Io`].
pub type BoxIo = Box<dyn Io>;

/// Where a relay is and how to trust it.
#[derive(Clone, Debug)]
pub struct RelayClient {
    addr: String,
    tls: TlsMode,
    /// The local address connections come from (another loopback IP plays another client).
    source: Option<std::net::IpAddr>,
}

/// How to trust a relay: [`TlsMode`] as our mailboxes take it.
pub type Trust = TlsMode;

/// The trust for a relay's own PEM certificate.
pub fn trust_pem(pem: &str) -> Trust {
    TlsMode::CaPem(pem.as_bytes().to_vec())
}

impl RelayClient {
    /// A client of the relay at `addr` (`host:port`).
    pub fn new(addr: impl ToString, tls: Trust) -> RelayClient {
        RelayClient {
            addr: addr.to_string(),
            tls,
            source: None,
        }
    }

    /// The same client connecting from `ip` (e.g. `127.0.0.2`: the relay then counts it as
    /// another client IP).
    pub fn from_ip(mut self, ip: std::net::IpAddr) -> RelayClient {
        self.source = Some(ip);
        self
    }

    /// A TCP connection to the relay, from the source IP if one is set.
    async fn tcp(&self) -> std::io::Result<TcpStream> {
        let tcp = match self.source {
            None => TcpStream::connect(&self.addr).await?,
            Some(ip) => {
                let to = tokio::net::lookup_host(&self.addr)
                    .await?
                    .find(|a| a.is_ipv4() == ip.is_ipv4())
                    .ok_or_else(|| std::io::Error::other("no address of the family"))?;
                let socket = if ip.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                socket.bind(std::net::SocketAddr::new(ip, 0))?;
                socket.connect(to).await?
            }
        };
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    /// Whether it speaks TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self.tls, TlsMode::Insecure)
    }

    /// A TLS connection offering `alpn` (panics on a plain-TCP relay).
    pub async fn tls_connect(
        &self,
        alpn: &[&[u8]],
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let cfg = tls_config(&self.tls, alpn)
            .map_err(std::io::Error::other)?
            .expect("tls_connect on a plain-TCP relay");
        let tcp = self.tcp().await?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
    }

    /// A TCP (+TLS with the given ALPN) connection to the relay.
    pub async fn connect(&self, alpn: &[&[u8]]) -> BoxIo {
        if self.is_tls() {
            Box::new(self.tls_connect(alpn).await.unwrap())
        } else {
            Box::new(self.tcp().await.unwrap())
        }
    }

    /// A HashMail gRPC client (panics if the relay cannot be reached).
    pub async fn grpc(&self) -> HashMailClient<Channel> {
        self.try_grpc().await.unwrap()
    }

    /// A HashMail gRPC client.
    pub async fn try_grpc(&self) -> Result<HashMailClient<Channel>, tonic::transport::Error> {
        let me = self.clone();
        let ch = Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_uri| {
                let me = me.clone();
                async move {
                    let io: BoxIo = if me.is_tls() {
                        Box::new(me.tls_connect(&[b"h2"]).await?)
                    } else {
                        Box::new(me.tcp().await?)
                    };
                    Ok::<_, std::io::Error>(TokioIo::new(io))
                }
            }))
            .await?;
        Ok(HashMailClient::new(ch).max_decoding_message_size(8 << 20))
    }

    /// A WebSocket to the gateway at `path` (`?method=POST` appended, as the browser
    /// client does).
    pub async fn ws(&self, path: &str) -> WebSocketStream<BoxIo> {
        self.try_ws(path).await.unwrap()
    }

    /// A WebSocket to the gateway, or the handshake's error (e.g. an HTTP refusal).
    pub async fn try_ws(
        &self,
        path: &str,
    ) -> Result<WebSocketStream<BoxIo>, tokio_tungstenite::tungstenite::Error> {
        let io = self.connect(&[b"http/1.1"]).await;
        let scheme = if self.is_tls() { "wss" } else { "ws" };
        let url = format!("{scheme}://localhost{path}?method=POST");
        let (ws, _) = tokio_tungstenite::client_async(url, io).await?;
        Ok(ws)
    }

    /// A raw HTTP/1.1 request; returns (status, head + de-chunked body).
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let io = self.connect(&[b"http/1.1"]).await;
        http_raw(io, method, path, headers, body).await
    }
}

/// Sends one HTTP/1.1 request on `io` and reads the response to EOF.
pub async fn http_raw(
    mut io: BoxIo,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    io.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(crate::T, io.read_to_end(&mut out))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, format!("{head}\r\n\r\n{body}"))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// The body of an [`http_raw`] answer.
pub fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").unwrap().1
}

/// A 64-byte stream id, distinct per call (so tests sharing a relay never collide).
pub fn sid(n: u8) -> Vec<u8> {
    static C: AtomicU64 = AtomicU64::new(1);
    let mut v = vec![n; 64];
    v[0] = 0xAB;
    v[63] = (C.fetch_add(1, Ordering::Relaxed) % 251) as u8;
    v
}

/// `NewCipherBox`'s request, with the LND auth the Go node sends.
pub fn auth_req(id: &[u8]) -> pb::CipherBoxAuth {
    pb::CipherBoxAuth {
        desc: Some(desc(id)),
        auth: Some(pb::cipher_box_auth::Auth::LndAuth(pb::LndAuth {})),
    }
}

/// A stream descriptor.
pub fn desc(id: &[u8]) -> pb::CipherBoxDesc {
    pb::CipherBoxDesc {
        stream_id: id.to_vec().into(),
    }
}

/// One message for stream `id`.
pub fn cbox(id: &[u8], msg: &[u8]) -> pb::CipherBox {
    pb::CipherBox {
        desc: Some(desc(id)),
        msg: msg.to_vec().into(),
    }
}

/// Creates the mailbox `id` (panics on refusal).
pub async fn create(c: &mut HashMailClient<Channel>, id: &[u8]) {
    c.new_cipher_box(auth_req(id)).await.unwrap();
}

/// The writer task of a `SendStream`.
pub type WriterTask =
    tokio::task::JoinHandle<Result<tonic::Response<pb::CipherBoxDesc>, tonic::Status>>;

/// Opens a gRPC writer fed by an mpsc channel; the task ends with the call's answer.
pub fn writer(
    c: &HashMailClient<Channel>,
) -> (tokio::sync::mpsc::Sender<pb::CipherBox>, WriterTask) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let mut c = c.clone();
    let task = tokio::spawn(async move {
        c.send_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
            .await
    });
    (tx, task)
}
