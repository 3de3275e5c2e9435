//! Test harness: starts the real relay on 127.0.0.1:0 (TLS or insecure) and
//! gives real clients: tonic HashMail over h2, tokio-tungstenite WebSocket
//! speaking the browser JSON protocol, and raw HTTP/1.1 for REST/metrics.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use lnc_hashmail::pb;
use lnc_hashmail::pb::hash_mail_client::HashMailClient;
use lnc_mailbox::{Config, Server, ServerHandle, TlsMode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tonic::transport::{Channel, Endpoint};

pub const T: Duration = Duration::from_secs(20);

pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub type BoxIo = Box<dyn Io>;

pub struct Relay {
    pub handle: ServerHandle,
    pub tls: Option<Arc<rustls::RootCertStore>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), lnc_mailbox::ServeError>>>,
}

static DIRS: AtomicU64 = AtomicU64::new(0);

pub fn temp_dir() -> std::path::PathBuf {
    let n = DIRS.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("lnc-mailbox-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub fn config(tls: bool) -> Config {
    let mut c = Config::for_tests();
    if tls {
        c.tls = TlsMode::SelfSigned { hosts: vec![] };
        c.data_dir = temp_dir();
    }
    c
}

impl Relay {
    pub async fn start(config: Config) -> Relay {
        let tls = config.tls != TlsMode::Insecure;
        let server = Server::bind(config).await.unwrap();
        let handle = server.handle();
        let roots = if tls {
            let mut roots = rustls::RootCertStore::empty();
            let pem = handle.tls_cert_pem().unwrap().to_owned();
            use rustls::pki_types::pem::PemObject;
            for c in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            Some(Arc::new(roots))
        } else {
            None
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        Relay {
            handle,
            tls: roots,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Clients for an already running server (e.g. one Redis-backed
    /// instance of several); dropping it stops nothing.
    pub fn client(handle: ServerHandle) -> Relay {
        Relay {
            handle,
            tls: None,
            stop: None,
            task: None,
        }
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(T, t).await.unwrap().unwrap().unwrap();
        }
    }

    /// A TCP (+TLS with the given ALPN) connection to the relay.
    pub async fn connect(&self, alpn: &[&[u8]]) -> BoxIo {
        let tcp = TcpStream::connect(self.handle.local_addr()).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        match &self.tls {
            None => Box::new(tcp),
            Some(roots) => Box::new(tls_connect(roots.clone(), alpn, tcp).await.unwrap()),
        }
    }

    pub async fn grpc(&self) -> HashMailClient<Channel> {
        self.try_grpc().await.unwrap()
    }

    pub async fn try_grpc(&self) -> Result<HashMailClient<Channel>, tonic::transport::Error> {
        let addr = self.handle.local_addr();
        let roots = self.tls.clone();
        let ch = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_uri| {
                let roots = roots.clone();
                async move {
                    let tcp = TcpStream::connect(addr).await?;
                    tcp.set_nodelay(true)?;
                    let io: BoxIo = match roots {
                        None => Box::new(tcp),
                        Some(r) => Box::new(tls_connect(r, &[b"h2"], tcp).await?),
                    };
                    Ok::<_, std::io::Error>(TokioIo::new(io))
                }
            }))
            .await?;
        Ok(HashMailClient::new(ch).max_decoding_message_size(8 << 20))
    }

    pub async fn ws(&self, path: &str) -> WebSocketStream<BoxIo> {
        let io = self.connect(&[b"http/1.1"]).await;
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let url = format!("{scheme}://localhost{path}?method=POST");
        let (ws, _) = tokio_tungstenite::client_async(url, io).await.unwrap();
        ws
    }

    /// Raw HTTP/1.1 request; returns (status, body).
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

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn tls_connect(
    roots: Arc<rustls::RootCertStore>,
    alpn: &[&[u8]],
    tcp: TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
}

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
    let _ = tokio::time::timeout(T, io.read_to_end(&mut out))
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

pub fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").unwrap().1
}

pub fn sid(n: u8) -> Vec<u8> {
    let mut v = vec![n; 64];
    v[0] = 0xAB;
    v[63] = rand_byte();
    v
}

fn rand_byte() -> u8 {
    static C: AtomicU64 = AtomicU64::new(1);
    (C.fetch_add(1, Ordering::Relaxed) % 251) as u8
}

pub fn auth_req(id: &[u8]) -> pb::CipherBoxAuth {
    pb::CipherBoxAuth {
        desc: Some(pb::CipherBoxDesc {
            stream_id: id.to_vec().into(),
        }),
        auth: Some(pb::cipher_box_auth::Auth::LndAuth(pb::LndAuth {})),
    }
}

pub fn desc(id: &[u8]) -> pb::CipherBoxDesc {
    pb::CipherBoxDesc {
        stream_id: id.to_vec().into(),
    }
}

pub fn cbox(id: &[u8], msg: &[u8]) -> pb::CipherBox {
    pb::CipherBox {
        desc: Some(desc(id)),
        msg: msg.to_vec().into(),
    }
}

pub async fn create(c: &mut HashMailClient<Channel>, id: &[u8]) {
    c.new_cipher_box(auth_req(id)).await.unwrap();
}

/// Opens a gRPC writer fed by an mpsc channel.
pub fn writer(
    c: &HashMailClient<Channel>,
) -> (
    tokio::sync::mpsc::Sender<pb::CipherBox>,
    tokio::task::JoinHandle<Result<tonic::Response<pb::CipherBoxDesc>, tonic::Status>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut c = c.clone();
    let task = tokio::spawn(async move { c.send_stream(tokio_stream_wrapper(rx)).await });
    (tx, task)
}

fn tokio_stream_wrapper(
    mut rx: tokio::sync::mpsc::Receiver<pb::CipherBox>,
) -> impl futures_util::Stream<Item = pb::CipherBox> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Reads the vector file (a missing vector fails the test).
pub fn vector(name: &str) -> serde_json::Value {
    let dir = std::env::var("LNC_VECTORS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors/go")
        });
    let p = dir.join(name);
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("vector {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}
