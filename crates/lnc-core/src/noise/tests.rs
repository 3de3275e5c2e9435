//! Vector tests against the Go reference (both roles, byte for byte), negotiation and
//! failure cases, and property tests for the transport.

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::keys::{PublicKey, SecretKey};
use crate::spake2::MaskScalar;

fn load(name: &str) -> Value {
    serde_json::from_str(&crate::test_vectors::read(name)).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).unwrap()
}

fn h32(v: &Value) -> [u8; 32] {
    hx(v).try_into().unwrap()
}

fn sk(v: &Value) -> SecretKey {
    SecretKey::from_bytes(&hx(v)).unwrap()
}

fn pk(v: &Value) -> PublicKey {
    PublicKey::from_bytes(&hx(v)).unwrap()
}

fn cfg(side: &Value) -> NoiseConfig {
    let v = |k: &str| HandshakeVersion::from_u8(side[k].as_u64().unwrap() as u8).unwrap();
    NoiseConfig {
        min_version: v("min_handshake_version"),
        max_version: v("max_handshake_version"),
        ..NoiseConfig::default()
    }
}

fn mask_of(t: &Value) -> MaskScalar {
    MaskScalar::from_stretched(&h32(&t["stretched_password"]))
}

fn assert_state(act: &Value, h: [u8; 32], ck: [u8; 32], who: &str) {
    let n = &act["act"];
    assert_eq!(
        hex::encode(h),
        act["h_after"].as_str().unwrap(),
        "{who}: h after act {n}"
    );
    assert_eq!(
        hex::encode(ck),
        act["ck_after"].as_str().unwrap(),
        "{who}: ck after act {n}"
    );
}

fn assert_keys(e: &mut Established, side: &Value, who: &str) {
    assert_eq!(
        e.transport.sender().key_for_tests(),
        h32(&side["send_key"]),
        "{who} send key"
    );
    assert_eq!(
        e.transport.receiver().key_for_tests(),
        h32(&side["recv_key"]),
        "{who} recv key"
    );
    assert_eq!(
        e.transport.sender().salt_for_tests(),
        h32(&side["cipher_salt"]),
        "{who} salt"
    );
    assert_eq!(
        e.transport.receiver().salt_for_tests(),
        h32(&side["cipher_salt"]),
        "{who} salt"
    );
    assert_eq!(
        e.chaining_key_for_tests(),
        h32(&side["cipher_salt"]),
        "{who} final ck"
    );
    assert_eq!(e.handshake_hash(), h32(&side["final_h"]), "{who} final h");
    assert_eq!(
        e.remote_static,
        pk(&side["remote_static_learned"]),
        "{who} remote static"
    );
}

/// Runs our XX initiator against the recorded responder acts and checks everything.
fn xx_initiator_vs_vector(t: &Value) -> Established {
    let c = &t["client_initiator"];
    let acts = t["acts"].as_array().unwrap();
    let init = XxInitiator::with_ephemeral(
        &cfg(c),
        &sk(&c["static_priv"]),
        &mask_of(t),
        sk(&c["ephemeral_priv"]),
    )
    .unwrap();
    assert_eq!(
        init.handshake_hash(),
        h32(&t["initial_h_after_prologue_and_premessages"])
    );
    let (init, act1) = init.write_act1().unwrap();
    assert_eq!(
        hex::encode(&act1),
        acts[0]["bytes"].as_str().unwrap(),
        "act 1 bytes"
    );
    assert_eq!(act1[1..34], hx(&t["client_masked_ephemeral"])[..]);
    assert_state(
        &acts[0],
        init.handshake_hash(),
        init.chaining_key_for_tests(),
        "initiator",
    );
    let init = init.read_act2(&hx(&acts[1]["bytes"])).unwrap();
    assert_state(
        &acts[1],
        init.handshake_hash(),
        init.chaining_key_for_tests(),
        "initiator",
    );
    assert_eq!(
        init.auth_data(),
        &hx(&t["auth_data_received_by_client"])[..]
    );
    assert_eq!(
        init.version().as_u8() as u64,
        t["negotiated_version"].as_u64().unwrap()
    );
    let (act3, mut est) = init.write_act3().unwrap();
    assert_eq!(
        hex::encode(&act3),
        acts[2]["bytes"].as_str().unwrap(),
        "act 3 bytes"
    );
    assert_state(
        &acts[2],
        est.handshake_hash(),
        est.chaining_key_for_tests(),
        "initiator",
    );
    assert_keys(&mut est, c, "initiator");
    assert_eq!(
        est.auth_data.as_deref().map(|a| a.as_slice()),
        Some(&hx(&t["auth_data_received_by_client"])[..])
    );
    assert_eq!(est.pattern, Pattern::Xx);
    est
}

/// Runs our XX responder against the recorded initiator acts.
fn xx_responder_vs_vector(t: &Value) -> Established {
    let s = &t["server_responder"];
    let acts = t["acts"].as_array().unwrap();
    let resp = XxResponder::with_ephemeral(
        &cfg(s),
        &sk(&s["static_priv"]),
        &mask_of(t),
        &hx(&t["auth_data"]),
        sk(&s["ephemeral_priv"]),
    )
    .unwrap();
    let resp = resp.read_act1(&hx(&acts[0]["bytes"])).unwrap();
    assert_state(
        &acts[0],
        resp.handshake_hash(),
        resp.chaining_key_for_tests(),
        "responder",
    );
    let (resp, act2) = resp.write_act2().unwrap();
    assert_eq!(
        hex::encode(&act2),
        acts[1]["bytes"].as_str().unwrap(),
        "act 2 bytes"
    );
    assert_eq!(act2.len() as u64, acts[1]["len"].as_u64().unwrap());
    assert_state(
        &acts[1],
        resp.handshake_hash(),
        resp.chaining_key_for_tests(),
        "responder",
    );
    let mut est = resp.read_act3(&hx(&acts[2]["bytes"])).unwrap();
    assert_state(
        &acts[2],
        est.handshake_hash(),
        est.chaining_key_for_tests(),
        "responder",
    );
    assert_keys(&mut est, s, "responder");
    assert!(est.auth_data.is_none());
    assert_eq!(
        est.version.as_u8() as u64,
        t["negotiated_version"].as_u64().unwrap()
    );
    est
}

/// Checks the recorded transport messages: our sender produces them, our receiver (a
/// decoder fed header and body as separate chunks, as Go writes them) accepts them.
fn check_transport(t: &Value, client: Established, server: Established) {
    let (mut c_tx, c_rx) = client.transport.into_split();
    let (mut s_tx, s_rx) = server.transport.into_split();
    let mut c_dec = RecordDecoder::new(c_rx);
    let mut s_dec = RecordDecoder::new(s_rx);
    let msgs = t["transport"].as_array().unwrap();
    assert_eq!(msgs.len(), 6);
    for m in msgs {
        let pt = hx(&m["plaintext"]);
        let (tx, dec) = match m["direction"].as_str().unwrap() {
            "client_to_server" => (&mut c_tx, &mut s_dec),
            "server_to_client" => (&mut s_tx, &mut c_dec),
            d => panic!("direction {d}"),
        };
        let wire = tx.seal_to_vec(&pt).unwrap();
        assert_eq!(
            hex::encode(&wire[..RECORD_HEADER_LEN]),
            m["header_ct"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(&wire[RECORD_HEADER_LEN..]),
            m["body_ct"].as_str().unwrap()
        );
        assert_eq!(hex::encode(&wire), m["wire"].as_str().unwrap());
        let hdr = hx(&m["header_ct"]);
        let d = dec.decode(&hdr).unwrap();
        assert_eq!((d.consumed, d.plaintext), (RECORD_HEADER_LEN, None));
        let body = hx(&m["body_ct"]);
        let d = dec.decode(&body).unwrap();
        assert_eq!(d.consumed, body.len());
        assert_eq!(d.plaintext, Some(&pt[..]));
    }
}

fn xx_vector_case(file: &str) {
    let t = load(file);
    let client = xx_initiator_vs_vector(&t);
    let server = xx_responder_vs_vector(&t);
    check_transport(&t, client, server);
}

#[test]
fn xx_v0_vector_both_roles() {
    xx_vector_case("xx_handshake_v0.json");
}

#[test]
fn xx_v1_vector_both_roles() {
    xx_vector_case("xx_handshake_v1.json");
}

#[test]
fn xx_v2_vector_both_roles() {
    xx_vector_case("xx_handshake_v2.json");
}

#[test]
fn xx_default_negotiation_vector_both_roles() {
    let t = load("xx_handshake_default_negotiation.json");
    let acts = t["acts"].as_array().unwrap();
    assert_eq!(acts[0]["version_byte"], 0);
    assert_eq!(acts[1]["version_byte"], 2);
    assert_eq!(acts[2]["version_byte"], 2);
    // The vector's configs are upstream's defaults, which are ours.
    assert_eq!(cfg(&t["client_initiator"]), NoiseConfig::default());
    assert_eq!(cfg(&t["server_responder"]), NoiseConfig::default());
    let client = xx_initiator_vs_vector(&t);
    assert_eq!(client.version, HandshakeVersion::V2);
    assert!(client.should_persist_remote_static());
    let server = xx_responder_vs_vector(&t);
    check_transport(&t, client, server);
}

fn kk_pair(t: &Value) -> (Established, Established) {
    let c = &t["client_initiator"];
    let s = &t["server_responder"];
    let acts = t["acts"].as_array().unwrap();
    assert_eq!(acts.len(), 2);

    // Initiator vs recorded responder.
    let init = KkInitiator::with_ephemeral(
        &cfg(c),
        &sk(&c["static_priv"]),
        &pk(&s["static_pub"]),
        sk(&c["ephemeral_priv"]),
    )
    .unwrap();
    assert_eq!(
        init.handshake_hash(),
        h32(&t["initial_h_after_prologue_and_premessages"])
    );
    let (init, act1) = init.write_act1().unwrap();
    assert_eq!(
        hex::encode(&act1),
        acts[0]["bytes"].as_str().unwrap(),
        "KK act 1"
    );
    assert_state(
        &acts[0],
        init.handshake_hash(),
        init.chaining_key_for_tests(),
        "KK initiator",
    );
    let mut ce = init.read_act2(&hx(&acts[1]["bytes"])).unwrap();
    assert_state(
        &acts[1],
        ce.handshake_hash(),
        ce.chaining_key_for_tests(),
        "KK initiator",
    );
    assert_keys(&mut ce, c, "KK initiator");
    assert_eq!(
        ce.auth_data.as_deref().map(|a| a.as_slice()),
        Some(&hx(&t["auth_data_received_by_client"])[..])
    );
    assert_eq!(ce.pattern, Pattern::Kk);
    assert_eq!(ce.version, HandshakeVersion::V2);

    // Responder vs recorded initiator.
    let resp = KkResponder::with_ephemeral(
        &cfg(s),
        &sk(&s["static_priv"]),
        &pk(&c["static_pub"]),
        &hx(&t["auth_data"]),
        sk(&s["ephemeral_priv"]),
    )
    .unwrap();
    assert_eq!(
        resp.handshake_hash(),
        h32(&t["initial_h_after_prologue_and_premessages"])
    );
    let resp = resp.read_act1(&hx(&acts[0]["bytes"])).unwrap();
    assert_state(
        &acts[0],
        resp.handshake_hash(),
        resp.chaining_key_for_tests(),
        "KK responder",
    );
    let (act2, mut se) = resp.write_act2().unwrap();
    assert_eq!(
        hex::encode(&act2),
        acts[1]["bytes"].as_str().unwrap(),
        "KK act 2"
    );
    assert_state(
        &acts[1],
        se.handshake_hash(),
        se.chaining_key_for_tests(),
        "KK responder",
    );
    assert_keys(&mut se, s, "KK responder");
    (ce, se)
}

#[test]
fn kk_v2_vector_both_roles() {
    let v = load("kk_handshake_v2.json");
    let t = &v["transcript"];
    assert_eq!(t["acts"][0]["version_byte"], 2, "KK raises min to 2");
    let (c, s) = kk_pair(t);
    check_transport(t, c, s);
}

fn xx_established(file: &str) -> (Established, Established) {
    let t = load(file);
    (xx_initiator_vs_vector(&t), xx_responder_vs_vector(&t))
}

#[test]
fn transport_key_rotation_vector() {
    let t = load("xx_handshake_v2.json");
    let (client, server) = xx_established("xx_handshake_v2.json");
    let r = load("transport_key_rotation.json");
    let (mut tx, _) = client.transport.into_split();
    let (_, rx) = server.transport.into_split();
    let mut dec = RecordDecoder::new(rx);
    assert_eq!(tx.key_for_tests(), h32(&r["initial_send_key"]));
    assert_eq!(tx.salt_for_tests(), h32(&r["initial_salt"]));
    // Replay the transcript's three client->server messages first.
    for m in t["transport"].as_array().unwrap() {
        if m["direction"] == "client_to_server" {
            let wire = tx.seal_to_vec(&hx(&m["plaintext"])).unwrap();
            dec.decode_all(&wire, |_| {}).unwrap();
        }
    }
    let selected = r["messages"].as_array().unwrap();
    let mut checked = 0;
    for i in 3..=1001u64 {
        let pt = format!("rotation message {i}");
        let sel = selected.iter().find(|m| m["index"].as_u64() == Some(i));
        if let Some(m) = sel {
            assert_eq!(hx(&m["plaintext"]), pt.as_bytes());
            assert_eq!(
                tx.nonce(),
                m["header_nonce_before_rotation_logic"].as_u64().unwrap(),
                "nonce before message {i}"
            );
            assert_eq!(
                tx.key_for_tests(),
                h32(&m["send_key_used"]),
                "key for message {i}"
            );
            assert_eq!(
                tx.salt_for_tests(),
                h32(&m["salt_used"]),
                "salt for message {i}"
            );
        }
        let wire = tx.seal_to_vec(pt.as_bytes()).unwrap();
        if let Some(m) = sel {
            assert_eq!(
                hex::encode(&wire),
                m["wire"].as_str().unwrap(),
                "wire of message {i}"
            );
            checked += 1;
        }
        // The receiving side rotates in lockstep.
        let mut got = Vec::new();
        dec.decode_all(&wire, |p| got.extend_from_slice(p)).unwrap();
        assert_eq!(got, pt.as_bytes());
    }
    assert_eq!(checked, selected.len());
}

// ---------------------------------------------------------------------------------------
// Negotiation and failures (fresh keys, deterministic RNG)

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn w(b: u8) -> MaskScalar {
    MaskScalar::from_stretched(&[b; 32])
}

struct XxRun {
    client: Result<Established, HandshakeError>,
    server: Result<Established, HandshakeError>,
}

/// Runs XX end to end with our own two sides.
fn run_xx(
    ccfg: &NoiseConfig,
    scfg: &NoiseConfig,
    cw: &MaskScalar,
    sw: &MaskScalar,
    auth: &[u8],
) -> XxRun {
    let mut r = rng(7);
    let cs = SecretKey::generate(&mut r);
    let ss = SecretKey::generate(&mut r);
    let init = XxInitiator::new(ccfg, &cs, cw, &mut r).unwrap();
    let resp = XxResponder::new(scfg, &ss, sw, auth, &mut r).unwrap();
    let (init, a1) = init.write_act1().unwrap();
    let resp = match resp.read_act1(&a1) {
        Ok(r) => r,
        Err(e) => {
            return XxRun {
                client: Err(e.clone()),
                server: Err(e),
            };
        }
    };
    let (resp, a2) = match resp.write_act2() {
        Ok(x) => x,
        Err(e) => {
            return XxRun {
                client: Err(e.clone()),
                server: Err(e),
            };
        }
    };
    let init = match init.read_act2(&a2) {
        Ok(i) => i,
        Err(e) => {
            return XxRun {
                client: Err(e.clone()),
                server: Err(e),
            };
        }
    };
    let (a3, ce) = init.write_act3().unwrap();
    XxRun {
        client: Ok(ce),
        server: resp.read_act3(&a3),
    }
}

#[test]
fn xx_round_trip_all_version_ranges() {
    let d = NoiseConfig::default();
    for (cmin, cmax, smin, smax, want) in [
        (0, 2, 0, 2, Some(2)),
        (0, 1, 0, 1, Some(1)),
        (0, 0, 0, 0, Some(0)),
        (0, 2, 0, 1, Some(1)),
        (1, 2, 0, 2, Some(2)),
        (0, 1, 0, 2, None), // responder's max above the initiator's: initiator fails at act 2
        (0, 2, 1, 2, None), // initiator sends 0, below the responder's min: act 1 fails
    ] {
        let v = |x: u8| HandshakeVersion::from_u8(x).unwrap();
        let cc = NoiseConfig {
            min_version: v(cmin),
            max_version: v(cmax),
            ..d
        };
        let sc = NoiseConfig {
            min_version: v(smin),
            max_version: v(smax),
            ..d
        };
        let run = run_xx(&cc, &sc, &w(1), &w(1), b"Macaroon: 0201");
        match want {
            Some(ver) => {
                let c = run.client.unwrap();
                let s = run.server.unwrap();
                assert_eq!(c.version.as_u8(), ver);
                assert_eq!(s.version.as_u8(), ver);
                assert_eq!(c.handshake_hash(), s.handshake_hash());
                assert_eq!(
                    c.auth_data.as_deref().map(|a| a.as_slice()),
                    Some(&b"Macaroon: 0201"[..])
                );
                assert_eq!(c.should_persist_remote_static(), ver >= 2);
            }
            None => {
                let e = run.client.unwrap_err();
                assert!(
                    matches!(e, HandshakeError::UnsupportedVersion { .. }),
                    "{e}"
                );
            }
        }
    }
}

#[test]
fn unsupported_version_errors_name_the_act() {
    let d = NoiseConfig::default();
    let run = run_xx(
        &NoiseConfig {
            max_version: HandshakeVersion::V1,
            ..d
        },
        &d,
        &w(1),
        &w(1),
        b"",
    );
    assert_eq!(
        run.client.unwrap_err(),
        HandshakeError::UnsupportedVersion {
            act: 2,
            got: 2,
            min: 0,
            max: 1
        }
    );
    let run = run_xx(
        &d,
        &NoiseConfig::pinned(HandshakeVersion::V2),
        &w(1),
        &w(1),
        b"",
    );
    let e = run.server.unwrap_err();
    assert_eq!(
        e,
        HandshakeError::UnsupportedVersion {
            act: 1,
            got: 0,
            min: 2,
            max: 2
        }
    );
    assert!(e.to_string().contains("act 1"), "{e}");
}

#[test]
fn invalid_config_is_refused() {
    let bad = NoiseConfig {
        min_version: HandshakeVersion::V2,
        max_version: HandshakeVersion::V1,
        ..NoiseConfig::default()
    };
    let mut r = rng(1);
    let s = SecretKey::generate(&mut r);
    assert_eq!(
        XxInitiator::new(&bad, &s, &w(1), &mut r).unwrap_err(),
        HandshakeError::InvalidVersionRange { min: 2, max: 1 }
    );
    let v1 = NoiseConfig::pinned(HandshakeVersion::V1);
    let e = KkInitiator::new(&v1, &s, &s.public_key(), &mut r).unwrap_err();
    assert_eq!(e, HandshakeError::KkNeedsVersion2 { max: 1 });
    assert!(KkResponder::new(&v1, &s, &s.public_key(), b"", &mut r).is_err());
}

#[test]
fn wrong_password_fails_responder_at_act1() {
    // Go mixes the *unmasked* ephemeral into h before checking act 1's tag, so a node with
    // another phrase already fails at act 1 (spec §4.3 says act 3; the Go code and our
    // vector-exact machine fail at act 1).
    let d = NoiseConfig::default();
    let run = run_xx(&d, &d, &w(1), &w(2), b"x");
    let e = run.server.unwrap_err();
    assert!(
        matches!(
            e,
            HandshakeError::AuthFailed {
                act: 1,
                what: "payload tag",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("pairing phrase"), "{e}");
}

#[test]
fn wrong_password_fails_initiator_at_act2() {
    // A responder without the phrase (e.g. a malicious relay guessing it) can still accept
    // act 1 by re-tagging it for its own unmasking (the act-1 key is all zero). The app
    // must then fail at act 2, on the node's encrypted static key.
    let d = NoiseConfig::default();
    let mut r = rng(9);
    let cs = SecretKey::generate(&mut r);
    let ss = SecretKey::generate(&mut r);
    let init = XxInitiator::new(&d, &cs, &w(1), &mut r).unwrap();
    let (init, a1) = init.write_act1().unwrap();
    let me = PublicKey::from_bytes(&a1[1..34]).unwrap();
    let e_guess = crate::spake2::unmask(&me, &w(2)).unwrap();
    let mut sym = super::symmetric::SymmetricState::new(XX_PROTOCOL_NAME.as_bytes(), PROLOGUE);
    sym.mix_hash(&e_guess.to_bytes());
    let mut forged = a1[..34].to_vec();
    sym.encrypt_and_hash(&[], &mut forged);
    let resp = XxResponder::new(&d, &ss, &w(2), b"x", &mut r).unwrap();
    let (resp, a2) = resp.read_act1(&forged).unwrap().write_act2().unwrap();
    let e = init.read_act2(&a2).unwrap_err();
    assert!(
        matches!(
            e,
            HandshakeError::AuthFailed {
                act: 2,
                what: "encrypted static key",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("pairing phrase"), "{e}");
    // And the guessing responder gets nothing back: no act 3 is ever sent. Fed a replayed
    // act 3 from an honest run, it fails at act 3.
    let (_, _, a3) = xx_acts(&d);
    let e = resp.read_act3(&a3).unwrap_err();
    assert!(
        matches!(e, HandshakeError::AuthFailed { act: 3, .. }),
        "{e}"
    );
}

/// A fresh XX exchange with fixed keys: (initiator awaiting act 2, act1, responder
/// awaiting act 3, act2, act3 for the same run).
fn xx_acts(cfg: &NoiseConfig) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut r = rng(3);
    let cs = SecretKey::generate(&mut r);
    let ss = SecretKey::generate(&mut r);
    let init = XxInitiator::new(cfg, &cs, &w(5), &mut r).unwrap();
    let resp = XxResponder::new(cfg, &ss, &w(5), b"Macaroon: ab", &mut r).unwrap();
    let (init, a1) = init.write_act1().unwrap();
    let (_resp, a2) = resp.read_act1(&a1).unwrap().write_act2().unwrap();
    let (a3, _) = init.read_act2(&a2).unwrap().write_act3().unwrap();
    (a1, a2, a3)
}

/// Replays the fixed run of `xx_acts` up to the act under test, then feeds `bad` to it.
fn xx_feed(cfg: &NoiseConfig, act: u8, bad: &[u8]) -> Result<(), HandshakeError> {
    let mut r = rng(3);
    let cs = SecretKey::generate(&mut r);
    let ss = SecretKey::generate(&mut r);
    let init = XxInitiator::new(cfg, &cs, &w(5), &mut r).unwrap();
    let resp = XxResponder::new(cfg, &ss, &w(5), b"Macaroon: ab", &mut r).unwrap();
    let (init, a1) = init.write_act1().unwrap();
    match act {
        1 => resp.read_act1(bad).map(|_| ()),
        2 => init.read_act2(bad).map(|_| ()),
        _ => {
            let (resp, _) = resp.read_act1(&a1).unwrap().write_act2().unwrap();
            resp.read_act3(bad).map(|_| ())
        }
    }
}

#[test]
fn truncated_extended_and_tampered_acts_fail_cleanly() {
    for v in [
        HandshakeVersion::V0,
        HandshakeVersion::V1,
        HandshakeVersion::V2,
    ] {
        let cfg = NoiseConfig::pinned(v);
        let (a1, a2, a3) = xx_acts(&cfg);
        // Sanity: the untouched acts pass.
        assert!(xx_feed(&cfg, 1, &a1).is_ok());
        assert!(xx_feed(&cfg, 2, &a2).is_ok());
        assert!(xx_feed(&cfg, 3, &a3).is_ok());
        for (n, act) in [(1u8, &a1), (2, &a2), (3, &a3)] {
            for cut in [0, 1, 33, act.len() - 1] {
                let e = xx_feed(&cfg, n, &act[..cut]).unwrap_err();
                assert!(
                    matches!(
                        e,
                        HandshakeError::ActLength { .. } | HandshakeError::AuthFailed { .. }
                    ),
                    "v{v} act {n} cut {cut}: {e}"
                );
            }
            let mut longer = act.clone();
            longer.push(0);
            assert!(
                xx_feed(&cfg, n, &longer).is_err(),
                "v{v} act {n} with a trailing byte"
            );
            for i in 1..act.len() {
                let mut t = act.clone();
                t[i] ^= 0x01;
                assert!(
                    xx_feed(&cfg, n, &t).is_err(),
                    "v{v} act {n} flipped byte {i}"
                );
            }
        }
        // Act 3 with another version byte: mismatch, before any crypto.
        let mut t = a3.clone();
        t[0] ^= 0x07;
        assert_eq!(
            xx_feed(&cfg, 3, &t).unwrap_err(),
            HandshakeError::VersionMismatch {
                expected: v.as_u8(),
                got: v.as_u8() ^ 7
            }
        );
    }
}

#[test]
fn oversize_auth_data() {
    let d = NoiseConfig::default();
    let v0 = NoiseConfig::pinned(HandshakeVersion::V0);
    // v0: 498 bytes fit exactly; 499 are refused by our writer (Go would truncate).
    let run = run_xx(&v0, &v0, &w(1), &w(1), &[0xab; 498]);
    assert_eq!(
        run.client.unwrap().auth_data.unwrap().as_slice(),
        &[0xab; 498][..]
    );
    let e = run_xx(&v0, &v0, &w(1), &w(1), &[0xab; 499])
        .server
        .unwrap_err();
    assert_eq!(
        e,
        HandshakeError::AuthDataTooLarge {
            len: 499,
            max: 498,
            version: 0
        }
    );
    // v1+: a 3 MiB macaroon passes with a raised cap (Go tests 3 MiB) ...
    let big = NoiseConfig {
        max_auth_data_len: 4 << 20,
        ..d
    };
    let run = run_xx(&big, &d, &w(1), &w(1), &vec![7u8; 3 << 20]);
    assert_eq!(run.client.unwrap().auth_data.unwrap().len(), 3 << 20);
    // ... and is refused by a reader whose cap is lower, before allocating.
    let small = NoiseConfig {
        max_auth_data_len: 100,
        ..d
    };
    let e = run_xx(&small, &d, &w(1), &w(1), &[1u8; 101])
        .client
        .unwrap_err();
    assert_eq!(e, HandshakeError::AuthDataOverCap { len: 101, max: 100 });
    assert!(run_xx(&small, &d, &w(1), &w(1), &[1u8; 100]).client.is_ok());
    // Empty auth data is fine in every version.
    for v in [
        HandshakeVersion::V0,
        HandshakeVersion::V1,
        HandshakeVersion::V2,
    ] {
        let c = NoiseConfig::pinned(v);
        let run = run_xx(&c, &c, &w(1), &w(1), b"");
        assert_eq!(run.client.unwrap().auth_data.unwrap().len(), 0);
    }
}

#[test]
fn kk_round_trip_and_wrong_keys() {
    let d = NoiseConfig::default();
    let mut r = rng(11);
    let cs = SecretKey::generate(&mut r);
    let ss = SecretKey::generate(&mut r);
    let other = SecretKey::generate(&mut r);
    let init = KkInitiator::new(&d, &cs, &ss.public_key(), &mut r).unwrap();
    let resp = KkResponder::new(&d, &ss, &cs.public_key(), b"Macaroon: 01", &mut r).unwrap();
    let (init, a1) = init.write_act1().unwrap();
    assert_eq!(a1.len(), ACT1_LEN);
    assert_eq!(a1[0], 2);
    let (a2, se) = resp.read_act1(&a1).unwrap().write_act2().unwrap();
    assert_eq!(a2.len(), 70 + 12);
    let ce = init.read_act2(&a2).unwrap();
    assert_eq!(ce.handshake_hash(), se.handshake_hash());
    assert_eq!(ce.remote_static, ss.public_key());
    assert_eq!(se.remote_static, cs.public_key());

    // The node expects another client key: act 1 fails with a "pair again" hint.
    let init = KkInitiator::new(&d, &cs, &ss.public_key(), &mut r).unwrap();
    let resp = KkResponder::new(&d, &ss, &other.public_key(), b"", &mut r).unwrap();
    let (_, a1) = init.write_act1().unwrap();
    let e = resp.read_act1(&a1).unwrap_err();
    assert!(
        matches!(e, HandshakeError::AuthFailed { act: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("pair again"), "{e}");

    // The client expects another node key: the node cannot even read act 1 (its ss
    // differs), and a forged act 2 fails at the client.
    let init = KkInitiator::new(&d, &cs, &other.public_key(), &mut r).unwrap();
    let (init, _a1) = init.write_act1().unwrap();
    let resp = KkResponder::new(&d, &ss, &cs.public_key(), b"", &mut r).unwrap();
    let init2 = KkInitiator::new(&d, &cs, &ss.public_key(), &mut r).unwrap();
    let (_, a1b) = init2.write_act1().unwrap();
    let (a2, _) = resp.read_act1(&a1b).unwrap().write_act2().unwrap();
    let e = init.read_act2(&a2).unwrap_err();
    assert!(
        matches!(e, HandshakeError::AuthFailed { act: 2, .. }),
        "{e}"
    );

    // Truncations of KK acts.
    let init = KkInitiator::new(&d, &cs, &ss.public_key(), &mut r).unwrap();
    let (_, a1) = init.write_act1().unwrap();
    for cut in 0..a1.len() {
        let resp = KkResponder::new(&d, &ss, &cs.public_key(), b"", &mut r).unwrap();
        assert!(resp.read_act1(&a1[..cut]).is_err());
    }
}

#[test]
fn debug_output_is_redacted() {
    let (c, s) = xx_established("xx_handshake_v2.json");
    let dbg = format!("{c:?} {s:?}");
    let t = load("xx_handshake_v2.json");
    for k in ["send_key", "recv_key", "cipher_salt"] {
        let key = t["client_initiator"][k].as_str().unwrap();
        assert!(!dbg.contains(key), "{k} leaked in {dbg}");
        assert!(!dbg.contains(&key[..16]), "{k} leaked in {dbg}");
    }
    assert!(!dbg.contains("Macaroon"));
    assert!(dbg.contains("redacted"));
    let mut r = rng(1);
    let sk = SecretKey::generate(&mut r);
    let st = XxInitiator::new(&NoiseConfig::default(), &sk, &w(1), &mut r).unwrap();
    assert!(format!("{st:?}").contains("redacted"));
}

// ---------------------------------------------------------------------------------------
// Transport

#[test]
fn halves_and_states_can_move_between_tasks() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<TransportSender>();
    send_sync::<TransportReceiver>();
    send_sync::<RecordDecoder>();
    send_sync::<Established>();
    send_sync::<XxInitiatorAwaitAct2>();
    send_sync::<XxResponderAwaitAct3>();
    send_sync::<KkInitiatorAwaitAct2>();
}

fn pair() -> (TransportSender, TransportReceiver) {
    (
        TransportSender::from_raw_for_tests([1u8; 32], [2u8; 32]),
        TransportReceiver::from_raw_for_tests([1u8; 32], [2u8; 32]),
    )
}

#[test]
fn record_limits_and_split_writes() {
    let (mut tx, rx) = pair();
    let mut out = Vec::new();
    assert_eq!(
        tx.seal(&vec![0u8; MAX_RECORD_PAYLOAD + 1], &mut out),
        Err(TransportError::PayloadTooLarge {
            len: MAX_RECORD_PAYLOAD + 1
        })
    );
    assert!(out.is_empty());
    tx.seal(&vec![9u8; MAX_RECORD_PAYLOAD], &mut out).unwrap();
    assert_eq!(out.len(), record_len(MAX_RECORD_PAYLOAD));
    tx.seal(&[], &mut out).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    assert_eq!(tx.seal_all(&data, &mut out), 4);
    assert_eq!(tx.seal_all(&[], &mut out), 0);
    let mut dec = RecordDecoder::new(rx);
    let mut msgs = Vec::new();
    dec.decode_all(&out, |p| msgs.push(p.to_vec())).unwrap();
    assert_eq!(msgs.len(), 6);
    assert_eq!(msgs[0], vec![9u8; MAX_RECORD_PAYLOAD]);
    assert!(msgs[1].is_empty());
    assert_eq!(msgs[2..].concat(), data);
    assert!(dec.is_at_record_boundary());
}

#[test]
fn in_place_seal_and_open_match_the_copying_api() {
    let (mut a, mut ra) = pair();
    let (mut b, _) = pair();
    for len in [0usize, 1, 100, 65535] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let wire = a.seal_to_vec(&payload).unwrap();
        let mut rec = vec![0u8; record_len(len)];
        rec[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len].copy_from_slice(&payload);
        b.seal_in_place(&mut rec).unwrap();
        assert_eq!(rec, wire);
        assert_eq!(ra.open_in_place(&mut rec).unwrap(), &payload[..]);
    }
    assert!(matches!(
        a.seal_in_place(&mut [0u8; 10]),
        Err(TransportError::BadRecordBuffer { .. })
    ));
    assert!(matches!(
        a.seal_in_place(&mut vec![0u8; record_len(65536)]),
        Err(TransportError::PayloadTooLarge { len: 65536 })
    ));
}

#[test]
fn low_level_open_enforces_header_body_order() {
    let (mut tx, mut rx) = pair();
    let wire = tx.seal_to_vec(b"hello").unwrap();
    let mut body = wire[RECORD_HEADER_LEN..].to_vec();
    assert!(matches!(
        rx.open_body(&mut body),
        Err(TransportError::OutOfOrder(_))
    ));
    let hdr: [u8; RECORD_HEADER_LEN] = wire[..RECORD_HEADER_LEN].try_into().unwrap();
    assert_eq!(rx.open_header(&hdr).unwrap(), 5 + TAG_LEN);
    assert!(matches!(
        rx.open_header(&hdr),
        Err(TransportError::OutOfOrder(_))
    ));
    assert_eq!(rx.open_body(&mut body).unwrap(), b"hello");
}

#[test]
fn tampering_poisons_the_decoder_and_failed_opens_still_count() {
    let (mut tx, rx) = pair();
    let mut wire = tx.seal_to_vec(b"payload").unwrap();
    wire[RECORD_HEADER_LEN + 1] ^= 0x80;
    let mut dec = RecordDecoder::new(rx);
    assert_eq!(
        dec.decode_all(&wire, |_| {}),
        Err(TransportError::BodyAuthFailed)
    );
    assert_eq!(dec.decode(b"x").unwrap_err(), TransportError::Poisoned);
    // Header + failed body = two AEAD operations consumed, as in Go.
    assert_eq!(dec.into_inner().nonce(), 2);

    let (mut tx, mut rx) = pair();
    let wire = tx.seal_to_vec(b"payload").unwrap();
    let mut hdr: [u8; RECORD_HEADER_LEN] = wire[..RECORD_HEADER_LEN].try_into().unwrap();
    hdr[0] ^= 1;
    assert_eq!(rx.open_header(&hdr), Err(TransportError::HeaderAuthFailed));
    assert_eq!(rx.nonce(), 1);
}

#[test]
fn failed_opens_rotate_like_successful_ones() {
    // 999 failed header opens + 1 more reach the rotation point.
    let (_, mut rx) = pair();
    let key0 = rx.key_for_tests();
    for _ in 0..KEY_ROTATION_INTERVAL {
        assert!(rx.open_header(&[0u8; RECORD_HEADER_LEN]).is_err());
    }
    assert_eq!(rx.nonce(), 0);
    assert_ne!(rx.key_for_tests(), key0);
    let (mut tx, _) = pair();
    for _ in 0..KEY_ROTATION_INTERVAL / 2 {
        tx.seal_to_vec(b"").unwrap();
    }
    assert_eq!(tx.key_for_tests(), rx.key_for_tests());
    assert_eq!(tx.salt_for_tests(), rx.salt_for_tests());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_open_round_trip_any_payloads_any_chunking(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 0..8),
        big in prop::option::of(70_000usize..140_000),
        cuts in prop::collection::vec(1usize..5000, 1..20),
    ) {
        let (mut tx, rx) = pair();
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        for p in &payloads {
            tx.seal(p, &mut wire).unwrap();
            expect.push(p.clone());
        }
        if let Some(n) = big {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let recs = tx.seal_all(&data, &mut wire);
            prop_assert_eq!(recs, n.div_ceil(MAX_RECORD_PAYLOAD));
            for c in data.chunks(MAX_RECORD_PAYLOAD) {
                expect.push(c.to_vec());
            }
        }
        let mut dec = RecordDecoder::new(rx);
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            i += 1;
            dec.decode_all(&rest[..n], |p| got.push(p.to_vec())).unwrap();
            rest = &rest[n..];
        }
        prop_assert!(dec.is_at_record_boundary());
        prop_assert_eq!(got, expect);
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..4000),
        cuts in prop::collection::vec(1usize..300, 1..10),
        prefix_valid in any::<bool>(),
    ) {
        let (mut tx, rx) = pair();
        let mut input = Vec::new();
        if prefix_valid {
            tx.seal(b"valid first record", &mut input).unwrap();
        }
        input.extend_from_slice(&bytes);
        let mut dec = RecordDecoder::new(rx);
        let mut rest = &input[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            i += 1;
            match dec.decode(&rest[..n]) {
                Ok(d) => {
                    prop_assert!(d.consumed <= n);
                    prop_assert!(d.consumed > 0);
                    rest = &rest[d.consumed..];
                }
                Err(_) => break,
            }
        }
    }

    #[test]
    fn act_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..700), which in 0u8..5) {
        let _ = fuzz_acts(which, &bytes);
    }
}

/// Feeds arbitrary bytes to one act parser (shared with the fuzz target's logic).
fn fuzz_acts(which: u8, data: &[u8]) -> bool {
    let d = NoiseConfig::default();
    let cs = SecretKey::from_bytes(&[0x11; 32]).unwrap();
    let ss = SecretKey::from_bytes(&[0x22; 32]).unwrap();
    let ce = SecretKey::from_bytes(&[0x33; 32]).unwrap();
    let se = SecretKey::from_bytes(&[0x44; 32]).unwrap();
    match which {
        0 => XxResponder::with_ephemeral(&d, &ss, &w(1), b"a", se)
            .unwrap()
            .read_act1(data)
            .is_ok(),
        1 => {
            let (i, _) = XxInitiator::with_ephemeral(&d, &cs, &w(1), ce)
                .unwrap()
                .write_act1()
                .unwrap();
            i.read_act2(data).is_ok()
        }
        2 => {
            let (_, a1) = XxInitiator::with_ephemeral(&d, &cs, &w(1), ce)
                .unwrap()
                .write_act1()
                .unwrap();
            let r = XxResponder::with_ephemeral(&d, &ss, &w(1), b"a", se).unwrap();
            let (r, _) = r.read_act1(&a1).unwrap().write_act2().unwrap();
            r.read_act3(data).is_ok()
        }
        3 => KkResponder::with_ephemeral(&d, &ss, &cs.public_key(), b"a", se)
            .unwrap()
            .read_act1(data)
            .is_ok(),
        _ => {
            let (i, _) = KkInitiator::with_ephemeral(&d, &cs, &ss.public_key(), ce)
                .unwrap()
                .write_act1()
                .unwrap();
            i.read_act2(data).is_ok()
        }
    }
}
