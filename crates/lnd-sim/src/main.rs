//! `lnd-sim`: runs the LND stand-in until Ctrl-C and prints where it listens and where its
//! TLS certificate and macaroons are.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use lnd_sim::{Config, LndSim, MacaroonKind};

/// An LND stand-in for tests and the lnc demo (not a Lightning node).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// gRPC listen address; port 0 picks a free port (the bound address is printed).
    #[arg(long, env = "LND_SIM_LISTEN", default_value = "127.0.0.1:10009")]
    listen: SocketAddr,
    /// Data dir for tls.cert, tls.key, *.macaroon and the macaroon root keys.
    #[arg(long, env = "LND_SIM_DATA_DIR", default_value = "lnd-sim-data")]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let sim = LndSim::start(Config {
        listen: args.listen,
        data_dir: args.data_dir,
    })
    .await?;
    println!("lnd-sim listening on {}", sim.addr());
    println!("tls cert:          {}", sim.tls_cert_path().display());
    for kind in [
        MacaroonKind::Admin,
        MacaroonKind::ReadOnly,
        MacaroonKind::Invoice,
    ] {
        println!("macaroon:          {}", sim.macaroon_path(kind).display());
    }
    println!("identity pubkey:   {}", sim.identity_pubkey());
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
