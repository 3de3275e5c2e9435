//! The GBN connection state machine (transport.md §1.3–1.9), in the style of quinn-proto:
//! packets and time go in, packets, timeouts, events and messages come out.

use super::config::{Config, ConfigError};
use super::keepalive::{Action, Keepalive};
use super::rtt::Timeouts;
use super::wire::{DecodeError, Packet, PacketKind};
use crate::time::Instant;
use core::time::Duration;
use std::collections::VecDeque;
use thiserror::Error;

/// Which end of the mailbox connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Proposes the window size and resends SYN until answered (browser/mobile app).
    Client,
    /// Waits for a SYN and adopts its window size (the node).
    Server,
}

/// Something the driver should know about; see [`Connection::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake finished: messages can flow.
    Connected,
    /// The connection is over; nothing more will be sent except a FIN already queued.
    Closed(CloseReason),
    /// [`Connection::send`] returned [`SendError::WouldBlock`] earlier and now accepts a
    /// message again.
    Writable,
}

/// Why a connection closed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CloseReason {
    /// The application called [`Connection::close`].
    #[error("gbn: closed locally")]
    Local,
    /// The peer sent FIN (it closed, or it lost its state and reconnects).
    #[error("gbn: the peer closed the connection; reconnect to continue")]
    PeerFin,
    /// Nothing arrived within the ping interval plus the pong timeout.
    #[error(
        "gbn: keepalive timeout, the peer or the mailbox relay stopped answering; check the network and reconnect"
    )]
    KeepaliveTimeout,
    /// A protocol error.
    #[error(transparent)]
    Error(#[from] ConnectionError),
}

/// A protocol violation that ended the connection (a FIN was sent to the peer).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConnectionError {
    /// The peer sent bytes that are not a GBN packet.
    #[error("gbn: malformed packet from the peer: {0}")]
    Malformed(DecodeError),
    /// A packet that has no meaning in the current state (for example a SYN long after the
    /// handshake: the client restarted and wants a new connection).
    #[error("gbn: unexpected {0} packet after the handshake; the peer restarted, reconnect")]
    UnexpectedPacket(PacketKind),
    /// The server echoed a different window size than the client proposed.
    #[error(
        "gbn: handshake failed, proposed window {proposed} but the server answered {echoed}; the peer is incompatible"
    )]
    WindowMismatch {
        /// What we proposed.
        proposed: u8,
        /// What the server echoed.
        echoed: u8,
    },
    /// The peer sent a message larger than our limit.
    #[error(
        "gbn: the peer sent a message larger than {limit} bytes; raise max_message_size if this is legitimate"
    )]
    MessageTooLarge {
        /// Our `max_message_size`.
        limit: usize,
    },
}

/// Why [`Connection::send`] refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SendError {
    /// The send window and the one-message backlog are full: wait for
    /// [`Event::Writable`] (or poll [`Connection::can_send`]) and retry.
    #[error("gbn: send window full, retry once the peer acknowledged data")]
    WouldBlock,
    /// Larger than [`Config::max_message_size`].
    #[error("gbn: message of {len} bytes exceeds the {max}-byte limit; split it")]
    TooLarge {
        /// Message length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The connection is closed.
    #[error("gbn: connection closed, reconnect to send")]
    Closed,
}

/// Counters for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets handed to [`Connection::poll_transmit`] callers (all types).
    pub packets_sent: u64,
    /// Packets given to [`Connection::handle_packet`].
    pub packets_received: u64,
    /// DATA packets transmitted for the first time (including pings).
    pub data_sent: u64,
    /// DATA packets retransmitted.
    pub data_resent: u64,
    /// Queue resends performed (each retransmits the whole window).
    pub resends: u64,
    /// ACKs sent.
    pub acks_sent: u64,
    /// NACKs sent.
    pub nacks_sent: u64,
    /// Keepalive pings sent.
    pub pings_sent: u64,
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Messages reassembled for `recv`.
    pub messages_received: u64,
    /// In-order DATA refused because the application had N undelivered messages.
    pub data_refused: u64,
    /// Smoothed round-trip time, once measured.
    pub rtt: Option<Duration>,
    /// Current resend timeout.
    pub resend_timeout: Duration,
}

/// Handshake progress.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Client: SYN queued or sent (at `syn_sent`), waiting for the server's SYN.
    ClientSyn {
        syn_sent: Option<Instant>,
        is_resend: bool,
    },
    /// Server: waiting for a SYN. `resent`: a previous SYN→SYNACK wait timed out.
    ServerAwaitSyn {
        resent: bool,
    },
    /// Server: answered SYN(n), waiting for SYNACK.
    ServerAwaitSynAck {
        syn_sent: Option<Instant>,
        is_resend: bool,
    },
    Connected,
    Closed,
}

/// A packet waiting for `poll_transmit`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Syn(u8),
    SynAck,
    Ack(u8),
    Nack(u8),
    Fin,
    /// The queued DATA packet with this sequence number (skipped if acked meanwhile).
    Data(u8),
    /// A DATA packet encoded at close, sent ahead of the FIN.
    Encoded(Vec<u8>),
    /// A packet sent before, on a transport that may have lost it, sent again as it was:
    /// no timer or counter but `packets_sent` moves (see `handle_transport_reopened`).
    Replay(Vec<u8>),
}

/// One unacknowledged DATA packet.
#[derive(Debug)]
struct Sent {
    seq: u8,
    final_chunk: bool,
    is_ping: bool,
    payload: Vec<u8>,
    transmitted: bool,
    /// First transmission time while an RTT sample is pending (cleared on retransmit).
    sample_from: Option<Instant>,
    /// The latest (re)transmission.
    last_tx: Option<Instant>,
}

impl Sent {
    /// The DATA packet on the wire (the same bytes on every (re)transmission).
    fn encode(&self, buf: &mut Vec<u8>) {
        Packet::Data {
            seq: self.seq,
            final_chunk: self.final_chunk,
            is_ping: self.is_ping,
            payload: &self.payload,
        }
        .encode(buf);
    }
}

/// The blocking "wait for sync" after a queue resend (§1.5 step 5), which keeps delayed
/// ACKs/NACKs of the original transmission from triggering an endless resend loop.
#[derive(Clone, Copy, Debug)]
struct SyncWait {
    expected_ack: u8,
    expected_nack: u8,
    deadline: Instant,
    after_ack: Option<Instant>,
}

/// A DATA packet that arrives after the peer was silent for at least
/// `min_resend_timeout` / this is taken for a keepalive probe. Resend bursts arrive back to
/// back (milliseconds apart); probes come at least `pong_timeout / keepalive_probes` apart
/// (187 ms with the defaults), so the threshold (125 ms with the defaults) separates them.
const ISOLATION_DIVISOR: u32 = 8;

/// After the transport is replaced, only packets sent this recently are sent again: older
/// ones were surely delivered or resent by now (see `handle_transport_reopened`).
pub const REPLAY_AGE: Duration = Duration::from_secs(3);

/// Cap on queued control packets (ACK/NACK) a driver that does not poll could pile up.
const MAX_QUEUED_CONTROL: usize = 1024;

/// One GBN connection, either side. Sans-IO: the driver feeds received packets with
/// [`handle_packet`](Self::handle_packet) and expired timers with
/// [`handle_timeout`](Self::handle_timeout), sends what
/// [`poll_transmit`](Self::poll_transmit) yields, arms a timer at
/// [`poll_timeout`](Self::poll_timeout), and exchanges messages with
/// [`send`](Self::send) / [`recv`](Self::recv).
///
/// Memory is bounded whatever the peer does: at most `max_in_flight` unacknowledged
/// packets plus one backlogged message on the send side; at most N undelivered messages of
/// at most `max_message_size` bytes plus one partial message on the receive side (further
/// in-order DATA is refused without ACK, so the peer retransmits it later).
#[derive(Debug)]
pub struct Connection {
    side: Side,
    config: Config,
    state: State,
    timeouts: Timeouts,
    out: VecDeque<Out>,
    events: VecDeque<Event>,
    stats: Stats,

    /// Window size N (the client's proposal until the server's echo confirms it).
    n: u8,
    /// Sequence modulus N+1.
    modulus: u16,
    connected_at: Option<Instant>,
    /// The peer sent something other than a handshake packet since the handshake.
    peer_progressed: bool,
    peer_fin: bool,

    // Sender.
    queue: VecDeque<Sent>,
    base: u8,
    top: u8,
    backlog: Option<(Vec<u8>, usize)>,
    blocked: bool,
    resend_timer: Option<Instant>,
    last_resend: Option<Instant>,
    sync: Option<SyncWait>,
    resend_requested: bool,
    /// A requested resend that the minimum spacing postponed to this time.
    deferred_resend: Option<Instant>,

    // Receiver.
    expected: u8,
    accepted_any: bool,
    last_nack: Option<(u8, Instant)>,
    reassembly: Vec<u8>,
    inbox: VecDeque<Vec<u8>>,
    refused: bool,

    keepalive: Keepalive,
    /// When the peer was last heard from (any packet).
    last_heard: Option<Instant>,
    /// When we last handed a packet to the driver.
    last_sent: Option<Instant>,
    /// The newest ACK handed to the driver, and when.
    last_ack_sent: Option<(u8, Instant)>,
}

fn seq_add(a: u8, b: u16, m: u16) -> u8 {
    // m ≤ 256 and a < m, so the result fits in u8.
    ((u16::from(a) + b) % m) as u8
}

fn seq_dist(from: u8, to: u8, m: u16) -> u16 {
    (u16::from(to) + m - u16::from(from)) % m
}

impl Connection {
    /// A client: queues SYN(N) immediately.
    pub fn new_client(config: Config) -> Result<Self, ConfigError> {
        let mut c = Self::new(Side::Client, config)?;
        c.out.push_back(Out::Syn(c.n));
        Ok(c)
    }

    /// A server: waits for the client's SYN and adopts its window size.
    pub fn new_server(config: Config) -> Result<Self, ConfigError> {
        Self::new(Side::Server, config)
    }

    fn new(side: Side, config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let n = config.window;
        let keepalive = Keepalive::new(
            config.ping_interval,
            config.pong_timeout,
            config.keepalive_probes,
        );
        Ok(Connection {
            side,
            timeouts: Timeouts::new(&config),
            state: match side {
                Side::Client => State::ClientSyn {
                    syn_sent: None,
                    is_resend: false,
                },
                Side::Server => State::ServerAwaitSyn { resent: false },
            },
            config,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            n,
            modulus: u16::from(n) + 1,
            connected_at: None,
            peer_progressed: false,
            peer_fin: false,
            queue: VecDeque::new(),
            base: 0,
            top: 0,
            backlog: None,
            blocked: false,
            resend_timer: None,
            last_resend: None,
            sync: None,
            resend_requested: false,
            deferred_resend: None,
            expected: 0,
            accepted_any: false,
            last_nack: None,
            reassembly: Vec::new(),
            inbox: VecDeque::new(),
            refused: false,
            keepalive,
            last_heard: None,
            last_sent: None,
            last_ack_sent: None,
        })
    }

    /// Which side this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// True once the handshake finished and until the connection closes.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected)
    }

    /// True once closed (locally, by FIN, keepalive or error).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The window size N in use (the server's is the client's after the handshake).
    pub fn window(&self) -> u8 {
        self.n
    }

    /// Largest message [`send`](Self::send) accepts and the receiver reassembles.
    pub fn max_message_size(&self) -> usize {
        self.config.max_message_size
    }

    /// Counters and the current RTT estimate.
    pub fn stats(&self) -> Stats {
        Stats {
            rtt: self.timeouts.srtt(),
            resend_timeout: self.timeouts.sender_timeout(),
            ..self.stats
        }
    }

    /// The most recent raw RTT sample.
    pub fn latest_rtt(&self) -> Option<Duration> {
        self.timeouts.latest_rtt()
    }

    /// Whether [`send`](Self::send) would accept a message now (back-pressure).
    pub fn can_send(&self) -> bool {
        !self.is_closed() && self.backlog.is_none()
    }

    /// Nothing left to send and everything sent was acknowledged: a graceful
    /// [`close`](Self::close) now loses nothing.
    pub fn is_flushed(&self) -> bool {
        self.backlog.is_none() && self.queue.is_empty()
    }

    /// Number of DATA packets sent but not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Number of complete messages waiting for [`recv`](Self::recv).
    pub fn pending_messages(&self) -> usize {
        self.inbox.len()
    }

    /// Queues one message. It goes out as one DATA packet, or as chunks of
    /// `max_chunk_size` if that is set; the receiver delivers it whole. Refused with
    /// [`SendError::WouldBlock`] while one message is already waiting for window space.
    /// Messages sent before the handshake finishes wait for it.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        if msg.len() > self.config.max_message_size {
            return Err(SendError::TooLarge {
                len: msg.len(),
                max: self.config.max_message_size,
            });
        }
        if self.backlog.is_some() {
            self.blocked = true;
            return Err(SendError::WouldBlock);
        }
        self.backlog = Some((msg.to_vec(), 0));
        self.stats.messages_sent += 1;
        Ok(())
    }

    /// The next complete message from the peer, in order.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let m = self.inbox.pop_front()?;
        if self.refused && self.inbox.len() < usize::from(self.n) && self.is_connected() {
            // We dropped in-order DATA while full; ask for it now instead of waiting for
            // the peer's resend timer.
            self.refused = false;
            self.push_control(Out::Nack(self.expected));
        }
        Some(m)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Closes the connection: sends the data accepted but not yet transmitted (as far as
    /// the window allows), then one FIN (unless the peer already sent one), discards the
    /// rest, and emits [`Event::Closed`]. Messages already received stay readable. Call
    /// once [`is_flushed`](Self::is_flushed) for a close that loses nothing.
    pub fn close(&mut self) {
        if self.is_closed() {
            return;
        }
        // What `send` accepted but the transport never carried goes out before the FIN,
        // as far as the window allows (nothing is waited for). Else an app that closes
        // right after its last send, e.g. right after pairing, would swallow that message
        // (the Noise act 3), and the node would count a failed pairing attempt.
        let mut last = Vec::new();
        if self.is_connected() {
            while self.can_admit()
                && let Some((final_chunk, payload)) = self.next_chunk()
            {
                self.push_data(final_chunk, false, payload);
            }
            for p in self.queue.iter().filter(|p| !p.transmitted) {
                let mut buf = Vec::new();
                p.encode(&mut buf);
                last.push(buf);
            }
        }
        self.close_with(CloseReason::Local, true);
        for p in last.into_iter().rev() {
            self.out.push_front(Out::Encoded(p));
        }
    }

    fn close_with(&mut self, reason: CloseReason, send_fin: bool) {
        self.state = State::Closed;
        self.out.clear();
        if send_fin && !self.peer_fin {
            self.out.push_back(Out::Fin);
        }
        self.queue.clear();
        self.backlog = None;
        self.sync = None;
        self.resend_timer = None;
        self.keepalive.stop();
        self.reassembly = Vec::new();
        self.events.push_back(Event::Closed(reason));
    }

    fn fail(&mut self, e: ConnectionError) {
        self.close_with(CloseReason::Error(e), true);
    }

    fn push_control(&mut self, o: Out) {
        if self.out.len() < MAX_QUEUED_CONTROL {
            self.out.push_back(o);
        }
    }

    fn connect(&mut self, now: Instant, n: u8) {
        self.state = State::Connected;
        self.n = n;
        self.modulus = u16::from(n) + 1;
        self.connected_at = Some(now);
        self.keepalive.heard(now);
        self.events.push_back(Event::Connected);
    }

    fn in_flight_limit(&self) -> usize {
        usize::from(self.config.max_in_flight.unwrap_or(self.n).min(self.n))
    }

    /// Whether a new DATA packet may take a sequence number. One slot of the in-flight
    /// limit is kept for a keepalive ping, so liveness can be probed with a full window.
    fn can_admit(&self) -> bool {
        let limit = self.in_flight_limit();
        let data_limit = if limit >= 2 { limit - 1 } else { limit };
        self.is_connected() && self.sync.is_none() && self.queue.len() < data_limit
    }

    /// Feeds one packet received from the peer. A malformed packet closes the connection
    /// (with FIN, as upstream) and is also returned as an error for logging.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) -> Result<(), DecodeError> {
        if self.is_closed() {
            return Ok(());
        }
        self.stats.packets_received += 1;
        let p = match Packet::decode(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.fail(ConnectionError::Malformed(e));
                return Err(e);
            }
        };
        match self.state {
            State::ClientSyn {
                syn_sent,
                is_resend,
            } => {
                // Anything but SYN is stale traffic from an earlier connection.
                if let Packet::Syn { n } = p {
                    if n != self.n {
                        self.fail(ConnectionError::WindowMismatch {
                            proposed: self.n,
                            echoed: n,
                        });
                        return Ok(());
                    }
                    if let (Some(t), false) = (syn_sent, is_resend) {
                        self.timeouts
                            .handshake_sample(now.saturating_duration_since(t), now);
                    }
                    self.out.push_back(Out::SynAck);
                    self.connect(now, n);
                }
            }
            State::ServerAwaitSyn { resent } => match p {
                // A zero window could never carry data; wait for a usable SYN.
                Packet::Syn { n } if n > 0 => self.answer_syn(n, resent),
                // After a SYNACK wait timed out, DATA/SYNACK prove the client got our SYN
                // and finished its handshake (upstream's `resent` rule). The packet itself
                // is dropped; GBN retransmits it.
                Packet::SynAck | Packet::Data { .. } if resent => self.connect(now, self.n),
                _ => {}
            },
            State::ServerAwaitSynAck {
                syn_sent,
                is_resend,
                ..
            } => match p {
                Packet::SynAck => {
                    if let (Some(t), false) = (syn_sent, is_resend) {
                        self.timeouts
                            .handshake_sample(now.saturating_duration_since(t), now);
                    }
                    self.connect(now, self.n);
                }
                Packet::Syn { n } if n > 0 => self.answer_syn(n, true),
                // Deviation (documented in the module): upstream fails the handshake here.
                // The client only sends DATA after it got our SYN, so it is connected and
                // its SYNACK was lost: we are connected too.
                Packet::Data { .. } => self.connect(now, self.n),
                Packet::Fin => {
                    self.peer_fin = true;
                    self.close_with(CloseReason::PeerFin, false);
                }
                _ => {}
            },
            State::Connected => self.handle_connected(now, p),
            State::Closed => {}
        }
        Ok(())
    }

    fn answer_syn(&mut self, n: u8, resend: bool) {
        if resend {
            self.timeouts.boost_handshake();
        }
        self.n = n;
        self.modulus = u16::from(n) + 1;
        self.out.retain(|o| !matches!(o, Out::Syn(_)));
        self.out.push_back(Out::Syn(n));
        self.state = State::ServerAwaitSynAck {
            syn_sent: None,
            is_resend: resend,
        };
    }

    fn handle_connected(&mut self, now: Instant, p: Packet<'_>) {
        // Any packet proves the peer alive. (Unlike upstream, only progress postpones
        // retransmission, see `on_ack`: a peer busy sending its own data must not keep our
        // lost packet from ever being resent.)
        let silent_for = self.last_heard.map(|t| now.saturating_duration_since(t));
        self.last_heard = Some(now);
        self.keepalive.heard(now);
        if !matches!(p, Packet::Syn { .. } | Packet::SynAck) {
            self.peer_progressed = true;
        }
        match p {
            Packet::Data {
                seq,
                final_chunk,
                is_ping,
                payload,
            } => {
                // A packet after a pause is not part of a resend burst (those arrive back
                // to back): it may be the peer's keepalive probe, which must be answered.
                let isolated = silent_for
                    .is_some_and(|d| d >= self.config.min_resend_timeout / ISOLATION_DIVISOR);
                let probe = is_ping || isolated;
                self.on_data(now, seq, final_chunk, is_ping, probe, payload)
            }
            Packet::Ack { seq } => self.on_ack(now, seq),
            Packet::Nack { seq } => self.on_nack(now, seq),
            Packet::Fin => {
                self.peer_fin = true;
                self.close_with(CloseReason::PeerFin, false);
            }
            Packet::Syn { .. } => match self.side {
                // The server answering a SYN we resent: harmless, our SYNACK is out.
                Side::Client => {}
                Side::Server => {
                    let recent = self.connected_at.is_some_and(|t| {
                        now.saturating_duration_since(t) < self.timeouts.handshake_timeout()
                    });
                    // A late duplicate right after the handshake is ignored. A SYN after
                    // the window, or (in order) after any other packet of the client's,
                    // means the client restarted: close so a fresh handshake can start.
                    let restarted = !recent || (self.config.fifo_transport && self.peer_progressed);
                    if restarted {
                        self.fail(ConnectionError::UnexpectedPacket(PacketKind::Syn));
                    }
                }
            },
            Packet::SynAck => match self.side {
                // Duplicate of the SYNACK that completed our handshake.
                Side::Server => {}
                Side::Client => self.fail(ConnectionError::UnexpectedPacket(PacketKind::SynAck)),
            },
        }
    }

    /// One DATA packet. `probe`: it is a ping, or it came after a pause (a keepalive probe
    /// when the peer had no window slot for a ping), so it is answered whatever the NACK
    /// rate limit says, or a live peer would look dead.
    fn on_data(
        &mut self,
        now: Instant,
        seq: u8,
        final_chunk: bool,
        is_ping: bool,
        probe: bool,
        payload: &[u8],
    ) {
        let app_full = self.inbox.len() >= usize::from(self.n);
        if seq != self.expected {
            if app_full {
                // We could not take the packet anyway: no NACK, no resend storm. A probe
                // still gets a sign of life (the duplicate ACK explained below).
                if probe && self.accepted_any {
                    let last = seq_add(self.expected, self.modulus - 1, self.modulus);
                    self.push_control(Out::Ack(last));
                }
                return;
            }
            // Probes are always answered so a live peer never looks dead because of the
            // NACK rate limit.
            let rto = self.timeouts.resend_timeout();
            // Deviation: the rate limit does not apply once we have sent nothing for a
            // resend timeout (that NACK was probably lost and the sender is probing).
            let quiet = self
                .last_sent
                .is_none_or(|t| now.saturating_duration_since(t) >= rto);
            let limited = !probe
                && !quiet
                && self.last_nack.is_some_and(|(s, t)| {
                    s == self.expected && now.saturating_duration_since(t) < rto.saturating_mul(2)
                });
            if !limited {
                self.last_nack = Some((self.expected, now));
                self.push_control(Out::Nack(self.expected));
            }
            return;
        }
        if !is_ping {
            if app_full {
                // Bounded memory: refuse without ACK; the peer retransmits later. A
                // duplicate ACK of the last accepted packet tells it we are alive (it is
                // outside its window, so it changes nothing else).
                self.stats.data_refused += 1;
                self.refused = true;
                if self.accepted_any {
                    let last = seq_add(self.expected, self.modulus - 1, self.modulus);
                    self.push_control(Out::Ack(last));
                }
                return;
            }
            if self.reassembly.len().saturating_add(payload.len()) > self.config.max_message_size {
                self.fail(ConnectionError::MessageTooLarge {
                    limit: self.config.max_message_size,
                });
                return;
            }
        }
        self.push_control(Out::Ack(seq));
        self.expected = seq_add(self.expected, 1, self.modulus);
        self.accepted_any = true;
        if is_ping {
            return;
        }
        if final_chunk {
            let msg = if self.reassembly.is_empty() {
                payload.to_vec()
            } else {
                let mut m = core::mem::take(&mut self.reassembly);
                m.extend_from_slice(payload);
                m
            };
            self.inbox.push_back(msg);
            self.stats.messages_received += 1;
        } else {
            self.reassembly.extend_from_slice(payload);
        }
    }

    fn contains(&self, seq: u8) -> bool {
        u16::from(seq) < self.modulus
            && self.base != self.top
            && seq_dist(self.base, seq, self.modulus) < seq_dist(self.base, self.top, self.modulus)
    }

    fn on_ack(&mut self, now: Instant, seq: u8) {
        if self.queue.is_empty() {
            return;
        }
        let rto = self.timeouts.sender_timeout();
        // On a FIFO transport the ACK of the last resent packet comes after every answer
        // to the original transmission, so nothing stale is left to wait out.
        let no_echoes = self.timeouts.fast() && self.config.fifo_transport;
        if let Some(s) = &mut self.sync
            && seq == s.expected_ack
            && s.after_ack.is_none()
        {
            s.after_ack = Some(if no_echoes { now } else { now + rto });
        }
        if !self.contains(seq) {
            return;
        }
        self.timeouts.progressed();
        let idx = usize::from(seq_dist(self.base, seq, self.modulus));
        if let Some(t) = self.queue.get(idx).and_then(|s| s.sample_from) {
            self.timeouts
                .data_sample(now.saturating_duration_since(t), now);
        }
        self.queue
            .drain(..=idx.min(self.queue.len().saturating_sub(1)));
        self.base = seq_add(seq, 1, self.modulus);
        if self.queue.is_empty() {
            self.resend_timer = None;
            self.deferred_resend = None;
        } else {
            self.resend_timer = Some(now);
        }
    }

    fn on_nack(&mut self, now: Instant, seq: u8) {
        if self.sync.is_some_and(|s| s.expected_nack == seq) {
            self.end_sync(now);
        }
        if seq == self.top {
            // The peer has everything we sent.
            self.timeouts.progressed();
            self.queue.clear();
            self.base = self.top;
            self.resend_timer = None;
            self.deferred_resend = None;
            return;
        }
        if !self.contains(seq) {
            return;
        }
        let idx = usize::from(seq_dist(self.base, seq, self.modulus));
        if idx > 0 {
            self.timeouts.progressed();
        }
        self.queue.drain(..idx.min(self.queue.len()));
        self.base = seq;
        if self.sync.is_some() && idx > 0 {
            // Deviation: the peer got part of the resent window and lost a later packet;
            // this NACK is news, not a delayed echo of the original loss, so waiting out
            // the sync (up to 3 × resend timeout of silence) only stalls both sides.
            self.resend_requested = true;
            self.end_sync(now);
        } else if self.sync.is_some() {
            self.resend_requested = true;
        } else {
            self.resend_queue(now);
        }
    }

    /// Retransmits the whole queue (rate-limited to once per handshake timeout, or per
    /// smoothed RTT with fast recovery) and starts the sync wait; restarts the resend
    /// timer either way.
    fn resend_queue(&mut self, now: Instant) {
        let spacing = self.timeouts.resend_spacing();
        let too_soon = self
            .last_resend
            .is_some_and(|t| now.saturating_duration_since(t) < spacing);
        if too_soon {
            // Do it as soon as the spacing allows rather than a whole timeout later.
            self.deferred_resend = self.last_resend.map(|t| t + spacing);
        }
        if !too_soon && !self.queue.is_empty() {
            self.deferred_resend = None;
            self.last_resend = Some(now);
            self.out.retain(|o| !matches!(o, Out::Data(_)));
            for s in &mut self.queue {
                s.sample_from = None;
                self.out.push_back(Out::Data(s.seq));
            }
            self.stats.resends += 1;
            self.timeouts.boost_resend(now);
            let rto = self.timeouts.sender_timeout();
            self.sync = Some(SyncWait {
                expected_ack: seq_add(self.top, self.modulus - 1, self.modulus),
                expected_nack: self.top,
                deadline: now + rto.saturating_mul(3),
                after_ack: None,
            });
        }
        if !self.queue.is_empty() {
            self.resend_timer = Some(now);
        }
    }

    fn end_sync(&mut self, now: Instant) {
        self.sync = None;
        if !self.queue.is_empty() {
            self.resend_timer = Some(now);
        }
        if core::mem::take(&mut self.resend_requested) {
            self.resend_queue(now);
        }
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let hs = self.timeouts.handshake_timeout();
        match self.state {
            State::ClientSyn { syn_sent, .. } | State::ServerAwaitSynAck { syn_sent, .. } => {
                syn_sent.map(|t| t + hs)
            }
            State::ServerAwaitSyn { .. } | State::Closed => None,
            State::Connected => {
                let resend = match self.sync {
                    Some(s) => Some(s.after_ack.map_or(s.deadline, |a| a.min(s.deadline))),
                    None => {
                        let timer = self
                            .resend_timer
                            .map(|t| t + self.timeouts.sender_timeout());
                        let deferred = self.deferred_resend.filter(|_| !self.queue.is_empty());
                        timer.into_iter().chain(deferred).min()
                    }
                };
                [resend, self.keepalive.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
            }
        }
    }

    /// Runs every timer that expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let hs = self.timeouts.handshake_timeout();
        match self.state {
            State::ClientSyn {
                syn_sent: Some(t), ..
            } if now >= t + hs => {
                self.timeouts.boost_handshake();
                self.state = State::ClientSyn {
                    syn_sent: None,
                    is_resend: true,
                };
                self.out.retain(|o| !matches!(o, Out::Syn(_)));
                self.out.push_back(Out::Syn(self.n));
            }
            State::ServerAwaitSynAck {
                syn_sent: Some(t), ..
            } if now >= t + hs => {
                self.out.retain(|o| !matches!(o, Out::Syn(_)));
                self.state = State::ServerAwaitSyn { resent: true };
            }
            State::Connected => self.connected_timeout(now),
            _ => {}
        }
    }

    fn connected_timeout(&mut self, now: Instant) {
        if let Some(s) = self.sync
            && (now >= s.deadline || s.after_ack.is_some_and(|t| now >= t))
        {
            self.end_sync(now);
        }
        if self.sync.is_none() {
            let timer = self
                .resend_timer
                .is_some_and(|t| now >= t + self.timeouts.sender_timeout());
            let deferred = !self.queue.is_empty() && self.deferred_resend.is_some_and(|t| now >= t);
            if timer {
                self.timeouts.timer_resend();
            }
            if timer || deferred {
                self.deferred_resend = None;
                self.resend_queue(now);
            }
        }
        match self.keepalive.on_timeout(now, self.timeouts.srtt()) {
            Some(Action::Probe) => self.probe(),
            Some(Action::Dead) => self.close_with(CloseReason::KeepaliveTimeout, true),
            None => {}
        }
    }

    /// Sends one keepalive probe (even during a sync wait, which can be long under loss),
    /// a packet the peer answers whatever state it is in: a new ping in the slot kept free
    /// for it, else the unanswered ping again, else (an in-flight limit of 1 leaves no slot
    /// while DATA is unacknowledged) the oldest unacknowledged DATA packet again. All three
    /// are ordinary GBN packets to a Go peer.
    fn probe(&mut self) {
        if !self.is_connected() {
            return;
        }
        let resend = if let Some(p) = self.queue.iter_mut().find(|s| s.is_ping) {
            Some(p)
        } else if self.queue.len() < self.in_flight_limit() {
            None
        } else {
            self.queue.front_mut()
        };
        match resend {
            Some(p) => {
                // Karn's rule: no RTT sample from a retransmitted packet.
                p.sample_from = None;
                let seq = p.seq;
                if !self.out.contains(&Out::Data(seq)) {
                    self.out.push_back(Out::Data(seq));
                }
            }
            None => {
                self.push_data(false, true, Vec::new());
                self.out.push_back(Out::Data(self.top_minus_one()));
            }
        }
        self.stats.pings_sent += 1;
    }

    fn top_minus_one(&self) -> u8 {
        seq_add(self.top, self.modulus - 1, self.modulus)
    }

    fn push_data(&mut self, final_chunk: bool, is_ping: bool, payload: Vec<u8>) {
        self.queue.push_back(Sent {
            seq: self.top,
            final_chunk,
            is_ping,
            payload,
            transmitted: false,
            sample_from: None,
            last_tx: None,
        });
        self.top = seq_add(self.top, 1, self.modulus);
    }

    /// Takes the next chunk of the backlogged message.
    fn next_chunk(&mut self) -> Option<(bool, Vec<u8>)> {
        let (msg, offset) = self.backlog.as_mut()?;
        let chunk = self.config.max_chunk_size;
        let remaining = msg.len().saturating_sub(*offset);
        if chunk == 0 || remaining <= chunk {
            let payload = if *offset == 0 {
                core::mem::take(msg)
            } else {
                msg.get(*offset..).unwrap_or_default().to_vec()
            };
            self.backlog = None;
            if core::mem::take(&mut self.blocked) {
                self.events.push_back(Event::Writable);
            }
            return Some((true, payload));
        }
        let end = *offset + chunk;
        let payload = msg.get(*offset..end).unwrap_or_default().to_vec();
        *offset = end;
        Some((false, payload))
    }

    /// The transport that carried our packets was replaced at `now`: its relay stream
    /// failed (a relay instance died, a connection dropped) and the driver opened a new
    /// one. The old stream may have swallowed what was queued on it, so the packets whose
    /// loss would stall the peer are sent again at once, ahead of anything else, instead
    /// of after the peer's ≥ 1 s resend timeout: the newest ACK and the unacknowledged
    /// DATA, as sent within [`REPLAY_AGE`], in send order. Only these, because sequence
    /// numbers run mod N+1: an older DATA or ACK replayed after the window moved on could
    /// be taken for a current one (seen as Noise failures after a relay instance crashed).
    /// GBN ignores duplicates, so a replay of a packet that did arrive is harmless.
    ///
    /// `lost_all`: the old stream is known to have delivered nothing (the relay refuses a
    /// write stream at its first message, e.g. "stream not found" while the peer has not
    /// created its mailbox yet). Then the SYN of a handshake still open is sent again too,
    /// rather than at the 2 s handshake resend; it cannot arrive late, since nothing on a
    /// refused stream is delivered.
    pub fn handle_transport_reopened(&mut self, now: Instant, lost_all: bool) {
        let recent = |at: Instant| now.saturating_duration_since(at) <= REPLAY_AGE;
        let mut replay: Vec<(Instant, Vec<u8>)> = Vec::new();
        if let Some((seq, at)) = self.last_ack_sent
            && recent(at)
        {
            let mut p = Vec::new();
            Packet::Ack { seq }.encode(&mut p);
            replay.push((at, p));
        }
        for s in &self.queue {
            if let Some(at) = s.last_tx
                && recent(at)
            {
                let mut p = Vec::new();
                s.encode(&mut p);
                replay.push((at, p));
            }
        }
        // Send order; the sort is stable, so equal times keep the ACK first.
        replay.sort_by_key(|(at, _)| *at);
        for (_, p) in replay.into_iter().rev() {
            self.out.push_front(Out::Replay(p));
        }
        if lost_all
            && let State::ClientSyn {
                syn_sent: Some(_), ..
            }
            | State::ServerAwaitSynAck {
                syn_sent: Some(_), ..
            } = self.state
        {
            let mut p = Vec::new();
            Packet::Syn { n: self.n }.encode(&mut p);
            self.out.push_front(Out::Replay(p));
        }
    }

    /// Writes the next packet to send into `buf` (cleared first); false when there is
    /// nothing to send. Call until it returns false after every input.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        if !self.out.is_empty() {
            self.last_sent = Some(now);
        }
        while let Some(o) = self.out.pop_front() {
            let p = match o {
                Out::Syn(n) => {
                    if let State::ClientSyn { syn_sent, .. }
                    | State::ServerAwaitSynAck { syn_sent, .. } = &mut self.state
                    {
                        *syn_sent = Some(now);
                    }
                    Packet::Syn { n }
                }
                Out::SynAck => Packet::SynAck,
                Out::Ack(seq) => {
                    self.stats.acks_sent += 1;
                    self.last_ack_sent = Some((seq, now));
                    Packet::Ack { seq }
                }
                Out::Nack(seq) => {
                    self.stats.nacks_sent += 1;
                    Packet::Nack { seq }
                }
                Out::Fin => Packet::Fin,
                Out::Encoded(p) => {
                    buf.extend_from_slice(&p);
                    self.stats.data_sent += 1;
                    self.stats.packets_sent += 1;
                    return true;
                }
                Out::Replay(p) => {
                    buf.extend_from_slice(&p);
                    self.stats.packets_sent += 1;
                    return true;
                }
                Out::Data(seq) => {
                    if !self.contains(seq) {
                        continue; // acknowledged meanwhile
                    }
                    let idx = usize::from(seq_dist(self.base, seq, self.modulus));
                    let Some(s) = self.queue.get_mut(idx) else {
                        continue;
                    };
                    if s.transmitted {
                        self.stats.data_resent += 1;
                    } else {
                        s.transmitted = true;
                        s.sample_from = Some(now);
                        self.stats.data_sent += 1;
                    }
                    s.last_tx = Some(now);
                    if self.resend_timer.is_none() {
                        self.resend_timer = Some(now);
                    }
                    s.encode(buf);
                    self.stats.packets_sent += 1;
                    return true;
                }
            };
            p.encode(buf);
            self.stats.packets_sent += 1;
            return true;
        }
        if self.can_admit()
            && let Some((final_chunk, payload)) = self.next_chunk()
        {
            self.push_data(final_chunk, false, payload);
            self.out.push_front(Out::Data(self.top_minus_one()));
            return self.poll_transmit(now, buf);
        }
        false
    }
}
