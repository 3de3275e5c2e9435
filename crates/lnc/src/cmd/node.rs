//! `lnc node`: runs the node side beside LND. Settings come from flags, then environment
//! variables (`LNC_NODE_*`), then a TOML file (`--config`), then defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use lnc_node::{MailboxConfig, Node, NodeConfig, UpstreamConfig};
use lnc_tunnel::TlsMode;
use serde::Deserialize;

/// Default data dir of the node (and of `lnc session`).
pub const DEFAULT_DATA_DIR: &str = "lnc-node-data";

/// Flags of `lnc node`.
#[derive(Args, Debug, Default)]
#[command(after_help = "\
`lnc node` is meant to run beside a real LND (lnd-sim is only a test and demo fixture). \
It needs a macaroon that may bake and delete macaroons (LND's admin.macaroon).

Config file example (node.toml):
  lnd_addr = \"127.0.0.1:10009\"
  lnd_tls_cert = \"/home/lnd/.lnd/tls.cert\"
  lnd_macaroon = \"/home/lnd/.lnd/data/chain/bitcoin/mainnet/admin.macaroon\"
  data_dir = \"/var/lib/lnc-node\"
  mailbox = \"mailbox.terminal.lightning.today:443\"
  mailbox_tls = \"system\"      # system | ca | skip-verify | insecure
  [[upstream]]
  prefix = \"looprpc.\"
  addr = \"127.0.0.1:11010\"
  tls_cert = \"/home/loop/.loop/mainnet/tls.cert\"
  macaroon = \"/home/loop/.loop/mainnet/loop.macaroon\"")]
pub struct NodeArgs {
    /// TOML config file (keys = the long flag names with '_' for '-').
    #[arg(long, env = "LNC_NODE_CONFIG")]
    config: Option<PathBuf>,
    /// LND gRPC address [default: 127.0.0.1:10009].
    #[arg(long, env = "LNC_NODE_LND_ADDR")]
    lnd_addr: Option<String>,
    /// LND's tls.cert.
    #[arg(long, env = "LNC_NODE_LND_TLS_CERT")]
    lnd_tls_cert: Option<PathBuf>,
    /// A macaroon allowed to bake and delete macaroons (admin.macaroon).
    #[arg(long, env = "LNC_NODE_LND_MACAROON")]
    lnd_macaroon: Option<PathBuf>,
    /// Session store, node secret, admin token [default: ./lnc-node-data].
    #[arg(long, env = "LNC_NODE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Default mailbox for new sessions [default: mailbox.terminal.lightning.today:443].
    #[arg(long, env = "LNC_NODE_MAILBOX")]
    mailbox: Option<String>,
    /// Mailbox TLS: system, ca (with --mailbox-ca), skip-verify or insecure [default: system].
    #[arg(long, env = "LNC_NODE_MAILBOX_TLS")]
    mailbox_tls: Option<String>,
    /// PEM CA file for --mailbox-tls ca.
    #[arg(long, env = "LNC_NODE_MAILBOX_CA")]
    mailbox_ca: Option<PathBuf>,
    /// Bearer token for relays that require one to create mailboxes.
    #[arg(long, env = "LNC_NODE_MAILBOX_CREATION_TOKEN", hide_env_values = true)]
    mailbox_creation_token: Option<String>,
    /// Another daemon: PREFIX=HOST:PORT,TLS_CERT,MACAROON (repeatable), e.g.
    /// looprpc.=127.0.0.1:11010,loop.cert,loop.macaroon.
    #[arg(long = "upstream", env = "LNC_NODE_UPSTREAMS", value_delimiter = ';')]
    upstreams: Vec<String>,
    /// Admin API address, loopback only [default: 127.0.0.1:8287].
    #[arg(long, env = "LNC_NODE_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Prometheus `/metrics` and `/healthz` address (loopback recommended: metrics show
    /// which methods apps call) [default: none, not served].
    #[arg(long, env = "LNC_NODE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Seconds a handshake may take once the app's connection is up [default: 30].
    #[arg(long, env = "LNC_NODE_HANDSHAKE_TIMEOUT_SECS")]
    handshake_timeout_secs: Option<u64>,
    /// Pairings stalled after act 2 before the phrase is burnt [default: 3].
    #[arg(long, env = "LNC_NODE_MAX_STALLED_ATTEMPTS")]
    max_stalled_attempts: Option<u32>,
    /// Seconds an unpaired session waits for its first app [default: 600].
    #[arg(long, env = "LNC_NODE_FIRST_CONNECTION_TIMEOUT_SECS")]
    first_connection_timeout_secs: Option<u64>,
    /// Audit log entries kept per session; older ones are deleted [default: 10000].
    #[arg(long, env = "LNC_NODE_AUDIT_ENTRIES")]
    audit_entries: Option<u64>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FileUpstream {
    prefix: String,
    addr: String,
    tls_cert: PathBuf,
    macaroon: PathBuf,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    lnd_addr: Option<String>,
    lnd_tls_cert: Option<PathBuf>,
    lnd_macaroon: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    mailbox: Option<String>,
    mailbox_tls: Option<String>,
    mailbox_ca: Option<PathBuf>,
    mailbox_creation_token: Option<String>,
    #[serde(default)]
    upstream: Vec<FileUpstream>,
    admin_listen: Option<SocketAddr>,
    metrics_listen: Option<SocketAddr>,
    handshake_timeout_secs: Option<u64>,
    max_stalled_attempts: Option<u32>,
    first_connection_timeout_secs: Option<u64>,
    audit_entries: Option<u64>,
}

fn parse_upstream(s: &str) -> anyhow::Result<UpstreamConfig> {
    let (prefix, rest) = s
        .split_once('=')
        .context("--upstream is PREFIX=HOST:PORT,TLS_CERT,MACAROON")?;
    let parts: Vec<&str> = rest.split(',').collect();
    let [addr, cert, mac] = parts[..] else {
        bail!("--upstream {s:?}: expected PREFIX=HOST:PORT,TLS_CERT,MACAROON");
    };
    Ok(UpstreamConfig {
        prefix: prefix.to_owned(),
        addr: addr.to_owned(),
        tls_cert: cert.into(),
        macaroon: mac.into(),
    })
}

/// Parses a mailbox TLS mode name.
pub fn parse_mailbox_tls(mode: &str, ca: Option<PathBuf>) -> anyhow::Result<TlsMode> {
    Ok(match mode {
        "system" => TlsMode::System,
        "skip-verify" => TlsMode::SkipVerify,
        "insecure" => TlsMode::Insecure,
        "ca" => {
            let ca = ca.context("--mailbox-tls ca needs --mailbox-ca FILE")?;
            TlsMode::CaPem(
                std::fs::read(&ca)
                    .with_context(|| format!("reading the mailbox CA file {}", ca.display()))?,
            )
        }
        other => bail!("--mailbox-tls {other:?}: use system, ca, skip-verify or insecure"),
    })
}

impl NodeArgs {
    fn resolve(self) -> anyhow::Result<NodeConfig> {
        let file: FileConfig = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let lnd_tls_cert = self
            .lnd_tls_cert
            .or(file.lnd_tls_cert)
            .context("--lnd-tls-cert is required (LND's tls.cert)")?;
        let lnd_macaroon = self
            .lnd_macaroon
            .or(file.lnd_macaroon)
            .context("--lnd-macaroon is required (a macaroon that may bake macaroons)")?;
        let tls = parse_mailbox_tls(
            self.mailbox_tls
                .or(file.mailbox_tls)
                .as_deref()
                .unwrap_or("system"),
            self.mailbox_ca.or(file.mailbox_ca),
        )?;
        let mut upstreams = Vec::new();
        for u in &self.upstreams {
            upstreams.push(parse_upstream(u)?);
        }
        for u in file.upstream {
            upstreams.push(UpstreamConfig {
                prefix: u.prefix,
                addr: u.addr,
                tls_cert: u.tls_cert,
                macaroon: u.macaroon,
            });
        }
        let mut cfg = NodeConfig::new(
            self.lnd_addr
                .or(file.lnd_addr)
                .unwrap_or_else(|| "127.0.0.1:10009".into()),
            lnd_tls_cert,
            lnd_macaroon,
            self.data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            MailboxConfig {
                addr: self
                    .mailbox
                    .or(file.mailbox)
                    .unwrap_or_else(|| "mailbox.terminal.lightning.today:443".into()),
                tls,
                creation_token: self.mailbox_creation_token.or(file.mailbox_creation_token),
            },
        );
        cfg.upstreams = upstreams;
        cfg.admin_listen = self
            .admin_listen
            .or(file.admin_listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8287)));
        cfg.metrics_listen = self.metrics_listen.or(file.metrics_listen);
        if let Some(s) = self.handshake_timeout_secs.or(file.handshake_timeout_secs) {
            cfg.handshake_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = self.max_stalled_attempts.or(file.max_stalled_attempts) {
            cfg.max_stalled_attempts = n.max(1);
        }
        if let Some(s) = self
            .first_connection_timeout_secs
            .or(file.first_connection_timeout_secs)
        {
            cfg.first_connection_timeout = Duration::from_secs(s);
        }
        if let Some(n) = self.audit_entries.or(file.audit_entries) {
            cfg.audit_entries = n.max(1);
        }
        Ok(cfg)
    }
}

/// A running node with its admin API and, when configured, its metrics listener.
pub struct Running {
    /// The node.
    pub node: Node,
    /// The admin API.
    pub admin: lnc_node::admin::AdminServer,
    /// `/metrics` and `/healthz`, if `metrics_listen` was set.
    pub ops: Option<lnc_node::OpsServer>,
}

/// Starts a node, its admin API and its metrics listener (the demo runs them in-process).
pub async fn start(cfg: NodeConfig) -> anyhow::Result<Running> {
    let metrics_listen = cfg.metrics_listen;
    let node = Node::start(cfg).await?;
    let admin = lnc_node::admin::serve_admin(node.clone()).await?;
    let ops = match metrics_listen {
        Some(addr) => Some(lnc_node::serve_ops(node.clone(), addr).await?),
        None => None,
    };
    Ok(Running { node, admin, ops })
}

/// Runs `lnc node` until Ctrl-C (or SIGTERM).
pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let cfg = args.resolve()?;
    crate::fd_limit::raise();
    let data_dir = cfg.data_dir.clone();
    let Running { node, admin, ops } = start(cfg).await?;
    tracing::info!(admin = %admin.addr, data_dir = %data_dir.display(), sessions = node.live_sessions(), "lnc node running");
    if let Some(ops) = &ops {
        println!("lnc node metrics: http://{}/metrics", ops.addr);
    }
    // The readiness line scripts and tests wait for.
    println!("lnc node ready: admin API on {}", admin.addr);
    shutdown_signal().await;
    tracing::info!("shutting down");
    admin.stop();
    if let Some(ops) = ops {
        ops.stop();
    }
    node.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
