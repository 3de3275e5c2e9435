//! JSON frames of the WebSocket/REST gateway, as the Go relay's grpc-gateway
//! produces and parses them (`UseProtoNames`, `EmitUnpopulated`).
//!
//! * receive socket: the client sends one [`CipherBoxDesc`] frame, the relay
//!   answers with one [`RecvFrame::Result`] per message or a
//!   [`RecvFrame::Error`];
//! * send socket: the client sends one [`CipherBox`] per frame.
//!
//! `bytes` fields are standard base64 with padding on output; on input both the
//! standard and the URL-safe alphabet, padded or not, are accepted (protojson
//! does the same, and browsers may use either).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::pb;

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STD_IN: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_IN: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Encodes bytes as protojson does: standard alphabet, with padding.
pub fn b64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes a protojson `bytes` value: standard or URL-safe alphabet, padding
/// optional. A string mixing both alphabets is refused.
pub fn b64_decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if s.bytes().any(|b| b == b'-' || b == b'_') {
        URL_IN.decode(s)
    } else {
        STD_IN.decode(s)
    }
}

/// A protobuf `bytes` field in JSON form (base64 string; `null` = empty).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct B64(pub Vec<u8>);

impl core::fmt::Debug for B64 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Message bodies are ciphertext, but never log them in full anyway.
        write!(f, "B64({} bytes)", self.0.len())
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64_encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Option<std::borrow::Cow<'de, str>> = Option::deserialize(d)?;
        match s {
            None => Ok(B64(Vec::new())),
            Some(s) => b64_decode(&s)
                .map(B64)
                .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}"))),
        }
    }
}

/// `CipherBoxDesc`: names one simplex stream. The receive socket's first frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CipherBoxDesc {
    /// The 64-byte stream id.
    #[serde(default)]
    pub stream_id: B64,
}

/// `CipherBox`: one message (one go-back-N packet) on a stream. One send-socket
/// frame, and the `result` of one receive-socket frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CipherBox {
    /// The stream; the relay only looks at the first frame's.
    #[serde(default)]
    pub desc: Option<CipherBoxDesc>,
    /// The message bytes.
    #[serde(default)]
    pub msg: B64,
}

/// `LndAuth`: the empty auth marker of `CipherBoxAuth`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LndAuth {}

/// `CipherBoxAuth`: body of REST create (POST) and delete (query params).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CipherBoxAuth {
    /// The stream to create or delete.
    #[serde(default)]
    pub desc: Option<CipherBoxDesc>,
    /// Must be present (as `{}`) for the Go relay to accept the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lnd_auth: Option<LndAuth>,
}

/// grpc-gateway's status JSON: `{"code":…,"message":…,"details":[]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// gRPC status code number (2 = Unknown for the Go relay's plain errors).
    #[serde(default)]
    pub code: i32,
    /// Human-readable message; Go clients substring-match it.
    #[serde(default)]
    pub message: String,
    /// Always empty here.
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
}

/// One frame from the relay on a receive socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecvFrame {
    /// `{"result":{CipherBox}}`: one message.
    Result(CipherBox),
    /// `{"error":{Status}}`: the relay ends the stream.
    Error(Status),
}

/// Why a JSON frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Not JSON of the expected shape (or bad base64 inside).
    #[error("hashmail JSON frame: {0}")]
    Json(#[from] serde_json::Error),
    /// A REST query parameter that is not base64.
    #[error("desc.stream_id: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// Parses the body of REST create (`POST`): a `CipherBoxAuth` JSON.
pub fn parse_create_body(body: &[u8]) -> Result<CipherBoxAuth, FrameError> {
    Ok(serde_json::from_slice(body)?)
}

/// The `desc.stream_id` query parameter of REST delete (base64), form-decoded as
/// grpc-gateway does; `None` when absent. A standard-base64 `+` arrives as a space when
/// the client did not escape it: undone.
pub fn parse_delete_query(query: &str) -> Result<Option<Vec<u8>>, FrameError> {
    let mut sid = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "desc.stream_id" {
            sid = Some(b64_decode(&v.replace(' ', "+"))?);
        }
    }
    Ok(sid)
}

/// Parses a send-socket frame (`CipherBox` JSON).
pub fn parse_cipher_box(text: &str) -> Result<CipherBox, FrameError> {
    Ok(serde_json::from_str(text)?)
}

/// Parses a receive-socket init frame (`CipherBoxDesc` JSON).
pub fn parse_desc(text: &str) -> Result<CipherBoxDesc, FrameError> {
    Ok(serde_json::from_str(text)?)
}

/// grpc-gateway's status body without the `{"error":…}` wrapper. Both fields are
/// required, so only a real status matches.
#[derive(Deserialize)]
struct BareStatus {
    code: i32,
    message: String,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

/// Parses a relay → client frame on the receive socket.
///
/// Also takes grpc-gateway's bare status body (`{"code":2,"message":"stream not
/// found","details":[]}`) as [`RecvFrame::Error`]: aperture's WebSocket gateway sends it
/// when `RecvStream` fails before its first message (a mailbox that does not exist yet),
/// and reading it as a relay error keeps "stream not found" (Session Not Found) instead
/// of an undecodable frame.
pub fn parse_recv_frame(text: &str) -> Result<RecvFrame, FrameError> {
    match serde_json::from_str(text) {
        Ok(f) => Ok(f),
        Err(e) => match serde_json::from_str::<BareStatus>(text) {
            Ok(b) => Ok(RecvFrame::Error(Status {
                code: b.code,
                message: b.message,
                details: b.details,
            })),
            Err(_) => Err(e.into()),
        },
    }
}

/// grpc-gateway's error body for a REST call: `{"code":…,"message":…,"details":[]}`, with
/// the message JSON-escaped (it may quote what a client sent).
pub fn status_json(code: i32, message: &str) -> String {
    let status = Status {
        code,
        message: message.to_owned(),
        details: Vec::new(),
    };
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string(&status).unwrap_or_default()
}

/// The `{"error":…}` frame the relay sends before ending a socket. Byte-equal
/// to the Go relay's frame for the same code and message.
pub fn error_frame(code: i32, message: &str) -> String {
    let frame = RecvFrame::Error(Status {
        code,
        message: message.to_owned(),
        details: Vec::new(),
    });
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string(&frame).unwrap_or_default()
}

/// Builds `{"result":…}` frames for one stream cheaply: the stream id part is
/// encoded once per reader, each message only appends its base64 body.
#[derive(Clone, Debug)]
pub struct ResultFrameEncoder {
    prefix: String,
}

impl ResultFrameEncoder {
    /// Prepares frames for the stream `stream_id`.
    pub fn new(stream_id: &[u8]) -> Self {
        let prefix = format!(
            "{{\"result\":{{\"desc\":{{\"stream_id\":\"{}\"}},\"msg\":\"",
            b64_encode(stream_id)
        );
        Self { prefix }
    }

    /// One frame carrying `msg`.
    pub fn encode(&self, msg: &[u8]) -> String {
        let mut out = String::with_capacity(self.prefix.len() + msg.len().div_ceil(3) * 4 + 3);
        out.push_str(&self.prefix);
        base64::engine::general_purpose::STANDARD.encode_string(msg, &mut out);
        out.push_str("\"}}");
        out
    }
}

/// A send-socket frame for `msg` on `stream_id`, as the Go client writes it.
pub fn send_frame(stream_id: &[u8], msg: &[u8]) -> String {
    format!(
        "{{\"desc\":{{\"stream_id\":\"{}\"}},\"msg\":\"{}\"}}",
        b64_encode(stream_id),
        b64_encode(msg)
    )
}

/// The receive-socket init frame for `stream_id`.
pub fn desc_frame(stream_id: &[u8]) -> String {
    format!("{{\"stream_id\":\"{}\"}}", b64_encode(stream_id))
}

impl From<CipherBoxDesc> for pb::CipherBoxDesc {
    fn from(d: CipherBoxDesc) -> Self {
        pb::CipherBoxDesc {
            stream_id: d.stream_id.0.into(),
        }
    }
}

impl From<pb::CipherBoxDesc> for CipherBoxDesc {
    fn from(d: pb::CipherBoxDesc) -> Self {
        CipherBoxDesc {
            stream_id: B64(d.stream_id.to_vec()),
        }
    }
}

impl From<CipherBox> for pb::CipherBox {
    fn from(b: CipherBox) -> Self {
        pb::CipherBox {
            desc: b.desc.map(Into::into),
            msg: b.msg.0.into(),
        }
    }
}

impl From<pb::CipherBox> for CipherBox {
    fn from(b: pb::CipherBox) -> Self {
        CipherBox {
            desc: b.desc.map(Into::into),
            msg: B64(b.msg.to_vec()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn bare_gateway_status_is_an_error_frame() {
        let f = super::parse_recv_frame(r#"{"code":2,"message":"stream not found","details":[]}"#)
            .unwrap();
        match f {
            super::RecvFrame::Error(st) => {
                assert_eq!((st.code, st.message.as_str()), (2, "stream not found"))
            }
            other => panic!("{other:?}"),
        }
        assert!(super::parse_recv_frame(r#"{"code":2}"#).is_err());
        assert!(super::parse_recv_frame(r#"{"other":1}"#).is_err());
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn result_frame_matches_go_relay_shape() {
        let id = [7u8; 64];
        let enc = ResultFrameEncoder::new(&id);
        let frame = enc.encode(&[1, 20]);
        let expect = format!(
            "{{\"result\":{{\"desc\":{{\"stream_id\":\"{}\"}},\"msg\":\"ARQ=\"}}}}",
            b64_encode(&id)
        );
        assert_eq!(frame, expect);
        let serde_form = serde_json::to_string(&RecvFrame::Result(CipherBox {
            desc: Some(CipherBoxDesc {
                stream_id: B64(id.to_vec()),
            }),
            msg: B64(vec![1, 20]),
        }))
        .unwrap();
        assert_eq!(frame, serde_form);
    }

    #[test]
    fn error_frame_is_byte_equal_to_go() {
        assert_eq!(
            error_frame(2, "stream not found"),
            r#"{"error":{"code":2,"message":"stream not found","details":[]}}"#
        );
    }

    #[test]
    fn status_json_escapes_the_message() {
        assert_eq!(
            status_json(5, "Not Found"),
            r#"{"code":5,"message":"Not Found","details":[]}"#
        );
        // Messages can quote client input: they must stay one valid JSON string.
        let body = status_json(3, "bad \"id\"\n\\");
        let back: Status = serde_json::from_str(&body).unwrap();
        assert_eq!(back.message, "bad \"id\"\n\\");
    }

    #[test]
    fn parses_go_client_frames_with_spaces() {
        let f = r#"{"desc":{"stream_id":"skk9/Z6lRRUsBxRfWE5Sje8niHutvpLi+BuVoUHqPzzMdS9Sv/GxbRPN+RJEK5EBpaunJBsoqGYRcgu6nsq3tA=="}, "msg":"ARQ="}"#;
        let b = parse_cipher_box(f).unwrap();
        assert_eq!(b.desc.unwrap().stream_id.0.len(), 64);
        assert_eq!(b.msg.0, vec![1, 20]);
    }

    #[test]
    fn accepts_both_alphabets_and_missing_padding() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        let std = b64_encode(&bytes);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(b64_decode(&std).unwrap(), bytes);
        assert_eq!(b64_decode(&url).unwrap(), bytes);
        assert_eq!(b64_decode(std.trim_end_matches('=')).unwrap(), bytes);
        assert!(b64_decode("ab+_").is_err());
        assert!(b64_decode("!!!").is_err());
    }

    #[test]
    fn null_and_missing_fields_are_empty() {
        let b = parse_cipher_box(r#"{"desc":null,"msg":null}"#).unwrap();
        assert!(b.desc.is_none() && b.msg.0.is_empty());
        let d = parse_desc("{}").unwrap();
        assert!(d.stream_id.0.is_empty());
        assert!(parse_desc("5").is_err());
    }

    #[test]
    fn recv_frame_round_trip() {
        let e = parse_recv_frame(&error_frame(8, "x")).unwrap();
        assert_eq!(
            e,
            RecvFrame::Error(Status {
                code: 8,
                message: "x".into(),
                details: vec![]
            })
        );
    }

    proptest! {
        #[test]
        fn send_frame_round_trips(id in proptest::collection::vec(any::<u8>(), 64), msg in proptest::collection::vec(any::<u8>(), 0..300)) {
            let b = parse_cipher_box(&send_frame(&id, &msg)).unwrap();
            prop_assert_eq!(b.desc.unwrap().stream_id.0, id.clone());
            prop_assert_eq!(b.msg.0, msg.clone());
            let r = parse_recv_frame(&ResultFrameEncoder::new(&id).encode(&msg)).unwrap();
            match r { RecvFrame::Result(b) => prop_assert_eq!(b.msg.0, msg), RecvFrame::Error(_) => prop_assert!(false) }
        }

        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = parse_cipher_box(&s);
            let _ = parse_desc(&s);
            let _ = parse_recv_frame(&s);
            let _ = parse_create_body(s.as_bytes());
            let _ = parse_delete_query(&s);
        }

        #[test]
        fn delete_query_round_trips(id in proptest::collection::vec(any::<u8>(), 0..80)) {
            // Escaped, as a browser sends it, and with '+' left raw (read back as a space).
            let b64 = b64_encode(&id);
            let escaped: String = form_urlencoded::byte_serialize(b64.as_bytes()).collect();
            prop_assert_eq!(parse_delete_query(&format!("a=1&desc.stream_id={escaped}")).unwrap(), Some(id.clone()));
            prop_assert_eq!(parse_delete_query(&format!("desc.stream_id={b64}")).unwrap(), Some(id));
        }
    }
}
