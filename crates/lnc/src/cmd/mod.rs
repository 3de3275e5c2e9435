//! One module per subcommand.

pub mod bench;
pub mod demo;
pub mod mailbox;
pub mod node;
pub mod session;
