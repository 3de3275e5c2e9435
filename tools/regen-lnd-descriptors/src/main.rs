//! Regenerates `crates/lnd-api/descriptors/lnd.binpb`: a protobuf `FileDescriptorSet`
//! (no source info) of LND's gRPC API, compiled with `protox` from the `.proto` files that
//! the crates.io package `lnd_grpc_rust` ships in its `vendor/` folder.
//!
//! LND's `.proto` files are never copied into the lnc-rs repository; this tool reads them
//! from cargo's registry cache (the package is a never-compiled dependency of this tool, so
//! `cargo` downloads and unpacks it) and writes only the compiled descriptor set.
//!
//! Usage (from the repository root):
//!
//! ```text
//! cargo run --manifest-path tools/regen-lnd-descriptors/Cargo.toml -- \
//!     crates/lnd-api/descriptors/lnd.binpb
//! ```

use std::path::PathBuf;
use std::process::Command;

use prost::Message as _;

/// The LND services the workspace uses, relative to `vendor/`.
const FILES: &[&str] = &[
    "lightning.proto",
    "invoicesrpc/invoices.proto",
    "routerrpc/router.proto",
    "walletrpc/walletkit.proto",
    "signrpc/signer.proto",
    "chainrpc/chainnotifier.proto",
    "chainrpc/chainkit.proto",
    "peersrpc/peers.proto",
    "verrpc/verrpc.proto",
    "stateservice.proto",
    "walletunlocker.proto",
];

fn vendor_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--manifest-path",
            manifest,
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let pkg = meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "lnd_grpc_rust"))
        .ok_or("lnd_grpc_rust not found in cargo metadata")?;
    let manifest_path = pkg["manifest_path"]
        .as_str()
        .ok_or("lnd_grpc_rust has no manifest_path")?;
    let dir = PathBuf::from(manifest_path)
        .parent()
        .ok_or("bad manifest path")?
        .join("vendor");
    if !dir.join("lightning.proto").exists() {
        return Err(format!(
            "{} has no lightning.proto; run `cargo fetch --manifest-path {manifest}` first",
            dir.display()
        )
        .into());
    }
    Ok(dir)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "crates/lnd-api/descriptors/lnd.binpb".into());
    let vendor = vendor_dir()?;
    let mut compiler = protox::Compiler::new([&vendor])?;
    compiler.include_source_info(false).include_imports(true);
    for f in FILES {
        compiler.open_file(f)?;
    }
    let fds = compiler.file_descriptor_set();
    let bytes = fds.encode_to_vec();
    std::fs::write(&out, &bytes)?;
    eprintln!(
        "wrote {out}: {} files, {} bytes (from {})",
        fds.file.len(),
        bytes.len(),
        vendor.display()
    );
    Ok(())
}
