//! `lnc`: Lightning Node Connect in Rust. The daemons `mailbox` (the relay) and `node` (beside
//! LND, with `session` to manage it), the app side `connect`, `call`, `profiles`, `status`,
//! `demo` (everything in one process) and `bench` (load tools).

mod cmd;
mod fd_limit;

/// jemalloc rather than glibc's malloc: the relay and the node must give a burst's memory back
/// (#18); see crates/lnc/Cargo.toml and BENCHMARKS.md for the measurement.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::{Parser, Subcommand};

/// Lightning Node Connect tools.
#[derive(Parser)]
#[command(name = "lnc", version, about, propagate_version = true)]
struct Cli {
    /// Log filter (tracing-subscriber EnvFilter syntax, e.g. `info`,
    /// `lnc_mailbox=debug`).
    #[arg(long, global = true, env = "LNC_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a mailbox (HashMail relay) that LNC apps and nodes meet through.
    Mailbox(Box<cmd::mailbox::MailboxArgs>),
    /// Load generators and benchmarks.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// Pair with a node using its phrase and save the credentials as a profile.
    Connect(cmd::connect::ConnectArgs),
    /// Call an RPC by name with JSON through a saved profile.
    Call(cmd::call::CallArgs),
    /// List or remove saved profiles.
    #[command(subcommand)]
    Profiles(cmd::profiles::ProfilesCommand),
    /// Connect with a profile and show the session's status, expiry and permissions.
    Status(cmd::status::StatusArgs),
    /// Run the node side beside LND: serves paired apps through the mailbox.
    Node(Box<cmd::node::NodeArgs>),
    /// Manage a running node's sessions (pairing phrases).
    Session(cmd::session::SessionArgs),
    /// Run mailbox, lnd-sim, node and an app in one process and show every step.
    #[cfg(feature = "lnd-sim")]
    Demo(cmd::demo::DemoArgs),
    /// The LND stand-in (for tests and the demo).
    #[cfg(feature = "lnd-sim")]
    #[command(hide = true)]
    LndSim(cmd::demo::LndSimArgs),
}

/// Errors are printed as their cause chain (`error: … : …`), never with anyhow's
/// backtrace: many machines set `RUST_BACKTRACE=1`, and a user who mistyped a flag or
/// whose node is offline needs the sentence that says what to do, not a stack.
/// `--log debug` is the way to more detail.
fn main() -> std::process::ExitCode {
    // The purge thread returns dirty pages after their decay time (10 s) even when the
    // process is idle; without it jemalloc purges only while it allocates, so a relay left
    // quiet after a flood would keep the memory. Failure only costs that, so it is ignored.
    #[cfg(all(target_os = "linux", not(target_env = "musl")))]
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or journald gets plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Mailbox(args) => cmd::mailbox::run(*args).await,
            Command::Bench(b) => cmd::bench::run(b).await,
            Command::Connect(a) => cmd::connect::run(a).await,
            Command::Call(a) => cmd::call::run(a).await,
            Command::Profiles(c) => cmd::profiles::run(c).await,
            Command::Status(a) => cmd::status::run(a).await,
            Command::Node(args) => cmd::node::run(*args).await,
            Command::Session(args) => cmd::session::run(args).await,
            #[cfg(feature = "lnd-sim")]
            Command::Demo(args) => cmd::demo::run(args).await,
            #[cfg(feature = "lnd-sim")]
            Command::LndSim(args) => cmd::demo::run_lnd_sim(args).await,
        }
    })
}
