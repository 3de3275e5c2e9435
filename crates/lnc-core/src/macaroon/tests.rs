//! Vector tests against `macaroon_v2.json` (go-macaroon, macaroon-bakery and lnd's own
//! macaroon code) and `lnd_permissions.json`, plus property tests.

use proptest::prelude::*;
use serde_json::Value;

use super::lnd::{
    self, INVOICE_PERMISSIONS, MacaroonId, Op, PermissionError, PermissionTable, Preset,
    READ_PERMISSIONS, WRITE_PERMISSIONS,
};
use super::v2::{self, DecodeError};
use super::verify::{CheckOutcome, IpLock, LndCustom, TimeBefore, UnixTime, VerifyError};
use super::*;

fn vectors() -> Value {
    serde_json::from_str(&crate::test_vectors::read("macaroon_v2.json")).unwrap()
}

fn perms_json() -> Value {
    serde_json::from_str(&crate::test_vectors::read("lnd_permissions.json")).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn accept_all(_: &str) -> CheckOutcome {
    CheckOutcome::Satisfied
}

/// Checks a `steps`-style entry (signature, V2 binary, base64 forms, length) against `mac`.
fn check_serializations(mac: &Macaroon, step: &Value) {
    assert_eq!(
        mac.signature().as_bytes().as_slice(),
        hx(&step["signature_hex"])
    );
    let bin = mac.to_v2_bytes();
    assert_eq!(hex_encode(&bin), s(&step["v2_binary_hex"]));
    assert_eq!(mac.to_hex(), s(&step["v2_binary_hex"]));
    assert_eq!(mac.encoded_len(), bin.len());
    if let Some(len) = step.get("v2_binary_len") {
        assert_eq!(bin.len() as u64, len.as_u64().unwrap());
    }
    if let Some(b64) = step.get("v2_binary_base64") {
        assert_eq!(mac.to_base64(), s(b64));
        assert_eq!(&Macaroon::from_base64(s(b64)).unwrap(), mac);
    }
    if let Some(b64) = step.get("v2_binary_base64url") {
        assert_eq!(mac.to_base64url(), s(b64));
        assert_eq!(&Macaroon::from_base64(s(b64)).unwrap(), mac);
    }
    if let Some(json) = step.get("v2_json") {
        assert_eq!(mac.to_v2_json(), s(json));
    }
    assert_eq!(&Macaroon::decode(&bin).unwrap(), mac);
    assert_eq!(&Macaroon::from_hex(s(&step["v2_binary_hex"])).unwrap(), mac);
}

fn hex_encode(b: &[u8]) -> String {
    v2::hex_encode(b)
}

#[test]
fn go_macaroon_key_derivation_and_steps() {
    let v = vectors();
    let g = &v["go_macaroon"];
    let root = RootKey::new(&hx(&g["root_key_hex"]));
    let kd = &g["key_derivation"];
    assert_eq!(s(&kd["generator_string"]).as_bytes(), KEY_GENERATOR);
    assert_eq!(
        root.derive().as_bytes().as_slice(),
        hx(&kd["derived_key_hex"])
    );
    let id = s(&g["id"]["utf8"]).as_bytes();
    assert_eq!(id, hx(&g["id"]["hex"]));
    let mut mac = Macaroon::new(&root, id, s(&g["location"]).as_bytes());
    assert_eq!(
        mac.signature().as_bytes().as_slice(),
        hx(&kd["initial_signature_hex"])
    );

    let steps = g["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    for (i, step) in steps.iter().enumerate() {
        let cavs = step["caveats"].as_array().unwrap();
        assert_eq!(cavs.len(), i);
        if i > 0 {
            mac.add_first_party_caveat(s(&cavs[i - 1]).as_bytes())
                .unwrap();
        }
        let got: Vec<&str> = mac
            .caveats()
            .iter()
            .map(|c| c.condition().unwrap())
            .collect();
        let want: Vec<&str> = cavs.iter().map(s).collect();
        assert_eq!(got, want);
        check_serializations(&mac, step);
        mac.verify(&root, &accept_all).unwrap();
    }
}

#[test]
fn go_macaroon_hmac_trace() {
    let v = vectors();
    let g = &v["go_macaroon"];
    let root = RootKey::new(&hx(&g["root_key_hex"]));
    let mac = Macaroon::decode(&hx(&g["steps"][3]["v2_binary_hex"])).unwrap();
    let chain = mac.signature_chain(&root);
    let trace = g["trace_3_caveats"].as_array().unwrap();
    assert_eq!(chain.len(), trace.len());
    assert_eq!(s(&trace[0]["op"]), "makekey");
    assert_eq!(hx(&trace[0]["data1"]["hex"]), root.as_bytes());
    for (i, (step, sig)) in trace.iter().zip(&chain).enumerate() {
        assert_eq!(
            sig.as_bytes().as_slice(),
            hx(&step["result_hex"]),
            "trace step {i}"
        );
        if i >= 2 {
            assert_eq!(s(&step["op"]), "hash");
            assert_eq!(hx(&step["data1"]["hex"]), mac.caveats()[i - 2].id());
        }
    }
    assert_eq!(chain.last().unwrap(), mac.signature());
}

#[test]
fn go_macaroon_empty_location() {
    let v = vectors();
    let g = &v["go_macaroon"];
    let e = &g["empty_location_1_caveat"];
    let root = RootKey::new(&hx(&g["root_key_hex"]));
    let mut mac = Macaroon::new(&root, &hx(&g["id"]["hex"]), b"");
    for c in e["caveats"].as_array().unwrap() {
        mac.add_first_party_caveat(s(c).as_bytes()).unwrap();
    }
    check_serializations(&mac, e);
    // No location field at all (the byte after the version is the identifier's type).
    assert_eq!(mac.to_v2_bytes()[1], 2);
}

#[test]
fn libmacaroons_tutorial() {
    let v = vectors();
    let t = &v["go_macaroon"]["libmacaroons_tutorial"];
    let root = RootKey::new(s(&t["root_key"]).as_bytes());
    let mut mac = Macaroon::new(&root, s(&t["id"]).as_bytes(), s(&t["location"]).as_bytes());
    for (i, step) in t["steps"].as_array().unwrap().iter().enumerate() {
        if i > 0 {
            let c = &step["caveats"][i - 1];
            mac.add_first_party_caveat(s(c).as_bytes()).unwrap();
        }
        check_serializations(&mac, step);
    }
}

#[test]
fn v1_encodings_are_refused_with_a_typed_error() {
    let v = vectors();
    let g = &v["go_macaroon"];
    for v1 in [
        &g["v1_3_caveats"],
        &g["libmacaroons_tutorial"]["v1_1_caveat"],
    ] {
        assert_eq!(
            Macaroon::decode(&hx(&v1["v1_binary_hex"])),
            Err(DecodeError::V1Unsupported)
        );
        // Same signature as the V2 form: the chain does not depend on the encoding.
        assert_eq!(hx(&v1["signature_hex"]).len(), SIGNATURE_LEN);
    }
}

#[test]
fn go_macaroon_verification_outcomes() {
    let v = vectors();
    let cases = v["go_macaroon"]["verification"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let name = s(&case["name"]);
        let mac = Macaroon::decode(&hx(&case["macaroon_v2_hex"])).unwrap();
        let root = RootKey::new(&hx(&case["root_key_hex"]));
        let result = if name == "caveat_checker_rejects" {
            mac.verify(&root, &|c: &str| {
                if c.starts_with("ipaddr") {
                    CheckOutcome::Unsatisfied(format!("caveat rejected: {c}"))
                } else {
                    CheckOutcome::Satisfied
                }
            })
        } else {
            mac.verify(&root, &accept_all)
        };
        let want = s(&case["result"]);
        match result {
            Ok(()) => assert_eq!(want, "ok", "{name}"),
            Err(e) => {
                assert!(
                    e.to_string().contains(want),
                    "{name}: {e} does not contain {want}"
                );
                let expected_kind = match name {
                    "caveat_checker_rejects" => matches!(e, VerifyError::CaveatNotSatisfied { .. }),
                    _ => e == VerifyError::SignatureMismatch,
                };
                assert!(expected_kind, "{name}: {e:?}");
            }
        }
        if let Some(want) = case.get("verify_signature_error") {
            match mac.verify_signature(&root) {
                Ok(conds) => {
                    assert_eq!(s(want), "ok", "{name}");
                    let want: Vec<&[u8]> = case["verify_signature_conditions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| s(c).as_bytes())
                        .collect();
                    assert_eq!(conds, want);
                }
                Err(e) => assert!(e.to_string().contains(s(want)), "{name}: {e}"),
            }
        }
    }
}

#[test]
fn go_macaroon_decode_edges() {
    let v = vectors();
    let edges = v["go_macaroon"]["decode_edges"].as_array().unwrap();
    assert_eq!(edges.len(), 6);
    for e in edges {
        let name = s(&e["name"]);
        let input = hx(&e["input_hex"]);
        let want = s(&e["result"]);
        match name {
            "slice_of_two" => {
                let macs = v2::decode_slice(&input).unwrap();
                assert_eq!(macs.len() as u64, e["count"].as_u64().unwrap());
                assert_eq!(v2::encode_slice(&macs), input);
                // A single-macaroon decode sees the second one as trailing data.
                assert!(matches!(
                    Macaroon::decode(&input),
                    Err(DecodeError::TrailingData(_))
                ));
            }
            "trailing_byte" => {
                assert_eq!(want, "ok");
                // go-macaroon ignores what follows the signature; so does decode_lenient.
                let mac = Macaroon::decode_lenient(&input).unwrap();
                assert_eq!(
                    mac.caveats().len() as u64,
                    e["parsed_caveats"].as_u64().unwrap()
                );
                // The strict decoder refuses it.
                assert_eq!(Macaroon::decode(&input), Err(DecodeError::TrailingData(1)));
            }
            _ => {
                let err = Macaroon::decode(&input).unwrap_err();
                assert_eq!(Macaroon::decode_lenient(&input).unwrap_err(), err);
                let kind = match name {
                    "empty" => DecodeError::Empty,
                    "truncated_by_1" => DecodeError::FieldTruncated,
                    "version_byte_3" => DecodeError::UnknownFormat(3),
                    "v2_unknown_field_type_7" => DecodeError::FieldsOutOfOrder,
                    other => panic!("unknown decode edge {other}"),
                };
                assert_eq!(err, kind, "{name}");
                assert!(err.to_string().contains(want), "{name}: {err} vs {want}");
            }
        }
    }
}

fn op_of(text: &str) -> Op {
    let (e, a) = text.split_once(':').unwrap();
    Op::new(e, a)
}

/// fastuuid `Next()` as the generator used it: LE u64 counter (seeded from seed[0..8]) + 1,
/// then seed[8..16].
fn fastuuid_nonce(seed: &[u8]) -> [u8; 16] {
    let counter = u64::from_le_bytes(seed[..8].try_into().unwrap()).wrapping_add(1);
    let mut n = [0u8; 16];
    n[..8].copy_from_slice(&counter.to_le_bytes());
    n[8..].copy_from_slice(&seed[8..16]);
    n
}

#[test]
fn lnd_ids_and_macaroons() {
    let v = vectors();
    let cases = v["lnd"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = s(&case["name"]);
        let root = RootKey::new(&hx(&case["root_key_hex"]));
        let requested: Vec<Op> = case["ops_requested"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| op_of(s(o)))
            .collect();
        let canonical: Vec<Op> = case["ops_canonical"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| op_of(s(o)))
            .collect();
        assert_eq!(lnd::canonical_ops(&requested), canonical, "{name}");

        let dec = &case["id_decoded"];
        let nonce: [u8; 16] = hx(&dec["nonce_hex"]).try_into().unwrap();
        assert_eq!(
            nonce,
            fastuuid_nonce(&hx(&case["nonce_seed_24_hex"])),
            "{name}"
        );
        let storage = hx(&case["root_key_id"]["hex"]);
        let id = MacaroonId::new(nonce, &storage, &requested);
        let id_bytes = id.encode();
        assert_eq!(hex_encode(&id_bytes), s(&case["id_hex"]), "{name}");
        assert_eq!(id_bytes.len() as u64, case["id_len"].as_u64().unwrap());

        // Decode and compare with the generic protowire walk.
        let back = MacaroonId::decode(&id_bytes).unwrap();
        assert_eq!(back, id);
        assert_eq!(
            u64::from(id_bytes[0]),
            dec["version_byte"].as_u64().unwrap()
        );
        assert_eq!(back.storage_id, hx(&dec["storage_id"]["hex"]));
        let groups = dec["ops"].as_array().unwrap();
        assert_eq!(back.ops.len(), groups.len());
        for (g, want) in back.ops.iter().zip(groups) {
            assert_eq!(g.entity, s(&want["entity"]));
            let acts: Vec<&str> = want["actions"].as_array().unwrap().iter().map(s).collect();
            assert_eq!(g.actions, acts);
        }
        assert_eq!(back.ops(), canonical);
        assert_eq!(
            dec["top_level_fields_in_order"].as_array().unwrap().len(),
            2 + groups.len()
        );

        // The bare macaroon LND writes to disk / returns from BakeMacaroon.
        let mut mac = lnd::bake(&root, &id);
        assert_eq!(mac.location(), s(&case["location"]).as_bytes());
        check_serializations(&mac, &case["bare"]);
        // Plus the session expiry.
        let twb = &case["with_time_before"];
        let expiry = UnixTime::parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
        let caveat = verify::time_before_caveat(expiry).unwrap();
        assert_eq!(caveat, s(&twb["caveat"]));
        mac.add_first_party_caveat(caveat.as_bytes()).unwrap();
        check_serializations(&mac, twb);
        assert_eq!(mac.expires_at().unwrap(), Some(expiry));

        // What bakery recovers.
        let bv = &case["bakery_verify_macaroon"];
        let conds = mac.verify_signature(&root).unwrap();
        let want: Vec<&[u8]> = bv["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| s(c).as_bytes())
            .collect();
        assert_eq!(conds, want);
        let ops: Vec<Op> = bv["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| op_of(s(o)))
            .collect();
        assert_eq!(mac.lnd_id().unwrap().ops(), ops);
        assert_eq!(mac.lnd_id().unwrap().is_read_only(), name != "admin");

        // lnd's CheckMacAuth outcomes.
        for c in case["check_mac_auth"].as_array().unwrap() {
            let cname = s(&c["name"]);
            let m = match c.get("macaroon_v2_hex") {
                Some(h) => Macaroon::decode(&hx(h)).unwrap(),
                None => {
                    assert_eq!(s(&c["macaroon"]), "full");
                    mac.clone()
                }
            };
            let key = c
                .get("root_key_hex")
                .map_or(root.clone(), |k| RootKey::new(&hx(k)));
            let now = UnixTime::parse_rfc3339(s(&c["clock"])).unwrap();
            let peer = Some("127.0.0.1".parse().unwrap());
            let checker = (
                TimeBefore::new(now),
                IpLock::new(peer),
                LndCustom::new(|_: &str, _: &str| Err("no middleware".to_string())),
            );
            let required: Vec<Op> = c["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| op_of(s(o)))
                .collect();
            let got = m.check_mac_auth(&key, &checker, &required, "/lnrpc.Lightning/Test");
            let want = s(&c["result"]);
            match got {
                Ok(id) => {
                    assert_eq!(want, "ok", "{name}/{cname}");
                    assert_eq!(id, back);
                }
                Err(e) => {
                    assert!(
                        e.to_string().contains(want),
                        "{name}/{cname}: {e} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn lit_session_storage_id() {
    let v = vectors();
    let case = &v["lnd"]["cases"][2];
    assert_eq!(s(&case["name"]), "lit_session_root_key_id");
    let be = hx(&case["root_key_id_be_bytes_hex"]);
    let session: [u8; 4] = be[4..].try_into().unwrap();
    assert_eq!(
        lnd::super_macaroon_root_key_id(session)
            .to_be_bytes()
            .as_slice(),
        be
    );
    let storage = MacaroonId::session_storage_id(session);
    assert_eq!(storage, hx(&case["root_key_id"]["hex"]));
    assert_eq!(storage, s(&case["root_key_id_uint64"]).as_bytes());
    let mac = Macaroon::decode(&hx(&case["with_time_before"]["v2_binary_hex"])).unwrap();
    let id = mac.lnd_id().unwrap();
    assert_eq!(id.root_key_id_u64(), Some(0xFFEE_DDCC_0000_0001));
    assert_eq!(id.session_id(), Some([0, 0, 0, 1]));
    // The readonly case's "0" is not a session macaroon.
    let ro = MacaroonId::decode(&hx(&v["lnd"]["cases"][0]["id_hex"])).unwrap();
    assert_eq!(ro.root_key_id_u64(), Some(0));
    assert_eq!(ro.session_id(), None);
}

#[test]
fn bake_from_root_key_admin() {
    let v = vectors();
    let b = &v["lnd"]["bake_from_root_key_admin"];
    let root = RootKey::new(&hx(&b["root_key_hex"]));
    let nonce = fastuuid_nonce(&hx(&b["nonce_seed_24_hex"]));
    let id = MacaroonId::new(nonce, lnd::DEFAULT_ROOT_KEY_ID, &Preset::Admin.ops());
    assert_eq!(hex_encode(&id.encode()), s(&b["id_hex"]));
    let mac = lnd::bake(&root, &id);
    assert_eq!(
        mac.signature().as_bytes().as_slice(),
        hx(&b["signature_hex"])
    );
    assert_eq!(mac.to_hex(), s(&b["v2_binary_hex"]));
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| (s(&o["entity"]).to_string(), s(&o["action"]).to_string()))
        .collect()
}

fn table_from_json(p: &Value) -> PermissionTable {
    let mut all: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (m, ops) in p["methods"].as_object().unwrap() {
        all.push((m.clone(), pairs(ops)));
    }
    for (_, sub) in p["subservers"].as_object().unwrap() {
        for (m, ops) in sub["methods"].as_object().unwrap() {
            all.push((m.clone(), pairs(ops)));
        }
    }
    PermissionTable::from_pairs(all)
}

#[test]
fn lnd_permission_presets_match_lnd() {
    let p = perms_json();
    let own = |t: &[(&str, &str)]| -> Vec<(String, String)> {
        t.iter()
            .map(|&(e, a)| (e.to_string(), a.to_string()))
            .collect()
    };
    assert_eq!(own(READ_PERMISSIONS), pairs(&p["read_permissions"]));
    assert_eq!(own(WRITE_PERMISSIONS), pairs(&p["write_permissions"]));
    assert_eq!(own(INVOICE_PERMISSIONS), pairs(&p["invoice_permissions"]));
    let admin: Vec<(String, String)> = Preset::Admin
        .ops()
        .into_iter()
        .map(|o| (o.entity, o.action))
        .collect();
    assert_eq!(admin, pairs(&p["admin_permissions"]));
    assert_eq!(
        Preset::ReadOnly.ops(),
        lnd::ops_from_pairs(READ_PERMISSIONS)
    );
    assert_eq!(
        Preset::Invoice.ops(),
        lnd::ops_from_pairs(INVOICE_PERMISSIONS)
    );
    assert_eq!(s(&p["permission_entity_custom_uri"]), lnd::ENTITY_URI);
}

#[test]
fn lnd_permission_table_checks_methods() {
    let p = perms_json();
    let table = table_from_json(&p);
    assert_eq!(
        table.len() as u64,
        p["counts"]["all_methods_total"].as_u64().unwrap()
    );
    let ro = MacaroonId::new([0; 16], b"0", &Preset::ReadOnly.ops());
    let admin = MacaroonId::new([0; 16], b"0", &Preset::Admin.ops());
    let inv = MacaroonId::new([0; 16], b"0", &Preset::Invoice.ops());
    assert!(ro.is_read_only() && !admin.is_read_only() && !inv.is_read_only());

    // Every method whose ops are all "read" is open to a read-only macaroon … if it only
    // names LND's main entities; admin gets every main-server method.
    for (m, ops) in p["methods"].as_object().unwrap() {
        assert!(table.check(&admin, m).is_ok(), "admin {m}");
        let all_read = pairs(ops).iter().all(|(_, a)| a == "read");
        assert_eq!(table.check(&ro, m).is_ok(), all_read, "readonly {m}");
    }
    assert!(table.check(&ro, "/lnrpc.Lightning/GetInfo").is_ok());
    assert_eq!(
        table.check(&ro, "/lnrpc.Lightning/SendPaymentSync"),
        Err(PermissionError::Denied {
            missing: Op::new("offchain", "write")
        })
    );
    assert!(table.check(&inv, "/lnrpc.Lightning/AddInvoice").is_ok());
    assert!(
        table
            .check(&inv, "/lnrpc.Lightning/SendPaymentSync")
            .is_err()
    );
    assert_eq!(
        table.check(&admin, "/lnrpc.Lightning/NoSuchMethod"),
        Err(PermissionError::UnknownMethod(
            "/lnrpc.Lightning/NoSuchMethod".into()
        ))
    );
    // A uri: op grants exactly its method.
    let uri = MacaroonId::new(
        [0; 16],
        b"0",
        &[Op::uri("/lnrpc.Lightning/SendPaymentSync")],
    );
    assert!(
        table
            .check(&uri, "/lnrpc.Lightning/SendPaymentSync")
            .is_ok()
    );
    assert!(table.check(&uri, "/lnrpc.Lightning/GetInfo").is_err());
    assert!(!uri.is_read_only());
    // Through a whole macaroon.
    let root = RootKey::new(&[7; 32]);
    let mac = lnd::bake(&root, &ro);
    assert!(
        mac.has_permission_for_method(&table, "/lnrpc.Lightning/GetInfo")
            .unwrap()
    );
    assert!(
        !mac.has_permission_for_method(&table, "/lnrpc.Lightning/AddInvoice")
            .unwrap()
    );
    assert!(table.all_ops().contains(&Op::new("signer", "generate")));
}

#[test]
fn lnd_style_time_and_ip_checks() {
    let root = RootKey::new(&[1; 32]);
    let id = MacaroonId::new([2; 16], b"0", &Preset::ReadOnly.ops());
    let mut mac = lnd::bake(&root, &id);
    mac.add_first_party_caveat(b"time-before 2030-01-01T00:00:00.5+01:00")
        .unwrap();
    mac.add_first_party_caveat(b"ipaddr 10.0.0.1").unwrap();
    mac.add_first_party_caveat(b"iprange 10.0.0.0/24").unwrap();
    mac.add_first_party_caveat(b"lnd-custom account abcd")
        .unwrap();
    let exp = mac.expires_at().unwrap().unwrap();
    assert_eq!(exp, UnixTime::new(1_893_452_400, 500_000_000).unwrap());
    let before = UnixTime::new(exp.secs(), 499_999_999).unwrap();
    let ok_peer = Some("::ffff:10.0.0.1".parse().unwrap());
    let custom = LndCustom::new(|n: &str, v: &str| {
        if n == "account" && v == "abcd" {
            Ok(())
        } else {
            Err("no".into())
        }
    });
    let req = [Op::new("info", "read")];
    let m = "/lnrpc.Lightning/GetInfo";
    let check = |now, peer| {
        let c: [&dyn CaveatChecker; 3] = [&TimeBefore::new(now), &IpLock::new(peer), &custom];
        mac.check_mac_auth(&root, &c[..], &req, m)
    };
    assert!(check(before, ok_peer).is_ok());
    let e = check(exp, ok_peer).unwrap_err().to_string();
    assert!(e.contains("macaroon has expired"), "{e}");
    let e = check(before, Some("10.0.0.2".parse().unwrap()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("macaroon locked to different IP address"), "{e}");
    let e = check(before, None).unwrap_err().to_string();
    assert!(e.contains("unable to get peer info"), "{e}");
    // Without the custom checker the lnd-custom caveat is unknown, so verification fails.
    let c2 = (TimeBefore::new(before), IpLock::new(ok_peer));
    let e = mac.verify(&root, &c2).unwrap_err();
    assert_eq!(
        e,
        VerifyError::CaveatNotSatisfied {
            condition: "lnd-custom account abcd".into(),
            reason: "caveat not recognized".into()
        }
    );
}

#[test]
fn rfc3339_edges() {
    let p = UnixTime::parse_rfc3339;
    assert_eq!(p("1970-01-01T00:00:00Z"), Some(UnixTime::from_secs(0)));
    assert_eq!(p("1969-12-31T23:59:59Z"), Some(UnixTime::from_secs(-1)));
    assert_eq!(
        p("2000-02-29T12:00:00-00:30"),
        Some(UnixTime::from_secs(951_825_600 + 1800))
    );
    assert_eq!(
        p("2030-01-01T00:00:00.123456789Z"),
        UnixTime::new(1_893_456_000, 123_456_789)
    );
    for bad in [
        "",
        "2030-01-01",
        "2030-01-01T00:00:00",
        "2030-01-01 00:00:00Z",
        "2030-13-01T00:00:00Z",
        "2031-02-29T00:00:00Z",
        "2030-01-01T24:00:00Z",
        "2030-01-01T00:00:60Z",
        "2030-01-01T00:00:00.Z",
        "2030-01-01T00:00:00.1234567890Z",
        "2030-01-01T00:00:00+0100",
        "2030-01-01T00:00:00Zjunk",
        "+030-01-01T00:00:00Z",
    ] {
        assert_eq!(p(bad), None, "{bad}");
    }
    let t = UnixTime::new(1_893_456_000, 120_000_000).unwrap();
    assert_eq!(t.to_rfc3339_nano().unwrap(), "2030-01-01T00:00:00.12Z");
    assert_eq!(
        UnixTime::from_secs(-1).to_rfc3339_nano().unwrap(),
        "1969-12-31T23:59:59Z"
    );
    assert_eq!(UnixTime::from_secs(i64::MAX).to_rfc3339_nano(), None);
}

#[test]
fn secrets_are_redacted() {
    let root = RootKey::new(&[0xab; 32]);
    let mac = Macaroon::new(&root, b"id", b"loc");
    assert_eq!(format!("{root:?}"), "RootKey(<redacted>)");
    let dbg = format!("{mac:?}");
    assert!(dbg.contains("Signature(<redacted>)"), "{dbg}");
    let sig_hex = hex_encode(mac.signature().as_bytes());
    assert!(!dbg.contains(&sig_hex[..8]));
    assert!(!format!("{:?}", root.derive()).contains("ab"));
}

#[test]
fn third_party_caveats_are_carried_not_verified() {
    let root = RootKey::new(b"k");
    let mut mac = Macaroon::new(&root, b"id", b"");
    mac.add_first_party_caveat(b"a").unwrap();
    let mut caveats = mac.caveats().to_vec();
    caveats.push(Caveat::ThirdParty(ThirdPartyCaveat {
        location: b"https://tp".to_vec(),
        id: b"tp-id".to_vec(),
        verification_id: vec![9; 40],
    }));
    let chain_sig = keyed_hash2(mac.signature().as_bytes(), &[9; 40], b"tp-id");
    let tp = Macaroon::from_parts(
        vec![],
        b"id".to_vec(),
        caveats,
        Signature::from_bytes(chain_sig),
    );
    let back = Macaroon::decode(&tp.to_v2_bytes()).unwrap();
    assert_eq!(back, tp);
    assert_eq!(
        back.signature_chain(&root).last().unwrap(),
        back.signature()
    );
    assert_eq!(
        back.verify_signature(&root),
        Err(VerifyError::ThirdPartyCaveat { index: 1 })
    );
}

#[test]
fn strict_decoder_rejects_malformed_sections() {
    let root = RootKey::new(b"k");
    let good = Macaroon::new(&root, b"id", b"l").to_v2_bytes();
    let sig = &good[good.len() - 34..];
    let with = |mid: &[u8]| {
        let mut v = vec![2, 1, 1, b'l', 2, 2, b'i', b'd', 0];
        v.extend_from_slice(mid);
        v.push(0);
        v.extend_from_slice(sig);
        Macaroon::decode(&v)
    };
    assert!(with(&[]).is_ok());
    assert_eq!(
        with(&[1, 1, b'x', 0]),
        Err(DecodeError::CaveatWithoutIdentifier)
    );
    assert_eq!(
        with(&[1, 1, b'x', 2, 1, b'c', 0]),
        Err(DecodeError::LocationInFirstPartyCaveat)
    );
    assert_eq!(
        with(&[2, 1, b'c', 4, 0, 0]),
        Err(DecodeError::EmptyVerificationId)
    );
    assert_eq!(
        with(&[2, 1, b'c', 5, 1, 1, 0]),
        Err(DecodeError::InvalidCaveatField)
    );
    assert_eq!(
        with(&[2, 1, b'c', 4, 1, 1, 5, 0, 0]),
        Err(DecodeError::ExtraCaveatFields)
    );
    assert_eq!(
        with(&[2, 1, b'c', 2, 1, b'c', 0]),
        Err(DecodeError::FieldsOutOfOrder)
    );
    // Header without identifier / with extras.
    assert_eq!(
        Macaroon::decode(&[2, 1, 1, b'l', 0]),
        Err(DecodeError::InvalidHeader)
    );
    assert_eq!(
        Macaroon::decode(&[2, 2, 0, 4, 0, 0]),
        Err(DecodeError::InvalidHeader)
    );
    // Signature problems.
    assert_eq!(
        Macaroon::decode(&[2, 2, 0, 0, 0, 5, 0]),
        Err(DecodeError::MissingSignature)
    );
    assert_eq!(
        Macaroon::decode(&[2, 2, 0, 0, 0, 6, 1, 0]),
        Err(DecodeError::BadSignatureLength(1))
    );
    assert_eq!(
        Macaroon::decode(&[2, 2, 0, 0, 0]),
        Err(DecodeError::VarintTruncated)
    );
    assert_eq!(Macaroon::decode(&[2, 2]), Err(DecodeError::VarintTruncated));
    assert_eq!(
        Macaroon::decode(&[2, 2, 0]),
        Err(DecodeError::SectionTruncated)
    );
    let mut overflow = vec![2, 2];
    overflow.extend_from_slice(&[0xff; 11]);
    assert_eq!(
        Macaroon::decode(&overflow),
        Err(DecodeError::VarintOverflow)
    );
    // Size cap: a field claiming more than the cap is refused before anything is read.
    let mut big = vec![2, 2, 0x80, 0x80, 0x08];
    big.resize(MAX_ENCODED_LEN + 10, 0);
    assert_eq!(
        Macaroon::decode(&big),
        Err(DecodeError::TooLarge {
            max: MAX_ENCODED_LEN
        })
    );
    assert_eq!(Macaroon::from_hex("zz"), Err(DecodeError::InvalidHex));
    assert_eq!(
        Macaroon::from_base64("!!!"),
        Err(DecodeError::InvalidBase64)
    );
}

#[test]
fn caveat_limits() {
    let root = RootKey::new(b"k");
    let mut mac = Macaroon::new(&root, b"id", b"");
    for _ in 0..MAX_CAVEATS {
        mac.add_first_party_caveat(b"x").unwrap();
    }
    assert_eq!(
        mac.add_first_party_caveat(b"x"),
        Err(LimitError::TooManyCaveats { max: MAX_CAVEATS })
    );
    let back = Macaroon::decode(&mac.to_v2_bytes()).unwrap();
    assert_eq!(back, mac);
    // One more caveat on the wire is refused.
    let mut caveats = mac.caveats().to_vec();
    caveats.push(Caveat::FirstParty(b"x".to_vec()));
    let over = Macaroon::from_parts(vec![], b"id".to_vec(), caveats, mac.signature().clone());
    assert_eq!(
        Macaroon::decode(&over.to_v2_bytes()),
        Err(DecodeError::TooManyCaveats { max: MAX_CAVEATS })
    );
    let mut small = Macaroon::new(&root, b"id", b"");
    assert!(matches!(
        small.add_first_party_caveat(&vec![b'a'; MAX_ENCODED_LEN]),
        Err(LimitError::TooLarge { .. })
    ));
}

#[test]
fn id_decoder_errors() {
    assert_eq!(MacaroonId::decode(&[]), Err(lnd::IdError::Empty));
    assert_eq!(
        MacaroonId::decode(&[2]),
        Err(lnd::IdError::UnsupportedVersion(2))
    );
    assert_eq!(
        MacaroonId::decode(&[3, 0x0a, 5, 1]),
        Err(lnd::IdError::Truncated)
    );
    assert_eq!(
        MacaroonId::decode(&[3, 0x08, 1]),
        Err(lnd::IdError::BadWireType {
            field: 1,
            wire_type: 0
        })
    );
    assert_eq!(
        MacaroonId::decode(&[3, 0x1a, 2, 0x0a, 0]).unwrap().ops[0].entity,
        ""
    );
    assert_eq!(
        MacaroonId::decode(&[3, 0x1a, 3, 0x0a, 1, 0xff]),
        Err(lnd::IdError::InvalidUtf8)
    );
    assert_eq!(MacaroonId::decode(&[3, 0x03]), Err(lnd::IdError::ZeroField));
    assert_eq!(
        MacaroonId::decode(&[3, 0x0b]),
        Err(lnd::IdError::BadWireType {
            field: 1,
            wire_type: 3
        })
    );
    // Unknown fields are skipped (proto3), known ones still read.
    let id = MacaroonId::decode(&[3, 0x20, 7, 0x2d, 1, 2, 3, 4, 0x12, 1, b'0']).unwrap();
    assert_eq!(id.storage_id, b"0");
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn arb_caveat() -> impl Strategy<Value = Caveat> {
    prop_oneof![
        3 => arb_bytes(40).prop_map(Caveat::FirstParty),
        1 => (arb_bytes(20), arb_bytes(40), proptest::collection::vec(any::<u8>(), 1..60))
            .prop_map(|(location, id, verification_id)| Caveat::ThirdParty(ThirdPartyCaveat {
                location,
                id,
                verification_id,
            })),
    ]
}

fn arb_macaroon() -> impl Strategy<Value = Macaroon> {
    (
        arb_bytes(30),
        arb_bytes(300),
        proptest::collection::vec(arb_caveat(), 0..8),
        any::<[u8; 32]>(),
    )
        .prop_map(|(l, i, c, s)| Macaroon::from_parts(l, i, c, Signature::from_bytes(s)))
}

fn arb_id() -> impl Strategy<Value = MacaroonId> {
    let group = (
        "[a-z]{0,10}",
        proptest::collection::vec("[a-z:/.]{0,12}", 0..4),
    )
        .prop_map(|(entity, actions)| OpGroup { entity, actions });
    (
        arb_bytes(20),
        arb_bytes(24),
        proptest::collection::vec(group, 0..6),
    )
        .prop_map(|(nonce, storage_id, ops)| MacaroonId {
            nonce,
            storage_id,
            ops,
        })
}

proptest! {
    #[test]
    fn v2_round_trip(mac in arb_macaroon()) {
        let bytes = mac.to_v2_bytes();
        prop_assert_eq!(bytes.len(), mac.encoded_len());
        prop_assert_eq!(&Macaroon::decode(&bytes).unwrap(), &mac);
        prop_assert_eq!(&Macaroon::from_hex(&mac.to_hex()).unwrap(), &mac);
        prop_assert_eq!(&Macaroon::from_base64(&mac.to_base64()).unwrap(), &mac);
        prop_assert_eq!(&Macaroon::from_base64(&mac.to_base64url()).unwrap(), &mac);
        let two = v2::encode_slice(&[mac.clone(), mac.clone()]);
        prop_assert_eq!(v2::decode_slice(&two).unwrap(), vec![mac.clone(), mac]);
    }

    #[test]
    fn decode_never_panics(data in arb_bytes(400)) {
        let _ = Macaroon::decode(&data);
        let _ = v2::decode_slice(&data);
        let _ = MacaroonId::decode(&data);
        if let Ok((m, used)) = Macaroon::decode_prefix(&data) {
            prop_assert_eq!(&Macaroon::decode(&data[..used]).unwrap(), &m);
        }
    }

    #[test]
    fn mutated_macaroons_never_panic(mac in arb_macaroon(), pos in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = mac.to_v2_bytes();
        let i = pos % bytes.len();
        bytes[i] = byte;
        if let Ok(m) = Macaroon::decode(&bytes) {
            prop_assert_eq!(Macaroon::decode(&m.to_v2_bytes()).unwrap(), m);
        }
        bytes.truncate(i);
        prop_assert!(Macaroon::decode(&bytes).is_err());
    }

    #[test]
    fn caveats_chain_and_tampering_is_caught(
        key in arb_bytes(64), id in arb_bytes(64),
        conds in proptest::collection::vec(arb_bytes(30), 1..6), which in any::<usize>(),
    ) {
        let root = RootKey::new(&key);
        let mut mac = Macaroon::new(&root, &id, b"lnd");
        for c in &conds {
            mac.add_first_party_caveat(c).unwrap();
        }
        let back = Macaroon::decode(&mac.to_v2_bytes()).unwrap();
        prop_assert_eq!(back.verify_signature(&root).unwrap().len(), conds.len());
        // Change one caveat: the signature no longer matches.
        let mut cavs = back.caveats().to_vec();
        let k = which % cavs.len();
        let mut changed = cavs[k].id().to_vec();
        changed.push(b'!');
        cavs[k] = Caveat::FirstParty(changed);
        let bad = Macaroon::from_parts(b"lnd".to_vec(), id.clone(), cavs, back.signature().clone());
        prop_assert_eq!(bad.verify_signature(&root), Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn lnd_id_groups_canonical_ops(
        ops in proptest::collection::vec(
            ("[a-d]{1,2}", proptest::sample::select(vec!["read", "write", "generate"])),
            0..12,
        ),
        nonce in any::<[u8; 16]>(),
    ) {
        let ops: Vec<Op> = ops.iter().map(|(e, a)| Op::new(e, a)).collect();
        let id = MacaroonId::new(nonce, b"0", &ops);
        prop_assert_eq!(id.ops(), lnd::canonical_ops(&ops));
        // One group per entity, in order.
        let entities: Vec<&str> = id.ops.iter().map(|g| g.entity.as_str()).collect();
        let mut sorted = entities.clone();
        sorted.dedup();
        prop_assert_eq!(&entities, &sorted);
        for op in &ops {
            prop_assert!(id.allows(op));
        }
        let mac = lnd::bake(&RootKey::new(&nonce), &id);
        let back = Macaroon::decode(&mac.to_v2_bytes()).unwrap();
        prop_assert_eq!(back.lnd_ops().unwrap(), id.ops());
        prop_assert_eq!(back.is_read_only().unwrap(), ops.iter().all(|o| o.action == "read"));
    }

    #[test]
    fn lnd_id_round_trip(id in arb_id()) {
        let bytes = id.encode();
        prop_assert_eq!(MacaroonId::decode(&bytes).unwrap(), id);
    }

    #[test]
    fn rfc3339_round_trip(secs in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
        let t = UnixTime::new(secs, nanos).unwrap();
        let text = t.to_rfc3339_nano().unwrap();
        prop_assert_eq!(UnixTime::parse_rfc3339(&text), Some(t));
    }
}
