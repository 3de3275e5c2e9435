//! # lnc-wasm: Lightning Node Connect in the browser
//!
//! The same protocol crates as the native client (lnc-core's pairing, Noise and GBN,
//! lnc-tunnel's drivers and HTTP/2 glue), with the two pieces a browser needs instead of
//! tokio: a [`runtime::BrowserRuntime`] on the JS event loop and a [`ws::WsMailbox`] on
//! the page's WebSocket. Pairing, reconnecting, credentials sealed with a password and
//! JSON calls by method name are lnc-client's (the same code `lnc connect`/`lnc call`
//! run). [`api::WasmClient`] is the JavaScript API the `web/` TypeScript package wraps
//! (lnc-web's shape). Everything browser-bound is compiled for wasm32 only; the address
//! and macaroon helpers are plain Rust and tested natively.

pub mod perms;
pub mod url;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod runtime;
#[cfg(target_arch = "wasm32")]
pub mod ws;
