//! Pairing: the phrase, the mailbox stream IDs, the SPAKE2 password and the connection state.
//!
//! A session starts with 110 random bits the node shows as ten words ([`PairingPhrase`],
//! [`Entropy`]). Both sides derive everything else from them (crypto spec §1–§3, §7):
//!
//! * which relay streams to meet on — [`StreamId::pairing`] = `SHA512(E)`, and after a
//!   version-2 pairing [`StreamId::post_pairing`] from the static keys;
//! * the SPAKE2 password for the XX handshake — [`stretch()`] = `scrypt(E, E, 2^16, 8, 1)`;
//! * whether the next handshake is XX or KK — [`ConnectionState`].
//!
//! Everything here is pure computation: no IO, no clock, randomness passed in.

mod phrase;
mod state;
mod stream_id;
mod stretch;

pub use phrase::{BITS_PER_WORD, ENTROPY_LEN, Entropy, NUM_WORDS, PairingPhrase, PhraseError};
pub use state::{
    ConnectionState, HandshakeInputs, HandshakeOutcome, HandshakeRecord,
    MIN_VERSION_STORING_REMOTE_STATIC, StateError,
};
pub use stream_id::{MailboxStreams, Role, STREAM_ID_LEN, StreamId};
pub use stretch::{SCRYPT_LOG_N, SCRYPT_P, SCRYPT_R, STRETCHED_LEN, mask_scalar, stretch};
