//! The whole product as a user runs it: `lnc mailbox` and `lnc node` as processes, the
//! `lnc session` CLI, an LND behind the node (lnd-sim, or a real one from [`crate::lnd`]),
//! and an in-process app ([`App`]: lnc-tunnel's reconnecting client and LND's typed stubs).
//!
//! The `lnc` binary is the caller's (`env!("CARGO_BIN_EXE_lnc")` exists only in the `lnc`
//! crate's tests), so it is passed in.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use futures_util::StreamExt as _;
use lnc_core::keys::SecretKey;
use lnc_core::pairing::{ConnectionState, PairingPhrase, Role};
use lnc_tunnel::TlsMode;
use lnc_tunnel::native::{GrpcMailbox, RelayAddr};
use lnc_tunnel::rt::TokioRuntime;
use lnc_tunnel::{Client, ClientEvent, Mailbox, TunnelOptions};
use lnd_api::lnrpc::lightning_client::LightningClient;
use lnd_api::routerrpc::router_client::RouterClient;
use tokio::process::Command;

use crate::T;
use crate::dirs::temp_dir;
use crate::lnd::LndRpc;
use crate::process::{Proc, wait_line, word_after};
use crate::redis::RedisServer;

/// The randomness apps use for their keys.
pub fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// An LND the node talks to: its gRPC address, `tls.cert` and `admin.macaroon`.
#[derive(Clone, Debug)]
pub struct LndTarget {
    /// `host:port`.
    pub addr: String,
    /// Its TLS certificate (PEM).
    pub tls_cert: PathBuf,
    /// Its admin macaroon (binary).
    pub admin_macaroon: PathBuf,
}

impl LndTarget {
    /// A regtest LND of [`crate::lnd`] as the node's target.
    pub fn of(lnd: &crate::lnd::Lnd) -> Self {
        LndTarget {
            addr: lnd.rpc_addr.clone(),
            tls_cert: lnd.tls_cert(),
            admin_macaroon: lnd.admin_macaroon(),
        }
    }
}

/// A relay (`lnc mailbox`, plaintext on loopback) and an LND, ready for `lnc node`.
pub struct Stack {
    /// The `lnc` binary.
    pub lnc: &'static str,
    /// The test's directory (mailbox, node, CLI homes).
    pub dir: PathBuf,
    /// The relay's `host:port`.
    pub relay: String,
    /// The LND behind the node.
    pub lnd: LndTarget,
    mailbox: Proc,
    lnd_sim: Option<Proc>,
    /// The relay's Redis, for stacks on the Redis backend.
    redis: Option<RedisServer>,
    /// The running node's metrics listener (`host:port`), once [`Stack::node`] started it.
    node_metrics: std::sync::Mutex<Option<String>>,
}

impl Stack {
    fn mailbox(lnc: &'static str, dir: &std::path::Path) -> Proc {
        Self::mailbox_on(lnc, dir, "127.0.0.1:0", None)
    }

    fn mailbox_on(
        lnc: &'static str,
        dir: &std::path::Path,
        listen: &str,
        redis: Option<&RedisServer>,
    ) -> Proc {
        let data_dir = dir.join("mailbox");
        let mut args = vec![
            "mailbox",
            "--insecure",
            "--listen",
            listen,
            "--metrics-listen",
            "off",
            "--data-dir",
            data_dir.to_str().expect("utf-8 path"),
        ];
        let url = redis.map(RedisServer::url);
        if let Some(url) = &url {
            args.extend(["--redis", url]);
        }
        Proc::spawn("mailbox", lnc, &args)
    }

    /// A relay and `lnc lnd-sim`.
    pub async fn with_lnd_sim(lnc: &'static str, tag: &str) -> Stack {
        Self::with_lnd_sim_and(lnc, tag, None).await
    }

    /// A relay on the Redis backend (its own redis-server) and `lnc lnd-sim`.
    pub async fn with_lnd_sim_on_redis(lnc: &'static str, tag: &str) -> Stack {
        Self::with_lnd_sim_and(lnc, tag, Some(RedisServer::start().await)).await
    }

    async fn with_lnd_sim_and(lnc: &'static str, tag: &str, redis: Option<RedisServer>) -> Stack {
        let dir = temp_dir(tag);
        let mut mailbox = Self::mailbox_on(lnc, &dir, "127.0.0.1:0", redis.as_ref());
        let mut rx = mailbox.lines_from_start();
        let lnd_dir = dir.join("lnd");
        let mut sim = Proc::spawn(
            "lnd-sim",
            lnc,
            &[
                "lnd-sim",
                "--data-dir",
                lnd_dir.to_str().expect("utf-8 path"),
            ],
        );
        let mut lrx = sim.lines_from_start();
        let l = wait_line(&mut rx, |l| l.contains("mailbox listening")).await;
        let relay = word_after(&l, "addr=").to_owned();
        let l = wait_line(&mut lrx, |l| l.starts_with("lnd-sim listening on")).await;
        let addr = l.rsplit(' ').next().unwrap_or_default().to_owned();
        Stack {
            lnc,
            relay,
            lnd: LndTarget {
                addr,
                tls_cert: lnd_dir.join("tls.cert"),
                admin_macaroon: lnd_dir.join("admin.macaroon"),
            },
            dir,
            mailbox,
            lnd_sim: Some(sim),
            redis,
            node_metrics: Default::default(),
        }
    }

    /// A relay in front of a running LND (e.g. the regtest network's alice).
    pub async fn with_lnd(lnc: &'static str, tag: &str, lnd: LndTarget) -> Stack {
        let dir = temp_dir(tag);
        let mut mailbox = Self::mailbox(lnc, &dir);
        let mut rx = mailbox.lines_from_start();
        let l = wait_line(&mut rx, |l| l.contains("mailbox listening")).await;
        Stack {
            lnc,
            relay: word_after(&l, "addr=").to_owned(),
            lnd,
            dir,
            mailbox,
            lnd_sim: None,
            redis: None,
            node_metrics: Default::default(),
        }
    }

    /// `kill -9` of the relay (a crash: nothing is flushed, no stream is closed).
    pub async fn kill_relay(&mut self) {
        self.mailbox.kill().await;
    }

    /// Starts the relay again on its address and data dir (after [`Stack::kill_relay`]);
    /// returns once it listens.
    pub async fn restart_relay(&mut self) {
        self.mailbox = Self::mailbox_on(self.lnc, &self.dir, &self.relay, self.redis.as_ref());
        let mut rx = self.mailbox.lines_from_start();
        wait_line(&mut rx, |l| l.contains("mailbox listening")).await;
    }

    /// `kill -9` of the relay's redis-server and a new one on its port, empty (it keeps
    /// nothing on disk), as after a crash (stacks made by
    /// [`Stack::with_lnd_sim_on_redis`]).
    pub async fn restart_redis(&mut self) {
        self.redis
            .as_mut()
            .expect("a stack on Redis")
            .restart()
            .await;
    }

    /// `kill -9` of lnd-sim (stacks made by [`Stack::with_lnd_sim`]).
    pub async fn kill_lnd_sim(&mut self) {
        self.lnd_sim
            .as_mut()
            .expect("a stack with lnd-sim")
            .kill()
            .await;
    }

    /// Starts lnd-sim again on its address and data dir (its identity and macaroon root
    /// keys survive); returns once it listens.
    pub async fn restart_lnd_sim(&mut self) {
        let lnd_dir = self.dir.join("lnd");
        let mut sim = Proc::spawn(
            "lnd-sim",
            self.lnc,
            &[
                "lnd-sim",
                "--listen",
                &self.lnd.addr,
                "--data-dir",
                lnd_dir.to_str().expect("utf-8 path"),
            ],
        );
        let mut rx = sim.lines_from_start();
        wait_line(&mut rx, |l| l.starts_with("lnd-sim listening on")).await;
        self.lnd_sim = Some(sim);
    }

    /// `lnc node`'s data dir.
    pub fn node_dir(&self) -> PathBuf {
        self.dir.join("node")
    }

    /// Starts `lnc node` on the relay and LND; returns once it is ready.
    pub async fn node(&self) -> Proc {
        self.node_with(&[]).await
    }

    /// [`node`](Self::node) with extra flags (e.g. `--upstream`).
    pub async fn node_with(&self, extra: &[&str]) -> Proc {
        let node_dir = self.node_dir();
        let mut args = vec![
            "node",
            "--lnd-addr",
            &self.lnd.addr,
            "--lnd-tls-cert",
            self.lnd.tls_cert.to_str().expect("utf-8 path"),
            "--lnd-macaroon",
            self.lnd.admin_macaroon.to_str().expect("utf-8 path"),
            "--data-dir",
            node_dir.to_str().expect("utf-8 path"),
            "--mailbox",
            &self.relay,
            "--mailbox-tls",
            "insecure",
            "--admin-listen",
            "127.0.0.1:0",
            "--handshake-timeout-secs",
            "3",
            "--metrics-listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut p = Proc::spawn("node", self.lnc, &args);
        let mut rx = p.lines_from_start();
        let l = wait_line(&mut rx, |l| l.starts_with("lnc node metrics:")).await;
        let addr = l
            .trim()
            .trim_start_matches("lnc node metrics: http://")
            .trim_end_matches("/metrics");
        *self.node_metrics.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr.to_owned());
        wait_line(&mut rx, |l| l.starts_with("lnc node ready")).await;
        p
    }

    /// GETs `path` (e.g. `/metrics`, `/healthz`) from the running node's metrics listener:
    /// the status line and the body.
    pub async fn node_ops(&self, path: &str) -> String {
        let addr = self
            .node_metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .expect("a node started with Stack::node");
        crate::http_get(addr, path, "").await
    }

    /// Runs `lnc session <args> --json` and parses the output; `Err` is its stderr.
    pub async fn session(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let out = Command::new(self.lnc)
            .arg("session")
            .args(args)
            .args([
                "--json",
                "--data-dir",
                self.node_dir().to_str().expect("utf-8 path"),
            ])
            .env("NO_COLOR", "1")
            .output()
            .await
            .expect("lnc session runs");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(serde_json::from_slice(&out.stdout).expect("lnc session --json prints JSON"))
    }

    /// `lnc session add <args>`: the new session's ID and phrase.
    pub async fn add(&self, args: &[&str]) -> (String, String) {
        let mut a = vec!["add"];
        a.extend_from_slice(args);
        let v = self.session(&a).await.expect("lnc session add");
        (
            v["session"]["id"].as_str().expect("id").to_owned(),
            v["phrase"].as_str().expect("phrase").to_owned(),
        )
    }

    /// `lnc session show <id>`.
    pub async fn state(&self, id: &str) -> serde_json::Value {
        self.session(&["show", id]).await.expect("lnc session show")["session"].clone()
    }

    /// The relay, as apps reach it.
    pub fn relay_addr(&self) -> RelayAddr {
        RelayAddr {
            addr: self.relay.clone(),
            tls: TlsMode::Insecure,
        }
    }

    /// A HashMail gRPC mailbox on the relay.
    pub fn mailbox_client(&self) -> Arc<dyn Mailbox> {
        Arc::new(GrpcMailbox::new(self.relay_addr()).expect("mailbox client"))
    }

    /// A direct (not tunnelled) LND connection with `macaroon`: what LND itself says to it.
    pub async fn direct_lnd(&self, macaroon: &[u8]) -> LndRpc {
        LndRpc::connect(&self.lnd.addr, &self.lnd.tls_cert, macaroon)
            .await
            .expect("a direct LND connection")
    }

    /// [`direct_lnd`](Self::direct_lnd) with the admin macaroon.
    pub async fn direct_admin(&self) -> LndRpc {
        let m = std::fs::read(&self.lnd.admin_macaroon).expect("admin.macaroon");
        self.direct_lnd(&m).await
    }

    /// Starts the `lnc` CLI as [`Stack::cli`] does, without stdin, for a command that runs
    /// on (e.g. `lnc call` of a stream): its output lines are events.
    pub fn cli_proc(&self, args: &[&str]) -> Proc {
        let home = self.dir.join("home");
        Proc::spawn_env(
            "cli",
            self.lnc,
            args,
            &[
                ("LNC_HOME", home.as_os_str()),
                ("LNC_PASSWORD", "pw".as_ref()),
                ("LNC_LOG", "warn".as_ref()),
            ],
        )
    }

    /// Runs the `lnc` CLI with `args` and `stdin`, its home in the test dir and password
    /// `pw` (a CLI user's process, e.g. `lnc connect` / `lnc call`).
    pub async fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let mut child = Command::new(self.lnc)
            .args(args)
            .env("LNC_HOME", self.dir.join("home"))
            .env("LNC_PASSWORD", "pw")
            .env("LNC_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("lnc runs");
        let mut si = child.stdin.take().expect("piped");
        tokio::io::AsyncWriteExt::write_all(&mut si, stdin.as_bytes())
            .await
            .expect("stdin");
        drop(si);
        tokio::time::timeout(T, child.wait_with_output())
            .await
            .expect("lnc did not exit")
            .expect("wait")
    }
}

impl Stack {
    /// `lnc connect` with `phrase` (on stdin) to this stack's relay, saving profile
    /// `profile` (`None`: the default); panics with the CLI's stderr if it fails.
    pub async fn cli_pair(&self, phrase: &str, profile: Option<&str>) {
        let mut args = vec!["connect", "--mailbox", &self.relay, "--insecure"];
        if let Some(p) = profile {
            args.extend_from_slice(&["--profile", p]);
        }
        let out = self.cli(&args, &format!("{phrase}\n")).await;
        assert!(
            out.status.success(),
            "lnc connect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The CLI user's path, every part a process: `lnc session add --type invoice`, then
    /// `lnc connect` pairs with the phrase (a profile sealed with a password), then
    /// `lnc call` (new processes, KK) makes an invoice and is refused a payment by LND.
    pub async fn invoice_session_via_cli(&self) {
        let node = self.node().await;
        let (id, phrase) = self.add(&["--type", "invoice"]).await;
        self.cli_pair(&phrase, Some("pos")).await;
        assert_eq!(self.state(&id).await["paired"], true);

        let out = self
            .cli(
                &[
                    "call",
                    "lnrpc.Lightning.AddInvoice",
                    r#"{"memo":"cli","value":"1000"}"#,
                    "--profile",
                    "pos",
                ],
                "",
            )
            .await;
        assert!(
            out.status.success(),
            "AddInvoice: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let payreq = v["payment_request"].as_str().expect("JSON").to_owned();

        let out = self
            .cli(
                &[
                    "call",
                    "routerrpc.Router.SendPaymentV2",
                    &format!(r#"{{"payment_request":"{payreq}","timeout_seconds":10}}"#),
                    "--profile",
                    "pos",
                ],
                "",
            )
            .await;
        assert!(!out.status.success(), "an invoice-only session paid");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("permission denied"), "{err}");
        node.interrupt().await;
    }
}

/// The app: a reconnecting tunnel client, its events and its pairing state.
pub struct App {
    /// The tunnel (a gRPC channel for LND's stubs).
    pub client: Client,
    events: futures_channel::mpsc::UnboundedReceiver<ClientEvent>,
    /// Its connection state after the first handshake (keys, the node's auth data).
    pub state: ConnectionState,
}

impl App {
    /// Connects with `state` (XX when it holds no remote key yet, else KK).
    pub async fn connect(
        stack: &Stack,
        state: ConnectionState,
    ) -> Result<App, lnc_tunnel::TunnelError> {
        let (client, mut events) = Client::connect(
            &TokioRuntime::new(),
            stack.mailbox_client(),
            state,
            TunnelOptions::default(),
            rng(),
        )
        .await?;
        let Some(ClientEvent::Connected { state, .. }) = events.next().await else {
            panic!("no Connected event")
        };
        Ok(App {
            client,
            events,
            state: *state,
        })
    }

    /// Pairs with `phrase`.
    pub async fn pair(stack: &Stack, phrase: &str) -> App {
        let entropy = PairingPhrase::parse(phrase)
            .expect("a phrase")
            .into_entropy();
        let state = ConnectionState::new(Role::Client, SecretKey::generate(&mut rng()), entropy);
        tokio::time::timeout(T, Self::connect(stack, state))
            .await
            .expect("pairing timed out")
            .expect("pairing failed")
    }

    /// `lnrpc.Lightning` through the tunnel.
    pub fn ln(&self) -> LightningClient<Client> {
        LightningClient::new(self.client.clone())
    }

    /// `routerrpc.Router` through the tunnel.
    pub fn router(&self) -> RouterClient<Client> {
        RouterClient::new(self.client.clone())
    }

    /// The session macaroon the node handed over (binary).
    pub fn macaroon(&self) -> Vec<u8> {
        let auth = std::str::from_utf8(self.state.auth_data().expect("auth data")).expect("utf-8");
        hex::decode(auth.strip_prefix("Macaroon: ").expect("a macaroon")).expect("hex")
    }

    /// Waits for the next (re)connection and returns its handshake pattern.
    pub async fn next_connected(&mut self) -> lnc_core::noise::Pattern {
        tokio::time::timeout(T, async {
            loop {
                match self.events.next().await {
                    Some(ClientEvent::Connected { session, .. }) => return session.pattern,
                    Some(_) => {}
                    None => panic!("the client's events ended"),
                }
            }
        })
        .await
        .expect("no reconnection")
    }
}
