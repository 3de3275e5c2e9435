//! End-to-end: a node serving a small gRPC service through the real relay (lnc-mailbox on
//! 127.0.0.1:0), an app calling it through `dial`. The app service is HashMail's own
//! service definition reused as a toy API: `NewCipherBox` = unary echo (checks the
//! macaroon metadata), `RecvStream` = server streaming.
#![cfg(feature = "native")]
#![allow(clippy::unwrap_used, missing_docs)]

use lnc_core::keys::SecretKey;
use lnc_core::pairing::{ConnectionState, Entropy, Role};
use lnc_hashmail::pb;
use lnc_hashmail::pb::hash_mail_client::HashMailClient;
use lnc_hashmail::pb::hash_mail_server::{HashMail, HashMailServer};
use lnc_tunnel::native::{GrpcMailbox, RelayAddr, WsMailbox};
use lnc_tunnel::rt::TokioRuntime;
use lnc_tunnel::{
    ListenerEvent, Mailbox, Status, TunnelChannel, TunnelOptions, dial, listen,
    macaroon_from_auth_data, spawn_gbn,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Request, Response};

use lnc_testkit::T;
use lnc_testkit::relay::Relay;
const MACAROON_HEX: &str = "0201036c6e640204";

#[derive(Clone)]
struct App;

type Items = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<pb::CipherBox, tonic::Status>> + Send>,
>;

#[tonic::async_trait]
impl HashMail for App {
    async fn new_cipher_box(
        &self,
        req: Request<pb::CipherBoxAuth>,
    ) -> Result<Response<pb::CipherInitResp>, tonic::Status> {
        let mac = req
            .metadata()
            .get("macaroon")
            .map(|v| v.to_str().unwrap().to_owned());
        if mac.as_deref() != Some(MACAROON_HEX) {
            return Err(tonic::Status::unauthenticated("macaroon missing"));
        }
        let desc = req.into_inner().desc;
        Ok(Response::new(pb::CipherInitResp {
            resp: Some(pb::cipher_init_resp::Resp::Success(pb::CipherSuccess {
                desc,
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
        req: Request<pb::CipherBoxDesc>,
    ) -> Result<Response<Items>, tonic::Status> {
        // stream_id = [count: u32 BE][size: u32 BE] (or any other length: len × 100 B).
        let id = req.into_inner().stream_id;
        let (n, size) = match <[u8; 8]>::try_from(&id[..]) {
            Ok(b) => (
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize,
            ),
            Err(_) => (id.len(), 100),
        };
        let items = (0..n).map(move |i| {
            Ok(pb::CipherBox {
                desc: None,
                msg: vec![i as u8; size].into(),
            })
        });
        Ok(Response::new(Box::pin(futures_util::stream::iter(items))))
    }
}

fn states(seed: u64) -> (ConnectionState, ConnectionState) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let entropy = Entropy::generate(&mut rng);
    let node = ConnectionState::new(Role::Server, SecretKey::generate(&mut rng), entropy.clone())
        .with_auth_data(format!("Macaroon: {MACAROON_HEX}").into_bytes());
    let app = ConnectionState::new(Role::Client, SecretKey::generate(&mut rng), entropy);
    (node, app)
}

async fn unary(c: &mut HashMailClient<TunnelChannel>, i: u32) {
    let id = i.to_be_bytes().to_vec();
    let r = c
        .new_cipher_box(pb::CipherBoxAuth {
            desc: Some(pb::CipherBoxDesc {
                stream_id: id.clone().into(),
            }),
            auth: None,
        })
        .await
        .unwrap()
        .into_inner();
    match r.resp {
        Some(pb::cipher_init_resp::Resp::Success(s)) => {
            assert_eq!(s.desc.unwrap().stream_id.to_vec(), id)
        }
        other => panic!("unexpected {other:?}"),
    }
}

async fn next_connected(l: &mut lnc_tunnel::Listener) -> ConnectionState {
    loop {
        match tokio::time::timeout(T, l.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            ListenerEvent::Connected { state, .. } => return *state,
            ListenerEvent::HandshakeFailed(e) => panic!("handshake failed: {e}"),
            _ => {}
        }
    }
}

async fn next_listening(l: &mut lnc_tunnel::Listener) -> lnc_core::pairing::MailboxStreams {
    loop {
        if let ListenerEvent::Listening(s) = tokio::time::timeout(T, l.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            return s;
        }
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

/// Pairing, unary + streaming calls, load, and a KK reconnect on the new stream IDs.
async fn full_session(mailbox_for: impl Fn(RelayAddr) -> Arc<dyn Mailbox>, label: &str, tls: bool) {
    let relay = Relay::new(tls).await;
    let rt = TokioRuntime::new();
    let (node_state, mut app_state) = states(7);
    let mut listener = listen(
        &rt,
        mailbox_for(relay.relay_addr()),
        node_state,
        HashMailServer::new(App),
        TunnelOptions::default(),
        ChaCha20Rng::seed_from_u64(99),
    );
    let pairing_streams = next_listening(&mut listener).await;
    assert_eq!(pairing_streams, app_state.stream_ids().send.streams_swap());

    let ts = Instant::now();
    let _ = lnc_core::pairing::stretch(app_state.entropy());
    let scrypt = ts.elapsed();
    // Pair (XX with the phrase) → first RPC.
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let t0 = Instant::now();
    let tunnel = tokio::time::timeout(
        T,
        dial(
            &rt,
            mailbox_for(relay.relay_addr()),
            &mut app_state,
            &TunnelOptions::default(),
            &mut rng,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(tunnel.session.record.streams_changed);
    let dial_time = t0.elapsed();
    let mac = macaroon_from_auth_data(&tunnel.session.auth_data);
    let gbn = tunnel.gbn.clone();
    let ch = TunnelChannel::connect(&rt, tunnel.stream, mac.clone())
        .await
        .unwrap();
    let mut client = HashMailClient::new(ch);
    unary(&mut client, 0).await;
    let pair_time = t0.elapsed();
    println!("[{label}] dial {dial_time:?}, first RPC at {pair_time:?}");
    let _node_state = next_connected(&mut listener).await;
    assert_eq!(gbn.status(), Status::Connected);

    // Server streaming.
    let mut s = client
        .recv_stream(pb::CipherBoxDesc {
            stream_id: vec![0u8; 50].into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(m) = s.message().await.unwrap() {
        assert_eq!(m.msg.len(), 100);
        n += 1;
    }
    assert_eq!(n, 50);

    // Bulk: 16 MB of 64 KB streamed messages; then a flood of 20k tiny messages (h2's
    // small-frame budget must not trip with our window settings).
    let stream_of = |n: u32, size: u32| {
        let mut id = n.to_be_bytes().to_vec();
        id.extend_from_slice(&size.to_be_bytes());
        pb::CipherBoxDesc {
            stream_id: id.into(),
        }
    };
    let tb = Instant::now();
    let mut s = client
        .recv_stream(stream_of(256, 65_536))
        .await
        .unwrap()
        .into_inner();
    let mut bytes = 0usize;
    while let Some(m) = s.message().await.unwrap() {
        bytes += m.msg.len();
    }
    assert_eq!(bytes, 256 * 65_536);
    let mbps = bytes as f64 / tb.elapsed().as_secs_f64() / 1e6;
    println!("[{label}] bulk gbn stats {:?}", gbn.gbn_stats());
    let mut s = client
        .recv_stream(stream_of(20_000, 57))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(m) = s.message().await.unwrap() {
        assert_eq!(m.msg.len(), 57);
        n += 1;
    }
    assert_eq!(n, 20_000);

    // 1000 sequential unary calls: latency and relay messages per call.
    let before = gbn.stats();
    let mut lat = Vec::with_capacity(1000);
    for i in 0..1000 {
        let t = Instant::now();
        unary(&mut client, i).await;
        lat.push(t.elapsed());
    }
    let after = gbn.stats();
    let up = (after.packets_sent - before.packets_sent) as f64 / 1000.0;
    let down = (after.packets_received - before.packets_received) as f64 / 1000.0;
    let p50 = pct(&mut lat, 0.5);
    let p99 = pct(&mut lat, 0.99);

    // 100 concurrent unary calls.
    let calls = (0..100u32).map(|i| {
        let mut c = client.clone();
        async move { unary(&mut c, 10_000 + i).await }
    });
    tokio::time::timeout(T, futures_util::future::join_all(calls))
        .await
        .unwrap();

    // The app disconnects (FIN); the node re-listens on the post-pairing streams.
    drop(client);
    gbn.close();
    tokio::time::timeout(T, gbn.closed()).await.unwrap();
    let new_streams = next_listening(&mut listener).await;
    assert_ne!(new_streams, pairing_streams);
    assert_eq!(new_streams, app_state.stream_ids().send.streams_swap());

    // Reconnect with the stored keys (KK) → first RPC.
    let t1 = Instant::now();
    let tunnel = tokio::time::timeout(
        T,
        dial(
            &rt,
            mailbox_for(relay.relay_addr()),
            &mut app_state,
            &TunnelOptions::default(),
            &mut rng,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(tunnel.session.pattern, lnc_core::noise::Pattern::Kk);
    let ch = TunnelChannel::connect(&rt, tunnel.stream, mac)
        .await
        .unwrap();
    let mut client = HashMailClient::new(ch);
    unary(&mut client, 1).await;
    let kk_time = t1.elapsed();
    next_connected(&mut listener).await;

    println!(
        "[{label}] scrypt {scrypt:?}; pair→first RPC {pair_time:?}; KK reconnect→first RPC {kk_time:?}; \
         unary p50 {p50:?} p99 {p99:?}; relay msgs/call app→node {up:.2} node→app {down:.2}; bulk {mbps:.1} MB/s"
    );
    listener.close();
}

trait Swap {
    fn streams_swap(self) -> lnc_core::pairing::MailboxStreams;
}
impl Swap for lnc_core::pairing::StreamId {
    /// The node's (receive, send) given the app's send stream.
    fn streams_swap(self) -> lnc_core::pairing::MailboxStreams {
        lnc_core::pairing::MailboxStreams {
            receive: self,
            send: self.client_to_server(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_transport_pair_call_reconnect() {
    full_session(
        |a| Arc::new(GrpcMailbox::new(a).unwrap()) as Arc<dyn Mailbox>,
        "grpc",
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_transport_pair_call_reconnect() {
    full_session(
        |a| Arc::new(WsMailbox::new(a).unwrap()) as Arc<dyn Mailbox>,
        "websocket",
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_grpc_transport_with_relay_ca() {
    full_session(
        |a| Arc::new(GrpcMailbox::new(a).unwrap()) as Arc<dyn Mailbox>,
        "grpc+tls",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_transport_with_relay_ca() {
    full_session(
        |a| Arc::new(WsMailbox::new(a).unwrap()) as Arc<dyn Mailbox>,
        "wss",
        true,
    )
    .await;
}

/// Tier 1: the relay dies and restarts on the same port mid-session; the driver re-opens
/// both directions, GBN retransmits, and the next call succeeds on the same tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_restart_mid_session() {
    let mut relay = Relay::insecure().await;
    let addr = relay.handle.local_addr();
    let rt = TokioRuntime::new();
    let (node_state, mut app_state) = states(11);
    let mb: Arc<dyn Mailbox> = Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap());
    let mut listener = listen(
        &rt,
        mb.clone(),
        node_state,
        HashMailServer::new(App),
        TunnelOptions::default(),
        ChaCha20Rng::seed_from_u64(1),
    );
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let tunnel = tokio::time::timeout(
        T,
        dial(
            &rt,
            mb.clone(),
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
    unary(&mut client, 1).await;
    next_connected(&mut listener).await;

    relay.stop().await;
    let errors = gbn.stats().transport_errors;
    let _relay2 = Relay::at(addr, false).await;
    let t = Instant::now();
    tokio::time::timeout(T, unary(&mut client, 2))
        .await
        .unwrap();
    println!("[tier1] call after relay restart took {:?}", t.elapsed());
    assert!(!gbn.is_closed());
    assert!(gbn.stats().transport_errors >= errors);
    listener.close();
}

/// close() while the driver is retrying ("stream not found": no node) returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_during_retries_is_prompt() {
    let relay = Relay::insecure().await;
    let rt = TokioRuntime::new();
    let (_, app_state) = states(3);
    let mb: Arc<dyn Mailbox> = Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap());
    let gbn = spawn_gbn(
        &rt,
        mb,
        app_state.stream_ids(),
        lnc_core::gbn::Side::Client,
        lnc_core::gbn::Config::client(),
        lnc_tunnel::DriverOptions {
            create_boxes: false,
            send_after_recv: true,
        },
    )
    .unwrap();
    let st = tokio::time::timeout(T, gbn.status_changed(Status::NotConnected))
        .await
        .unwrap();
    assert_eq!(st, Status::SessionNotFound);
    assert_eq!(st.as_str(), "Session Not Found");
    let t = Instant::now();
    gbn.close();
    tokio::time::timeout(Duration::from_millis(500), gbn.closed())
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_millis(500));
    assert!(gbn.recv().await.is_err());
}

async fn next_client_event(
    ev: &mut futures_channel::mpsc::UnboundedReceiver<lnc_tunnel::ClientEvent>,
) -> lnc_tunnel::ClientEvent {
    use futures_util::StreamExt;
    tokio::time::timeout(T, ev.next()).await.unwrap().unwrap()
}

/// Tier 2: the node restarts (its GBN is gone: FIN), the client notices, dials a fresh
/// GBN + KK on the post-pairing streams by itself, and calls work again; close() stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_restart_reconnects_with_kk() {
    let relay = Relay::insecure().await;
    let rt = TokioRuntime::new();
    let (node_state, app_state) = states(21);
    let mb: Arc<dyn Mailbox> = Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap());
    let mut l1 = listen(
        &rt,
        mb.clone(),
        node_state,
        HashMailServer::new(App),
        TunnelOptions::default(),
        ChaCha20Rng::seed_from_u64(1),
    );
    let (client, mut events) = lnc_tunnel::Client::connect(
        &rt,
        mb.clone(),
        app_state,
        TunnelOptions::default(),
        ChaCha20Rng::seed_from_u64(2),
    )
    .await
    .unwrap();
    assert!(matches!(
        next_client_event(&mut events).await,
        lnc_tunnel::ClientEvent::Connected { .. }
    ));
    let mut api = HashMailClient::new(client.clone());
    let call = |api: &mut HashMailClient<lnc_tunnel::Client>| {
        let mut api = api.clone();
        async move {
            api.new_cipher_box(pb::CipherBoxAuth {
                desc: Some(pb::CipherBoxDesc {
                    stream_id: vec![1u8].into(),
                }),
                auth: None,
            })
            .await
        }
    };
    call(&mut api).await.unwrap();
    let persisted = next_connected(&mut l1).await;

    // The node goes away (FIN) and comes back with its persisted state.
    l1.close();
    loop {
        if let ListenerEvent::Stopped = tokio::time::timeout(T, l1.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            break;
        }
    }
    match next_client_event(&mut events).await {
        lnc_tunnel::ClientEvent::Disconnected(r) => {
            assert_eq!(r, lnc_core::gbn::CloseReason::PeerFin)
        }
        other => panic!("unexpected {other:?}"),
    }
    let t = Instant::now();
    let mut l2 = listen(
        &rt,
        mb.clone(),
        persisted,
        HashMailServer::new(App),
        TunnelOptions::default(),
        ChaCha20Rng::seed_from_u64(3),
    );
    loop {
        match next_client_event(&mut events).await {
            lnc_tunnel::ClientEvent::Connected { session, .. } => {
                assert_eq!(session.pattern, lnc_core::noise::Pattern::Kk);
                break;
            }
            lnc_tunnel::ClientEvent::ReconnectFailed(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    call(&mut api).await.unwrap();
    println!(
        "[tier2] node restart → KK reconnect → call: {:?}",
        t.elapsed()
    );
    next_connected(&mut l2).await;

    // close() stops everything at once.
    let gbn = client.gbn().unwrap();
    client.close();
    tokio::time::timeout(Duration::from_millis(500), gbn.closed())
        .await
        .unwrap();
    assert!(!client.is_connected());
    assert!(call(&mut api).await.is_err());
    l2.close();
}

/// Dropping a dial that is still waiting for the node (wrong phrase: "Session Not Found")
/// stops its driver: nothing keeps retrying against the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_dial_stops_retrying() {
    let relay = Relay::insecure().await;
    let rt = TokioRuntime::new();
    let (_, mut app_state) = states(4);
    let mb: Arc<dyn Mailbox> = Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        dial(&rt, mb, &mut app_state, &TunnelOptions::default(), &mut rng),
    )
    .await;
    assert!(r.is_err(), "no node: dial must still be waiting");
    // The receive stream the driver had open (or was retrying) is released.
    tokio::time::timeout(
        T,
        relay.handle.wait_for(|s| s.readers == 0 && s.writers == 0),
    )
    .await
    .unwrap();
}

/// A wrong phrase names streams no node serves: the app sees "Session Not Found" (never
/// reaches a node), and closing the observed connection ends the dial at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_phrase_reports_session_not_found() {
    let relay = Relay::insecure().await;
    let rt = TokioRuntime::new();
    let (node_state, _) = states(30);
    let (_, mut wrong_app) = states(31);
    let mb: Arc<dyn Mailbox> = Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap());
    let _l = listen(
        &rt,
        mb.clone(),
        node_state,
        HashMailServer::new(App),
        TunnelOptions::default(),
        ChaCha20Rng::seed_from_u64(1),
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let dialing = tokio::spawn(async move {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        lnc_tunnel::dial_observed(
            &rt,
            mb,
            &mut wrong_app,
            &TunnelOptions::default(),
            &mut rng,
            |g| {
                let _ = tx.take().unwrap().send(g);
            },
        )
        .await
        .map(|_| ())
    });
    let gbn = tokio::time::timeout(T, rx).await.unwrap().unwrap();
    let st = tokio::time::timeout(T, gbn.status_changed(Status::NotConnected))
        .await
        .unwrap();
    assert_eq!(st.as_str(), "Session Not Found");
    gbn.close();
    let r = tokio::time::timeout(Duration::from_millis(500), dialing)
        .await
        .unwrap()
        .unwrap();
    assert!(r.is_err());
}

async fn next_attempt_failure(l: &mut lnc_tunnel::Listener) -> lnc_tunnel::PairingAttemptFailure {
    loop {
        match tokio::time::timeout(T, l.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            ListenerEvent::PairingAttemptFailed(k) => return k,
            ListenerEvent::Connected { .. } => panic!("handshake succeeded"),
            _ => {}
        }
    }
}

/// A peer on the right stream IDs with the wrong SPAKE2 password (a relay that learned the
/// stream IDs) is reported as a rejected pairing attempt; one that stops after act 2 as a
/// stalled attempt once the handshake timeout passes. The listener keeps listening.
#[tokio::test]
async fn listener_reports_pairing_attempts() {
    use lnc_core::msgdata::MsgDataCodec;
    use lnc_core::noise::{NoiseConfig, XxInitiator};
    use lnc_core::pairing::HandshakeInputs;
    let relay = Relay::insecure().await;
    let rt = TokioRuntime::new();
    let (node_state, app_state) = states(40);
    let mb: Arc<dyn Mailbox> = Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap());
    let mut l = listen(
        &rt,
        mb.clone(),
        node_state,
        HashMailServer::new(App),
        TunnelOptions {
            handshake_timeout: Some(Duration::from_millis(300)),
            ..TunnelOptions::default()
        },
        ChaCha20Rng::seed_from_u64(1),
    );
    let client_gbn = || {
        lnc_tunnel::spawn_gbn(
            &rt,
            mb.clone(),
            app_state.stream_ids(),
            lnc_core::gbn::Side::Client,
            lnc_core::gbn::Config::client(),
            lnc_tunnel::DriverOptions {
                create_boxes: false,
                send_after_recv: true,
            },
        )
        .unwrap()
    };
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let HandshakeInputs::Xx { local_static, mask } = app_state.handshake() else {
        panic!("expected XX")
    };

    // Wrong password, right stream IDs.
    let (_, other) = states(41);
    let wrong = lnc_core::pairing::mask_scalar(other.entropy());
    let gbn = client_gbn();
    tokio::time::timeout(T, gbn.connected())
        .await
        .unwrap()
        .unwrap();
    let (_, act1) = XxInitiator::new(&NoiseConfig::default(), &local_static, &wrong, &mut rng)
        .unwrap()
        .write_act1()
        .unwrap();
    gbn.send(&MsgDataCodec::default().encode(&act1).unwrap())
        .await
        .unwrap();
    assert_eq!(
        next_attempt_failure(&mut l).await,
        lnc_tunnel::PairingAttemptFailure::Rejected
    );
    gbn.close();

    // Right password, but no act 3.
    let gbn = client_gbn();
    tokio::time::timeout(T, gbn.connected())
        .await
        .unwrap()
        .unwrap();
    let (hs, act1) = XxInitiator::new(&NoiseConfig::default(), &local_static, &mask, &mut rng)
        .unwrap()
        .write_act1()
        .unwrap();
    gbn.send(&MsgDataCodec::default().encode(&act1).unwrap())
        .await
        .unwrap();
    let act2 = tokio::time::timeout(T, gbn.recv()).await.unwrap().unwrap();
    let act2 = MsgDataCodec::default()
        .decode(&act2)
        .unwrap()
        .payload
        .to_vec();
    assert!(hs.read_act2(&act2).is_ok());
    assert_eq!(
        next_attempt_failure(&mut l).await,
        lnc_tunnel::PairingAttemptFailure::StalledAfterAct2
    );
    gbn.close();
    l.close();
}

/// Holds a node's received packets back (they stay buffered in the receive stream, as
/// they would in a socket buffer) until the test opens it, and records what arrived.
#[derive(Default)]
struct Gate {
    closed: std::sync::atomic::AtomicBool,
    wakers: std::sync::Mutex<Vec<std::task::Waker>>,
    arrived: std::sync::Mutex<Vec<u8>>,
    changed: tokio::sync::Notify,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        self.closed
            .store(closed, std::sync::atomic::Ordering::SeqCst);
        if !closed {
            for w in self.wakers.lock().unwrap().drain(..) {
                w.wake();
            }
        }
    }
    /// Waits until the packet types that arrived since the last call end with `tail`.
    async fn wait_for_tail(&self, tail: &[u8]) {
        loop {
            let changed = self.changed.notified();
            {
                let mut a = self.arrived.lock().unwrap();
                if a.ends_with(tail) {
                    a.clear();
                    return;
                }
            }
            tokio::time::timeout(T, changed).await.unwrap();
        }
    }
}

struct GatedStream {
    inner: lnc_tunnel::mailbox::PacketStream,
    buf: std::collections::VecDeque<Vec<u8>>,
    end: Option<Option<Result<Vec<u8>, lnc_tunnel::MailboxError>>>,
    gate: Arc<Gate>,
}

impl futures_util::Stream for GatedStream {
    type Item = Result<Vec<u8>, lnc_tunnel::MailboxError>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        while self.end.is_none() {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(p))) => {
                    self.gate
                        .arrived
                        .lock()
                        .unwrap()
                        .push(p.first().copied().unwrap_or(0));
                    self.gate.changed.notify_waiters();
                    self.buf.push_back(p);
                }
                Poll::Ready(other) => self.end = Some(other),
                Poll::Pending => break,
            }
        }
        if self.gate.closed.load(std::sync::atomic::Ordering::SeqCst) {
            self.gate.wakers.lock().unwrap().push(cx.waker().clone());
            return Poll::Pending;
        }
        if let Some(p) = self.buf.pop_front() {
            return Poll::Ready(Some(Ok(p)));
        }
        match self.end.take() {
            Some(e) => Poll::Ready(e),
            None => Poll::Pending,
        }
    }
}

struct GatedMailbox {
    inner: Arc<dyn Mailbox>,
    gate: Arc<Gate>,
}

impl Mailbox for GatedMailbox {
    fn open_recv(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<
        Result<lnc_tunnel::mailbox::PacketStream, lnc_tunnel::MailboxError>,
    > {
        let (open, gate) = (self.inner.open_recv(id), self.gate.clone());
        Box::pin(async move {
            let inner = open.await?;
            Ok(Box::pin(GatedStream {
                inner,
                buf: Default::default(),
                end: None,
                gate,
            }) as lnc_tunnel::mailbox::PacketStream)
        })
    }
    fn open_send(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<Result<lnc_tunnel::mailbox::PacketSink, lnc_tunnel::MailboxError>>
    {
        self.inner.open_send(id)
    }
    fn create(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<Result<(), lnc_tunnel::MailboxError>> {
        self.inner.create(id)
    }
    fn delete(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<Result<(), lnc_tunnel::MailboxError>> {
        self.inner.delete(id)
    }
}

/// An app that reconnects (KK) the moment it closed must not wait out the 2 s GBN SYN
/// resend. The node reads its old connection's FIN and the app's new SYN in one batch
/// (here forced by holding both in the node's receive stream): the ended connection must
/// leave the SYN unread, and the next connection must start on the same open stream, or
/// the SYN dies with the old one (found by `lnc bench tunnel`: 6 of 20 reconnects took 2 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syn_right_behind_fin_reaches_the_next_connection() {
    let relay = Relay::insecure().await;
    let rt = TokioRuntime::new();
    let (node_state, mut app_state) = states(11);
    let gate = Arc::new(Gate::default());
    let node_mailbox = Arc::new(GatedMailbox {
        inner: Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap()),
        gate: gate.clone(),
    });
    let mut listener = listen(
        &rt,
        node_mailbox,
        node_state,
        HashMailServer::new(App),
        TunnelOptions::default(),
        ChaCha20Rng::seed_from_u64(3),
    );
    let app_mailbox: Arc<dyn Mailbox> = Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    for round in 0..3u32 {
        let tunnel = tokio::time::timeout(
            T,
            dial(
                &rt,
                app_mailbox.clone(),
                &mut app_state,
                &TunnelOptions::default(),
                &mut rng,
            ),
        )
        .await
        .unwrap()
        .unwrap();
        next_connected(&mut listener).await;
        let mac = macaroon_from_auth_data(&tunnel.session.auth_data);
        let gbn = tunnel.gbn.clone();
        let ch = TunnelChannel::connect(&rt, tunnel.stream, mac)
            .await
            .unwrap();
        let mut client = HashMailClient::new(ch);
        unary(&mut client, round).await;
        if round == 0 {
            // The pairing connection ends on the pairing streams; the race is on the
            // post-pairing streams every later connection shares.
            drop(client);
            gbn.close();
            tokio::time::timeout(T, gbn.closed()).await.unwrap();
            continue;
        }
        // Hold the node's input, close, and redial at once: FIN and SYN queue together.
        gate.arrived.lock().unwrap().clear();
        gate.set_closed(true);
        drop(client);
        gbn.close();
        tokio::time::timeout(T, gbn.closed()).await.unwrap();
        let mut next_state = app_state.clone();
        let mb = app_mailbox.clone();
        let rt2 = rt.clone();
        let mut rng2 = ChaCha20Rng::seed_from_u64(100 + u64::from(round));
        let redial = tokio::spawn(async move {
            let r = dial(
                &rt2,
                mb,
                &mut next_state,
                &TunnelOptions::default(),
                &mut rng2,
            )
            .await;
            (r, next_state)
        });
        gate.wait_for_tail(&[lnc_core::gbn::wire::TYPE_FIN, lnc_core::gbn::wire::TYPE_SYN])
            .await;
        let opened = Instant::now();
        gate.set_closed(false);
        // Far below the 2 s SYN resend: a SYN the old connection swallowed fails here.
        let (r, next_state) = tokio::time::timeout(Duration::from_millis(1500), redial)
            .await
            .unwrap_or_else(|_| {
                panic!("round {round}: the SYN behind the FIN was lost (2 s resend)")
            })
            .unwrap();
        let tunnel = r.unwrap();
        assert_eq!(tunnel.session.pattern, lnc_core::noise::Pattern::Kk);
        println!(
            "round {round}: KK handshake {:?} after the node saw FIN+SYN",
            opened.elapsed()
        );
        next_connected(&mut listener).await;
        app_state = next_state;
        let mac = macaroon_from_auth_data(&tunnel.session.auth_data);
        let gbn = tunnel.gbn.clone();
        let ch = TunnelChannel::connect(&rt, tunnel.stream, mac)
            .await
            .unwrap();
        let mut client = HashMailClient::new(ch);
        unary(&mut client, 100 + round).await;
        drop(client);
        gbn.close();
        tokio::time::timeout(T, gbn.closed()).await.unwrap();
    }
    listener.close();
}

/// Kills an app's mailbox connections at once, as a browser reload or a crash does: every
/// stream and sink fails, and nothing (no FIN) gets out any more.
#[derive(Default)]
struct Kill {
    dead: std::sync::atomic::AtomicBool,
    wakers: std::sync::Mutex<Vec<Arc<futures_util::task::AtomicWaker>>>,
}

impl Kill {
    fn kill(&self) {
        self.dead.store(true, std::sync::atomic::Ordering::SeqCst);
        for w in self.wakers.lock().unwrap().iter() {
            w.wake();
        }
    }
    fn is_dead(&self) -> bool {
        self.dead.load(std::sync::atomic::Ordering::SeqCst)
    }
}

struct KillStream {
    inner: lnc_tunnel::mailbox::PacketStream,
    kill: Arc<Kill>,
    waker: Arc<futures_util::task::AtomicWaker>,
}

impl futures_util::Stream for KillStream {
    type Item = Result<Vec<u8>, lnc_tunnel::MailboxError>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.waker.register(cx.waker());
        if self.kill.is_dead() {
            return std::task::Poll::Ready(None);
        }
        self.inner.as_mut().poll_next(cx)
    }
}

struct KillSink {
    inner: lnc_tunnel::mailbox::PacketSink,
    kill: Arc<Kill>,
}

impl futures_util::Sink<Vec<u8>> for KillSink {
    type Error = lnc_tunnel::MailboxError;
    fn poll_ready(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        if self.kill.is_dead() {
            return std::task::Poll::Ready(Err(lnc_tunnel::MailboxError::new("killed")));
        }
        self.inner.as_mut().poll_ready(cx)
    }
    fn start_send(mut self: std::pin::Pin<&mut Self>, item: Vec<u8>) -> Result<(), Self::Error> {
        if self.kill.is_dead() {
            return Err(lnc_tunnel::MailboxError::new("killed"));
        }
        self.inner.as_mut().start_send(item)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        if self.kill.is_dead() {
            return std::task::Poll::Ready(Err(lnc_tunnel::MailboxError::new("killed")));
        }
        self.inner.as_mut().poll_flush(cx)
    }
    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.as_mut().poll_close(cx)
    }
}

struct KillableMailbox {
    inner: Arc<dyn Mailbox>,
    kill: Arc<Kill>,
}

impl Mailbox for KillableMailbox {
    fn open_recv(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<
        Result<lnc_tunnel::mailbox::PacketStream, lnc_tunnel::MailboxError>,
    > {
        let (open, kill) = (self.inner.open_recv(id), self.kill.clone());
        Box::pin(async move {
            if kill.is_dead() {
                return Err(lnc_tunnel::MailboxError::new("killed"));
            }
            let inner = open.await?;
            let waker = Arc::new(futures_util::task::AtomicWaker::new());
            kill.wakers.lock().unwrap().push(waker.clone());
            Ok(Box::pin(KillStream { inner, kill, waker }) as lnc_tunnel::mailbox::PacketStream)
        })
    }
    fn open_send(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<Result<lnc_tunnel::mailbox::PacketSink, lnc_tunnel::MailboxError>>
    {
        let (open, kill) = (self.inner.open_send(id), self.kill.clone());
        Box::pin(async move {
            if kill.is_dead() {
                return Err(lnc_tunnel::MailboxError::new("killed"));
            }
            let inner = open.await?;
            Ok(Box::pin(KillSink { inner, kill }) as lnc_tunnel::mailbox::PacketSink)
        })
    }
    fn create(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<Result<(), lnc_tunnel::MailboxError>> {
        self.inner.create(id)
    }
    fn delete(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<Result<(), lnc_tunnel::MailboxError>> {
        self.inner.delete(id)
    }
}

const STALE_SYN_WINDOW: Duration = Duration::from_millis(100);

/// An app that dies without a FIN (a browser reload, a killed process) and reconnects
/// with KK at once must not wait for the node's keepalive (5 s + 3 s) or a 2 s SYN
/// resend. Round 1 follows a dead pairing connection (the node watches the session's own
/// streams while it serves pairing); round 2 follows a dead KK connection (its SYN ends
/// the node's stale connection and opens the next one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_that_died_without_fin_reconnects_at_once() {
    let relay = Relay::insecure().await;
    let rt = TokioRuntime::new();
    let (node_state, mut app_state) = states(12);
    // A SYN within one handshake timeout of connecting is taken for a late duplicate and
    // ignored (lnc-core's GBN server); shorten that window so round 2 needs no long wait.
    let mut gbn = lnc_core::gbn::Config::server();
    gbn.handshake_timeout = STALE_SYN_WINDOW;
    let node_options = TunnelOptions {
        gbn: Some(gbn),
        ..TunnelOptions::default()
    };
    let mut listener = listen(
        &rt,
        Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap()),
        node_state,
        HashMailServer::new(App),
        node_options,
        ChaCha20Rng::seed_from_u64(5),
    );
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut dead = Vec::new();
    for round in 0..3u32 {
        let kill = Arc::new(Kill::default());
        let mb = Arc::new(KillableMailbox {
            inner: Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap()),
            kill: kill.clone(),
        });
        let t = Instant::now();
        // Far below the keepalive and the 2 s SYN resend.
        let limit = if round == 0 {
            T
        } else {
            Duration::from_millis(1500)
        };
        let tunnel = tokio::time::timeout(
            limit,
            dial(&rt, mb, &mut app_state, &TunnelOptions::default(), &mut rng),
        )
        .await
        .unwrap_or_else(|_| panic!("round {round}: the node did not take the new connection"))
        .unwrap();
        next_connected(&mut listener).await;
        let mac = macaroon_from_auth_data(&tunnel.session.auth_data);
        let ch = TunnelChannel::connect(&rt, tunnel.stream, mac)
            .await
            .unwrap();
        let mut client = HashMailClient::new(ch);
        unary(&mut client, round).await;
        if round > 0 {
            assert_eq!(tunnel.session.pattern, lnc_core::noise::Pattern::Kk);
            println!(
                "round {round}: KK reconnect after a dead app -> first RPC {:?}",
                t.elapsed()
            );
        }
        if round == 1 {
            // The app lives past the duplicate-SYN window (a restart, not a duplicate).
            tokio::time::sleep(STALE_SYN_WINDOW * 2).await;
        }
        // The app dies: no FIN reaches the node.
        kill.kill();
        dead.push((client, tunnel.gbn));
    }
    listener.close();
}

/// Reports each send stream the relay refused with "stream not found".
struct RefusalWatch {
    inner: Arc<dyn Mailbox>,
    refused: futures_channel::mpsc::UnboundedSender<()>,
}

impl Mailbox for RefusalWatch {
    fn open_recv(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<
        Result<lnc_tunnel::mailbox::PacketStream, lnc_tunnel::MailboxError>,
    > {
        self.inner.open_recv(id)
    }
    fn open_send(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<Result<lnc_tunnel::mailbox::PacketSink, lnc_tunnel::MailboxError>>
    {
        let (open, refused) = (self.inner.open_send(id), self.refused.clone());
        Box::pin(async move {
            let sink = futures_util::SinkExt::sink_map_err(open.await?, move |e| {
                if e.status == Status::SessionNotFound {
                    let _ = refused.unbounded_send(());
                }
                e
            });
            Ok(Box::pin(sink) as lnc_tunnel::mailbox::PacketSink)
        })
    }
    fn create(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<Result<(), lnc_tunnel::MailboxError>> {
        self.inner.create(id)
    }
    fn delete(
        &self,
        id: lnc_core::pairing::StreamId,
    ) -> lnc_tunnel::rt::BoxFuture<Result<(), lnc_tunnel::MailboxError>> {
        self.inner.delete(id)
    }
}

/// An app that writes its SYN before the node created the mailboxes (the node is starting,
/// or a Go-style relay gave no sign either way) loses it: the relay refuses the write
/// stream at that first message. The driver sends it again on the next open of the
/// stream, so the handshake completes right after the mailbox appears instead of at
/// GBN's 2 s handshake resend (what pairing through aperture cost before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_syn_is_resent_once_the_mailbox_exists() {
    use futures_util::StreamExt;
    let relay = Relay::insecure().await;
    let rt = TokioRuntime::new();
    let (node_state, app_state) = states(61);
    let (tx, mut refused) = futures_channel::mpsc::unbounded();
    let app_mb: Arc<dyn Mailbox> = Arc::new(RefusalWatch {
        inner: Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap()),
        refused: tx,
    });
    let app = spawn_gbn(
        &rt,
        app_mb,
        app_state.stream_ids(),
        lnc_core::gbn::Side::Client,
        lnc_core::gbn::Config::client(),
        lnc_tunnel::DriverOptions {
            create_boxes: false,
            send_after_recv: true,
        },
    )
    .unwrap();
    // The relay refused a write stream that carried the app's SYN.
    tokio::time::timeout(T, refused.next()).await.unwrap();
    let t = Instant::now();
    let node = spawn_gbn(
        &rt,
        Arc::new(GrpcMailbox::new(relay.relay_addr()).unwrap()),
        node_state.stream_ids(),
        lnc_core::gbn::Side::Server,
        lnc_core::gbn::Config::server(),
        lnc_tunnel::DriverOptions {
            create_boxes: true,
            send_after_recv: false,
        },
    )
    .unwrap();
    tokio::time::timeout(T, app.connected())
        .await
        .unwrap()
        .unwrap();
    let took = t.elapsed();
    println!("[refused SYN] connected {took:?} after the node started");
    assert!(
        took < Duration::from_secs(1),
        "the refused SYN waited for GBN's handshake resend: {took:?}"
    );
    app.close();
    node.close();
}
