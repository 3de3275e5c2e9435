//! gRPC message framing (5-byte prefix: compressed flag, big-endian length) as a pure
//! decoder, so the budget meter can read payment requests and results while the bytes pass
//! through the proxy untouched.
//!
//! Memory is bounded: a message longer than the decoder's limit is skipped (its bytes still
//! flow to the other side, the meter just does not see it), and [`Decoded::Skipped`] says
//! so, which the meter treats as an unknown outcome.

use bytes::{Buf as _, Bytes, BytesMut};

/// What the decoder found in the bytes pushed so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole uncompressed message.
    Message(Bytes),
    /// A message the decoder could not read: compressed or longer than the limit.
    Skipped,
}

/// Splits a gRPC byte stream into messages.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    limit: usize,
    /// Bytes of an oversized or compressed message still to skip.
    skipping: usize,
}

impl FrameDecoder {
    /// A decoder that reads messages up to `limit` bytes.
    pub fn new(limit: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            limit,
            skipping: 0,
        }
    }

    /// Bytes buffered of a message not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds `data` and returns the messages it completed.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<Decoded> {
        let mut out = Vec::new();
        loop {
            if self.skipping > 0 {
                let n = self.skipping.min(data.len());
                self.skipping -= n;
                data = &data[n..];
                if self.skipping > 0 {
                    return out;
                }
            }
            // Take only what the next step needs, so `buf` never holds more than one
            // message's header plus (at most `limit`) its body.
            let need = match self.header() {
                None => 5 - self.buf.len(),
                Some((_, len)) => 5 + len - self.buf.len(),
            };
            let n = need.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            match self.header() {
                None => {
                    if data.is_empty() {
                        return out;
                    }
                }
                Some((compressed, len)) => {
                    if compressed || len > self.limit {
                        self.buf.clear();
                        self.skipping = len;
                        out.push(Decoded::Skipped);
                    } else if self.buf.len() == 5 + len {
                        self.buf.advance(5);
                        out.push(Decoded::Message(self.buf.split_to(len).freeze()));
                    } else if data.is_empty() {
                        return out;
                    }
                }
            }
        }
    }

    fn header(&self) -> Option<(bool, usize)> {
        let h = self.buf.get(..5)?;
        let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
        Some((h[0] != 0, len))
    }
}

/// `msg` framed as one uncompressed gRPC message.
pub fn frame(msg: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + msg.len());
    b.extend_from_slice(&[0]);
    b.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    b.extend_from_slice(msg);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_messages_across_pushes() {
        let mut wire = frame(b"hello").to_vec();
        wire.extend_from_slice(&frame(b""));
        wire.extend_from_slice(&frame(&[7; 40]));
        let mut d = FrameDecoder::new(16);
        let mut got = Vec::new();
        for chunk in wire.chunks(3) {
            got.extend(d.push(chunk));
        }
        assert_eq!(
            got,
            vec![
                Decoded::Message(Bytes::from_static(b"hello")),
                Decoded::Message(Bytes::new()),
                Decoded::Skipped
            ]
        );
        assert_eq!(d.buffered(), 0);
        let mut compressed = frame(b"zz").to_vec();
        compressed[0] = 1;
        compressed.extend_from_slice(&frame(b"ok"));
        assert_eq!(
            d.push(&compressed),
            vec![
                Decoded::Skipped,
                Decoded::Message(Bytes::from_static(b"ok"))
            ]
        );
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_messages(
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..8),
            cut in 1usize..20,
            limit in 0usize..60,
        ) {
            let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m).to_vec()).collect();
            let mut d = FrameDecoder::new(limit);
            let mut got = Vec::new();
            for chunk in wire.chunks(cut) {
                got.extend(d.push(chunk));
                prop_assert!(d.buffered() <= 5 + limit);
            }
            let want: Vec<Decoded> = msgs.iter().map(|m| if m.len() > limit {
                Decoded::Skipped
            } else {
                Decoded::Message(Bytes::copy_from_slice(m))
            }).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut d = FrameDecoder::new(64);
            let _ = d.push(&data);
            prop_assert!(d.buffered() <= 69);
        }
    }
}
