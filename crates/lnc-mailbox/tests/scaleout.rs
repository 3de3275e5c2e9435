//! Scale-out: three relay instances sharing one real redis-server, driven by
//! the same gRPC and WebSocket clients as the single-instance tests. A
//! missing redis-server FAILS these tests (see lnc-testkit's `redis`).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lnc_hashmail::json;
use lnc_testkit::T;
use lnc_testkit::hashmail::*;
use lnc_testkit::redis::{Instance, RedisServer, instance_config};
use lnc_testkit::relay::Relay;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

async fn ws_text(ws: &mut tokio_tungstenite::WebSocketStream<BoxIo>) -> String {
    loop {
        match timeout(T, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn three(redis: &RedisServer, tweak: impl Fn(&mut lnc_mailbox::Config)) -> Vec<Instance> {
    let mut v = Vec::new();
    for _ in 0..3 {
        let mut c = instance_config(redis);
        tweak(&mut c);
        v.push(Instance::start(c).await);
    }
    v
}

fn payload(i: usize) -> Vec<u8> {
    let mut v = (i as u32).to_be_bytes().to_vec();
    v.extend(std::iter::repeat_n((i % 251) as u8, i % 300));
    v
}

/// A poll with a deadline for state only Redis knows (key expiry has no
/// local event): re-checks every 50 ms, fails after 20 s.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if f().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
    }
}

#[tokio::test]
async fn grpc_and_ws_clients_across_three_instances() {
    const N: usize = 2_000;
    let redis = RedisServer::start().await;
    let inst = three(&redis, |_| {}).await;
    let (a, b, c) = (
        Relay::client_of(inst[0].handle.clone()),
        Relay::client_of(inst[1].handle.clone()),
        Relay::client_of(inst[2].handle.clone()),
    );
    // gRPC writer on C → gRPC reader on B, mailbox created on A.
    let id = sid(1);
    create(&mut a.grpc().await, &id).await;
    let mut r = b
        .grpc()
        .await
        .recv_stream(desc(&id))
        .await
        .unwrap()
        .into_inner();
    let (tx, _task) = writer(&c.grpc().await);
    let id2 = id.clone();
    tokio::spawn(async move {
        for i in 0..N {
            tx.send(cbox(&id2, &payload(i))).await.unwrap();
        }
        std::future::pending::<()>().await;
    });
    for i in 0..N {
        let m = timeout(T, r.message()).await.unwrap().unwrap().unwrap();
        assert_eq!(&m.msg[..], &payload(i)[..], "grpc message {i}");
    }
    // WebSocket writer on A → WebSocket reader on C.
    let id = sid(2);
    create(&mut b.grpc().await, &id).await;
    let mut wr = c.ws(lnc_hashmail::paths::WS_RECEIVE).await;
    wr.send(Message::Text(json::desc_frame(&id).into()))
        .await
        .unwrap();
    timeout(T, inst[2].handle.wait_for(|s| s.readers == 1))
        .await
        .unwrap();
    let mut ws = a.ws(lnc_hashmail::paths::WS_SEND).await;
    let id2 = id.clone();
    tokio::spawn(async move {
        for i in 0..N {
            ws.send(Message::Text(json::send_frame(&id2, &payload(i)).into()))
                .await
                .unwrap();
        }
        std::future::pending::<()>().await;
    });
    for i in 0..N {
        let f = json::parse_recv_frame(&ws_text(&mut wr).await).unwrap();
        let json::RecvFrame::Result(m) = f else {
            panic!("error frame")
        };
        assert_eq!(m.msg.0, payload(i), "ws message {i}");
        assert_eq!(m.desc.unwrap().stream_id.0, id);
    }
    // Per-instance metrics, including Redis round trips.
    let text = inst[2].handle.metrics_text();
    assert!(
        text.contains(&format!("lnc_mailbox_messages_relayed_total {N}")),
        "{text}"
    );
    assert!(
        text.contains("lnc_mailbox_redis_roundtrip_seconds_count"),
        "{text}"
    );
    assert!(text.contains("lnc_mailbox_redis_up 1"), "{text}");
    // Readiness on the public listener.
    let (st, body) = a.http("GET", "/healthz", &[], "").await;
    assert_eq!(st, 200, "{body}");
    assert!(body.ends_with("ok redis\n"), "{body}");
}

#[tokio::test]
async fn occupancy_and_errors_identical_across_instances() {
    let redis = RedisServer::start().await;
    let inst = three(&redis, |c| {
        c.timers.occupied_wait = Duration::from_millis(100);
        c.limits.max_streams_per_ip = 3;
    })
    .await;
    let (a, b, c) = (
        Relay::client_of(inst[0].handle.clone()),
        Relay::client_of(inst[1].handle.clone()),
        Relay::client_of(inst[2].handle.clone()),
    );
    let (mut ga, mut gb, mut gc) = (a.grpc().await, b.grpc().await, c.grpc().await);
    let id = sid(3);
    create(&mut ga, &id).await;
    // Already exists, from another instance: same code and text as memory.
    let e = gb.new_cipher_box(auth_req(&id)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists);
    assert_eq!(e.message(), "stream already active");
    // Unknown stream, on any instance.
    let e = gc.recv_stream(desc(&sid(99))).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (tonic::Code::Unknown, "stream not found")
    );
    // Reader on A: a reader on B is refused after the wait.
    let mut r1 = ga.recv_stream(desc(&id)).await.unwrap().into_inner();
    let e = gb.recv_stream(desc(&id)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (tonic::Code::Unknown, "read stream occupied")
    );
    // WebSocket reader on C gets the same error frame.
    let mut wr = c.ws(lnc_hashmail::paths::WS_RECEIVE).await;
    wr.send(Message::Text(json::desc_frame(&id).into()))
        .await
        .unwrap();
    let f = ws_text(&mut wr).await;
    assert!(
        f.contains("read stream occupied") && f.contains("\"code\":2"),
        "{f}"
    );
    // Writer on B; a second writer on C is refused.
    let (tx, _t) = writer(&gb);
    tx.send(cbox(&id, b"one")).await.unwrap();
    let m = timeout(T, r1.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(&m.msg[..], b"one");
    let (tx2, t2) = writer(&gc);
    tx2.send(cbox(&id, b"x")).await.unwrap();
    let e = timeout(T, t2).await.unwrap().unwrap().unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (tonic::Code::Unknown, "write stream occupied")
    );
    // The reader on A leaves: a reader on C takes over at once (released,
    // not lapsed) and gets what the writer on B sends next.
    drop(r1);
    timeout(T, inst[0].handle.wait_for(|s| s.readers == 0))
        .await
        .unwrap();
    let mut r2 = timeout(T, async {
        loop {
            match gc.recv_stream(desc(&id)).await {
                Ok(s) => return s.into_inner(),
                // The release is asynchronous; occupancy waits 100 ms then
                // refuses: retry like a client would.
                Err(e) => assert_eq!(e.message(), "read stream occupied"),
            }
        }
    })
    .await
    .unwrap();
    tx.send(cbox(&id, b"two")).await.unwrap();
    let m = timeout(T, r2.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(&m.msg[..], b"two");
    // Per-IP cap counts mailboxes created through every instance.
    create(&mut gb, &sid(4)).await;
    create(&mut gc, &sid(5)).await;
    let e = ga.new_cipher_box(auth_req(&sid(6))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    assert_eq!(e.message(), "mailbox limit reached: max_streams_per_ip=3");
    // Delete on B ends the reader on C and the writer on B with the memory
    // backend's status; a second delete is not found.
    gb.del_cipher_box(auth_req(&id)).await.unwrap();
    let e = timeout(T, r2.message()).await.unwrap().unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (tonic::Code::Unavailable, "stream shutting down")
    );
    let e = ga.del_cipher_box(auth_req(&id)).await.unwrap_err();
    assert_eq!(e.message(), "stream not found");
    drop(tx);
}

#[tokio::test]
async fn backpressure_is_bounded_in_redis() {
    let redis = RedisServer::start().await;
    let inst = three(&redis, |c| c.limits.max_queue_messages = 4).await;
    let (a, b) = (
        Relay::client_of(inst[0].handle.clone()),
        Relay::client_of(inst[1].handle.clone()),
    );
    let mut ga = a.grpc().await;
    let id = sid(7);
    create(&mut ga, &id).await;
    let (tx, _t) = writer(&b.grpc().await);
    for i in 0..10u8 {
        tx.send(cbox(&id, &[i])).await.unwrap();
    }
    // The writer on B is held back after 4 queued messages.
    let mut rx = inst[1].handle.metrics_text();
    while !rx.contains("lnc_mailbox_writer_backpressure_total 1") {
        timeout(T, inst[1].handle.wait_for(|_| true)).await.unwrap();
        tokio::task::yield_now().await;
        rx = inst[1].handle.metrics_text();
    }
    // A reader on A drains everything, in order.
    let mut r = ga.recv_stream(desc(&id)).await.unwrap().into_inner();
    for i in 0..10u8 {
        let m = timeout(T, r.message()).await.unwrap().unwrap().unwrap();
        assert_eq!(&m.msg[..], &[i]);
    }
}

#[tokio::test]
async fn crashed_instance_leases_lapse() {
    let redis = RedisServer::start().await;
    let mut inst = three(&redis, |c| {
        c.timers.occupied_wait = Duration::from_millis(50)
    })
    .await;
    let (a, b) = (
        Relay::client_of(inst[0].handle.clone()),
        Relay::client_of(inst[1].handle.clone()),
    );
    let mut gb = b.grpc().await;
    let id = sid(8);
    create(&mut gb, &id).await;
    let _r = a
        .grpc()
        .await
        .recv_stream(desc(&id))
        .await
        .unwrap()
        .into_inner();
    let e = gb.recv_stream(desc(&id)).await.unwrap_err();
    assert_eq!(e.message(), "read stream occupied");
    inst[0].crash();
    // The hold lapses within the lease (900 ms here); then B serves it.
    let t0 = std::time::Instant::now();
    let mut r = timeout(T, async {
        loop {
            match gb.recv_stream(desc(&id)).await {
                Ok(s) => return s.into_inner(),
                Err(e) => assert_eq!(e.message(), "read stream occupied"),
            }
        }
    })
    .await
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let (tx, _t) = writer(&gb);
    tx.send(cbox(&id, b"after crash")).await.unwrap();
    let m = timeout(T, r.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(&m.msg[..], b"after crash");
}

#[tokio::test]
async fn idle_gc_across_instances() {
    let redis = RedisServer::start().await;
    let inst = three(&redis, |c| {
        c.timers.idle_timeout = Some(Duration::from_millis(1500))
    })
    .await;
    let (a, b) = (
        Relay::client_of(inst[0].handle.clone()),
        Relay::client_of(inst[1].handle.clone()),
    );
    let (idle, used) = (sid(9), sid(10));
    create(&mut a.grpc().await, &idle).await;
    create(&mut a.grpc().await, &used).await;
    // Held on B (renewed by B) while nobody touches `idle`.
    let mut r = b
        .grpc()
        .await
        .recv_stream(desc(&used))
        .await
        .unwrap()
        .into_inner();
    let hc = inst[2].handle.clone();
    eventually("idle mailbox expires", async || {
        !hc.contains(&idle.clone().try_into().unwrap())
            .await
            .unwrap()
    })
    .await;
    // Seen from every instance, with the usual error.
    let e = a.grpc().await.recv_stream(desc(&idle)).await.unwrap_err();
    assert_eq!(e.message(), "stream not found");
    // Longer than the idle timeout has passed: the held one is alive.
    let t0 = tokio::time::Instant::now();
    let hc2 = inst[2].handle.clone();
    let used_id: [u8; 64] = used.clone().try_into().unwrap();
    eventually("held mailbox survives past idle timeout", async || {
        assert!(hc2.contains(&used_id).await.unwrap());
        t0.elapsed() > Duration::from_millis(2000)
    })
    .await;
    let (tx, _t) = writer(&inst_client(&inst[2]).grpc().await);
    tx.send(cbox(&used, b"alive")).await.unwrap();
    let m = timeout(T, r.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(&m.msg[..], b"alive");
    // Both halves leave: it goes too.
    drop(r);
    drop(tx);
    eventually("released mailbox expires", async || {
        !hc2.contains(&used_id).await.unwrap()
    })
    .await;
}

fn inst_client(i: &Instance) -> Relay {
    Relay::client_of(i.handle.clone())
}

#[tokio::test]
async fn redis_restart_unready_clear_errors_then_recovers() {
    let mut redis = RedisServer::start().await;
    let inst = three(&redis, |_| {}).await;
    let a = inst_client(&inst[0]);
    let b = inst_client(&inst[1]);
    let mut ga = a.grpc().await;
    let id = sid(11);
    create(&mut ga, &id).await;
    let mut r = b
        .grpc()
        .await
        .recv_stream(desc(&id))
        .await
        .unwrap()
        .into_inner();

    redis.kill().await;
    for i in &inst {
        i.wait_ready(false).await;
    }
    let (st, body) = a.http("GET", "/healthz", &[], "").await;
    assert_eq!(st, 503, "{body}");
    assert!(body.contains("store not reachable"), "{body}");
    let e = ga.new_cipher_box(auth_req(&sid(12))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(
        e.message().starts_with("mailbox storage unavailable"),
        "{}",
        e.message()
    );
    // The attached reader ends with a clear status too.
    let e = timeout(T, r.message()).await.unwrap().unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(
        inst[1]
            .handle
            .metrics_text()
            .contains("lnc_mailbox_redis_up 0")
    );

    redis.restart().await;
    for i in &inst {
        i.wait_ready(true).await;
    }
    let (st, _) = a.http("GET", "/healthz", &[], "").await;
    assert_eq!(st, 200);
    // The data is gone (no persistence): the node re-creates, service resumes.
    create(&mut ga, &id).await;
    let mut r = b
        .grpc()
        .await
        .recv_stream(desc(&id))
        .await
        .unwrap()
        .into_inner();
    let (tx, _t) = writer(&inst_client(&inst[2]).grpc().await);
    tx.send(cbox(&id, b"back")).await.unwrap();
    let m = timeout(T, r.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(&m.msg[..], b"back");
    assert!(
        inst[0]
            .handle
            .metrics_text()
            .lines()
            .any(|l| l.starts_with("lnc_mailbox_redis_errors_total") && !l.ends_with(" 0")),
    );
}

#[tokio::test]
async fn bad_redis_url_is_a_clear_startup_error() {
    let mut c = lnc_mailbox::Config::loopback_insecure();
    c.redis = Some(lnc_mailbox::RedisConfig::new("http://nope"));
    let e = match lnc_mailbox::Server::bind(c).await {
        Ok(_) => panic!("bad URL accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("bad --redis URL"), "{e}");
}
