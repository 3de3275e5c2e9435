//! The admin API: a small JSON service on a loopback port, used by `lnc session …`.
//!
//! It is a separate listener from every tunnel (the proxy only forwards to LND and the
//! configured upstreams), and each request needs the bearer token from the data dir's
//! `admin.token` (0600), so only the node's operator account can create or revoke
//! sessions. The bound address is written to `admin.addr` for the CLI to find.
//!
//! Routes: `POST /v1/sessions`, `GET /v1/sessions`, `GET /v1/sessions/{id}[?phrase=true]`,
//! `DELETE /v1/sessions/{id}`, `GET /v1/sessions/{id}/log[?limit=N]` (the audit log),
//! `PUT /v1/sessions/{id}/policy` (budget and limits, live).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lnc_core::macaroon::Op;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::create::NewSession;
use crate::node::{Node, NodeError};
use crate::session::{Session, SessionId, SessionState, SessionType};
use crate::spend::{Budget, Limits, Remaining};

/// File (in the data dir) holding the admin bearer token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// File (in the data dir) holding the admin API's bound address.
pub const ADMIN_ADDR_FILE: &str = "admin.addr";

/// `POST /v1/sessions` body.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct AddSessionRequest {
    /// Label shown in listings.
    pub label: String,
    /// `readonly`, `admin`, `invoice` or `custom`.
    #[serde(rename = "type")]
    pub session_type: String,
    /// Custom sessions: `entity:action` pairs and/or `uri:/pkg.Service/Method`.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Lifetime in seconds (default 90 days).
    pub expiry_secs: Option<u64>,
    /// Mailbox `host:port` (default: the node's).
    pub mailbox: Option<String>,
    /// Time allowed for the first pairing, seconds (default: the node's, 10 minutes).
    pub first_connection_timeout_secs: Option<u64>,
    /// Budget and limits (spend sessions need a budget; others may have one).
    #[serde(default, flatten)]
    pub policy: PolicyRequest,
}

/// A budget and call limits as the CLI gives them (`PUT /v1/sessions/{id}/policy`, and
/// part of `POST /v1/sessions`). Absent fields are left as they are.
#[derive(Clone, Debug, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct PolicyRequest {
    /// `50000sat/day` (periods: total, day, week, month).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// `10000sat`: the most one payment may commit (amount + fee limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payment: Option<String>,
    /// Calls per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// Calls allowed in a burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Calls open at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_streams: Option<u32>,
}

impl PolicyRequest {
    /// The budget asked for, if any.
    pub fn budget(&self) -> Result<Option<Budget>, String> {
        match (&self.budget, &self.max_payment) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err("--max-payment needs --budget".into()),
            (Some(b), m) => Budget::parse(b, m.as_deref())
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }

    /// The limits asked for, if any.
    pub fn limits(&self) -> Option<Limits> {
        (self.rate_limit.is_some() || self.burst.is_some() || self.max_streams.is_some()).then_some(
            Limits {
                calls_per_second: self.rate_limit,
                burst: self.burst,
                max_streams: self.max_streams,
            },
        )
    }
}

impl AddSessionRequest {
    /// The session this request asks for, or why the admin API answers 400: the type and
    /// permissions parse, and a blank label becomes `<type> session`. An empty mailbox and a
    /// missing first-connection timeout stay so; the node fills in its own
    /// ([`Node::create_session`]), and [`NewSession::check`] judges the durations.
    pub fn to_new_session(&self) -> Result<NewSession, String> {
        let session_type = parse_session_type(&self.session_type, &self.permissions)?;
        let label = if self.label.trim().is_empty() {
            format!("{} session", session_type.name())
        } else {
            self.label.clone()
        };
        let mut params = NewSession::new(
            label,
            session_type,
            self.mailbox.clone().unwrap_or_default(),
        );
        params.expiry = self.expiry_secs.map(Duration::from_secs);
        params.first_connection_timeout =
            self.first_connection_timeout_secs.map(Duration::from_secs);
        params.budget = self.policy.budget()?;
        params.limits = self.policy.limits().unwrap_or_default();
        Ok(params)
    }
}

/// The answer to `add` and `show`: the session and, only while it is unpaired and only
/// when asked, its pairing phrase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionReply {
    /// The session.
    pub session: SessionView,
    /// The pairing phrase (10 words).
    pub phrase: Option<String>,
    /// The mailbox the app must use with the phrase.
    pub mailbox: String,
}

/// A session as the admin API shows it (no secrets).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SessionView {
    /// Session ID (hex).
    pub id: String,
    /// Label.
    pub label: String,
    /// readonly / admin / invoice / custom.
    #[serde(rename = "type")]
    pub session_type: String,
    /// created / in use / revoked / expired.
    pub state: String,
    /// Why it was revoked, if it was.
    pub revoke_reason: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds.
    pub expiry: u64,
    /// Whether an app paired (its static key is stored; reconnects use KK).
    pub paired: bool,
    /// Unix seconds of the last connection, if any.
    pub last_seen: Option<u64>,
    /// Whether an app is connected now.
    pub connected: bool,
    /// Mailbox `host:port`.
    pub mailbox: String,
    /// The session's local public key (hex), its external identifier.
    pub local_public_key: String,
    /// Failed or stalled pairing attempts.
    pub failed_attempts: u32,
    /// The budget and what is left of it, for sessions with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Remaining>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SessionView {
    /// `s` as the admin API shows it; `connected` is the node's live view.
    pub fn of(s: &Session, connected: bool) -> Self {
        SessionView {
            id: s.id.to_string(),
            label: s.label.clone(),
            session_type: s.session_type.name().to_owned(),
            state: s.state.name().to_owned(),
            revoke_reason: match &s.state {
                SessionState::Revoked { reason } => Some(reason.to_string()),
                _ => None,
            },
            created: unix(s.created_at),
            expiry: unix(s.expiry),
            paired: s.remote_public_key.is_some(),
            last_seen: s.last_seen.map(unix),
            connected,
            mailbox: s.mailbox_addr.clone(),
            local_public_key: hex::encode(s.local_public_key.to_bytes()),
            failed_attempts: s.failed_attempts,
            budget: None,
        }
    }
}

async fn view(node: &Node, s: &Session) -> SessionView {
    let mut v = SessionView::of(s, node.is_connected(s.id));
    if let Ok(m) = node.meter(s.id) {
        v.budget = m.remaining().await;
    }
    v
}

/// An error reply.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong and what to do.
    pub error: String,
}

fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(ErrorReply { error: msg.into() })).into_response()
}

fn node_err(e: NodeError) -> Response {
    use crate::store::StoreError;
    let code = match &e {
        NodeError::Store(StoreError::NotFound(_))
        | NodeError::Session(crate::create::SessionError::Store(StoreError::NotFound(_))) => {
            StatusCode::NOT_FOUND
        }
        NodeError::Session(crate::create::SessionError::Invalid(_)) | NodeError::Config(_) => {
            StatusCode::BAD_REQUEST
        }
        NodeError::Store(StoreError::Transition(_)) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    err(code, e.to_string())
}

/// Parses a session type and its permissions.
pub fn parse_session_type(kind: &str, permissions: &[String]) -> Result<SessionType, String> {
    match kind {
        "readonly" | "read-only" => Ok(SessionType::ReadOnly),
        "admin" => Ok(SessionType::Admin),
        "invoice" | "invoice-only" | "invoices" => Ok(SessionType::InvoiceOnly),
        "spend" => Ok(SessionType::Spend),
        "custom" => {
            let mut ops = Vec::new();
            for p in permissions {
                let (e, a) = p.split_once(':').ok_or_else(|| {
                    format!("permission {p:?} is not `entity:action` or `uri:/pkg.Service/Method`")
                })?;
                if e.is_empty() || a.is_empty() {
                    return Err(format!("permission {p:?} has an empty part"));
                }
                ops.push(Op::new(e, a));
            }
            if ops.is_empty() {
                return Err(
                    "a custom session needs --permission entity:action (repeatable)".into(),
                );
            }
            Ok(SessionType::Custom(ops))
        }
        other => Err(format!(
            "unknown session type {other:?}; use readonly, admin, invoice, spend or custom"
        )),
    }
}

/// Whether the query string of `GET /v1/sessions/{id}` asks for the pairing phrase
/// (`phrase=true`), read as the handler's `Query` extractor reads it; the error is the
/// extractor's 400 text.
pub fn wants_phrase(uri: &http::Uri) -> Result<bool, String> {
    Query::<ShowQuery>::try_from_uri(uri)
        .map(|Query(q)| q.phrase)
        .map_err(|e| e.body_text())
}

#[derive(Clone)]
struct AdminState {
    node: Node,
    token: std::sync::Arc<Zeroizing<String>>,
}

fn authorized(state: &AdminState, headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    bool::from(v.as_bytes().ct_eq(state.token.as_bytes()))
}

macro_rules! check_auth {
    ($state:expr, $headers:expr) => {
        if !authorized(&$state, &$headers) {
            return err(
                StatusCode::UNAUTHORIZED,
                "lnc node admin: missing or wrong token (read it from the data dir's admin.token)",
            );
        }
    };
}

async fn add(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Json(req): Json<AddSessionRequest>,
) -> Response {
    check_auth!(st, headers);
    let params = match req.to_new_session() {
        Ok(p) => p,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    match st.node.create_session(params).await {
        Ok(c) => {
            let reply = SessionReply {
                session: view(&st.node, &c.session).await,
                phrase: Some(c.expose_phrase().to_phrase_string().to_string()),
                mailbox: c.session.mailbox_addr.clone(),
            };
            (StatusCode::CREATED, Json(reply)).into_response()
        }
        Err(e) => node_err(e),
    }
}

async fn list(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    check_auth!(st, headers);
    match st.node.store().list() {
        Ok(v) => {
            let mut views = Vec::with_capacity(v.len());
            for s in &v {
                views.push(view(&st.node, s).await);
            }
            Json(views).into_response()
        }
        Err(e) => node_err(e.into()),
    }
}

#[derive(Deserialize)]
struct ShowQuery {
    #[serde(default)]
    phrase: bool,
}

async fn show(
    State(st): State<AdminState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    check_auth!(st, headers);
    let Ok(id) = id.parse::<SessionId>() else {
        return err(StatusCode::BAD_REQUEST, "a session ID is 8 hex digits");
    };
    match st.node.store().get(id) {
        Ok(s) => {
            let phrase = if q.phrase {
                match s.expose_pairing_phrase() {
                    Some(p) => Some(p.to_phrase_string().to_string()),
                    None => {
                        return err(
                            StatusCode::CONFLICT,
                            "the phrase is shown only while the session is live and unpaired",
                        );
                    }
                }
            } else {
                None
            };
            Json(SessionReply {
                session: view(&st.node, &s).await,
                phrase,
                mailbox: s.mailbox_addr.clone(),
            })
            .into_response()
        }
        Err(e) => node_err(e.into()),
    }
}

async fn revoke(
    State(st): State<AdminState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    check_auth!(st, headers);
    let Ok(id) = id.parse::<SessionId>() else {
        return err(StatusCode::BAD_REQUEST, "a session ID is 8 hex digits");
    };
    match st.node.revoke(id).await {
        Ok(s) => Json(view(&st.node, &s).await).into_response(),
        Err(e) => node_err(e),
    }
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    limit: Option<usize>,
}

/// Audit log entries `GET /v1/sessions/{id}/log` returns when no limit is given.
pub const DEFAULT_LOG_LIMIT: usize = 100;

async fn log(
    State(st): State<AdminState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<LogQuery>,
) -> Response {
    check_auth!(st, headers);
    let Ok(id) = id.parse::<SessionId>() else {
        return err(StatusCode::BAD_REQUEST, "a session ID is 8 hex digits");
    };
    if let Err(e) = st.node.store().get(id) {
        return node_err(e.into());
    }
    let limit = q.limit.unwrap_or(DEFAULT_LOG_LIMIT);
    let store = st.node.store_handle();
    match tokio::task::spawn_blocking(move || store.audit_log(id, limit)).await {
        Ok(Ok(entries)) => Json(entries).into_response(),
        Ok(Err(e)) => node_err(e.into()),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn set_policy(
    State(st): State<AdminState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Json(req): Json<PolicyRequest>,
) -> Response {
    check_auth!(st, headers);
    let Ok(id) = id.parse::<SessionId>() else {
        return err(StatusCode::BAD_REQUEST, "a session ID is 8 hex digits");
    };
    let budget = match req.budget() {
        Ok(b) => b,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    match st.node.set_policy(id, budget, req.limits()).await {
        Ok(_) => match st.node.store().get(id) {
            Ok(s) => Json(view(&st.node, &s).await).into_response(),
            Err(e) => node_err(e.into()),
        },
        Err(e) => node_err(e),
    }
}

/// Reads the admin token, creating it (0600, 32 random bytes in hex) if absent.
pub fn load_or_create_token(dir: &Path) -> Result<Zeroizing<String>, NodeError> {
    let path = dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => {
            let meta = std::fs::metadata(&path)
                .map_err(|e| NodeError::Admin(format!("{}: {e}", path.display())))?;
            if let Some(mode) = crate::secret::loose_mode(&meta) {
                return Err(NodeError::Admin(format!(
                    "{} is readable by others (mode {mode:o}); run `chmod 600 {}`",
                    path.display(),
                    path.display()
                )));
            }
            Ok(Zeroizing::new(t.trim().to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut *b).map_err(|e| NodeError::Admin(e.to_string()))?;
            let token = Zeroizing::new(hex::encode(*b));
            write_private(&path, token.as_bytes())?;
            Ok(token)
        }
        Err(e) => Err(NodeError::Admin(format!("{}: {e}", path.display()))),
    }
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), NodeError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|e| NodeError::Admin(format!("{}: {e}", path.display())))
}

/// The running admin API.
#[derive(Debug)]
pub struct AdminServer {
    /// The bound (loopback) address.
    pub addr: SocketAddr,
    /// Where the address was written.
    pub addr_file: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Starts the admin API on the node's loopback `admin_listen` address.
pub async fn serve_admin(node: Node) -> Result<AdminServer, NodeError> {
    let cfg = node.config().clone();
    if !cfg.admin_listen.ip().is_loopback() {
        return Err(NodeError::Config(format!(
            "the admin API must listen on a loopback address, not {}",
            cfg.admin_listen
        )));
    }
    let token = load_or_create_token(&cfg.data_dir)?;
    let listener = tokio::net::TcpListener::bind(cfg.admin_listen)
        .await
        .map_err(|e| NodeError::Admin(format!("cannot listen on {}: {e}", cfg.admin_listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::Admin(e.to_string()))?;
    let addr_file = cfg.data_dir.join(ADMIN_ADDR_FILE);
    std::fs::write(&addr_file, addr.to_string())
        .map_err(|e| NodeError::Admin(format!("{}: {e}", addr_file.display())))?;
    let state = AdminState {
        node,
        token: std::sync::Arc::new(token),
    };
    let app = axum::Router::new()
        .route("/v1/sessions", get(list).post(add))
        .route("/v1/sessions/{id}", get(show).delete(revoke))
        .route("/v1/sessions/{id}/log", get(log))
        .route("/v1/sessions/{id}/policy", axum::routing::put(set_policy))
        .with_state(state);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "admin API stopped");
        }
    });
    Ok(AdminServer {
        addr,
        addr_file,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(kind: &str, permissions: &[&str]) -> AddSessionRequest {
        AddSessionRequest {
            session_type: kind.into(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            ..AddSessionRequest::default()
        }
    }

    #[test]
    fn to_new_session_fills_label_and_durations() {
        let mut r = req("invoices", &[]);
        r.expiry_secs = Some(60);
        r.first_connection_timeout_secs = Some(5);
        let p = r.to_new_session().unwrap();
        assert_eq!(p.session_type, SessionType::InvoiceOnly);
        assert_eq!(p.label, "invoice session");
        assert_eq!(p.mailbox_addr, "");
        assert_eq!(p.expiry, Some(Duration::from_secs(60)));
        assert_eq!(p.first_connection_timeout, Some(Duration::from_secs(5)));
        assert!(!p.dev_server);

        let mut r = req("custom", &["uri:/looprpc.SwapClient/LoopOut", "info:read"]);
        r.label = "pos".into();
        r.mailbox = Some("mb:443".into());
        let p = r.to_new_session().unwrap();
        assert_eq!(p.label, "pos");
        assert_eq!(p.mailbox_addr, "mb:443");
        assert_eq!(
            p.session_type,
            SessionType::Custom(vec![
                Op::uri("/looprpc.SwapClient/LoopOut"),
                Op::new("info", "read")
            ])
        );
        assert_eq!((p.expiry, p.first_connection_timeout), (None, None));
    }

    #[test]
    fn budgets_and_limits_ride_on_any_session_type() {
        let mut r = req("custom", &["offchain:write", "info:read"]);
        r.policy = serde_json::from_str(
            r#"{"budget":"2000sat/week","max_payment":"500sat","max_streams":4}"#,
        )
        .unwrap();
        let p = r.to_new_session().unwrap();
        let b = p.budget.unwrap();
        assert_eq!(
            (b.limit_msat, b.period, b.max_payment_msat),
            (2_000_000, crate::spend::Period::Week, Some(500_000))
        );
        assert_eq!(p.limits.max_streams, Some(4));
        // The request the CLI sends is flat JSON (`budget` beside `type`).
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["budget"], "2000sat/week");
        let mut bad = req("spend", &[]);
        bad.policy.max_payment = Some("5sat".into());
        assert_eq!(
            bad.to_new_session().unwrap_err(),
            "--max-payment needs --budget"
        );
        bad.policy.budget = Some("lots".into());
        assert!(
            bad.to_new_session()
                .unwrap_err()
                .contains("cannot read the amount")
        );
        // A spend session without a budget is refused before LND is asked.
        let p = req("spend", &[]).to_new_session().unwrap();
        assert!(p.check(std::time::SystemTime::now()).is_err());
    }

    #[test]
    fn to_new_session_errors_are_the_handlers() {
        let e = |r: AddSessionRequest| r.to_new_session().unwrap_err();
        assert_eq!(
            e(req("root", &[])),
            r#"unknown session type "root"; use readonly, admin, invoice, spend or custom"#
        );
        assert_eq!(
            e(req("custom", &[])),
            "a custom session needs --permission entity:action (repeatable)"
        );
        assert_eq!(
            e(req("custom", &["info"])),
            r#"permission "info" is not `entity:action` or `uri:/pkg.Service/Method`"#
        );
        assert_eq!(
            e(req("custom", &["info:"])),
            r#"permission "info:" has an empty part"#
        );
    }

    #[test]
    fn phrase_query() {
        let q = |s: &str| wants_phrase(&s.parse().unwrap());
        assert_eq!(q("/v1/sessions/0a0b0c0d"), Ok(false));
        assert_eq!(q("/v1/sessions/0a0b0c0d?phrase=true"), Ok(true));
        assert_eq!(q("/v1/sessions/0a0b0c0d?phrase=false&x=1"), Ok(false));
        assert!(q("/v1/sessions/0a0b0c0d?phrase=yes").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// A request that converts names its type (or an alias) and, for a custom session,
        /// exactly its permissions in order: the type's name and ops parse back to it.
        #[test]
        fn to_new_session_round_trips(
            kind in prop_oneof![
                Just("readonly"), Just("read-only"), Just("admin"), Just("invoice"),
                Just("custom"), Just("other"),
            ],
            permissions in proptest::collection::vec("[a-z:/.]{0,12}", 0..4),
            label in "[ a-z]{0,6}",
        ) {
            let r = AddSessionRequest { label: label.clone(), ..req(kind, &[]) };
            let r = AddSessionRequest { permissions: permissions.clone(), ..r };
            match r.to_new_session() {
                Ok(p) => {
                    let t = &p.session_type;
                    let again: Vec<String> = match t {
                        SessionType::Custom(ops) => {
                            ops.iter().map(|o| format!("{}:{}", o.entity, o.action)).collect()
                        }
                        _ => vec![],
                    };
                    if kind == "custom" {
                        prop_assert_eq!(&again, &permissions);
                    }
                    prop_assert_eq!(&parse_session_type(t.name(), &again).unwrap(), t);
                    prop_assert!(!p.label.trim().is_empty());
                    if !label.trim().is_empty() {
                        prop_assert_eq!(p.label, label);
                    }
                }
                Err(_) => {
                    let bad = |p: &String| {
                        p.split_once(':')
                            .is_none_or(|(e, a)| e.is_empty() || a.is_empty())
                    };
                    let refusable = kind == "other"
                        || (kind == "custom"
                            && (permissions.is_empty() || permissions.iter().any(bad)));
                    prop_assert!(refusable);
                }
            }
        }
    }
}
