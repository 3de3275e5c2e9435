//! The node side as our tests run it: a small `lnrpc.Lightning` ([`TestLnd`]) behind
//! `lnc_tunnel::listen`, and the sessions it serves (seeded, so a test's phrase and keys
//! are the same every run).

use lnc_core::keys::SecretKey;
use lnc_core::macaroon::lnd::{MacaroonId, Preset, bake};
use lnc_core::macaroon::verify::time_before_caveat;
use lnc_core::macaroon::{RootKey, UnixTime};
use lnc_core::pairing::{ConnectionState, Entropy, PairingPhrase, Role};
use lnc_tunnel::native::GrpcMailbox;
use lnc_tunnel::rt::TokioRuntime;
use lnc_tunnel::{Listener, ListenerEvent, Mailbox, TunnelOptions, listen};
use lnd_api::lnrpc;
use lnd_api::lnrpc::lightning_server::{Lightning, LightningServer};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use std::sync::Arc;
use tonic::{Request, Response, Status};

use crate::T;
use crate::relay::Relay;

/// A small `lnrpc.Lightning` that checks the session macaroon like LND: GetInfo,
/// AddInvoice (an echo) and SubscribeInvoices (a server stream of chosen size).
#[derive(Clone)]
pub struct TestLnd {
    /// The macaroon every call must carry (hex, as LND's `macaroon` metadata).
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

/// A session as the node holds it: phrase, node state, the macaroon hex.
pub struct Session {
    /// The pairing phrase the app is given.
    pub phrase: String,
    /// The node's connection state (keys, entropy, auth data).
    pub node_state: ConnectionState,
    /// The session macaroon (hex).
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

/// A HashMail gRPC mailbox on `relay`, trusting its certificate.
pub fn grpc_mailbox(relay: &Relay) -> Arc<dyn Mailbox> {
    Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap())
}

/// Waits for the listener's next `Listening` event (its mailboxes are up).
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
