//! # Macaroons: LND's bearer credentials, in pure Rust
//!
//! Every LNC session carries a macaroon: litd bakes it through LND (root key ID
//! `FFEEDDCC ‖ session ID`), restricts it with a `time-before` caveat, and hands it to the
//! client inside the Noise handshake (`Macaroon: <hex>`); the client echoes it as gRPC
//! metadata on every call and LND verifies it. The Rust `macaroon` crate needs libsodium and
//! does not build for the browser, so this module implements the small part of
//! go-macaroon (`gopkg.in/macaroon.v2`) and macaroon-bakery that LND uses, with `hmac` +
//! `sha2` only:
//!
//! | submodule | what it holds |
//! |---|---|
//! | [`v2`] | the V2 binary codec (strict, bounded, typed errors), hex/base64 helpers, slices |
//! | [`verify`] | the HMAC chain check, first-party caveat checkers (`time-before`, `ipaddr`, `iprange`, `lnd-custom`), RFC 3339 time |
//! | [`lnd`] | LND's macaroon ID (version byte + `MacaroonId` protobuf), ops, permission table, session presets, `CheckMacAuth` |
//!
//! The HMAC chain is go-macaroon's: `k = HMAC-SHA256("macaroons-key-generator", root_key)`,
//! `sig₀ = HMAC-SHA256(k, id)`, and after each first-party caveat
//! `sigᵢ = HMAC-SHA256(sigᵢ₋₁, condition)`. Anyone holding a macaroon can therefore add
//! caveats (restrict it), and only the holder of the root key can check it.
//!
//! Nothing here reads a clock: verification takes `now` as a [`UnixTime`] from the caller.
//! Third-party caveats are decoded and re-encoded faithfully but never verified (LND does not
//! use them, and verifying them needs a NaCl secretbox); a macaroon carrying one fails
//! verification with a typed error.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub mod lnd;
pub mod v2;
pub mod verify;

#[cfg(test)]
mod tests;

pub use lnd::{MacaroonId, Op, OpGroup, PermissionTable};
pub use v2::{DecodeError, MAX_CAVEATS, MAX_ENCODED_LEN};
pub use verify::{CaveatChecker, CheckOutcome, UnixTime, VerifyError};

/// Length of a macaroon signature (HMAC-SHA256 output).
pub const SIGNATURE_LEN: usize = 32;

/// The HMAC key go-macaroon uses to turn a root key of any length into the 32-byte key that
/// starts the chain (`makeKey`); kept identical so LND's root keys produce LND's signatures.
const KEY_GENERATOR: &[u8] = b"macaroons-key-generator";

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256(key, data): one link of the macaroon chain.
pub(crate) fn keyed_hash(key: &[u8], data: &[u8]) -> [u8; SIGNATURE_LEN] {
    // HMAC accepts keys of every length, so this cannot fail.
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` only fails for fixed-key-size MACs; HMAC has none.
    panic!("HMAC-SHA256 rejected a key: impossible for HMAC")
}

/// go-macaroon's `keyedHash2`: a third-party caveat binds its verification ID too
/// (`HMAC(k, HMAC(k, vid) ‖ HMAC(k, cid))`); a first-party caveat is a plain keyed hash.
pub(crate) fn keyed_hash2(key: &[u8], vid: &[u8], cid: &[u8]) -> [u8; SIGNATURE_LEN] {
    if vid.is_empty() {
        return keyed_hash(key, cid);
    }
    let mut both = Zeroizing::new([0u8; 2 * SIGNATURE_LEN]);
    both[..SIGNATURE_LEN].copy_from_slice(&keyed_hash(key, vid));
    both[SIGNATURE_LEN..].copy_from_slice(&keyed_hash(key, cid));
    keyed_hash(key, &both[..])
}

/// A macaroon root key: the secret LND keeps per root key ID and never sends anywhere.
/// Any length is accepted (go-macaroon derives a 32-byte key from it); LND's are 32 bytes.
/// Zeroized on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootKey(Vec<u8>);

impl RootKey {
    /// Wraps root key bytes (copied; the caller zeroizes its own copy).
    pub fn new(bytes: &[u8]) -> Self {
        RootKey(bytes.to_vec())
    }

    /// The raw key bytes, for encrypted storage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// go-macaroon's `makeKey`: the 32-byte key the HMAC chain starts from.
    pub fn derive(&self) -> Signature {
        Signature(keyed_hash(KEY_GENERATOR, &self.0))
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

/// A 32-byte chain value: a macaroon's signature, or an intermediate link of its HMAC chain.
/// The final signature is what makes a macaroon a bearer credential (it lets the holder add
/// caveats and, with the id, authenticate), so it is zeroized on drop, compared in constant
/// time and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Wraps 32 signature bytes (from storage or a decoder).
    pub const fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> Self {
        Signature(bytes)
    }

    /// The signature bytes.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }
}

impl PartialEq for Signature {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for Signature {}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(<redacted>)")
    }
}

/// A third-party caveat: a condition to be discharged by another service. Carried so that a
/// macaroon containing one round-trips unchanged; never verified here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThirdPartyCaveat {
    /// Where the discharging service lives (may be empty).
    pub location: Vec<u8>,
    /// The caveat identifier the third party understands.
    pub id: Vec<u8>,
    /// The encrypted caveat key (never empty: that is what makes the caveat third-party).
    pub verification_id: Vec<u8>,
}

/// One caveat of a macaroon, in chain order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caveat {
    /// A condition the verifier checks itself, e.g. `time-before 2030-01-01T00:00:00Z`.
    FirstParty(Vec<u8>),
    /// A caveat discharged by a third party (decoded and carried only).
    ThirdParty(ThirdPartyCaveat),
}

impl Caveat {
    /// The caveat identifier (the condition, for a first-party caveat).
    pub fn id(&self) -> &[u8] {
        match self {
            Caveat::FirstParty(c) => c,
            Caveat::ThirdParty(t) => &t.id,
        }
    }

    /// The first-party condition as text, if this is a first-party caveat in UTF-8.
    pub fn condition(&self) -> Option<&str> {
        match self {
            Caveat::FirstParty(c) => core::str::from_utf8(c).ok(),
            Caveat::ThirdParty(_) => None,
        }
    }
}

/// Why a macaroon could not be built or extended: the result would exceed the limits the
/// decoder enforces, so it could never be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Adding the caveat would exceed [`MAX_CAVEATS`].
    #[error("macaroon: cannot add caveat, the macaroon already has the maximum of {max} caveats")]
    TooManyCaveats {
        /// The limit.
        max: usize,
    },
    /// The encoding would exceed [`MAX_ENCODED_LEN`] bytes.
    #[error(
        "macaroon: cannot add caveat, the encoding would be {len} bytes, over the {max}-byte limit; use a shorter condition"
    )]
    TooLarge {
        /// The encoded length it would have.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// A macaroon: location, identifier, caveats and the HMAC chain's final signature.
///
/// Built with [`Macaroon::new`] (needs the root key), decoded with [`Macaroon::decode`], and
/// restricted by anyone with [`Macaroon::add_first_party_caveat`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Macaroon {
    location: Vec<u8>,
    identifier: Vec<u8>,
    caveats: Vec<Caveat>,
    signature: Signature,
}

impl Macaroon {
    /// Mints a macaroon with no caveats (go-macaroon `New`): `sig = HMAC(makeKey(root), id)`.
    /// This is what LND's oven does once it has chosen an id; see [`lnd::bake`].
    pub fn new(root_key: &RootKey, identifier: &[u8], location: &[u8]) -> Self {
        let key = root_key.derive();
        Macaroon {
            location: location.to_vec(),
            identifier: identifier.to_vec(),
            caveats: Vec::new(),
            signature: Signature(keyed_hash(key.as_bytes(), identifier)),
        }
    }

    /// Reassembles a macaroon from decoded parts (no check: the signature is only meaningful
    /// against the root key, see [`Macaroon::verify`]).
    pub fn from_parts(
        location: Vec<u8>,
        identifier: Vec<u8>,
        caveats: Vec<Caveat>,
        signature: Signature,
    ) -> Self {
        Macaroon {
            location,
            identifier,
            caveats,
            signature,
        }
    }

    /// The location hint (LND uses `lnd`; empty when absent).
    pub fn location(&self) -> &[u8] {
        &self.location
    }

    /// The identifier; for LND macaroons decode it with [`MacaroonId::decode`].
    pub fn identifier(&self) -> &[u8] {
        &self.identifier
    }

    /// The caveats, in chain order.
    pub fn caveats(&self) -> &[Caveat] {
        &self.caveats
    }

    /// The final signature of the chain.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The first-party conditions in order (what LND's checkers see).
    pub fn first_party_conditions(&self) -> impl Iterator<Item = &[u8]> {
        self.caveats.iter().filter_map(|c| match c {
            Caveat::FirstParty(cond) => Some(cond.as_slice()),
            Caveat::ThirdParty(_) => None,
        })
    }

    /// Restricts the macaroon (go-macaroon `AddFirstPartyCaveat`): appends the condition and
    /// moves the signature one link along, `sig = HMAC(sig, condition)`. Needs no root key,
    /// which is how litd adds the session expiry to a macaroon LND baked. Refused if the
    /// result would exceed the decoder's limits (it could never be read back).
    pub fn add_first_party_caveat(&mut self, condition: &[u8]) -> Result<(), LimitError> {
        if self.caveats.len() >= MAX_CAVEATS {
            return Err(LimitError::TooManyCaveats { max: MAX_CAVEATS });
        }
        let len = self.encoded_len() + v2::field_len(condition.len()) + 1;
        if len > MAX_ENCODED_LEN {
            return Err(LimitError::TooLarge {
                len,
                max: MAX_ENCODED_LEN,
            });
        }
        self.signature = Signature(keyed_hash(self.signature.as_bytes(), condition));
        self.caveats.push(Caveat::FirstParty(condition.to_vec()));
        Ok(())
    }

    /// Every value of the HMAC chain for this macaroon under `root_key` (go-macaroon's
    /// `TraceVerify`): the derived key, then the signature after the id and after each
    /// caveat. For debugging a mismatch against another implementation; the last entry
    /// equals [`Macaroon::signature`] iff the macaroon is authentic.
    pub fn signature_chain(&self, root_key: &RootKey) -> Vec<Signature> {
        let mut out = Vec::with_capacity(self.caveats.len() + 2);
        let key = root_key.derive();
        let mut sig = keyed_hash(key.as_bytes(), &self.identifier);
        out.push(key);
        out.push(Signature(sig));
        for cav in &self.caveats {
            sig = match cav {
                Caveat::FirstParty(c) => keyed_hash(&sig, c),
                Caveat::ThirdParty(t) => keyed_hash2(&sig, &t.verification_id, &t.id),
            };
            out.push(Signature(sig));
        }
        sig.zeroize();
        out
    }

    /// Lower-case hex of the V2 binary: the form LND's `BakeMacaroon` returns and the
    /// `macaroon` gRPC metadata carries.
    pub fn to_hex(&self) -> String {
        v2::hex_encode(&self.to_v2_bytes())
    }

    /// Standard padded base64 of the V2 binary.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.to_v2_bytes())
    }

    /// URL-safe unpadded base64 of the V2 binary (the form go-macaroon's JSON and
    /// `macaroon` HTTP headers use).
    pub fn to_base64url(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.to_v2_bytes())
    }
}
