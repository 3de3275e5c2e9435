//! The node daemon: one tunnel listener per live session, the gRPC proxy behind each, the
//! session lifecycle (pairing, burnt phrases, first-connection deadline, expiry,
//! revocation) and the admin API (spec mailbox-and-node.md parts C–E).
//!
//! Each live session has a supervisor task that owns its [`lnc_tunnel::Listener`] and
//! reacts to its events: the first successful XX handshake stores the app's static key
//! (the session moves to KK and new stream IDs), a failed authentication burns the phrase,
//! a pairing that stalls after act 2 counts towards a limit. Timers for the expiry and the
//! first-connection deadline live in the same task, so ending a session is one place.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use getrandom::SysRng;
use lnc_core::pairing::{ConnectionState, MailboxStreams, Role, StreamId};
use lnc_tunnel::TlsMode;
use lnc_tunnel::native::{GrpcMailbox, RelayAddr};
use lnc_tunnel::rt::TokioRuntime;
use lnc_tunnel::{Listener, ListenerEvent, Mailbox, PairingAttemptFailure, TunnelOptions, listen};
use rand_core::UnwrapErr;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::create::{CreatedSession, NewSession, SessionError, create_session};
use crate::lnd::{Lnd, LndError};
use crate::metrics::NodeMetrics;
use crate::proxy::{Gate, Proxy, UpstreamConfig, Upstreams};
use crate::session::{RevokeReason, Session, SessionId, SessionState};
use crate::spend::audit::AuditSink;
use crate::spend::store::DEFAULT_AUDIT_ENTRIES;
use crate::spend::{Budget, Limits, Meter, SessionPolicy};
use crate::store::{SessionStore, StoreError};

/// Default time a handshake may take once the app's GBN connection is up.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of pairing handshakes that may stall after act 2 before the phrase is
/// burnt (a flaky network should not burn a session at once; a guesser gets few tries).
pub const DEFAULT_MAX_STALLED_ATTEMPTS: u32 = 3;
/// Longest wait, when creating a session, for its mailboxes to exist on the relay before
/// the phrase is handed out; past it the phrase is handed out anyway and the listener
/// creates the boxes once it reaches the relay.
const MAILBOX_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Sessions sharing one HTTP/2 connection to a mailbox (each listener holds a receive
/// stream open; relays limit concurrent streams per connection).
const SESSIONS_PER_MAILBOX_CONNECTION: usize = 64;

/// The default mailbox new sessions use.
#[derive(Clone, Debug)]
pub struct MailboxConfig {
    /// `host:port`.
    pub addr: String,
    /// TLS mode.
    pub tls: TlsMode,
    /// Bearer token for relays that require one to create mailboxes.
    pub creation_token: Option<String>,
}

/// Everything `lnc node` needs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// LND's gRPC `host:port`.
    pub lnd_addr: String,
    /// LND's `tls.cert`.
    pub lnd_tls_cert: PathBuf,
    /// A macaroon allowed to bake and delete macaroons (LND's `admin.macaroon`).
    pub lnd_macaroon: PathBuf,
    /// Session store, node secret and admin token.
    pub data_dir: PathBuf,
    /// Default mailbox for new sessions.
    pub mailbox: MailboxConfig,
    /// Other daemons by service prefix.
    pub upstreams: Vec<UpstreamConfig>,
    /// Admin API address; must be loopback (it is never served through a tunnel).
    pub admin_listen: SocketAddr,
    /// Where [`crate::ops`] serves `/metrics` and `/healthz`; `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Longest handshake once the app's GBN connection is up.
    pub handshake_timeout: Duration,
    /// Pairing handshakes that may stall after act 2 before the phrase is burnt.
    pub max_stalled_attempts: u32,
    /// Default time an unpaired session waits for its first client.
    pub first_connection_timeout: Duration,
    /// What the node takes the time from: expiry, deadlines, timestamps.
    pub clock: Clock,
    /// Audit log entries kept per session (older ones are deleted).
    pub audit_entries: u64,
}

impl NodeConfig {
    /// A config with the defaults for everything but LND and the mailbox.
    pub fn new(
        lnd_addr: impl Into<String>,
        lnd_tls_cert: PathBuf,
        lnd_macaroon: PathBuf,
        data_dir: PathBuf,
        mailbox: MailboxConfig,
    ) -> Self {
        NodeConfig {
            lnd_addr: lnd_addr.into(),
            lnd_tls_cert,
            lnd_macaroon,
            data_dir,
            mailbox,
            upstreams: Vec::new(),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_stalled_attempts: DEFAULT_MAX_STALLED_ATTEMPTS,
            first_connection_timeout: crate::session::DEFAULT_FIRST_CONNECTION_TIMEOUT,
            clock: Clock::system(),
            audit_entries: DEFAULT_AUDIT_ENTRIES,
        }
    }
}

/// Why the node could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// LND (or an upstream daemon) failed.
    #[error(transparent)]
    Lnd(#[from] LndError),
    /// Creating or revoking a session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A setting is invalid.
    #[error("lnc node: {0}")]
    Config(String),
    /// The admin API could not start.
    #[error("lnc node: admin API: {0}")]
    Admin(String),
}

/// What happened to a session (for operators' tooling and tests; also logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// An app paired: its static key is stored, later connections use KK.
    Paired(SessionId),
    /// An app connected (XX or KK).
    Connected(SessionId),
    /// The app's connection ended.
    Disconnected(SessionId),
    /// A pairing attempt failed; `attempts` counted so far.
    AttemptFailed {
        /// The session.
        id: SessionId,
        /// How it failed.
        kind: PairingAttemptFailure,
        /// Failed attempts counted on this session.
        attempts: u32,
    },
    /// The session reached a terminal state; its listener is gone.
    Ended {
        /// The session.
        id: SessionId,
        /// `Revoked { reason }` or `Expired`.
        state: SessionState,
    },
}

struct Live {
    gate: Arc<Gate>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Shared mailbox connections of one relay address, with the sessions each carries.
type MailboxPool = Vec<(Arc<dyn Mailbox>, usize)>;

struct Inner {
    config: NodeConfig,
    store: Arc<SessionStore>,
    audit: AuditSink,
    /// Each served session's limits and budget, kept across its listener's restarts.
    meters: Mutex<HashMap<SessionId, Arc<Meter>>>,
    lnd: Lnd,
    upstreams: Upstreams,
    live: Mutex<HashMap<SessionId, Live>>,
    mailboxes: Mutex<HashMap<String, MailboxPool>>,
    rt: TokioRuntime,
    events: tokio::sync::broadcast::Sender<NodeEvent>,
    metrics: Arc<NodeMetrics>,
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("data_dir", &self.inner.config.data_dir)
            .finish_non_exhaustive()
    }
}

fn rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

fn connection_state(s: &Session) -> ConnectionState {
    ConnectionState::new(Role::Server, s.local_key().clone(), s.entropy().clone())
        .with_remote_static(s.remote_public_key)
        .with_auth_data(s.auth_data().as_bytes().to_vec())
}

impl Node {
    /// Connects to LND and the upstreams, opens the store in the data dir and resumes
    /// listening for every live session (paired ones accept KK reconnects).
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        if !config.admin_listen.ip().is_loopback() {
            return Err(NodeError::Config(format!(
                "the admin API must listen on a loopback address, not {}",
                config.admin_listen
            )));
        }
        let store = Arc::new(SessionStore::open(&config.data_dir)?);
        let audit = AuditSink::start(store.clone(), config.audit_entries);
        let lnd =
            Lnd::connect(&config.lnd_addr, &config.lnd_tls_cert, &config.lnd_macaroon).await?;
        let upstreams = Upstreams::connect(&config.upstreams).await?;
        let node = Node {
            inner: Arc::new(Inner {
                config,
                store,
                audit,
                meters: Mutex::new(HashMap::new()),
                lnd,
                upstreams,
                live: Mutex::new(HashMap::new()),
                mailboxes: Mutex::new(HashMap::new()),
                rt: TokioRuntime::new(),
                events: tokio::sync::broadcast::channel(1024).0,
                metrics: Arc::new(NodeMetrics::default()),
            }),
        };
        node.sweep().await;
        let sessions = node.inner.store.list()?;
        let now = node.clock().now();
        let mut resumed = 0usize;
        for s in sessions.iter().filter(|s| s.is_active_at(now)) {
            let _listening = node.serve(s)?;
            resumed += 1;
            // Payments in flight when the node stopped: LND knows how they ended.
            let meter = node.meter(s.id)?;
            for (hash, method) in meter.open_reservations().await {
                tracing::info!(session = %s.id, "reconciling a payment that was in flight at the last stop");
                meter.reconcile(hash, method);
            }
        }
        tracing::info!(sessions = resumed, "lnc node: serving live sessions");
        Ok(node)
    }

    /// Session events from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    fn emit(&self, ev: NodeEvent) {
        let _ = self.inner.events.send(ev);
    }

    /// The session store.
    pub fn store(&self) -> &SessionStore {
        &self.inner.store
    }

    /// The session store, shareable with blocking tasks.
    pub fn store_handle(&self) -> Arc<SessionStore> {
        self.inner.store.clone()
    }

    /// The LND connection.
    pub fn lnd(&self) -> &Lnd {
        &self.inner.lnd
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// Ends sessions past their expiry or first-connection deadline (store, LND root key).
    /// Run at start, before any listener; running sessions have their own timers.
    async fn sweep(&self) {
        match self.inner.store.sweep(self.clock().now()) {
            Ok(ended) => {
                for s in ended {
                    self.ended(&s).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "sweeping sessions failed"),
        }
    }

    /// What follows a session's entering a terminal state in the store, in one place for
    /// every way there (revoked through the node, expiry, first-connection deadline, a burnt
    /// phrase, the sweep at start): LND deletes the macaroon's root key, so the macaroon is
    /// dead even if a copy survives; the end is logged and announced.
    async fn ended(&self, s: &Session) {
        if let SessionState::Revoked { reason } = &s.state
            && *reason != RevokeReason::User
        {
            tracing::warn!(session = %s.id, reason = %reason, "session revoked");
        }
        if let Err(e) = self
            .inner
            .lnd
            .delete_macaroon_id(s.macaroon_root_key_id)
            .await
        {
            tracing::warn!(session = %s.id, error = %e, "LND did not delete the session's root key; revoke the session again once LND is reachable");
        }
        tracing::info!(session = %s.id, state = s.state.name(), "session ended");
        self.emit(NodeEvent::Ended {
            id: s.id,
            state: s.state.clone(),
        });
    }

    /// Creates a session (macaroon baked by LND) and starts listening for its app.
    pub async fn create_session(
        &self,
        mut params: NewSession,
    ) -> Result<CreatedSession, NodeError> {
        if params.mailbox_addr.is_empty() {
            params.mailbox_addr = self.inner.config.mailbox.addr.clone();
            params.dev_server = self.inner.config.mailbox.tls == TlsMode::SkipVerify;
        }
        if params.first_connection_timeout.is_none() {
            params.first_connection_timeout = Some(self.inner.config.first_connection_timeout);
        }
        let (budget, limits) = (params.budget, params.limits);
        let created = create_session(
            &self.inner.lnd,
            &self.inner.store,
            params,
            self.clock().now(),
        )
        .await?;
        let s = &created.session;
        if budget.is_some() || limits != Limits::default() {
            self.meter(s.id)?.set_policy(budget, Some(limits)).await?;
        }
        tracing::info!(session = %s.id, label = %s.label, kind = s.session_type.name(), "session created");
        let mut listening = self.serve(s)?;
        // An app that dials before the boxes exist is refused ("stream not found") and
        // waits for its GBN resend (2 s; through aperture's WebSocket gateway every time),
        // so the phrase is handed out once the node listens on them.
        let ready = tokio::time::timeout(MAILBOX_READY_TIMEOUT, listening.wait_for(|l| *l)).await;
        if !matches!(ready, Ok(Ok(_))) {
            tracing::warn!(session = %s.id, mailbox = %s.mailbox_addr, "the session's mailboxes could not be created yet (is the relay reachable?); the app can pair once the node reaches the relay");
        }
        Ok(created)
    }

    /// Revokes a session: live calls and streams end at once, both mailboxes are deleted
    /// and LND deletes the macaroon's root key.
    pub async fn revoke(&self, id: SessionId) -> Result<Session, NodeError> {
        let s = self
            .inner
            .store
            .revoke(id, RevokeReason::User, self.clock().now())?;
        self.finish(&s).await;
        Ok(s)
    }

    /// The enforcement state (limits, budget, audit log) of session `id`.
    pub fn meter(&self, id: SessionId) -> Result<Arc<Meter>, NodeError> {
        let mut meters = self.inner.meters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = meters.get(&id) {
            return Ok(m.clone());
        }
        let spend = self
            .inner
            .store
            .get(id)
            .is_ok_and(|s| s.session_type == crate::session::SessionType::Spend);
        let m = Meter::load(
            id,
            self.inner.store.clone(),
            self.clock().clone(),
            self.inner.lnd.clone(),
            self.inner.audit.clone(),
            spend,
        )?;
        meters.insert(id, m.clone());
        Ok(m)
    }

    /// Changes a session's budget and/or limits, live (`None` keeps what is set).
    pub async fn set_policy(
        &self,
        id: SessionId,
        budget: Option<Budget>,
        limits: Option<Limits>,
    ) -> Result<SessionPolicy, NodeError> {
        let s = self.inner.store.get(id)?;
        if s.state.is_terminal() {
            return Err(NodeError::Config(format!(
                "session {id} is {}; its budget can no longer change",
                s.state.name()
            )));
        }
        Ok(self.meter(id)?.set_policy(budget, limits).await?)
    }

    /// Whether an app is connected to session `id` right now.
    pub fn is_connected(&self, id: SessionId) -> bool {
        self.lock_live()
            .get(&id)
            .is_some_and(|l| l.gate.is_connected())
    }

    /// The node's clock (the system's, unless a test moves it).
    pub fn clock(&self) -> &Clock {
        &self.inner.config.clock
    }

    /// Number of sessions being served.
    pub fn live_sessions(&self) -> usize {
        self.lock_live().len()
    }

    /// Number of sessions with an app connected now.
    pub fn connected_apps(&self) -> usize {
        self.lock_live()
            .values()
            .filter(|l| l.gate.is_connected())
            .count()
    }

    /// The node's metrics (served by [`crate::ops`]).
    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.inner.metrics
    }

    /// Stops every listener (FIN to connected apps) and waits for the supervisors.
    pub async fn shutdown(&self) {
        let live: Vec<Live> = self.lock_live().drain().map(|(_, l)| l).collect();
        for l in &live {
            l.stop.send_replace(true);
        }
        for l in live {
            let _ = tokio::time::timeout(Duration::from_secs(5), l.task).await;
        }
        tracing::info!("lnc node: stopped");
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Live>> {
        self.inner.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mailbox_for(&self, s: &Session) -> Result<Arc<dyn Mailbox>, NodeError> {
        let cfg = &self.inner.config.mailbox;
        let (tls, token) = if s.mailbox_addr == cfg.addr {
            (cfg.tls.clone(), cfg.creation_token.clone())
        } else if s.dev_server {
            (TlsMode::SkipVerify, None)
        } else {
            (TlsMode::System, None)
        };
        let mut pools = self
            .inner
            .mailboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let pool = pools.entry(s.mailbox_addr.clone()).or_default();
        if let Some((mb, n)) = pool
            .iter_mut()
            .find(|(_, n)| *n < SESSIONS_PER_MAILBOX_CONNECTION)
        {
            *n += 1;
            return Ok(mb.clone());
        }
        let mb = GrpcMailbox::new(RelayAddr {
            addr: s.mailbox_addr.clone(),
            tls,
        })
        .map_err(|e| NodeError::Config(format!("mailbox {}: {e}", s.mailbox_addr)))?
        .with_create_token(token);
        let mb: Arc<dyn Mailbox> = Arc::new(mb);
        pool.push((mb.clone(), 1));
        Ok(mb)
    }

    /// Starts the listener and supervisor of a live session; the receiver turns true once
    /// the listener waits for the app on the session's mailboxes.
    fn serve(&self, s: &Session) -> Result<watch::Receiver<bool>, NodeError> {
        let mailbox = self.mailbox_for(s)?;
        let gate = Arc::new(Gate::new(s.expiry, self.clock().clone()));
        let proxy = Proxy::new(
            gate.clone(),
            self.inner.lnd.clone(),
            self.inner.upstreams.clone(),
            s,
            self.inner.metrics.clone(),
            self.meter(s.id)?,
        );
        let options = TunnelOptions {
            handshake_timeout: Some(self.inner.config.handshake_timeout),
            ..TunnelOptions::default()
        };
        let listener = listen(
            &self.inner.rt,
            mailbox.clone(),
            connection_state(s),
            proxy,
            options,
            rng(),
        );
        let (stop, stop_rx) = watch::channel(false);
        let (listening, listening_rx) = watch::channel(false);
        let sup = Supervisor {
            listening,
            node: self.clone(),
            id: s.id,
            gate: gate.clone(),
            mailbox,
            paired: s.remote_public_key.is_some(),
            expiry: s.expiry,
            first_deadline: s.first_connection_deadline,
        };
        let task = tokio::spawn(sup.run(listener, stop_rx));
        let old = self.lock_live().insert(s.id, Live { gate, stop, task });
        if let Some(old) = old {
            old.stop.send_replace(true);
        }
        Ok(listening_rx)
    }

    /// After a session reached a terminal state in the store: closes its gate and
    /// listener (ending live calls; the supervisor deletes the mailboxes), then [`ended`](Self::ended).
    async fn finish(&self, s: &Session) {
        let live = self.lock_live().remove(&s.id);
        if let Some(l) = live {
            l.gate.deactivate();
            l.stop.send_replace(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), l.task).await;
        }
        self.ended(s).await;
    }
}

struct Supervisor {
    /// Set once the listener waits on the session's mailboxes (they exist).
    listening: watch::Sender<bool>,
    node: Node,
    id: SessionId,
    gate: Arc<Gate>,
    mailbox: Arc<dyn Mailbox>,
    paired: bool,
    expiry: SystemTime,
    first_deadline: SystemTime,
}

enum Ending {
    Stop,
    Expired,
    Deadline,
    Burnt(PairingAttemptFailure),
}

impl Supervisor {
    async fn run(mut self, mut listener: Listener, mut stop: watch::Receiver<bool>) {
        let id = self.id;
        let mut streams: Vec<MailboxStreams> = Vec::new();
        let clock = self.node.clock().clone();
        let ending = loop {
            // Re-armed on every wake-up, so a test's clock advance counts at once.
            let expiry = clock.sleep_until(self.expiry);
            let deadline = clock.sleep_until(self.first_deadline);
            tokio::select! {
                () = clock.changed() => {}
                ev = listener.next_event() => {
                    let Some(ev) = ev else { break Ending::Stop };
                    if let Some(end) = self.on_event(ev, &mut streams) {
                        break end;
                    }
                }
                _ = stop.wait_for(|s| *s) => break Ending::Stop,
                () = expiry => break Ending::Expired,
                () = deadline, if !self.paired => break Ending::Deadline,
            }
        };
        self.gate.set_connected(false);
        listener.close();
        // Wait (briefly) for the listener to stop so it re-creates no box after deletion.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(ev) = listener.next_event().await {
                if matches!(ev, ListenerEvent::Stopped) {
                    break;
                }
            }
        })
        .await;
        let node = self.node.clone();
        let store = &node.inner.store;
        let now = clock.now();
        let outcome = match ending {
            Ending::Stop => {
                // Revoked through the node (it deletes the root key) or node shutdown.
                if store.get(id).is_ok_and(|s| s.state.is_terminal()) {
                    self.delete_boxes(&streams).await;
                }
                return;
            }
            // A tokio timer and the wall clock may disagree by a hair: the timer's moment counts.
            Ending::Expired => store.end_if_due(id, now.max(self.expiry)).map(|(s, _)| s),
            Ending::Deadline => store
                .end_if_due(id, now.max(self.first_deadline))
                .map(|(s, _)| s),
            Ending::Burnt(PairingAttemptFailure::Rejected) => store.record_failed_attempt(id, now),
            Ending::Burnt(PairingAttemptFailure::StalledAfterAct2) => store.get(id),
        };
        self.gate.deactivate();
        self.delete_boxes(&streams).await;
        let s = match outcome.or_else(|_| store.get(id)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(session = %id, error = %e, "ending the session in the store failed");
                return;
            }
        };
        // Deregister ourselves (we are the task `finish` would wait on), then end.
        let mine = {
            let mut live = node.lock_live();
            match live.get(&id) {
                Some(l) if Arc::ptr_eq(&l.gate, &self.gate) => live.remove(&id),
                _ => None,
            }
        };
        drop(mine);
        if s.state.is_terminal() {
            node.ended(&s).await;
        }
    }

    async fn delete_boxes(&self, streams: &[MailboxStreams]) {
        let mut ids: Vec<StreamId> = Vec::new();
        for s in streams {
            for id in [s.receive, s.send] {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        for sid in ids {
            if let Err(e) = self.mailbox.delete(sid).await {
                tracing::debug!(session = %self.id, error = %e, "deleting a mailbox failed");
            }
        }
    }

    fn on_event(&mut self, ev: ListenerEvent, streams: &mut Vec<MailboxStreams>) -> Option<Ending> {
        let id = self.id;
        let store = &self.node.inner.store;
        let now = self.node.clock().now();
        match ev {
            ListenerEvent::Listening(s) => {
                if !streams.contains(&s) {
                    streams.push(s);
                }
                self.listening.send_replace(true);
                tracing::debug!(session = %id, "waiting for the app");
            }
            ListenerEvent::Connected { session, .. } => {
                if !self.gate.is_active() {
                    return Some(Ending::Stop);
                }
                self.gate.set_connected(true);
                let pairing = session.record.remote_static_stored && !self.paired;
                let r = if pairing {
                    self.paired = true;
                    tracing::info!(session = %id, version = %session.version, "app paired; later connections use KK");
                    store.record_pairing(id, &session.remote_static, now)
                } else {
                    tracing::info!(session = %id, pattern = ?session.pattern, "app connected");
                    store.touch(id, now)
                };
                if let Err(e) = r {
                    tracing::warn!(session = %id, error = %e, "storing the connection failed");
                }
                // Announced once stored: a listener of `Paired` may rely on the record.
                if pairing {
                    self.node.emit(NodeEvent::Paired(id));
                }
                self.node.emit(NodeEvent::Connected(id));
            }
            ListenerEvent::Disconnected(reason) => {
                if self.gate.set_connected(false) {
                    tracing::info!(session = %id, reason = ?reason, "app disconnected");
                    let _ = store.touch(id, now);
                    self.node.emit(NodeEvent::Disconnected(id));
                }
            }
            ListenerEvent::PairingAttemptFailed(kind) => {
                tracing::warn!(session = %id, kind = ?kind, "pairing attempt failed");
                self.node.metrics().pairing_failed(match kind {
                    PairingAttemptFailure::Rejected => "rejected",
                    PairingAttemptFailure::StalledAfterAct2 => "stalled",
                });
                match kind {
                    PairingAttemptFailure::Rejected => return Some(Ending::Burnt(kind)),
                    PairingAttemptFailure::StalledAfterAct2 => {
                        let limit = self.node.inner.config.max_stalled_attempts;
                        match store.record_stalled_attempt(id, limit, now) {
                            Ok(s) if s.state.is_terminal() => return Some(Ending::Burnt(kind)),
                            Ok(s) => {
                                self.node.emit(NodeEvent::AttemptFailed {
                                    id,
                                    kind,
                                    attempts: s.failed_attempts,
                                });
                                tracing::info!(session = %id, attempts = s.failed_attempts, limit, "stalled pairing counted");
                            }
                            Err(e) => {
                                tracing::warn!(session = %id, error = %e, "counting a stalled pairing failed");
                            }
                        }
                    }
                }
            }
            ListenerEvent::HandshakeFailed(e) => {
                tracing::info!(session = %id, error = %e, "handshake failed");
                self.node.metrics().handshake_failed(e.kind());
            }
            ListenerEvent::Stopped => return Some(Ending::Stop),
        }
        None
    }
}
