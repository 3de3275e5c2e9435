//! Spend sessions (#19) on a real LND: `lnc node` in front of alice on a regtest network
//! (`lnc_testkit::lnd`), bob her channel peer, an app paying through the tunnel. Every
//! payment is real: bob's invoices settle or stay open, and the node's budget must agree
//! with what LND did.
//!
//! Needs the binaries of `interop/lnd/build.sh` (`.ci/run` builds them).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use base64::Engine as _;
use lnc_testkit::T;
use lnc_testkit::lnd::{LndRpc, Regtest, regtest, until};
use lnc_testkit::stack::{App, LndTarget, Stack};
use lnd_api::lnrpc;
use lnd_api::routerrpc;
use sha2::Digest as _;

const LNC: &str = env!("CARGO_BIN_EXE_lnc");
const KEYSEND: u64 = 5_482_373_484;

fn alice(net: &Regtest) -> LndTarget {
    LndTarget::of(&net.alice)
}

async fn stack(tag: &str) -> (Arc<Regtest>, Stack) {
    let net = regtest().await;
    let s = Stack::with_lnd(LNC, tag, alice(&net)).await;
    (net, s)
}

async fn bob_invoice(bob: &LndRpc, sat: i64) -> lnrpc::AddInvoiceResponse {
    bob.lightning()
        .add_invoice(lnrpc::Invoice {
            memo: "spend test".into(),
            value: sat,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn invoice_state(bob: &LndRpc, hash: &[u8]) -> lnrpc::invoice::InvoiceState {
    let i = bob
        .lightning()
        .lookup_invoice(lnrpc::PaymentHash {
            r_hash: hash.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    lnrpc::invoice::InvoiceState::try_from(i.state).unwrap()
}

/// Pays through `app`: the final `Payment`, or the node's (or LND's) refusal.
async fn pay(
    app: &App,
    req: routerrpc::SendPaymentRequest,
) -> Result<lnrpc::Payment, tonic::Status> {
    use lnrpc::payment::PaymentStatus;
    let req = routerrpc::SendPaymentRequest {
        timeout_seconds: 30,
        ..req
    };
    let mut s = tokio::time::timeout(T, app.router().send_payment_v2(req))
        .await
        .expect("SendPaymentV2 answered")?
        .into_inner();
    loop {
        let p = tokio::time::timeout(T, s.message())
            .await
            .expect("a payment update")?
            .expect("the stream ended before a final state");
        if p.status != PaymentStatus::InFlight as i32 && p.status != PaymentStatus::Initiated as i32
        {
            return Ok(p);
        }
    }
}

async fn bob_key(bob: &LndRpc) -> Vec<u8> {
    hex::decode(
        bob.lightning()
            .get_info(lnrpc::GetInfoRequest {})
            .await
            .unwrap()
            .into_inner()
            .identity_pubkey,
    )
    .unwrap()
}

/// A route from alice to bob for bob's invoice `inv` of `amt_msat`, built through `app`
/// (BuildRoute with the invoice's CLTV delta and payment address).
async fn route_to_bob(
    app: &App,
    bob: &LndRpc,
    inv: &lnrpc::AddInvoiceResponse,
    amt_msat: i64,
) -> Option<lnrpc::Route> {
    let info = bob
        .lightning()
        .lookup_invoice(lnrpc::PaymentHash {
            r_hash: inv.r_hash.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    app.router()
        .build_route(routerrpc::BuildRouteRequest {
            amt_msat,
            final_cltv_delta: i32::try_from(info.cltv_expiry).unwrap(),
            hop_pubkeys: vec![bob_key(bob).await],
            payment_addr: info.payment_addr,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .route
}

fn invoice_payment(pr: &str, fee_limit_sat: i64) -> routerrpc::SendPaymentRequest {
    routerrpc::SendPaymentRequest {
        payment_request: pr.into(),
        fee_limit_sat,
        ..Default::default()
    }
}

fn succeeded(p: &lnrpc::Payment) -> bool {
    p.status == lnrpc::payment::PaymentStatus::Succeeded as i32
}

/// `lncnode.Budget/Remaining` through the tunnel.
async fn remaining(app: &App) -> lnc_node::spend::service::RemainingResponse {
    let mut grpc = tonic::client::Grpc::new(app.client.clone());
    grpc.ready().await.unwrap();
    let codec =
        tonic_prost::ProstCodec::<(), lnc_node::spend::service::RemainingResponse>::default();
    grpc.unary(
        tonic::Request::new(()),
        http::uri::PathAndQuery::from_static(lnc_node::spend::service::REMAINING_PATH),
        codec,
    )
    .await
    .unwrap()
    .into_inner()
}

fn sat(msat: u64) -> u64 {
    msat / 1000
}

/// Within budget, over budget, the per-payment cap, zero-amount invoices, keysend, fees,
/// a failed payment, refused fund movers, a concurrent race, a live budget change and the
/// audit log — one spend session, in order, each step checked against bob's LND.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spend_session_pays_within_its_budget_on_real_lnd() {
    let (net, env) = stack("spend").await;
    let _node = env.node().await;
    let bob = net.bob.admin().await.unwrap();
    let (id, phrase) = env
        .add(&[
            "--type",
            "spend",
            "--budget",
            "50000sat/day",
            "--max-payment",
            "40000sat",
            "--label",
            "tips",
        ])
        .await;
    let app = App::pair(&env, &phrase).await;
    let r = remaining(&app).await;
    assert_eq!(
        (sat(r.limit_msat), sat(r.left_msat), r.period.as_str()),
        (50_000, 50_000, "day")
    );

    // Within budget: bob's invoice settles; amount + fee (0 on the direct channel) count.
    let inv = bob_invoice(&bob, 10_000).await;
    let p = pay(&app, invoice_payment(&inv.payment_request, 100))
        .await
        .unwrap();
    assert!(succeeded(&p), "{p:?}");
    assert_eq!(
        invoice_state(&bob, &inv.r_hash).await,
        lnrpc::invoice::InvoiceState::Settled
    );
    assert_eq!(sat(remaining(&app).await.left_msat), 40_000);

    // A zero-amount invoice counts the request's amount.
    let inv = bob_invoice(&bob, 0).await;
    let mut req = invoice_payment(&inv.payment_request, 0);
    req.amt = 5_000;
    assert!(succeeded(&pay(&app, req).await.unwrap()));
    assert_eq!(sat(remaining(&app).await.left_msat), 35_000);

    // Keysend counts (the hash is the preimage's; the preimage never reaches the log).
    let bob_key = bob_key(&bob).await;
    let preimage: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(1));
    let mut req = routerrpc::SendPaymentRequest {
        dest: bob_key.clone(),
        amt: 3_000,
        payment_hash: sha2::Sha256::digest(preimage).to_vec(),
        ..Default::default()
    };
    req.dest_custom_records.insert(KEYSEND, preimage.to_vec());
    assert!(succeeded(&pay(&app, req).await.unwrap()));
    assert_eq!(sat(remaining(&app).await.left_msat), 32_000);

    // The fee limit counts: 25,000 + 8,000 is over what is left; bob's invoice stays open.
    let inv = bob_invoice(&bob, 25_000).await;
    let e = pay(&app, invoice_payment(&inv.payment_request, 8_000))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .contains("session budget: 32,000 sat of 50,000 sat left until"),
        "{e:?}"
    );
    assert_eq!(
        invoice_state(&bob, &inv.r_hash).await,
        lnrpc::invoice::InvoiceState::Open
    );
    // With a lower fee limit the same invoice fits.
    assert!(succeeded(
        &pay(&app, invoice_payment(&inv.payment_request, 5_000))
            .await
            .unwrap()
    ));
    assert_eq!(sat(remaining(&app).await.left_msat), 7_000);

    // Over the per-payment cap (checked before what is left).
    let inv = bob_invoice(&bob, 41_000).await;
    let e = pay(&app, invoice_payment(&inv.payment_request, 0))
        .await
        .unwrap_err();
    assert!(e.message().contains("at most 40,000 sat"), "{e:?}");
    assert_eq!(
        invoice_state(&bob, &inv.r_hash).await,
        lnrpc::invoice::InvoiceState::Open
    );

    // A failed payment (bob knows no such hash) releases its reservation.
    let p = pay(
        &app,
        routerrpc::SendPaymentRequest {
            dest: bob_key.clone(),
            amt: 6_000,
            payment_hash: vec![0xab; 32],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        p.status,
        lnrpc::payment::PaymentStatus::Failed as i32,
        "{p:?}"
    );
    let r = remaining(&app).await;
    assert_eq!((sat(r.left_msat), r.reserved_msat), (7_000, 0));

    // Fund movers other than metered payments are refused by the node, whatever the
    // macaroon says.
    let e = app
        .ln()
        .send_coins(lnrpc::SendCoinsRequest {
            addr: "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080".into(),
            amount: 10_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("cannot move on-chain funds"), "{e:?}");
    let e = app
        .ln()
        .open_channel_sync(lnrpc::OpenChannelRequest {
            node_pubkey: bob_key.clone(),
            local_funding_amount: 100_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        e.message().contains("cannot open, fund or close channels"),
        "{e:?}"
    );

    // Ten concurrent payments of 1,000 sat against 7,000 left: exactly seven go out, the
    // three others are refused before any HTLC leaves (their invoices stay open).
    let mut invoices = Vec::new();
    for _ in 0..10 {
        invoices.push(bob_invoice(&bob, 1_000).await);
    }
    let results = futures_util::future::join_all(
        invoices
            .iter()
            .map(|i| pay(&app, invoice_payment(&i.payment_request, 0))),
    )
    .await;
    let ok = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(succeeded))
        .count();
    let refused = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_err_and(|e| e.code() == tonic::Code::ResourceExhausted)
        })
        .count();
    assert_eq!((ok, refused), (7, 3), "{results:?}");
    let mut open = 0;
    for i in &invoices {
        if invoice_state(&bob, &i.r_hash).await == lnrpc::invoice::InvoiceState::Open {
            open += 1;
        }
    }
    assert_eq!(open, 3);
    assert_eq!(remaining(&app).await.left_msat, 0);

    // A live change: the week's budget counts what the day spent.
    let v = env
        .session(&["budget", &id, "--budget", "100000sat/week"])
        .await
        .unwrap();
    assert_eq!(v["budget"]["left_msat"], 50_000_000u64);
    let r = remaining(&app).await;
    assert_eq!((sat(r.left_msat), r.period.as_str()), (50_000, "week"));

    // `lnc session list` shows it; the audit log has every call and payment, no secret.
    let list = env.session(&["list"]).await.unwrap();
    let me = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap();
    assert_eq!(me["budget"]["spent_msat"], 50_000_000u64);
    let log = until("the audit log to hold the race's payments", || async {
        let log = env.session(&["log", &id, "--limit", "1000"]).await.ok()?;
        let entries = log.as_array()?.clone();
        let paid = entries
            .iter()
            .filter(|e| e["status"] == "SUCCEEDED")
            .count();
        (paid >= 11).then_some(entries)
    })
    .await
    .unwrap();
    let text = serde_json::to_string(&log).unwrap();
    assert!(
        !text.contains(&hex::encode(preimage)),
        "the keysend preimage is in the log"
    );
    assert!(!text.contains(&base64::engine::general_purpose::STANDARD.encode(preimage)));
    let first = log.iter().find(|e| e["status"] == "SUCCEEDED").unwrap();
    assert_eq!(first["method"], "/routerrpc.Router/SendPaymentV2");
    assert_eq!(first["amount_msat"], 10_000_000u64);
    assert!(log.iter().any(|e| e["status"] == "FAILED"));
    assert!(
        log.iter()
            .any(|e| e["status"] == "PERMISSION_DENIED"
                && e["method"] == "/lnrpc.Lightning/SendCoins")
    );
    assert!(log.iter().any(|e| {
        e["status"] == "RESOURCE_EXHAUSTED"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("session budget"))
    }));
    let calls = log
        .iter()
        .filter(|e| e["method"] == "/lncnode.Budget/Remaining")
        .count();
    assert!(calls >= 8, "{calls} Remaining calls logged");
}

/// Calls bob's LND by method name (services `lnd-api` does not generate, e.g. invoicesrpc).
async fn bob_call(net: &Regtest, bob: &LndRpc, method: &str, json: &str) -> serde_json::Value {
    let reg = lnd_api::dynamic::Registry::lnd();
    let m = reg.method(method).unwrap();
    let mut grpc = tonic::client::Grpc::new(bob.channel());
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(m.request_from_json(json).unwrap());
    let mac = std::fs::read(net.bob.admin_macaroon()).unwrap();
    req.metadata_mut()
        .insert("macaroon", hex::encode(mac).parse().unwrap());
    let resp = grpc
        .unary(req, m.path().parse().unwrap(), m.codec())
        .await
        .unwrap();
    serde_json::from_str(&m.response_to_json(&resp.into_inner(), false).unwrap()).unwrap()
}

/// A payment in flight when the node dies stays reserved, and the restarted node learns
/// from LND how it ended: bob holds the HTLC (a hold invoice) while the node is killed,
/// settles it, and the node, once back, counts the payment as spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_in_flight_at_a_crash_is_reconciled_on_start() {
    let (net, env) = stack("spend-restart").await;
    let mut node = env.node().await;
    let bob = net.bob.admin().await.unwrap();
    let (id, phrase) = env
        .add(&["--type", "spend", "--budget", "20000sat/total"])
        .await;
    let app = App::pair(&env, &phrase).await;
    let preimage = [0x5a_u8; 32];
    let hash = sha2::Sha256::digest(preimage);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let hold = bob_call(
        &net,
        &bob,
        "invoicesrpc.Invoices.AddHoldInvoice",
        &format!(r#"{{"hash":"{}","value":"4000"}}"#, b64(&hash)),
    )
    .await;
    let pr = hold["payment_request"].as_str().unwrap().to_owned();
    let mut stream = app
        .router()
        .send_payment_v2(routerrpc::SendPaymentRequest {
            payment_request: pr,
            fee_limit_sat: 50,
            timeout_seconds: 60,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // In flight: bob holds the HTLC.
    until("bob to hold the HTLC", || async {
        let i = bob
            .lightning()
            .lookup_invoice(lnrpc::PaymentHash {
                r_hash: hash.to_vec(),
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner();
        (i.state == lnrpc::invoice::InvoiceState::Accepted as i32).then_some(())
    })
    .await
    .unwrap();
    let r = remaining(&app).await;
    assert_eq!((sat(r.reserved_msat), sat(r.left_msat)), (4_050, 15_950));
    node.kill().await;
    drop(stream.message());
    bob_call(
        &net,
        &bob,
        "invoicesrpc.Invoices.SettleInvoice",
        &format!(r#"{{"preimage":"{}"}}"#, b64(&preimage)),
    )
    .await;
    let _node = env.node().await;
    let spent = until("the restarted node to reconcile the payment", || async {
        let s = env.state(&id).await;
        let b = &s["budget"];
        (b["reserved_msat"] == 0).then(|| b["spent_msat"].as_u64().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(spent, 4_000_000);
    let log = env.session(&["log", &id]).await.unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == "SUCCEEDED" && e["amount_msat"] == 4_000_000u64),
        "{log}"
    );
}

/// LND down: a payment whose forward fails stays reserved (the node cannot know LND did not
/// see it), survives a node crash, the node starts while LND is still down (it used to
/// refuse to start), and once LND is back the reconciler learns LND never had the payment
/// and releases it. carol is a spare LND of her own, so killing her disturbs no other test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_reserved_while_lnd_is_down_is_released_once_lnd_is_back() {
    let net = regtest().await;
    let mut carol = net.spare("carol-spend").await.unwrap();
    let env = Stack::with_lnd(LNC, "spend-lnd-down", LndTarget::of(&carol)).await;
    let mut node = env.node().await;
    let (id, phrase) = env
        .add(&["--type", "spend", "--budget", "10000sat/total"])
        .await;
    let app = App::pair(&env, &phrase).await;
    let bob = net.bob.admin().await.unwrap();
    let inv = bob_invoice(&bob, 1_000).await;

    carol.kill().await;
    let e = pay(
        &app,
        routerrpc::SendPaymentRequest {
            payment_request: inv.payment_request.clone(),
            fee_limit_sat: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("LND is unreachable"), "{e:?}");
    let r = remaining(&app).await;
    assert_eq!((sat(r.reserved_msat), sat(r.left_msat)), (1_010, 8_990));

    // A crash, and a start while LND is still down.
    node.kill().await;
    let _node = env.node().await;
    let b = &env.state(&id).await["budget"];
    assert_eq!(b["reserved_msat"], 1_010_000u64, "{b}");

    carol.restart(&net.backend).await.unwrap();
    until("the node to learn LND never had the payment", || async {
        let s = env.state(&id).await;
        let b = &s["budget"];
        (b["reserved_msat"] == 0).then(|| b["spent_msat"].as_u64().unwrap())
    })
    .await
    .map(|spent| assert_eq!(spent, 0))
    .unwrap();
    assert_eq!(
        invoice_state(&bob, &inv.r_hash).await,
        lnrpc::invoice::InvoiceState::Open
    );
}

/// The call rate limit and the stream cap, per session, with clear refusals (lnd-sim: no
/// money moves).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limit_and_stream_cap() {
    let env = Stack::with_lnd_sim(LNC, "spend-limits").await;
    let _node = env.node().await;
    let (_, phrase) = env
        .add(&["--type", "readonly", "--rate-limit", "1", "--burst", "3"])
        .await;
    let app = App::pair(&env, &phrase).await;
    // The burst passes, the next call is refused with when to retry.
    let mut refused = None;
    for _ in 0..4 {
        if let Err(e) = app.ln().get_info(lnrpc::GetInfoRequest {}).await {
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("the fourth call within a second is refused");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("rate limit (1/s)"), "{e:?}");

    // One stream open: the next call is refused until it closes. The stream is open once
    // its response headers are back (lnd-sim sends them at once); opening it in a task beside
    // the probing calls raced them for the one slot.
    let (_, phrase) = env.add(&["--type", "readonly", "--max-streams", "1"]).await;
    let app = App::pair(&env, &phrase).await;
    let stream = tokio::time::timeout(
        T,
        app.ln()
            .subscribe_invoices(lnrpc::InvoiceSubscription::default()),
    )
    .await
    .expect("SubscribeInvoices answered")
    .unwrap();
    let e = app
        .ln()
        .get_info(lnrpc::GetInfoRequest {})
        .await
        .unwrap_err();
    assert!(e.message().contains("at most 1 calls open"), "{e:?}");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    drop(stream);
    until("calls to pass once the stream is closed", || async {
        app.ln().get_info(lnrpc::GetInfoRequest {}).await.ok()
    })
    .await
    .unwrap();
}

/// The CLI user's view (lnd-sim: its invoices are paid by hash): `lnc connect` to a spend
/// session, `lnc call` pays, `lnc status` prints what is left, and `lnc session log` shows
/// the payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_status_shows_the_budget() {
    let env = Stack::with_lnd_sim(LNC, "spend-cli").await;
    let _node = env.node().await;
    let (id, phrase) = env
        .add(&["--type", "spend", "--budget", "5000sat/week"])
        .await;
    env.cli_pair(&phrase, Some("w")).await;
    let inv = env
        .direct_admin()
        .await
        .lightning()
        .add_invoice(lnrpc::Invoice {
            value: 1_200,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let req = format!(
        r#"{{"dest":"{}","amt":"1200","payment_hash":"{}","timeout_seconds":10}}"#,
        base64::engine::general_purpose::STANDARD.encode([2u8; 33]),
        base64::engine::general_purpose::STANDARD.encode(&inv.r_hash),
    );
    let out = env
        .cli(
            &[
                "call",
                "routerrpc.Router.SendPaymentV2",
                &req,
                "--profile",
                "w",
            ],
            "",
        )
        .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("SUCCEEDED"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // By name, with JSON, as any LND method.
    let out = env
        .cli(
            &["call", "lncnode.Budget.Remaining", "{}", "--profile", "w"],
            "",
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["left_msat"].as_str(), v["period"].as_str()),
        (Some("3800000"), Some("week"))
    );
    let out = env.cli(&["status", "--profile", "w"], "").await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("budget: 3,800 sat of 5,000 sat left per week, more from"),
        "{text}"
    );
    // The log is written in batches, off the call path: wait for it.
    until("the payment in the audit log", || async {
        let log = env.session(&["log", &id]).await.ok()?;
        log.as_array()?
            .iter()
            .any(|e| {
                e["status"] == "SUCCEEDED"
                    && e["amount_msat"] == 1_200_000u64
                    && e["payment_hash"] == hex::encode(&inv.r_hash)
            })
            .then_some(())
    })
    .await
    .unwrap();
}

/// The other payment RPCs a budget session may use, each metered against real LND:
/// `SendPaymentSync` (LND's default fee limit counts when the request sets none),
/// `SendToRouteV2` and `SendToRouteSync` (the route's amount and fees), and
/// `lnrpc.SendPayment`'s stream (one payment per call).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[allow(deprecated)] // LND v0.20 deprecates the lnrpc payment calls but serves them: apps use them
async fn every_metered_payment_rpc_on_real_lnd() {
    use lnd_api::lnrpc::SendRequest;
    let (net, env) = stack("spend-rpcs").await;
    let _node = env.node().await;
    let bob = net.bob.admin().await.unwrap();
    let (_, phrase) = env
        .add(&["--type", "spend", "--budget", "10000sat/total"])
        .await;
    let app = App::pair(&env, &phrase).await;
    let sync = async |req: SendRequest| {
        app.ln()
            .send_payment_sync(req)
            .await
            .map(tonic::Response::into_inner)
    };
    let fixed = |sat| {
        Some(lnrpc::FeeLimit {
            limit: Some(lnrpc::fee_limit::Limit::Fixed(sat)),
        })
    };

    // SendPaymentSync, with a fee limit.
    let inv = bob_invoice(&bob, 2_000).await;
    let r = sync(SendRequest {
        payment_request: inv.payment_request.clone(),
        fee_limit: fixed(10),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(r.payment_error.is_empty(), "{r:?}");
    assert_eq!(
        invoice_state(&bob, &inv.r_hash).await,
        lnrpc::invoice::InvoiceState::Settled
    );
    assert_eq!(sat(remaining(&app).await.left_msat), 8_000);

    // SendToRouteV2 along a route built for bob's invoice.
    let inv = bob_invoice(&bob, 3_000).await;
    let route = route_to_bob(&app, &bob, &inv, 3_000_000).await;
    let attempt = app
        .router()
        .send_to_route_v2(routerrpc::SendToRouteRequest {
            payment_hash: inv.r_hash.clone(),
            route,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        attempt.status,
        lnrpc::htlc_attempt::HtlcStatus::Succeeded as i32,
        "{attempt:?}"
    );
    assert_eq!(sat(remaining(&app).await.left_msat), 5_000);

    // SendToRouteSync (lnrpc, deprecated in LND v0.20, still served) along another built route: 1,000.
    let inv = bob_invoice(&bob, 1_000).await;
    let route = route_to_bob(&app, &bob, &inv, 1_000_000).await;
    let r = app
        .ln()
        .send_to_route_sync(lnrpc::SendToRouteRequest {
            payment_hash: inv.r_hash.clone(),
            route,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.payment_error.is_empty(), "{r:?}");
    assert_eq!(
        invoice_state(&bob, &inv.r_hash).await,
        lnrpc::invoice::InvoiceState::Settled
    );
    assert_eq!(sat(remaining(&app).await.left_msat), 4_000);

    // Without a fee limit LND may pay 5 % in fees: 6,000 sat commits 6,300, over the 4,000
    // left, so it is refused; bob's invoice stays open.
    let inv = bob_invoice(&bob, 6_000).await;
    let e = sync(SendRequest {
        payment_request: inv.payment_request.clone(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(e.message().contains("needs 6,300 sat"), "{e:?}");
    assert_eq!(
        invoice_state(&bob, &inv.r_hash).await,
        lnrpc::invoice::InvoiceState::Open
    );

    // lnrpc.SendPayment: a bidirectional stream, one payment in it.
    let inv = bob_invoice(&bob, 1_000).await;
    let (tx, rx) = futures_channel::mpsc::unbounded::<SendRequest>();
    tx.unbounded_send(SendRequest {
        payment_request: inv.payment_request.clone(),
        fee_limit: fixed(0),
        ..Default::default()
    })
    .unwrap();
    let mut answers = app.ln().send_payment(rx).await.unwrap().into_inner();
    let r = tokio::time::timeout(T, answers.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(r.payment_error.is_empty(), "{r:?}");
    drop(tx);
    let r = remaining(&app).await;
    assert_eq!((sat(r.left_msat), r.reserved_msat), (3_000, 0));
}

/// lightning-node-connect's own Go client (the code lnc-web runs) paying through a spend
/// session on our node, in front of real LND: the first payment goes out, the second is
/// refused with the budget's words, as grpc-go reports a server stream's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_go_client_pays_within_a_budget() {
    use lnc_testkit::go::{GoProc, field};
    let (net, env) = stack("spend-go").await;
    let _node = env.node().await;
    let bob = net.bob.admin().await.unwrap();
    let (_, phrase) = env
        .add(&["--type", "spend", "--budget", "3000sat/day"])
        .await;
    let a = bob_invoice(&bob, 2_000).await;
    let b = bob_invoice(&bob, 2_000).await;
    let state = env.dir.join("go-app.state");
    let pay = format!("{},{}", a.payment_request, b.payment_request);
    let mut app = GoProc::spawn(
        "go-lnc-app",
        &[
            "--mailbox",
            &env.relay,
            "--mailbox-tls",
            "insecure",
            "--state",
            state.to_str().unwrap(),
            "--phrase",
            &phrase,
            "--pay",
            &pay,
            "--fee-limit-sat",
            "10",
        ],
    );
    let mut next = async || {
        tokio::time::timeout(T, app.expect("PAYMENT"))
            .await
            .expect("the Go app reports a payment")
            .unwrap()
    };
    let first = next().await;
    assert_eq!(
        field(&first, "status").as_deref(),
        Some("SUCCEEDED"),
        "{first}"
    );
    assert_eq!(
        field(&first, "value_msat").as_deref(),
        Some("2000000"),
        "{first}"
    );
    let second = next().await;
    assert_eq!(
        field(&second, "status").as_deref(),
        Some("REFUSED"),
        "{second}"
    );
    assert_eq!(
        field(&second, "code").as_deref(),
        Some("ResourceExhausted"),
        "{second}"
    );
    assert!(
        field(&second, "msg")
            .is_some_and(|m| m.contains("session budget: 1,000 sat of 3,000 sat left")),
        "{second}"
    );
    tokio::time::timeout(T, app.expect("DONE"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        invoice_state(&bob, &a.r_hash).await,
        lnrpc::invoice::InvoiceState::Settled
    );
    assert_eq!(
        invoice_state(&bob, &b.r_hash).await,
        lnrpc::invoice::InvoiceState::Open
    );
}
