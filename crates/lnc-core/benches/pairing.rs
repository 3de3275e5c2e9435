//! Pairing costs: the scrypt stretch (once per XX connection attempt; Go ≈ 176 ms on this
//! class of machine), phrase parsing, the SIDs, and MsgData framing.
//!
//! Run: `cargo bench -p lnc-core --bench pairing`

use divan::{Bencher, black_box};
use lnc_core::keys::SecretKey;
use lnc_core::msgdata;
use lnc_core::pairing::{self, PairingPhrase, StreamId};

const PHRASE: &str = "void clay usual ahead liar shaft theory marble visual hockey";
const MESSY: &str = "  VOID clay\tUsual ahead\nliar shaft  theory marble visual HOCKEY ";

fn main() {
    divan::main();
}

fn phrase() -> Option<PairingPhrase> {
    PairingPhrase::parse(PHRASE).ok()
}

/// The full password stretch as the XX handshake needs it (scrypt N=2^16, r=8, p=1).
#[divan::bench(sample_count = 20, sample_size = 1)]
fn scrypt_stretch(b: Bencher) {
    let Some(p) = phrase() else { return };
    b.bench(|| pairing::stretch(black_box(p.entropy())));
}

/// Baseline for the ratio: the scrypt crate called directly with the same inputs.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn scrypt_raw_crate(b: Bencher) {
    let Some(p) = phrase() else { return };
    let Ok(params) = scrypt::Params::new(16, 8, 1) else {
        return;
    };
    b.bench(|| {
        let mut out = [0u8; 32];
        let e = black_box(p.entropy().as_bytes());
        let _ = scrypt::scrypt(e, e, &params, &mut out);
        out
    });
}

/// Stretch plus reduction to the SPAKE2 scalar.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn mask_scalar(b: Bencher) {
    let Some(p) = phrase() else { return };
    b.bench(|| pairing::mask_scalar(black_box(p.entropy())));
}

/// Parsing a clean phrase.
#[divan::bench]
fn phrase_parse() -> bool {
    PairingPhrase::parse(black_box(PHRASE)).is_ok()
}

/// Baseline for the ratio: ten exact look-ups with the bip39 crate (no splitting, no case
/// folding, no packing).
#[divan::bench]
fn word_lookup_raw_bip39() -> u32 {
    PHRASE
        .split(' ')
        .filter_map(|w| bip39::Language::English.find_word(black_box(w)))
        .map(u32::from)
        .sum()
}

/// Parsing with mixed case and odd whitespace.
#[divan::bench]
fn phrase_parse_messy() -> bool {
    PairingPhrase::parse(black_box(MESSY)).is_ok()
}

/// An unknown word: the error path computes suggestions over the whole list.
#[divan::bench]
fn phrase_parse_unknown_word() -> bool {
    PairingPhrase::parse(black_box(
        "void clai usual ahead liar shaft theory marble visual hockey",
    ))
    .is_err()
}

/// Entropy → canonical phrase string.
#[divan::bench]
fn phrase_to_string(b: Bencher) {
    let Some(p) = phrase() else { return };
    b.bench(|| black_box(&p).to_phrase_string());
}

/// First-connection SID: SHA-512 of the entropy.
#[divan::bench]
fn sid_pairing(b: Bencher) {
    let Some(p) = phrase() else { return };
    b.bench(|| StreamId::pairing(black_box(p.entropy())));
}

/// Post-pairing SID: ECDH + HMAC + SHA-512.
#[divan::bench]
fn sid_post_pairing(b: Bencher) {
    let (Ok(a), Ok(c)) = (
        SecretKey::from_bytes(&[0x11; 32]),
        SecretKey::from_bytes(&[0x22; 32]),
    ) else {
        return;
    };
    let remote = c.public_key();
    b.bench(|| StreamId::post_pairing(black_box(&a), black_box(&remote)));
}

/// MsgData framing of a 32 KiB payload (Go's largest transport write) and decoding it back.
#[divan::bench]
fn msgdata_encode_32k(b: Bencher) {
    let payload = vec![0x5a_u8; 32 * 1024];
    b.bench(|| msgdata::encode(black_box(&payload)).map(|f| f.len()));
}

/// Decoding borrows: cost is independent of the payload size.
#[divan::bench]
fn msgdata_decode_32k(b: Bencher) {
    let Ok(frame) = msgdata::encode(&vec![0x5a_u8; 32 * 1024]) else {
        return;
    };
    b.bench(|| msgdata::decode(black_box(&frame)).map(|m| m.payload.len()));
}
