//! The entry point of our `harness = false` benches that start real processes (the Go
//! stack, a regtest LND): they run only under `cargo bench`, since CI compiles and runs
//! every bench once in test mode, where they would only cost minutes.

use std::future::Future;

/// Runs `run` on a 2-worker runtime when invoked by `cargo bench` (`--bench`); otherwise
/// prints how to run it (`how`) and returns.
pub fn main_when_benched(how: &str, run: impl Future<Output = ()>) {
    if !std::env::args().any(|a| a == "--bench") {
        println!("{how}");
        return;
    }
    block_on(run);
}

/// Runs `run` on a 2-worker runtime (as many workers as the CI machine has cores), e.g.
/// in a child process a bench starts from its own executable to measure a part alone.
pub fn block_on<T>(run: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(run)
}
