//! # LND's gRPC API for the lnc-rs workspace
//!
//! LNC carries LND's gRPC calls through the tunnel, the node proxies them to LND, and
//! `lnd-sim` serves a slice of them; all of them need LND's message types and service
//! descriptors. This crate provides both without copying LND's `.proto` files into the
//! repository: `descriptors/lnd.binpb` is a `FileDescriptorSet` (no source info) compiled by
//! `tools/regen-lnd-descriptors` from the `.proto` files of the LND release our tests run
//! (the Go module `interop/lnd/go.mod` pins), and `build.rs` generates Rust code from that
//! data file.
//!
//! * [`DESCRIPTOR_SET`]: every LND service (`lnrpc` Lightning, WalletUnlocker and State;
//!   `invoicesrpc`, `routerrpc`, `walletrpc`, `signrpc`, `chainrpc`, `peersrpc`, `verrpc`,
//!   `autopilotrpc`, `watchtowerrpc`, `wtclientrpc`, `devrpc`, `neutrinorpc`), for JSON ⇄
//!   protobuf calls with prost-reflect, natively and in the browser (lnc-web's `LndApi`
//!   reaches all of its services).
//! * [`lnrpc`] and [`routerrpc`]: prost messages plus tonic client and server stubs
//!   (codegen only, no tonic transport, so this crate builds for `wasm32-unknown-unknown`).
//!   Server traits have default methods answering `Unimplemented`, so a stand-in serves a
//!   slice of the API without writing every method.
//! * [`dynamic`] (feature `dynamic`, on by default): call any method of these services, or
//!   of a user-supplied descriptor set, by name with JSON, as lnc-web and `lnc call` do.
//!
//! The API is LND v0.20.2's, not LND master's: master dropped the deprecated synchronous
//! payment calls (`SendPaymentSync`, `SendPayment`, `SendToRouteSync`) that v0.20 still
//! serves and lnc-web's API still offers, so apps call them and the node meters them.

#![allow(missing_docs)] // generated code carries LND's (absent) comments

/// LND's compiled API: a protobuf-encoded `google.protobuf.FileDescriptorSet` holding
/// `lightning.proto`, the sub-server protos listed in the crate docs and their imports.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!("../descriptors/lnd.binpb");

#[cfg(feature = "dynamic")]
pub mod dynamic;
pub mod lncnode;

/// LND's main package: `lnrpc.Lightning`, `lnrpc.WalletUnlocker`, `lnrpc.State`.
#[allow(clippy::all, clippy::pedantic, rustdoc::all)]
pub mod lnrpc {
    tonic::include_proto!("lnrpc");
}

/// LND's router sub-server (`routerrpc.Router`): `SendPaymentV2` is LND's preferred way to
/// pay (the `lnrpc` payment calls are deprecated).
#[allow(clippy::all, clippy::pedantic, rustdoc::all)]
pub mod routerrpc {
    tonic::include_proto!("routerrpc");
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    /// The committed descriptor set decodes and carries the services lnc-rs relies on.
    #[test]
    fn descriptor_set_has_lnd_services() {
        let fds = prost_types_free::decode(super::DESCRIPTOR_SET);
        for f in [
            "lightning.proto",
            "invoicesrpc/invoices.proto",
            "routerrpc/router.proto",
            "walletrpc/walletkit.proto",
            "signrpc/signer.proto",
            "chainrpc/chainnotifier.proto",
            "peersrpc/peers.proto",
            "verrpc/verrpc.proto",
            "stateservice.proto",
            "walletunlocker.proto",
            "autopilotrpc/autopilot.proto",
            "watchtowerrpc/watchtower.proto",
            "wtclientrpc/wtclient.proto",
            "devrpc/dev.proto",
            "neutrinorpc/neutrino.proto",
        ] {
            assert!(fds.contains(&f.to_string()), "missing {f}");
        }
    }

    /// The generated types encode as LND expects (AddInvoice `{memo:"x", value:1000}`).
    #[test]
    fn generated_invoice_encodes() {
        let inv = super::lnrpc::Invoice {
            memo: "x".into(),
            value: 1000,
            ..Default::default()
        };
        assert_eq!(inv.encode_to_vec(), [0x0a, 0x01, b'x', 0x28, 0xe8, 0x07]);
    }

    /// Minimal reader of `FileDescriptorSet.file[].name` (field 1 of field 1), so the test
    /// needs no prost-types dependency.
    mod prost_types_free {
        #[derive(Clone, PartialEq, prost::Message)]
        struct Fds {
            #[prost(message, repeated, tag = "1")]
            file: Vec<Fd>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct Fd {
            #[prost(string, optional, tag = "1")]
            name: Option<String>,
        }
        pub fn decode(b: &[u8]) -> Vec<String> {
            use prost::Message as _;
            Fds::decode(b)
                .unwrap()
                .file
                .into_iter()
                .filter_map(|f| f.name)
                .collect()
        }
    }
}
