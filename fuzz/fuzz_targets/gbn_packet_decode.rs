#![no_main]
//! GBN packet decode: never panics; whatever decodes re-encodes canonically to a packet
//! that decodes the same and is never longer than the input (trailing bytes are ignored).
use libfuzzer_sys::fuzz_target;
use lnc_core::gbn::wire::{DATA_HEADER_LEN, Packet};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::decode(data) {
        let enc = p.to_vec();
        assert_eq!(enc.len(), p.encoded_len());
        assert!(enc.len() <= data.len());
        assert_eq!(Packet::decode(&enc), Ok(p));
        if let Packet::Data { .. } = p {
            assert!(enc.len() >= DATA_HEADER_LEN);
        }
    }
});
