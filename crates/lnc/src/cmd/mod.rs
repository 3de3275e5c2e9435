//! One module per subcommand.

pub mod bench;
pub mod call;
pub mod connect;
pub mod mailbox;
pub mod profiles;
pub mod status;
