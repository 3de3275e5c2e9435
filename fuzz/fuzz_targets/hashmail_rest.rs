#![no_main]
//! The relay's REST inputs from browsers (or anyone): the create body (`CipherBoxAuth`
//! JSON) and the delete query (`desc.stream_id`, form-encoded base64) must parse or fail
//! cleanly; a stream ID read from a query survives our own encoding of it.
use libfuzzer_sys::fuzz_target;
use lnc_hashmail::json;

fuzz_target!(|data: &[u8]| {
    if let Ok(auth) = json::parse_create_body(data) {
        let again = json::parse_create_body(&serde_json::to_vec(&auth).expect("own JSON"))
            .expect("own create body");
        assert_eq!(again, auth);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Some(id)) = json::parse_delete_query(text) {
        let query = format!("desc.stream_id={}", json::b64_encode(&id));
        assert_eq!(json::parse_delete_query(&query).expect("own query"), Some(id));
    }
});
