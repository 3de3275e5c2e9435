//! The WebSocket gateway: HashMail's receive and send streams as WebSocket JSON frames,
//! handled natively on the shared store (the Go relay loops these back through its own
//! gRPC listener). Creating and deleting mailboxes over REST is `rest`.
//!
//! Frames are exactly the Go relay's: the receive socket's first text frame is
//! a `CipherBoxDesc`, then one `{"result":CipherBox}` per message; the send
//! socket takes one `CipherBox` per text frame; errors are
//! `{"error":{"code":…,"message":…,"details":[]}}` followed by the end of the
//! socket. Malformed input ends only that socket.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use lnc_hashmail::json::{self, ResultFrameEncoder};
use lnc_hashmail::pb;
use tokio::time::Instant;

use crate::client::ClientInfo;
use crate::config::{Limits, Timers};
use crate::error::RelayError;
use crate::store::{Transport, stream_id};
use crate::web::{App, error_response};

type Tx = SplitSink<WebSocket, Message>;
type Rx = SplitStream<WebSocket>;

/// Largest JSON frame for the largest allowed message: base64 (4/3) plus the
/// stream id and JSON punctuation.
fn max_frame(limits: &Limits) -> usize {
    limits.max_message_bytes.div_ceil(3) * 4 + 512
}

fn configure(ws: WebSocketUpgrade, limits: &Limits) -> WebSocketUpgrade {
    let max = max_frame(limits);
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(max * 2)
}

async fn send_error(app: &App, tx: &mut Tx, e: RelayError) {
    app.metrics.reject(e.reason());
    tracing::debug!(error = %e, "websocket ended with error");
    let frame = json::error_frame(e.code() as i32, &e.to_string());
    let _ = tx.send(Message::Text(frame.into())).await;
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code: 1011,
            reason: "".into(),
        })))
        .await;
}

/// Waits for the next data frame. Answers nothing itself: tungstenite replies
/// to pings while we read.
enum Incoming {
    Text(String),
    Gone,
    Bad(RelayError),
}

async fn next_data(rx: &mut Rx, seen: &mut Instant) -> Incoming {
    loop {
        match rx.next().await {
            None | Some(Ok(Message::Close(_))) => return Incoming::Gone,
            Some(Err(e)) => {
                // Oversize frames surface here as capacity errors.
                let text = e.to_string();
                return if text.contains("too long") || text.contains("size") {
                    Incoming::Bad(RelayError::Malformed(format!("frame rejected: {text}")))
                } else {
                    Incoming::Gone
                };
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => *seen = Instant::now(),
            Some(Ok(Message::Binary(_))) => {
                return Incoming::Bad(RelayError::Malformed(
                    "binary frames are not supported; send JSON text frames".into(),
                ));
            }
            Some(Ok(Message::Text(t))) => {
                *seen = Instant::now();
                return Incoming::Text(t.as_str().to_owned());
            }
        }
    }
}

/// The first frame of a socket as text (a `what` frame), or `None` once the socket is
/// over: the client left, or it was answered with the error frame (a bad frame, none
/// before `deadline`, or the relay shutting down).
async fn first_text(
    app: &App,
    tx: &mut Tx,
    rx: &mut Rx,
    seen: &mut Instant,
    deadline: Option<Duration>,
    what: &str,
) -> Option<String> {
    let e = match first_frame(app, tx, rx, seen, deadline).await {
        Ok(Incoming::Text(t)) => return Some(t),
        Ok(Incoming::Gone) => return None,
        Ok(Incoming::Bad(e)) | Err(Some(e)) => e,
        Err(None) => RelayError::Malformed(format!("no {what} frame in time")),
    };
    send_error(app, tx, e).await;
    None
}

/// Waits for the first data frame while keeping the socket alive with pings.
/// `Err(None)` = deadline passed; `Err(Some(e))` = end with `e`.
async fn first_frame(
    app: &App,
    tx: &mut Tx,
    rx: &mut Rx,
    seen: &mut Instant,
    deadline: Option<Duration>,
) -> Result<Incoming, Option<RelayError>> {
    let mut shutdown = app.shutdown.clone();
    let mut pings = ping_timer(&app.timers);
    let timeout = async {
        match deadline {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timeout);
    loop {
        tokio::select! {
            r = next_data(rx, seen) => return Ok(r),
            () = &mut timeout => return Err(None),
            () = stopped(&mut shutdown) => return Err(Some(RelayError::ShuttingDown)),
            _ = pings.tick() => {
                if !ping(&app.timers, tx, *seen).await {
                    return Ok(Incoming::Gone);
                }
            }
        }
    }
}

async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn ping_timer(timers: &Timers) -> tokio::time::Interval {
    let period = timers
        .ws_ping_interval
        .unwrap_or(Duration::from_secs(86_400 * 365));
    let mut t = tokio::time::interval_at(Instant::now() + period, period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// Sends a ping, or returns false if the peer has been silent too long.
async fn ping(timers: &Timers, tx: &mut Tx, seen: Instant) -> bool {
    let Some(period) = timers.ws_ping_interval else {
        return true;
    };
    if seen.elapsed() > period * 2 {
        return false;
    }
    tx.send(Message::Ping(Bytes::from_static(b"are you there?")))
        .await
        .is_ok()
}

/// `GET /v1/lightning-node-connect/hashmail/receive?method=POST` (WebSocket).
pub async fn receive(
    State(app): State<App>,
    Extension(client): Extension<ClientInfo>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    upgrade(app, client, ws, ("receive", "ws_receive"), run_receive)
}

async fn run_receive(app: App, socket: WebSocket, client: ClientInfo) {
    let (mut tx, mut rx) = socket.split();
    let mut seen = Instant::now();
    // The receive socket's desc frame comes right after the upgrade.
    let deadline = Some(app.timers.handshake_timeout);
    let Some(text) = first_text(&app, &mut tx, &mut rx, &mut seen, deadline, "CipherBoxDesc").await
    else {
        return;
    };
    let id = match json::parse_desc(&text)
        .map_err(|e| RelayError::Malformed(e.to_string()))
        .and_then(|d| stream_id(&d.stream_id.0))
    {
        Ok(id) => id,
        Err(e) => return send_error(&app, &mut tx, e).await,
    };
    let mut half = match app.store.open_reader(&id, Transport::Ws).await {
        Ok(h) => h,
        Err(e) => return send_error(&app, &mut tx, e).await,
    };
    tracing::debug!(ip = %client.ip, "websocket reader attached");
    let encoder = ResultFrameEncoder::new(&id);
    let mut pings = ping_timer(&app.timers);
    loop {
        tokio::select! {
            msg = half.recv() => match msg {
                Ok(m) => {
                    if tx.send(Message::Text(encoder.encode(&m).into())).await.is_err() {
                        break;
                    }
                }
                Err(e) => return send_error(&app, &mut tx, e).await,
            },
            frame = rx.next() => match frame {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                // Further frames on a receive socket are ignored (the Go
                // relay closes the request body after the first).
                Some(Ok(_)) => seen = Instant::now(),
            },
            _ = pings.tick() => {
                if !ping(&app.timers, &mut tx, seen).await {
                    break;
                }
            }
        }
    }
    drop(half);
}

/// `GET /v1/lightning-node-connect/hashmail/send?method=POST` (WebSocket).
pub async fn send(
    State(app): State<App>,
    Extension(client): Extension<ClientInfo>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    upgrade(app, client, ws, ("send", "ws_send"), run_send)
}

/// Accepts the upgrade of one WebSocket endpoint (`which`, and its `transport` metrics
/// label), and runs `run` on the socket; a plain HTTP request gets the error JSON.
fn upgrade<F, Fut>(
    app: App,
    client: ClientInfo,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    (which, transport): (&'static str, &'static str),
    run: F,
) -> Response
where
    F: FnOnce(App, WebSocket, ClientInfo) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Ok(ws) = ws else {
        return error_response(
            &app,
            RelayError::Malformed(format!("{which} needs a WebSocket upgrade")),
        );
    };
    app.metrics
        .connections
        .get_or_create(&vec![("transport", transport)])
        .inc();
    let limits = app.limits.clone();
    configure(ws, &limits).on_upgrade(move |socket| run(app, socket, client))
}

fn parse_box(text: &str) -> Result<pb::CipherBox, RelayError> {
    json::parse_cipher_box(text)
        .map(Into::into)
        .map_err(|e| RelayError::Malformed(e.to_string()))
}

async fn run_send(app: App, socket: WebSocket, client: ClientInfo) {
    let (mut tx, mut rx) = socket.split();
    let mut seen = Instant::now();
    // A send socket may be opened before the client has a packet to send:
    // no deadline for its first frame, only ping liveness.
    let Some(text) = first_text(&app, &mut tx, &mut rx, &mut seen, None, "CipherBox").await else {
        return;
    };
    let first = match parse_box(&text).and_then(|b| {
        let desc = b.desc.as_ref().ok_or(RelayError::MissingDesc)?;
        Ok((stream_id(&desc.stream_id)?, b.msg))
    }) {
        Ok(x) => x,
        Err(e) => return send_error(&app, &mut tx, e).await,
    };
    let half = match app
        .store
        .open_writer(&first.0, Transport::Ws, client.ip)
        .await
    {
        Ok(h) => h,
        Err(e) => return send_error(&app, &mut tx, e).await,
    };
    tracing::debug!(ip = %client.ip, "websocket writer attached");
    if let Err(e) = half.send(first.1).await {
        return send_error(&app, &mut tx, e).await;
    }
    let mut pings = ping_timer(&app.timers);
    loop {
        tokio::select! {
            incoming = next_data(&mut rx, &mut seen) => match incoming {
                Incoming::Gone => break,
                Incoming::Bad(e) => return send_error(&app, &mut tx, e).await,
                Incoming::Text(t) => {
                    // Later frames' desc is ignored, as in the Go relay.
                    let res = match parse_box(&t) {
                        Ok(b) => half.send(b.msg).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = res {
                        return send_error(&app, &mut tx, e).await;
                    }
                }
            },
            e = half.closed() => return send_error(&app, &mut tx, e).await,
            _ = pings.tick() => {
                if !ping(&app.timers, &mut tx, seen).await {
                    break;
                }
            }
        }
    }
    drop(half);
}
