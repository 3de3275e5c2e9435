//! Calling any RPC by name with JSON, without generated code per method.
//!
//! LNC's users call LND (and loop, pool, taproot-assets…) by method name with JSON: lnc-web's
//! `lnc.lnd.lightning.getInfo({})` and the Go wasm client's `wasmClientInvokeRPC` both do,
//! and so does `lnc call`. Generated stubs cannot cover daemons we do not compile in, so the
//! client transcodes JSON ⇄ protobuf at run time from a descriptor pool: LND's set from
//! [`crate::DESCRIPTOR_SET`], plus any `FileDescriptorSet` the user supplies (`--protoset`).
//!
//! JSON follows what the Go clients produce, so existing apps parse our output unchanged:
//! responses use proto field names (`UseProtoNames`), print fields holding their default
//! value (`EmitUnpopulated`), 64-bit integers as strings, `bytes` as padded standard base64.
//! Requests accept both proto and lowerCamel names; an unknown field is an error that names it
//! (a typo silently ignored would send a different request than the user meant).
//!
//! Everything here is plain data transformation (no I/O), so it builds for the browser too.

#![warn(missing_docs)]

use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor,
    SerializeOptions,
};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// What went wrong while resolving a method or transcoding its messages.
#[derive(Debug, thiserror::Error)]
pub enum DynamicError {
    /// The descriptor data could not be read (a corrupt or non-`FileDescriptorSet` file).
    #[error(
        "protoset: cannot load descriptors: {0} (pass a FileDescriptorSet, e.g. from `protoc --include_imports --descriptor_set_out=FILE`)"
    )]
    Descriptors(#[from] prost_reflect::DescriptorError),
    /// The method name is not in one of the accepted forms.
    #[error(
        "method name {0:?} is malformed: use `package.Service.Method` (e.g. lnrpc.Lightning.GetInfo) or `/package.Service/Method`"
    )]
    MalformedName(String),
    /// No service of that name is known.
    #[error(
        "unknown service {service:?} (for a daemon other than LND pass its descriptors with --protoset)"
    )]
    UnknownService {
        /// Fully qualified service name as given.
        service: String,
    },
    /// The service exists but has no such method.
    #[error("service {service} has no method {method:?}")]
    UnknownMethod {
        /// Fully qualified service name.
        service: String,
        /// Method name as given.
        method: String,
    },
    /// The request JSON does not match the method's input message.
    #[error("request JSON for {method} is invalid: {source}")]
    RequestJson {
        /// Fully qualified method name.
        method: String,
        /// The parser's explanation (field, expected type, position).
        #[source]
        source: serde_json::Error,
    },
    /// A response could not be rendered as JSON (should not happen for valid messages).
    #[error("response of {method} could not be rendered as JSON: {source}")]
    ResponseJson {
        /// Fully qualified method name.
        method: String,
        /// The serializer's explanation.
        #[source]
        source: serde_json::Error,
    },
}

/// The set of services calls can be made to, by name.
///
/// Cheap to clone (the pool is reference counted), so each call site may hold its own.
#[derive(Clone, Debug)]
pub struct Registry {
    pool: DescriptorPool,
}

impl Registry {
    /// LND's API (every service in [`crate::DESCRIPTOR_SET`]) and the lnc node's own
    /// `lncnode.Budget` ([`crate::lncnode`]), decoded once per process.
    pub fn lnd() -> Self {
        static POOL: OnceLock<DescriptorPool> = OnceLock::new();
        let pool = POOL.get_or_init(|| {
            let mut pool = match DescriptorPool::decode(crate::DESCRIPTOR_SET) {
                Ok(pool) => pool,
                // The set is a committed build input checked by this crate's tests; an empty
                // pool (every lookup says "unknown service") beats a panic if it were ever bad.
                Err(_) => DescriptorPool::new(),
            };
            // The lnc node's own service beside LND's (checked by `lncnode`'s test).
            let _ = pool.add_file_descriptor_proto(crate::lncnode::file_descriptor());
            pool
        });
        Registry { pool: pool.clone() }
    }

    /// A registry holding only the given `FileDescriptorSet` (protobuf-encoded).
    pub fn from_file_descriptor_set(bytes: &[u8]) -> Result<Self, DynamicError> {
        Ok(Registry {
            pool: DescriptorPool::decode(bytes)?,
        })
    }

    /// Adds another daemon's services (`--protoset FILE`); files already present with the
    /// same content (e.g. `google/protobuf/*.proto`) are accepted.
    pub fn add_file_descriptor_set(&mut self, bytes: &[u8]) -> Result<(), DynamicError> {
        self.pool.decode_file_descriptor_set(bytes)?;
        Ok(())
    }

    /// Resolves `package.Service.Method` (lnc-web style), `/package.Service/Method` (the
    /// HTTP/2 path) or `package.Service/Method`.
    pub fn method(&self, name: &str) -> Result<Method, DynamicError> {
        let (service, method) = split_method_name(name)?;
        let svc =
            self.pool
                .get_service_by_name(service)
                .ok_or_else(|| DynamicError::UnknownService {
                    service: service.to_owned(),
                })?;
        let desc = svc.methods().find(|m| m.name() == method).ok_or_else(|| {
            DynamicError::UnknownMethod {
                service: service.to_owned(),
                method: method.to_owned(),
            }
        })?;
        Ok(Method::new(desc))
    }

    /// Every method of every service, for listings and completion.
    pub fn methods(&self) -> impl Iterator<Item = Method> + '_ {
        self.pool
            .services()
            .flat_map(|s| s.methods().collect::<Vec<_>>())
            .map(Method::new)
    }
}

/// Splits a method name in any accepted form into (service, method).
fn split_method_name(name: &str) -> Result<(&str, &str), DynamicError> {
    let bad = || DynamicError::MalformedName(name.to_owned());
    let trimmed = name.trim();
    let trimmed = trimmed.strip_prefix('/').unwrap_or(trimmed);
    let (service, method) = match trimmed.split_once('/') {
        Some(parts) => parts,
        None => trimmed.rsplit_once('.').ok_or_else(bad)?,
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    };
    if !valid(service) || !valid(method) || method.contains('.') {
        return Err(bad());
    }
    Ok((service, method))
}

/// One RPC, resolved: its HTTP/2 path, streaming shape and message types.
#[derive(Clone, Debug)]
pub struct Method {
    desc: MethodDescriptor,
    path: String,
}

impl Method {
    fn new(desc: MethodDescriptor) -> Self {
        let path = format!("/{}/{}", desc.parent_service().full_name(), desc.name());
        Method { desc, path }
    }

    /// The HTTP/2 `:path` gRPC uses, e.g. `/lnrpc.Lightning/GetInfo`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `package.Service.Method`, the form lnc-web and permission tables use.
    pub fn full_name(&self) -> &str {
        self.desc.full_name()
    }

    /// True when the server answers with a stream of messages (e.g. SubscribeInvoices).
    pub fn is_server_streaming(&self) -> bool {
        self.desc.is_server_streaming()
    }

    /// True when the client sends a stream of messages (e.g. a channel acceptor).
    pub fn is_client_streaming(&self) -> bool {
        self.desc.is_client_streaming()
    }

    /// The request message type.
    pub fn input(&self) -> MessageDescriptor {
        self.desc.input()
    }

    /// The response message type.
    pub fn output(&self) -> MessageDescriptor {
        self.desc.output()
    }

    /// Parses a request from JSON; empty input means the empty message `{}`.
    pub fn request_from_json(&self, json: &str) -> Result<DynamicMessage, DynamicError> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let err = |source| DynamicError::RequestJson {
            method: self.full_name().to_owned(),
            source,
        };
        let mut de = serde_json::Deserializer::from_str(json);
        let msg = DynamicMessage::deserialize_with_options(
            self.input(),
            &mut de,
            &DeserializeOptions::new(),
        )
        .map_err(err)?;
        de.end().map_err(err)?;
        Ok(msg)
    }

    /// Encodes a JSON request straight to protobuf bytes (for transports that carry raw
    /// message bytes).
    pub fn request_bytes_from_json(&self, json: &str) -> Result<Vec<u8>, DynamicError> {
        Ok(self.request_from_json(json)?.encode_to_vec())
    }

    /// Renders a response the way the Go clients do (see the module docs).
    pub fn response_to_json(
        &self,
        msg: &DynamicMessage,
        pretty: bool,
    ) -> Result<String, DynamicError> {
        to_json(msg, pretty).map_err(|source| DynamicError::ResponseJson {
            method: self.full_name().to_owned(),
            source,
        })
    }

    /// A tonic codec that sends this method's input and decodes its output.
    pub fn codec(&self) -> DynamicCodec {
        DynamicCodec {
            output: self.output(),
        }
    }
}

/// Serializes any dynamic message with the Go clients' JSON options.
pub fn to_json(msg: &DynamicMessage, pretty: bool) -> Result<String, serde_json::Error> {
    let opts = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
        .stringify_64_bit_integers(true);
    let mut out = Vec::with_capacity(128);
    if pretty {
        let mut ser = serde_json::Serializer::pretty(&mut out);
        msg.serialize_with_options(&mut ser, &opts)?;
    } else {
        let mut ser = serde_json::Serializer::new(&mut out);
        msg.serialize_with_options(&mut ser, &opts)?;
    }
    // serde_json only ever writes UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// tonic [`Codec`] for [`DynamicMessage`]s: lets `tonic::client::Grpc` make calls whose
/// types are only known at run time.
#[derive(Clone, Debug)]
pub struct DynamicCodec {
    output: MessageDescriptor,
}

impl DynamicCodec {
    /// A codec decoding responses as `output` messages.
    pub fn new(output: MessageDescriptor) -> Self {
        DynamicCodec { output }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder {
            output: self.output.clone(),
        }
    }
}

/// Encoding half of [`DynamicCodec`].
#[derive(Debug)]
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding request: {e}")))
    }
}

/// Decoding half of [`DynamicCodec`].
#[derive(Debug)]
pub struct DynamicDecoder {
    output: MessageDescriptor,
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.output.clone(), src)
            .map(Some)
            .map_err(|e| {
                Status::internal(format!(
                    "response is not a valid {}: {e}",
                    self.output.full_name()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_name_forms_resolve_to_one_path() {
        let reg = Registry::lnd();
        for name in [
            "lnrpc.Lightning.GetInfo",
            "/lnrpc.Lightning/GetInfo",
            "lnrpc.Lightning/GetInfo",
            " lnrpc.Lightning.GetInfo ",
        ] {
            let m = reg.method(name).unwrap();
            assert_eq!(m.path(), "/lnrpc.Lightning/GetInfo");
            assert_eq!(m.full_name(), "lnrpc.Lightning.GetInfo");
            assert!(!m.is_server_streaming());
        }
        assert!(
            reg.method("lnrpc.Lightning.SubscribeInvoices")
                .unwrap()
                .is_server_streaming()
        );
        assert!(
            reg.method("routerrpc.Router.SendPaymentV2")
                .unwrap()
                .is_server_streaming()
        );
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        let reg = Registry::lnd();
        assert!(matches!(
            reg.method("GetInfo"),
            Err(DynamicError::MalformedName(_))
        ));
        assert!(matches!(
            reg.method("/lnrpc.Lightning/"),
            Err(DynamicError::MalformedName(_))
        ));
        assert!(matches!(
            reg.method("looprpc.SwapClient.LoopOut"),
            Err(DynamicError::UnknownService { .. })
        ));
        let e = reg.method("lnrpc.Lightning.GetInfoo").unwrap_err();
        assert!(e.to_string().contains("GetInfoo"), "{e}");
    }

    /// The transcoding matches the generated types byte for byte (AddInvoice, as in
    /// ../shared/CRATES.md: `{"value":"1000","memo":"x"}` → `0a017828e807`).
    #[test]
    fn json_request_encodes_like_generated_code() {
        let m = Registry::lnd()
            .method("lnrpc.Lightning.AddInvoice")
            .unwrap();
        for json in [
            r#"{"value":"1000","memo":"x"}"#,
            r#"{"memo":"x","value":1000}"#,
        ] {
            assert_eq!(
                m.request_bytes_from_json(json).unwrap(),
                [0x0a, 0x01, b'x', 0x28, 0xe8, 0x07]
            );
        }
        assert!(m.request_bytes_from_json("").unwrap().is_empty());
        let e = m.request_from_json(r#"{"valu":1}"#).unwrap_err();
        assert!(e.to_string().contains("valu"), "{e}");
        assert!(m.request_from_json(r#"{} x"#).is_err());
    }

    #[test]
    fn responses_render_like_go_clients() {
        use prost::Message as _;
        let m = Registry::lnd()
            .method("lnrpc.Lightning.AddInvoice")
            .unwrap();
        let resp = crate::lnrpc::AddInvoiceResponse {
            r_hash: vec![0xff; 4],
            payment_request: "lnsim1".into(),
            add_index: 7,
            ..Default::default()
        };
        let msg = DynamicMessage::decode(m.output(), resp.encode_to_vec().as_slice()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&m.response_to_json(&msg, false).unwrap()).unwrap();
        assert_eq!(v["r_hash"], "/////w==");
        assert_eq!(v["add_index"], "7");
        assert_eq!(v["payment_request"], "lnsim1");
        // EmitUnpopulated: default-valued fields are present.
        assert_eq!(v["payment_addr"], "");
    }

    #[test]
    fn protoset_can_be_added_twice() {
        let mut reg = Registry::lnd();
        reg.add_file_descriptor_set(crate::DESCRIPTOR_SET).unwrap();
        assert!(reg.method("lnrpc.Lightning.GetInfo").is_ok());
        assert!(reg.methods().count() > 100);
        assert!(Registry::from_file_descriptor_set(b"\xff\xff").is_err());
    }
}
