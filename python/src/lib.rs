//! `lnc._native`: the Rust half of the Python package `lnc` (see `lnc/__init__.py` for the
//! API users see). This module stays small and string-typed: JSON in and out, so the
//! Python side owns dicts, context managers and the exception classes, and this side owns
//! the network, the secrets and the runtime.
//!
//! ## One tokio runtime, two ways to wait on it
//!
//! The module owns one multi-threaded tokio runtime, pyo3-async-runtimes' (built on first
//! use). Every network operation is a future spawned on it; nothing runs on Python's
//! threads except the waiting:
//!
//! * **sync** calls wait with the GIL released ([`Python::detach`]), in slices of
//!   [`SIGNAL_POLL`]: between slices they take the GIL back for `check_signals`, so Ctrl-C
//!   raises `KeyboardInterrupt` within ~0.1 s instead of after the call (Python only runs
//!   signal handlers when some thread asks). The interrupted future is aborted, which
//!   resets its HTTP/2 stream: nothing keeps running behind the user's back.
//! * **asyncio** calls go through pyo3-async-runtimes (`future_into_py`) rather than a
//!   hand-made bridge on `loop.call_soon_threadsafe`: it completes the asyncio future from
//!   the tokio side on the right loop, keeps contextvars, and cancels the Rust future when
//!   the asyncio task is cancelled (e.g. by `asyncio.wait_for`), which is exactly the
//!   two-way plumbing we would otherwise have to write and test ourselves. It is the PyO3
//!   organisation's own crate, versioned with pyo3.
//!
//! ## Secrets
//!
//! The phrase and the password are copied out of Python's immutable `str` into
//! `Zeroizing` buffers at once and never formatted into a message: exception texts come
//! from lnc-client's errors, which never contain them. (The caller's `str` objects cannot
//! be wiped from Rust; the docs say so.)

use lnc_client::native::ProfileStore;
use lnc_client::{
    CallShape, ConnectOptions, Credentials, CredentialsError, Error, MailboxInfo, Registry,
    TlsMode, Transport,
};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use zeroize::Zeroizing;

/// How often a blocking wait takes the GIL back to let Python run signal handlers: short
/// enough that Ctrl-C feels immediate, long enough to cost nothing measurable.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Stream messages buffered ahead of the Python consumer: enough to keep the tunnel busy
/// while Python converts JSON, small enough that a slow consumer pushes back on the node
/// (HTTP/2 flow control) instead of growing memory.
const STREAM_BUFFER: usize = 64;

fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// A failure as data, turned into the Python exception class of `lnc._errors` by
/// [`LncFailure::into_pyerr`]. Kept free of Python objects so futures can return it from
/// any thread.
struct LncFailure {
    /// Class name in `lnc._errors`.
    class: &'static str,
    message: String,
    /// gRPC status code and the node's own message, for `RpcError`.
    code: Option<(i32, String)>,
    /// Unix expiry, for `SessionExpiredError`.
    expiry: Option<i64>,
}

impl LncFailure {
    fn new(class: &'static str, message: impl Into<String>) -> Self {
        LncFailure {
            class,
            message: message.into(),
            code: None,
            expiry: None,
        }
    }

    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let build = || -> PyResult<PyErr> {
            let cls = py.import("lnc._errors")?.getattr(self.class)?;
            let exc = match self.class {
                "RpcError" => {
                    let (code, details) = self.code.clone().unwrap_or((2, String::new()));
                    cls.call1((self.message.clone(), code, details))?
                }
                "SessionExpiredError" => cls.call1((self.message.clone(), self.expiry))?,
                _ => cls.call1((self.message.clone(),))?,
            };
            Ok(PyErr::from_value(exc))
        };
        // Only a broken installation lacks `lnc._errors`; still raise the message.
        build().unwrap_or_else(|_| PyException::new_err(self.message))
    }
}

impl From<Error> for LncFailure {
    fn from(e: Error) -> Self {
        let class = match &e {
            Error::SessionNotFound { .. } => "SessionNotFoundError",
            Error::SessionInUse => "SessionInUseError",
            Error::MailboxUnreachable { .. } => "MailboxUnreachableError",
            Error::Tls { addr, message } => {
                // lnc-client's text names the CLI's flags; say the keywords instead.
                return LncFailure::new(
                    "TlsError",
                    format!(
                        "lnc: TLS to mailbox {addr} failed: {message}; for a self-hosted relay pass its CA (ca=\"ca.pem\"), for a plaintext one insecure=True"
                    ),
                );
            }
            Error::Expired { expiry } => {
                let mut f = LncFailure::new("SessionExpiredError", e.to_string());
                f.expiry = Some(*expiry);
                return f;
            }
            Error::Credentials(CredentialsError::WrongPassword) => "WrongPasswordError",
            Error::Credentials(_) => "ProfileError",
            Error::Phrase(_) => "PhraseError",
            Error::Handshake(_) => "HandshakeError",
            Error::Retryable => "ConnectionLostError",
            Error::Closed => "ClientClosedError",
            Error::Rpc { code, message } => {
                let mut f = LncFailure::new(
                    "RpcError",
                    format!("lnc: the node returned {code:?}: {message}"),
                );
                f.code = Some((*code as i32, message.clone()));
                return f;
            }
            Error::Method(_) | Error::CallShape { .. } | Error::MethodPath { .. } => "MethodError",
            Error::NoProfile { .. } => "ProfileNotFoundError",
            Error::ProfileName { .. } | Error::Store { .. } | Error::NoHome => "ProfileError",
        };
        LncFailure::new(class, e.to_string())
    }
}

type Outcome<T> = Result<T, LncFailure>;

fn to_py<T>(py: Python<'_>, r: Outcome<T>) -> PyResult<T> {
    r.map_err(|f| f.into_pyerr(py))
}

/// Runs `fut` on the module's runtime and waits for it with the GIL released, checking for
/// signals every [`SIGNAL_POLL`]; a raised signal (KeyboardInterrupt) aborts the future.
fn block_on<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Outcome<T>> + Send + 'static,
{
    let rt = runtime();
    let mut handle = rt.spawn(fut);
    loop {
        // The timer is made inside `block_on`: it needs the runtime's context.
        let slice = py
            .detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_POLL, &mut handle).await }));
        match slice {
            Ok(Ok(r)) => return to_py(py, r),
            Ok(Err(join)) => return Err(internal(join).into_pyerr(py)),
            Err(_elapsed) => {
                if let Err(e) = py.check_signals() {
                    handle.abort();
                    return Err(e);
                }
            }
        }
    }
}

/// [`future_into_py`](pyo3_async_runtimes::tokio::future_into_py) with our error mapping.
fn awaitable<'py, T, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    F: Future<Output = Outcome<T>> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let r = fut.await;
        Python::attach(|py| to_py(py, r))
    })
}

fn profile_store(home: Option<PathBuf>) -> Outcome<ProfileStore> {
    match home {
        Some(h) => Ok(ProfileStore::new(h.join("profiles"))),
        None => ProfileStore::open_default().map_err(Into::into),
    }
}

fn options(wait: f64) -> Outcome<ConnectOptions> {
    let wait = Duration::try_from_secs_f64(wait).map_err(|_| {
        LncFailure::new(
            "LncError",
            format!("lnc: wait={wait} is not a duration; pass seconds >= 0, e.g. wait=30"),
        )
    })?;
    Ok(ConnectOptions {
        wait,
        ..Default::default()
    })
}

fn empty_password() -> LncFailure {
    LncFailure::new(
        "ProfileError",
        "lnc: empty password: profiles are sealed with a password; pass password=\"...\"",
    )
}

/// Everything `pair` needs, owned, so the work can move to the runtime.
struct PairArgs {
    phrase: Zeroizing<String>,
    password: Zeroizing<String>,
    profile: String,
    store: ProfileStore,
    info: MailboxInfo,
    options: ConnectOptions,
}

#[allow(clippy::too_many_arguments)]
fn pair_args(
    phrase: &str,
    mailbox: String,
    password: &str,
    profile: String,
    home: Option<PathBuf>,
    insecure: bool,
    ca: Option<PathBuf>,
    skip_verify: bool,
    transport: &str,
    wait: f64,
) -> Outcome<PairArgs> {
    let phrase = Zeroizing::new(phrase.to_owned());
    let password = Zeroizing::new(password.to_owned());
    // Everything that can fail is checked before pairing: pairing spends the phrase, and a
    // profile that then cannot be saved would leave the user with a used-up session.
    lnc_core_phrase_check(&phrase)?;
    if password.is_empty() {
        return Err(empty_password());
    }
    let store = profile_store(home)?;
    if let Err(e @ Error::ProfileName { .. }) = store.load_sealed(&profile) {
        return Err(e.into());
    }
    let tls = match (insecure, ca, skip_verify) {
        (true, None, false) => TlsMode::Insecure,
        (false, Some(ca), false) => TlsMode::CaPem(std::fs::read(&ca).map_err(|e| {
            LncFailure::new(
                "TlsError",
                format!(
                    "lnc: cannot read the CA file {}: {e}; pass the relay's CA certificate (PEM)",
                    ca.display()
                ),
            )
        })?),
        (false, None, true) => TlsMode::SkipVerify,
        (false, None, false) => TlsMode::System,
        _ => {
            return Err(LncFailure::new(
                "LncError",
                "lnc: insecure, ca and skip_verify exclude each other; pass at most one",
            ));
        }
    };
    let transport = match transport {
        "grpc" => Transport::Grpc,
        "ws" | "websocket" => Transport::WebSocket,
        other => {
            return Err(LncFailure::new(
                "LncError",
                format!("lnc: transport={other:?} is unknown; use \"grpc\" or \"ws\""),
            ));
        }
    };
    Ok(PairArgs {
        phrase,
        password,
        profile,
        store,
        info: MailboxInfo::new(mailbox, transport, tls),
        options: options(wait)?,
    })
}

/// The phrase's own check (ten list words), before any network or password work.
fn lnc_core_phrase_check(phrase: &str) -> Outcome<()> {
    lnc_core::pairing::PairingPhrase::parse(phrase)
        .map(|_| ())
        .map_err(|e| Error::Phrase(e).into())
}

fn internal(e: tokio::task::JoinError) -> LncFailure {
    LncFailure::new(
        "LncError",
        format!("lnc: internal error ({e}); please report it"),
    )
}

async fn do_pair(a: PairArgs) -> Outcome<NativeClient> {
    let (client, creds) = lnc_client::native::pair(a.info, &a.phrase, a.options).await?;
    let PairArgs {
        password,
        profile,
        store,
        ..
    } = a;
    // Sealing runs scrypt (~0.3 s of CPU): off the runtime's workers, which carry every
    // other call of the process.
    let saved =
        tokio::task::spawn_blocking(move || store.save(&profile, &creds, password.as_bytes()))
            .await;
    match saved {
        Ok(Ok(())) => Ok(NativeClient::new(client)),
        Ok(Err(e)) => {
            client.shutdown().await;
            Err(e.into())
        }
        Err(e) => {
            client.shutdown().await;
            Err(internal(e))
        }
    }
}

struct ConnectArgs {
    password: Zeroizing<String>,
    profile: String,
    store: ProfileStore,
    options: ConnectOptions,
}

fn connect_args(
    profile: String,
    password: &str,
    home: Option<PathBuf>,
    wait: f64,
) -> Outcome<ConnectArgs> {
    let password = Zeroizing::new(password.to_owned());
    if password.is_empty() {
        return Err(empty_password());
    }
    Ok(ConnectArgs {
        password,
        profile,
        store: profile_store(home)?,
        options: options(wait)?,
    })
}

async fn do_connect(a: ConnectArgs) -> Outcome<NativeClient> {
    let sealed = a.store.load_sealed(&a.profile)?;
    // scrypt: a blocking ~0.3 s of CPU, kept off the runtime's workers.
    let creds: Credentials =
        tokio::task::spawn_blocking(move || sealed.open(a.password.as_bytes()))
            .await
            .map_err(internal)?
            .map_err(Error::from)?;
    let client = lnc_client::native::connect(&creds, a.options).await?;
    Ok(NativeClient::new(client))
}

/// Pairs with a node's ten-word phrase, saves the profile, returns the connected client.
#[pyfunction]
#[pyo3(signature = (phrase, mailbox, password, profile, home, insecure, ca, skip_verify, transport, wait))]
#[allow(clippy::too_many_arguments)]
fn pair(
    py: Python<'_>,
    phrase: &str,
    mailbox: String,
    password: &str,
    profile: String,
    home: Option<PathBuf>,
    insecure: bool,
    ca: Option<PathBuf>,
    skip_verify: bool,
    transport: &str,
    wait: f64,
) -> PyResult<NativeClient> {
    let a = to_py(
        py,
        pair_args(
            phrase,
            mailbox,
            password,
            profile,
            home,
            insecure,
            ca,
            skip_verify,
            transport,
            wait,
        ),
    )?;
    block_on(py, do_pair(a))
}

/// [`pair`] as an awaitable.
#[pyfunction]
#[pyo3(signature = (phrase, mailbox, password, profile, home, insecure, ca, skip_verify, transport, wait))]
#[allow(clippy::too_many_arguments)]
fn apair<'py>(
    py: Python<'py>,
    phrase: &str,
    mailbox: String,
    password: &str,
    profile: String,
    home: Option<PathBuf>,
    insecure: bool,
    ca: Option<PathBuf>,
    skip_verify: bool,
    transport: &str,
    wait: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let a = to_py(
        py,
        pair_args(
            phrase,
            mailbox,
            password,
            profile,
            home,
            insecure,
            ca,
            skip_verify,
            transport,
            wait,
        ),
    )?;
    awaitable(py, do_pair(a))
}

/// Connects with a saved profile (KK: no phrase).
#[pyfunction]
#[pyo3(signature = (profile, password, home, wait))]
fn connect(
    py: Python<'_>,
    profile: String,
    password: &str,
    home: Option<PathBuf>,
    wait: f64,
) -> PyResult<NativeClient> {
    let a = to_py(py, connect_args(profile, password, home, wait))?;
    block_on(py, do_connect(a))
}

/// [`connect`] as an awaitable.
#[pyfunction]
#[pyo3(signature = (profile, password, home, wait))]
fn aconnect<'py>(
    py: Python<'py>,
    profile: String,
    password: &str,
    home: Option<PathBuf>,
    wait: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let a = to_py(py, connect_args(profile, password, home, wait))?;
    awaitable(py, do_connect(a))
}

/// Profile names in the store (`home`/profiles, `$LNC_HOME/profiles` or ~/.lnc/profiles).
#[pyfunction]
#[pyo3(signature = (home))]
fn profiles(py: Python<'_>, home: Option<PathBuf>) -> PyResult<Vec<String>> {
    to_py(
        py,
        profile_store(home).and_then(|s| s.list().map_err(Into::into)),
    )
}

/// The tunnel, closed when the last Python object using it (client or stream) is gone:
/// a stream keeps working after a temporary client in `for x in connect(...).subscribe(...)`
/// is collected.
struct Tunnel(lnc_client::Client);

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A connected session (the Python `Client`/`AsyncClient` wrap it).
#[pyclass(module = "lnc._native", frozen)]
struct NativeClient {
    tunnel: Arc<Tunnel>,
}

impl NativeClient {
    fn new(client: lnc_client::Client) -> Self {
        NativeClient {
            tunnel: Arc::new(Tunnel(client)),
        }
    }
}

/// Checks a subscription before it starts, so a wrong method or request raises at the
/// `subscribe` call rather than at the first `next`.
fn check_stream_request(method: &str, json: &str) -> Outcome<()> {
    let m = Registry::lnd().method(method).map_err(Error::Method)?;
    if m.is_client_streaming() || !m.is_server_streaming() {
        return Err(Error::CallShape {
            method: m.full_name().to_owned(),
            shape: if m.is_client_streaming() {
                CallShape::ClientStreaming
            } else {
                CallShape::Unary
            },
        }
        .into());
    }
    m.request_from_json(json).map_err(Error::Method)?;
    Ok(())
}

#[pymethods]
impl NativeClient {
    /// One unary call; the GIL is released while it waits.
    fn call(&self, py: Python<'_>, method: String, json: String) -> PyResult<String> {
        let t = self.tunnel.clone();
        block_on(py, async move { Ok(t.0.call(&method, &json).await?) })
    }

    /// [`call`](Self::call) as an awaitable.
    fn acall<'py>(
        &self,
        py: Python<'py>,
        method: String,
        json: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = self.tunnel.clone();
        awaitable(py, async move { Ok(t.0.call(&method, &json).await?) })
    }

    /// Starts a server-streaming call. Returns at once: the call itself starts on the
    /// runtime, because LND answers some subscriptions only with their first event, and a
    /// caller that subscribes and then causes that event must not block in between.
    fn subscribe(&self, py: Python<'_>, method: String, json: String) -> PyResult<NativeStream> {
        to_py(py, check_stream_request(&method, &json))?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let t = self.tunnel.clone();
        let task = runtime().spawn(async move {
            use futures_util::StreamExt as _;
            let mut s = match t.0.subscribe(&method, &json).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(LncFailure::from(e))).await;
                    return;
                }
            };
            while let Some(item) = s.next().await {
                if tx.send(item.map_err(LncFailure::from)).await.is_err() {
                    return;
                }
            }
        });
        Ok(NativeStream {
            rx: Arc::new(Mutex::new(rx)),
            task: task.abort_handle(),
        })
    }

    /// Closes the tunnel and waits (at most ~0.5 s) until the node has been told, so it
    /// frees the session at once.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let t = self.tunnel.clone();
        block_on(py, async move {
            t.0.shutdown().await;
            Ok(())
        })
    }

    /// [`close`](Self::close) as an awaitable.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.tunnel.clone();
        awaitable(py, async move {
            t.0.shutdown().await;
            Ok(())
        })
    }

    /// The node's static public key, hex.
    #[getter]
    fn node_pubkey(&self) -> String {
        self.tunnel
            .0
            .credentials()
            .remote_static()
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The session's expiry (Unix seconds), or `None` if it never expires.
    #[getter]
    fn expiry(&self) -> Option<i64> {
        self.tunnel.0.credentials().expiry().map(|t| t.secs())
    }

    /// The relay's address.
    #[getter]
    fn mailbox(&self) -> String {
        self.tunnel.0.credentials().mailbox().addr().to_owned()
    }

    /// Upstream's status string ("Connected", "Session Not Found", ...).
    #[getter]
    fn status(&self) -> String {
        self.tunnel.0.status().to_string()
    }

    /// Whether a tunnel is up right now.
    #[getter]
    fn is_connected(&self) -> bool {
        self.tunnel.0.is_connected()
    }

    /// `n` sequential unary calls made by the Rust client alone (no Python between them);
    /// the seconds each took. For the Python-overhead benchmark (`python/bench.py`).
    fn _bench_rust(
        &self,
        py: Python<'_>,
        method: String,
        json: String,
        n: usize,
    ) -> PyResult<Vec<f64>> {
        let t = self.tunnel.clone();
        block_on(py, async move {
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let start = std::time::Instant::now();
                t.0.call(&method, &json).await?;
                out.push(start.elapsed().as_secs_f64());
            }
            Ok(out)
        })
    }
}

type Items = mpsc::Receiver<Outcome<String>>;

/// A running subscription: messages as JSON text, `None` at its end. Dropping it (the
/// Python iterator closed or collected) aborts the call, which resets its HTTP/2 stream
/// so the node stops sending.
#[pyclass(module = "lnc._native", frozen)]
struct NativeStream {
    rx: Arc<Mutex<Items>>,
    task: tokio::task::AbortHandle,
}

impl Drop for NativeStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next_item(rx: Arc<Mutex<Items>>) -> Outcome<Option<String>> {
    match rx.lock().await.recv().await {
        Some(Ok(s)) => Ok(Some(s)),
        Some(Err(e)) => Err(e),
        None => Ok(None),
    }
}

#[pymethods]
impl NativeStream {
    /// The next message (blocking, GIL released, Ctrl-C aware), `None` at the end.
    fn next(&self, py: Python<'_>) -> PyResult<Option<String>> {
        block_on(py, next_item(self.rx.clone()))
    }

    /// [`next`](Self::next) as an awaitable.
    fn anext<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, next_item(self.rx.clone()))
    }

    /// Stops the call now (also done when the object is collected).
    fn close(&self) {
        self.task.abort();
    }
}

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pair, m)?)?;
    m.add_function(wrap_pyfunction!(apair, m)?)?;
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(aconnect, m)?)?;
    m.add_function(wrap_pyfunction!(profiles, m)?)?;
    m.add_class::<NativeClient>()?;
    m.add_class::<NativeStream>()?;
    Ok(())
}
