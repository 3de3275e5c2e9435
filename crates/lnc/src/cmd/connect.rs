//! `lnc connect`: pair with a node using its phrase and save the credentials as a
//! password-encrypted profile. Also the helpers the other client commands share
//! (reading secrets, opening the profile store, connecting with a saved profile).

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use lnc_client::native::ProfileStore;
use lnc_client::{ConnectOptions, Credentials, Event, MailboxInfo, TlsMode, Transport};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// The environment variable holding the profile password (for scripts; a prompt is used
/// otherwise).
pub const PASSWORD_ENV: &str = "LNC_PASSWORD";

/// Which relay protocol to speak.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TransportArg {
    /// HashMail over gRPC.
    Grpc,
    /// HashMail over WebSocket.
    Ws,
}

/// Arguments of `lnc connect`.
#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// The mailbox relay, HOST:PORT (e.g. mailbox.terminal.lightning.today:443).
    #[arg(long)]
    pub mailbox: String,
    /// Profile name to save the credentials under.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Plaintext connection to the relay (loopback / behind a TLS proxy).
    #[arg(long, conflicts_with_all = ["ca", "skip_verify"])]
    pub insecure: bool,
    /// Trust this PEM CA file for the relay's TLS certificate.
    #[arg(long, value_name = "FILE", conflicts_with = "skip_verify")]
    pub ca: Option<PathBuf>,
    /// TLS without certificate verification (development relays only).
    #[arg(long)]
    pub skip_verify: bool,
    /// Relay protocol.
    #[arg(long, value_enum, default_value = "grpc")]
    pub transport: TransportArg,
    /// Seconds to wait for the node before giving up.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
}

/// Reads one line from stdin (after a prompt on stderr when stdin is a terminal).
pub fn read_line(prompt: &str, hide: bool) -> anyhow::Result<Zeroizing<String>> {
    let tty = std::io::stdin().is_terminal();
    if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let echo_off = tty && hide && set_echo(false);
    let mut line = Zeroizing::new(String::new());
    let r = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        set_echo(true);
        eprintln!();
    }
    r.context("reading stdin")?;
    let trimmed = Zeroizing::new(line.trim().to_owned());
    Ok(trimmed)
}

/// Turns terminal echo off/on with `stty` (no extra dependency); false if unavailable.
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}

/// The profile password: `$LNC_PASSWORD`, else a prompt (or the next stdin line).
pub fn password() -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(Zeroizing::new(p));
    }
    let p = read_line("Profile password: ", true)?;
    if p.is_empty() {
        bail!("empty password: set {PASSWORD_ENV} or type a password");
    }
    Ok(p)
}

/// The profile store (`$LNC_HOME/profiles` or `~/.lnc/profiles`).
pub fn store() -> anyhow::Result<ProfileStore> {
    Ok(ProfileStore::open_default()?)
}

/// Prints progress and status events on stderr.
pub fn progress() -> futures_channel::mpsc::UnboundedSender<Event> {
    let (tx, mut rx) = futures_channel::mpsc::unbounded::<Event>();
    tokio::spawn(async move {
        use futures_util::StreamExt as _;
        while let Some(e) = rx.next().await {
            match e {
                Event::Phase(p) => eprintln!("lnc: {p}"),
                Event::Status(s) => eprintln!("lnc: status: {s}"),
            }
        }
    });
    tx
}

/// Loads profile `name` (asking for its password) and connects with it.
pub async fn connect_profile(
    name: &str,
    wait: u64,
    show_progress: bool,
) -> anyhow::Result<(lnc_client::Client, Credentials)> {
    let store = store()?;
    let sealed = store.load_sealed(name)?;
    let pw = password()?;
    let creds = sealed.open(pw.as_bytes())?;
    let options = ConnectOptions {
        wait: Duration::from_secs(wait),
        events: show_progress.then(progress),
        ..Default::default()
    };
    let client = lnc_client::native::connect(&creds, options).await?;
    Ok((client, creds))
}

/// Formats an expiry for humans.
pub fn expiry_text(creds: &Credentials) -> String {
    match creds.expiry() {
        None => "never".into(),
        Some(t) => t.to_rfc3339_nano().unwrap_or_else(|| t.secs().to_string()),
    }
}

/// `lnc connect`.
pub async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    let tls = if args.insecure {
        TlsMode::Insecure
    } else if let Some(ca) = &args.ca {
        TlsMode::CaPem(std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?)
    } else if args.skip_verify {
        TlsMode::SkipVerify
    } else {
        TlsMode::System
    };
    let transport = match args.transport {
        TransportArg::Grpc => Transport::Grpc,
        TransportArg::Ws => Transport::WebSocket,
    };
    let store = store()?;
    let phrase = read_line("Pairing phrase (10 words): ", false)?;
    // Checked before the password prompt, so a typo costs one line, not a password too.
    // The suggestions go to this terminal only: the person who typed the word sees them.
    if let Err(e) = lnc_core::pairing::PairingPhrase::parse(&phrase) {
        match e.hint() {
            Some(hint) => bail!("{e}: {hint}"),
            None => return Err(e.into()),
        }
    }
    let pw = password()?;
    let info = MailboxInfo::new(args.mailbox.clone(), transport, tls);
    let options = ConnectOptions {
        wait: Duration::from_secs(args.wait),
        events: Some(progress()),
        ..Default::default()
    };
    let (client, creds) = lnc_client::native::pair(info, &phrase, options).await?;
    store.save(&args.profile, &creds, pw.as_bytes())?;
    client.shutdown().await;
    eprintln!(
        "lnc: paired with node {}; session expires {}; saved profile {:?} in {}",
        hex_key(&creds),
        expiry_text(&creds),
        args.profile,
        store.dir().display()
    );
    Ok(())
}

/// The node's static key, hex.
pub fn hex_key(creds: &Credentials) -> String {
    creds
        .remote_static()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
