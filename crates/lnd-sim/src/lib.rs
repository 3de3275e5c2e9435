//! # lnd-sim: an LND stand-in for tests and the demo
//!
//! Most tests, and `lnc demo`, need an LND that starts in milliseconds: lnd-sim is that
//! fixture, held to the real one (lnd v0.20.2 on regtest, `crates/lnc/tests/real_lnd.rs`,
//! which compares their answers to one macaroon script): TLS with a certificate shaped like
//! LND's, macaroon files on disk, and LND's macaroon checks and error texts on every call.
//! It is a gRPC server over TLS serving
//! a slice of LND's API (`lnrpc.Lightning` GetInfo, WalletBalance, ChannelBalance,
//! ListChannels, AddInvoice, LookupInvoice, SubscribeInvoices, BakeMacaroon,
//! DeleteMacaroonID, ListPermissions, CheckMacaroonPermissions; `routerrpc.Router`
//! SendPaymentV2), with LND's permission table and error strings. It is never a mock of
//! lnc-rs code, and `lnc node` is meant for a real LND.
//!
//! The data dir holds what LND's holds: `tls.cert`/`tls.key` (generated on first start),
//! `admin.macaroon`, `readonly.macaroon`, `invoice.macaroon` (LND format, root key ID `0`)
//! and `macaroons.keys` (the root keys; LND keeps them encrypted in `macaroons.db`).
//! Invoices live in memory only.
//!
//! Known differences from LND, kept on purpose:
//! - payment requests are a documented fake (see [`service::PAYREQ_PREFIX`]), not BOLT 11,
//!   and payments settle lnd-sim's own invoices only (there is no network);
//! - a server stream's response headers: LND (grpc-go) sends them with the stream's first
//!   message, lnd-sim (tonic) at once; a client that awaits the call before anything is
//!   streamed gets an answer here and waits on LND (the real-LND tests open such streams
//!   in a task).
//!
//! Payments go through `routerrpc.Router/SendPaymentV2` or the deprecated (still served)
//! `lnrpc.Lightning/SendPaymentSync` that lnc-web's API and older apps call; both settle
//! lnd-sim's own invoices.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use lnc_core::macaroon::lnd::{DEFAULT_ROOT_KEY_ID, MacaroonId, NONCE_LEN, Preset, bake};
use lnd_api::lnrpc::lightning_server::LightningServer;
use lnd_api::routerrpc::router_server::RouterServer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

mod auth;
pub mod perms;
pub mod service;

use service::{LightningSvc, PeerAddr, RouterSvc, Shared};

/// Why lnd-sim could not start or persist its state.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file in the data dir could not be read or written.
    #[error("lnd-sim: {0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// A data dir file is not in lnd-sim's format (delete it to regenerate).
    #[error("lnd-sim: {0}: corrupt file; delete it to start afresh")]
    Corrupt(PathBuf),
    /// The listen address could not be bound.
    #[error("lnd-sim: cannot listen on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    /// Certificate generation or the TLS configuration failed.
    #[error("lnd-sim: TLS: {0}")]
    Tls(String),
    /// The OS random source failed.
    #[error("lnd-sim: OS random source failed: {0}")]
    Random(String),
}

/// Which default macaroon file (LND's `genDefaultMacaroons`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MacaroonKind {
    /// `admin.macaroon`: read + write on everything.
    Admin,
    /// `readonly.macaroon`: read on everything.
    ReadOnly,
    /// `invoice.macaroon`: invoices read/write, addresses, on-chain read.
    Invoice,
}

impl MacaroonKind {
    /// The file name LND uses.
    pub fn file_name(self) -> &'static str {
        match self {
            MacaroonKind::Admin => "admin.macaroon",
            MacaroonKind::ReadOnly => "readonly.macaroon",
            MacaroonKind::Invoice => "invoice.macaroon",
        }
    }

    fn preset(self) -> Preset {
        match self {
            MacaroonKind::Admin => Preset::Admin,
            MacaroonKind::ReadOnly => Preset::ReadOnly,
            MacaroonKind::Invoice => Preset::Invoice,
        }
    }
}

/// Where lnd-sim listens and keeps its files.
#[derive(Clone, Debug)]
pub struct Config {
    /// The gRPC listen address (`127.0.0.1:0` picks a free port; see [`LndSimHandle::addr`]).
    pub listen: SocketAddr,
    /// The data dir (created if missing).
    pub data_dir: PathBuf,
}

/// A running lnd-sim. Dropping it stops the server (without waiting); prefer
/// [`LndSimHandle::shutdown`].
pub struct LndSimHandle {
    addr: SocketAddr,
    data_dir: PathBuf,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The entry point: `LndSim::start(config)`.
pub struct LndSim;

pub(crate) fn write_private(path: &Path, data: &[u8]) -> Result<(), SimError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| SimError::Io(path.to_owned(), e))?;
    f.write_all(data)
        .map_err(|e| SimError::Io(path.to_owned(), e))
}

fn tls_config(dir: &Path) -> Result<Arc<rustls::ServerConfig>, SimError> {
    let cert_path = dir.join("tls.cert");
    let key_path = dir.join("tls.key");
    if !(cert_path.exists() && key_path.exists()) {
        // Shaped like LND's (lnd/cert): self-signed and its own CA (CA:TRUE, certSign),
        // which clients must accept as LND's certificate (WebPKI alone would refuse it).
        let names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        let tls_err = |e: rcgen::Error| SimError::Tls(e.to_string());
        let mut params = rcgen::CertificateParams::new(names).map_err(tls_err)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyEncipherment,
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().map_err(tls_err)?;
        let cert = params.self_signed(&key).map_err(tls_err)?;
        std::fs::write(&cert_path, cert.pem()).map_err(|e| SimError::Io(cert_path.clone(), e))?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
    }
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| SimError::Tls(format!("{}: {e}", cert_path.display())))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| SimError::Tls(format!("{}: {e}", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| SimError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// The node identity: a secp256k1 key kept in `identity.key` so GetInfo is stable.
fn identity(dir: &Path) -> Result<String, SimError> {
    let path = dir.join("identity.key");
    let secret = match std::fs::read_to_string(&path) {
        Ok(t) => hex::decode(t.trim()).map_err(|_| SimError::Corrupt(path.clone()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let b = auth::random32()?;
            write_private(&path, hex::encode(b).as_bytes())?;
            b.to_vec()
        }
        Err(e) => return Err(SimError::Io(path, e)),
    };
    let sk = lnc_core::keys::SecretKey::from_bytes(&secret)
        .map_err(|_| SimError::Corrupt(path.clone()))?;
    Ok(hex::encode(sk.public_key().to_bytes()))
}

impl LndSim {
    /// Creates the data dir files if missing (TLS cert, root key `0`, the three default
    /// macaroons), binds the listener and serves in a tokio task.
    pub async fn start(config: Config) -> Result<LndSimHandle, SimError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| SimError::Io(dir.clone(), e))?;
        let tls = tokio_rustls::TlsAcceptor::from(tls_config(&dir)?);
        let mut keys = auth::RootKeys::load(&dir)?;
        let (root, created) = keys.get_or_create(DEFAULT_ROOT_KEY_ID)?;
        for kind in [
            MacaroonKind::Admin,
            MacaroonKind::ReadOnly,
            MacaroonKind::Invoice,
        ] {
            let path = dir.join(kind.file_name());
            if created || !path.exists() {
                let mut nonce = [0u8; NONCE_LEN];
                nonce.copy_from_slice(&auth::random32()?[..NONCE_LEN]);
                let id = MacaroonId::new(nonce, DEFAULT_ROOT_KEY_ID, &kind.preset().ops());
                write_private(&path, &bake(&root, &id).to_v2_bytes())?;
            }
        }
        let shared = Shared::new(keys, identity(&dir)?);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| SimError::Bind(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SimError::Bind(config.listen, e))?;
        let stop_rx = shared.stop.subscribe();
        let task = tokio::spawn(serve(listener, tls, shared.clone(), stop_rx));
        tracing::info!(%addr, data_dir = %dir.display(), "lnd-sim listening");
        Ok(LndSimHandle {
            addr,
            data_dir: dir,
            shared,
            task: Some(task),
        })
    }
}

async fn serve(
    listener: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let lightning = LightningServer::new(LightningSvc(shared.clone()));
    let router = RouterServer::new(RouterSvc(shared));
    let graceful = GracefulShutdown::new();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await.map(|_| ());
    };
    tokio::pin!(stopped);
    loop {
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let (lightning, router) = (lightning.clone(), router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Ok(Ok(io)) = tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await
            else {
                tracing::debug!(%peer, "TLS handshake failed");
                return;
            };
            let svc = tower::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(PeerAddr(peer));
                let to_router = req.uri().path().starts_with("/routerrpc.Router/");
                let (lightning, router) = (lightning.clone(), router.clone());
                async move {
                    if to_router {
                        router.oneshot(req).await
                    } else {
                        lightning.oneshot(req).await
                    }
                }
            });
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

impl LndSimHandle {
    /// The bound address (the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// LND's `tls.cert`: the self-signed certificate clients must trust.
    pub fn tls_cert_path(&self) -> PathBuf {
        self.data_dir.join("tls.cert")
    }

    /// The path of a default macaroon file (binary V2, as LND writes them).
    pub fn macaroon_path(&self, kind: MacaroonKind) -> PathBuf {
        self.data_dir.join(kind.file_name())
    }

    /// The identity public key (hex) GetInfo reports.
    pub fn identity_pubkey(&self) -> String {
        self.shared_identity()
    }

    fn shared_identity(&self) -> String {
        self.shared.identity_pubkey().to_owned()
    }

    /// Settles an open invoice as if it had been paid from outside; every SubscribeInvoices
    /// stream sees the settle. `Ok(false)` if no invoice has this payment hash; an error if
    /// it is already settled.
    pub fn settle_invoice(&self, r_hash: &[u8]) -> Result<bool, tonic::Status> {
        Ok(self.shared.settle(r_hash)?.is_some())
    }

    /// Stops accepting, ends open connections gracefully (5 s at most) and waits.
    pub async fn shutdown(mut self) {
        self.shared.stop.send_replace(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for LndSimHandle {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
    }
}
