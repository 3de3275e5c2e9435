//! Noise benchmarks: transport throughput against raw ChaCha20-Poly1305 on the same 32 KiB
//! buffers, and the CPU cost of the XX (without scrypt) and KK handshakes.
//!
//! Run: `cargo bench -p lnc-core --bench noise`. The ratio that matters is
//! `transport::lnc_in_place` / `transport::raw_chacha20poly1305` (same bytes, same AEAD,
//! plus our header record and rotation); `lnc_copying` adds the bytes-in/bytes-out copies.

#![allow(clippy::unwrap_used)] // benchmark code: a failure should abort loudly

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use lnc_core::keys::SecretKey;
use lnc_core::noise::{
    KkInitiator, KkResponder, NoiseConfig, RecordDecoder, TransportReceiver, TransportSender,
    XxInitiator, XxResponder, record_len,
};
use lnc_core::spake2::MaskScalar;

const LEN: usize = 32 * 1024;

fn main() {
    divan::main();
}

#[divan::bench_group]
mod transport {
    use super::*;

    /// Baseline: seal + open of one 32 KiB buffer in place with the bare AEAD.
    #[divan::bench]
    fn raw_chacha20poly1305(b: Bencher) {
        let aead = ChaCha20Poly1305::new(&Key::from([7u8; 32]));
        let mut buf = vec![0xabu8; LEN];
        let mut n = 0u64;
        b.counter(BytesCount::new(LEN)).bench_local(|| {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&n.to_le_bytes());
            let nonce = Nonce::from(nonce);
            n += 1;
            let tag = aead
                .encrypt_inout_detached(&nonce, &[], buf.as_mut_slice().into())
                .unwrap();
            aead.decrypt_inout_detached(&nonce, &[], buf.as_mut_slice().into(), &tag)
                .unwrap();
            black_box(&buf);
        });
    }

    /// Ours, in place: one record (header + body, rotation included) sealed and opened.
    #[divan::bench]
    fn lnc_in_place(b: Bencher) {
        let mut tx = TransportSender::from_raw_for_tests([7u8; 32], [9u8; 32]);
        let mut rx = TransportReceiver::from_raw_for_tests([7u8; 32], [9u8; 32]);
        let mut rec = vec![0xabu8; record_len(LEN)];
        b.counter(BytesCount::new(LEN)).bench_local(|| {
            tx.seal_in_place(&mut rec).unwrap();
            let pt = rx.open_in_place(&mut rec).unwrap();
            black_box(pt);
        });
    }

    /// Ours, bytes in / bytes out: `seal` into a reused Vec, then the stream decoder.
    #[divan::bench]
    fn lnc_copying(b: Bencher) {
        let mut tx = TransportSender::from_raw_for_tests([7u8; 32], [9u8; 32]);
        let mut dec =
            RecordDecoder::new(TransportReceiver::from_raw_for_tests([7u8; 32], [9u8; 32]));
        let payload = vec![0xabu8; LEN];
        let mut wire = Vec::with_capacity(record_len(LEN));
        b.counter(BytesCount::new(LEN)).bench_local(|| {
            wire.clear();
            tx.seal(&payload, &mut wire).unwrap();
            let d = dec.decode(&wire).unwrap();
            let d = if d.plaintext.is_some() {
                d
            } else {
                let c = d.consumed;
                dec.decode(&wire[c..]).unwrap()
            };
            black_box(d.plaintext);
        });
    }
}

#[divan::bench_group]
mod handshake {
    use super::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes(&[b; 32]).unwrap()
    }

    /// Full XXeke+SPAKE2 handshake, both sides (3 acts), scrypt excluded.
    #[divan::bench]
    fn xx_both_sides(b: Bencher) {
        let cfg = NoiseConfig::default();
        let (cs, ss) = (key(1), key(2));
        let w = MaskScalar::from_stretched(&[3u8; 32]);
        let auth = vec![b'a'; 300];
        b.bench_local(|| {
            let i = XxInitiator::with_ephemeral(&cfg, &cs, &w, key(4)).unwrap();
            let r = XxResponder::with_ephemeral(&cfg, &ss, &w, &auth, key(5)).unwrap();
            let (i, a1) = i.write_act1().unwrap();
            let (r, a2) = r.read_act1(&a1).unwrap().write_act2().unwrap();
            let (a3, ie) = i.read_act2(&a2).unwrap().write_act3().unwrap();
            let re = r.read_act3(&a3).unwrap();
            black_box((ie, re));
        });
    }

    /// Full KK handshake, both sides (2 acts).
    #[divan::bench]
    fn kk_both_sides(b: Bencher) {
        let cfg = NoiseConfig::default();
        let (cs, ss) = (key(1), key(2));
        let (cp, sp) = (cs.public_key(), ss.public_key());
        let auth = vec![b'a'; 300];
        b.bench_local(|| {
            let i = KkInitiator::with_ephemeral(&cfg, &cs, &sp, key(4)).unwrap();
            let r = KkResponder::with_ephemeral(&cfg, &ss, &cp, &auth, key(5)).unwrap();
            let (i, a1) = i.write_act1().unwrap();
            let (a2, re) = r.read_act1(&a1).unwrap().write_act2().unwrap();
            let ie = i.read_act2(&a2).unwrap();
            black_box((ie, re));
        });
    }
}
