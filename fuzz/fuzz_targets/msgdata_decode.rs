#![no_main]
//! MsgData decoding on arbitrary peer bytes, with the default cap and with a fuzzed cap:
//! never panics, never returns more than the cap, and accepted frames re-encode exactly
//! (minus the version byte and trailing bytes, which are accepted but never emitted).
use libfuzzer_sys::fuzz_target;
use lnc_core::msgdata::{self, HEADER_LEN, MsgDataCodec};

fuzz_target!(|data: &[u8]| {
    let _ = msgdata::decode(data);
    let Some((cap_bytes, frame)) = data.split_first_chunk::<2>() else {
        return;
    };
    // Small caps so the "too large" path is reached with short inputs.
    let codec = MsgDataCodec::with_max_payload_len(u32::from(u16::from_be_bytes(*cap_bytes)));
    if let Ok(m) = codec.decode(frame) {
        assert!(m.payload.len() as u64 <= u64::from(codec.max_payload_len()));
        assert_eq!(HEADER_LEN + m.payload.len() + m.trailing_len, frame.len());
        let re = codec.encode(m.payload).expect("payload within cap encodes");
        assert_eq!(re[0], msgdata::VERSION);
        assert_eq!(&re[1..], &frame[1..frame.len() - m.trailing_len]);
    }
});
