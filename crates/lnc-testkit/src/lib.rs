//! Test fixtures shared by every crate's tests, so that none is copied between crates.
//!
//! Everything here starts *real* things on 127.0.0.1 with random ports and temp dirs:
//! our relay in process ([`relay`]), a private `redis-server` ([`redis`]), the node side
//! serving a small `lnrpc.Lightning` ([`node`]), and the Go LNC stack's harness programs
//! from `interop/` ([`go`]), a real LND network on regtest ([`lnd`]), and the `lnc`
//! binaries as a user runs them ([`stack`], on [`process`]); real links between them
//! (network namespaces and veth pairs, [`netns`]) with toxiproxy's faults on them
//! ([`toxiproxy`]). Nothing waits by sleeping: starts are awaited on their
//! readiness (a PING answered, a `READY` line, a `Listening` event) under a timeout.
//!
//! Dev-only (`publish = false`): fixtures panic with a message saying what to install or
//! run, which is what a test wants and a library must never do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bench;
pub mod dirs;
pub mod faults;
pub mod go;
pub mod hashmail;
pub mod lnd;
pub mod netns;
pub mod node;
pub mod process;
pub mod redis;
pub mod relay;
pub mod stack;
pub mod toxiproxy;

/// One step's limit in the tests: generous for a loaded 2-core CI machine.
pub const T: std::time::Duration = std::time::Duration::from_secs(30);
