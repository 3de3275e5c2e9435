//! Integration tests: a real lnd-sim on 127.0.0.1:0 and a real tonic client over TLS that
//! trusts the written `tls.cert`, sending the macaroon files as LND clients do.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt as _;
use lnc_core::macaroon::Macaroon;
use lnd_api::lnrpc::{self, lightning_client::LightningClient};
use lnd_api::routerrpc::{self, router_client::RouterClient};
use lnd_sim::{Config, LndSim, LndSimHandle, MacaroonKind};
use tonic::transport::Channel;
fn temp_dir() -> PathBuf {
    lnc_testkit::dirs::fresh_path("lnd-sim")
}

async fn start_in(dir: PathBuf) -> LndSimHandle {
    LndSim::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir,
    })
    .await
    .unwrap()
}

async fn start() -> LndSimHandle {
    start_in(temp_dir()).await
}

/// A TLS channel pinned to the sim's `tls.cert` (which, like LND's, is its own CA).
async fn channel(sim: &LndSimHandle) -> Channel {
    lnc_testkit::lnd::LndRpc::connect(&sim.addr().to_string(), &sim.tls_cert_path(), b"")
        .await
        .unwrap()
        .channel()
}

fn mac_hex(sim: &LndSimHandle, kind: MacaroonKind) -> String {
    hex::encode(std::fs::read(sim.macaroon_path(kind)).unwrap())
}

fn req<T>(msg: T, mac: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("macaroon", mac.parse().unwrap());
    r
}

async fn next<T>(s: &mut tonic::Streaming<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("stream timed out")
        .expect("stream ended")
        .expect("stream error")
}

fn pay(payment_request: &str) -> routerrpc::SendPaymentRequest {
    routerrpc::SendPaymentRequest {
        payment_request: payment_request.into(),
        timeout_seconds: 30,
        ..Default::default()
    }
}

#[tokio::test]
async fn get_info_with_admin_and_balances() {
    let sim = start().await;
    let mut c = LightningClient::new(channel(&sim).await);
    let admin = mac_hex(&sim, MacaroonKind::Admin);
    let info = c
        .get_info(req(lnrpc::GetInfoRequest {}, &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.alias, "lnd-sim");
    assert_eq!(info.identity_pubkey, sim.identity_pubkey());
    assert_eq!(info.identity_pubkey.len(), 66);
    assert!(info.synced_to_chain && info.synced_to_graph);
    let chans = c
        .list_channels(req(lnrpc::ListChannelsRequest::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(chans.channels.len(), 2);
    let wb = c
        .wallet_balance(req(lnrpc::WalletBalanceRequest::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(wb.confirmed_balance > 0);
    let cb = c
        .channel_balance(req(lnrpc::ChannelBalanceRequest::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        cb.local_balance.unwrap().sat as i64,
        chans.channels.iter().map(|c| c.local_balance).sum::<i64>()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn readonly_is_refused_add_invoice() {
    let sim = start().await;
    let mut c = LightningClient::new(channel(&sim).await);
    let ro = mac_hex(&sim, MacaroonKind::ReadOnly);
    c.get_info(req(lnrpc::GetInfoRequest {}, &ro))
        .await
        .unwrap();
    let err = c
        .add_invoice(req(lnrpc::Invoice::default(), &ro))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unknown);
    assert_eq!(err.message(), "permission denied");
}

#[tokio::test]
async fn invoice_macaroon_adds_invoices_but_cannot_pay() {
    let sim = start().await;
    let ch = channel(&sim).await;
    let mut c = LightningClient::new(ch.clone());
    let inv_mac = mac_hex(&sim, MacaroonKind::Invoice);
    let added = c
        .add_invoice(req(
            lnrpc::Invoice {
                memo: "coffee".into(),
                value: 1000,
                ..Default::default()
            },
            &inv_mac,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.r_hash.len(), 32);
    assert_eq!(added.add_index, 1);
    let looked = c
        .lookup_invoice(req(
            lnrpc::PaymentHash {
                r_hash: added.r_hash.clone(),
                ..Default::default()
            },
            &inv_mac,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(looked.memo, "coffee");
    assert_eq!(looked.value_msat, 1_000_000);
    let err = RouterClient::new(ch)
        .send_payment_v2(req(pay(&added.payment_request), &inv_mac))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "permission denied");
    let err = c
        .get_info(req(lnrpc::GetInfoRequest {}, &inv_mac))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "permission denied");
}

#[tokio::test]
async fn subscribe_invoices_sees_add_and_settle() {
    let sim = start().await;
    let ch = channel(&sim).await;
    let mut c = LightningClient::new(ch.clone());
    let admin = mac_hex(&sim, MacaroonKind::Admin);
    let mut s1 = c
        .subscribe_invoices(req(lnrpc::InvoiceSubscription::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    let mut s2 = c
        .subscribe_invoices(req(lnrpc::InvoiceSubscription::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    let added = c
        .add_invoice(req(
            lnrpc::Invoice {
                value: 21,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    for s in [&mut s1, &mut s2] {
        let ev = next(s).await;
        assert_eq!(ev.r_hash, added.r_hash);
        assert_eq!(ev.state, lnrpc::invoice::InvoiceState::Open as i32);
        assert_eq!(ev.add_index, 1);
    }
    // Paying our own invoice settles it.
    let mut updates = RouterClient::new(ch)
        .send_payment_v2(req(pay(&added.payment_request), &admin))
        .await
        .unwrap()
        .into_inner();
    let mut last = next(&mut updates).await;
    while last.status == lnrpc::payment::PaymentStatus::InFlight as i32 {
        last = next(&mut updates).await;
    }
    assert_eq!(last.status, lnrpc::payment::PaymentStatus::Succeeded as i32);
    for s in [&mut s1, &mut s2] {
        let ev = next(s).await;
        assert_eq!(ev.r_hash, added.r_hash);
        assert_eq!(ev.state, lnrpc::invoice::InvoiceState::Settled as i32);
        assert_eq!(ev.settle_index, 1);
        assert_eq!(ev.amt_paid_sat, 21);
        assert_eq!(hex::encode(&ev.r_preimage), last.payment_preimage);
    }
    // A second payment of the same invoice is refused as LND does.
    // The test harness's settle hook reaches streams too, and add_index replays the backlog.
    let second = c
        .add_invoice(req(lnrpc::Invoice::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(sim.settle_invoice(&second.r_hash).unwrap());
    assert!(sim.settle_invoice(&second.r_hash).is_err());
    assert!(!sim.settle_invoice(&[0u8; 32]).unwrap());
    let mut replay = c
        .subscribe_invoices(req(
            lnrpc::InvoiceSubscription {
                add_index: 1,
                settle_index: 1,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let added2 = next(&mut replay).await;
    assert_eq!((added2.add_index, added2.state), (2, 0));
    let settled2 = next(&mut replay).await;
    assert_eq!((settled2.settle_index, settled2.state), (2, 1));
    for s in [&mut s1, &mut s2] {
        assert_eq!(next(s).await.add_index, 2);
        assert_eq!(next(s).await.settle_index, 2);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn paying_unknown_or_paid_invoice_fails_like_lnd() {
    let sim = start().await;
    let ch = channel(&sim).await;
    let admin = mac_hex(&sim, MacaroonKind::Admin);
    let mut r = RouterClient::new(ch.clone());
    let foreign = lnd_sim::service::encode_payment_request(5000, &[7u8; 32]);
    let mut updates = r
        .send_payment_v2(req(pay(&foreign), &admin))
        .await
        .unwrap()
        .into_inner();
    let mut last = next(&mut updates).await;
    while last.status == lnrpc::payment::PaymentStatus::InFlight as i32 {
        last = next(&mut updates).await;
    }
    assert_eq!(last.status, lnrpc::payment::PaymentStatus::Failed as i32);
    assert_eq!(
        last.failure_reason,
        lnrpc::PaymentFailureReason::FailureReasonNoRoute as i32
    );
    let added = LightningClient::new(ch)
        .add_invoice(req(lnrpc::Invoice::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(sim.settle_invoice(&added.r_hash).unwrap());
    let err = r
        .send_payment_v2(req(pay(&added.payment_request), &admin))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "invoice is already paid");
    let err = r
        .send_payment_v2(req(pay("lnbc1garbage"), &admin))
        .await
        .unwrap_err();
    assert!(err.message().starts_with("invalid payment request"));
}

#[tokio::test]
async fn baked_macaroon_works_until_its_root_key_is_deleted() {
    let sim = start().await;
    let mut c = LightningClient::new(channel(&sim).await);
    let admin = mac_hex(&sim, MacaroonKind::Admin);
    let baked = c
        .bake_macaroon(req(
            lnrpc::BakeMacaroonRequest {
                permissions: vec![
                    lnrpc::MacaroonPermission {
                        entity: "uri".into(),
                        action: "/lnrpc.Lightning/GetInfo".into(),
                    },
                    lnrpc::MacaroonPermission {
                        entity: "offchain".into(),
                        action: "read".into(),
                    },
                ],
                root_key_id: 4242,
                allow_external_permissions: false,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .macaroon;
    let id = Macaroon::from_hex(&baked).unwrap().lnd_id().unwrap();
    assert_eq!(id.storage_id, b"4242");
    // uri: op grants exactly GetInfo; offchain:read grants ListChannels.
    c.get_info(req(lnrpc::GetInfoRequest {}, &baked))
        .await
        .unwrap();
    c.list_channels(req(lnrpc::ListChannelsRequest::default(), &baked))
        .await
        .unwrap();
    let err = c
        .wallet_balance(req(lnrpc::WalletBalanceRequest::default(), &baked))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "permission denied");
    // LND validates entities unless external permissions are allowed.
    let err = c
        .bake_macaroon(req(
            lnrpc::BakeMacaroonRequest {
                permissions: vec![lnrpc::MacaroonPermission {
                    entity: "loop".into(),
                    action: "read".into(),
                }],
                root_key_id: 4243,
                allow_external_permissions: false,
            },
            &admin,
        ))
        .await
        .unwrap_err();
    assert!(
        err.message()
            .starts_with("invalid permission entity. supported actions are"),
        "{err:?}"
    );
    let deleted = c
        .delete_macaroon_id(req(
            lnrpc::DeleteMacaroonIdRequest { root_key_id: 4242 },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
    let err = c
        .get_info(req(lnrpc::GetInfoRequest {}, &baked))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "cannot retrieve macaroon: cannot get macaroon: root key with id 4242 doesn't exist"
    );
    let err = c
        .delete_macaroon_id(req(
            lnrpc::DeleteMacaroonIdRequest { root_key_id: 0 },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "the specified ID cannot be deleted");
}

#[tokio::test]
async fn expired_tampered_and_missing_macaroons_are_refused() {
    let sim = start().await;
    let mut c = LightningClient::new(channel(&sim).await);
    let admin = mac_hex(&sim, MacaroonKind::Admin);
    let mut expired = Macaroon::from_hex(&admin).unwrap();
    expired
        .add_first_party_caveat(b"time-before 2000-01-01T00:00:00Z")
        .unwrap();
    let err = c
        .get_info(req(lnrpc::GetInfoRequest {}, &expired.to_hex()))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "caveat \"time-before 2000-01-01T00:00:00Z\" not satisfied: macaroon has expired"
    );
    let mut fresh = Macaroon::from_hex(&admin).unwrap();
    fresh
        .add_first_party_caveat(b"time-before 2999-01-01T00:00:00Z")
        .unwrap();
    c.get_info(req(lnrpc::GetInfoRequest {}, &fresh.to_hex()))
        .await
        .unwrap();
    // Dropping the caveat (re-using the restricted signature) breaks the chain.
    let forged = Macaroon::from_parts(
        fresh.location().to_vec(),
        fresh.identifier().to_vec(),
        vec![],
        fresh.signature().clone(),
    );
    let err = c
        .get_info(req(lnrpc::GetInfoRequest {}, &forged.to_hex()))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "verification failed: signature mismatch after caveat verification"
    );
    // LND's IP lock caveats are checked against the TCP peer.
    let mut locked = Macaroon::from_hex(&admin).unwrap();
    locked.add_first_party_caveat(b"ipaddr 127.0.0.1").unwrap();
    c.get_info(req(lnrpc::GetInfoRequest {}, &locked.to_hex()))
        .await
        .unwrap();
    let mut elsewhere = Macaroon::from_hex(&admin).unwrap();
    elsewhere
        .add_first_party_caveat(b"ipaddr 10.1.2.3")
        .unwrap();
    let err = c
        .get_info(req(lnrpc::GetInfoRequest {}, &elsewhere.to_hex()))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "caveat \"ipaddr 10.1.2.3\" not satisfied: macaroon locked to different IP address"
    );
    let err = c
        .get_info(tonic::Request::new(lnrpc::GetInfoRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unknown);
    assert_eq!(err.message(), "expected 1 macaroon, got 0");
    let mut two = req(lnrpc::GetInfoRequest {}, &admin);
    two.metadata_mut()
        .append("macaroon", admin.parse().unwrap());
    let err = c.get_info(two).await.unwrap_err();
    assert_eq!(err.message(), "expected 1 macaroon, got 2");
}

#[tokio::test]
async fn check_macaroon_permissions_and_list_permissions() {
    let sim = start().await;
    let mut c = LightningClient::new(channel(&sim).await);
    let admin = mac_hex(&sim, MacaroonKind::Admin);
    let ro_bytes = std::fs::read(sim.macaroon_path(MacaroonKind::ReadOnly)).unwrap();
    let check = |perms: &[(&str, &str)], method: &str| lnrpc::CheckMacPermRequest {
        macaroon: ro_bytes.clone(),
        permissions: perms
            .iter()
            .map(|(e, a)| lnrpc::MacaroonPermission {
                entity: (*e).into(),
                action: (*a).into(),
            })
            .collect(),
        full_method: method.into(),
        check_default_perms_from_full_method: false,
    };
    let ok = c
        .check_macaroon_permissions(req(
            check(&[("info", "read")], "/lnrpc.Lightning/GetInfo"),
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.valid);
    let err = c
        .check_macaroon_permissions(req(
            check(&[("invoices", "write")], "/lnrpc.Lightning/AddInvoice"),
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(err.message(), "permission denied");
    let mut by_method = check(&[], "/lnrpc.Lightning/WalletBalance");
    by_method.check_default_perms_from_full_method = true;
    assert!(
        c.check_macaroon_permissions(req(by_method, &admin))
            .await
            .unwrap()
            .into_inner()
            .valid
    );

    let list = c
        .list_permissions(req(lnrpc::ListPermissionsRequest {}, &admin))
        .await
        .unwrap()
        .into_inner();
    for (method, ops) in lnd_sim::perms::SERVED_PERMISSIONS {
        let got = &list.method_permissions[*method].permissions;
        let got: Vec<_> = got
            .iter()
            .map(|p| (p.entity.as_str(), p.action.as_str()))
            .collect();
        assert_eq!(&got, ops, "{method}");
    }
}

#[tokio::test]
async fn restart_keeps_macaroons_and_identity() {
    let dir = temp_dir();
    let sim = start_in(dir.clone()).await;
    let admin = mac_hex(&sim, MacaroonKind::Admin);
    let id = sim.identity_pubkey();
    sim.shutdown().await;
    let sim = start_in(dir).await;
    assert_eq!(mac_hex(&sim, MacaroonKind::Admin), admin);
    let mut c = LightningClient::new(channel(&sim).await);
    let info = c
        .get_info(req(lnrpc::GetInfoRequest {}, &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.identity_pubkey, id);
}
