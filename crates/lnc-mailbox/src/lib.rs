//! The LNC mailbox relay ("hashmail"): where an LNC app and node meet.
//!
//! Wire-compatible with the Go relay (aperture) for unmodified Go peers —
//! `hashmailrpc.HashMail` over gRPC and the grpc-gateway WebSocket JSON
//! protocol on one port — and better where Go is weak: every buffer and count
//! is bounded, creation can require a token, malformed input ends only its own
//! stream, and it is observable (Prometheus, tracing).
//!
//! ```no_run
//! # async fn run() -> Result<(), lnc_mailbox::ServeError> {
//! let server = lnc_mailbox::Server::bind(lnc_mailbox::Config::loopback_insecure()).await?;
//! println!("listening on {}", server.handle().local_addr());
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod activity;
pub mod auth;
mod budget;
pub mod client;
pub mod config;
mod conn;
pub mod error;
pub mod grpc;
mod ip_counts;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod ops;
mod rate;
pub mod redis;
pub mod rest;
pub mod store;
pub mod stream;
pub mod tls;
pub mod web;
pub mod ws;

pub use config::{Config, Limits, RedisConfig, Timers, TlsMode, parse_token_file};
pub use error::RelayError;
pub use net::{ServeError, Server, ServerHandle, serve};
pub use store::StoreStats;
