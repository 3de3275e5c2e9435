//! End to end with the real binaries as processes: `lnc mailbox`, `lnc lnd-sim` (the LND
//! stand-in), `lnc node` and `lnc session …`; the app side is in-process library code
//! (lnc-tunnel's reconnect client and LND's typed stubs). Every wait is on an event (a line
//! on a child's output, a stream item, a status) bounded by a timeout; nothing sleeps.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use lnc_core::keys::SecretKey;
use lnc_core::pairing::{ConnectionState, HandshakeInputs, PairingPhrase, Role, mask_scalar};
use lnc_testkit::process::wait_line;
use lnc_testkit::stack::{App, Stack, rng};
use lnc_tunnel::rt::TokioRuntime;
use lnd_api::lnrpc;
use lnd_api::routerrpc::router_client::RouterClient;
use tokio::process::Command;

const T: Duration = Duration::from_secs(60);
const LNC: &str = env!("CARGO_BIN_EXE_lnc");

fn invoice(memo: &str) -> lnrpc::Invoice {
    lnrpc::Invoice {
        memo: memo.into(),
        value: 1000,
        ..Default::default()
    }
}

/// add → pair → calls per session type → node restart → KK reconnect → revoke ends a live
/// stream within 1 s and LND refuses the old macaroon → expiry → first-connection
/// deadline → a peer with the stream IDs but not the password burns the phrase.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_sessions_end_to_end() {
    let env = Stack::with_lnd_sim(LNC, "sessions").await;
    let node = env.node().await;

    // Three sessions, three apps.
    let (ro_id, ro_phrase) = env.add(&["--type", "readonly", "--label", "ro"]).await;
    let (ad_id, ad_phrase) = env.add(&["--type", "admin", "--label", "admin"]).await;
    let (_inv_id, inv_phrase) = env.add(&["--type", "invoice", "--label", "pos"]).await;
    let list = env.session(&["list"]).await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "created" && s["paired"] == false)
    );
    // The phrase is shown again while unpaired.
    let again = env.session(&["show", &ro_id, "--phrase"]).await.unwrap();
    assert_eq!(again["phrase"].as_str().unwrap(), ro_phrase);

    let ro = App::pair(&env, &ro_phrase).await;
    let mut ad = App::pair(&env, &ad_phrase).await;
    let inv = App::pair(&env, &inv_phrase).await;

    // readonly: reads pass, AddInvoice is refused by LND with its own permission error.
    let info = ro.ln().get_info(lnrpc::GetInfoRequest {}).await.unwrap();
    assert_eq!(info.get_ref().alias, "lnd-sim");
    let e = ro.ln().add_invoice(invoice("ro")).await.unwrap_err();
    assert!(
        e.message().contains("permission denied"),
        "readonly AddInvoice: {e:?}"
    );
    // admin: allowed.
    ad.ln().add_invoice(invoice("admin")).await.unwrap();
    // invoice-only: AddInvoice yes, paying no (SendPaymentV2, LND's preferred payment call).
    let added = inv
        .ln()
        .add_invoice(invoice("pos"))
        .await
        .unwrap()
        .into_inner();
    let mut router = RouterClient::new(inv.client.clone());
    let pay = router
        .send_payment_v2(lnd_api::routerrpc::SendPaymentRequest {
            payment_request: added.payment_request.clone(),
            timeout_seconds: 10,
            ..Default::default()
        })
        .await;
    let e = match pay {
        Err(e) => e,
        Ok(r) => r.into_inner().message().await.unwrap_err(),
    };
    assert!(
        e.message().contains("permission denied"),
        "invoice SendPaymentV2: {e:?}"
    );

    // Paired: state "in use", phrase no longer shown, connected now.
    let s = env.state(&ad_id).await;
    assert_eq!(s["state"], "in use");
    assert_eq!(s["paired"], true);
    assert_eq!(s["connected"], true);
    assert!(env.session(&["show", &ad_id, "--phrase"]).await.is_err());

    // 50 concurrent calls over one session.
    let t0 = Instant::now();
    let calls = (0..50).map(|i| {
        let mut ln = ad.ln();
        async move {
            if i % 2 == 0 {
                ln.get_info(lnrpc::GetInfoRequest {}).await.map(|_| ())
            } else {
                ln.add_invoice(invoice(&format!("c{i}"))).await.map(|_| ())
            }
        }
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    eprintln!("50 concurrent calls in {:?}", t0.elapsed());

    // Node restart: apps reconnect by KK on their own.
    node.interrupt().await;
    let node = env.node().await;
    assert_eq!(ad.next_connected().await, lnc_core::noise::Pattern::Kk);
    ad.ln().get_info(lnrpc::GetInfoRequest {}).await.unwrap();
    drop(ro);
    drop(inv);

    // Revoke ends a live stream within 1 s; LND refuses the old macaroon.
    let mut sub = ad
        .ln()
        .subscribe_invoices(lnrpc::InvoiceSubscription::default())
        .await
        .unwrap()
        .into_inner();
    ad.ln().add_invoice(invoice("live")).await.unwrap();
    let first = tokio::time::timeout(T, sub.message())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_some());
    let t_revoke = Instant::now();
    let _ = env.session(&["revoke", &ad_id]).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(1), sub.message())
        .await
        .expect("the stream did not end within 1 s of the revoke");
    assert!(!matches!(end, Ok(Some(_))), "stream went on: {end:?}");
    eprintln!("stream ended {:?} after revoke", t_revoke.elapsed());
    let direct = env.direct_lnd(&ad.macaroon()).await;
    let e = direct
        .lightning()
        .get_info(lnrpc::GetInfoRequest {})
        .await
        .unwrap_err();
    eprintln!("old macaroon refused: {}", e.message());
    let s = env.state(&ad_id).await;
    assert_eq!(s["state"], "revoked");
    assert!(ad.ln().get_info(lnrpc::GetInfoRequest {}).await.is_err());
    ad.client.close();

    // Expiry while running: the session becomes "expired" and its app is cut off.
    let mut node_rx = node.subscribe();
    let (exp_id, exp_phrase) = env.add(&["--type", "readonly", "--expiry", "4s"]).await;
    let exp = App::pair(&env, &exp_phrase).await;
    exp.ln().get_info(lnrpc::GetInfoRequest {}).await.unwrap();
    let exp_short = exp_id.clone();
    wait_line(&mut node_rx, |l| {
        l.contains("session ended") && l.contains(&exp_short) && l.contains("expired")
    })
    .await;
    assert_eq!(env.state(&exp_id).await["state"], "expired");
    assert!(exp.ln().get_info(lnrpc::GetInfoRequest {}).await.is_err());
    let direct = env.direct_lnd(&exp.macaroon()).await;
    assert!(
        direct
            .lightning()
            .get_info(lnrpc::GetInfoRequest {})
            .await
            .is_err()
    );
    exp.client.close();

    // An unpaired session is revoked at its first-connection deadline.
    let (dl_id, _) = env
        .add(&["--type", "readonly", "--first-connection-timeout", "2s"])
        .await;
    let dl_short = dl_id.clone();
    wait_line(&mut node_rx, |l| {
        l.contains("session revoked") && l.contains(&dl_short)
    })
    .await;
    let s = env.state(&dl_id).await;
    assert_eq!(s["state"], "revoked");
    assert!(
        s["revoke_reason"]
            .as_str()
            .unwrap()
            .contains("first-connection deadline")
    );

    // The malicious relay: it knows the stream IDs (from the phrase's entropy hash) but not
    // the SPAKE2 password. One attempt burns the phrase.
    let (mal_id, mal_phrase) = env.add(&["--type", "admin"]).await;
    let entropy = PairingPhrase::parse(&mal_phrase).unwrap().into_entropy();
    let state = ConnectionState::new(Role::Client, SecretKey::generate(&mut rng()), entropy);
    let other = PairingPhrase::generate(&mut rng()).into_entropy();
    let wrong = HandshakeInputs::Xx {
        local_static: state.local_static().clone(),
        mask: mask_scalar(&other),
    };
    let rt = TokioRuntime::new();
    let gbn = lnc_tunnel::spawn_gbn(
        &rt,
        env.mailbox_client(),
        state.stream_ids(),
        lnc_core::gbn::Side::Client,
        lnc_core::gbn::Config::client(),
        lnc_tunnel::DriverOptions {
            create_boxes: false,
            send_after_recv: true,
        },
    )
    .unwrap();
    tokio::time::timeout(T, gbn.connected())
        .await
        .unwrap()
        .unwrap();
    let r = tokio::time::timeout(
        T,
        lnc_tunnel::stream::initiate(
            &gbn,
            &wrong,
            &lnc_core::noise::NoiseConfig::default(),
            &mut rng(),
        ),
    )
    .await
    .unwrap();
    assert!(r.is_err(), "the handshake with a wrong password succeeded");
    let mal_short = mal_id.clone();
    wait_line(&mut node_rx, |l| {
        l.contains("session revoked") && l.contains(&mal_short)
    })
    .await;
    let s = env.state(&mal_id).await;
    assert_eq!(s["state"], "revoked");
    assert_eq!(s["failed_attempts"], 1);
    assert!(s["revoke_reason"].as_str().unwrap().contains("burnt"));
    gbn.close();

    node.interrupt().await;
    let _ = std::fs::remove_dir_all(&env.dir);
}

/// A server-streaming call of 10,000 messages through the node loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_of_10000_messages() {
    const N: u64 = 10_000;
    let env = Stack::with_lnd_sim(LNC, "stream").await;
    let node = env.node().await;
    let (_, phrase) = env.add(&["--type", "admin"]).await;
    let app = App::pair(&env, &phrase).await;

    // N + 1 invoices, added directly to LND, concurrently.
    let direct = env.direct_admin().await;
    let t0 = Instant::now();
    futures_util::stream::iter(0..=N)
        .map(|i| {
            let d = direct.clone();
            async move {
                d.lightning()
                    .add_invoice(invoice(&format!("i{i}")))
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    eprintln!("{} invoices added in {:?}", N + 1, t0.elapsed());

    // Subscribing from add_index 1 replays invoices 2..=N+1 through the tunnel.
    let t0 = Instant::now();
    let mut sub = app
        .ln()
        .subscribe_invoices(lnrpc::InvoiceSubscription {
            add_index: 1,
            settle_index: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = vec![false; (N + 2) as usize];
    for _ in 0..N {
        let inv = tokio::time::timeout(T, sub.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let i = inv.add_index as usize;
        assert!((2..=(N as usize + 1)).contains(&i), "add_index {i}");
        assert!(!seen[i], "duplicate {i}");
        seen[i] = true;
    }
    assert_eq!(seen.iter().filter(|s| **s).count(), N as usize);
    eprintln!("{N} streamed messages in {:?}", t0.elapsed());
    drop(sub);
    app.client.close();
    node.interrupt().await;
    let _ = std::fs::remove_dir_all(&env.dir);
}

/// `lnc demo` runs every step and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_exits_zero() {
    let out = tokio::time::timeout(
        T,
        Command::new(LNC)
            .arg("demo")
            .env("NO_COLOR", "1")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "app paired",
        "GetInfo through the tunnel",
        "SubscribeInvoices saw the new invoice",
        "LookupInvoice by name with JSON",
        "reconnected with the stored keys (Noise KK",
        "all steps passed",
    ] {
        assert!(stdout.contains(step), "missing step {step:?}");
    }
}

/// Everything as processes, the app too (`Stack::invoice_session_via_cli`), in front of
/// lnd-sim; `real_lnd.rs` runs the same against a real LND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_client_processes_against_node() {
    let env = Stack::with_lnd_sim(LNC, "cli").await;
    env.invoice_session_via_cli().await;
    let _ = std::fs::remove_dir_all(&env.dir);
}

/// #18 row 6: the node is killed during `lnc call` of a stream. The CLI said "the node
/// returned Unknown: h2 protocol error: error reading a body from connection"; it must say
/// that the connection to the node dropped, and that retrying reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_during_a_cli_stream_is_reported_as_a_lost_connection() {
    let env = Stack::with_lnd_sim(LNC, "killed").await;
    let mut node = env.node().await;
    let (_, phrase) = env.add(&["--type", "admin"]).await;
    let args = ["connect", "--mailbox", &env.relay, "--insecure"];
    let out = env.cli(&args, &format!("{phrase}\n")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Two invoices before the stream starts: from add_index 1 the node replays the second,
    // which shows the stream is open end to end.
    let direct = env.direct_admin().await;
    for memo in ["one", "two"] {
        direct.lightning().add_invoice(invoice(memo)).await.unwrap();
    }
    let sub = r#"{"add_index":"1"}"#;
    let mut cli = env.cli_proc(&["call", "lnrpc.Lightning.SubscribeInvoices", sub]);
    let mut lines = cli.subscribe();
    wait_line(&mut lines, |l| l.contains(r#""two""#)).await;

    node.kill().await;
    let line = wait_line(&mut lines, |l| l.starts_with("error:")).await;
    assert!(!cli.exit_status().await.success());
    assert!(line.contains("connection to the node dropped"), "{line}");
    assert!(line.contains("retry"), "{line}");
    assert!(!line.contains("h2 protocol error"), "{line}");
    let _ = std::fs::remove_dir_all(&env.dir);
}
