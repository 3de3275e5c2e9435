//! Scale-out end to end: an app (`dial`) on relay instance A and a node
//! (`listen`) on instance B, both instances sharing one real redis-server;
//! unary calls and a server stream; then instance A crashes mid-stream and
//! the app fails over to B (FailoverMailbox) with nothing lost at the RPC
//! level. A missing redis-server FAILS this test.
#![cfg(feature = "native")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lnc_core::keys::SecretKey;
use lnc_core::pairing::{ConnectionState, Entropy, Role};
use lnc_hashmail::pb;
use lnc_hashmail::pb::hash_mail_client::HashMailClient;
use lnc_hashmail::pb::hash_mail_server::{HashMail, HashMailServer};
use lnc_testkit::redis::{Instance, RedisServer, instance_config};
use lnc_tunnel::TlsMode;
use lnc_tunnel::native::{GrpcMailbox, RelayAddr, WsMailbox};
use lnc_tunnel::rt::TokioRuntime;
use lnc_tunnel::{
    FailoverMailbox, ListenerEvent, Mailbox, TunnelChannel, TunnelOptions, dial, listen,
    macaroon_from_auth_data,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use tonic::{Request, Response};

const T: Duration = Duration::from_secs(60);
const ITEMS: usize = 3_000;
const ITEM_BYTES: usize = 600;

/// The toy API: NewCipherBox = unary echo, RecvStream = `ITEMS` numbered items.
#[derive(Clone)]
struct App;

type Items = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<pb::CipherBox, tonic::Status>> + Send>,
>;

fn item(i: usize) -> Vec<u8> {
    let mut v = (i as u32).to_be_bytes().to_vec();
    v.resize(ITEM_BYTES, (i % 251) as u8);
    v
}

#[tonic::async_trait]
impl HashMail for App {
    async fn new_cipher_box(
        &self,
        req: Request<pb::CipherBoxAuth>,
    ) -> Result<Response<pb::CipherInitResp>, tonic::Status> {
        Ok(Response::new(pb::CipherInitResp {
            resp: Some(pb::cipher_init_resp::Resp::Success(pb::CipherSuccess {
                desc: req.into_inner().desc,
            })),
        }))
    }
    async fn del_cipher_box(
        &self,
        _: Request<pb::CipherBoxAuth>,
    ) -> Result<Response<pb::DelCipherBoxResp>, tonic::Status> {
        Ok(Response::new(pb::DelCipherBoxResp {}))
    }
    async fn send_stream(
        &self,
        _: Request<tonic::Streaming<pb::CipherBox>>,
    ) -> Result<Response<pb::CipherBoxDesc>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
    type RecvStreamStream = Items;
    async fn recv_stream(
        &self,
        _: Request<pb::CipherBoxDesc>,
    ) -> Result<Response<Items>, tonic::Status> {
        let items = (0..ITEMS).map(|i| {
            Ok(pb::CipherBox {
                desc: None,
                msg: item(i).into(),
            })
        });
        Ok(Response::new(Box::pin(futures_util::stream::iter(items))))
    }
}

fn states(seed: u64) -> (ConnectionState, ConnectionState) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let entropy = Entropy::generate(&mut rng);
    let node = ConnectionState::new(Role::Server, SecretKey::generate(&mut rng), entropy.clone())
        .with_auth_data(b"Macaroon: 0201036c6e640204".to_vec());
    let app = ConnectionState::new(Role::Client, SecretKey::generate(&mut rng), entropy);
    (node, app)
}

fn addr(i: &Instance) -> RelayAddr {
    RelayAddr {
        addr: i.handle.local_addr().to_string(),
        tls: TlsMode::Insecure,
    }
}

async fn unary(c: &mut HashMailClient<TunnelChannel>, i: u32) {
    let id = i.to_be_bytes().to_vec();
    let r = tokio::time::timeout(
        T,
        c.new_cipher_box(pb::CipherBoxAuth {
            desc: Some(pb::CipherBoxDesc {
                stream_id: id.clone().into(),
            }),
            auth: None,
        }),
    )
    .await
    .unwrap()
    .unwrap()
    .into_inner();
    match r.resp {
        Some(pb::cipher_init_resp::Resp::Success(s)) => {
            assert_eq!(s.desc.unwrap().stream_id.to_vec(), id)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_on_a_node_on_b_survives_a_crash_of_a() {
    let redis = RedisServer::start().await;
    let mut a = Instance::start(instance_config(&redis)).await;
    let b = Instance::start(instance_config(&redis)).await;
    let rt = TokioRuntime::new();
    let (node_state, mut app_state) = states(21);
    // Node: B first (its WebSocket transport, to mix transports), A second.
    let node_mb: Arc<dyn Mailbox> = Arc::new(
        FailoverMailbox::new(vec![
            Arc::new(WsMailbox::new(addr(&b)).unwrap()),
            Arc::new(WsMailbox::new(addr(&a)).unwrap()),
        ])
        .unwrap(),
    );
    let mut listener = listen(
        &rt,
        node_mb,
        node_state,
        HashMailServer::new(App),
        TunnelOptions::default(),
        ChaCha20Rng::seed_from_u64(1),
    );
    // App: A first, B second (gRPC).
    let app_failover = Arc::new(
        FailoverMailbox::new(vec![
            Arc::new(GrpcMailbox::new(addr(&a)).unwrap()),
            Arc::new(GrpcMailbox::new(addr(&b)).unwrap()),
        ])
        .unwrap(),
    );
    let app_mb: Arc<dyn Mailbox> = app_failover.clone();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let tunnel = tokio::time::timeout(
        T,
        dial(
            &rt,
            app_mb,
            &mut app_state,
            &TunnelOptions::default(),
            &mut rng,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let gbn = tunnel.gbn.clone();
    let ch = TunnelChannel::connect(
        &rt,
        tunnel.stream,
        macaroon_from_auth_data(&tunnel.session.auth_data),
    )
    .await
    .unwrap();
    let mut client = HashMailClient::new(ch);
    for i in 0..5 {
        unary(&mut client, i).await;
    }
    // The app is attached on A, the node on B.
    assert_eq!(app_failover.current(), 0);
    assert_eq!(a.handle.stats().readers, 1, "app reads on A");
    // The node reads on B: its pairing connection, and its watch of the session's next
    // stream (where the app's KK reconnect will arrive).
    tokio::time::timeout(T, b.handle.wait_for(|s| s.readers == 2))
        .await
        .expect("node reads on B (connection + watch)");
    loop {
        match tokio::time::timeout(T, listener.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            ListenerEvent::Connected { .. } => break,
            ListenerEvent::HandshakeFailed(e) => panic!("handshake failed: {e}"),
            _ => {}
        }
    }

    // A server stream; A crashes after a tenth of it.
    let mut s = client
        .recv_stream(pb::CipherBoxDesc::default())
        .await
        .unwrap()
        .into_inner();
    let errors_before = gbn.stats().transport_errors;
    for i in 0..ITEMS {
        if i == ITEMS / 10 && std::env::var("NOCRASH").is_err() {
            a.crash();
        }
        let m = tokio::time::timeout(T, s.next())
            .await
            .unwrap_or_else(|_| panic!("item {i} never came"))
            .unwrap()
            .unwrap_or_else(|e| panic!("item {i}: {e:?}; gbn {:?}", gbn.stats()));
        assert_eq!(&m.msg[..], &item(i)[..], "item {i}");
    }
    assert!(s.next().await.is_none(), "stream ends after {ITEMS} items");
    assert!(
        gbn.stats().transport_errors > errors_before,
        "the crash was seen"
    );
    assert_eq!(app_failover.current(), 1, "the app moved to B");
    // Unary calls keep working through B.
    for i in 10..15 {
        unary(&mut client, i).await;
    }
    assert_eq!(
        b.handle.stats().readers,
        3,
        "both sides now read on B (the node also watches its next stream)"
    );
    listener.close();
}
