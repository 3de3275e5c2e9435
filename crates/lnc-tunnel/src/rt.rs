//! The runtime abstraction: a clock, timers and a task spawner.
//!
//! The tunnel runs natively on tokio and in the browser on the JS event loop, so nothing
//! above this module names a runtime. The GBN machine takes time as
//! [`lnc_core::time::Instant`] (a duration since an epoch the driver picks), so the
//! runtime's clock is mapped onto it here.

use core::future::Future;
use core::pin::Pin;
use core::time::Duration;
use lnc_core::time::Instant;

/// A boxed future; what [`Runtime::spawn`] and [`Runtime::sleep`] deal in. `Send`
/// natively (multi-threaded executors); not on wasm32, where the browser's JS-backed
/// sockets and timers are `!Send` and everything runs on one thread.
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// A boxed future; what [`Runtime::spawn`] and [`Runtime::sleep`] deal in (wasm32:
/// single-threaded, so not `Send`).
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

/// `Send + Sync` natively, nothing on wasm32 (see [`BoxFuture`]).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSend for T {}
/// `Send + Sync` natively, nothing on wasm32 (see [`BoxFuture`]).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// What the tunnel needs from an async runtime. The handle itself is `Send + Sync` even on
/// wasm32 (a browser runtime handle is a unit struct that calls `spawn_local`); only the
/// futures it runs lose `Send` there.
///
/// Implementations are cheap handles (clone = share). `now` must be monotonic.
pub trait Runtime: Clone + Send + Sync + Unpin + 'static {
    /// Time since this runtime handle's epoch, for the sans-IO protocol machines.
    fn now(&self) -> Instant;
    /// A future that completes after `d` (timers for GBN, backoff between retries).
    fn sleep(&self, d: Duration) -> BoxFuture<()>;
    /// Runs a background task (the GBN driver, the HTTP/2 connection, the accept loop).
    fn spawn(&self, fut: BoxFuture<()>);

    /// A future that completes at `at` (or at once if it has passed).
    fn sleep_until(&self, at: Instant) -> BoxFuture<()> {
        self.sleep(at.saturating_duration_since(self.now()))
    }
}

/// hyper's executor on top of any [`Runtime`], so HTTP/2 spawns its tasks on our runtime.
#[derive(Clone, Debug)]
pub struct HyperExecutor<R>(pub R);

impl<R: Runtime, F> hyper::rt::Executor<F> for HyperExecutor<R>
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(Box::pin(fut));
    }
}

#[cfg(feature = "native")]
pub use native::TokioRuntime;

#[cfg(feature = "native")]
mod native {
    use super::{BoxFuture, Runtime};
    use core::time::Duration;
    use lnc_core::time::Instant;

    /// [`Runtime`] on the current tokio runtime (tokio's clock, `tokio::spawn`).
    #[derive(Clone, Debug)]
    pub struct TokioRuntime {
        epoch: tokio::time::Instant,
    }

    impl TokioRuntime {
        /// A handle whose epoch is now. Must be used inside a tokio runtime.
        pub fn new() -> Self {
            TokioRuntime {
                epoch: tokio::time::Instant::now(),
            }
        }
    }

    impl Default for TokioRuntime {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Runtime for TokioRuntime {
        fn now(&self) -> Instant {
            Instant::from_since_epoch(tokio::time::Instant::now().duration_since(self.epoch))
        }
        fn sleep(&self, d: Duration) -> BoxFuture<()> {
            Box::pin(tokio::time::sleep(d))
        }
        fn spawn(&self, fut: BoxFuture<()>) {
            drop(tokio::spawn(fut));
        }
    }
}
