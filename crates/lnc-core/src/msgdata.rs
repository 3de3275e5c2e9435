//! The `MsgData` frame: how one mailbox write travels inside one go-back-N message.
//!
//! Go's mailbox connection (`connKit`) wraps every `Write` as
//! `version (1 byte, 0) ‖ BE32(len) ‖ payload` and sends it as one gbn message; the reader
//! unwraps it and serves the payload as a byte stream. The Noise handshake relies on the
//! boundaries (one act = one frame), the transport does not (one Noise record = two frames:
//! the 18-byte encrypted length, then the body).
//!
//! # Receiving: what we accept
//!
//! The declared length comes from the peer, so it is checked against a cap
//! ([`DEFAULT_MAX_PAYLOAD_LEN`] = 1 MiB unless configured) **before** anything is sized from
//! it. Decoding borrows the payload from the frame and never allocates.
//!
//! Like Go (`MsgData.Deserialize`), and for the same reason, two things are accepted and
//! reported rather than refused:
//! * a **non-zero version byte** — Go never checks it, so a future version can only ever
//!   extend the frame compatibly; refusing it would make us the one implementation that
//!   breaks. It is returned in [`MsgData::version`] for diagnostics.
//! * **trailing bytes** after the declared payload — ignored by Go too; they are dropped and
//!   counted in [`MsgData::trailing_len`]. Dropping them is safe: the payload is Noise
//!   ciphertext, authenticated on its own.
//!
//! # Sending
//!
//! We only ever emit version 0 with no trailing bytes, exactly what Go emits.

/// The only version we send (Go's `ProtocolVersion`).
pub const VERSION: u8 = 0;
/// Version byte + 4-byte big-endian length.
pub const HEADER_LEN: usize = 5;
/// Default cap on a payload we accept or send: 1 MiB. Go never writes more than ~32 KiB +
/// overhead per frame, so this only stops a peer from making us buffer gigabytes.
pub const DEFAULT_MAX_PAYLOAD_LEN: u32 = 1 << 20;

/// Why a `MsgData` frame was refused. Each one means the peer (or the relay) sent a corrupt
/// frame; the connection cannot continue from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgDataError {
    /// Fewer than 5 bytes: not even a header.
    #[error(
        "mailbox MsgData: frame of {len} bytes is shorter than the 5-byte header; the peer sent a corrupt message"
    )]
    TooShort {
        /// Length of the frame received.
        len: usize,
    },
    /// The payload length is above the configured cap (decoding: as declared by the peer;
    /// encoding: of our own payload).
    #[error(
        "mailbox MsgData: payload of {len} bytes exceeds the {max}-byte limit; the peer is misbehaving or the limit is too low"
    )]
    TooLarge {
        /// The payload length.
        len: u64,
        /// The configured cap.
        max: u32,
    },
    /// The header declares more payload than the frame holds.
    #[error(
        "mailbox MsgData: header declares {declared} payload bytes but only {available} follow; the message was truncated"
    )]
    Truncated {
        /// Payload length from the header.
        declared: u32,
        /// Bytes after the header.
        available: usize,
    },
}

/// A decoded frame, borrowing its payload from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgData<'a> {
    /// The version byte as received (we send 0; any value is accepted, as by Go).
    pub version: u8,
    /// The payload.
    pub payload: &'a [u8],
    /// Bytes after the payload that were ignored (0 from every known implementation).
    pub trailing_len: usize,
}

/// Encoder/decoder with a payload cap. `MsgDataCodec::default()` uses 1 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgDataCodec {
    max_payload_len: u32,
}

impl Default for MsgDataCodec {
    fn default() -> Self {
        MsgDataCodec {
            max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
        }
    }
}

impl MsgDataCodec {
    /// A codec that accepts and sends payloads of at most `max_payload_len` bytes.
    pub const fn with_max_payload_len(max_payload_len: u32) -> Self {
        MsgDataCodec { max_payload_len }
    }

    /// The configured cap.
    pub const fn max_payload_len(&self) -> u32 {
        self.max_payload_len
    }

    /// Decodes one frame (one gbn message). Checks, in order: header present, declared
    /// length within the cap, payload present. Never allocates.
    pub fn decode<'a>(&self, frame: &'a [u8]) -> Result<MsgData<'a>, MsgDataError> {
        let (&version, rest) = frame
            .split_first()
            .ok_or(MsgDataError::TooShort { len: frame.len() })?;
        let (len_bytes, body) = rest
            .split_first_chunk::<4>()
            .ok_or(MsgDataError::TooShort { len: frame.len() })?;
        let declared = u32::from_be_bytes(*len_bytes);
        if declared > self.max_payload_len {
            return Err(MsgDataError::TooLarge {
                len: u64::from(declared),
                max: self.max_payload_len,
            });
        }
        let truncated = MsgDataError::Truncated {
            declared,
            available: body.len(),
        };
        let n = usize::try_from(declared).map_err(|_| truncated.clone())?;
        let (payload, trailing) = body.split_at_checked(n).ok_or(truncated)?;
        Ok(MsgData {
            version,
            payload,
            trailing_len: trailing.len(),
        })
    }

    /// Appends the frame for `payload` to `out` (version 0, exact length, nothing after).
    /// Refuses payloads above the cap, which our own peers would refuse to receive.
    pub fn encode_into(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), MsgDataError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| l <= self.max_payload_len)
            .ok_or(MsgDataError::TooLarge {
                len: payload.len() as u64,
                max: self.max_payload_len,
            })?;
        out.reserve(HEADER_LEN + payload.len());
        out.push(VERSION);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
        Ok(())
    }

    /// The frame for `payload` as a new buffer.
    pub fn encode(&self, payload: &[u8]) -> Result<Vec<u8>, MsgDataError> {
        let mut out = Vec::new();
        self.encode_into(payload, &mut out)?;
        Ok(out)
    }
}

/// Decodes a frame with the default 1 MiB cap.
pub fn decode(frame: &[u8]) -> Result<MsgData<'_>, MsgDataError> {
    MsgDataCodec::default().decode(frame)
}

/// Encodes a frame with the default 1 MiB cap.
pub fn encode(payload: &[u8]) -> Result<Vec<u8>, MsgDataError> {
    MsgDataCodec::default().encode(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_like_go() {
        assert_eq!(encode(b"").unwrap(), [0, 0, 0, 0, 0]);
        assert_eq!(encode(b"abc").unwrap(), [0, 0, 0, 0, 3, b'a', b'b', b'c']);
        let p = vec![7u8; 300];
        let f = encode(&p).unwrap();
        assert_eq!(&f[..5], &[0, 0, 0, 1, 44]);
        assert_eq!(&f[5..], &p[..]);
        let mut out = vec![9];
        MsgDataCodec::default().encode_into(b"x", &mut out).unwrap();
        assert_eq!(out, [9, 0, 0, 0, 0, 1, b'x']);
    }

    #[test]
    fn decodes_and_reports_quirks() {
        let m = decode(&[0, 0, 0, 0, 2, 1, 2]).unwrap();
        assert_eq!(
            m,
            MsgData {
                version: 0,
                payload: &[1, 2],
                trailing_len: 0
            }
        );
        // Non-zero version and trailing bytes are accepted, as by Go, and reported.
        let m = decode(&[7, 0, 0, 0, 1, 1, 2, 3]).unwrap();
        assert_eq!(
            m,
            MsgData {
                version: 7,
                payload: &[1],
                trailing_len: 2
            }
        );
        assert_eq!(decode(&[0, 0, 0, 0, 0]).unwrap().payload, b"");
    }

    #[test]
    fn decode_errors() {
        for n in 0..5 {
            assert_eq!(
                decode(&[0u8; 5][..n]),
                Err(MsgDataError::TooShort { len: n })
            );
        }
        assert_eq!(
            decode(&[0, 0, 0, 0, 3, 1, 2]),
            Err(MsgDataError::Truncated {
                declared: 3,
                available: 2
            })
        );
        // The cap is checked before the (missing) payload: a 4 GiB claim in 5 bytes.
        assert_eq!(
            decode(&[0, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgDataError::TooLarge {
                len: u64::from(u32::MAX),
                max: DEFAULT_MAX_PAYLOAD_LEN
            })
        );
        let at_cap = (DEFAULT_MAX_PAYLOAD_LEN).to_be_bytes();
        assert_eq!(
            decode(&[0, at_cap[0], at_cap[1], at_cap[2], at_cap[3]]),
            Err(MsgDataError::Truncated {
                declared: DEFAULT_MAX_PAYLOAD_LEN,
                available: 0
            })
        );
        let small = MsgDataCodec::with_max_payload_len(2);
        assert_eq!(small.max_payload_len(), 2);
        assert!(small.decode(&[0, 0, 0, 0, 2, 1, 2]).is_ok());
        assert_eq!(
            small.decode(&[0, 0, 0, 0, 3, 1, 2, 3]),
            Err(MsgDataError::TooLarge { len: 3, max: 2 })
        );
        assert_eq!(
            small.encode(&[1, 2, 3]),
            Err(MsgDataError::TooLarge { len: 3, max: 2 })
        );
        // Messages name the layer.
        assert!(
            decode(&[])
                .unwrap_err()
                .to_string()
                .starts_with("mailbox MsgData:")
        );
    }

    #[test]
    fn default_cap_round_trip_at_limit() {
        let p = vec![0xa5u8; DEFAULT_MAX_PAYLOAD_LEN as usize];
        let f = encode(&p).unwrap();
        assert_eq!(decode(&f).unwrap().payload, &p[..]);
        let mut big = p;
        big.push(0);
        assert!(matches!(encode(&big), Err(MsgDataError::TooLarge { .. })));
    }

    proptest! {
        #[test]
        fn decode_small_declared_lengths(
            version in any::<u8>(),
            declared in 0u32..80,
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut frame = vec![version];
            frame.extend_from_slice(&declared.to_be_bytes());
            frame.extend_from_slice(&body);
            match decode(&frame) {
                Ok(m) => {
                    prop_assert_eq!(m.version, version);
                    prop_assert_eq!(m.payload, &body[..declared as usize]);
                    prop_assert_eq!(m.trailing_len, body.len() - declared as usize);
                }
                Err(e) => prop_assert_eq!(
                    e,
                    MsgDataError::Truncated { declared, available: body.len() }
                ),
            }
        }

        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let f = encode(&payload).unwrap();
            prop_assert_eq!(f.len(), HEADER_LEN + payload.len());
            let m = decode(&f).unwrap();
            prop_assert_eq!(m.version, VERSION);
            prop_assert_eq!(m.payload, &payload[..]);
            prop_assert_eq!(m.trailing_len, 0);
        }

        #[test]
        fn decode_never_panics(frame in proptest::collection::vec(any::<u8>(), 0..64), cap in any::<u32>()) {
            let codec = MsgDataCodec::with_max_payload_len(cap);
            if let Ok(m) = codec.decode(&frame) {
                prop_assert!(m.payload.len() as u64 <= u64::from(cap));
                prop_assert_eq!(HEADER_LEN + m.payload.len() + m.trailing_len, frame.len());
                // Re-encoding the payload gives the frame minus quirks.
                let re = codec.encode(m.payload).unwrap();
                prop_assert_eq!(&re[1..], &frame[1..frame.len() - m.trailing_len]);
            }
        }
    }
}
