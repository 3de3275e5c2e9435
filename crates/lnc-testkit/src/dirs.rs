//! Temp dirs and the Go reference vectors.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A path under the system temp dir that does not exist yet, unique per process and call
/// (`tag` names it for whoever finds it left over after a crash): for code under test
/// that must create its own directory.
pub fn fresh_path(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let d = std::env::temp_dir().join(format!("lnc-test-{tag}-{}-{n}-{nanos}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A new, empty, created directory (see [`fresh_path`]).
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = fresh_path(tag);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
    d
}

/// The Go reference vectors: `$LNC_VECTORS_DIR`, else the repository's `vectors/go/`.
pub fn vectors_dir() -> PathBuf {
    std::env::var_os("LNC_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors/go")))
}

/// A vector file parsed as JSON (a missing or broken vector fails the test).
pub fn vector(name: &str) -> serde_json::Value {
    let p = vectors_dir().join(name);
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("vector {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("vector {}: {e}", p.display()))
}
