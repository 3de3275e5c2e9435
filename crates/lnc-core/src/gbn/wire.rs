//! GBN packet codec (transport.md §1.1).
//!
//! One packet is exactly one mailbox message (`CipherBox.msg`); there is no length prefix,
//! the packet length is the message length. Decoding follows what the Go reference accepts
//! (booleans are `byte == 0x01`, trailing bytes after fixed-size packets are ignored) except
//! that a DATA packet shorter than its 4-byte header is an error instead of a panic.
//! Encoding is canonical: booleans are always `0x00`/`0x01`.

use thiserror::Error;

/// Type byte of SYN.
pub const TYPE_SYN: u8 = 0x01;
/// Type byte of DATA.
pub const TYPE_DATA: u8 = 0x02;
/// Type byte of ACK.
pub const TYPE_ACK: u8 = 0x03;
/// Type byte of NACK.
pub const TYPE_NACK: u8 = 0x04;
/// Type byte of FIN.
pub const TYPE_FIN: u8 = 0x05;
/// Type byte of SYNACK.
pub const TYPE_SYNACK: u8 = 0x06;

/// Length of the DATA header (type, seq, final-chunk flag, ping flag). A Go receiver
/// panics on a shorter DATA packet, so we never emit one (the encoder always writes the
/// full header).
pub const DATA_HEADER_LEN: usize = 4;

/// One GBN packet, borrowing its payload from the received buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Handshake: the client proposes window size `n`, the server echoes it.
    Syn {
        /// Window size N (sequence numbers run mod N+1).
        n: u8,
    },
    /// The client's handshake confirmation.
    SynAck,
    /// One sequenced chunk of an application message, or a keepalive ping.
    Data {
        /// Sequence number mod N+1.
        seq: u8,
        /// Last chunk of a message: the receiver delivers what it has reassembled.
        final_chunk: bool,
        /// Keepalive ping: acknowledged like data but never delivered.
        is_ping: bool,
        /// Chunk bytes.
        payload: &'a [u8],
    },
    /// Acknowledges the DATA packet `seq` (and, cumulatively, those before it).
    Ack {
        /// Acknowledged sequence number.
        seq: u8,
    },
    /// "I was expecting `seq`": asks the peer to go back and resend from `seq`.
    Nack {
        /// The sequence number the receiver expects next.
        seq: u8,
    },
    /// The peer closed the connection; never acknowledged.
    Fin,
}

/// Why bytes from the mailbox are not a GBN packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Zero-length message.
    #[error(
        "gbn: empty packet from the peer (protocol violation; the connection must be re-established)"
    )]
    Empty,
    /// The first byte is not a known packet type.
    #[error(
        "gbn: unknown packet type 0x{0:02x} (peer speaks a different protocol or the mailbox stream is shared)"
    )]
    UnknownType(u8),
    /// Shorter than the fixed part of its type.
    #[error("gbn: truncated {kind} packet: {len} bytes, need at least {need}")]
    Truncated {
        /// Packet type name.
        kind: &'static str,
        /// Bytes received.
        len: usize,
        /// Minimum length of this type.
        need: usize,
    },
}

impl<'a> Packet<'a> {
    /// Parses one packet. Never panics; any input either decodes or yields a typed error.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let (&ty, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let truncated = |kind, need| DecodeError::Truncated {
            kind,
            len: bytes.len(),
            need,
        };
        match ty {
            TYPE_SYN => {
                let &n = rest.first().ok_or(truncated("SYN", 2))?;
                Ok(Packet::Syn { n })
            }
            TYPE_DATA => match rest {
                [seq, fin, ping, payload @ ..] => Ok(Packet::Data {
                    seq: *seq,
                    final_chunk: *fin == 0x01,
                    is_ping: *ping == 0x01,
                    payload,
                }),
                _ => Err(truncated("DATA", DATA_HEADER_LEN)),
            },
            TYPE_ACK => {
                let &seq = rest.first().ok_or(truncated("ACK", 2))?;
                Ok(Packet::Ack { seq })
            }
            TYPE_NACK => {
                let &seq = rest.first().ok_or(truncated("NACK", 2))?;
                Ok(Packet::Nack { seq })
            }
            TYPE_FIN => Ok(Packet::Fin),
            TYPE_SYNACK => Ok(Packet::SynAck),
            other => Err(DecodeError::UnknownType(other)),
        }
    }

    /// Number of bytes [`Packet::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Packet::Syn { .. } | Packet::Ack { .. } | Packet::Nack { .. } => 2,
            Packet::SynAck | Packet::Fin => 1,
            Packet::Data { payload, .. } => DATA_HEADER_LEN + payload.len(),
        }
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        match *self {
            Packet::Syn { n } => out.extend_from_slice(&[TYPE_SYN, n]),
            Packet::SynAck => out.push(TYPE_SYNACK),
            Packet::Data {
                seq,
                final_chunk,
                is_ping,
                payload,
            } => {
                out.extend_from_slice(&[TYPE_DATA, seq, u8::from(final_chunk), u8::from(is_ping)]);
                out.extend_from_slice(payload);
            }
            Packet::Ack { seq } => out.extend_from_slice(&[TYPE_ACK, seq]),
            Packet::Nack { seq } => out.extend_from_slice(&[TYPE_NACK, seq]),
            Packet::Fin => out.push(TYPE_FIN),
        }
    }

    /// The encoding as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode(&mut v);
        v
    }

    /// Short name of the packet type, for errors and logs.
    pub fn kind(&self) -> PacketKind {
        match self {
            Packet::Syn { .. } => PacketKind::Syn,
            Packet::SynAck => PacketKind::SynAck,
            Packet::Data { .. } => PacketKind::Data,
            Packet::Ack { .. } => PacketKind::Ack,
            Packet::Nack { .. } => PacketKind::Nack,
            Packet::Fin => PacketKind::Fin,
        }
    }
}

/// The type of a packet, without its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// SYN.
    Syn,
    /// SYNACK.
    SynAck,
    /// DATA (including pings).
    Data,
    /// ACK.
    Ack,
    /// NACK.
    Nack,
    /// FIN.
    Fin,
}

impl core::fmt::Display for PacketKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PacketKind::Syn => "SYN",
            PacketKind::SynAck => "SYNACK",
            PacketKind::Data => "DATA",
            PacketKind::Ack => "ACK",
            PacketKind::Nack => "NACK",
            PacketKind::Fin => "FIN",
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(&crate::test_vectors::read("gbn_packets.json")).unwrap()
    }

    fn from_case(case: &Value) -> (Packet<'static>, Vec<u8>) {
        let f = &case["fields"];
        let seq = || f["seq"].as_u64().unwrap() as u8;
        let payload: Vec<u8> = f["payload"]
            .as_str()
            .map(|p| hex::decode(p).unwrap())
            .unwrap_or_default();
        let payload: &'static [u8] = Box::leak(payload.into_boxed_slice());
        let p = match case["type"].as_str().unwrap() {
            "SYN" => Packet::Syn {
                n: f["N"].as_u64().unwrap() as u8,
            },
            "SYNACK" => Packet::SynAck,
            "DATA" => Packet::Data {
                seq: seq(),
                final_chunk: f["final_chunk"].as_bool().unwrap(),
                is_ping: f["is_ping"].as_bool().unwrap(),
                payload,
            },
            "ACK" => Packet::Ack { seq: seq() },
            "NACK" => Packet::Nack { seq: seq() },
            "FIN" => Packet::Fin,
            t => panic!("unknown vector type {t}"),
        };
        (p, hex::decode(case["encoded"].as_str().unwrap()).unwrap())
    }

    #[test]
    fn go_vectors_encode_and_decode() {
        let v = vectors();
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 16);
        for case in cases {
            let (p, enc) = from_case(case);
            assert_eq!(p.to_vec(), enc, "encode {case}");
            assert_eq!(p.encoded_len(), enc.len());
            assert!(case["deserialize_roundtrip_ok"].as_bool().unwrap());
            assert_eq!(Packet::decode(&enc).unwrap(), p, "decode {case}");
        }
    }

    #[test]
    fn go_vectors_type_bytes() {
        let v = vectors();
        let t = &v["type_bytes"];
        for (name, b) in [
            ("SYN", TYPE_SYN),
            ("DATA", TYPE_DATA),
            ("ACK", TYPE_ACK),
            ("NACK", TYPE_NACK),
            ("FIN", TYPE_FIN),
            ("SYNACK", TYPE_SYNACK),
        ] {
            assert_eq!(t[name].as_u64().unwrap(), u64::from(b), "{name}");
        }
    }

    /// Every `deserialize_edge` input: where Go errors (or panics) we return a typed error;
    /// where Go decodes, we decode the same fields.
    #[test]
    fn go_vectors_deserialize_edges() {
        let v = vectors();
        let edges = v["deserialize_edge"].as_array().unwrap();
        assert_eq!(edges.len(), 13);
        for e in edges {
            let input = hex::decode(e["input"].as_str().unwrap()).unwrap();
            let result = e["result"].as_str().unwrap();
            let ours = Packet::decode(&input);
            if result.starts_with("error") || result.starts_with("PANIC") {
                assert!(ours.is_err(), "{input:02x?} must be rejected, got {ours:?}");
                continue;
            }
            let p = ours.unwrap_or_else(|err| panic!("{input:02x?} rejected: {err}"));
            let expect = match result {
                "*gbn.PacketData &{Seq:0 FinalChunk:true IsPing:false Payload:[65]}" => {
                    Packet::Data {
                        seq: 0,
                        final_chunk: true,
                        is_ping: false,
                        payload: &[65],
                    }
                }
                "*gbn.PacketACK &{Seq:0}" => Packet::Ack { seq: 0 },
                "*gbn.PacketFIN &{}" => Packet::Fin,
                "*gbn.PacketSYNACK &{}" => Packet::SynAck,
                "*gbn.PacketSYN &{N:20}" => Packet::Syn { n: 20 },
                "*gbn.PacketData &{Seq:3 FinalChunk:false IsPing:false Payload:[0]}" => {
                    Packet::Data {
                        seq: 3,
                        final_chunk: false,
                        is_ping: false,
                        payload: &[0],
                    }
                }
                other => panic!("unmapped Go result {other}"),
            };
            assert_eq!(p, expect, "{result}");
        }
    }

    #[test]
    fn typed_errors() {
        assert_eq!(Packet::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Packet::decode(&[7]), Err(DecodeError::UnknownType(7)));
        assert_eq!(Packet::decode(&[0]), Err(DecodeError::UnknownType(0)));
        assert_eq!(
            Packet::decode(&[2, 0, 1]),
            Err(DecodeError::Truncated {
                kind: "DATA",
                len: 3,
                need: 4
            })
        );
        assert!(matches!(
            Packet::decode(&[1]),
            Err(DecodeError::Truncated { kind: "SYN", .. })
        ));
        assert!(matches!(
            Packet::decode(&[4]),
            Err(DecodeError::Truncated { kind: "NACK", .. })
        ));
        // Go: any boolean byte other than 0x01 is false; trailing bytes ignored.
        assert_eq!(
            Packet::decode(&[2, 9, 2, 0xff]).unwrap(),
            Packet::Data {
                seq: 9,
                final_chunk: false,
                is_ping: false,
                payload: &[]
            }
        );
        assert_eq!(
            Packet::decode(&[3, 4, 5, 6]).unwrap(),
            Packet::Ack { seq: 4 }
        );
        let msg = DecodeError::UnknownType(9).to_string();
        assert!(msg.starts_with("gbn:"), "{msg}");
    }

    fn any_packet() -> impl Strategy<Value = (u8, u8, bool, bool, Vec<u8>)> {
        (
            0u8..6,
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
    }

    proptest! {
        #[test]
        fn roundtrip((kind, seq, fin, ping, payload) in any_packet()) {
            let p = match kind {
                0 => Packet::Syn { n: seq },
                1 => Packet::SynAck,
                2 => Packet::Data { seq, final_chunk: fin, is_ping: ping, payload: &payload },
                3 => Packet::Ack { seq },
                4 => Packet::Nack { seq },
                _ => Packet::Fin,
            };
            let enc = p.to_vec();
            prop_assert_eq!(enc.len(), p.encoded_len());
            if let Packet::Data { .. } = p {
                prop_assert!(enc.len() >= DATA_HEADER_LEN);
            }
            prop_assert_eq!(Packet::decode(&enc).unwrap(), p);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::decode(&bytes) {
                // Canonical re-encoding is a prefix-compatible normal form that decodes to
                // the same packet.
                let enc = p.to_vec();
                prop_assert_eq!(Packet::decode(&enc).unwrap(), p);
                prop_assert!(enc.len() <= bytes.len());
            }
        }
    }
}
