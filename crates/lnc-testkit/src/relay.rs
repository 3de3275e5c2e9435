//! Our relay (`lnc-mailbox`) in this process, on 127.0.0.1:0.

use std::net::SocketAddr;
use std::time::Duration;

use lnc_mailbox::{Config, Server, ServerHandle};
use lnc_tunnel::TlsMode;
use lnc_tunnel::native::RelayAddr;

use crate::hashmail::{BoxIo, RelayClient, trust_pem};
use lnc_hashmail::pb::hash_mail_client::HashMailClient;
use tokio_tungstenite::WebSocketStream;
use tonic::transport::Channel;

/// A relay serving until [`Relay::stop`] or drop. Its HashMail gRPC, WebSocket gateway
/// and REST endpoints share one port, as in production.
pub struct Relay {
    /// The running server (address, certificate, readiness, metrics).
    pub handle: ServerHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), lnc_mailbox::ServeError>>>,
}

/// The test config: [`Config::loopback_insecure`], with a self-signed certificate when `tls`.
pub fn config(tls: bool) -> Config {
    let mut c = Config::loopback_insecure();
    if tls {
        c.tls = lnc_mailbox::TlsMode::SelfSigned { hosts: vec![] };
        c.data_dir = crate::dirs::temp_dir("relay");
    }
    c
}

/// [`config`] with a short shutdown grace, for tests that stop relays often.
fn quick(tls: bool) -> Config {
    let mut c = config(tls);
    c.timers.shutdown_grace = Duration::from_millis(50);
    c
}

impl Relay {
    /// Starts a relay with `config`.
    pub async fn start(config: Config) -> Relay {
        let server = Server::bind(config).await.unwrap();
        let handle = server.handle();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        Relay {
            handle,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// A relay on a random port, TLS (self-signed) when `tls`.
    pub async fn new(tls: bool) -> Relay {
        Self::start(quick(tls)).await
    }

    /// A plain-TCP relay on a random port.
    pub async fn insecure() -> Relay {
        Self::start(quick(false)).await
    }

    /// A relay with a self-signed certificate (what Go's WebSocket client needs: it
    /// always dials `wss://`).
    pub async fn tls() -> Relay {
        Self::start(quick(true)).await
    }

    /// A relay on `addr` (a restart on the same port), TLS when `tls`.
    pub async fn at(addr: SocketAddr, tls: bool) -> Relay {
        let mut c = quick(tls);
        c.listen = addr;
        Self::start(c).await
    }

    /// A handle on a server started elsewhere (e.g. one instance of several sharing a
    /// Redis): clients only; dropping it stops nothing.
    pub fn client_of(handle: ServerHandle) -> Relay {
        Relay {
            handle,
            stop: None,
            task: None,
        }
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(crate::T, t)
                .await
                .expect("relay did not stop in time")
                .unwrap()
                .unwrap();
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The address and trust (its own certificate) for our tunnel's mailboxes.
    pub fn relay_addr(&self) -> RelayAddr {
        RelayAddr {
            addr: self.addr().to_string(),
            tls: match self.handle.tls_cert_pem() {
                None => TlsMode::Insecure,
                Some(pem) => TlsMode::CaPem(pem.as_bytes().to_vec()),
            },
        }
    }

    /// A raw HashMail client (gRPC, WebSocket, HTTP) trusting this relay's certificate.
    pub fn client(&self) -> RelayClient {
        RelayClient::new(
            self.addr(),
            match self.handle.tls_cert_pem() {
                None => TlsMode::Insecure,
                Some(pem) => trust_pem(pem),
            },
        )
    }

    /// [`RelayClient::connect`] on this relay.
    pub async fn connect(&self, alpn: &[&[u8]]) -> BoxIo {
        self.client().connect(alpn).await
    }

    /// [`RelayClient::grpc`] on this relay.
    pub async fn grpc(&self) -> HashMailClient<Channel> {
        self.client().grpc().await
    }

    /// [`RelayClient::try_grpc`] on this relay.
    pub async fn try_grpc(&self) -> Result<HashMailClient<Channel>, tonic::transport::Error> {
        self.client().try_grpc().await
    }

    /// [`RelayClient::ws`] on this relay.
    pub async fn ws(&self, path: &str) -> WebSocketStream<BoxIo> {
        self.client().ws(path).await
    }

    /// [`RelayClient::http`] on this relay.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        self.client().http(method, path, headers, body).await
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
