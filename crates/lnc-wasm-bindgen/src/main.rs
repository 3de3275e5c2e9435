//! `lnc-wasm-bindgen IN.wasm OUT_DIR NAME`: writes the `--target web` JS glue, TypeScript
//! types and processed module for the browser client (scripts/build-wasm.sh), exactly as
//! `wasm-bindgen --target web --out-dir OUT_DIR --out-name NAME IN.wasm` would.
//!
//! Why not the wasm-bindgen CLI: `cargo install wasm-bindgen-cli` compiles its test runner's
//! web server and HTTP client too (rouille, ureq, …), minutes of CI on a fresh machine,
//! in a target dir of its own. This is the same library call with only its dependencies,
//! built once with the workspace, and its version is tied to the `wasm-bindgen` crate by
//! Cargo.lock rather than by a separately installed binary.

use anyhow::Context as _;
use std::path::PathBuf;
use wasm_bindgen_cli_support::Bindgen;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, out_dir, name] = args.as_slice() else {
        anyhow::bail!("usage: lnc-wasm-bindgen IN.wasm OUT_DIR NAME");
    };
    let out_dir = PathBuf::from(out_dir);
    // The CLI's settings where they differ from the library's defaults.
    Bindgen::new()
        .input_path(input)
        .web(true)?
        .out_name(name)
        .typescript(true)
        .omit_default_module_path(false)
        .generate(&out_dir)
        .with_context(|| format!("wasm-bindgen of {input} into {}", out_dir.display()))
}
