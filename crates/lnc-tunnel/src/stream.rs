//! The handshake over a GBN connection, and the encrypted byte stream after it.
//!
//! Each handshake act is one MsgData frame in one GBN message, as Go expects. After the
//! handshake the Go reader treats the tunnel as a byte stream, so [`NoiseStream`]
//! coalesces everything written between two flushes (several HTTP/2 frames) into one
//! Noise record (header and body together) and one GBN message: one relay message per
//! flush instead of Go's two per write.

use crate::driver::{GbnError, GbnHandle};
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_util::ready;
use lnc_core::go_compat::RecordPlanner;
use lnc_core::msgdata::MsgDataCodec;
use lnc_core::noise::{
    Established, HandshakeError, KkInitiator, KkResponder, MAX_RECORD_PAYLOAD, NoiseConfig,
    RecordDecoder, TransportError, TransportSender, XxInitiator, XxResponder, record_len,
};
use lnc_core::pairing::HandshakeInputs;
use rand_core::CryptoRng;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a handshake over the tunnel failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeFailure {
    /// The GBN connection ended during the handshake.
    #[error(transparent)]
    Gbn(#[from] GbnError),
    /// The peer's act was not a valid MsgData frame.
    #[error("tunnel handshake: malformed MsgData frame from the peer: {0}")]
    MsgData(#[from] lnc_core::msgdata::MsgDataError),
    /// The Noise handshake itself failed (wrong phrase or keys, or an incompatible peer).
    #[error(transparent)]
    Noise(#[from] HandshakeError),
}

async fn send_act(gbn: &GbnHandle, act: &[u8]) -> Result<(), HandshakeFailure> {
    let frame = MsgDataCodec::default().encode(act)?;
    gbn.send(&frame).await?;
    Ok(())
}

async fn recv_act(gbn: &GbnHandle) -> Result<Vec<u8>, HandshakeFailure> {
    let msg = gbn.recv().await?;
    Ok(MsgDataCodec::default().decode(&msg)?.payload.to_vec())
}

/// Runs the app side (Noise initiator): XX with the phrase or KK with stored keys.
pub async fn initiate<G: CryptoRng + ?Sized>(
    gbn: &GbnHandle,
    inputs: &HandshakeInputs,
    config: &NoiseConfig,
    rng: &mut G,
) -> Result<Established, HandshakeFailure> {
    match inputs {
        HandshakeInputs::Xx { local_static, mask } => {
            let (hs, act1) = XxInitiator::new(config, local_static, mask, rng)?.write_act1()?;
            send_act(gbn, &act1).await?;
            let act2 = recv_act(gbn).await?;
            let (act3, est) = hs.read_act2(&act2)?.write_act3()?;
            send_act(gbn, &act3).await?;
            Ok(est)
        }
        HandshakeInputs::Kk {
            local_static,
            remote_static,
        } => {
            let (hs, act1) =
                KkInitiator::new(config, local_static, remote_static, rng)?.write_act1()?;
            send_act(gbn, &act1).await?;
            let act2 = recv_act(gbn).await?;
            Ok(hs.read_act2(&act2)?)
        }
    }
}

/// Runs the node side (Noise responder), sending `auth_data` in act 2.
pub async fn respond<G: CryptoRng + ?Sized>(
    gbn: &GbnHandle,
    inputs: &HandshakeInputs,
    auth_data: &[u8],
    config: &NoiseConfig,
    rng: &mut G,
) -> Result<Established, HandshakeFailure> {
    respond_tracked(gbn, inputs, auth_data, config, rng, &AtomicBool::new(false)).await
}

/// [`respond`], setting `act2_sent` once act 2 is on its way. A peer that stops after act 2
/// has still tested one password guess against the XX act 1 it sent (it can check act 2
/// offline), so the node counts such a stalled pairing as an attempt.
pub async fn respond_tracked<G: CryptoRng + ?Sized>(
    gbn: &GbnHandle,
    inputs: &HandshakeInputs,
    auth_data: &[u8],
    config: &NoiseConfig,
    rng: &mut G,
    act2_sent: &AtomicBool,
) -> Result<Established, HandshakeFailure> {
    match inputs {
        HandshakeInputs::Xx { local_static, mask } => {
            let hs = XxResponder::new(config, local_static, mask, auth_data, rng)?;
            let act1 = recv_act(gbn).await?;
            let (hs, act2) = hs.read_act1(&act1)?.write_act2()?;
            act2_sent.store(true, Ordering::Relaxed);
            send_act(gbn, &act2).await?;
            let act3 = recv_act(gbn).await?;
            Ok(hs.read_act3(&act3)?)
        }
        HandshakeInputs::Kk {
            local_static,
            remote_static,
        } => {
            let hs = KkResponder::new(config, local_static, remote_static, auth_data, rng)?;
            let act1 = recv_act(gbn).await?;
            let (act2, est) = hs.read_act1(&act1)?.write_act2()?;
            send_act(gbn, &act2).await?;
            Ok(est)
        }
    }
}

/// Most plaintext coalesced into one record (and one relay message): one full record.
/// Its relay message (≈ 65.6 KB) stays under a Go browser's 100 KiB JSON frame limit.
pub const MAX_COALESCE: usize = MAX_RECORD_PAYLOAD;

/// The encrypted byte stream over a GBN connection: futures-io `AsyncRead`/`AsyncWrite`
/// and hyper's `Read`/`Write`. Writes are buffered until flush (or one full record).
pub struct NoiseStream {
    gbn: GbnHandle,
    tx: TransportSender,
    rx: RecordDecoder,
    codec: MsgDataCodec,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    pending: Option<Vec<u8>>,
    /// Where records end (Go's reader: the HTTP/2 preface alone, ≤ 32 KiB each).
    planner: RecordPlanner,
    flush_yielded: bool,
    eof: bool,
}

impl core::fmt::Debug for NoiseStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NoiseStream").finish_non_exhaustive()
    }
}

fn io_err<E: std::error::Error + Send + Sync + 'static>(kind: io::ErrorKind, e: E) -> io::Error {
    io::Error::new(kind, e)
}

impl NoiseStream {
    /// Wraps an established handshake's transport over its GBN connection.
    pub fn new(gbn: GbnHandle, established: Established) -> Self {
        let (tx, rx) = established.transport.into_split();
        NoiseStream {
            gbn,
            tx,
            rx: RecordDecoder::new(rx),
            codec: MsgDataCodec::default(),
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            pending: None,
            planner: RecordPlanner::new(),
            flush_yielded: false,
            eof: false,
        }
    }

    /// The GBN connection underneath.
    pub fn gbn(&self) -> &GbnHandle {
        &self.gbn
    }

    /// Plaintext available to read, receiving the next message if needed.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        while self.rpos >= self.rbuf.len() && !self.eof {
            self.rbuf.clear();
            self.rpos = 0;
            match ready!(self.gbn.poll_recv(cx)) {
                Ok(msg) => {
                    let md = self
                        .codec
                        .decode(&msg)
                        .map_err(|e| io_err(io::ErrorKind::InvalidData, e))?;
                    let rbuf = &mut self.rbuf;
                    self.rx
                        .decode_all(md.payload, |p| rbuf.extend_from_slice(p))
                        .map_err(|e: TransportError| io_err(io::ErrorKind::InvalidData, e))?;
                }
                Err(GbnError::Closed(
                    lnc_core::gbn::CloseReason::Local | lnc_core::gbn::CloseReason::PeerFin,
                )) => self.eof = true,
                Err(e) => return Poll::Ready(Err(io_err(io::ErrorKind::ConnectionAborted, e))),
            }
        }
        Poll::Ready(Ok(self.rbuf.get(self.rpos..).unwrap_or_default()))
    }

    fn read_into(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let avail = ready!(self.poll_fill(cx))?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.rpos += n;
        Poll::Ready(Ok(n))
    }

    fn write_from(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.wbuf.len() >= MAX_COALESCE {
            ready!(self.flush_inner(cx))?;
        }
        let n = data.len().min(MAX_COALESCE - self.wbuf.len());
        self.wbuf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(m) = &self.pending {
                ready!(self.gbn.poll_send(cx, m))
                    .map_err(|e| io_err(io::ErrorKind::BrokenPipe, e))?;
                self.pending = None;
            }
            if self.wbuf.is_empty() {
                self.flush_yielded = false;
                return Poll::Ready(Ok(()));
            }
            if !self.flush_yielded && self.wbuf.len() < MAX_COALESCE {
                // Yield once before sealing: hyper writes a request's or response's
                // HEADERS, DATA and trailers from different tasks, each followed by a
                // flush; letting them run first puts them all in one record and one
                // relay message (ANCHORS: ≤ 2 relay messages per small call).
                self.flush_yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.flush_yielded = false;
            // Several records, one relay message: Go's mailbox conn reads a message as a
            // byte stream, but hands grpc-go one record per read (go_compat).
            let mut record = Vec::with_capacity(record_len(self.wbuf.len()) + 64);
            let mut rest = &self.wbuf[..];
            while !rest.is_empty() {
                let n = self.planner.next_record_len(rest);
                let (now, later) = rest.split_at(n);
                self.tx
                    .seal(now, &mut record)
                    .map_err(|e| io_err(io::ErrorKind::InvalidInput, e))?;
                rest = later;
            }
            self.wbuf.clear();
            self.pending = Some(
                self.codec
                    .encode(&record)
                    .map_err(|e| io_err(io::ErrorKind::InvalidInput, e))?,
            );
        }
    }

    fn close_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = ready!(self.flush_inner(cx));
        self.gbn.close();
        Poll::Ready(r)
    }
}

impl futures_io::AsyncRead for NoiseStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().read_into(cx, buf)
    }
}

impl futures_io::AsyncWrite for NoiseStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_from(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().flush_inner(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().close_inner(cx)
    }
}

impl hyper::rt::Read for NoiseStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let avail = ready!(this.poll_fill(cx))?;
        let n = avail.len().min(buf.remaining());
        buf.put_slice(&avail[..n]);
        this.rpos += n;
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for NoiseStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_from(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().flush_inner(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().close_inner(cx)
    }
}
