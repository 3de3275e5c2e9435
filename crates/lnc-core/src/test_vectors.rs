//! Locates the Go reference vectors (`vectors/go/` in the repository, or
//! `$LNC_VECTORS_DIR`). A missing vector is a test failure, never a silent skip.

use std::path::PathBuf;

/// The vectors directory.
pub fn dir() -> PathBuf {
    if let Ok(d) = std::env::var("LNC_VECTORS_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors/go")
}

/// Reads one vector file as text, panicking with a message that says how to fix it.
pub fn read(name: &str) -> String {
    let p = dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "cannot read test vector {}: {e}; the vectors live in the repository's vectors/go/ (or set LNC_VECTORS_DIR)",
            p.display()
        )
    })
}
