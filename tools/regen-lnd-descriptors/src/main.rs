//! Regenerates `crates/lnd-api/descriptors/lnd.binpb`: a protobuf `FileDescriptorSet`
//! (no source info) of LND's gRPC API, compiled with `protox` from the `.proto` files of the
//! LND release our tests run (the Go module `interop/lnd/go.mod` pins).
//!
//! LND's `.proto` files are never copied into the lnc-rs repository; this tool reads them
//! from Go's module cache and writes only the compiled descriptor set.
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

/// Every LND gRPC service (the main server and all sub-servers), relative to `lnrpc/`:
/// lnc-web's `LndApi` reaches autopilot and the watchtower services too.
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
    "autopilotrpc/autopilot.proto",
    "watchtowerrpc/watchtower.proto",
    "wtclientrpc/wtclient.proto",
    "devrpc/dev.proto",
    "neutrinorpc/neutrino.proto",
];

/// The `lnrpc/` folder of the LND module that `interop/lnd/go.mod` pins: the LND the tests
/// run, so the API we compile is the API that answers. `go mod download` fetches the module
/// into Go's module cache if needed and prints where it is.
fn lnrpc_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let module_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../interop/lnd");
    let out = Command::new("go")
        .args(["mod", "download", "-json", "github.com/lightningnetwork/lnd"])
        .current_dir(module_dir)
        .output()
        .map_err(|e| format!("running `go` (Go 1.22+ is needed): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "go mod download failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let dir = PathBuf::from(info["Dir"].as_str().ok_or("go mod download printed no Dir")?)
        .join("lnrpc");
    if !dir.join("lightning.proto").exists() {
        return Err(format!("{} has no lightning.proto", dir.display()).into());
    }
    eprintln!(
        "LND {} (pinned by interop/lnd/go.mod)",
        info["Version"].as_str().unwrap_or("?")
    );
    Ok(dir)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "crates/lnd-api/descriptors/lnd.binpb".into());
    let vendor = lnrpc_dir()?;
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
