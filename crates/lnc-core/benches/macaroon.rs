//! Macaroon benchmarks: what LND (or the LND stand-in) pays per call to decode and verify a
//! session macaroon, against the floor of that work, the raw HMAC-SHA256 chain.
//!
//! Run: `cargo bench -p lnc-core --bench macaroon`.

use divan::{Bencher, black_box};
use hmac::{Hmac, KeyInit, Mac};
use lnc_core::macaroon::lnd::{self, MacaroonId, Op, Preset};
use lnc_core::macaroon::verify::{IpLock, LndCustom, TimeBefore, time_before_caveat};
use lnc_core::macaroon::{Macaroon, RootKey, UnixTime};
use sha2::Sha256;

fn main() {
    divan::main();
}

const ROOT: [u8; 32] = [0xa5; 32];

/// An admin session macaroon as litd hands out: LND id with every admin op, `time-before`.
fn session_macaroon() -> Vec<u8> {
    let id = MacaroonId::new(
        [7; 16],
        &MacaroonId::session_storage_id([0, 0, 0, 1]),
        &Preset::Admin.ops(),
    );
    let mut mac = lnd::bake(&RootKey::new(&ROOT), &id);
    let cav = time_before_caveat(UnixTime::from_secs(1_893_456_000)).unwrap_or_default();
    let _ = mac.add_first_party_caveat(cav.as_bytes());
    mac.to_v2_bytes()
}

fn now() -> UnixTime {
    UnixTime::from_secs(1_800_000_000)
}

/// Decode only.
#[divan::bench]
fn decode(b: Bencher) {
    let bytes = session_macaroon();
    b.counter(divan::counter::BytesCount::new(bytes.len()))
        .bench(|| Macaroon::decode(black_box(&bytes)));
}

/// Encode only.
#[divan::bench]
fn encode(b: Bencher) {
    let mac = Macaroon::decode(&session_macaroon()).unwrap_or_else(|e| panic!("{e}"));
    b.bench(|| black_box(&mac).to_v2_bytes());
}

/// Decode, then verify signature and the `time-before` caveat.
#[divan::bench]
fn decode_verify(b: Bencher) {
    let bytes = session_macaroon();
    let root = RootKey::new(&ROOT);
    let checker = TimeBefore::new(now());
    let ok =
        |mac: Result<Macaroon, _>| mac.is_ok_and(|m: Macaroon| m.verify(&root, &checker).is_ok());
    assert!(ok(Macaroon::decode(&bytes)), "bench macaroon must verify");
    b.bench(|| ok(Macaroon::decode(black_box(&bytes))));
}

/// What LND's CheckMacAuth does per call: decode, decode the id, verify, check caveats with
/// LND's checkers, check the method's ops.
#[divan::bench]
fn decode_check_mac_auth(b: Bencher) {
    let bytes = session_macaroon();
    let root = RootKey::new(&ROOT);
    let checker = (
        TimeBefore::new(now()),
        IpLock::new(Some([127, 0, 0, 1].into())),
        LndCustom::new(|_: &str, _: &str| Ok(())),
    );
    let required = [Op::new("offchain", "write")];
    let m = "/lnrpc.Lightning/SendPaymentSync";
    let auth = |bytes: &[u8]| {
        Macaroon::decode(bytes)
            .is_ok_and(|mac| mac.check_mac_auth(&root, &checker, &required, m).is_ok())
    };
    assert!(auth(&bytes), "bench macaroon must be authorized");
    b.bench(|| auth(black_box(&bytes)));
}

/// The floor: the same HMAC-SHA256 chain (key derivation, id, one caveat) on the same bytes,
/// with no parsing or checks.
#[divan::bench]
fn raw_hmac_chain(b: Bencher) {
    let mac = Macaroon::decode(&session_macaroon()).unwrap_or_else(|e| panic!("{e}"));
    let id = mac.identifier().to_vec();
    let cav = mac.caveats()[0].id().to_vec();
    b.bench(|| {
        let h = |k: &[u8], d: &[u8]| -> [u8; 32] {
            let mut m =
                <Hmac<Sha256> as KeyInit>::new_from_slice(k).unwrap_or_else(|_| unreachable!());
            m.update(d);
            m.finalize().into_bytes().into()
        };
        let k = h(b"macaroons-key-generator", black_box(&ROOT));
        let s = h(&k, black_box(&id));
        h(&s, black_box(&cav))
    });
}
