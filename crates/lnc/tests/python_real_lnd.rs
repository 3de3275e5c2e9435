//! The Python package against a real LND (#20): the wheel's `lnc` module, in a venv whose
//! interpreter is `$LNC_PYTHON`, pairs with a spend session of `lnc node` in front of alice
//! on the regtest network, reads LND, makes an invoice that bob pays, pays bob within the
//! session's budget (SendPaymentV2's stream, then SendPaymentSync by name) and asks the node
//! what is left; a second process reconnects from the profile alone (KK) and sees the
//! invoice settled.
//!
//! Ignored by default: it needs the wheel installed, which `.ci/run` builds beside the
//! tests; its Python step runs `LNC_PYTHON=… cargo test --workspace --test python_real_lnd --
//! --ignored`.
#![allow(clippy::unwrap_used, missing_docs)]

use lnc_testkit::T;
use lnc_testkit::lnd::regtest;
use lnc_testkit::stack::{LndTarget, Stack};
use lnd_api::{lnrpc, routerrpc};

const LNC: &str = env!("CARGO_BIN_EXE_lnc");

const PAIR: &str = r#"
import json, sys, lnc
phrase, relay, home, bob_invoice, bob_invoice2 = sys.argv[1:6]
with lnc.pair(phrase, mailbox=relay, insecure=True, password="pw", profile="regtest", home=home) as c:
    info = c.call("lnrpc.Lightning.GetInfo", {})
    inv = c.call("lnrpc.Lightning.AddInvoice", {"memo": "from python", "value": 1500})
    final = None
    for p in c.subscribe("routerrpc.Router.SendPaymentV2",
                         {"payment_request": bob_invoice, "fee_limit_sat": 10, "timeout_seconds": 30}):
        if p["status"] in ("SUCCEEDED", "FAILED"):
            final = p["status"]
            break
    # By name: deprecated in LND v0.20, still served, and in lnc-web's API.
    sync = c.call("lnrpc.Lightning.SendPaymentSync",
                  {"payment_request": bob_invoice2, "fee_limit": {"fixed": 10}})
    left = c.call("lncnode.Budget.Remaining")["left_msat"]
    print(json.dumps({"pubkey": info["identity_pubkey"], "payment_request": inv["payment_request"],
                      "r_hash": inv["r_hash"], "paid": final, "sync_error": sync["payment_error"],
                      "left_msat": left}))
"#;

const RECONNECT: &str = r#"
import base64, json, sys, lnc
home, r_hash = sys.argv[1:3]
with lnc.connect(profile="regtest", password="pw", home=home) as c:
    inv = c.call("lnrpc.Lightning.LookupInvoice", {"r_hash_str": base64.b64decode(r_hash).hex()})
    print(json.dumps({"state": inv["state"], "amt_paid_sat": inv["amt_paid_sat"]}))
"#;

async fn python(script: &str, args: &[&str]) -> serde_json::Value {
    let py = std::env::var("LNC_PYTHON")
        .expect("LNC_PYTHON: a python with the lnc wheel installed (.ci/run sets it)");
    let out = tokio::time::timeout(
        T,
        tokio::process::Command::new(py)
            .arg("-c")
            .arg(script)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python script ends")
    .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the Python wheel: LNC_PYTHON (run by .ci/run's Python step)"]
async fn python_pairs_pays_and_reconnects_on_real_lnd() {
    let net = regtest().await;
    let env = Stack::with_lnd(LNC, "python-lnd", LndTarget::of(&net.alice)).await;
    let _node = env.node().await;
    let (_, phrase) = env
        .add(&["--type", "spend", "--budget", "10000sat/day"])
        .await;
    let bob = net.bob.admin().await.unwrap();
    let invoice = async |value| {
        bob.lightning()
            .add_invoice(lnrpc::Invoice {
                value,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    };
    let bob_inv = invoice(2_000).await;
    let bob_inv2 = invoice(1_000).await;
    let home = env.dir.join("py-home");
    let v = python(
        PAIR,
        &[
            &phrase,
            &env.relay,
            home.to_str().unwrap(),
            &bob_inv.payment_request,
            &bob_inv2.payment_request,
        ],
    )
    .await;
    let alice = net.alice.admin().await.unwrap();
    let alice_key = alice
        .lightning()
        .get_info(lnrpc::GetInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .identity_pubkey;
    assert_eq!(v["pubkey"], alice_key.as_str(), "{v}");
    assert_eq!(v["paid"], "SUCCEEDED", "{v}");
    assert_eq!(v["sync_error"], "", "{v}");
    assert_eq!(v["left_msat"], "7000000", "{v}");

    // bob pays the invoice Python made.
    let mut s = bob
        .router()
        .send_payment_v2(routerrpc::SendPaymentRequest {
            payment_request: v["payment_request"].as_str().unwrap().into(),
            timeout_seconds: 30,
            fee_limit_sat: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    loop {
        let p = tokio::time::timeout(T, s.message())
            .await
            .unwrap()
            .unwrap()
            .expect("a final state");
        if p.status == lnrpc::payment::PaymentStatus::Succeeded as i32 {
            break;
        }
        assert_ne!(
            p.status,
            lnrpc::payment::PaymentStatus::Failed as i32,
            "{p:?}"
        );
    }

    let v = python(
        RECONNECT,
        &[home.to_str().unwrap(), v["r_hash"].as_str().unwrap()],
    )
    .await;
    assert_eq!(v["state"], "SETTLED", "{v}");
    assert_eq!(v["amt_paid_sat"], "1500", "{v}");
}
