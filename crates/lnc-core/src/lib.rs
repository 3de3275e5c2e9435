//! # lnc-core — the Lightning Node Connect protocol, sans-IO
//!
//! Every byte LNC puts on the wire is decided here, and nothing here touches a socket, a
//! clock, a task or a global RNG: time (`now`) and randomness (`rand_core` RNGs) are passed
//! in. The same code therefore runs natively, in the browser (wasm32), and under
//! deterministic tests driven by the Go reference vectors.
//!
//! Layers, bottom up (each module is one layer; dependencies point down only):
//!
//! | module | layer |
//! |---|---|
//! | [`gbn`] | go-back-N: reliable, ordered messages over the mailbox's two lossy one-way pipes |
//! | [`msgdata`] | the `MsgData` frame every mailbox write is wrapped in |
//! | [`keys`], [`spake2`] | secp256k1 keys, LNC's hashed ECDH, the SPAKE2 mask |
//! | [`pairing`] | pairing phrase ⇄ entropy, stream IDs, scrypt stretch, connection state |
//! | [`noise`] | the Noise machine: XXeke+SPAKE2 then KK, transport records with key rotation |
//! | [`macaroon`] | macaroon V2 codec and verifier, LND's macaroon IDs |
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod gbn;
pub mod go_compat;
pub mod keys;
pub mod macaroon;
pub mod msgdata;
pub mod noise;
pub mod pairing;
pub mod spake2;
pub mod time;

#[cfg(test)]
pub(crate) mod test_vectors;
