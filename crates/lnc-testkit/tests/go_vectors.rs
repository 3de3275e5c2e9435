//! The Go reference vectors (vectors/go/) are what upstream's Go code produces today:
//! `interop/cmd/go-vectors` replays the inputs each file records through lightning-node-
//! connect's public API (pinned in interop/go.mod) and compares every value that API can
//! produce (phrases, SIDs, stream IDs, each handshake act's and transport record's bytes,
//! key rotation, GBN encodings and decode edge cases). Every test of ours that reads a vector
//! thereby rests on a value upstream still computes.
//!
//! Needs the Go harness programs: `bash interop/build.sh` (run by `.ci/run`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use lnc_testkit::dirs::vectors_dir;
use lnc_testkit::go::gobin;

#[test]
fn upstream_go_reproduces_the_vectors() {
    let out = std::process::Command::new(gobin("go-vectors"))
        .arg(vectors_dir())
        .output()
        .expect("go-vectors runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    // A run that compared nothing would pass too: the count is part of the contract.
    let compared: usize = stdout
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line: {stdout}"));
    assert!(compared >= 350, "only {compared} values compared: {stdout}");
}
