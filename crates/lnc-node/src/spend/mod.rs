//! Sessions that can spend within limits: budgets, per-payment caps, call rate limits,
//! a stream cap and an audit log, enforced by the node whatever the session's macaroon
//! allows.
//!
//! The decisions are pure and tested on their own — which RPCs pass ([`policy`]), what a
//! payment commits to and what it cost ([`amount`]), whether it fits ([`ledger`]), the call
//! rate ([`limits`]), gRPC framing ([`frames`]). [`meter`] drives them per session with the
//! store ([`store`]) and LND ([`reconcile`]); [`audit`] writes the log; [`service`] answers
//! the app's `lncnode.Budget` calls; the proxy feeds all of it requests and responses.

pub mod amount;
pub mod audit;
pub mod frames;
pub mod ledger;
pub mod limits;
pub mod meter;
pub mod policy;
pub mod reconcile;
pub mod service;
pub mod store;

pub use ledger::{Budget, Period, Remaining};
pub use meter::Meter;
pub use store::{AuditEntry, Limits, SessionPolicy};
