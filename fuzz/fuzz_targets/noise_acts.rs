#![no_main]
//! Every Noise handshake act parser, in each role. The first byte picks the parser (and the
//! version range); the rest is the act. Parsers must return an error, never panic, and
//! never allocate beyond the auth-data cap.
//!
//! Selectors 5–7 instead run a full handshake whose auth data is the fuzz input, to check
//! that what the initiator receives is exactly what the responder sent.
use libfuzzer_sys::fuzz_target;
use lnc_core::keys::SecretKey;
use lnc_core::noise::{
    HandshakeVersion, KkInitiator, KkResponder, NoiseConfig, XxInitiator, XxResponder,
};
use lnc_core::spake2::MaskScalar;

fn key(b: u8) -> SecretKey {
    SecretKey::from_bytes(&[b; 32]).expect("fixed key is valid")
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, act)) = data.split_first() else {
        return;
    };
    let version = match (sel >> 4) % 4 {
        0 => NoiseConfig::default(),
        1 => NoiseConfig::pinned(HandshakeVersion::V0),
        2 => NoiseConfig::pinned(HandshakeVersion::V1),
        _ => NoiseConfig::pinned(HandshakeVersion::V2),
    };
    // A small cap keeps the v1 length field interesting without large allocations.
    let cfg = NoiseConfig {
        max_auth_data_len: 4096,
        ..version
    };
    let w = MaskScalar::from_stretched(&[7u8; 32]);
    let (cs, ss, ce, se) = (key(0x11), key(0x22), key(0x33), key(0x44));
    match sel & 0x0f {
        0 => {
            let _ = XxResponder::with_ephemeral(&cfg, &ss, &w, b"auth", se)
                .expect("valid config")
                .read_act1(act);
        }
        1 => {
            let (i, _) = XxInitiator::with_ephemeral(&cfg, &cs, &w, ce)
                .expect("valid config")
                .write_act1()
                .expect("act 1");
            let _ = i.read_act2(act);
        }
        2 => {
            let (_, a1) = XxInitiator::with_ephemeral(&cfg, &cs, &w, ce)
                .expect("valid config")
                .write_act1()
                .expect("act 1");
            let r = XxResponder::with_ephemeral(&cfg, &ss, &w, b"auth", se).expect("valid config");
            let (r, _) = r
                .read_act1(&a1)
                .expect("own act 1")
                .write_act2()
                .expect("act 2");
            let _ = r.read_act3(act);
        }
        3 => {
            let kk = NoiseConfig::default();
            let _ = KkResponder::with_ephemeral(&kk, &ss, &cs.public_key(), b"auth", se)
                .expect("valid config")
                .read_act1(act);
        }
        4 => {
            let kk = NoiseConfig {
                max_auth_data_len: 4096,
                ..NoiseConfig::default()
            };
            let (i, _) = KkInitiator::with_ephemeral(&kk, &cs, &ss.public_key(), ce)
                .expect("valid config")
                .write_act1()
                .expect("act 1");
            let _ = i.read_act2(act);
        }
        5..=7 => {
            // Round trip with the fuzz input as auth data.
            let big = NoiseConfig {
                max_auth_data_len: 1 << 20,
                ..version
            };
            let (i, a1) = XxInitiator::with_ephemeral(&big, &cs, &w, ce)
                .expect("valid config")
                .write_act1()
                .expect("act 1");
            let r = XxResponder::with_ephemeral(&big, &ss, &w, act, se).expect("valid config");
            let r = r.read_act1(&a1).expect("own act 1");
            match r.write_act2() {
                Ok((r, a2)) => {
                    let i = i.read_act2(&a2).expect("own act 2");
                    assert_eq!(i.auth_data(), act);
                    let (a3, ce) = i.write_act3().expect("act 3");
                    let se = r.read_act3(&a3).expect("own act 3");
                    assert_eq!(ce.handshake_hash(), se.handshake_hash());
                }
                Err(_) => assert!(big.max_version == HandshakeVersion::V0 && act.len() > 498),
            }
        }
        _ => {}
    }
});
