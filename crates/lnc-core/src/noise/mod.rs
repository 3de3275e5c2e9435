//! The Noise layer: LNC's brontide-derived handshake machine and its transport records.
//!
//! * First connection (pairing): **XXeke+SPAKE2** — the app's ephemeral key is masked with
//!   the stretched pairing phrase, so only the node holding the same phrase can complete
//!   the handshake ([`XxInitiator`], [`XxResponder`]).
//! * Reconnect: **KK** — both sides already hold each other's static key
//!   ([`KkInitiator`], [`KkResponder`]).
//! * Afterwards: [`Transport`] records (`Enc(len)` ‖ `Enc(payload)`), key rotation every
//!   1000 AEAD operations, split into independent send/receive halves.
//!
//! Everything is bytes in, bytes out: each handshake act is one `Vec<u8>` that the driver
//! sends as a single mailbox message. Byte compatibility with the Go reference is pinned by
//! the vectors in `vectors/go/` (see the tests in this module).
//!
//! Wire-level quirks reproduced on purpose (spec §5.2, §9): the handshake cipher starts
//! active with an all-zero key; the version byte of each act is plaintext and not hashed;
//! the initiator's act-3 static key continues the act-2 nonce.
//!
//! A whole pairing handshake and one record, both sides in one process:
//!
//! ```
//! use lnc_core::keys::SecretKey;
//! use lnc_core::noise::{NoiseConfig, RecordDecoder, XxInitiator, XxResponder};
//! use lnc_core::spake2::MaskScalar;
//! use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//!
//! let mut rng = ChaCha20Rng::seed_from_u64(1); // an OS-seeded CSPRNG in real code
//! let cfg = NoiseConfig::default();
//! let w = MaskScalar::from_stretched(&[7u8; 32]); // the scrypt-stretched phrase
//! let (app_key, node_key) = (SecretKey::generate(&mut rng), SecretKey::generate(&mut rng));
//!
//! let app = XxInitiator::new(&cfg, &app_key, &w, &mut rng)?;
//! let node = XxResponder::new(&cfg, &node_key, &w, b"Macaroon: 0201", &mut rng)?;
//! let (app, act1) = app.write_act1()?; // each act: one mailbox message
//! let (node, act2) = node.read_act1(&act1)?.write_act2()?;
//! let (act3, app_done) = app.read_act2(&act2)?.write_act3()?;
//! let node_done = node.read_act3(&act3)?;
//! assert_eq!(app_done.auth_data.as_deref().map(|a| &a[..]), Some(&b"Macaroon: 0201"[..]));
//! assert!(app_done.should_persist_remote_static()); // v2: next time use KK
//!
//! let (mut tx, _) = app_done.transport.into_split();
//! let (_, rx) = node_done.transport.into_split();
//! let mut wire = Vec::new();
//! tx.seal_all(b"hello", &mut wire);
//! let mut decoder = RecordDecoder::new(rx);
//! decoder.decode_all(&wire, |msg| assert_eq!(msg, b"hello"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Security notes (inherent in the Go wire format, kept for compatibility):
//! * Act 1's tag uses the all-zero key with `h` over the *unmasked* ephemeral as associated
//!   data. A node with another phrase therefore fails at act 1 already, and anyone who sees
//!   act 1 (the relay) can test phrase guesses offline. 110 bits of phrase entropy plus
//!   scrypt (N = 2^16) per guess keep that out of reach; never shorten the phrase.
//! * The version byte is not authenticated: an on-path attacker can downgrade 2 → 1, which
//!   only stops the peers from persisting keys (they keep pairing with XX).

mod handshake;
mod symmetric;
mod transport;

#[cfg(test)]
mod tests;

pub use handshake::{
    ACT1_LEN, Established, HandshakeError, KkInitiator, KkInitiatorAwaitAct2, KkResponder,
    KkResponderSendAct2, XX_ACT2_V0_LEN, XX_ACT3_LEN, XxInitiator, XxInitiatorAwaitAct2,
    XxInitiatorSendAct3, XxResponder, XxResponderAwaitAct3, XxResponderSendAct2,
};
pub use symmetric::TAG_LEN;
pub use transport::{
    Decoded, KEY_ROTATION_INTERVAL, MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN, RecordDecoder,
    Transport, TransportError, TransportReceiver, TransportSender, record_body_len, record_len,
};

/// Prologue mixed into every handshake, so a transcript cannot be replayed into another
/// protocol that uses the same Noise patterns.
pub const PROLOGUE: &[u8] = b"lightning-node-connect";
/// Noise protocol name of the pairing handshake (hashed into the initial `h` and `ck`).
pub const XX_PROTOCOL_NAME: &str = "Noise_XXeke+SPAKE2_secp256k1_ChaChaPoly_SHA256";
/// Noise protocol name of the reconnect handshake. Upstream has no IK; this is KK.
pub const KK_PROTOCOL_NAME: &str = "Noise_KK_secp256k1_ChaChaPoly_SHA256";
/// Size of the fixed act-2 payload in handshake version 0.
pub const V0_PAYLOAD_LEN: usize = 500;
/// Most auth data version 0 can carry (500 bytes minus the 2-byte length).
pub const V0_MAX_AUTH_DATA_LEN: usize = V0_PAYLOAD_LEN - 2;
/// Default cap on auth data we accept in act 2 (v1+ announce up to 4 GiB; a macaroon with
/// many caveats is a few KiB).
pub const DEFAULT_MAX_AUTH_DATA_LEN: usize = 1 << 20;

/// Handshake protocol versions. They change only the act-2 auth-data format and whether the
/// peers persist each other's static key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum HandshakeVersion {
    /// Auth data in a fixed 500-byte payload (≤ 498 bytes).
    V0 = 0,
    /// Auth data length-prefixed (macaroons with many caveats outgrew v0).
    V1 = 1,
    /// Wire format of v1; both sides also store the peer's static key, enabling KK.
    V2 = 2,
}

impl HandshakeVersion {
    /// The newest version we speak.
    pub const LATEST: HandshakeVersion = HandshakeVersion::V2;

    /// Parses the version byte of an act; `None` for versions we do not know.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(HandshakeVersion::V0),
            1 => Some(HandshakeVersion::V1),
            2 => Some(HandshakeVersion::V2),
            _ => None,
        }
    }

    /// The byte sent on the wire.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl core::fmt::Display for HandshakeVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.as_u8())
    }
}

/// Which handshake pattern ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `XXeke+SPAKE2`: pairing with the phrase, static keys exchanged encrypted.
    Xx,
    /// `KK`: reconnect with both static keys known beforehand.
    Kk,
}

/// Handshake settings. The defaults are upstream's (`[0, 2]`, which real peers use) plus a
/// cap on received auth data that Go lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoiseConfig {
    /// Lowest version we accept; the initiator *sends* this in act 1 (Go's rule).
    pub min_version: HandshakeVersion,
    /// Highest version we accept; the responder answers with this in act 2.
    pub max_version: HandshakeVersion,
    /// Largest auth data accepted in act 2, checked before allocating.
    pub max_auth_data_len: usize,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        NoiseConfig {
            min_version: HandshakeVersion::V0,
            max_version: HandshakeVersion::V2,
            max_auth_data_len: DEFAULT_MAX_AUTH_DATA_LEN,
        }
    }
}

impl NoiseConfig {
    /// A config pinned to one version (min = max), as the per-version vectors use.
    pub fn pinned(version: HandshakeVersion) -> Self {
        NoiseConfig {
            min_version: version,
            max_version: version,
            ..NoiseConfig::default()
        }
    }
}
