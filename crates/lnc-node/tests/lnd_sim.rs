//! Integration: session creation and revocation against a real lnd-sim on 127.0.0.1:0, over
//! TLS with macaroons. The baked session macaroons are then used directly against lnd-sim to
//! prove LND enforces each session type's permissions, its root key ID and its revocation.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use lnc_core::macaroon::{Macaroon, Op};
use lnc_node::lnd::{Lnd, LndError};
use lnc_node::session::SessionType;
use lnc_node::{
    NewSession, RevokeReason, SessionError, SessionState, SessionStore, create_session,
    revoke_session,
};
use lnc_testkit::dirs::fresh_path as temp_dir;
use lnd_api::lnrpc;
use lnd_sim::{Config, LndSim, LndSimHandle, MacaroonKind};

async fn start() -> (LndSimHandle, Lnd, SessionStore) {
    let sim = LndSim::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: temp_dir("sim"),
    })
    .await
    .unwrap();
    let lnd = Lnd::connect(
        &sim.addr().to_string(),
        &sim.tls_cert_path(),
        &sim.macaroon_path(MacaroonKind::Admin),
    )
    .await
    .unwrap();
    let store = SessionStore::open(&temp_dir("store")).unwrap();
    (sim, lnd, store)
}

/// A request carrying a session's macaroon, as the LNC client sends it (the auth data's hex).
fn with_auth<T>(msg: T, auth_data: &str) -> tonic::Request<T> {
    let hex = auth_data.strip_prefix("Macaroon: ").unwrap();
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("macaroon", hex.parse().unwrap());
    r
}

async fn get_info(lnd: &Lnd, auth: &str) -> Result<lnrpc::GetInfoResponse, tonic::Status> {
    lnd.lightning()
        .get_info(with_auth(lnrpc::GetInfoRequest {}, auth))
        .await
        .map(|r| r.into_inner())
}

async fn add_invoice(lnd: &Lnd, auth: &str) -> Result<lnrpc::AddInvoiceResponse, tonic::Status> {
    lnd.lightning()
        .add_invoice(with_auth(
            lnrpc::Invoice {
                memo: "coffee".into(),
                value: 1000,
                ..Default::default()
            },
            auth,
        ))
        .await
        .map(|r| r.into_inner())
}

fn params(label: &str, t: SessionType) -> NewSession {
    NewSession::new(label, t, "127.0.0.1:1")
}

#[tokio::test]
async fn session_types_are_enforced_by_lnd() {
    let (sim, lnd, store) = start().await;
    let now = SystemTime::now();

    let ro = create_session(&lnd, &store, params("ro", SessionType::ReadOnly), now)
        .await
        .unwrap();
    assert_eq!(ro.session.state, SessionState::Created);
    assert!(ro.expose_auth_data().starts_with("Macaroon: "));
    assert_eq!(ro.expose_phrase().expose_words().len(), 10);
    assert!(!format!("{ro:?}").contains(ro.expose_auth_data()));
    get_info(&lnd, ro.expose_auth_data()).await.unwrap();
    let err = add_invoice(&lnd, ro.expose_auth_data()).await.unwrap_err();
    assert_eq!(err.message(), "permission denied");

    let inv = create_session(&lnd, &store, params("pos", SessionType::InvoiceOnly), now)
        .await
        .unwrap();
    add_invoice(&lnd, inv.expose_auth_data()).await.unwrap();
    get_info(&lnd, inv.expose_auth_data()).await.unwrap();
    let err = lnd
        .lightning()
        .list_channels(with_auth(
            lnrpc::ListChannelsRequest::default(),
            inv.expose_auth_data(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "permission denied");

    let admin = create_session(&lnd, &store, params("admin", SessionType::Admin), now)
        .await
        .unwrap();
    add_invoice(&lnd, admin.expose_auth_data()).await.unwrap();
    get_info(&lnd, admin.expose_auth_data()).await.unwrap();

    let custom = create_session(
        &lnd,
        &store,
        params(
            "custom",
            SessionType::Custom(vec![Op::uri("/lnrpc.Lightning/GetInfo")]),
        ),
        now,
    )
    .await
    .unwrap();
    get_info(&lnd, custom.expose_auth_data()).await.unwrap();
    add_invoice(&lnd, custom.expose_auth_data())
        .await
        .unwrap_err();

    // Stored, with the litd macaroon layout: root key ID 0xFFEEDDCC ‖ session ID, and a
    // time-before caveat at the expiry.
    let all = store.list().unwrap();
    assert_eq!(all.len(), 4);
    for s in &all {
        let mac = Macaroon::decode(s.macaroon_bytes()).unwrap();
        let id = mac.lnd_id().unwrap();
        assert_eq!(id.session_id(), Some(s.id.0));
        assert_eq!(id.root_key_id_u64(), Some(s.macaroon_root_key_id));
        assert_eq!(s.macaroon_root_key_id >> 32, 0xFFEE_DDCC);
        let caveats: Vec<String> = mac
            .first_party_conditions()
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert_eq!(caveats.len(), 1);
        assert!(caveats[0].starts_with("time-before "), "{caveats:?}");
        assert_eq!(
            s.expiry.duration_since(s.created_at).unwrap(),
            Duration::from_secs(90 * 24 * 3600)
        );
        assert_eq!(
            s.first_connection_deadline
                .duration_since(s.created_at)
                .unwrap(),
            Duration::from_secs(600)
        );
    }
    let reread = store.get(ro.session.id).unwrap();
    assert_eq!(&*reread.auth_data(), ro.expose_auth_data());
    assert_eq!(
        reread.expose_pairing_phrase().unwrap().to_phrase_string(),
        ro.expose_phrase().to_phrase_string()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn revocation_deletes_the_root_key_in_lnd() {
    let (sim, lnd, store) = start().await;
    let now = SystemTime::now();
    let a = create_session(&lnd, &store, params("a", SessionType::ReadOnly), now)
        .await
        .unwrap();
    let b = create_session(&lnd, &store, params("b", SessionType::ReadOnly), now)
        .await
        .unwrap();
    get_info(&lnd, a.expose_auth_data()).await.unwrap();

    let s = revoke_session(&lnd, &store, a.session.id, RevokeReason::User, now)
        .await
        .unwrap();
    assert_eq!(
        s.state,
        SessionState::Revoked {
            reason: RevokeReason::User
        }
    );
    assert_eq!(
        store.get(a.session.id).unwrap().state,
        SessionState::Revoked {
            reason: RevokeReason::User
        }
    );
    // The revoked session's macaroon no longer verifies; the other session is untouched.
    get_info(&lnd, a.expose_auth_data()).await.unwrap_err();
    get_info(&lnd, b.expose_auth_data()).await.unwrap();
    // Repeating a revocation is harmless (retry after LND was down).
    revoke_session(&lnd, &store, a.session.id, RevokeReason::User, now)
        .await
        .unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn creation_refuses_bad_parameters() {
    let (sim, lnd, store) = start().await;
    let now = SystemTime::now();
    let mut p = params("x", SessionType::ReadOnly);
    p.expiry = Some(Duration::ZERO);
    assert!(matches!(
        create_session(&lnd, &store, p, now).await,
        Err(SessionError::Invalid(_))
    ));
    let err = create_session(&lnd, &store, params("x", SessionType::Custom(vec![])), now)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least one permission"), "{err}");
    assert!(store.list().unwrap().is_empty());

    // A macaroon without macaroon:generate cannot bake: LND's refusal is reported.
    let ro_lnd = Lnd::connect(
        &format!("localhost:{}", sim.addr().port()),
        &sim.tls_cert_path(),
        &sim.macaroon_path(MacaroonKind::ReadOnly),
    )
    .await
    .unwrap();
    let err = create_session(&ro_lnd, &store, params("x", SessionType::ReadOnly), now)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        SessionError::Lnd(LndError::Rpc {
            method: "BakeMacaroon",
            ..
        })
    ));
    assert!(store.list().unwrap().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn connect_reports_missing_files() {
    let err = Lnd::connect(
        "127.0.0.1:1",
        &PathBuf::from("/nonexistent/tls.cert"),
        &PathBuf::from("/nonexistent/admin.macaroon"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LndError::File { .. }));
    assert!(err.to_string().contains("admin.macaroon"), "{err}");
}

#[tokio::test]
async fn sweep_ends_sessions_and_their_macaroons() {
    let (sim, lnd, store) = start().await;
    let now = SystemTime::now();
    let unpaired = create_session(&lnd, &store, params("late", SessionType::ReadOnly), now)
        .await
        .unwrap();
    let paired = create_session(&lnd, &store, params("paired", SessionType::ReadOnly), now)
        .await
        .unwrap();
    let client = lnc_core::keys::SecretKey::generate(&mut rand_core::UnwrapErr(getrandom::SysRng))
        .public_key();
    assert!(
        store
            .get(paired.session.id)
            .unwrap()
            .expose_pairing_phrase()
            .is_some()
    );
    store
        .record_pairing(paired.session.id, &client, now)
        .unwrap();
    // Once paired, the phrase is never shown again.
    assert!(
        store
            .get(paired.session.id)
            .unwrap()
            .expose_pairing_phrase()
            .is_none()
    );

    // Ten minutes later (sweep takes the time as a parameter): the unpaired session missed
    // its first-connection deadline; its macaroon is deleted in LND.
    let ended = lnc_node::sweep_sessions(&lnd, &store, now + Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].0.id, unpaired.session.id);
    assert!(ended[0].1.is_ok());
    assert_eq!(
        ended[0].0.state,
        SessionState::Revoked {
            reason: RevokeReason::FirstConnectionDeadline
        }
    );
    get_info(&lnd, unpaired.expose_auth_data())
        .await
        .unwrap_err();
    get_info(&lnd, paired.expose_auth_data()).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn time_before_caveat_is_enforced_by_lnd() {
    let (sim, lnd, store) = start().await;
    // Created "two days ago" with a one-day lifetime: LND (wall clock) refuses the macaroon.
    let past = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    let mut p = params("old", SessionType::ReadOnly);
    p.expiry = Some(Duration::from_secs(24 * 3600));
    let old = create_session(&lnd, &store, p, past).await.unwrap();
    let err = get_info(&lnd, old.expose_auth_data()).await.unwrap_err();
    assert!(err.message().contains("macaroon has expired"), "{err}");
    // And the store's sweep marks it EXPIRED (not REVOKED).
    let ended = store.sweep(SystemTime::now()).unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].state, SessionState::Expired);
    sim.shutdown().await;
}
