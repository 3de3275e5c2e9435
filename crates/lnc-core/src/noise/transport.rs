//! Transport records after the handshake (spec §6): brontide framing with key rotation.
//!
//! A record is `Enc(BE16(len))` (18 bytes) followed by `Enc(payload)` (`len + 16` bytes),
//! both with empty associated data, each consuming one nonce. Every 1000 AEAD operations a
//! direction rotates its key: `(salt', k') = HKDF(salt, k)`. Go peers count failed opens
//! too, and so do we.
//!
//! The two directions share nothing after [`Transport::into_split`], so a driver can seal on
//! one task and open on another without locks.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::Tag;
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::aead::inout::InOutBuf;
use zeroize::Zeroize;

use super::symmetric::{TAG_LEN, aead, hkdf2, nonce};

/// Largest plaintext one record can carry: the length header is a big-endian `u16`.
pub const MAX_RECORD_PAYLOAD: usize = u16::MAX as usize;
/// Size of the encrypted length header that starts every record (2 bytes + tag).
pub const RECORD_HEADER_LEN: usize = 2 + TAG_LEN;
/// Size of the encrypted body for a payload of `len` bytes.
pub const fn record_body_len(len: usize) -> usize {
    len + TAG_LEN
}
/// Total wire size of one record carrying `len` plaintext bytes.
pub const fn record_len(len: usize) -> usize {
    RECORD_HEADER_LEN + len + TAG_LEN
}
/// AEAD operations per key before rotation (`keyRotationInterval` upstream).
pub const KEY_ROTATION_INTERVAL: u64 = 1000;

/// Why a transport record could not be sealed or opened. After any open error the session
/// is dead: there is no way to resynchronise a brontide stream, so the remedy is to reconnect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// A single record carries at most 65535 bytes; use `seal_all` to split larger writes.
    #[error(
        "noise transport: payload of {len} bytes exceeds the 65535-byte record limit (split the write with seal_all)"
    )]
    PayloadTooLarge {
        /// The refused payload length.
        len: usize,
    },
    /// The caller's record buffer does not match the record layout.
    #[error("noise transport: record buffer is {got} bytes, expected {expected}")]
    BadRecordBuffer {
        /// Expected buffer length.
        expected: usize,
        /// Actual buffer length.
        got: usize,
    },
    /// The 18-byte length header failed authentication.
    #[error(
        "noise transport: record header failed authentication (corrupt, reordered or forged stream); reconnect to start a new session"
    )]
    HeaderAuthFailed,
    /// The record body failed authentication.
    #[error(
        "noise transport: record body failed authentication (corrupt or forged stream); reconnect to start a new session"
    )]
    BodyAuthFailed,
    /// `open_body` was called without a header, or `open_header` while a body was due.
    #[error("noise transport: {0} (the caller must alternate open_header and open_body)")]
    OutOfOrder(&'static str),
    /// The decoder hit an error earlier; the stream position is lost for good.
    #[error("noise transport: the record stream already failed; reconnect to start a new session")]
    Poisoned,
}

/// One direction's cipher state: key, rotation salt and nonce counter.
struct CipherState {
    key: [u8; 32],
    salt: [u8; 32],
    n: u64,
    aead: ChaCha20Poly1305,
}

impl CipherState {
    fn new(key: [u8; 32], salt: [u8; 32]) -> Self {
        CipherState {
            aead: aead(&key),
            key,
            salt,
            n: 0,
        }
    }

    /// Counts one AEAD operation (successful or not) and rotates at the interval.
    #[inline]
    fn advance(&mut self) {
        self.n += 1;
        if self.n == KEY_ROTATION_INTERVAL {
            let (salt, key) = hkdf2(&self.salt, &self.key);
            self.salt = salt;
            self.key = key;
            self.aead = aead(&self.key);
            self.n = 0;
        }
    }

    #[inline]
    fn seal(&mut self, buf: &mut [u8]) -> Tag {
        let tag = self
            .aead
            .encrypt_inout_detached(&nonce(self.n), &[], buf.into())
            // Only fails beyond 256 GiB; records are at most 64 KiB.
            .unwrap_or_default();
        self.advance();
        tag
    }

    #[inline]
    fn open(&mut self, buf: InOutBuf<'_, '_, u8>, tag: &[u8]) -> Result<(), ()> {
        let res = match Tag::try_from(tag) {
            Ok(tag) => self
                .aead
                .decrypt_inout_detached(&nonce(self.n), &[], buf, &tag)
                .map_err(|_| ()),
            Err(_) => Err(()),
        };
        self.advance();
        res
    }
}

impl Drop for CipherState {
    fn drop(&mut self) {
        self.key.zeroize();
        self.salt.zeroize();
    }
}

impl core::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CipherState")
            .field("key", &"<redacted>")
            .field("salt", &"<redacted>")
            .field("nonce", &self.n)
            .finish()
    }
}

/// What both directions of a transport expose alike: the nonce counter, and for tests
/// and fuzzing the key material and a constructor from it. Reusing a key with two senders
/// reuses nonces; production code gets both halves from a handshake only.
macro_rules! direction_accessors {
    ($ty:ident) => {
        impl $ty {
            /// Nonce counter of this direction (resets to 0 at every key rotation).
            pub fn nonce(&self) -> u64 {
                self.cs.n
            }

            /// Test-only: the current key.
            #[cfg(any(test, feature = "testing"))]
            pub fn key_for_tests(&self) -> [u8; 32] {
                self.cs.key
            }

            /// Test-only: the current rotation salt.
            #[cfg(any(test, feature = "testing"))]
            pub fn salt_for_tests(&self) -> [u8; 32] {
                self.cs.salt
            }

            /// Test/fuzz-only: this direction from raw key material.
            #[cfg(any(test, feature = "testing"))]
            pub fn from_raw_for_tests(key: [u8; 32], salt: [u8; 32]) -> Self {
                Self::new(key, salt)
            }
        }
    };
}

/// The sending half of a transport: turns plaintext into records.
#[derive(Debug)]
pub struct TransportSender {
    cs: CipherState,
}

impl TransportSender {
    pub(crate) fn new(key: [u8; 32], salt: [u8; 32]) -> Self {
        TransportSender {
            cs: CipherState::new(key, salt),
        }
    }

    /// Appends one record carrying `payload` (≤ 65535 bytes) to `out`. Used when the caller
    /// already frames its own messages; a Go peer reassembles records into a byte stream, so
    /// record boundaries carry no meaning for it.
    pub fn seal(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), TransportError> {
        let len = payload.len();
        let len16 = u16::try_from(len).map_err(|_| TransportError::PayloadTooLarge { len })?;
        out.reserve(record_len(len));
        let start = out.len();
        out.extend_from_slice(&len16.to_be_bytes());
        let tag = self.cs.seal(&mut out[start..]);
        out.extend_from_slice(&tag);
        let body = out.len();
        out.extend_from_slice(payload);
        let tag = self.cs.seal(&mut out[body..]);
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Seals one record into a fresh vector (`header ‖ body`; the header is the first
    /// [`RECORD_HEADER_LEN`] bytes, for drivers that send them as two mailbox messages as
    /// Go does).
    pub fn seal_to_vec(&mut self, payload: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut out = Vec::with_capacity(record_len(payload.len()));
        self.seal(payload, &mut out)?;
        Ok(out)
    }

    /// Seals an application write of any size as records of at most 65535 bytes each,
    /// appended to `out`; returns the number of records. An empty write produces no record.
    pub fn seal_all(&mut self, data: &[u8], out: &mut Vec<u8>) -> usize {
        let records = data.len().div_ceil(MAX_RECORD_PAYLOAD);
        out.reserve(data.len() + records * (RECORD_HEADER_LEN + TAG_LEN));
        for chunk in data.chunks(MAX_RECORD_PAYLOAD) {
            // Each chunk is ≤ MAX_RECORD_PAYLOAD, so seal cannot fail.
            let _ = self.seal(chunk, out);
        }
        records
    }

    /// Seals a record in place, without copying the payload. `record` must be laid out as
    /// `[18 spare bytes][payload][16 spare bytes]` (length [`record_len`]`(payload_len)`);
    /// afterwards it holds the wire record.
    pub fn seal_in_place(&mut self, record: &mut [u8]) -> Result<(), TransportError> {
        let Some(len) = record.len().checked_sub(RECORD_HEADER_LEN + TAG_LEN) else {
            return Err(TransportError::BadRecordBuffer {
                expected: RECORD_HEADER_LEN + TAG_LEN,
                got: record.len(),
            });
        };
        let len16 = u16::try_from(len).map_err(|_| TransportError::PayloadTooLarge { len })?;
        let (hdr, body) = record.split_at_mut(RECORD_HEADER_LEN);
        let (hdr_pt, hdr_tag) = hdr.split_at_mut(2);
        hdr_pt.copy_from_slice(&len16.to_be_bytes());
        hdr_tag.copy_from_slice(&self.cs.seal(hdr_pt));
        let (body_pt, body_tag) = body.split_at_mut(len);
        body_tag.copy_from_slice(&self.cs.seal(body_pt));
        Ok(())
    }
}

direction_accessors!(TransportSender);

/// The receiving half of a transport: opens records (see also [`RecordDecoder`]).
#[derive(Debug)]
pub struct TransportReceiver {
    cs: CipherState,
    /// Body length (with tag) announced by the last header, while its body is due.
    pending_body: Option<usize>,
}

impl TransportReceiver {
    pub(crate) fn new(key: [u8; 32], salt: [u8; 32]) -> Self {
        TransportReceiver {
            cs: CipherState::new(key, salt),
            pending_body: None,
        }
    }

    /// Opens the 18-byte encrypted header and returns the body length **including** the
    /// 16-byte tag, i.e. how many bytes to read next.
    pub fn open_header(
        &mut self,
        header: &[u8; RECORD_HEADER_LEN],
    ) -> Result<usize, TransportError> {
        if self.pending_body.is_some() {
            return Err(TransportError::OutOfOrder(
                "header opened while a body was due",
            ));
        }
        let mut len = [0u8; 2];
        let (ct, tag) = header.split_at(2);
        let buf = InOutBuf::new(ct, &mut len).map_err(|_| TransportError::HeaderAuthFailed)?;
        self.cs
            .open(buf, tag)
            .map_err(|_| TransportError::HeaderAuthFailed)?;
        let body = record_body_len(usize::from(u16::from_be_bytes(len)));
        self.pending_body = Some(body);
        Ok(body)
    }

    fn take_pending(&mut self, got: usize) -> Result<usize, TransportError> {
        match self.pending_body {
            None => Err(TransportError::OutOfOrder("body opened before its header")),
            Some(expected) if expected != got => {
                Err(TransportError::BadRecordBuffer { expected, got })
            }
            Some(expected) => {
                self.pending_body = None;
                Ok(expected - TAG_LEN)
            }
        }
    }

    /// Opens the body announced by the last header, in place; returns the plaintext.
    pub fn open_body<'a>(&mut self, body: &'a mut [u8]) -> Result<&'a mut [u8], TransportError> {
        let len = self.take_pending(body.len())?;
        let (pt, tag) = body.split_at_mut(len);
        self.cs
            .open(pt.into(), tag)
            .map_err(|_| TransportError::BodyAuthFailed)?;
        Ok(pt)
    }

    /// Opens the body from `body` (ciphertext ‖ tag) into `out` (exactly `len` bytes)
    /// without an intermediate copy.
    fn open_body_into(&mut self, body: &[u8], out: &mut [u8]) -> Result<(), TransportError> {
        let len = self.take_pending(body.len())?;
        let (ct, tag) = body.split_at(len);
        let buf = InOutBuf::new(ct, out).map_err(|_| TransportError::BodyAuthFailed)?;
        self.cs
            .open(buf, tag)
            .map_err(|_| TransportError::BodyAuthFailed)
    }

    /// Opens one whole record (`header ‖ body`) in place and returns its plaintext.
    pub fn open_in_place<'a>(
        &mut self,
        record: &'a mut [u8],
    ) -> Result<&'a mut [u8], TransportError> {
        if record.len() < RECORD_HEADER_LEN {
            return Err(TransportError::BadRecordBuffer {
                expected: RECORD_HEADER_LEN + TAG_LEN,
                got: record.len(),
            });
        }
        let (hdr, body) = record.split_at_mut(RECORD_HEADER_LEN);
        let mut h = [0u8; RECORD_HEADER_LEN];
        h.copy_from_slice(hdr);
        let want = self.open_header(&h)?;
        if body.len() != want {
            // The header was consumed; the record can no longer be opened.
            self.pending_body = None;
            return Err(TransportError::BadRecordBuffer {
                expected: RECORD_HEADER_LEN + want,
                got: RECORD_HEADER_LEN + body.len(),
            });
        }
        self.open_body(body)
    }
}

direction_accessors!(TransportReceiver);

/// The transport state a finished handshake yields: one cipher per direction.
#[derive(Debug)]
pub struct Transport {
    sender: TransportSender,
    receiver: TransportReceiver,
}

impl Transport {
    /// Builds both directions from `Split()`. The initiator sends with `k1`, the responder
    /// with `k2`; both start with salt = the final chaining key (spec §5.6).
    pub(crate) fn from_split(initiator: bool, k1: [u8; 32], k2: [u8; 32], ck: [u8; 32]) -> Self {
        let (send, recv) = if initiator { (k1, k2) } else { (k2, k1) };
        Transport {
            sender: TransportSender::new(send, ck),
            receiver: TransportReceiver::new(recv, ck),
        }
    }

    /// Separates the directions so that reading and writing can run on different tasks.
    pub fn into_split(self) -> (TransportSender, TransportReceiver) {
        (self.sender, self.receiver)
    }

    /// The sending direction.
    pub fn sender(&mut self) -> &mut TransportSender {
        &mut self.sender
    }

    /// The receiving direction.
    pub fn receiver(&mut self) -> &mut TransportReceiver {
        &mut self.receiver
    }
}

/// One step of [`RecordDecoder::decode`].
#[derive(Debug)]
pub struct Decoded<'a> {
    /// How many input bytes were used; the caller passes the rest in the next call.
    pub consumed: usize,
    /// The plaintext of the record that this step completed, if any.
    pub plaintext: Option<&'a [u8]>,
}

/// Incremental record decoder for a byte stream that arrives in arbitrary chunks (the
/// mailbox delivers Go's header and body as separate messages, and gbn may split further).
///
/// Memory is bounded: it never buffers more than one record (≤ 65535 + 16 bytes) and it
/// consumes input only up to the end of the current record, so the caller applies
/// back-pressure simply by not feeding more.
pub struct RecordDecoder {
    rx: TransportReceiver,
    hdr: [u8; RECORD_HEADER_LEN],
    hdr_have: usize,
    /// Body length with tag, once the header is open.
    body_len: Option<usize>,
    body_have: usize,
    buf: Vec<u8>,
    poisoned: bool,
}

impl RecordDecoder {
    /// Wraps the receiving half of a transport.
    pub fn new(rx: TransportReceiver) -> Self {
        RecordDecoder {
            rx,
            hdr: [0u8; RECORD_HEADER_LEN],
            hdr_have: 0,
            body_len: None,
            body_have: 0,
            buf: Vec::new(),
            poisoned: false,
        }
    }

    /// Feeds bytes; consumes at most up to the end of the current record and returns the
    /// record's plaintext when it completes. Call again with `&input[consumed..]` until the
    /// input is used up. Any error is final (the stream cannot be resynchronised).
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded<'_>, TransportError> {
        if self.poisoned {
            return Err(TransportError::Poisoned);
        }
        match self.step(input) {
            Ok((consumed, Some(len))) => Ok(Decoded {
                consumed,
                plaintext: self.buf.get(..len),
            }),
            Ok((consumed, None)) => Ok(Decoded {
                consumed,
                plaintext: None,
            }),
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    /// Decodes all of `input`, calling `on_plaintext` for each completed record.
    pub fn decode_all(
        &mut self,
        mut input: &[u8],
        mut on_plaintext: impl FnMut(&[u8]),
    ) -> Result<(), TransportError> {
        while !input.is_empty() {
            let d = self.decode(input)?;
            if let Some(p) = d.plaintext {
                on_plaintext(p);
            }
            input = input.get(d.consumed..).unwrap_or_default();
        }
        Ok(())
    }

    /// True when no partial record is buffered (a clean place to stop reading).
    pub fn is_at_record_boundary(&self) -> bool {
        self.hdr_have == 0 && self.body_len.is_none()
    }

    /// Gives the receiver back (e.g. to inspect its nonce).
    pub fn into_inner(self) -> TransportReceiver {
        let mut this = self;
        let rx = TransportReceiver::new([0u8; 32], [0u8; 32]);
        core::mem::replace(&mut this.rx, rx)
    }

    /// Returns `(consumed, Some(plaintext_len))` when a record completed.
    fn step(&mut self, input: &[u8]) -> Result<(usize, Option<usize>), TransportError> {
        let mut consumed = 0;
        let total = match self.body_len {
            Some(t) => t,
            None => {
                let take = (RECORD_HEADER_LEN - self.hdr_have).min(input.len());
                self.hdr[self.hdr_have..self.hdr_have + take].copy_from_slice(&input[..take]);
                self.hdr_have += take;
                consumed += take;
                if self.hdr_have < RECORD_HEADER_LEN {
                    return Ok((consumed, None));
                }
                self.hdr_have = 0;
                let total = self.rx.open_header(&self.hdr)?;
                self.body_len = Some(total);
                self.body_have = 0;
                if self.buf.len() < total {
                    self.buf.resize(total, 0);
                }
                total
            }
        };
        let rest = &input[consumed..];
        let len = total - TAG_LEN;
        if self.body_have == 0 && rest.len() >= total {
            // Fast path: the whole body is here; decrypt straight into our buffer.
            self.body_len = None;
            self.rx
                .open_body_into(&rest[..total], &mut self.buf[..len])?;
            return Ok((consumed + total, Some(len)));
        }
        let take = (total - self.body_have).min(rest.len());
        self.buf[self.body_have..self.body_have + take].copy_from_slice(&rest[..take]);
        self.body_have += take;
        consumed += take;
        if self.body_have < total {
            return Ok((consumed, None));
        }
        self.body_len = None;
        self.body_have = 0;
        self.rx.open_body(&mut self.buf[..total])?;
        Ok((consumed, Some(len)))
    }
}

impl Drop for RecordDecoder {
    fn drop(&mut self) {
        // Buffered plaintext may hold credentials (gRPC metadata carries the macaroon).
        self.buf.zeroize();
    }
}

impl core::fmt::Debug for RecordDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordDecoder")
            .field("rx", &self.rx)
            .field("hdr_have", &self.hdr_have)
            .field("body_len", &self.body_len)
            .field("body_have", &self.body_have)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}
