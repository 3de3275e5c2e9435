//! `lnc session add|list|show|revoke|log|budget`: talks to a running `lnc node` through its loopback
//! admin API (address and token from the node's data dir).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt as _, Full};
use lnc_node::SessionView;
use lnc_node::admin::{
    ADMIN_ADDR_FILE, ADMIN_TOKEN_FILE, AddSessionRequest, PolicyRequest, SessionReply,
};
use lnc_node::spend::ledger::{Period, Sat, utc};
use lnc_node::spend::{AuditEntry, Remaining};

/// Where the node's admin API is.
#[derive(Args, Debug)]
pub struct SessionArgs {
    /// The node's data dir (holds admin.addr and admin.token) [default: ./lnc-node-data].
    #[arg(long, env = "LNC_NODE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Admin API address (default: read from the data dir's admin.addr).
    #[arg(long, env = "LNC_NODE_ADMIN", global = true)]
    node: Option<SocketAddr>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: SessionCommand,
}

/// The session subcommands.
#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// Create a session; prints its pairing phrase and a QR code.
    Add {
        /// readonly, admin, invoice (create/read invoices, read info), spend (read, invoices,
        /// pay within --budget) or custom.
        #[arg(long = "type", default_value = "readonly")]
        session_type: String,
        /// Label shown in listings.
        #[arg(long, default_value = "")]
        label: String,
        /// Custom sessions: entity:action or uri:/pkg.Service/Method (repeatable).
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Lifetime, e.g. 90d, 12h, 30m, 45s [default: 90d].
        #[arg(long)]
        expiry: Option<String>,
        /// Mailbox host:port (default: the node's).
        #[arg(long)]
        mailbox: Option<String>,
        /// Time allowed for the first pairing, e.g. 10m (default: the node's).
        #[arg(long)]
        first_connection_timeout: Option<String>,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// List sessions (with what budget sessions have left).
    List,
    /// Show one session.
    Show {
        /// Session ID (8 hex digits, see `list`).
        id: String,
        /// Show the pairing phrase again (only while the session is unpaired).
        #[arg(long)]
        phrase: bool,
    },
    /// Revoke a session: live calls end, its macaroon stops working in LND.
    Revoke {
        /// Session ID.
        id: String,
    },
    /// Show a session's audit log: every call, and each payment's amount and fee.
    Log {
        /// Session ID.
        id: String,
        /// Newest entries to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Change a session's budget or limits, live (what was spent still counts).
    Budget {
        /// Session ID.
        id: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

/// A budget and call limits the node enforces for a session.
#[derive(clap::Args, Debug, Default)]
pub struct PolicyArgs {
    /// Spending budget: amount/period, e.g. 50000sat/day (periods: total, day, week, month;
    /// rolling windows). Payments and their fees count.
    #[arg(long)]
    budget: Option<String>,
    /// The most one payment may commit (amount + fee limit), e.g. 10000sat.
    #[arg(long)]
    max_payment: Option<String>,
    /// Calls per second (budget sessions: 20 unless set).
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Calls allowed in a burst above the rate (budget sessions: 100 unless set).
    #[arg(long)]
    burst: Option<u32>,
    /// Calls open at once (budget sessions: 32 unless set).
    #[arg(long)]
    max_streams: Option<u32>,
}

impl PolicyArgs {
    fn request(self) -> PolicyRequest {
        PolicyRequest {
            budget: self.budget,
            max_payment: self.max_payment,
            rate_limit: self.rate_limit,
            burst: self.burst,
            max_streams: self.max_streams,
        }
    }
}

/// `12,000 of 50,000 sat left (3,000 reserved) until …`.
fn budget_text(r: &Remaining) -> String {
    let mut t = format!("{} of {} left", Sat(r.left_msat), Sat(r.budget.limit_msat));
    if r.reserved_msat > 0 {
        t.push_str(&format!(" ({} in flight)", Sat(r.reserved_msat)));
    }
    match (r.budget.period, r.resets_at) {
        (Period::Total, _) => t.push_str(", lifetime"),
        (p, Some(at)) => t.push_str(&format!(" per {}, more from {}", p.name(), utc(at))),
        (p, None) => t.push_str(&format!(" per {} (rolling)", p.name())),
    }
    if let Some(m) = r.budget.max_payment_msat {
        t.push_str(&format!(", at most {} a payment", Sat(m)));
    }
    t
}

/// Parses `90d`, `12h`, `30m`, `45s` or plain seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("bad duration unit in {s:?}; use s, m, h or d"),
    };
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

struct AdminClient {
    addr: SocketAddr,
    token: String,
}

impl AdminClient {
    fn new(args: &SessionArgs) -> anyhow::Result<Self> {
        let dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| crate::cmd::node::DEFAULT_DATA_DIR.into());
        let token_path = dir.join(ADMIN_TOKEN_FILE);
        let token = std::fs::read_to_string(&token_path)
            .with_context(|| {
                format!(
                    "reading {} (is `lnc node` running with --data-dir {}?)",
                    token_path.display(),
                    dir.display()
                )
            })?
            .trim()
            .to_owned();
        let addr = match args.node {
            Some(a) => a,
            None => {
                let p = dir.join(ADMIN_ADDR_FILE);
                std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {} (is `lnc node` running?)", p.display()))?
                    .trim()
                    .parse()
                    .with_context(|| format!("{} holds no address", p.display()))?
            }
        };
        Ok(AdminClient { addr, token })
    }

    async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to the node's admin API at {}", self.addr))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let bytes = match &body {
            Some(b) => Bytes::from(serde_json::to_vec(b)?),
            None => Bytes::new(),
        };
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, self.addr.to_string())
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes))?;
        let resp = send.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("the admin API answered {status} with non-JSON"))?;
        if !status.is_success() {
            let msg = v
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("unknown error");
            bail!("lnc node: {msg} ({status})");
        }
        Ok(v)
    }
}

fn time(secs: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    let now = SystemTime::now();
    let rel = match t.duration_since(now) {
        Ok(d) => format!("in {}", human(d)),
        Err(e) => format!("{} ago", human(e.duration())),
    };
    format!("{secs} ({rel})")
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 {
        format!("{}d", s / 86_400)
    } else if s >= 3600 {
        format!("{}h", s / 3600)
    } else if s >= 60 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

fn print_view(v: &SessionView) {
    println!("session {} ({})", v.id, v.label);
    println!("  type:       {}", v.session_type);
    match &v.revoke_reason {
        Some(r) => println!("  state:      {} — {r}", v.state),
        None => println!("  state:      {}", v.state),
    }
    println!("  created:    {}", time(v.created));
    println!("  expiry:     {}", time(v.expiry));
    println!("  paired:     {}", if v.paired { "yes" } else { "no" });
    println!(
        "  last seen:  {}",
        v.last_seen.map_or_else(|| "never".into(), time)
    );
    println!("  connected:  {}", if v.connected { "yes" } else { "no" });
    println!("  mailbox:    {}", v.mailbox);
    if let Some(b) = &v.budget {
        println!("  budget:     {}", budget_text(b));
    }
}

/// Renders `text` as a QR code for a terminal (two modules per character cell).
pub fn qr_text(text: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::new(text.as_bytes())?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build())
}

/// Runs one session subcommand.
pub async fn run(args: SessionArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(&args)?;
    let json = args.json;
    match args.command {
        SessionCommand::Add {
            session_type,
            label,
            permissions,
            expiry,
            mailbox,
            first_connection_timeout,
            no_qr,
            policy,
        } => {
            let req = AddSessionRequest {
                policy: policy.request(),
                label,
                session_type,
                permissions,
                expiry_secs: expiry
                    .as_deref()
                    .map(parse_duration)
                    .transpose()?
                    .map(|d| d.as_secs()),
                mailbox,
                first_connection_timeout_secs: first_connection_timeout
                    .as_deref()
                    .map(parse_duration)
                    .transpose()?
                    .map(|d| d.as_secs()),
            };
            let v = client
                .call(
                    http::Method::POST,
                    "/v1/sessions",
                    Some(serde_json::to_value(req)?),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let r: SessionReply = serde_json::from_value(v)?;
            let phrase = r.phrase.unwrap_or_default();
            if !no_qr {
                println!("{}", qr_text(&phrase)?);
            }
            println!("pairing phrase: {phrase}");
            println!("mailbox:        {}", r.mailbox);
            println!("type:           {}", r.session.session_type);
            println!("expiry:         {}", time(r.session.expiry));
            println!("session:        {}", r.session.id);
            if let Some(b) = &r.session.budget {
                println!("budget:         {}", budget_text(b));
            }
            println!(
                "Give the phrase to the app once; it is shown again only by \
                 `lnc session show --phrase {}` until an app pairs.",
                r.session.id
            );
        }
        SessionCommand::List => {
            let v = client.call(http::Method::GET, "/v1/sessions", None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let list: Vec<SessionView> = serde_json::from_value(v)?;
            println!(
                "{:<8}  {:<8}  {:<8}  {:<20}  {:<20}  {:<6}  {:<20}  {:<9}  label",
                "id", "state", "type", "created", "expiry", "paired", "last seen", "connected"
            );
            for s in list {
                println!(
                    "{:<8}  {:<8}  {:<8}  {:<20}  {:<20}  {:<6}  {:<20}  {:<9}  {}",
                    s.id,
                    s.state,
                    s.session_type,
                    time(s.created),
                    time(s.expiry),
                    if s.paired { "yes" } else { "no" },
                    s.last_seen.map_or_else(|| "never".into(), time),
                    if s.connected { "yes" } else { "no" },
                    s.label
                );
                if let Some(b) = &s.budget {
                    println!("          budget: {}", budget_text(b));
                }
            }
        }
        SessionCommand::Show { id, phrase } => {
            let path = if phrase {
                format!("/v1/sessions/{id}?phrase=true")
            } else {
                format!("/v1/sessions/{id}")
            };
            let v = client.call(http::Method::GET, &path, None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let r: SessionReply = serde_json::from_value(v)?;
            print_view(&r.session);
            if let Some(p) = r.phrase {
                println!("{}", qr_text(&p)?);
                println!("  phrase:     {p}");
            }
        }
        SessionCommand::Revoke { id } => {
            let v = client
                .call(http::Method::DELETE, &format!("/v1/sessions/{id}"), None)
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let s: SessionView = serde_json::from_value(v)?;
            print_view(&s);
        }
        SessionCommand::Log { id, limit } => {
            let v = client
                .call(
                    http::Method::GET,
                    &format!("/v1/sessions/{id}/log?limit={limit}"),
                    None,
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let entries: Vec<AuditEntry> = serde_json::from_value(v)?;
            if entries.is_empty() {
                println!("no calls recorded for session {id}");
            }
            for e in entries {
                let mut line = format!("{}  {:<18}  {}", utc_seconds(e.at), e.status, e.method);
                if let Some(a) = e.amount_msat {
                    line.push_str(&format!("  amount {}", Sat(a)));
                }
                if let Some(f) = e.fee_msat {
                    line.push_str(&format!("  fee {}", Sat(f)));
                }
                if let Some(h) = &e.payment_hash {
                    line.push_str(&format!("  hash {h}"));
                }
                if let Some(d) = &e.detail {
                    line.push_str(&format!("  — {d}"));
                }
                println!("{line}");
            }
        }
        SessionCommand::Budget { id, policy } => {
            let req = policy.request();
            if req == PolicyRequest::default() {
                bail!(
                    "nothing to change: give --budget, --max-payment, --rate-limit, --burst or --max-streams"
                );
            }
            let v = client
                .call(
                    http::Method::PUT,
                    &format!("/v1/sessions/{id}/policy"),
                    Some(serde_json::to_value(req)?),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let s: SessionView = serde_json::from_value(v)?;
            print_view(&s);
        }
    }
    Ok(())
}

/// `2026-12-04 08:00:05 UTC`.
fn utc_seconds(t: u64) -> String {
    let minutes = utc(t - t % 60);
    minutes.replace(" UTC", &format!(":{:02} UTC", t % 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(7_776_000)
        );
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn qr_renders() {
        let q = qr_text("abandon ability able about above absent absorb abstract absurd abuse")
            .unwrap();
        assert!(q.lines().count() > 10);
    }
}
