//! The kill matrix (#18): with every part a real process (`lnc mailbox`, `lnc node`,
//! lnd-sim as LND, the app as the client library or as `lnc call`), one part is killed
//! with SIGKILL while a stream is open, and started again on the same address and data.
//! What must hold: the rest recovers without a restart of anything else; no call is
//! answered twice (every call adds an invoice with its own memo, and each memo is in LND
//! at most once); a stream that cannot resume ends with an error that says what happened
//! and what to do. Each case prints one `KILL` line with its recovery time, the time from
//! the kill to the first call answered after it (BENCHMARKS.md, "Kill matrix").
//!
//! Nothing sleeps: the test waits on process lines, on the client's events and on calls,
//! each under a generous limit.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use lnc_client::{
    ConnectOptions, Error, Event, JsonStream, MailboxInfo, Phase, TlsMode, Transport,
};
use lnc_testkit::lnd::{add_first_invoice, invoices_after_first};
use lnc_testkit::process::wait_line;
use lnc_testkit::stack::{LndTarget, Stack};
use lnd_api::lnrpc;

const LNC: &str = env!("CARGO_BIN_EXE_lnc");
/// The longest a part may take to recover after its restart (keepalives, reconnect
/// backoff); generous for a loaded 2-core CI machine.
const RECOVERY: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victim {
    Relay,
    /// The relay on the Redis backend.
    RedisRelay,
    /// The relay's redis-server (its data is gone: no persistence).
    Redis,
    Node,
    Lnd,
    /// A real LND (regtest, its own spare on the network's chain backend).
    RealLnd,
}

/// Adds LND's first invoice (the counted ones start after it).
async fn first_invoice(env: &Stack) {
    add_first_invoice(&env.direct_admin().await).await;
}

/// The invoices LND holds after its first, by memo (directly, not through the tunnel).
async fn memos_in_lnd(env: &Stack) -> HashMap<String, u32> {
    let mut memos = HashMap::new();
    for inv in invoices_after_first(&env.direct_admin().await).await {
        *memos.entry(inv.memo).or_insert(0) += 1;
    }
    memos
}

async fn add(client: &lnc_client::Client, memo: &str) -> Result<String, Error> {
    client
        .call(
            "lnrpc.Lightning.AddInvoice",
            &format!(r#"{{"memo":"{memo}","value":"1"}}"#),
        )
        .await
}

/// The memo of the stream's next invoice, or the error it ended with.
async fn next_memo(stream: &mut JsonStream) -> Result<String, String> {
    match tokio::time::timeout(RECOVERY, stream.next()).await {
        Err(_) => Err("the stream neither moved nor ended".into()),
        Ok(None) => Err("the stream ended without an error".into()),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(Some(Ok(json))) => {
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            Ok(v["memo"].as_str().unwrap_or_default().to_owned())
        }
    }
}

/// Waits for the client to report its tunnel up again (after a reconnect).
async fn reconnected(events: &mut futures_channel::mpsc::UnboundedReceiver<Event>) {
    tokio::time::timeout(RECOVERY, async {
        while let Some(e) = events.next().await {
            if e == Event::Phase(Phase::Connected) {
                return;
            }
        }
        panic!("the client's events ended");
    })
    .await
    .expect("the client did not reconnect");
}

async fn kill_and_recover(victim: Victim) {
    // `RUST_LOG=lnc_tunnel=trace` traces the in-process app (`LNC_TEST_PROC_LOG` the
    // processes).
    lnc_testkit::init_tracing();
    let tag = format!("kill-{victim:?}");
    let mut real = None;
    let mut env = match victim {
        Victim::RedisRelay | Victim::Redis => Stack::with_lnd_sim_on_redis(LNC, &tag).await,
        Victim::RealLnd => {
            let net = lnc_testkit::lnd::regtest().await;
            let lnd = net.spare("carol").await.unwrap();
            let target = LndTarget::of(&lnd);
            real = Some((net, lnd));
            Stack::with_lnd(LNC, &tag, target).await
        }
        _ => Stack::with_lnd_sim(LNC, &tag).await,
    };
    let mut node = env.node().await;
    first_invoice(&env).await;
    let (_, phrase) = env.add(&["--type", "admin"]).await;
    let (etx, mut events) = futures_channel::mpsc::unbounded();
    let info = MailboxInfo::new(env.relay.clone(), Transport::Grpc, TlsMode::Insecure);
    let opts = ConnectOptions {
        events: Some(etx),
        ..Default::default()
    };
    let (client, _) = tokio::time::timeout(RECOVERY, lnc_client::native::pair(info, &phrase, opts))
        .await
        .unwrap()
        .unwrap();
    // A real LND (grpc-go) answers SubscribeInvoices' headers only with its first invoice,
    // and `subscribe` resolves on the headers: add invoices while it waits, until one
    // arrives on the stream (lnd-sim answers at once).
    let subscribe = client.subscribe("lnrpc.Lightning.SubscribeInvoices", "{}");
    tokio::pin!(subscribe);
    let mut before = 0;
    let mut stream = loop {
        before += 1;
        let memo = format!("before-{before}");
        // Each add runs to its answer (never cancelled, so LND's order is the calls'
        // order) while the subscription is awaited beside it.
        let adding = add(&client, &memo);
        tokio::pin!(adding);
        let mut subscribed = None;
        loop {
            tokio::select! {
                s = &mut subscribe, if subscribed.is_none() => subscribed = Some(s.unwrap()),
                r = &mut adding => { r.unwrap(); break; }
            }
        }
        if let Some(s) = subscribed {
            break s;
        }
    };
    // The subscription exists now, and every `before-k` was answered before this call:
    // the stream carries those it saw first, then this one.
    add(&client, "before").await.unwrap();
    loop {
        let memo = next_memo(&mut stream).await.unwrap();
        if memo == "before" {
            break;
        }
        assert!(memo.starts_with("before-"), "{memo}");
    }

    let t0 = Instant::now();
    match victim {
        Victim::Relay | Victim::RedisRelay => {
            env.kill_relay().await;
            env.restart_relay().await;
        }
        Victim::Redis => env.restart_redis().await,
        Victim::Node => {
            node.kill().await;
            node = env.node().await;
        }
        Victim::Lnd => {
            env.kill_lnd_sim().await;
            env.restart_lnd_sim().await;
            // lnd-sim keeps invoices in memory: they start again.
            first_invoice(&env).await;
        }
        Victim::RealLnd => {
            let (net, lnd) = real.as_mut().unwrap();
            lnd.kill().await;
            lnd.restart(&net.backend).await.unwrap();
        }
    }
    let restarted = t0.elapsed();

    // The first call after the restart that is answered; calls refused before it must say
    // why in words a user can act on.
    let mut refusals = Vec::new();
    let mut n = 0;
    let recovered = loop {
        n += 1;
        let memo = format!("after-{n}");
        match tokio::time::timeout(RECOVERY, add(&client, &memo)).await {
            Err(_) => panic!("{victim:?}: call {memo} got no answer within {RECOVERY:?}"),
            Ok(Ok(_)) => break t0.elapsed(),
            Ok(Err(e)) => {
                let text = e.to_string();
                assert!(!text.contains("h2 protocol error"), "{victim:?}: {text}");
                refusals.push(text);
                assert!(
                    n < 5,
                    "{victim:?}: still refused after {n} calls: {refusals:#?}"
                );
                if matches!(e, Error::Retryable) {
                    reconnected(&mut events).await;
                }
            }
        }
    };

    // The stream: through a relay restart GBN carries it on; a node or LND that died took
    // the call's state with it, so it ends, saying so.
    let stream_outcome = match next_memo(&mut stream).await {
        Ok(memo) => {
            assert!(memo.starts_with("after-"), "{victim:?}: stream gave {memo}");
            "continued".to_owned()
        }
        Err(e) => {
            assert!(!e.contains("h2 protocol error"), "{victim:?}: {e}");
            format!("ended: {e}")
        }
    };
    // A restarted node ends the app's pairing connection on the pairing streams (a GBN
    // FIN) instead of leaving it to the app's keepalive, which took 10 s.
    if victim == Victim::Node {
        assert!(
            recovered < Duration::from_secs(5),
            "{victim:?}: recovered after {recovered:?}: the app waited for its keepalive"
        );
    }
    match victim {
        Victim::Relay | Victim::RedisRelay | Victim::Redis => {
            assert_eq!(stream_outcome, "continued", "{victim:?}")
        }
        Victim::Node | Victim::Lnd | Victim::RealLnd => assert!(
            stream_outcome.starts_with("ended"),
            "{victim:?}: {stream_outcome}"
        ),
    }

    // No call answered twice: each memo at most once in LND. (lnd-sim keeps invoices in
    // memory, so after its restart only the calls made since are there.)
    let memos = memos_in_lnd(&env).await;
    for (memo, count) in &memos {
        assert_eq!(*count, 1, "{victim:?}: invoice {memo} added {count} times");
    }
    if victim == Victim::RealLnd {
        // Its invoices survive its death: those from before it are there too.
        assert_eq!(memos.get("before"), Some(&1), "{victim:?}: {memos:?}");
    }
    assert!(
        memos.contains_key(&format!("after-{n}")),
        "{victim:?}: the answered call's invoice is missing: {memos:?}"
    );

    println!(
        "KILL victim={victim:?} restarted_ms={} recovered_ms={} refused_calls={} stream={stream_outcome}",
        restarted.as_millis(),
        recovered.as_millis(),
        refusals.len()
    );
    for r in &refusals {
        println!("KILL   refused: {r}");
    }
    client.close();
    drop(node);
    let _ = std::fs::remove_dir_all(&env.dir);
}

/// The real LND (#18: "LND (real, once the LND issue lands)"): its invoices survive, so
/// every memo, before and after, must be in it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_lnd_killed_mid_stream() {
    kill_and_recover(Victim::RealLnd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_stream() {
    kill_and_recover(Victim::Relay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_backed_relay_killed_mid_stream() {
    kill_and_recover(Victim::RedisRelay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_stream() {
    kill_and_recover(Victim::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_mid_stream() {
    kill_and_recover(Victim::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lnd_killed_mid_stream() {
    kill_and_recover(Victim::Lnd).await;
}

/// The app is the process killed: `lnc call` of a stream. A new `lnc call` (KK from the
/// profile) is answered at once: the node does not wait for the dead app's keepalive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_killed_mid_stream() {
    let env = Stack::with_lnd_sim(LNC, "kill-app").await;
    let _node = env.node().await;
    first_invoice(&env).await;
    let (_, phrase) = env.add(&["--type", "admin"]).await;
    env.cli_pair(&phrase, None).await;
    // From add index 1 the stream replays "before" however late it opens.
    let mut app = env.cli_proc(&[
        "call",
        "lnrpc.Lightning.SubscribeInvoices",
        r#"{"add_index":"1"}"#,
    ]);
    let mut lines = app.subscribe();
    // Added directly: a second `lnc call` on the same profile would take the session over
    // from the streaming one (one app per session).
    env.direct_admin()
        .await
        .lightning()
        .add_invoice(lnrpc::Invoice {
            memo: "before".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    wait_line(&mut lines, |l| l.contains(r#""before""#)).await;

    let t0 = Instant::now();
    app.kill().await;
    let out = env
        .cli(
            &[
                "call",
                "lnrpc.Lightning.AddInvoice",
                r#"{"memo":"after","value":"1"}"#,
            ],
            "",
        )
        .await;
    let recovered = t0.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let memos = memos_in_lnd(&env).await;
    assert_eq!(memos.get("before"), Some(&1));
    assert_eq!(memos.get("after"), Some(&1));
    println!(
        "KILL victim=App restarted_ms=0 recovered_ms={} refused_calls=0 stream=ended with its process",
        recovered.as_millis()
    );
    let _ = std::fs::remove_dir_all(&env.dir);
}
