//! The JavaScript API (wasm-bindgen) that `web/` wraps in an lnc-web-shaped class.
//!
//! One [`WasmClient`] per LNC connection (several per page are independent: no globals,
//! unlike the Go client's `window[namespace]` functions). The shape follows the Go wasm
//! client (transport.md §5.1) where apps depend on it: upstream's status strings, method
//! names `pkg.Service.Method`, request/response JSON with proto field names, the
//! macaroon-derived `expiry`/`isReadOnly`/`hasPerms`. It differs where upstream is
//! awkward: connect returns a Promise (no process exit on failure), results and errors
//! come through separate channels, and `disconnect` stops every retry at once.
//!
//! The protocol work is lnc-client's: `pair` (XX with the phrase) or `connect` (KK with
//! credentials sealed under the password by `EncryptedCredentials`), then JSON calls
//! through `lnd_api::dynamic`.

use crate::perms::SessionMacaroon;
use crate::runtime::BrowserRuntime;
use crate::url::MailboxUrl;
use crate::ws::WsMailbox;
use core::time::Duration;
use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt as _;
use futures_util::future::{Either, select};
use js_sys::{Function, Promise};
use lnc_client::{
    Client, ConnectOptions, Credentials, EncryptedCredentials, Event, MailboxInfo, Registry,
    TlsMode, Transport,
};
use lnc_core::macaroon::UnixTime;
use lnc_tunnel::mailbox::Mailbox;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

/// The status before any connection attempt, and after `disconnect`.
const NOT_CONNECTED: &str = "Not Connected";

#[derive(Default)]
struct Inner {
    status: String,
    on_status: Option<Function>,
    client: Option<Client>,
    abort: Option<oneshot::Sender<()>>,
    macaroon: Option<SessionMacaroon>,
    /// Bumped by `connect`/`disconnect`, so tasks of an older connection stop reporting.
    generation: u64,
}

type Shared = Rc<RefCell<Inner>>;

fn set_status(inner: &Shared, generation: u64, status: &str) {
    let cb = {
        let mut i = inner.borrow_mut();
        if i.generation != generation || i.status == status {
            return;
        }
        i.status = status.to_owned();
        i.on_status.clone()
    };
    if let Some(cb) = cb {
        let _ = cb.call1(&JsValue::NULL, &JsValue::from_str(status));
    }
}

fn err(msg: impl core::fmt::Display) -> JsValue {
    JsError::new(&msg.to_string()).into()
}

fn now() -> UnixTime {
    let ms = js_sys::Date::now().max(0.0);
    UnixTime::from_duration_since_epoch(Duration::from_millis(ms as u64))
}

/// An LNC connection from the page to a node, through a mailbox relay.
#[wasm_bindgen]
pub struct WasmClient {
    inner: Shared,
    url: MailboxUrl,
    server_host: String,
}

#[wasm_bindgen]
impl WasmClient {
    /// A client for the relay at `serverHost` (`host:port` → wss; `ws://` only for
    /// localhost). Throws on an unusable address.
    #[wasm_bindgen(constructor)]
    pub fn new(server_host: &str) -> Result<WasmClient, JsValue> {
        let url = MailboxUrl::parse(server_host).map_err(err)?;
        let inner = Inner {
            status: NOT_CONNECTED.to_owned(),
            ..Default::default()
        };
        Ok(WasmClient {
            inner: Rc::new(RefCell::new(inner)),
            url,
            server_host: server_host.trim().to_owned(),
        })
    }

    /// Calls `callback(status)` whenever the status string changes.
    #[wasm_bindgen(js_name = onStatus)]
    pub fn on_status(&self, callback: Function) {
        self.inner.borrow_mut().on_status = Some(callback);
    }

    /// Connects: with `sealedCredentials` + `password` from an earlier pairing (KK, no
    /// phrase needed), or else with `pairingPhrase` (XX). Resolves, once the tunnel is up,
    /// with the credentials sealed under `password` for the page to store (the same string
    /// on a KK reconnect; `""` when `password` is empty: nothing to persist). Rejects on a
    /// wrong password, an expired session, a failed handshake, after `waitMs` without the
    /// node (with lnc-client's diagnosis), or when `disconnect` is called first.
    pub fn connect(
        &self,
        pairing_phrase: String,
        sealed: String,
        password: String,
        wait_ms: u32,
    ) -> Promise {
        let inner = self.inner.clone();
        let url = self.url.clone();
        let host = self.server_host.clone();
        future_to_promise(async move {
            let (abort_tx, abort_rx) = oneshot::channel();
            let generation = {
                let mut i = inner.borrow_mut();
                if let Some(c) = i.client.take() {
                    c.close();
                }
                if let Some(a) = i.abort.take() {
                    let _ = a.send(());
                }
                i.generation += 1;
                i.abort = Some(abort_tx);
                i.macaroon = None;
                i.generation
            };
            let (events_tx, mut events) = mpsc::unbounded();
            {
                let inner = inner.clone();
                spawn_local(async move {
                    while let Some(ev) = events.next().await {
                        if let Event::Status(st) = ev {
                            set_status(&inner, generation, st.as_str());
                        }
                    }
                });
            }
            let options = ConnectOptions {
                wait: Duration::from_millis(u64::from(wait_ms)),
                now: Some(now()),
                events: Some(events_tx),
                ..ConnectOptions::default()
            };
            let rt = BrowserRuntime::new();
            let mailbox: Arc<dyn Mailbox> = Arc::new(WsMailbox::new(url));
            let rng = rand_core::UnwrapErr(getrandom::SysRng);
            let setup = async {
                if sealed.trim().is_empty() {
                    let info = MailboxInfo::new(host, Transport::WebSocket, TlsMode::System);
                    lnc_client::pair(&rt, mailbox, info, &pairing_phrase, options, rng).await
                } else {
                    let creds = EncryptedCredentials::from_json(sealed.as_bytes())
                        .and_then(|env| env.open(password.as_bytes()))?;
                    let c = lnc_client::connect(&rt, mailbox, &creds, options, rng).await?;
                    Ok((c, creds))
                }
            };
            // Dropping the setup on disconnect drops its GBN connection: every retry stops.
            let (client, creds): (Client, Credentials) =
                match select(Box::pin(setup), abort_rx).await {
                    Either::Left((Ok(c), _)) => c,
                    Either::Left((Err(e), _)) => return Err(err(e)),
                    Either::Right(_) => {
                        return Err(err("connect: disconnected before the connection was up"));
                    }
                };
            {
                let mut i = inner.borrow_mut();
                if i.generation != generation {
                    client.close();
                    return Err(err("connect: disconnected before the connection was up"));
                }
                i.abort = None;
                i.macaroon = SessionMacaroon::from_auth_data(creds.auth_data());
                i.client = Some(client);
            }
            set_status(&inner, generation, lnc_client::Status::Connected.as_str());
            let sealed = if password.is_empty() {
                String::new()
            } else if !sealed.trim().is_empty() {
                // A KK reconnect changes nothing stored: sealing again would cost another
                // scrypt run (≈ 0.3 s in wasm) on every page load.
                sealed
            } else {
                let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
                EncryptedCredentials::seal(&creds, password.as_bytes(), &mut rng).to_json()
            };
            Ok(JsValue::from_str(&sealed))
        })
    }

    /// Upstream's status string: "Not Connected", "Session Not Found", "Session In Use",
    /// "Connected".
    pub fn status(&self) -> String {
        self.inner.borrow().status.clone()
    }

    /// Whether a tunnel to the node is up right now.
    #[wasm_bindgen(js_name = isConnected)]
    pub fn is_connected(&self) -> bool {
        self.inner
            .borrow()
            .client
            .as_ref()
            .is_some_and(Client::is_connected)
    }

    /// Closes the connection (FIN to the node) and stops every retry at once; pending
    /// calls and streams end with an error.
    pub fn disconnect(&self) {
        let (client, abort, cb) = {
            let mut i = self.inner.borrow_mut();
            i.generation += 1;
            i.status = NOT_CONNECTED.to_owned();
            (i.client.take(), i.abort.take(), i.on_status.clone())
        };
        if let Some(a) = abort {
            let _ = a.send(());
        }
        if let Some(c) = client {
            c.close();
        }
        if let Some(cb) = cb {
            let _ = cb.call1(&JsValue::NULL, &JsValue::from_str(NOT_CONNECTED));
        }
    }

    /// A unary call: `method` is `pkg.Service.Method` (e.g. `lnrpc.Lightning.GetInfo`),
    /// `request` JSON. Resolves with the response JSON (proto field names).
    pub fn invoke(&self, method: String, request: String) -> Promise {
        let client = self.inner.borrow().client.clone();
        future_to_promise(async move {
            let client = client.ok_or_else(|| err("RPC connection not ready"))?;
            let json = client
                .call_with(&Registry::lnd(), &method, &request, false)
                .await
                .map_err(err)?;
            Ok(JsValue::from_str(&json))
        })
    }

    /// A server-streaming call: `onMessage(json)` per message, then `onEnd(null)` when the
    /// node ends the stream (or it is cancelled) or `onEnd(errorText)` when it fails.
    /// Returns a handle whose `cancel()` ends the stream.
    pub fn subscribe(
        &self,
        method: String,
        request: String,
        on_message: Function,
        on_end: Function,
    ) -> Result<Subscription, JsValue> {
        let client = self
            .inner
            .borrow()
            .client
            .clone()
            .ok_or_else(|| err("RPC connection not ready"))?;
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        spawn_local(async move {
            let run = async {
                let mut stream = client
                    .subscribe(&method, &request)
                    .await
                    .map_err(|e| e.to_string())?;
                while let Some(msg) = stream.next().await {
                    let json = msg.map_err(|e| e.to_string())?;
                    let _ = on_message.call1(&JsValue::NULL, &JsValue::from_str(&json));
                }
                Ok::<(), String>(())
            };
            let end = match select(Box::pin(run), cancel_rx).await {
                Either::Left((Err(e), _)) => JsValue::from_str(&e),
                Either::Left((Ok(()), _)) | Either::Right(_) => JsValue::NULL,
            };
            let _ = on_end.call1(&JsValue::NULL, &end);
        });
        Ok(Subscription {
            cancel: Some(cancel_tx),
        })
    }

    /// Unix seconds when the session's macaroon expires (`undefined` if unknown/never).
    pub fn expiry(&self) -> Option<f64> {
        self.inner
            .borrow()
            .macaroon
            .as_ref()
            .and_then(SessionMacaroon::expiry)
            .map(|s| s as f64)
    }

    /// Whether the session may only read.
    #[wasm_bindgen(js_name = isReadOnly)]
    pub fn is_read_only(&self) -> bool {
        self.inner
            .borrow()
            .macaroon
            .as_ref()
            .is_some_and(SessionMacaroon::is_read_only)
    }

    /// Whether the session's macaroon allows `method` (`pkg.Service.Method`).
    #[wasm_bindgen(js_name = hasPerms)]
    pub fn has_perms(&self, method: &str) -> bool {
        self.inner
            .borrow()
            .macaroon
            .as_ref()
            .is_some_and(|m| m.has_perms(method))
    }
}

/// A running server-streaming call.
#[wasm_bindgen]
pub struct Subscription {
    cancel: Option<oneshot::Sender<()>>,
}

#[wasm_bindgen]
impl Subscription {
    /// Ends the stream (the node sees the call cancelled); `onEnd(null)` follows.
    pub fn cancel(&mut self) {
        if let Some(c) = self.cancel.take() {
            let _ = c.send(());
        }
    }
}

/// Opens the relay sockets with `ctor` (`new ctor(url)`, browser `WebSocket`-shaped)
/// instead of the global `WebSocket`; `null`/`undefined` restores the global. For
/// runtimes without one (Node.js 20: the `ws` package's).
#[wasm_bindgen(js_name = setWebSocketImpl)]
pub fn set_websocket_impl(ctor: Option<Function>) {
    crate::ws::set_websocket_impl(ctor);
}
