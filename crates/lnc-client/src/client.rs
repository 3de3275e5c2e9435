//! `pair` and `connect`: runtime-agnostic session setup over any [`Runtime`] and
//! [`Mailbox`], and the [`Client`] they return.
//!
//! The tunnel below ([`lnc_tunnel::Client`]) already heals itself (transport re-open under
//! a live GBN, fresh GBN + KK after GBN died). What this layer adds is what an app needs
//! around it: a bounded first connection with a diagnosis (a wrong phrase is
//! indistinguishable from an offline node, so after a wait we say both), progress events,
//! credentials, and calls.

use crate::credentials::{Credentials, MailboxInfo};
use crate::error::{CallShape, Error};
use core::time::Duration;
use futures_channel::{mpsc, oneshot};
use futures_util::{Stream, StreamExt as _};
use lnc_core::keys::SecretKey;
use lnc_core::macaroon::UnixTime;
use lnc_core::pairing::{ConnectionState, PairingPhrase, Role, StreamId};
use lnc_tunnel::mailbox::{PacketSink, PacketStream};
use lnc_tunnel::rt::BoxFuture;
use lnc_tunnel::{ClientEvent, Mailbox, MailboxError, Runtime, Status, TunnelOptions};
use lnd_api::dynamic::{Method, Registry};
use lnd_api::lnrpc::lightning_client::LightningClient;
use prost_reflect::DynamicMessage;
use rand_core::CryptoRng;
use std::sync::{Arc, Mutex};

/// How long the first connection may see "Session Not Found" (or no answer) before
/// giving up with [`Error::SessionNotFound`].
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Where a connection attempt is; shown as progress (`lnc connect` prints them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Opening the relay streams.
    ConnectingToMailbox,
    /// The relay is reachable; waiting for the node to answer on the session's streams.
    WaitingForNode,
    /// The node answered; the Noise handshake runs.
    Handshake,
    /// The first (XX) handshake completed: credentials exist now.
    Paired,
    /// A KK connection with stored credentials is up.
    Connected,
    /// The tunnel died; reconnecting in the background.
    Reconnecting,
    /// [`Client::close`] was called.
    Closed,
}

impl Phase {
    /// Human-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::ConnectingToMailbox => "connecting to mailbox",
            Phase::WaitingForNode => "waiting for node",
            Phase::Handshake => "handshake",
            Phase::Paired => "paired",
            Phase::Connected => "connected",
            Phase::Reconnecting => "reconnecting",
            Phase::Closed => "closed",
        }
    }
}

impl core::fmt::Display for Phase {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A progress or status change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Our connection phase.
    Phase(Phase),
    /// Upstream's status string (Not Connected / Session Not Found / Session In Use /
    /// Connected), as apps built on lnc-web expect.
    Status(Status),
}

/// Settings for [`pair`] and [`connect`].
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// How long the first connection may wait for the node (default 30 s).
    pub wait: Duration,
    /// GBN and Noise settings.
    pub tunnel: TunnelOptions,
    /// Wall-clock time, to refuse an expired macaroon before connecting (`None` skips
    /// the check; the native helpers fill it in).
    pub now: Option<UnixTime>,
    /// Where progress and status events go.
    pub events: Option<mpsc::UnboundedSender<Event>>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            wait: DEFAULT_WAIT,
            tunnel: TunnelOptions::default(),
            now: None,
            events: None,
        }
    }
}

struct ObsState {
    status: Status,
    last_error: Option<MailboxError>,
    waiting_sent: bool,
    handshake_sent: bool,
    initial: bool,
    fail_fast: Option<oneshot::Sender<()>>,
}

/// Watches what the relay says, to report progress and to diagnose a failed first
/// connection (the tunnel only exposes "it did not work yet").
struct Observer {
    state: Mutex<ObsState>,
    events: Option<mpsc::UnboundedSender<Event>>,
}

impl Observer {
    /// An observer of a first connection: `fail_fast` fires on an error retrying cannot fix.
    fn new(events: Option<mpsc::UnboundedSender<Event>>, fail_fast: oneshot::Sender<()>) -> Self {
        Observer {
            state: Mutex::new(ObsState {
                status: Status::NotConnected,
                last_error: None,
                waiting_sent: false,
                handshake_sent: false,
                initial: true,
                fail_fast: Some(fail_fast),
            }),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ObsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, e: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.unbounded_send(e);
        }
    }

    fn set_status(&self, st: Status) {
        let changed = {
            let mut s = self.lock();
            let changed = s.status != st;
            s.status = st;
            changed
        };
        if changed {
            self.emit(Event::Status(st));
        }
    }

    fn on_error(&self, e: &MailboxError) {
        let (waiting, fail) = {
            let mut s = self.lock();
            s.last_error = Some(e.clone());
            let waiting = s.initial && !s.waiting_sent && e.status == Status::SessionNotFound;
            if waiting {
                s.waiting_sent = true;
            }
            let fail = if s.initial && e.tls {
                s.fail_fast.take()
            } else {
                None
            };
            (waiting, fail)
        };
        self.set_status(e.status);
        if waiting {
            self.emit(Event::Phase(Phase::WaitingForNode));
        }
        if let Some(f) = fail {
            let _ = f.send(());
        }
    }

    /// A receive stream that ends without an error (a relay ending the call with an OK
    /// status, a proxy closing the stream cleanly; our WebSocket transports already turn a
    /// close into an error) is a drop like any other: Go's `ClientConn.recv` reports every
    /// failed `Recv` as "Not Connected" before reopening, and apps wait for that status
    /// (and its return to "Connected") to show a reconnect. Not recorded as the last
    /// error: a clean end says nothing about why a first connection fails.
    fn on_end(&self) {
        self.set_status(Status::NotConnected);
    }

    fn on_open(&self) {
        let waiting = {
            let mut s = self.lock();
            let w = s.initial && !s.waiting_sent;
            s.waiting_sent |= w;
            w
        };
        if waiting {
            self.emit(Event::Phase(Phase::WaitingForNode));
        }
    }

    fn on_packet(&self) {
        let hs = {
            let mut s = self.lock();
            let hs = s.initial && !s.handshake_sent;
            s.handshake_sent |= hs;
            hs
        };
        self.set_status(Status::Connected);
        if hs {
            self.emit(Event::Phase(Phase::Handshake));
        }
    }

    fn diagnose(&self, addr: &str, waited: Duration) -> Error {
        let s = self.lock();
        match &s.last_error {
            Some(e) if e.status == Status::SessionInUse => Error::SessionInUse,
            Some(e) if e.tls => Error::Tls {
                addr: addr.to_owned(),
                message: e.message.clone(),
            },
            Some(e) if e.status == Status::NotConnected && !s.handshake_sent => {
                Error::MailboxUnreachable {
                    addr: addr.to_owned(),
                    message: e.message.clone(),
                }
            }
            _ => Error::SessionNotFound { waited },
        }
    }
}

struct ObservedMailbox {
    inner: Arc<dyn Mailbox>,
    obs: Arc<Observer>,
}

impl Mailbox for ObservedMailbox {
    fn open_recv(&self, id: StreamId) -> BoxFuture<Result<PacketStream, MailboxError>> {
        let f = self.inner.open_recv(id);
        let obs = self.obs.clone();
        Box::pin(async move {
            match f.await {
                Ok(s) => {
                    obs.on_open();
                    let o = obs.clone();
                    let s = s.inspect(move |item| match item {
                        Ok(_) => o.on_packet(),
                        Err(e) => o.on_error(e),
                    });
                    let end = futures_util::stream::once(async move {
                        obs.on_end();
                        None
                    })
                    .filter_map(core::future::ready);
                    Ok(Box::pin(s.chain(end)) as PacketStream)
                }
                Err(e) => {
                    obs.on_error(&e);
                    Err(e)
                }
            }
        })
    }

    fn open_send(&self, id: StreamId) -> BoxFuture<Result<PacketSink, MailboxError>> {
        let f = self.inner.open_send(id);
        let obs = self.obs.clone();
        Box::pin(async move {
            match f.await {
                Ok(sink) => {
                    let o = obs.clone();
                    // Relay errors on a send stream (e.g. "write stream occupied") surface
                    // on the sink, not on open.
                    let sink = futures_util::SinkExt::sink_map_err(sink, move |e| {
                        o.on_error(&e);
                        e
                    });
                    Ok(Box::pin(sink) as PacketSink)
                }
                Err(e) => {
                    obs.on_error(&e);
                    Err(e)
                }
            }
        })
    }

    fn create(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        self.inner.create(id)
    }

    fn delete(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        self.inner.delete(id)
    }
}

/// A connected session: typed LND clients, dynamic JSON calls, and `close`.
///
/// Cheap to clone (clones share the tunnel). The tunnel reconnects by itself; calls made
/// while it does fail with [`Error::Retryable`].
#[derive(Clone)]
pub struct Client {
    inner: lnc_tunnel::Client,
    obs: Arc<Observer>,
    credentials: Arc<Credentials>,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("node", self.credentials.remote_static())
            .finish_non_exhaustive()
    }
}

/// Pairs with a node using the ten-word phrase (Noise XX; the scrypt stretch runs while
/// the relay streams open). Returns the connected client and the credentials to store
/// for later [`connect`]s.
pub async fn pair<R, G>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    info: MailboxInfo,
    phrase: &str,
    options: ConnectOptions,
    mut rng: G,
) -> Result<(Client, Credentials), Error>
where
    R: Runtime,
    G: CryptoRng + Send + 'static,
{
    let phrase = PairingPhrase::parse(phrase)?;
    let local = SecretKey::generate(&mut rng);
    let state = ConnectionState::new(Role::Client, local, phrase.into_entropy());
    let (inner, obs, state) =
        establish(rt, mailbox, state, &info, options, rng, Phase::Paired).await?;
    let creds = match Credentials::from_state(&state, info) {
        Ok(c) => c,
        Err(e) => {
            inner.close();
            return Err(e.into());
        }
    };
    let client = Client {
        inner,
        obs,
        credentials: Arc::new(creds.clone()),
    };
    Ok((client, creds))
}

/// Reconnects with stored credentials (Noise KK on the post-pairing streams). Refuses an
/// expired macaroon up front when `options.now` is set.
pub async fn connect<R, G>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    credentials: &Credentials,
    options: ConnectOptions,
    rng: G,
) -> Result<Client, Error>
where
    R: Runtime,
    G: CryptoRng + Send + 'static,
{
    if let (Some(now), Some(exp)) = (options.now, credentials.expiry())
        && exp <= now
    {
        return Err(Error::Expired { expiry: exp.secs() });
    }
    let state = credentials.connection_state();
    let (inner, obs, _) = establish(
        rt,
        mailbox,
        state,
        credentials.mailbox(),
        options,
        rng,
        Phase::Connected,
    )
    .await?;
    Ok(Client {
        inner,
        obs,
        credentials: Arc::new(credentials.clone()),
    })
}

async fn establish<R, G>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    state: ConnectionState,
    info: &MailboxInfo,
    options: ConnectOptions,
    rng: G,
    done: Phase,
) -> Result<(lnc_tunnel::Client, Arc<Observer>, ConnectionState), Error>
where
    R: Runtime,
    G: CryptoRng + Send + 'static,
{
    let (fail_tx, fail_rx) = oneshot::channel();
    let obs = Arc::new(Observer::new(options.events.clone(), fail_tx));
    obs.emit(Event::Phase(Phase::ConnectingToMailbox));
    // On wasm32 the runtime is single-threaded and `Mailbox` is not `Send` by design
    // (`lnc_tunnel::rt::MaybeSend`): the Arc only shares the mailbox between tasks there.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    let observed: Arc<dyn Mailbox> = Arc::new(ObservedMailbox {
        inner: mailbox,
        obs: obs.clone(),
    });
    let dial = lnc_tunnel::Client::connect(rt, observed, state, options.tunnel.clone(), rng);
    let give_up = futures_util::future::select(rt.sleep(options.wait), fail_rx);
    let (inner, mut events) = match futures_util::future::select(Box::pin(dial), give_up).await {
        futures_util::future::Either::Left((Ok(x), _)) => x,
        futures_util::future::Either::Left((Err(e), _)) => {
            return Err(Error::Handshake(e));
        }
        futures_util::future::Either::Right(_) => {
            return Err(obs.diagnose(info.addr(), options.wait));
        }
    };
    let state = match events.next().await {
        Some(ClientEvent::Connected { state, .. }) => *state,
        _ => {
            inner.close();
            return Err(Error::Closed);
        }
    };
    obs.lock().initial = false;
    obs.set_status(Status::Connected);
    obs.emit(Event::Phase(done));
    let o = obs.clone();
    rt.spawn(Box::pin(async move {
        while let Some(ev) = events.next().await {
            match ev {
                ClientEvent::Connected { .. } => o.emit(Event::Phase(Phase::Connected)),
                ClientEvent::Disconnected(_) => o.emit(Event::Phase(Phase::Reconnecting)),
                ClientEvent::ReconnectFailed(_) => {}
                ClientEvent::Closed => break,
            }
        }
    }));
    Ok((inner, obs, state))
}

impl Client {
    /// LND's `lnrpc.Lightning` service over the tunnel (the macaroon is added to every
    /// call).
    pub fn lightning(&self) -> LightningClient<lnc_tunnel::Client> {
        LightningClient::new(self.inner.clone())
    }

    /// The tunnel as a tower service, for any other tonic client
    /// (`FooClient::new(client.channel())`).
    pub fn channel(&self) -> lnc_tunnel::Client {
        self.inner.clone()
    }

    /// The credentials this client connected with.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The current upstream status string.
    pub fn status(&self) -> Status {
        self.obs.lock().status
    }

    /// Whether a tunnel is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// Closes the tunnel (FIN to the node) and stops every reconnect attempt at once.
    pub fn close(&self) {
        self.inner.close();
        self.report_closed();
    }

    /// [`close`](Self::close), and returns once the node has been told (the FIN went out,
    /// or after at most half a second): what a process that exits next should call, so the
    /// node frees the session at once rather than at its keepalive.
    pub async fn shutdown(&self) {
        self.inner.close_and_flush().await;
        self.report_closed();
    }

    fn report_closed(&self) {
        self.obs.set_status(Status::NotConnected);
        self.obs.emit(Event::Phase(Phase::Closed));
    }
}

/// A stream of JSON messages from a server-streaming call.
pub type JsonStream = std::pin::Pin<Box<dyn Stream<Item = Result<String, Error>> + Send>>;

fn request_err(e: lnd_api::dynamic::DynamicError) -> Error {
    Error::Method(e)
}

fn ready_err(e: lnc_tunnel::ClientError) -> Error {
    match e {
        lnc_tunnel::ClientError::Closed => Error::Closed,
        _ => Error::Retryable,
    }
}

impl Client {
    async fn grpc(
        &self,
        registry: &Registry,
        method: &str,
        json: &str,
        streaming: bool,
    ) -> Result<
        (
            tonic::client::Grpc<lnc_tunnel::Client>,
            Method,
            DynamicMessage,
            http::uri::PathAndQuery,
        ),
        Error,
    > {
        let m = registry.method(method).map_err(request_err)?;
        let shape = if m.is_client_streaming() {
            Some(CallShape::ClientStreaming)
        } else if m.is_server_streaming() != streaming {
            Some(if streaming {
                CallShape::Unary
            } else {
                CallShape::ServerStreaming
            })
        } else {
            None
        };
        if let Some(shape) = shape {
            return Err(Error::CallShape {
                method: m.full_name().to_owned(),
                shape,
            });
        }
        let req = m.request_from_json(json).map_err(request_err)?;
        let path =
            http::uri::PathAndQuery::try_from(m.path()).map_err(|source| Error::MethodPath {
                path: m.path().to_owned(),
                source,
            })?;
        let mut grpc = tonic::client::Grpc::new(self.inner.clone());
        grpc.ready().await.map_err(ready_err)?;
        Ok((grpc, m, req, path))
    }

    /// Calls a unary method by name (`lnrpc.Lightning.GetInfo` or
    /// `/lnrpc.Lightning/GetInfo`) with a JSON request; returns the JSON response in the
    /// Go clients' format (proto field names, defaults printed, 64-bit ints as strings).
    pub async fn call(&self, method: &str, json: &str) -> Result<String, Error> {
        self.call_with(&Registry::lnd(), method, json, true).await
    }

    /// [`call`](Self::call) with another registry (e.g. LND + a `--protoset`) and a choice
    /// of pretty or compact output.
    pub async fn call_with(
        &self,
        registry: &Registry,
        method: &str,
        json: &str,
        pretty: bool,
    ) -> Result<String, Error> {
        let (mut grpc, m, req, path) = self.grpc(registry, method, json, false).await?;
        let resp = grpc
            .unary(tonic::Request::new(req), path, m.codec())
            .await
            .map_err(Error::from_status)?;
        m.response_to_json(&resp.into_inner(), pretty)
            .map_err(request_err)
    }

    /// Starts a server-streaming method by name; yields one JSON document per message
    /// (compact) until the node ends the stream.
    ///
    /// It resolves when LND answers the call, and a real LND (grpc-go) answers some
    /// subscriptions, `SubscribeInvoices` among them, only together with their first event.
    /// So do not await it *before* the action that causes that event (adding the invoice):
    /// drive both at once (`tokio::join!`, `select!`, a spawned task), or the two wait on
    /// each other.
    pub async fn subscribe(&self, method: &str, json: &str) -> Result<JsonStream, Error> {
        self.subscribe_with(&Registry::lnd(), method, json, false)
            .await
    }

    /// [`subscribe`](Self::subscribe) with another registry and output style.
    pub async fn subscribe_with(
        &self,
        registry: &Registry,
        method: &str,
        json: &str,
        pretty: bool,
    ) -> Result<JsonStream, Error> {
        let (mut grpc, m, req, path) = self.grpc(registry, method, json, true).await?;
        let resp = grpc
            .server_streaming(tonic::Request::new(req), path, m.codec())
            .await
            .map_err(Error::from_status)?;
        let s = resp.into_inner().map(move |item| match item {
            Ok(msg) => m.response_to_json(&msg, pretty).map_err(request_err),
            Err(st) => Err(Error::from_status(st)),
        });
        Ok(Box::pin(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay whose receive streams carry one packet and then end cleanly, as a
    /// WebSocket closed by a restarting relay does.
    struct EndsAfterOnePacket;

    impl Mailbox for EndsAfterOnePacket {
        fn open_recv(&self, _: StreamId) -> BoxFuture<Result<PacketStream, MailboxError>> {
            let s: PacketStream = Box::pin(futures_util::stream::iter([Ok(vec![1u8])]));
            Box::pin(async move { Ok(s) })
        }
        fn open_send(&self, _: StreamId) -> BoxFuture<Result<PacketSink, MailboxError>> {
            Box::pin(async { Err(MailboxError::new("not used")) })
        }
        fn create(&self, _: StreamId) -> BoxFuture<Result<(), MailboxError>> {
            Box::pin(async { Ok(()) })
        }
        fn delete(&self, _: StreamId) -> BoxFuture<Result<(), MailboxError>> {
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn a_receive_stream_that_ends_reports_not_connected_as_go_does() {
        let (tx, rx) = mpsc::unbounded();
        let (fail_fast, _) = oneshot::channel();
        let obs = Arc::new(Observer::new(Some(tx), fail_fast));
        let mb = ObservedMailbox {
            inner: Arc::new(EndsAfterOnePacket),
            obs: obs.clone(),
        };
        let packets: Vec<_> = mb
            .open_recv(StreamId::from_bytes([7; 64]))
            .await
            .expect("opens")
            .collect()
            .await;
        assert_eq!(packets.len(), 1, "the end adds no item: {packets:?}");
        drop(mb);
        drop(obs);
        let events: Vec<_> = rx
            .filter(|e| core::future::ready(matches!(e, Event::Status(_))))
            .collect()
            .await;
        assert_eq!(
            events,
            [
                Event::Status(Status::Connected),
                Event::Status(Status::NotConnected)
            ]
        );
    }
}
