#![no_main]
//! The transport record decoder fed arbitrary bytes in arbitrary chunks (it must error,
//! never panic, and never buffer more than one record), plus a seal/open round trip of the
//! same bytes as payloads to check the decoder against the sealer.
use libfuzzer_sys::fuzz_target;
use lnc_core::noise::{
    MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN, RecordDecoder, TransportReceiver, TransportSender,
};

const KEY: [u8; 32] = [0x5a; 32];
const SALT: [u8; 32] = [0xa5; 32];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(mode >> 1).max(1);
    if mode & 1 == 0 {
        // Raw bytes, optionally after a valid record so the second header is reached.
        let mut input = Vec::new();
        if mode & 2 != 0 {
            let mut tx = TransportSender::from_raw_for_tests(KEY, SALT);
            tx.seal(b"valid", &mut input).expect("small record");
        }
        input.extend_from_slice(rest);
        let mut dec = RecordDecoder::new(TransportReceiver::from_raw_for_tests(KEY, SALT));
        let mut off = 0;
        while off < input.len() {
            let end = (off + chunk).min(input.len());
            match dec.decode(&input[off..end]) {
                Ok(d) => {
                    assert!(d.consumed > 0 && d.consumed <= end - off);
                    if let Some(p) = d.plaintext {
                        assert!(p.len() <= MAX_RECORD_PAYLOAD);
                    }
                    off += d.consumed;
                }
                Err(_) => break,
            }
        }
        // The header parser alone.
        if let Some(h) = rest.get(..RECORD_HEADER_LEN) {
            let mut rx = TransportReceiver::from_raw_for_tests(KEY, SALT);
            let h: [u8; RECORD_HEADER_LEN] = h.try_into().expect("18 bytes");
            let _ = rx.open_header(&h);
        }
    } else {
        // Round trip: split `rest` into records at fuzz-chosen sizes, decode in chunks.
        let mut tx = TransportSender::from_raw_for_tests(KEY, SALT);
        let mut wire = Vec::new();
        let mut msgs = Vec::new();
        for (n, part) in rest.chunks(chunk * 3 + 1).enumerate() {
            if n % 2 == 0 {
                tx.seal(part, &mut wire).expect("small record");
                msgs.push(part.to_vec());
            } else {
                tx.seal_all(part, &mut wire);
                msgs.push(part.to_vec());
            }
        }
        let mut dec = RecordDecoder::new(TransportReceiver::from_raw_for_tests(KEY, SALT));
        let mut got = Vec::new();
        for c in wire.chunks(chunk) {
            dec.decode_all(c, |p| got.push(p.to_vec()))
                .expect("own records open");
        }
        assert!(dec.is_at_record_boundary());
        assert_eq!(got, msgs);
    }
});
