//! The mailbox over the browser's WebSocket, framed exactly as the Go wasm client frames
//! it (transport.md §2.3): one JSON text message per GBN packet; the receive socket sends
//! one `{"stream_id":…}` frame and then gets `{"result":…}`/`{"error":…}` frames; the
//! send socket writes `{"desc":…,"msg":…}` frames.
//!
//! Unlike Go, the send socket's incoming frames are read (and discarded, except a relay
//! error, which becomes the reason the next write fails), and the receive side is
//! bounded: a frame above upstream's 100 KiB read limit, or more frames queued than the
//! GBN window can ever need, fails the socket and the driver re-opens it.

use crate::url::MailboxUrl;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use futures_util::{Sink, Stream};
use lnc_core::pairing::StreamId;
use lnc_hashmail::json;
use lnc_tunnel::mailbox::{Mailbox, MailboxError, PacketSink, PacketStream};
use lnc_tunnel::rt::BoxFuture;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

/// Upstream's receive-socket read limit (`webSocketRecvLimit`).
pub const RECV_FRAME_LIMIT: usize = 100 * 1024;
/// Frames queued on a receive socket before it is declared overrun. GBN's window is 20
/// packets; the app reads as they come, so hundreds queued means the page is stuck.
pub const RECV_QUEUE_LIMIT: usize = 1024;
/// How long opening a socket may take before the attempt counts as failed.
pub const OPEN_TIMEOUT_MS: u32 = 10_000;

thread_local! {
    /// The constructor sockets are opened with, when not the global `WebSocket`.
    static WEBSOCKET_IMPL: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

/// Makes every later socket `new ctor(url)` instead of `new WebSocket(url)`: Node.js 20
/// has no global `WebSocket`, so the web/ package passes the `ws` package's (which has
/// the browser's `on*` handlers, `binaryType`, `readyState`, `send` and `close`). `None`
/// goes back to the global.
pub fn set_websocket_impl(ctor: Option<js_sys::Function>) {
    WEBSOCKET_IMPL.with(|c| *c.borrow_mut() = ctor);
}

fn new_websocket(url: &str) -> Result<WebSocket, wasm_bindgen::JsValue> {
    match WEBSOCKET_IMPL.with(|c| c.borrow().clone()) {
        Some(ctor) => js_sys::Reflect::construct(&ctor, &js_sys::Array::of1(&url.into()))
            .map(JsCast::unchecked_into),
        None => WebSocket::new(url),
    }
}

enum Ev {
    Open,
    Text(String),
    Closed(String),
}

#[derive(Default)]
struct SockState {
    queue: VecDeque<Ev>,
    waker: Option<Waker>,
    /// Receive socket: queue text frames. Send socket: only remember a relay error.
    keep_text: bool,
    failed: Option<String>,
}

impl SockState {
    fn push(&mut self, ev: Ev) {
        match ev {
            Ev::Text(t) if !self.keep_text => {
                if let Ok(json::RecvFrame::Error(st)) = json::parse_recv_frame(&t) {
                    self.failed.get_or_insert(st.message);
                }
            }
            Ev::Text(_) if self.queue.len() >= RECV_QUEUE_LIMIT => {
                self.failed
                    .get_or_insert_with(|| "mailbox receive socket overrun".to_owned());
            }
            Ev::Closed(why) => {
                self.failed.get_or_insert(why.clone());
                self.queue.push_back(Ev::Closed(why));
            }
            ev => self.queue.push_back(ev),
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// One browser WebSocket with its event handlers. Dropping it detaches the handlers and
/// closes the socket (code 1000, "bye", as upstream).
struct Socket {
    ws: WebSocket,
    st: Rc<RefCell<SockState>>,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        if self.ws.ready_state() <= WebSocket::OPEN {
            let _ = self.ws.close_with_code_and_reason(1000, "bye");
        }
    }
}

fn js_err(what: &str, e: &wasm_bindgen::JsValue) -> MailboxError {
    let detail = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".to_owned());
    MailboxError::new(format!("{what}: {detail}"))
}

impl Socket {
    async fn open(url: &str, keep_text: bool) -> Result<Socket, MailboxError> {
        let ws = new_websocket(url).map_err(|e| js_err("mailbox websocket", &e))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let st = Rc::new(RefCell::new(SockState {
            keep_text,
            ..Default::default()
        }));
        let s = st.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| s.borrow_mut().push(Ev::Open));
        let s = st.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            let text = if let Some(t) = data.as_string() {
                t
            } else if let Some(buf) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                let bytes = js_sys::Uint8Array::new(buf).to_vec();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                return;
            };
            let mut s = s.borrow_mut();
            if text.len() > RECV_FRAME_LIMIT {
                s.push(Ev::Closed(format!(
                    "mailbox frame of {} bytes exceeds the {RECV_FRAME_LIMIT}-byte limit",
                    text.len()
                )));
            } else {
                s.push(Ev::Text(text));
            }
        });
        let s = st.clone();
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_| {
            s.borrow_mut()
                .push(Ev::Closed("mailbox websocket error".to_owned()))
        });
        let s = st.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            s.borrow_mut().push(Ev::Closed(format!(
                "mailbox websocket closed (code {}{}{})",
                e.code(),
                if e.reason().is_empty() { "" } else { ": " },
                e.reason()
            )))
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let sock = Socket {
            ws,
            st,
            _on_open: on_open,
            _on_message: on_message,
            _on_error: on_error,
            _on_close: on_close,
        };
        let opened = futures_util::future::poll_fn(|cx| {
            let mut s = sock.st.borrow_mut();
            while let Some(ev) = s.queue.pop_front() {
                match ev {
                    Ev::Open => return Poll::Ready(Ok(())),
                    Ev::Closed(why) => return Poll::Ready(Err(MailboxError::new(why))),
                    Ev::Text(_) => {}
                }
            }
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        });
        let timeout = gloo_timers::future::TimeoutFuture::new(OPEN_TIMEOUT_MS);
        match futures_util::future::select(Box::pin(opened), timeout).await {
            futures_util::future::Either::Left((r, _)) => r.map(|()| sock),
            futures_util::future::Either::Right(_) => Err(MailboxError::new(format!(
                "mailbox websocket to {url} did not open within {OPEN_TIMEOUT_MS} ms"
            ))),
        }
    }

    fn send_text(&self, text: &str) -> Result<(), MailboxError> {
        self.ws
            .send_with_str(text)
            .map_err(|e| js_err("mailbox websocket send", &e))
    }
}

/// Packets from a receive socket.
struct Recv {
    sock: Socket,
    done: bool,
}

impl Stream for Recv {
    type Item = Result<Vec<u8>, MailboxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut s = self.sock.st.borrow_mut();
        let item = loop {
            break match s.queue.pop_front() {
                Some(Ev::Text(t)) => match json::parse_recv_frame(&t) {
                    Ok(json::RecvFrame::Result(b)) => Ok(b.msg.0),
                    Ok(json::RecvFrame::Error(st)) => Err(MailboxError::new(st.message)),
                    Err(e) => Err(MailboxError::new(e.to_string())),
                },
                Some(Ev::Closed(why)) => Err(MailboxError::new(why)),
                Some(Ev::Open) => continue,
                None => match &s.failed {
                    Some(why) => Err(MailboxError::new(why.clone())),
                    None => {
                        s.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                },
            };
        };
        drop(s);
        if item.is_err() {
            self.done = true;
        }
        Poll::Ready(Some(item))
    }
}

/// A send socket as a sink of GBN packets.
struct Send {
    sock: Socket,
    sid: StreamId,
}

impl Send {
    fn check(&self) -> Result<(), MailboxError> {
        let mut s = self.sock.st.borrow_mut();
        s.queue.clear();
        match &s.failed {
            Some(why) => Err(MailboxError::new(why.clone())),
            None if self.sock.ws.ready_state() != WebSocket::OPEN => {
                Err(MailboxError::new("mailbox send socket is not open"))
            }
            None => Ok(()),
        }
    }
}

impl Sink<Vec<u8>> for Send {
    type Error = MailboxError;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), MailboxError>> {
        Poll::Ready(self.check())
    }

    fn start_send(self: Pin<&mut Self>, item: Vec<u8>) -> Result<(), MailboxError> {
        self.check()?;
        self.sock
            .send_text(&json::send_frame(self.sid.as_bytes(), &item))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), MailboxError>> {
        Poll::Ready(self.check())
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), MailboxError>> {
        let _ = self.sock.ws.close_with_code_and_reason(1000, "bye");
        Poll::Ready(Ok(()))
    }
}

/// The mailbox relay reached over the page's WebSocket (the browser does TLS).
#[derive(Debug, Clone)]
pub struct WsMailbox {
    url: MailboxUrl,
}

impl WsMailbox {
    /// A mailbox at `url`.
    pub fn new(url: MailboxUrl) -> Self {
        WsMailbox { url }
    }
}

impl Mailbox for WsMailbox {
    fn open_recv(&self, id: StreamId) -> BoxFuture<Result<PacketStream, MailboxError>> {
        let url = self.url.receive();
        Box::pin(async move {
            let sock = Socket::open(&url, true).await?;
            sock.send_text(&json::desc_frame(id.as_bytes()))?;
            Ok(Box::pin(Recv { sock, done: false }) as PacketStream)
        })
    }

    fn open_send(&self, id: StreamId) -> BoxFuture<Result<PacketSink, MailboxError>> {
        let url = self.url.send();
        Box::pin(async move {
            let sock = Socket::open(&url, false).await?;
            Ok(Box::pin(Send { sock, sid: id }) as PacketSink)
        })
    }

    fn create(&self, _: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        // The node creates the mailboxes; an app never does.
        Box::pin(async {
            Err(MailboxError::new(
                "the browser client does not create mailboxes",
            ))
        })
    }

    fn delete(&self, _: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        Box::pin(async {
            Err(MailboxError::new(
                "the browser client does not delete mailboxes",
            ))
        })
    }
}
