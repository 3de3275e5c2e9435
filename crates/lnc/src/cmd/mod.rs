//! One module per subcommand.

pub mod bench;
pub mod bench_tunnel;
pub mod call;
pub mod connect;
#[cfg(feature = "lnd-sim")]
pub mod demo;
pub mod mailbox;
pub mod node;
pub mod profiles;
pub mod session;
pub mod status;
