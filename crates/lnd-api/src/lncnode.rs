//! `lncnode.Budget`: the lnc node's own read-only service (not LND's), answered by the node
//! through the tunnel so an app can ask what its spend session may still spend.
//!
//! The messages are declared here once — as prost types for the node and typed clients,
//! and as a descriptor ([`file_descriptor`]) that [`crate::dynamic::Registry::lnd`] includes,
//! so `lncnode.Budget.Remaining` is callable by name with JSON like any LND method (the CLI,
//! the Python and JavaScript packages). A test checks the two agree.

/// `/lncnode.Budget/Remaining`.
pub const REMAINING_PATH: &str = "/lncnode.Budget/Remaining";

/// The (empty) request of `Remaining`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct RemainingRequest {}

/// The answer to `Remaining`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RemainingResponse {
    /// The budget per period, msat.
    #[prost(uint64, tag = "1")]
    pub limit_msat: u64,
    /// `total`, `day`, `week` or `month`.
    #[prost(string, tag = "2")]
    pub period: String,
    /// Settled in the current period, msat.
    #[prost(uint64, tag = "3")]
    pub spent_msat: u64,
    /// Reserved by payments in flight, msat.
    #[prost(uint64, tag = "4")]
    pub reserved_msat: u64,
    /// Left to spend now, msat.
    #[prost(uint64, tag = "5")]
    pub left_msat: u64,
    /// When more budget comes back, Unix seconds (0: never, or nothing spent yet).
    #[prost(uint64, tag = "6")]
    pub resets_at: u64,
    /// Most one payment may commit (amount + fee limit), msat (0: no cap).
    #[prost(uint64, tag = "7")]
    pub max_payment_msat: u64,
}

/// The descriptor of `lncnode/budget.proto` (package `lncnode`, service `Budget`).
#[cfg(feature = "dynamic")]
pub fn file_descriptor() -> prost_reflect::prost_types::FileDescriptorProto {
    use prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
    use prost_reflect::prost_types::{
        DescriptorProto, FieldDescriptorProto, FileDescriptorProto, MethodDescriptorProto,
        ServiceDescriptorProto,
    };
    let field = |name: &str, number: i32, kind: Type| FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(kind as i32),
        json_name: Some(name.into()),
        ..Default::default()
    };
    FileDescriptorProto {
        name: Some("lncnode/budget.proto".into()),
        package: Some("lncnode".into()),
        syntax: Some("proto3".into()),
        message_type: vec![
            DescriptorProto {
                name: Some("RemainingRequest".into()),
                ..Default::default()
            },
            DescriptorProto {
                name: Some("RemainingResponse".into()),
                field: vec![
                    field("limit_msat", 1, Type::Uint64),
                    field("period", 2, Type::String),
                    field("spent_msat", 3, Type::Uint64),
                    field("reserved_msat", 4, Type::Uint64),
                    field("left_msat", 5, Type::Uint64),
                    field("resets_at", 6, Type::Uint64),
                    field("max_payment_msat", 7, Type::Uint64),
                ],
                ..Default::default()
            },
        ],
        service: vec![ServiceDescriptorProto {
            name: Some("Budget".into()),
            method: vec![MethodDescriptorProto {
                name: Some("Remaining".into()),
                input_type: Some(".lncnode.RemainingRequest".into()),
                output_type: Some(".lncnode.RemainingResponse".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[cfg(all(test, feature = "dynamic"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prost::Message as _;

    /// The prost type and the descriptor describe the same message.
    #[test]
    fn the_descriptor_reads_the_prost_message() {
        let reg = crate::dynamic::Registry::lnd();
        let m = reg.method("lncnode.Budget.Remaining").unwrap();
        assert_eq!(m.path(), REMAINING_PATH);
        let msg = RemainingResponse {
            limit_msat: 1,
            period: "day".into(),
            spent_msat: 3,
            reserved_msat: 4,
            left_msat: 5,
            resets_at: 6,
            max_payment_msat: 7,
        };
        let dynamic =
            prost_reflect::DynamicMessage::decode(m.output(), msg.encode_to_vec().as_slice())
                .unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&m.response_to_json(&dynamic, false).unwrap()).unwrap();
        for (k, v) in [
            ("limit_msat", "1"),
            ("spent_msat", "3"),
            ("reserved_msat", "4"),
            ("left_msat", "5"),
            ("resets_at", "6"),
            ("max_payment_msat", "7"),
        ] {
            assert_eq!(json[k], v, "{json}");
        }
        assert_eq!(json["period"], "day");
        assert_eq!(
            m.request_from_json("{}").unwrap().encode_to_vec(),
            Vec::<u8>::new()
        );
    }
}
