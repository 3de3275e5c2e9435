//! The browser [`Runtime`]: the JS event loop runs our tasks and timers.
//!
//! There are no threads in the page, so tasks are `spawn_local`ed; timers are
//! `setTimeout` (gloo-timers, cleared when a sleep is dropped, so a cancelled GBN timer
//! leaves nothing behind); the clock is `performance.now()` through web-time, because
//! `std::time::Instant::now()` panics on wasm32-unknown-unknown.

use core::time::Duration;
use lnc_core::time::Instant;
use lnc_tunnel::rt::{BoxFuture, Runtime};

/// [`Runtime`] on the browser's event loop. Cheap to clone (an epoch).
#[derive(Clone, Copy, Debug)]
pub struct BrowserRuntime {
    epoch: web_time::Instant,
}

impl BrowserRuntime {
    /// A runtime whose protocol clock starts now.
    pub fn new() -> Self {
        BrowserRuntime {
            epoch: web_time::Instant::now(),
        }
    }
}

impl Default for BrowserRuntime {
    fn default() -> Self {
        Self::new()
    }
}

/// setTimeout takes a 32-bit millisecond count; longer sleeps are chained.
const MAX_TIMEOUT_MS: u128 = i32::MAX as u128;

impl Runtime for BrowserRuntime {
    fn now(&self) -> Instant {
        Instant::from_since_epoch(web_time::Instant::now().duration_since(self.epoch))
    }

    fn sleep(&self, d: Duration) -> BoxFuture<()> {
        Box::pin(async move {
            // Round up: waking a millisecond early would make GBN re-arm a 0 ms timer.
            let mut left = d.as_micros().div_ceil(1000);
            loop {
                let step = left.min(MAX_TIMEOUT_MS);
                gloo_timers::future::TimeoutFuture::new(step as u32).await;
                left -= step;
                if left == 0 {
                    break;
                }
            }
        })
    }

    fn spawn(&self, fut: BoxFuture<()>) {
        wasm_bindgen_futures::spawn_local(fut);
    }
}
