//! LND calls by method name with JSON in and out, as the Go wasm client's
//! `wasmClientInvokeRPC` offers them (transport.md §5.1): the request JSON is decoded
//! against LND's descriptors, sent as protobuf over the tunnel's HTTP/2, and each response
//! message is encoded back to JSON with proto field names and unpopulated fields emitted
//! (grpc-gateway's `UseProtoNames` + `EmitUnpopulated`, what lnc-web apps parse).

use bytes::{Buf, BufMut};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, SerializeOptions};
use std::sync::OnceLock;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Upstream's `MaxCallRecvMsgSize` (200 MiB): a large DescribeGraph must still arrive.
pub const MAX_RESPONSE_MESSAGE: usize = 200 * 1024 * 1024;

/// Why a call could not be made or its answer not be read.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The method name is not `pkg.Service.Method` of a known LND service.
    #[error("rpc with name {0} not found")]
    UnknownMethod(String),
    /// The method streams requests from the client; the browser API has no way to send them.
    #[error("rpc {0} is client-streaming, which this API does not offer")]
    Unsupported(String),
    /// The request JSON does not match the request message.
    #[error("invalid request JSON for {method}: {detail}")]
    BadRequest {
        /// The method.
        method: String,
        /// What prost-reflect said.
        detail: String,
    },
    /// The node's answer is not the expected message.
    #[error("invalid response from the node for {method}: {detail}")]
    BadResponse {
        /// The method.
        method: String,
        /// What failed.
        detail: String,
    },
}

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    // The descriptor set is committed data checked by lnd-api's tests; an empty pool only
    // makes every lookup fail with UnknownMethod.
    POOL.get_or_init(|| DescriptorPool::decode(lnd_api::DESCRIPTOR_SET).unwrap_or_default())
}

/// A resolved LND method.
#[derive(Debug, Clone)]
pub struct Method {
    desc: MethodDescriptor,
    name: String,
}

impl Method {
    /// Looks up `pkg.Service.Method` (lnc-web's naming, e.g. `lnrpc.Lightning.GetInfo`);
    /// the gRPC form `/pkg.Service/Method` is accepted too.
    pub fn lookup(name: &str) -> Result<Method, RpcError> {
        let unknown = || RpcError::UnknownMethod(name.to_owned());
        let trimmed = name.trim_start_matches('/').replace('/', ".");
        let (service, method) = trimmed.rsplit_once('.').ok_or_else(unknown)?;
        let svc = pool().get_service_by_name(service).ok_or_else(unknown)?;
        let desc = svc
            .methods()
            .find(|m| m.name() == method)
            .ok_or_else(unknown)?;
        if desc.is_client_streaming() {
            return Err(RpcError::Unsupported(name.to_owned()));
        }
        Ok(Method {
            name: name.to_owned(),
            desc,
        })
    }

    /// The HTTP/2 path (`/lnrpc.Lightning/GetInfo`).
    pub fn path(&self) -> String {
        format!(
            "/{}/{}",
            self.desc.parent_service().full_name(),
            self.desc.name()
        )
    }

    /// The macaroon permission key (`/lnrpc.Lightning/GetInfo`), as LND's table names it.
    pub fn uri(&self) -> String {
        self.path()
    }

    /// Whether the node answers with a stream of messages.
    pub fn is_server_streaming(&self) -> bool {
        self.desc.is_server_streaming()
    }

    /// JSON request → protobuf bytes. An empty string is the empty message.
    pub fn encode_request(&self, json: &str) -> Result<Vec<u8>, RpcError> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let mut de = serde_json::Deserializer::from_str(json);
        let msg = DynamicMessage::deserialize(self.desc.input(), &mut de)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| RpcError::BadRequest {
                method: self.name.clone(),
                detail: e.to_string(),
            })?;
        Ok(msg.encode_to_vec())
    }

    /// Protobuf response bytes → JSON (proto names, unpopulated fields emitted, 64-bit
    /// integers as strings, bytes as standard base64: grpc-gateway's output).
    pub fn decode_response(&self, bytes: &[u8]) -> Result<String, RpcError> {
        let bad = |detail: String| RpcError::BadResponse {
            method: self.name.clone(),
            detail,
        };
        let msg =
            DynamicMessage::decode(self.desc.output(), bytes).map_err(|e| bad(e.to_string()))?;
        let opts = SerializeOptions::new()
            .use_proto_field_name(true)
            .skip_default_fields(false)
            .stringify_64_bit_integers(true);
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::new(&mut out);
        msg.serialize_with_options(&mut ser, &opts)
            .map_err(|e| bad(e.to_string()))?;
        String::from_utf8(out).map_err(|e| bad(e.to_string()))
    }
}

/// A tonic codec passing already-encoded protobuf bytes through, so one generic client
/// serves every method the descriptors name.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// Encoder/decoder half of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytes;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;
    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }
    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_transcode() {
        let m = Method::lookup("lnrpc.Lightning.AddInvoice").unwrap();
        assert_eq!(m.path(), "/lnrpc.Lightning/AddInvoice");
        assert!(!m.is_server_streaming());
        assert_eq!(
            m.encode_request(r#"{"value":"1000","memo":"x"}"#).unwrap(),
            [0x0a, 0x01, b'x', 0x28, 0xe8, 0x07]
        );
        let sub = Method::lookup("/lnrpc.Lightning/SubscribeInvoices").unwrap();
        assert!(sub.is_server_streaming());
        let gi = Method::lookup("lnrpc.Lightning.GetInfo").unwrap();
        assert_eq!(gi.encode_request("").unwrap(), Vec::<u8>::new());
        // alias = field 2
        let json = gi.decode_response(&[0x12, 0x03, b'b', b'o', b'b']).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["alias"], "bob");
        assert_eq!(
            v["num_active_channels"], 0,
            "unpopulated fields are emitted"
        );
        assert_eq!(v["block_height"], 0);
    }

    #[test]
    fn errors_are_clear() {
        assert!(matches!(
            Method::lookup("lnrpc.Lightning.Nope"),
            Err(RpcError::UnknownMethod(_))
        ));
        assert!(matches!(
            Method::lookup("nope"),
            Err(RpcError::UnknownMethod(_))
        ));
        assert!(matches!(
            Method::lookup("lnrpc.Lightning.ChannelAcceptor"),
            Err(RpcError::Unsupported(_))
        ));
        let m = Method::lookup("lnrpc.Lightning.AddInvoice").unwrap();
        let e = m.encode_request(r#"{"no_such_field":1}"#).unwrap_err();
        assert!(e.to_string().contains("AddInvoice"), "{e}");
        assert!(m.encode_request("{").is_err());
        assert!(m.decode_response(&[0xff]).is_err());
    }
}
