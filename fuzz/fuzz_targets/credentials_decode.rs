#![no_main]
//! Stored-credentials decoders on arbitrary bytes: the binary credentials codec (what the
//! password decrypts to) and the JSON profile envelope (a file anyone may have edited).
//! Whatever decodes must re-encode to bytes that decode to the same value.
use libfuzzer_sys::fuzz_target;
use lnc_client::{Credentials, EncryptedCredentials};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Credentials::from_bytes(data) {
        let bytes = c.to_bytes();
        assert_eq!(&bytes[..], data, "the binary encoding is canonical");
        let _ = (c.expiry(), c.permissions(), c.connection_state().stream_ids());
    }
    if let Ok(env) = EncryptedCredentials::from_json(data) {
        let again = EncryptedCredentials::from_json(env.to_json().as_bytes())
            .expect("re-encoded envelope must decode");
        assert_eq!(again, env);
    }
});
