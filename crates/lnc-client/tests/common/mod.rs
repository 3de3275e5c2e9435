//! Shared fixtures: our real relay on 127.0.0.1:0, a node side (`listen`) serving a small
//! `lnrpc.Lightning` (GetInfo, AddInvoice echo, SubscribeInvoices stream) that checks the
//! session macaroon, and helpers. Also used by crates/lnc/tests via `#[path]`.
#![allow(clippy::unwrap_used, missing_docs, dead_code)]

use lnc_core::keys::SecretKey;
use lnc_core::macaroon::lnd::{MacaroonId, Preset, bake};
use lnc_core::macaroon::verify::time_before_caveat;
use lnc_core::macaroon::{RootKey, UnixTime};
use lnc_core::pairing::{ConnectionState, Entropy, PairingPhrase, Role};
use lnc_mailbox::{Config, Server, ServerHandle};
use lnc_tunnel::native::{GrpcMailbox, RelayAddr, Tls};
use lnc_tunnel::rt::TokioRuntime;
use lnc_tunnel::{Listener, ListenerEvent, Mailbox, TunnelOptions, listen};
use lnd_api::lnrpc;
use lnd_api::lnrpc::lightning_server::{Lightning, LightningServer};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub const T: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct TestLnd {
    pub macaroon_hex: String,
}

type Stream<T> = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send>>;

impl TestLnd {
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let mac = req.metadata().get("macaroon").and_then(|v| v.to_str().ok());
        if mac != Some(self.macaroon_hex.as_str()) {
            return Err(Status::unauthenticated("expected 1 macaroon, got 0"));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl Lightning for TestLnd {
    async fn get_info(
        &self,
        req: Request<lnrpc::GetInfoRequest>,
    ) -> Result<Response<lnrpc::GetInfoResponse>, Status> {
        self.check(&req)?;
        Ok(Response::new(lnrpc::GetInfoResponse {
            alias: "lnc-test-node".into(),
            version: "0.18.0-beta".into(),
            block_height: 800_000,
            ..Default::default()
        }))
    }

    /// Echo: the memo comes back as the payment request; `value` as the add index.
    async fn add_invoice(
        &self,
        req: Request<lnrpc::Invoice>,
    ) -> Result<Response<lnrpc::AddInvoiceResponse>, Status> {
        self.check(&req)?;
        let inv = req.into_inner();
        Ok(Response::new(lnrpc::AddInvoiceResponse {
            payment_request: inv.memo,
            add_index: inv.value as u64,
            ..Default::default()
        }))
    }

    /// Streams `add_index` invoices whose memos are `settle_index` bytes long (default 10).
    async fn subscribe_invoices(
        &self,
        req: Request<lnrpc::InvoiceSubscription>,
    ) -> Result<Response<Stream<lnrpc::Invoice>>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        let size = if r.settle_index == 0 {
            10
        } else {
            r.settle_index as usize
        };
        let items = (0..r.add_index).map(move |i| {
            Ok(lnrpc::Invoice {
                memo: "x".repeat(size),
                add_index: i,
                ..Default::default()
            })
        });
        Ok(Response::new(Box::pin(futures_util::stream::iter(items))))
    }
}

pub struct Relay {
    pub handle: ServerHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    pub async fn start(addr: Option<SocketAddr>) -> Relay {
        Self::start_with(addr, false).await
    }

    /// A relay with a self-signed TLS certificate when `tls`.
    pub async fn start_with(addr: Option<SocketAddr>, tls: bool) -> Relay {
        let mut c = Config::for_tests();
        if tls {
            c.tls = lnc_mailbox::TlsMode::SelfSigned { hosts: vec![] };
            c.data_dir = std::env::temp_dir().join(format!(
                "lnc-client-relay-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
        }
        if let Some(a) = addr {
            c.listen = a;
        }
        c.timers.shutdown_grace = Duration::from_millis(50);
        let server = Server::bind(c).await.unwrap();
        let handle = server.handle();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = server
                .serve(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Relay {
            handle,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(T, self.task.take().unwrap())
            .await
            .unwrap()
            .unwrap();
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    pub fn relay_addr(&self) -> RelayAddr {
        RelayAddr {
            addr: self.addr().to_string(),
            tls: match self.handle.tls_cert_pem() {
                None => Tls::Insecure,
                Some(pem) => Tls::CaPem(pem.as_bytes().to_vec()),
            },
        }
    }
}

/// A session as the node holds it: phrase, node state, the macaroon hex.
pub struct Session {
    pub phrase: String,
    pub node_state: ConnectionState,
    pub macaroon_hex: String,
}

/// A session whose macaroon (admin preset) expires at `expiry` (Unix seconds).
pub fn session(seed: u64, expiry: i64) -> Session {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let entropy = Entropy::generate(&mut rng);
    let phrase = PairingPhrase::from_entropy(entropy.clone())
        .to_phrase_string()
        .to_string();
    let id = MacaroonId::new([7u8; 16], b"0", &Preset::Admin.ops());
    let mut mac = bake(&RootKey::new(&[9u8; 32]), &id);
    let cav = time_before_caveat(UnixTime::from_secs(expiry)).unwrap();
    mac.add_first_party_caveat(cav.as_bytes()).unwrap();
    let macaroon_hex = mac.to_hex();
    let node_state = ConnectionState::new(Role::Server, SecretKey::generate(&mut rng), entropy)
        .with_auth_data(format!("Macaroon: {macaroon_hex}").into_bytes());
    Session {
        phrase,
        node_state,
        macaroon_hex,
    }
}

/// Year 2100: a session that does not expire during the test.
pub const FAR_FUTURE: i64 = 4_102_444_800;

/// The node side: listens on the relay and serves [`TestLnd`].
pub fn node(mailbox: Arc<dyn Mailbox>, s: &Session, options: TunnelOptions) -> Listener {
    listen(
        &TokioRuntime::new(),
        mailbox,
        s.node_state.clone(),
        LightningServer::new(TestLnd {
            macaroon_hex: s.macaroon_hex.clone(),
        }),
        options,
        ChaCha20Rng::seed_from_u64(42),
    )
}

pub fn grpc_mailbox(relay: &Relay) -> Arc<dyn Mailbox> {
    Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap())
}

pub async fn next_listening(l: &mut Listener) {
    loop {
        if let ListenerEvent::Listening(_) = tokio::time::timeout(T, l.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            return;
        }
    }
}
