//! `lnc-node`: the node side of Lightning Node Connect.
//!
//! This crate part holds what every served session needs before any tunnel exists: the
//! session record ([`session`]), its redb store with secrets encrypted at rest ([`store`],
//! [`secret`]), the LND connection ([`lnd`]) and session creation/revocation, which bake and
//! delete the session macaroon in LND ([`create`]). On top of it runs the daemon
//! ([`node`]): a tunnel listener per live session with the gRPC proxy ([`proxy`]) behind
//! it, and the loopback admin API ([`admin`]) that `lnc session` talks to.

pub mod admin;
mod backend_body;
mod call_metrics;
pub mod clock;
pub mod create;
pub mod lnd;
mod metered_call;
pub mod metrics;
pub mod node;
pub mod ops;
pub mod proxy;
pub mod secret;
pub mod session;
pub mod spend;
pub mod store;

pub use admin::SessionView;
pub use clock::Clock;
pub use create::{
    CreatedSession, NewSession, SessionError, create_session, revoke_session, sweep_sessions,
};
pub use lnd::{Lnd, LndError};
pub use metrics::NodeMetrics;
pub use node::{MailboxConfig, Node, NodeConfig, NodeError, NodeEvent};
pub use ops::{OpsServer, serve_ops};
pub use proxy::{Gate, UpstreamConfig};
pub use secret::{NodeSecret, SecretError};
pub use session::{RevokeReason, Session, SessionId, SessionState, SessionType, TransitionError};
pub use store::{SessionStore, StoreError};
