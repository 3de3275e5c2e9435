//! End to end with the real binaries as processes: `lnc mailbox`, `lnc lnd-sim` (the LND
//! stand-in), `lnc node` and `lnc session …`; the app side is in-process library code
//! (lnc-tunnel's reconnect client and LND's typed stubs). Every wait is on an event (a line
//! on a child's output, a stream item, a status) bounded by a timeout; nothing sleeps.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use lnc_core::keys::SecretKey;
use lnc_core::pairing::{ConnectionState, HandshakeInputs, PairingPhrase, Role, mask_scalar};
use lnc_testkit::dirs::temp_dir;
use lnc_tunnel::native::{GrpcMailbox, RelayAddr, Tls};
use lnc_tunnel::rt::TokioRuntime;
use lnc_tunnel::{Client, ClientEvent, Mailbox, TunnelOptions};
use lnd_api::lnrpc;
use lnd_api::lnrpc::lightning_client::LightningClient;
use lnd_api::routerrpc::router_client::RouterClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::broadcast;

const T: Duration = Duration::from_secs(60);
const LNC: &str = env!("CARGO_BIN_EXE_lnc");

fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A child process whose stdout and stderr lines are broadcast (and echoed for failures).
struct Proc {
    child: Child,
    lines: broadcast::Sender<String>,
    name: &'static str,
}

impl Proc {
    fn spawn(name: &'static str, args: &[&str]) -> Proc {
        let mut child = Command::new(LNC)
            .args(args)
            .env("NO_COLOR", "1")
            .env("LNC_LOG", "info,lnc_node=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (lines, _) = broadcast::channel(4096);
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = lines.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(out).lines();
                while let Ok(Some(l)) = r.next_line().await {
                    let l = strip_ansi(&l);
                    eprintln!("[{name}] {l}");
                    let _ = tx.send(l);
                }
            });
        }
        Proc { child, lines, name }
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.lines.subscribe()
    }

    /// Sends SIGINT (graceful shutdown) and waits for the exit.
    async fn interrupt(mut self) {
        let pid = self.child.id().unwrap();
        let st = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let status = tokio::time::timeout(T, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{} exited with {status}", self.name);
    }
}

async fn wait_line(rx: &mut broadcast::Receiver<String>, pred: impl Fn(&str) -> bool) -> String {
    tokio::time::timeout(T, async {
        loop {
            match rx.recv().await {
                Ok(l) if pred(&l) => return l,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("process output ended"),
            }
        }
    })
    .await
    .expect("timed out waiting for a line")
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let i = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
    line[i..].split_whitespace().next().unwrap()
}

struct Env {
    dir: PathBuf,
    relay: String,
    lnd_addr: String,
    _mailbox: Proc,
    _lnd: Proc,
}

impl Env {
    async fn start(tag: &str) -> Env {
        let dir = temp_dir(tag);
        let mailbox = Proc::spawn(
            "mailbox",
            &[
                "mailbox",
                "--insecure",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "off",
                "--data-dir",
                dir.join("mailbox").to_str().unwrap(),
            ],
        );
        let mut rx = mailbox.subscribe();
        let lnd = Proc::spawn(
            "lnd-sim",
            &["lnd-sim", "--data-dir", dir.join("lnd").to_str().unwrap()],
        );
        let mut lrx = lnd.subscribe();
        let l = wait_line(&mut rx, |l| l.contains("mailbox listening")).await;
        let relay = field(&l, "addr=").to_owned();
        let l = wait_line(&mut lrx, |l| l.starts_with("lnd-sim listening on")).await;
        let lnd_addr = l.rsplit(' ').next().unwrap().to_owned();
        Env {
            dir,
            relay,
            lnd_addr,
            _mailbox: mailbox,
            _lnd: lnd,
        }
    }

    fn node_dir(&self) -> PathBuf {
        self.dir.join("node")
    }

    async fn node(&self) -> Proc {
        let lnd = self.dir.join("lnd");
        let p = Proc::spawn(
            "node",
            &[
                "node",
                "--lnd-addr",
                &self.lnd_addr,
                "--lnd-tls-cert",
                lnd.join("tls.cert").to_str().unwrap(),
                "--lnd-macaroon",
                lnd.join("admin.macaroon").to_str().unwrap(),
                "--data-dir",
                self.node_dir().to_str().unwrap(),
                "--mailbox",
                &self.relay,
                "--mailbox-tls",
                "insecure",
                "--admin-listen",
                "127.0.0.1:0",
                "--handshake-timeout-secs",
                "3",
            ],
        );
        let mut rx = p.subscribe();
        wait_line(&mut rx, |l| l.starts_with("lnc node ready")).await;
        p
    }

    /// Runs `lnc session <args> --json` and parses the output.
    async fn session(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let out = Command::new(LNC)
            .arg("session")
            .args(args)
            .args(["--json", "--data-dir", self.node_dir().to_str().unwrap()])
            .env("NO_COLOR", "1")
            .output()
            .await
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    }

    async fn add(&self, args: &[&str]) -> (String, String) {
        let mut a = vec!["add"];
        a.extend_from_slice(args);
        let v = self.session(&a).await.unwrap();
        (
            v["session"]["id"].as_str().unwrap().to_owned(),
            v["phrase"].as_str().unwrap().to_owned(),
        )
    }

    async fn state(&self, id: &str) -> serde_json::Value {
        self.session(&["show", id]).await.unwrap()["session"].clone()
    }

    fn relay_addr(&self) -> RelayAddr {
        RelayAddr {
            addr: self.relay.clone(),
            tls: Tls::Insecure,
        }
    }

    fn mailbox(&self) -> Arc<dyn Mailbox> {
        Arc::new(GrpcMailbox::new(self.relay_addr()).unwrap())
    }

    /// A direct (not tunnelled) LND client with the given macaroon.
    async fn direct_lnd(&self, macaroon: &[u8]) -> lnc_node::Lnd {
        let p = self.dir.join(format!(
            "mac-{}",
            hex::encode(&macaroon[macaroon.len() - 4..])
        ));
        std::fs::write(&p, macaroon).unwrap();
        lnc_node::Lnd::connect(&self.lnd_addr, &self.dir.join("lnd/tls.cert"), &p)
            .await
            .unwrap()
    }

    async fn direct_admin(&self) -> lnc_node::Lnd {
        let m = std::fs::read(self.dir.join("lnd/admin.macaroon")).unwrap();
        self.direct_lnd(&m).await
    }
}

/// The app: a reconnecting tunnel client, its events and its pairing state.
struct App {
    client: Client,
    events: futures_channel::mpsc::UnboundedReceiver<ClientEvent>,
    state: ConnectionState,
}

impl App {
    async fn connect(env: &Env, state: ConnectionState) -> Result<App, lnc_tunnel::TunnelError> {
        let (client, mut events) = Client::connect(
            &TokioRuntime::new(),
            env.mailbox(),
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

    async fn pair(env: &Env, phrase: &str) -> App {
        let entropy = PairingPhrase::parse(phrase).unwrap().into_entropy();
        let state = ConnectionState::new(Role::Client, SecretKey::generate(&mut rng()), entropy);
        tokio::time::timeout(T, Self::connect(env, state))
            .await
            .unwrap()
            .unwrap()
    }

    fn ln(&self) -> LightningClient<Client> {
        LightningClient::new(self.client.clone())
    }

    fn macaroon(&self) -> Vec<u8> {
        let auth = std::str::from_utf8(self.state.auth_data().unwrap()).unwrap();
        hex::decode(auth.strip_prefix("Macaroon: ").unwrap()).unwrap()
    }

    /// Waits for the next (re)connection and returns its handshake pattern.
    async fn next_connected(&mut self) -> lnc_core::noise::Pattern {
        tokio::time::timeout(T, async {
            loop {
                if let Some(ClientEvent::Connected { session, .. }) = self.events.next().await {
                    return session.pattern;
                }
            }
        })
        .await
        .unwrap()
    }
}

fn invoice(memo: &str) -> lnrpc::Invoice {
    lnrpc::Invoice {
        memo: memo.into(),
        value: 1000,
        ..Default::default()
    }
}

/// add → pair → calls per session type → node restart → KK reconnect → revoke ends a live
/// stream within 1 s and LND refuses the old macaroon → expiry → first-connection
/// deadline → a peer with the stream IDs but not the password burns the phrase.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_sessions_end_to_end() {
    let env = Env::start("sessions").await;
    let node = env.node().await;

    // Three sessions, three apps.
    let (ro_id, ro_phrase) = env.add(&["--type", "readonly", "--label", "ro"]).await;
    let (ad_id, ad_phrase) = env.add(&["--type", "admin", "--label", "admin"]).await;
    let (_inv_id, inv_phrase) = env.add(&["--type", "invoice", "--label", "pos"]).await;
    let list = env.session(&["list"]).await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "created" && s["paired"] == false)
    );
    // The phrase is shown again while unpaired.
    let again = env.session(&["show", &ro_id, "--phrase"]).await.unwrap();
    assert_eq!(again["phrase"].as_str().unwrap(), ro_phrase);

    let ro = App::pair(&env, &ro_phrase).await;
    let mut ad = App::pair(&env, &ad_phrase).await;
    let inv = App::pair(&env, &inv_phrase).await;

    // readonly: reads pass, AddInvoice is refused by LND with its own permission error.
    let info = ro.ln().get_info(lnrpc::GetInfoRequest {}).await.unwrap();
    assert_eq!(info.get_ref().alias, "lnd-sim");
    let e = ro.ln().add_invoice(invoice("ro")).await.unwrap_err();
    assert!(
        e.message().contains("permission denied"),
        "readonly AddInvoice: {e:?}"
    );
    // admin: allowed.
    ad.ln().add_invoice(invoice("admin")).await.unwrap();
    // invoice-only: AddInvoice yes, paying no (SendPaymentV2: SendPaymentSync is absent
    // from LND's current protos).
    let added = inv
        .ln()
        .add_invoice(invoice("pos"))
        .await
        .unwrap()
        .into_inner();
    let mut router = RouterClient::new(inv.client.clone());
    let pay = router
        .send_payment_v2(lnd_api::routerrpc::SendPaymentRequest {
            payment_request: added.payment_request.clone(),
            timeout_seconds: 10,
            ..Default::default()
        })
        .await;
    let e = match pay {
        Err(e) => e,
        Ok(r) => r.into_inner().message().await.unwrap_err(),
    };
    assert!(
        e.message().contains("permission denied"),
        "invoice SendPaymentV2: {e:?}"
    );

    // Paired: state "in use", phrase no longer shown, connected now.
    let s = env.state(&ad_id).await;
    assert_eq!(s["state"], "in use");
    assert_eq!(s["paired"], true);
    assert_eq!(s["connected"], true);
    assert!(env.session(&["show", &ad_id, "--phrase"]).await.is_err());

    // 50 concurrent calls over one session.
    let t0 = Instant::now();
    let calls = (0..50).map(|i| {
        let mut ln = ad.ln();
        async move {
            if i % 2 == 0 {
                ln.get_info(lnrpc::GetInfoRequest {}).await.map(|_| ())
            } else {
                ln.add_invoice(invoice(&format!("c{i}"))).await.map(|_| ())
            }
        }
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    eprintln!("50 concurrent calls in {:?}", t0.elapsed());

    // Node restart: apps reconnect by KK on their own.
    node.interrupt().await;
    let node = env.node().await;
    assert_eq!(ad.next_connected().await, lnc_core::noise::Pattern::Kk);
    ad.ln().get_info(lnrpc::GetInfoRequest {}).await.unwrap();
    drop(ro);
    drop(inv);

    // Revoke ends a live stream within 1 s; LND refuses the old macaroon.
    let mut sub = ad
        .ln()
        .subscribe_invoices(lnrpc::InvoiceSubscription::default())
        .await
        .unwrap()
        .into_inner();
    ad.ln().add_invoice(invoice("live")).await.unwrap();
    let first = tokio::time::timeout(T, sub.message())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_some());
    let t_revoke = Instant::now();
    let _ = env.session(&["revoke", &ad_id]).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(1), sub.message())
        .await
        .expect("the stream did not end within 1 s of the revoke");
    assert!(!matches!(end, Ok(Some(_))), "stream went on: {end:?}");
    eprintln!("stream ended {:?} after revoke", t_revoke.elapsed());
    let direct = env.direct_lnd(&ad.macaroon()).await;
    let e = direct
        .lightning()
        .get_info(direct.request(lnrpc::GetInfoRequest {}))
        .await
        .unwrap_err();
    eprintln!("old macaroon refused: {}", e.message());
    let s = env.state(&ad_id).await;
    assert_eq!(s["state"], "revoked");
    assert!(ad.ln().get_info(lnrpc::GetInfoRequest {}).await.is_err());
    ad.client.close();

    // Expiry while running: the session becomes "expired" and its app is cut off.
    let mut node_rx = node.subscribe();
    let (exp_id, exp_phrase) = env.add(&["--type", "readonly", "--expiry", "4s"]).await;
    let exp = App::pair(&env, &exp_phrase).await;
    exp.ln().get_info(lnrpc::GetInfoRequest {}).await.unwrap();
    let exp_short = exp_id.clone();
    wait_line(&mut node_rx, |l| {
        l.contains("session ended") && l.contains(&exp_short) && l.contains("expired")
    })
    .await;
    assert_eq!(env.state(&exp_id).await["state"], "expired");
    assert!(exp.ln().get_info(lnrpc::GetInfoRequest {}).await.is_err());
    let direct = env.direct_lnd(&exp.macaroon()).await;
    assert!(
        direct
            .lightning()
            .get_info(direct.request(lnrpc::GetInfoRequest {}))
            .await
            .is_err()
    );
    exp.client.close();

    // An unpaired session is revoked at its first-connection deadline.
    let (dl_id, _) = env
        .add(&["--type", "readonly", "--first-connection-timeout", "2s"])
        .await;
    let dl_short = dl_id.clone();
    wait_line(&mut node_rx, |l| {
        l.contains("session revoked") && l.contains(&dl_short)
    })
    .await;
    let s = env.state(&dl_id).await;
    assert_eq!(s["state"], "revoked");
    assert!(
        s["revoke_reason"]
            .as_str()
            .unwrap()
            .contains("first-connection deadline")
    );

    // The malicious relay: it knows the stream IDs (from the phrase's entropy hash) but not
    // the SPAKE2 password. One attempt burns the phrase.
    let (mal_id, mal_phrase) = env.add(&["--type", "admin"]).await;
    let entropy = PairingPhrase::parse(&mal_phrase).unwrap().into_entropy();
    let state = ConnectionState::new(Role::Client, SecretKey::generate(&mut rng()), entropy);
    let other = PairingPhrase::generate(&mut rng()).into_entropy();
    let wrong = HandshakeInputs::Xx {
        local_static: state.local_static().clone(),
        mask: mask_scalar(&other),
    };
    let rt = TokioRuntime::new();
    let gbn = lnc_tunnel::spawn_gbn(
        &rt,
        env.mailbox(),
        state.stream_ids(),
        true,
        lnc_core::gbn::Config::client(),
        lnc_tunnel::DriverOptions {
            create_boxes: false,
            send_after_recv: true,
        },
    )
    .unwrap();
    tokio::time::timeout(T, gbn.connected())
        .await
        .unwrap()
        .unwrap();
    let r = tokio::time::timeout(
        T,
        lnc_tunnel::stream::initiate(
            &gbn,
            &wrong,
            &lnc_core::noise::NoiseConfig::default(),
            &mut rng(),
        ),
    )
    .await
    .unwrap();
    assert!(r.is_err(), "the handshake with a wrong password succeeded");
    let mal_short = mal_id.clone();
    wait_line(&mut node_rx, |l| {
        l.contains("session revoked") && l.contains(&mal_short)
    })
    .await;
    let s = env.state(&mal_id).await;
    assert_eq!(s["state"], "revoked");
    assert_eq!(s["failed_attempts"], 1);
    assert!(s["revoke_reason"].as_str().unwrap().contains("burnt"));
    gbn.close();

    node.interrupt().await;
    let _ = std::fs::remove_dir_all(&env.dir);
}

/// A server-streaming call of 10,000 messages through the node loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_of_10000_messages() {
    const N: u64 = 10_000;
    let env = Env::start("stream").await;
    let node = env.node().await;
    let (_, phrase) = env.add(&["--type", "admin"]).await;
    let app = App::pair(&env, &phrase).await;

    // N + 1 invoices, added directly to LND, concurrently.
    let direct = env.direct_admin().await;
    let t0 = Instant::now();
    futures_util::stream::iter(0..=N)
        .map(|i| {
            let d = direct.clone();
            async move {
                d.lightning()
                    .add_invoice(d.request(invoice(&format!("i{i}"))))
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    eprintln!("{} invoices added in {:?}", N + 1, t0.elapsed());

    // Subscribing from add_index 1 replays invoices 2..=N+1 through the tunnel.
    let t0 = Instant::now();
    let mut sub = app
        .ln()
        .subscribe_invoices(lnrpc::InvoiceSubscription {
            add_index: 1,
            settle_index: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = vec![false; (N + 2) as usize];
    for _ in 0..N {
        let inv = tokio::time::timeout(T, sub.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let i = inv.add_index as usize;
        assert!((2..=(N as usize + 1)).contains(&i), "add_index {i}");
        assert!(!seen[i], "duplicate {i}");
        seen[i] = true;
    }
    assert_eq!(seen.iter().filter(|s| **s).count(), N as usize);
    eprintln!("{N} streamed messages in {:?}", t0.elapsed());
    drop(sub);
    app.client.close();
    node.interrupt().await;
    let _ = std::fs::remove_dir_all(&env.dir);
}

/// `lnc demo` runs every step and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_exits_zero() {
    let out = tokio::time::timeout(
        T,
        Command::new(LNC)
            .arg("demo")
            .env("NO_COLOR", "1")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "app paired",
        "GetInfo through the tunnel",
        "SubscribeInvoices saw the new invoice",
        "LookupInvoice by name with JSON",
        "reconnected with the stored keys (Noise KK",
        "all steps passed",
    ] {
        assert!(stdout.contains(step), "missing step {step:?}");
    }
}

/// Everything as processes, the app too: `lnc connect` pairs with the phrase from
/// `lnc session add`, then `lnc call` (another process, KK) runs calls through `lnc node` to
/// lnd-sim — invoice-only: AddInvoice passes, SendPaymentV2 is refused by LND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_client_processes_against_node() {
    let env = Env::start("cli").await;
    let node = env.node().await;
    let (id, phrase) = env.add(&["--type", "invoice"]).await;
    let home = env.dir.join("home");
    let run = |args: Vec<String>, stdin: String| {
        let home = home.clone();
        async move {
            let mut child = Command::new(LNC)
                .args(&args)
                .env("LNC_HOME", &home)
                .env("LNC_PASSWORD", "pw")
                .env("LNC_LOG", "warn")
                .env("NO_COLOR", "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut si = child.stdin.take().unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut si, stdin.as_bytes())
                .await
                .unwrap();
            drop(si);
            tokio::time::timeout(T, child.wait_with_output())
                .await
                .unwrap()
                .unwrap()
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let out = run(
        s(&[
            "connect",
            "--mailbox",
            &env.relay,
            "--insecure",
            "--profile",
            "pos",
        ]),
        format!("{phrase}\n"),
    )
    .await;
    assert!(
        out.status.success(),
        "lnc connect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.state(&id).await["paired"], true);

    let out = run(
        s(&[
            "call",
            "lnrpc.Lightning.AddInvoice",
            r#"{"memo":"cli","value":"1000"}"#,
            "--profile",
            "pos",
        ]),
        String::new(),
    )
    .await;
    assert!(
        out.status.success(),
        "AddInvoice: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let payreq = v["payment_request"].as_str().unwrap().to_owned();

    let out = run(
        s(&[
            "call",
            "routerrpc.Router.SendPaymentV2",
            &format!(r#"{{"payment_request":"{payreq}","timeout_seconds":10}}"#),
            "--profile",
            "pos",
        ]),
        String::new(),
    )
    .await;
    assert!(!out.status.success(), "an invoice-only session paid");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("permission denied"), "{err}");
    node.interrupt().await;
    let _ = std::fs::remove_dir_all(&env.dir);
}
