//! A prost codec with small initial buffers.
//!
//! tonic's default codec reserves 8 KiB per RPC for encoding up front. A relay
//! holds one idle `RecvStream` per mailbox (thousands of them), so that
//! reservation alone would dominate its memory; mailbox messages are small
//! (go-back-N packets) and the buffer grows on demand for large ones.

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Initial encode/decode buffer per RPC. Idle streams then cost ~this much.
pub const INITIAL_BUFFER: usize = 512;
/// Bytes encoded before the encoder yields to the runtime.
pub const YIELD_THRESHOLD: usize = 32 * 1024;

/// The codec named in the generated HashMail stubs (`codec_path`).
#[derive(Debug, Clone)]
pub struct SmallBufCodec<T, U>(core::marker::PhantomData<(T, U)>);

impl<T, U> Default for SmallBufCodec<T, U> {
    fn default() -> Self {
        Self(core::marker::PhantomData)
    }
}

impl<T, U> Codec for SmallBufCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(INITIAL_BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::new(INITIAL_BUFFER, YIELD_THRESHOLD))
    }
}
