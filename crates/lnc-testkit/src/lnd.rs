//! A real LND network on regtest: two btcd and two LND (`alice`, the node behind
//! `lnc node`, and `bob`, her channel peer), with a funded, announced alice→bob channel.
//!
//! The binaries come from `interop/lnd/build.sh` (pinned lnd and btcd, built with lnd's
//! integration-test tags into `$LNC_GOBIN/lnd`). The network is started once per test
//! binary by the first test that asks ([`regtest`]) and shared by all of them; its daemons
//! run on a runtime of their own and end when the test binary exits (see
//! [`Daemon`](crate::process::Daemon)). Data lives in `/dev/shm` when it exists (LND's
//! database syncs are most of its start-up time on disk).
//!
//! Topology, and why: btcd has no `generatetoaddress` and its `--miningaddr` is fixed at
//! start, while alice's address exists only once alice runs. So a *backend* btcd (the one
//! both LNDs use; it mines later blocks to a fixed address) starts first, then the LNDs,
//! then a *miner* btcd that mines alice's coins to her address and relays them to the
//! backend.
//!
//! Every wait is on an event: a daemon's log line, an LND stream (`SubscribeState`,
//! `OpenChannel`), or, where LND and btcd expose state only by polling (chain sync,
//! mempool, graph policies), an RPC answer re-asked every 20 ms under a limit.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use lnd_api::lnrpc;
use lnd_api::lnrpc::lightning_client::LightningClient;
use lnd_api::lnrpc::state_client::StateClient;
use lnd_api::routerrpc::router_client::RouterClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::process::Daemon;

/// The limit for each step of the network's start (generous: a loaded 2-core CI).
const STEP: Duration = Duration::from_secs(90);
/// Where btcd mines blocks that pay nobody we know (BIP-173's regtest example address).
const BURN_ADDR: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
/// Regtest activates segwit (BIP 9) only at this height; LND's funding transactions are
/// rejected before it.
const SEGWIT_HEIGHT: u32 = 432;
/// The alice→bob channel: its capacity, and what alice pushes to bob so both can pay.
pub const CHANNEL_SAT: i64 = 10_000_000;
/// See [`CHANNEL_SAT`].
pub const PUSH_SAT: i64 = 4_000_000;

/// The binaries `interop/lnd/build.sh` builds: `$LNC_GOBIN/lnd/<name>`.
pub fn lnd_bin(name: &str) -> Result<PathBuf, String> {
    let p = crate::go::gobin_dir().join("lnd").join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} is missing: run `bash interop/lnd/build.sh` (builds the pinned lnd and btcd \
             into $LNC_GOBIN/lnd, default ~/.cache/lnc-rs/gobin/lnd)",
            p.display()
        ))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Re-asks `probe` every 20 ms until it answers `Some`, for state that LND and btcd expose
/// only by polling (chain sync, balances, mempool, graph); fails with `what` after 90 s.
pub async fn until<T, F, Fut>(what: &str, mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    tokio::time::timeout(STEP, async {
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .map_err(|_| format!("regtest: timed out after {STEP:?} waiting for {what}"))
}

/// One btcd.
pub struct Btcd {
    daemon: Daemon,
    dir: PathBuf,
    rpc: String,
    /// Its P2P address, if it listens.
    pub p2p: Option<String>,
}

impl Btcd {
    async fn start(
        name: &'static str,
        dir: PathBuf,
        listen: bool,
        connect: Option<&str>,
        mining_addr: &str,
    ) -> Result<Btcd, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let conf = dir.join("btcd.conf");
        std::fs::write(&conf, "").map_err(|e| e.to_string())?;
        let rpc = format!("127.0.0.1:{}", free_port());
        let p2p = listen.then(|| format!("127.0.0.1:{}", free_port()));
        let d = |s: &str| dir.join(s).display().to_string();
        let mut args = vec![
            "--regtest".to_owned(),
            format!("--configfile={}", conf.display()),
            format!("--datadir={}", d("data")),
            format!("--logdir={}", d("logs")),
            format!("--rpccert={}", d("rpc.cert")),
            format!("--rpckey={}", d("rpc.key")),
            "--rpcuser=lnc".to_owned(),
            "--rpcpass=lnc".to_owned(),
            format!("--rpclisten={rpc}"),
            "--txindex".to_owned(),
            "--rejectnonstd".to_owned(),
            "--nobanning".to_owned(),
            "--nostalldetect".to_owned(),
            "--trickleinterval=100ms".to_owned(),
            format!("--miningaddr={mining_addr}"),
        ];
        match &p2p {
            Some(a) => args.push(format!("--listen={a}")),
            None => args.push("--nolisten".to_owned()),
        }
        if let Some(c) = connect {
            args.push(format!("--connect={c}"));
        }
        let (daemon, mut rx) = Daemon::spawn(name, &lnd_bin("btcd")?, &args, &dir);
        daemon
            .wait_for(&mut rx, "RPC server listening", STEP)
            .await?;
        Ok(Btcd {
            daemon,
            dir,
            rpc,
            p2p,
        })
    }

    /// Runs `btcctl <args>` against this btcd; its stdout.
    pub async fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = tokio::process::Command::new(lnd_bin("btcctl")?)
            .arg("--regtest")
            .arg(format!(
                "--configfile={}",
                self.dir.join("btcd.conf").display()
            ))
            .args(["--rpcuser=lnc", "--rpcpass=lnc"])
            .arg(format!("--rpcserver={}", self.rpc))
            .arg(format!("--rpccert={}", self.dir.join("rpc.cert").display()))
            .args(args)
            .output();
        let out = tokio::time::timeout(STEP, out)
            .await
            .map_err(|_| format!("btcctl {args:?} hung"))?
            .map_err(|e| format!("btcctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "btcctl {args:?} on {}: {}",
                self.daemon.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Mines `n` blocks (to its `--miningaddr`).
    pub async fn mine(&self, n: u32) -> Result<(), String> {
        self.ctl(&["generate", &n.to_string()]).await.map(drop)
    }

    async fn height(&self) -> Option<u32> {
        self.ctl(&["getblockcount"]).await.ok()?.parse().ok()
    }
}

/// The `macaroon` metadata LND reads, on every call.
#[derive(Clone)]
pub struct MacaroonAuth(AsciiMetadataValue);

impl Interceptor for MacaroonAuth {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("macaroon", self.0.clone());
        Ok(r)
    }
}

/// A channel with a macaroon on every call.
pub type Authed = InterceptedService<Channel, MacaroonAuth>;

/// A gRPC connection to an LND: TLS pinned to its `tls.cert`, a macaroon on every call.
#[derive(Clone)]
pub struct LndRpc {
    channel: Channel,
    auth: MacaroonAuth,
}

impl LndRpc {
    /// Connects to `addr` trusting exactly the certificate in `tls_cert` (PEM), with
    /// `macaroon` (binary) on every call.
    pub async fn connect(addr: &str, tls_cert: &Path, macaroon: &[u8]) -> Result<LndRpc, String> {
        let pem = std::fs::read(tls_cert).map_err(|e| format!("{}: {e}", tls_cert.display()))?;
        let cfg = lnc_tunnel::native::tls_config(&lnc_tunnel::TlsMode::Pinned(pem), &[b"h2"])
            .map_err(|e| e.to_string())?
            .ok_or("no TLS config")?;
        let connector = tokio_rustls::TlsConnector::from(cfg);
        let target = addr.to_owned();
        let channel = Endpoint::from_shared(format!("https://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_with_connector(tower::service_fn(move |_| {
                let (connector, target) = (connector.clone(), target.clone());
                async move {
                    let tcp = tokio::net::TcpStream::connect(&target).await?;
                    tcp.set_nodelay(true)?;
                    let name = rustls::pki_types::ServerName::try_from("localhost")
                        .map_err(std::io::Error::other)?;
                    let tls = connector.connect(name, tcp).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(tls))
                }
            }))
            .await
            .map_err(|e| format!("connecting to LND at {addr}: {e:?}"))?;
        let mac = AsciiMetadataValue::try_from(hex::encode(macaroon)).map_err(|e| e.to_string())?;
        Ok(LndRpc {
            channel,
            auth: MacaroonAuth(mac),
        })
    }

    /// `lnrpc.Lightning`.
    pub fn lightning(&self) -> LightningClient<Authed> {
        LightningClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// `routerrpc.Router`.
    pub fn router(&self) -> RouterClient<Authed> {
        RouterClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// `lnrpc.State` (needs no macaroon).
    pub fn state(&self) -> StateClient<Channel> {
        StateClient::new(self.channel.clone())
    }

    /// The raw channel (for other services, e.g. by method name).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }
}

/// Adds the first invoice of a fresh `lnd` (LND or lnd-sim), directly: LND replays
/// invoices *after* an add index, so the ones a test counts
/// ([`invoices_after_first`]) start at index 2.
pub async fn add_first_invoice(lnd: &LndRpc) {
    lnd.lightning()
        .add_invoice(lnrpc::Invoice {
            memo: "zero".into(),
            ..Default::default()
        })
        .await
        .expect("LND's first invoice");
}

/// Every invoice `lnd` (LND or lnd-sim) holds after its first, in order: read directly
/// with a replay from add index 1, up to a sentinel invoice added last (so the read ends
/// on an event, not a timer). Tests add one invoice first, then count what their calls
/// added (a memo each) to see that none was applied twice.
pub async fn invoices_after_first(lnd: &LndRpc) -> Vec<lnrpc::Invoice> {
    use futures_util::StreamExt as _;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let sentinel = format!("sentinel-{}-{n}", std::process::id());
    let mut sub = lnd
        .lightning()
        .subscribe_invoices(lnrpc::InvoiceSubscription {
            add_index: 1,
            ..Default::default()
        })
        .await
        .expect("SubscribeInvoices")
        .into_inner();
    lnd.lightning()
        .add_invoice(lnrpc::Invoice {
            memo: sentinel.clone(),
            ..Default::default()
        })
        .await
        .expect("the sentinel invoice");
    let mut all = Vec::new();
    loop {
        let inv = tokio::time::timeout(STEP, sub.next())
            .await
            .expect("LND's invoice stream stalled")
            .expect("LND's invoice stream ended")
            .expect("an invoice");
        if inv.memo == sentinel {
            return all;
        }
        all.push(inv);
    }
}

/// One LND.
pub struct Lnd {
    daemon: Daemon,
    /// `alice` or `bob`.
    pub name: &'static str,
    /// Its `--lnddir`.
    pub dir: PathBuf,
    /// Its gRPC address.
    pub rpc_addr: String,
    /// Its P2P address.
    pub p2p_addr: String,
    /// Its node public key (hex), once started.
    pub pubkey: String,
}

impl Lnd {
    async fn start(name: &'static str, dir: PathBuf, backend: &Btcd) -> Result<Lnd, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let rpc_addr = format!("127.0.0.1:{}", free_port());
        let p2p_addr = format!("127.0.0.1:{}", free_port());
        let daemon = Self::launch(name, &dir, backend, &rpc_addr, &p2p_addr).await?;
        let lnd = Lnd {
            daemon,
            name,
            dir,
            rpc_addr,
            p2p_addr,
            pubkey: String::new(),
        };
        // The wallet is created (--noseedbackup) and the RPC server up; admin.macaroon is
        // written by then. (Its public key is read once it is synced: `synced_at`.)
        let rpc = LndRpc::connect(&lnd.rpc_addr, &lnd.tls_cert(), b"").await?;
        lnd.wait_state(&rpc, lnrpc::WalletState::RpcActive).await?;
        Ok(lnd)
    }

    /// `kill -9` of this LND, as in a crash (nothing flushed, no connection closed);
    /// returns once it is gone.
    pub async fn kill(&mut self) {
        self.daemon.kill_program().await;
    }

    /// Starts it again on its data dir and addresses (after [`Lnd::kill`]); with
    /// `--noseedbackup` its wallet unlocks itself. Returns once its server is active.
    pub async fn restart(&mut self, backend: &Btcd) -> Result<(), String> {
        self.daemon = Self::launch(
            self.name,
            &self.dir,
            backend,
            &self.rpc_addr,
            &self.p2p_addr,
        )
        .await?;
        let rpc = LndRpc::connect(&self.rpc_addr, &self.tls_cert(), b"").await?;
        self.wait_state(&rpc, lnrpc::WalletState::ServerActive)
            .await
    }

    /// Waits until its server is active (invoices, payments), not only its RPC.
    pub async fn server_active(&self) -> Result<(), String> {
        let rpc = LndRpc::connect(&self.rpc_addr, &self.tls_cert(), b"").await?;
        self.wait_state(&rpc, lnrpc::WalletState::ServerActive)
            .await
    }

    async fn launch(
        name: &'static str,
        dir: &Path,
        backend: &Btcd,
        rpc_addr: &str,
        p2p_addr: &str,
    ) -> Result<Daemon, String> {
        let args: Vec<String> = vec![
            format!("--lnddir={}", dir.display()),
            format!("--alias={name}"),
            "--norest".into(),
            "--noseedbackup".into(),
            "--nobootstrap".into(),
            "--bitcoin.regtest".into(),
            "--bitcoin.node=btcd".into(),
            format!("--btcd.rpchost={}", backend.rpc),
            "--btcd.rpcuser=lnc".into(),
            "--btcd.rpcpass=lnc".into(),
            format!("--btcd.rpccert={}", backend.dir.join("rpc.cert").display()),
            format!("--rpclisten={rpc_addr}"),
            format!("--listen={p2p_addr}"),
            format!("--externalip={p2p_addr}"),
            "--trickledelay=50".into(),
            "--bitcoin.defaultchanconfs=1".into(),
            "--bitcoin.defaultremotedelay=4".into(),
            "--accept-keysend".into(),
            "--gossip.sub-batch-delay=5ms".into(),
            "--caches.rpc-graph-cache-duration=100ms".into(),
            "--db.batch-commit-interval=10ms".into(),
        ];
        let (daemon, mut rx) = Daemon::spawn(name, &lnd_bin("lnd")?, &args, dir);
        daemon
            .wait_for(&mut rx, "RPC server listening on", STEP)
            .await?;
        Ok(daemon)
    }

    /// Waits on `SubscribeState` until the wallet is in `want` or later.
    async fn wait_state(&self, rpc: &LndRpc, want: lnrpc::WalletState) -> Result<(), String> {
        let fail =
            |e: tonic::Status| format!("{} SubscribeState: {e}\n{}", self.name, self.daemon.tail());
        tokio::time::timeout(STEP, async {
            let mut s = rpc
                .state()
                .subscribe_state(lnrpc::SubscribeStateRequest {})
                .await
                .map_err(fail)?
                .into_inner();
            loop {
                match s.message().await.map_err(fail)? {
                    // WAITING_TO_START (255) comes before the others despite its number.
                    Some(u)
                        if u.state >= want as i32
                            && u.state != lnrpc::WalletState::WaitingToStart as i32 =>
                    {
                        return Ok(());
                    }
                    Some(_) => {}
                    None => return Err(format!("{}: state stream ended", self.name)),
                }
            }
        })
        .await
        .map_err(|_| {
            format!(
                "{} not {want:?} within {STEP:?}:\n{}",
                self.name,
                self.daemon.tail()
            )
        })?
    }

    /// Its `tls.cert` (LND's self-signed certificate, its own CA).
    pub fn tls_cert(&self) -> PathBuf {
        self.dir.join("tls.cert")
    }

    /// Its `admin.macaroon`.
    pub fn admin_macaroon(&self) -> PathBuf {
        self.dir.join("data/chain/bitcoin/regtest/admin.macaroon")
    }

    /// A connection with `admin.macaroon`.
    pub async fn admin(&self) -> Result<LndRpc, String> {
        let mac =
            std::fs::read(self.admin_macaroon()).map_err(|e| format!("{}: {e}", self.name))?;
        LndRpc::connect(&self.rpc_addr, &self.tls_cert(), &mac).await
    }

    /// A connection with another macaroon (e.g. a session's, to see what LND says to it).
    pub async fn with_macaroon(&self, macaroon: &[u8]) -> Result<LndRpc, String> {
        LndRpc::connect(&self.rpc_addr, &self.tls_cert(), macaroon).await
    }

    /// Waits until it is synced to the chain at `height` or above; its identity key.
    async fn synced_at(&self, rpc: &LndRpc, height: u32) -> Result<String, String> {
        until(
            &format!("{} synced at height {height}", self.name),
            || async move {
                let i = rpc
                    .lightning()
                    .get_info(lnrpc::GetInfoRequest {})
                    .await
                    .ok()?
                    .into_inner();
                (i.synced_to_chain && i.block_height >= height).then_some(i.identity_pubkey)
            },
        )
        .await
    }

    /// The tail of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.daemon.tail()
    }
}

/// The network. See the module documentation.
pub struct Regtest {
    /// The LND behind `lnc node`: funded, with a channel to bob.
    pub alice: Lnd,
    /// Alice's channel peer (holds [`PUSH_SAT`] on his side).
    pub bob: Lnd,
    /// The btcd both LNDs use; [`Btcd::mine`] on it confirms what they broadcast.
    pub backend: Btcd,
    _miner: Btcd,
    /// The alice→bob channel's ID.
    pub chan_id: u64,
    /// From the first daemon's start to a channel usable both ways.
    pub started_in: Duration,
    /// The data directory (removed when the test binary exits, unless `LNC_KEEP_REGTEST`).
    pub root: PathBuf,
    _cleaner: tokio::process::ChildStdin,
}

/// The next update of an `OpenChannel` stream.
async fn next_update(
    s: &mut tonic::Streaming<lnrpc::OpenStatusUpdate>,
) -> Result<lnrpc::OpenStatusUpdate, String> {
    tokio::time::timeout(STEP, s.message())
        .await
        .map_err(|_| "OpenChannel: no update".to_owned())?
        .map_err(|e| format!("OpenChannel: {e}"))?
        .ok_or_else(|| "OpenChannel stream ended".to_owned())
}

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
static NETWORK: OnceLock<Result<Arc<Regtest>, String>> = OnceLock::new();

/// The shared network, started by the first caller (about 10 s), then returned at once.
/// Panics with what to do when it cannot start (e.g. the binaries are not built).
pub async fn regtest() -> Arc<Regtest> {
    let net = tokio::task::spawn_blocking(|| {
        NETWORK
            .get_or_init(|| {
                // The daemons' output pumps live on a runtime that outlives every test.
                let rt = RUNTIME.get_or_init(|| {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .thread_name("regtest")
                        .enable_all()
                        .build()
                        .expect("a runtime for the regtest daemons")
                });
                std::thread::scope(|s| {
                    s.spawn(|| rt.block_on(Regtest::start()).map(Arc::new))
                        .join()
                        .unwrap_or_else(|_| Err("regtest start panicked".into()))
                })
            })
            .clone()
    })
    .await
    .expect("regtest start");
    net.unwrap_or_else(|e| panic!("the regtest network did not start: {e}"))
}

fn data_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() && std::fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly())
    {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base.join(format!("lnc-regtest-{}-{nanos}", std::process::id()))
}

impl Regtest {
    /// One more LND on the network's chain backend, with no channel: for a test that must
    /// do to its LND what the shared alice and bob cannot suffer (the kill matrix kills
    /// it). `name` must be unique in the test binary.
    pub async fn spare(&self, name: &'static str) -> Result<Lnd, String> {
        let lnd = Lnd::start(name, self.root.join(name), &self.backend).await?;
        lnd.server_active().await?;
        Ok(lnd)
    }

    async fn start() -> Result<Regtest, String> {
        let t0 = Instant::now();
        let root = data_root();
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let cleaner = crate::process::remove_dir_on_exit(&root);
        let backend =
            Btcd::start("btcd-backend", root.join("backend"), true, None, BURN_ADDR).await?;
        let (alice, bob) = tokio::join!(
            Lnd::start("alice", root.join("alice"), &backend),
            Lnd::start("bob", root.join("bob"), &backend)
        );
        let (mut alice, mut bob) = (alice?, bob?);
        let (a, b) = (alice.admin().await?, bob.admin().await?);
        let (a, b) = (&a, &b);

        // Alice's coins: a miner that pays her, relaying to the backend.
        let addr = a
            .lightning()
            .new_address(lnrpc::NewAddressRequest {
                r#type: lnrpc::AddressType::WitnessPubkeyHash as i32,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("alice NewAddress: {e}"))?
            .into_inner()
            .address;
        let miner = Btcd::start(
            "btcd-miner",
            root.join("miner"),
            false,
            backend.p2p.as_deref(),
            &addr,
        )
        .await?;
        miner.mine(SEGWIT_HEIGHT).await?;
        let backend_ref = &backend;
        until("the backend at the miner's height", || async move {
            (backend_ref.height().await? >= SEGWIT_HEIGHT).then_some(())
        })
        .await?;
        // SERVER_ACTIVE (peer and channel RPCs work) comes only with a recent chain tip.
        alice
            .wait_state(a, lnrpc::WalletState::ServerActive)
            .await?;
        bob.wait_state(b, lnrpc::WalletState::ServerActive).await?;
        alice.pubkey = alice.synced_at(a, SEGWIT_HEIGHT).await?;
        bob.pubkey = bob.synced_at(b, SEGWIT_HEIGHT).await?;
        until("alice's confirmed coins", || async move {
            let w = a
                .lightning()
                .wallet_balance(lnrpc::WalletBalanceRequest::default())
                .await
                .ok()?;
            (w.into_inner().confirmed_balance > 2 * CHANNEL_SAT).then_some(())
        })
        .await?;

        // Peers, then the channel.
        a.lightning()
            .connect_peer(lnrpc::ConnectPeerRequest {
                addr: Some(lnrpc::LightningAddress {
                    pubkey: bob.pubkey.clone(),
                    host: bob.p2p_addr.clone(),
                }),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("alice ConnectPeer bob: {e}"))?;
        let alice_key = &alice.pubkey;
        until("bob to see alice as a peer", || async move {
            let p = b
                .lightning()
                .list_peers(lnrpc::ListPeersRequest::default())
                .await
                .ok()?;
            p.into_inner()
                .peers
                .iter()
                .any(|p| &p.pub_key == alice_key)
                .then_some(())
        })
        .await?;
        let bob_key = hex::decode(&bob.pubkey).map_err(|e| e.to_string())?;
        let mut open = a
            .lightning()
            .open_channel(lnrpc::OpenChannelRequest {
                node_pubkey: bob_key,
                local_funding_amount: CHANNEL_SAT,
                push_sat: PUSH_SAT,
                sat_per_vbyte: 2,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("alice OpenChannel: {e}"))?
            .into_inner();
        let pending = match next_update(&mut open).await?.update {
            Some(lnrpc::open_status_update::Update::ChanPending(p)) => p,
            other => return Err(format!("OpenChannel: expected chan_pending, got {other:?}")),
        };
        let mut txid = pending.txid.clone();
        txid.reverse();
        let txid = &hex::encode(txid);
        until(
            "the funding transaction in the backend's mempool",
            || async move {
                backend_ref
                    .ctl(&["getrawmempool"])
                    .await
                    .ok()?
                    .contains(txid.as_str())
                    .then_some(())
            },
        )
        .await?;
        // Six blocks: one confirms it, six make it announceable (both policies in the graph).
        backend.mine(6).await?;
        match next_update(&mut open).await?.update {
            Some(lnrpc::open_status_update::Update::ChanOpen(_)) => {}
            other => return Err(format!("OpenChannel: expected chan_open, got {other:?}")),
        }
        let mut chan_id = 0;
        for (who, rpc) in [(&alice, a), (&bob, b)] {
            chan_id = until(&format!("{}'s channel active", who.name), || async move {
                let l = rpc
                    .lightning()
                    .list_channels(lnrpc::ListChannelsRequest {
                        active_only: true,
                        ..Default::default()
                    })
                    .await
                    .ok()?;
                l.into_inner().channels.first().map(|c| c.chan_id)
            })
            .await?;
        }
        // Active is not enough to pay: until each side knows both policies, a payment fails
        // with INSUFFICIENT_BALANCE.
        for (who, rpc) in [(&alice, a), (&bob, b)] {
            until(
                &format!("{} to know both channel policies", who.name),
                || async move {
                    let c = rpc
                        .lightning()
                        .get_chan_info(lnrpc::ChanInfoRequest {
                            chan_id,
                            ..Default::default()
                        })
                        .await
                        .ok()?
                        .into_inner();
                    (c.node1_policy.is_some() && c.node2_policy.is_some()).then_some(())
                },
            )
            .await?;
        }
        Ok(Regtest {
            alice,
            bob,
            backend,
            _miner: miner,
            chan_id,
            started_in: t0.elapsed(),
            root,
            _cleaner: cleaner,
        })
    }
}
