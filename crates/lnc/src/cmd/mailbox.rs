//! `lnc mailbox`: runs the relay. Settings come from flags, then environment
//! variables (`LNC_MAILBOX_*`), then a TOML file (`--config`), then defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use lnc_mailbox::{Config, Limits, Timers, TlsMode};
use serde::Deserialize;

/// Flags of `lnc mailbox`. Every flag also has an environment variable and
/// a key of the same name (snake_case) in the TOML file.
#[derive(Args, Debug, Default)]
#[command(after_help = "\
TLS: by default a self-signed certificate is generated in the data dir on first start and \
its SHA-256 fingerprint is printed; give --tls-cert/--tls-key for a real certificate, or \
--insecure to serve plaintext (h2c + ws) behind a TLS-terminating proxy (then set \
--trusted-proxy so per-IP limits see the real client from X-Forwarded-For).

Config file example (mailbox.toml):
  listen = \"0.0.0.0:443\"
  tls_cert = \"/etc/lnc/fullchain.pem\"
  tls_key = \"/etc/lnc/privkey.pem\"
  max_streams_per_ip = 2000
  idle_timeout_secs = 3600

Scale-out: run N instances with the same --redis redis://HOST:PORT[/DB] behind any load \
balancer (TCP or HTTP/2-aware); they act as one relay. GET /healthz (or /readyz) on the \
public and metrics listeners answers 503 while Redis is unreachable.")]
pub struct MailboxArgs {
    /// TOML config file (keys = the long flag names with '_' for '-').
    #[arg(long, env = "LNC_MAILBOX_CONFIG")]
    config: Option<PathBuf>,
    /// Public address for gRPC, WebSocket and REST (one port) [default: 0.0.0.0:8443].
    #[arg(long, env = "LNC_MAILBOX_LISTEN")]
    listen: Option<SocketAddr>,
    /// Prometheus /metrics address, or "off" [default: 127.0.0.1:9091].
    #[arg(long, env = "LNC_MAILBOX_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Directory for the generated TLS certificate [default: ./lnc-mailbox-data].
    #[arg(long, env = "LNC_MAILBOX_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Serve plaintext HTTP/1.1 + h2c (only behind a TLS-terminating proxy).
    #[arg(long, env = "LNC_MAILBOX_INSECURE")]
    insecure: bool,
    /// PEM certificate chain (with --tls-key) instead of the self-signed one.
    #[arg(long, env = "LNC_MAILBOX_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "LNC_MAILBOX_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Extra DNS name or IP for the self-signed certificate (repeatable).
    #[arg(
        long = "tls-host",
        env = "LNC_MAILBOX_TLS_HOSTS",
        value_delimiter = ','
    )]
    tls_hosts: Vec<String>,
    /// File of bearer tokens (one per line, mode 0600) required to create/delete
    /// mailboxes. Off by default so unmodified Go nodes keep working.
    #[arg(long, env = "LNC_MAILBOX_CREATE_AUTH")]
    create_auth: Option<PathBuf>,
    /// Proxy IP whose X-Forwarded-For is trusted (repeatable / comma list).
    #[arg(
        long = "trusted-proxy",
        env = "LNC_MAILBOX_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<IpAddr>,
    /// Largest message in bytes [default: 131072].
    #[arg(long, env = "LNC_MAILBOX_MAX_MESSAGE_BYTES")]
    max_message_bytes: Option<usize>,
    /// Messages queued per stream before the writer waits [default: 64].
    #[arg(long, env = "LNC_MAILBOX_MAX_QUEUE_MESSAGES")]
    max_queue_messages: Option<usize>,
    /// Bytes queued per stream before the writer waits [default: 2097152].
    #[arg(long, env = "LNC_MAILBOX_MAX_QUEUE_BYTES")]
    max_queue_bytes: Option<usize>,
    /// Live mailboxes in total [default: 200000].
    #[arg(long, env = "LNC_MAILBOX_MAX_STREAMS")]
    max_streams: Option<usize>,
    /// Live mailboxes per client IP; its calls in flight are capped at twice this + 64
    /// [default: 1000].
    #[arg(long, env = "LNC_MAILBOX_MAX_STREAMS_PER_IP")]
    max_streams_per_ip: Option<usize>,
    /// Open connections per client IP [default: 256].
    #[arg(long, env = "LNC_MAILBOX_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Sustained messages per second per stream [default: 1000].
    #[arg(long, env = "LNC_MAILBOX_STREAM_RATE")]
    stream_rate: Option<f64>,
    /// Burst of messages per stream above the rate [default: 2000].
    #[arg(long, env = "LNC_MAILBOX_STREAM_BURST")]
    stream_burst: Option<u32>,
    /// The relay's memory budget: queued messages plus 16 KiB per call in flight and 64 KiB
    /// per connection; writers are held back and new calls refused when it is spent
    /// [default: a quarter of the machine's memory].
    #[arg(long, env = "LNC_MAILBOX_QUEUE_BUDGET_BYTES")]
    queue_budget_bytes: Option<usize>,
    /// One client IP's share of the budget: its queued messages, calls and connections
    /// together [default: 67108864, at most the budget].
    #[arg(long, env = "LNC_MAILBOX_QUEUE_BUDGET_PER_IP_BYTES")]
    queue_budget_per_ip_bytes: Option<usize>,
    /// Delete mailboxes with no reader and no writer for this many seconds;
    /// 0 disables [default: 3600].
    #[arg(long, env = "LNC_MAILBOX_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// How often idle mailboxes are looked for, seconds [default: 60].
    #[arg(long, env = "LNC_MAILBOX_GC_INTERVAL_SECS")]
    gc_interval_secs: Option<u64>,
    /// How long a second reader/writer waits before "stream occupied", ms [default: 250].
    #[arg(long, env = "LNC_MAILBOX_OCCUPIED_WAIT_MS")]
    occupied_wait_ms: Option<u64>,
    /// WebSocket ping interval in seconds; 0 disables [default: 30].
    #[arg(long, env = "LNC_MAILBOX_WS_PING_SECS")]
    ws_ping_secs: Option<u64>,
    /// Close a connection with no call in flight for this many seconds (its client
    /// reconnects when it calls again); 0 keeps them [default: 120].
    #[arg(long, env = "LNC_MAILBOX_CONNECTION_IDLE_SECS")]
    connection_idle_secs: Option<u64>,
    /// Keep mailboxes in this Redis, shared by every instance given the same
    /// URL: redis://[USER:PASS@]HOST:PORT[/DB] [default: in memory, one instance].
    #[arg(long, env = "LNC_MAILBOX_REDIS")]
    redis: Option<String>,
    /// Redis mode: how long a crashed instance's reader/writer holds last, ms [default: 3000].
    #[arg(long, env = "LNC_MAILBOX_REDIS_LEASE_MS")]
    redis_lease_ms: Option<u64>,
    /// Redis mode: prefix of every key and channel [default: "lnc:"].
    #[arg(long, env = "LNC_MAILBOX_REDIS_PREFIX")]
    redis_prefix: Option<String>,
}

/// The TOML file: same names as the flags.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    metrics_listen: Option<String>,
    data_dir: Option<PathBuf>,
    insecure: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_hosts: Option<Vec<String>>,
    create_auth: Option<PathBuf>,
    trusted_proxies: Option<Vec<IpAddr>>,
    max_message_bytes: Option<usize>,
    max_queue_messages: Option<usize>,
    max_queue_bytes: Option<usize>,
    max_streams: Option<usize>,
    max_streams_per_ip: Option<usize>,
    max_connections_per_ip: Option<usize>,
    stream_rate: Option<f64>,
    stream_burst: Option<u32>,
    queue_budget_bytes: Option<usize>,
    queue_budget_per_ip_bytes: Option<usize>,
    idle_timeout_secs: Option<u64>,
    gc_interval_secs: Option<u64>,
    occupied_wait_ms: Option<u64>,
    ws_ping_secs: Option<u64>,
    connection_idle_secs: Option<u64>,
    redis: Option<String>,
    redis_lease_ms: Option<u64>,
    redis_prefix: Option<String>,
}

fn build_config(a: MailboxArgs) -> anyhow::Result<Config> {
    let f: FileConfig = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading config file {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing config file {}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let d = Config::default();
    let dl = Limits::default();
    let dt = Timers::default();
    let metrics = a.metrics_listen.or(f.metrics_listen);
    let metrics_listen = match metrics.as_deref() {
        None => d.metrics_listen,
        Some("off" | "") => None,
        Some(s) => Some(
            s.parse()
                .with_context(|| format!("--metrics-listen: not an address: {s}"))?,
        ),
    };
    let insecure = a.insecure || f.insecure.unwrap_or(false);
    let cert = a.tls_cert.or(f.tls_cert);
    let key = a.tls_key.or(f.tls_key);
    let tls = match (insecure, cert, key) {
        (true, None, None) => TlsMode::Insecure,
        (true, _, _) => anyhow::bail!("--insecure conflicts with --tls-cert/--tls-key"),
        (false, Some(cert), Some(key)) => TlsMode::Files { cert, key },
        (false, None, None) => TlsMode::SelfSigned {
            hosts: if a.tls_hosts.is_empty() {
                f.tls_hosts.unwrap_or_default()
            } else {
                a.tls_hosts
            },
        },
        _ => anyhow::bail!("--tls-cert and --tls-key must be given together"),
    };
    let create_tokens = match a.create_auth.or(f.create_auth) {
        Some(p) => {
            let meta = std::fs::metadata(&p)
                .with_context(|| format!("reading --create-auth file {}", p.display()))?;
            if let Some(mode) = lnc_node::secret::loose_mode(&meta) {
                anyhow::bail!(
                    "--create-auth file {} has mode {mode:o}: other users can read the tokens \
                     that allow creating mailboxes; run `chmod 600 {}` and start again",
                    p.display(),
                    p.display()
                );
            }
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("reading --create-auth file {}", p.display()))?;
            let tokens = lnc_mailbox::parse_token_file(&text);
            anyhow::ensure!(
                !tokens.is_empty(),
                "--create-auth file {} has no tokens",
                p.display()
            );
            Some(tokens)
        }
        None => None,
    };
    let secs = Duration::from_secs;
    let idle = a
        .idle_timeout_secs
        .or(f.idle_timeout_secs)
        .map_or(dt.idle_timeout, |s| (s > 0).then(|| secs(s)));
    let ping = a
        .ws_ping_secs
        .or(f.ws_ping_secs)
        .map_or(dt.ws_ping_interval, |s| (s > 0).then(|| secs(s)));
    let connection_idle = a
        .connection_idle_secs
        .or(f.connection_idle_secs)
        .map_or(dt.connection_idle, |s| (s > 0).then(|| secs(s)));
    let redis = match a.redis.or(f.redis).filter(|u| !u.is_empty()) {
        None => None,
        Some(url) => {
            let mut r = lnc_mailbox::RedisConfig::new(url);
            if let Some(ms) = a.redis_lease_ms.or(f.redis_lease_ms) {
                anyhow::ensure!(ms >= 300, "--redis-lease-ms must be at least 300");
                r.lease_ttl = Duration::from_millis(ms);
            }
            if let Some(p) = a.redis_prefix.or(f.redis_prefix) {
                r.prefix = p;
            }
            Some(r)
        }
    };
    Ok(Config {
        redis,
        listen: a.listen.or(f.listen).unwrap_or(d.listen),
        metrics_listen,
        tls,
        data_dir: a
            .data_dir
            .or(f.data_dir)
            .unwrap_or_else(|| PathBuf::from("lnc-mailbox-data")),
        create_tokens,
        trusted_proxies: if a.trusted_proxies.is_empty() {
            f.trusted_proxies.unwrap_or_default()
        } else {
            a.trusted_proxies
        },
        limits: Limits {
            max_message_bytes: a
                .max_message_bytes
                .or(f.max_message_bytes)
                .unwrap_or(dl.max_message_bytes),
            max_queue_messages: a
                .max_queue_messages
                .or(f.max_queue_messages)
                .unwrap_or(dl.max_queue_messages),
            max_queue_bytes: a
                .max_queue_bytes
                .or(f.max_queue_bytes)
                .unwrap_or(dl.max_queue_bytes),
            max_streams: a.max_streams.or(f.max_streams).unwrap_or(dl.max_streams),
            max_streams_per_ip: a
                .max_streams_per_ip
                .or(f.max_streams_per_ip)
                .unwrap_or(dl.max_streams_per_ip),
            max_connections_per_ip: a
                .max_connections_per_ip
                .or(f.max_connections_per_ip)
                .unwrap_or(dl.max_connections_per_ip),
            stream_rate_per_sec: a
                .stream_rate
                .or(f.stream_rate)
                .unwrap_or(dl.stream_rate_per_sec),
            stream_burst: a.stream_burst.or(f.stream_burst).unwrap_or(dl.stream_burst),
            queue_budget_bytes: a.queue_budget_bytes.or(f.queue_budget_bytes),
            queue_budget_per_ip_bytes: a.queue_budget_per_ip_bytes.or(f.queue_budget_per_ip_bytes),
        },
        timers: Timers {
            occupied_wait: a
                .occupied_wait_ms
                .or(f.occupied_wait_ms)
                .map_or(dt.occupied_wait, Duration::from_millis),
            idle_timeout: idle,
            gc_interval: a
                .gc_interval_secs
                .or(f.gc_interval_secs)
                .map_or(dt.gc_interval, |s| secs(s.max(1))),
            ws_ping_interval: ping,
            connection_idle,
            ..dt
        },
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The Redis URL without its password (for logs).
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://<redacted>@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Runs the relay until SIGTERM/Ctrl-C.
pub async fn run(args: MailboxArgs) -> anyhow::Result<()> {
    let config = build_config(args)?;
    crate::fd_limit::raise();
    let server = lnc_mailbox::Server::bind(config.clone()).await?;
    let handle = server.handle();
    let scheme = if config.tls == TlsMode::Insecure {
        "plaintext (h2c + ws)"
    } else {
        "TLS (h2 + http/1.1)"
    };
    tracing::info!(addr = %handle.local_addr(), mode = scheme, "mailbox listening");
    if let Some(fp) = handle.tls_fingerprint() {
        println!("mailbox TLS certificate SHA-256 fingerprint: {fp}");
    }
    if let Some(m) = handle.metrics_addr() {
        tracing::info!(addr = %m, "metrics on http://{m}/metrics");
    }
    if config.create_tokens.is_some() {
        tracing::info!("mailbox creation requires a bearer token (--create-auth)");
    }
    if let Some(r) = &config.redis {
        tracing::info!(
            url = %redact_url(&r.url),
            lease_ms = r.lease_ttl.as_millis() as u64,
            "mailboxes kept in Redis (scale-out mode); readiness on /healthz"
        );
    }
    server.serve(shutdown_signal()).await?;
    tracing::info!("mailbox stopped");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: MailboxArgs,
    }

    #[test]
    fn flags_override_file_and_defaults() {
        let dir = std::env::temp_dir().join(format!("lnc-mb-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.toml");
        std::fs::write(
            &file,
            "max_streams = 7\nmax_streams_per_ip = 3\ninsecure = true\nidle_timeout_secs = 0\n",
        )
        .unwrap();
        let t = T::parse_from([
            "x",
            "--config",
            file.to_str().unwrap(),
            "--max-streams",
            "9",
            "--metrics-listen",
            "off",
        ]);
        let c = build_config(t.a).unwrap();
        assert_eq!(c.limits.max_streams, 9);
        assert_eq!(c.limits.max_streams_per_ip, 3);
        assert_eq!(c.tls, TlsMode::Insecure);
        assert_eq!(c.metrics_listen, None);
        assert_eq!(c.timers.idle_timeout, None);
        assert_eq!(c.limits.max_message_bytes, 128 * 1024);
    }

    #[test]
    fn redis_from_flag_file_and_env_name() {
        let dir = std::env::temp_dir().join(format!("lnc-mb-cfg3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.toml");
        std::fs::write(
            &file,
            "redis = \"redis://10.0.0.5:6379/2\"\nredis_lease_ms = 5000\n",
        )
        .unwrap();
        let t = T::parse_from(["x", "--config", file.to_str().unwrap()]);
        let r = build_config(t.a).unwrap().redis.unwrap();
        assert_eq!(r.url, "redis://10.0.0.5:6379/2");
        assert_eq!(r.lease_ttl, Duration::from_secs(5));
        let t = T::parse_from(["x", "--redis", "redis://h:1", "--redis-prefix", "p:"]);
        let r = build_config(t.a).unwrap().redis.unwrap();
        assert_eq!((r.url.as_str(), r.prefix.as_str()), ("redis://h:1", "p:"));
        assert!(
            build_config(T::parse_from(["x"]).a)
                .unwrap()
                .redis
                .is_none()
        );
        assert_eq!(redact_url("redis://u:pw@h:1/0"), "redis://<redacted>@h:1/0");
    }

    #[test]
    fn bad_file_key_is_an_error() {
        let dir = std::env::temp_dir().join(format!("lnc-mb-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.toml");
        std::fs::write(&file, "max_stream = 7\n").unwrap();
        let t = T::parse_from(["x", "--config", file.to_str().unwrap()]);
        assert!(build_config(t.a).is_err());
    }
}
