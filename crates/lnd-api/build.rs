//! Generates LND's `lnrpc` package (prost messages, tonic client and server stubs, no tonic
//! transport so the crate also builds for wasm32) from the committed descriptor set
//! `descriptors/lnd.binpb`. LND's `.proto` files are not in this repository; the descriptor
//! set is regenerated from the `lnd_grpc_rust` package by `tools/regen-lnd-descriptors`.

use prost::Message as _;
use tonic_prost_build::FileDescriptorSet;

/// Only LND's main package is generated: the sub-server packages are reachable through the
/// descriptor set (prost-reflect) and generating them would double the compile time.
const PACKAGES: &[&str] = &["lnrpc", "routerrpc"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=descriptors/lnd.binpb");
    let bytes = std::fs::read("descriptors/lnd.binpb")?;
    let mut fds = FileDescriptorSet::decode(bytes.as_slice())?;
    fds.file
        .retain(|f| PACKAGES.contains(&f.package.as_deref().unwrap_or_default()));
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
