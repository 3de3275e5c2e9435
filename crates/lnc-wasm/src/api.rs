//! The JavaScript API (wasm-bindgen) that `web/` wraps in an lnc-web-shaped class.
//!
//! One [`WasmClient`] per LNC connection (several per page are independent: no globals,
//! unlike the Go client's `window[namespace]` functions). The shape follows the Go wasm
//! client (transport.md §5.1) where apps depend on it: upstream's status strings, method
//! names `pkg.Service.Method`, request/response JSON with proto field names, the
//! macaroon-derived `expiry`/`isReadOnly`/`hasPerms`. It differs where upstream is
//! awkward: connect returns a Promise (no process exit on failure), results and errors
//! come through separate channels, and `disconnect` stops every retry at once.

use crate::credentials;
use crate::perms::SessionMacaroon;
use crate::rpc::{MAX_RESPONSE_MESSAGE, Method, RawCodec};
use crate::runtime::BrowserRuntime;
use crate::url::MailboxUrl;
use crate::ws::WsMailbox;
use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt as _;
use futures_util::future::{Either, select};
use js_sys::{Function, Promise};
use lnc_core::keys::SecretKey;
use lnc_core::pairing::{ConnectionState, PairingPhrase, Role};
use lnc_tunnel::mailbox::{Mailbox, Status};
use lnc_tunnel::{Client, ClientEvent, GbnHandle, TunnelOptions};
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
    /// The first connection's GBN while it is being dialled (closed by `disconnect`).
    dialing: Option<GbnHandle>,
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

/// Mirrors a GBN connection's status into the client until it ends.
fn watch(inner: Shared, generation: u64, gbn: GbnHandle) {
    spawn_local(async move {
        let mut seen = gbn.status();
        set_status(&inner, generation, seen.as_str());
        loop {
            let now = gbn.status_changed(seen).await;
            if gbn.is_closed() {
                break;
            }
            seen = now;
            set_status(&inner, generation, seen.as_str());
        }
    });
}

fn err(msg: impl core::fmt::Display) -> JsValue {
    JsError::new(&msg.to_string()).into()
}

/// The pairing state for a connection: KK from sealed credentials (with the password),
/// else XX with the phrase and a fresh local key.
fn initial_state(phrase: &str, sealed: &str, password: &str) -> Result<ConnectionState, JsValue> {
    if !sealed.trim().is_empty() {
        return credentials::open(sealed, password.as_bytes()).map_err(err);
    }
    let phrase = PairingPhrase::parse(phrase).map_err(|e| err(format!("pairing phrase: {e}")))?;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    Ok(ConnectionState::new(
        Role::Client,
        SecretKey::generate(&mut rng),
        phrase.into_entropy(),
    ))
}

/// An LNC connection from the page to a node, through a mailbox relay.
#[wasm_bindgen]
pub struct WasmClient {
    inner: Shared,
    url: MailboxUrl,
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
        })
    }

    /// Calls `callback(status)` whenever the status string changes.
    #[wasm_bindgen(js_name = onStatus)]
    pub fn on_status(&self, callback: Function) {
        self.inner.borrow_mut().on_status = Some(callback);
    }

    /// Connects: with `sealedCredentials` + `password` from an earlier pairing (KK, no
    /// phrase needed), or else with `pairingPhrase` (XX). Resolves, once the tunnel is up,
    /// with the credentials sealed under `password` for the page to store (`""` when
    /// `password` is empty: nothing to persist). Rejects on a wrong password, a failed
    /// handshake, or `disconnect` first. While the node is unreachable it keeps retrying
    /// (status "Session Not Found"): bound it with a timeout.
    pub fn connect(&self, pairing_phrase: String, sealed: String, password: String) -> Promise {
        let inner = self.inner.clone();
        let url = self.url.clone();
        future_to_promise(async move {
            let state = initial_state(&pairing_phrase, &sealed, &password)?;
            let (abort_tx, abort_rx) = oneshot::channel();
            let generation = {
                let mut i = inner.borrow_mut();
                if let Some(c) = i.client.take() {
                    c.close();
                }
                if let Some(g) = i.dialing.take() {
                    g.close();
                }
                i.generation += 1;
                i.abort = Some(abort_tx);
                i.macaroon = None;
                i.generation
            };
            let rt = BrowserRuntime::new();
            let mailbox: Arc<dyn Mailbox> = Arc::new(WsMailbox::new(url));
            let observer = {
                let inner = inner.clone();
                move |gbn: GbnHandle| {
                    inner.borrow_mut().dialing = Some(gbn.clone());
                    watch(inner, generation, gbn);
                }
            };
            let rng = rand_core::UnwrapErr(getrandom::SysRng);
            let dial = Client::connect_observed(
                &rt,
                mailbox,
                state,
                TunnelOptions::default(),
                rng,
                observer,
            );
            let (client, mut events) = match select(Box::pin(dial), abort_rx).await {
                Either::Left((Ok(c), _)) => c,
                Either::Left((Err(e), _)) => {
                    let g = inner.borrow_mut().dialing.take();
                    if let Some(g) = g {
                        g.close();
                    }
                    return Err(err(e));
                }
                Either::Right(_) => {
                    return Err(err("connect: disconnected before the connection was up"));
                }
            };
            // The first event is queued before connect returns: the session facts.
            let mut sealed = String::new();
            if let Ok(ClientEvent::Connected { session, state }) = events.try_recv() {
                inner.borrow_mut().macaroon = SessionMacaroon::from_auth_data(&session.auth_data);
                if !password.is_empty() {
                    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
                    match credentials::seal(&state, password.as_bytes(), &mut rng) {
                        Ok(s) => sealed = s,
                        Err(e) => {
                            client.close();
                            return Err(err(e));
                        }
                    }
                }
            }
            {
                let mut i = inner.borrow_mut();
                if i.generation != generation {
                    client.close();
                    return Err(err("connect: disconnected before the connection was up"));
                }
                i.dialing = None;
                i.client = Some(client.clone());
            }
            if let Some(g) = client.gbn() {
                watch(inner.clone(), generation, g);
            }
            spawn_local(follow(inner.clone(), generation, client, events));
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
        let (client, dialing, abort, cb) = {
            let mut i = self.inner.borrow_mut();
            i.generation += 1;
            i.status = NOT_CONNECTED.to_owned();
            (
                i.client.take(),
                i.dialing.take(),
                i.abort.take(),
                i.on_status.clone(),
            )
        };
        if let Some(a) = abort {
            let _ = a.send(());
        }
        if let Some(g) = dialing {
            g.close();
        }
        if let Some(c) = client {
            c.close();
        }
        if let Some(cb) = cb {
            let _ = cb.call1(&JsValue::NULL, &JsValue::from_str(NOT_CONNECTED));
        }
    }

    /// A unary call: `method` is `pkg.Service.Method` (e.g. `lnrpc.Lightning.GetInfo`),
    /// `request` JSON with proto field names. Resolves with the response JSON.
    pub fn invoke(&self, method: String, request: String) -> Promise {
        let client = self.inner.borrow().client.clone();
        future_to_promise(async move {
            let client = client.ok_or_else(|| err("RPC connection not ready"))?;
            let m = Method::lookup(&method).map_err(err)?;
            if m.is_server_streaming() {
                return Err(err(format!(
                    "rpc {method} is server-streaming: use subscribe"
                )));
            }
            let body = m.encode_request(&request).map_err(err)?;
            let path = http::uri::PathAndQuery::try_from(m.path()).map_err(err)?;
            let mut grpc =
                tonic::client::Grpc::new(client).max_decoding_message_size(MAX_RESPONSE_MESSAGE);
            grpc.ready()
                .await
                .map_err(|e| err(format!("{method}: {e}")))?;
            let resp = grpc
                .unary(tonic::Request::new(body), path, RawCodec)
                .await
                .map_err(|s| err(status_text(&s)))?;
            Ok(JsValue::from_str(
                &m.decode_response(&resp.into_inner()).map_err(err)?,
            ))
        })
    }

    /// A server-streaming call: `onMessage(json)` per message, then `onEnd(null)` when the
    /// node ends the stream or `onEnd(errorText)` when it fails. Returns a handle whose
    /// `cancel()` ends the stream.
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
        let m = Method::lookup(&method).map_err(err)?;
        if !m.is_server_streaming() {
            return Err(err(format!("rpc {method} is unary: use invoke")));
        }
        let body = m.encode_request(&request).map_err(err)?;
        let path = http::uri::PathAndQuery::try_from(m.path()).map_err(err)?;
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        spawn_local(async move {
            let run = async {
                let mut grpc = tonic::client::Grpc::new(client)
                    .max_decoding_message_size(MAX_RESPONSE_MESSAGE);
                grpc.ready().await.map_err(|e| format!("{method}: {e}"))?;
                let mut stream = grpc
                    .server_streaming(tonic::Request::new(body), path, RawCodec)
                    .await
                    .map_err(|s| status_text(&s))?
                    .into_inner();
                while let Some(msg) = stream.message().await.map_err(|s| status_text(&s))? {
                    let json = m.decode_response(&msg).map_err(|e| e.to_string())?;
                    let _ = on_message.call1(&JsValue::NULL, &JsValue::from_str(&json));
                }
                Ok::<(), String>(())
            };
            let end = match select(Box::pin(run), cancel_rx).await {
                Either::Left((Ok(()), _)) => JsValue::NULL,
                Either::Left((Err(e), _)) => JsValue::from_str(&e),
                Either::Right(_) => JsValue::NULL,
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

fn status_text(s: &tonic::Status) -> String {
    if s.message().is_empty() {
        format!("rpc error: code = {:?}", s.code())
    } else {
        s.message().to_owned()
    }
}

/// Follows the reconnecting client's events: status while it heals, the macaroon after
/// each handshake.
async fn follow(
    inner: Shared,
    generation: u64,
    client: Client,
    mut events: mpsc::UnboundedReceiver<ClientEvent>,
) {
    while let Some(ev) = events.next().await {
        if inner.borrow().generation != generation {
            break;
        }
        match ev {
            ClientEvent::Connected { session, .. } => {
                inner.borrow_mut().macaroon = SessionMacaroon::from_auth_data(&session.auth_data);
                if let Some(g) = client.gbn() {
                    watch(inner.clone(), generation, g);
                }
            }
            ClientEvent::Disconnected(_) | ClientEvent::ReconnectFailed(_) => {
                set_status(&inner, generation, Status::NotConnected.as_str());
            }
            ClientEvent::Closed => break,
        }
    }
}
