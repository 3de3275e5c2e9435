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

/// Traces the test's in-process parts to the test's output when `RUST_LOG` is set (e.g.
/// `RUST_LOG=lnc_tunnel=trace`); silent otherwise. Safe to call from every test.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// GETs `path` from the plain HTTP/1.1 server at `addr` (an ops or admin listener):
/// the whole answer, status line and headers included. `headers` are extra header lines,
/// each ending in `\r\n`.
pub async fn http_get(addr: impl tokio::net::ToSocketAddrs, path: &str, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the HTTP listener accepts");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("request sent");
    let mut out = String::new();
    tokio::time::timeout(T, s.read_to_string(&mut out))
        .await
        .expect("the HTTP listener answers in time")
        .expect("an answer");
    out
}
