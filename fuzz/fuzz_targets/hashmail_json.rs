#![no_main]
//! The relay's WebSocket JSON frames: whatever a browser or a hostile client sends must parse
//! or fail cleanly, and what parses must survive a round trip through our own encoders.
use libfuzzer_sys::fuzz_target;
use lnc_hashmail::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cb) = json::parse_cipher_box(text) {
        let id = cb.desc.as_ref().map(|d| d.stream_id.0.clone()).unwrap_or_default();
        let again = json::parse_cipher_box(&json::send_frame(&id, &cb.msg.0)).expect("own frame");
        assert_eq!(again.msg.0, cb.msg.0);
        let enc = json::ResultFrameEncoder::new(&id);
        match json::parse_recv_frame(&enc.encode(&cb.msg.0)).expect("own result frame") {
            json::RecvFrame::Result(r) => assert_eq!(r.msg.0, cb.msg.0),
            json::RecvFrame::Error(_) => panic!("result frame parsed as error"),
        }
    }
    if let Ok(desc) = json::parse_desc(text) {
        let again = json::parse_desc(&json::desc_frame(&desc.stream_id.0)).expect("own desc");
        assert_eq!(again.stream_id.0, desc.stream_id.0);
    }
    if let Ok(json::RecvFrame::Error(st)) = json::parse_recv_frame(text) {
        let again = json::parse_recv_frame(&json::error_frame(st.code, &st.message)).expect("own error");
        assert!(matches!(again, json::RecvFrame::Error(s) if s.message == st.message));
    }
});
