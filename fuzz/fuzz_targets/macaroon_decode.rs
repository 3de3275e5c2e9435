#![no_main]
//! Macaroon decoders on arbitrary bytes: the V2 binary codec (a `macaroon` gRPC header or a
//! handshake payload is attacker-controlled), slices, LND ids, and the hex/base64 text forms.
//! Whatever decodes must re-encode to bytes that decode to the same value.
use libfuzzer_sys::fuzz_target;
use lnc_core::macaroon::lnd::MacaroonId;
use lnc_core::macaroon::verify::TimeBefore;
use lnc_core::macaroon::{Macaroon, RootKey, UnixTime, v2};

fuzz_target!(|data: &[u8]| {
    if let Ok((mac, used)) = Macaroon::decode_prefix(data) {
        let bytes = mac.to_v2_bytes();
        assert_eq!(bytes.len(), mac.encoded_len());
        let again = Macaroon::decode(&bytes).expect("re-encoded macaroon must decode");
        assert_eq!(again, mac);
        assert_eq!(again.to_v2_bytes(), bytes, "encoding is canonical");
        assert_eq!(Macaroon::decode(&data[..used]).expect("prefix decodes alone"), mac);
        assert_eq!(Macaroon::from_hex(&mac.to_hex()).expect("hex round trip"), mac);
        // Verification never panics, whatever the caveats say.
        let _ = mac.verify(&RootKey::new(b"fuzz"), &TimeBefore::new(UnixTime::from_secs(0)));
        let _ = mac.expires_at();
        let _ = mac.to_v2_json();
        if let Ok(id) = mac.lnd_id() {
            assert_eq!(MacaroonId::decode(&id.encode()).expect("id round trip"), id);
        }
    }
    if let Ok(macs) = v2::decode_slice(data) {
        assert_eq!(v2::decode_slice(&v2::encode_slice(&macs)).expect("slice round trip"), macs);
    }
    if let Ok(id) = MacaroonId::decode(data) {
        assert_eq!(MacaroonId::decode(&id.encode()).expect("id round trip"), id);
        let _ = (id.is_read_only(), id.session_id());
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = Macaroon::from_base64(text);
        let _ = Macaroon::from_hex(text);
        let _ = UnixTime::parse_rfc3339(text).map(|t| t.to_rfc3339_nano());
    }
});
