//! # lnc-client: the app side of Lightning Node Connect
//!
//! Pair with a node once using its ten-word phrase, keep the resulting [`Credentials`]
//! (encrypted with a password), reconnect with them later, and call LND's API through the
//! tunnel — typed ([`Client::lightning`]) or as JSON.
//!
//! Layering: `lnc-client` → `lnc-tunnel` (GBN, Noise, HTTP/2, reconnect) → `lnc-core`.
//! Everything except [`native`] is runtime-agnostic (any [`lnc_tunnel::Runtime`] and
//! [`lnc_tunnel::Mailbox`]), so the browser build reuses it; `native` (default feature)
//! adds tokio, the gRPC/WebSocket relay transports and the profile file store.

pub mod client;
pub mod credentials;
pub mod error;
#[cfg(feature = "native")]
pub mod native;

pub use client::{Client, ConnectOptions, DEFAULT_WAIT, Event, JsonStream, Phase, connect, pair};
pub use credentials::{
    Credentials, CredentialsError, EncryptedCredentials, MailboxInfo, PublicInfo, TlsMode,
    Transport,
};
pub use error::{CallShape, Error};
pub use lnc_tunnel::Status;
pub use lnd_api::dynamic::Registry;
