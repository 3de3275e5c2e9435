//! The two handshakes as typestates (spec §5): XXeke+SPAKE2 for pairing and KK for
//! reconnects. Each state consumes one act (bytes in) or produces one (a `Vec<u8>` that the
//! driver must send as exactly one mailbox message, because Go parses an act from a single
//! message). A state that has failed is gone: every method takes `self`.

use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::symmetric::{SymmetricState, TAG_LEN};
use super::transport::Transport;
use super::{
    HandshakeVersion, KK_PROTOCOL_NAME, NoiseConfig, PROLOGUE, Pattern, V0_MAX_AUTH_DATA_LEN,
    V0_PAYLOAD_LEN, XX_PROTOCOL_NAME,
};
use crate::keys::{KeyError, PUBLIC_KEY_LEN, PublicKey, SecretKey};
use crate::spake2::{MaskScalar, mask, unmask};

/// Length of act 1 in both patterns: version ‖ 33-byte key ‖ 16-byte tag.
pub const ACT1_LEN: usize = 1 + PUBLIC_KEY_LEN + TAG_LEN;
/// Length of XX act 3: version ‖ encrypted static (49) ‖ tag.
pub const XX_ACT3_LEN: usize = 1 + PUBLIC_KEY_LEN + TAG_LEN + TAG_LEN;
/// Length of XX act 2 in version 0 (fixed 500-byte payload).
pub const XX_ACT2_V0_LEN: usize = XX_ACT2_PREFIX + V0_PAYLOAD_LEN + TAG_LEN;
/// Bytes of XX act 2 before the payload: version ‖ e ‖ encrypted s.
const XX_ACT2_PREFIX: usize = 1 + PUBLIC_KEY_LEN + PUBLIC_KEY_LEN + TAG_LEN;
/// Bytes of KK act 2 before the payload: version ‖ e.
const KK_ACT2_PREFIX: usize = 1 + PUBLIC_KEY_LEN;
/// Encrypted BE32 length that starts a v1+ payload.
const V1_LEN_FIELD: usize = 4 + TAG_LEN;
/// Go's writer refuses v1+ auth data of `2^31 − 1` bytes or more.
const V1_WRITER_LIMIT: usize = (1 << 31) - 2;

/// Why a handshake failed. Messages name the act and, where it is known, the likely cause
/// and remedy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// `min_version > max_version` in [`NoiseConfig`].
    #[error("noise config: min handshake version {min} is above max handshake version {max}")]
    InvalidVersionRange {
        /// Configured minimum.
        min: u8,
        /// Configured maximum.
        max: u8,
    },
    /// KK exists only from version 2 on (keys are persisted from v2).
    #[error(
        "noise config: the KK reconnect handshake needs a max handshake version of at least 2 (got {max}); allow version 2 or pair again with the XX handshake"
    )]
    KkNeedsVersion2 {
        /// Configured maximum.
        max: u8,
    },
    /// An act has the wrong size (truncated, padded or corrupted in transit).
    #[error(
        "noise handshake: act {act} is {got} bytes, expected {expected} (truncated or corrupted message)"
    )]
    ActLength {
        /// Act number (1–3).
        act: u8,
        /// Expected length.
        expected: usize,
        /// Received length.
        got: usize,
    },
    /// The peer speaks a handshake version outside our range.
    #[error(
        "noise handshake: act {act} carries handshake version {got}, outside the supported range {min}..={max}; update the app or the node so that their versions overlap"
    )]
    UnsupportedVersion {
        /// Act number.
        act: u8,
        /// Version byte received.
        got: u8,
        /// Our minimum.
        min: u8,
        /// Our maximum.
        max: u8,
    },
    /// Act 3 must repeat the version the responder chose in act 2.
    #[error(
        "noise handshake: act 3 carries handshake version {got} but the server chose version {expected} (tampered or faulty client)"
    )]
    VersionMismatch {
        /// Version sent in act 2.
        expected: u8,
        /// Version received in act 3.
        got: u8,
    },
    /// A public key in an act is not a valid point (or masking produced infinity).
    #[error("noise handshake: act {act} has an invalid {what}: {source}")]
    InvalidKey {
        /// Act number.
        act: u8,
        /// Which key.
        what: &'static str,
        /// The parse error.
        #[source]
        source: KeyError,
    },
    /// An AEAD tag did not verify: wrong password/keys or tampering.
    #[error("noise handshake: act {act} failed authentication ({what}): {hint}")]
    AuthFailed {
        /// Act number.
        act: u8,
        /// Which field failed.
        what: &'static str,
        /// The likely cause and what to do.
        hint: &'static str,
    },
    /// Our own auth data does not fit the negotiated version (v0: 498 bytes).
    #[error(
        "noise handshake: auth data of {len} bytes is too large for handshake version {version} (at most {max} bytes); allow handshake version 1 or later, or shrink the macaroon"
    )]
    AuthDataTooLarge {
        /// Auth data length.
        len: usize,
        /// Limit for that version.
        max: usize,
        /// The version being written.
        version: u8,
    },
    /// The peer announced more auth data than our cap (checked before allocating).
    #[error(
        "noise handshake: the server announced {len} bytes of auth data, above the limit of {max} bytes; raise NoiseConfig::max_auth_data_len if its macaroon really is that large"
    )]
    AuthDataOverCap {
        /// Announced length.
        len: u64,
        /// Our cap.
        max: usize,
    },
}

const HINT_TAMPER: &str = "the message was corrupted or tampered with in transit";
const HINT_XX_INITIATOR: &str = "the pairing phrase is probably wrong (or the session was revoked, or the message was tampered with); check the phrase and pair again";
const HINT_XX_RESPONDER: &str = "the client used a different pairing phrase (or the message was tampered with); treat the session's phrase as burnt";
const HINT_XX_ACT3: &str =
    "the client's static key did not authenticate (tampered or replayed message)";
const HINT_KK_RESPONDER: &str = "the client's stored credentials do not match this session (stale keys); pair again with a new phrase";
const HINT_KK_INITIATOR: &str = "the node does not hold the keys we stored for it (session revoked or node reset); pair again with a new phrase";

fn auth_failed(act: u8, what: &'static str, hint: &'static str) -> HandshakeError {
    HandshakeError::AuthFailed { act, what, hint }
}

fn invalid_key(act: u8, what: &'static str) -> impl FnOnce(KeyError) -> HandshakeError {
    move |source| HandshakeError::InvalidKey { act, what, source }
}

fn take(buf: &[u8], at: usize, n: usize, act: u8) -> Result<&[u8], HandshakeError> {
    buf.get(at..at + n).ok_or(HandshakeError::ActLength {
        act,
        expected: at + n,
        got: buf.len(),
    })
}

fn exact_len(act: u8, buf: &[u8], expected: usize) -> Result<(), HandshakeError> {
    if buf.len() == expected {
        Ok(())
    } else {
        Err(HandshakeError::ActLength {
            act,
            expected,
            got: buf.len(),
        })
    }
}

/// State shared by all handshake typestates.
struct Core {
    sym: SymmetricState,
    pattern: Pattern,
    initiator: bool,
    local_static: SecretKey,
    ephemeral: SecretKey,
    remote_ephemeral: Option<PublicKey>,
    remote_static: Option<PublicKey>,
    mask: Option<MaskScalar>,
    min: u8,
    max: u8,
    version: u8,
    auth_cap: usize,
    /// Responder: what it sends; initiator: what it received.
    auth_data: Zeroizing<Vec<u8>>,
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    fn new(
        config: &NoiseConfig,
        pattern: Pattern,
        initiator: bool,
        local_static: &SecretKey,
        ephemeral: SecretKey,
        remote_static: Option<&PublicKey>,
        mask: Option<&MaskScalar>,
        auth_data: &[u8],
    ) -> Result<Self, HandshakeError> {
        let (mut min, max) = (config.min_version.as_u8(), config.max_version.as_u8());
        if min > max {
            return Err(HandshakeError::InvalidVersionRange { min, max });
        }
        let name = match pattern {
            Pattern::Xx => XX_PROTOCOL_NAME,
            Pattern::Kk => {
                if max < 2 {
                    return Err(HandshakeError::KkNeedsVersion2 { max });
                }
                min = min.max(2);
                KK_PROTOCOL_NAME
            }
        };
        let mut sym = SymmetricState::new(name.as_bytes(), PROLOGUE);
        if let (Pattern::Kk, Some(remote)) = (pattern, remote_static) {
            let local = local_static.public_key();
            let (s_i, s_r) = if initiator {
                (local, *remote)
            } else {
                (*remote, local)
            };
            sym.mix_hash(&s_i.to_bytes());
            sym.mix_hash(&s_r.to_bytes());
        }
        Ok(Core {
            sym,
            pattern,
            initiator,
            local_static: local_static.clone(),
            ephemeral,
            remote_ephemeral: None,
            remote_static: remote_static.copied(),
            mask: mask.cloned(),
            min,
            max,
            version: if initiator { min } else { max },
            auth_cap: config.max_auth_data_len,
            auth_data: Zeroizing::new(auth_data.to_vec()),
        })
    }

    fn check_version(&self, act: u8, got: u8) -> Result<u8, HandshakeError> {
        if got < self.min || got > self.max {
            return Err(HandshakeError::UnsupportedVersion {
                act,
                got,
                min: self.min,
                max: self.max,
            });
        }
        Ok(got)
    }

    /// Reads the version byte that starts every act.
    fn read_version(&self, act: u8, msg: &[u8]) -> Result<u8, HandshakeError> {
        let v = *msg.first().ok_or(HandshakeError::ActLength {
            act,
            expected: 1,
            got: 0,
        })?;
        self.check_version(act, v)
    }

    fn remote_ephemeral(&self) -> Result<PublicKey, HandshakeError> {
        // Set by the act that precedes every use; typestates enforce the order.
        self.remote_ephemeral.ok_or(HandshakeError::InvalidKey {
            act: 0,
            what: "remote ephemeral key (missing)",
            source: KeyError::InvalidPublicKey,
        })
    }

    fn remote_static(&self) -> Result<PublicKey, HandshakeError> {
        self.remote_static.ok_or(HandshakeError::InvalidKey {
            act: 0,
            what: "remote static key (missing)",
            source: KeyError::InvalidPublicKey,
        })
    }

    fn dh(&mut self, local_is_ephemeral: bool, remote: PublicKey) {
        let local = if local_is_ephemeral {
            &self.ephemeral
        } else {
            &self.local_static
        };
        let ss = local.ecdh(&remote);
        self.sym.mix_key(ss.as_bytes());
    }

    /// Token `e` (write side): send our ephemeral in the clear.
    fn write_e(&mut self, out: &mut Vec<u8>) {
        let e = self.ephemeral.public_key().to_bytes();
        out.extend_from_slice(&e);
        self.sym.mix_hash(&e);
    }

    /// Token `e` (read side).
    fn read_e(&mut self, act: u8, bytes: &[u8]) -> Result<(), HandshakeError> {
        let e = PublicKey::from_bytes(bytes).map_err(invalid_key(act, "ephemeral key"))?;
        self.sym.mix_hash(&e.to_bytes());
        self.remote_ephemeral = Some(e);
        Ok(())
    }

    /// Token `s` (write side): our static key, encrypted.
    fn write_s(&mut self, out: &mut Vec<u8>) {
        let s = self.local_static.public_key().to_bytes();
        self.sym.encrypt_and_hash(&s, out);
    }

    /// Token `s` (read side).
    fn read_s(&mut self, act: u8, bytes: &[u8], hint: &'static str) -> Result<(), HandshakeError> {
        let pt = self
            .sym
            .decrypt_and_hash(bytes)
            .map_err(|_| auth_failed(act, "encrypted static key", hint))?;
        let s = PublicKey::from_bytes(&pt).map_err(invalid_key(act, "static key"))?;
        self.remote_static = Some(s);
        Ok(())
    }

    /// The empty-payload tag that ends acts 1 and 3.
    fn read_tag(
        &mut self,
        act: u8,
        bytes: &[u8],
        hint: &'static str,
    ) -> Result<(), HandshakeError> {
        self.sym
            .decrypt_and_hash(bytes)
            .map(|_| ())
            .map_err(|_| auth_failed(act, "payload tag", hint))
    }

    /// The responder's act-2 payload carrying the auth data, in this act's version format.
    fn write_auth_payload(&mut self, out: &mut Vec<u8>) -> Result<(), HandshakeError> {
        let len = self.auth_data.len();
        if self.version == 0 {
            // Go truncates silently; we refuse, so a client never sees a corrupt macaroon.
            if len > V0_MAX_AUTH_DATA_LEN {
                return Err(HandshakeError::AuthDataTooLarge {
                    len,
                    max: V0_MAX_AUTH_DATA_LEN,
                    version: 0,
                });
            }
            let mut p = Zeroizing::new([0u8; V0_PAYLOAD_LEN]);
            // len ≤ 498 fits in u16.
            p[..2].copy_from_slice(&(len as u16).to_be_bytes());
            p[2..2 + len].copy_from_slice(&self.auth_data);
            self.sym.encrypt_and_hash(&p[..], out);
        } else {
            let len32 = u32::try_from(len)
                .ok()
                .filter(|_| len <= V1_WRITER_LIMIT)
                .ok_or(HandshakeError::AuthDataTooLarge {
                    len,
                    max: V1_WRITER_LIMIT,
                    version: self.version,
                })?;
            out.reserve(V1_LEN_FIELD + len + TAG_LEN);
            self.sym.encrypt_and_hash(&len32.to_be_bytes(), out);
            self.sym.encrypt_and_hash(&self.auth_data, out);
        }
        Ok(())
    }

    /// The initiator's parser for the act-2 payload; `payload` is everything after the
    /// tokens. Checks the act length as it goes (the v1+ length is inside the ciphertext).
    fn read_auth_payload(
        &mut self,
        payload: &[u8],
        prefix: usize,
        hint: &'static str,
    ) -> Result<(), HandshakeError> {
        if self.version == 0 {
            exact_len(2, payload, V0_PAYLOAD_LEN + TAG_LEN)
                .map_err(|_| act2_len(prefix, V0_PAYLOAD_LEN + TAG_LEN, payload.len()))?;
            let p = Zeroizing::new(
                self.sym
                    .decrypt_and_hash(payload)
                    .map_err(|_| auth_failed(2, "auth data payload", hint))?,
            );
            let declared = usize::from(u16::from_be_bytes([p[0], p[1]]));
            if declared > self.auth_cap {
                return Err(HandshakeError::AuthDataOverCap {
                    len: declared as u64,
                    max: self.auth_cap,
                });
            }
            // Go allocates the declared length and copies what the 500-byte buffer holds:
            // beyond 498 bytes the rest stays zero. We reproduce that, not an error.
            let present = declared.min(V0_MAX_AUTH_DATA_LEN);
            let mut a = Vec::with_capacity(declared);
            a.extend_from_slice(&p[2..2 + present]);
            a.resize(declared, 0);
            self.auth_data = Zeroizing::new(a);
        } else {
            let field = payload
                .get(..V1_LEN_FIELD)
                .ok_or_else(|| act2_len(prefix, V1_LEN_FIELD + TAG_LEN, payload.len()))?;
            let len_pt = self
                .sym
                .decrypt_and_hash(field)
                .map_err(|_| auth_failed(2, "auth data length", hint))?;
            let declared = u32::from_be_bytes([len_pt[0], len_pt[1], len_pt[2], len_pt[3]]);
            let declared_usize = usize::try_from(declared).unwrap_or(usize::MAX);
            if declared_usize > self.auth_cap {
                return Err(HandshakeError::AuthDataOverCap {
                    len: u64::from(declared),
                    max: self.auth_cap,
                });
            }
            let body = &payload[V1_LEN_FIELD..];
            let want = declared_usize + TAG_LEN;
            if body.len() != want {
                return Err(act2_len(prefix, V1_LEN_FIELD + want, payload.len()));
            }
            let a = self
                .sym
                .decrypt_and_hash(body)
                .map_err(|_| auth_failed(2, "auth data", hint))?;
            self.auth_data = Zeroizing::new(a);
        }
        Ok(())
    }

    fn finish(self) -> Result<Established, HandshakeError> {
        let (mut k1, mut k2, mut ck) = self.sym.split();
        let transport = Transport::from_split(self.initiator, k1, k2, ck);
        k1.zeroize();
        k2.zeroize();
        let remote_static = self.remote_static()?;
        let est = Established {
            transport,
            remote_static,
            version: HandshakeVersion::from_u8(self.version).unwrap_or(HandshakeVersion::V2),
            pattern: self.pattern,
            auth_data: if self.initiator {
                Some(self.auth_data.clone())
            } else {
                None
            },
            handshake_hash: self.sym.h(),
            #[cfg(any(test, feature = "testing"))]
            chaining_key: Zeroizing::new(ck),
        };
        ck.zeroize();
        Ok(est)
    }
}

fn act2_len(prefix: usize, payload_expected: usize, payload_got: usize) -> HandshakeError {
    HandshakeError::ActLength {
        act: 2,
        expected: prefix + payload_expected,
        got: prefix + payload_got,
    }
}

/// What a finished handshake yields.
pub struct Established {
    /// The transport ciphers, ready for records (split them for two tasks).
    pub transport: Transport,
    /// The peer's long-term key: learned in XX, confirmed in KK.
    pub remote_static: PublicKey,
    /// The negotiated version. Callers persist `remote_static` (and switch to KK) only when
    /// it is ≥ 2, as Go does (spec §7); see [`Established::should_persist_remote_static`].
    pub version: HandshakeVersion,
    /// Which pattern ran.
    pub pattern: Pattern,
    /// Initiator only: the auth data (the node's `Macaroon: <hex>` header line) received in
    /// act 2; `None` on the responder.
    pub auth_data: Option<Zeroizing<Vec<u8>>>,
    handshake_hash: [u8; 32],
    /// Kept for the vector tests only: product builds do not hold on to it.
    #[cfg(any(test, feature = "testing"))]
    chaining_key: Zeroizing<[u8; 32]>,
}

impl Established {
    /// The final transcript hash `h` (channel binding; equal on both sides).
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.handshake_hash
    }

    /// True when the peer's static key should be stored so the next connection uses KK and
    /// the ECDH stream IDs (negotiated version ≥ 2).
    pub fn should_persist_remote_static(&self) -> bool {
        self.version >= HandshakeVersion::V2
    }

    /// Test-only: the final chaining key (= the transport rotation salt).
    #[cfg(any(test, feature = "testing"))]
    pub fn chaining_key_for_tests(&self) -> [u8; 32] {
        *self.chaining_key
    }
}

impl core::fmt::Debug for Established {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Established")
            .field("transport", &self.transport)
            .field("remote_static", &self.remote_static)
            .field("version", &self.version)
            .field("pattern", &self.pattern)
            .field(
                "auth_data",
                &self.auth_data.as_ref().map(|a| RedactedLen(a.len())),
            )
            .finish_non_exhaustive()
    }
}

/// Prints only a length, for secrets whose size is useful in logs.
struct RedactedLen(usize);

impl core::fmt::Debug for RedactedLen {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}

macro_rules! state_common {
    ($($t:ident),*) => {$(
        impl $t {
            /// The transcript hash `h` after the last act (safe to expose: it is public
            /// transcript data, useful for logging and tests).
            pub fn handshake_hash(&self) -> [u8; 32] {
                self.core.sym.h()
            }

            /// Test-only: the chaining key after the last act.
            #[cfg(any(test, feature = "testing"))]
            pub fn chaining_key_for_tests(&self) -> [u8; 32] {
                self.core.sym.ck()
            }
        }

        impl core::fmt::Debug for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("version", &self.core.version)
                    .field("secrets", &"<redacted>")
                    .finish()
            }
        }
    )*};
}

state_common!(
    XxInitiator,
    XxInitiatorAwaitAct2,
    XxInitiatorSendAct3,
    XxResponder,
    XxResponderSendAct2,
    XxResponderAwaitAct3,
    KkInitiator,
    KkInitiatorAwaitAct2,
    KkResponder,
    KkResponderSendAct2
);

// ---------------------------------------------------------------------------------------
// XX initiator (the app on first connection)

/// XX initiator before act 1. The app pairs with the node: it masks its ephemeral with the
/// stretched pairing phrase so only the node that knows the phrase can answer.
pub struct XxInitiator {
    core: Core,
}

impl XxInitiator {
    /// Starts a pairing handshake with a fresh ephemeral key from `rng`.
    pub fn new<R: CryptoRng + ?Sized>(
        config: &NoiseConfig,
        local_static: &SecretKey,
        password: &MaskScalar,
        rng: &mut R,
    ) -> Result<Self, HandshakeError> {
        Self::with_ephemeral(config, local_static, password, SecretKey::generate(rng))
    }

    /// Like [`XxInitiator::new`] with a caller-chosen ephemeral key. Only for reproducing
    /// test vectors: reusing an ephemeral key breaks the handshake's security.
    pub fn with_ephemeral(
        config: &NoiseConfig,
        local_static: &SecretKey,
        password: &MaskScalar,
        ephemeral: SecretKey,
    ) -> Result<Self, HandshakeError> {
        let core = Core::new(
            config,
            Pattern::Xx,
            true,
            local_static,
            ephemeral,
            None,
            Some(password),
            &[],
        )?;
        Ok(XxInitiator { core })
    }

    /// Act 1 (`-> me`): version ‖ masked ephemeral ‖ tag under the all-zero key (50 bytes).
    pub fn write_act1(mut self) -> Result<(XxInitiatorAwaitAct2, Vec<u8>), HandshakeError> {
        let c = &mut self.core;
        let mut out = Vec::with_capacity(ACT1_LEN);
        out.push(c.version);
        let e = c.ephemeral.public_key();
        let w = c.mask.as_ref().ok_or(HandshakeError::InvalidKey {
            act: 1,
            what: "password scalar (missing)",
            source: KeyError::InvalidSecretKey,
        })?;
        let me = mask(&e, w).map_err(invalid_key(1, "masked ephemeral key"))?;
        // The transcript binds the *unmasked* key; only the wire carries the masked one.
        c.sym.mix_hash(&e.to_bytes());
        out.extend_from_slice(&me.to_bytes());
        c.sym.encrypt_and_hash(&[], &mut out);
        Ok((XxInitiatorAwaitAct2 { core: self.core }, out))
    }
}

/// XX initiator waiting for the node's act 2.
pub struct XxInitiatorAwaitAct2 {
    core: Core,
}

impl XxInitiatorAwaitAct2 {
    /// Act 2 (`<- e, ee, s, es` + auth data). Adopts the node's version. A wrong pairing
    /// phrase fails here, on the node's encrypted static key.
    pub fn read_act2(mut self, act: &[u8]) -> Result<XxInitiatorSendAct3, HandshakeError> {
        let c = &mut self.core;
        c.version = c.read_version(2, act)?;
        let e = take(act, 1, PUBLIC_KEY_LEN, 2)?;
        let s = take(act, 1 + PUBLIC_KEY_LEN, PUBLIC_KEY_LEN + TAG_LEN, 2)?;
        c.read_e(2, e)?;
        let re = c.remote_ephemeral()?;
        c.dh(true, re); // ee
        c.read_s(2, s, HINT_XX_INITIATOR)?;
        let rs = c.remote_static()?;
        c.dh(true, rs); // es
        c.read_auth_payload(&act[XX_ACT2_PREFIX..], XX_ACT2_PREFIX, HINT_TAMPER)?;
        Ok(XxInitiatorSendAct3 { core: self.core })
    }
}

/// XX initiator that has authenticated the node and is ready to send act 3.
pub struct XxInitiatorSendAct3 {
    core: Core,
}

impl XxInitiatorSendAct3 {
    /// The auth data the node sent (its `Macaroon: <hex>` line).
    pub fn auth_data(&self) -> &[u8] {
        &self.core.auth_data
    }

    /// The node's static key, learned in act 2.
    pub fn remote_static(&self) -> Option<PublicKey> {
        self.core.remote_static
    }

    /// The version the node chose.
    pub fn version(&self) -> HandshakeVersion {
        HandshakeVersion::from_u8(self.core.version).unwrap_or(HandshakeVersion::V2)
    }

    /// Act 3 (`-> s, se`): version ‖ encrypted static ‖ tag (66 bytes); finishes.
    pub fn write_act3(mut self) -> Result<(Vec<u8>, Established), HandshakeError> {
        let c = &mut self.core;
        let mut out = Vec::with_capacity(XX_ACT3_LEN);
        out.push(c.version);
        c.write_s(&mut out);
        let re = c.remote_ephemeral()?;
        c.dh(false, re); // se
        c.sym.encrypt_and_hash(&[], &mut out);
        Ok((out, self.core.finish()?))
    }
}

// ---------------------------------------------------------------------------------------
// XX responder (the node on first connection)

/// XX responder before act 1: the node serving an unpaired session.
pub struct XxResponder {
    core: Core,
}

impl XxResponder {
    /// Prepares to answer a pairing client. `auth_data` is sent in act 2 (litd sends
    /// `Macaroon: <hex>`); its size must fit the version we answer with (v0: 498 bytes).
    pub fn new<R: CryptoRng + ?Sized>(
        config: &NoiseConfig,
        local_static: &SecretKey,
        password: &MaskScalar,
        auth_data: &[u8],
        rng: &mut R,
    ) -> Result<Self, HandshakeError> {
        Self::with_ephemeral(
            config,
            local_static,
            password,
            auth_data,
            SecretKey::generate(rng),
        )
    }

    /// Like [`XxResponder::new`] with a caller-chosen ephemeral key (test vectors only).
    pub fn with_ephemeral(
        config: &NoiseConfig,
        local_static: &SecretKey,
        password: &MaskScalar,
        auth_data: &[u8],
        ephemeral: SecretKey,
    ) -> Result<Self, HandshakeError> {
        let core = Core::new(
            config,
            Pattern::Xx,
            false,
            local_static,
            ephemeral,
            None,
            Some(password),
            auth_data,
        )?;
        Ok(XxResponder { core })
    }

    /// Act 1 (`-> me`): unmasks the client's ephemeral. A client with another pairing
    /// phrase already fails here: the act-1 tag's associated data is `h` over the unmasked
    /// key (as in Go; spec §4.3 says act 3, the code and vectors say act 1).
    pub fn read_act1(mut self, act: &[u8]) -> Result<XxResponderSendAct2, HandshakeError> {
        let c = &mut self.core;
        c.read_version(1, act)?;
        exact_len(1, act, ACT1_LEN)?;
        let me = PublicKey::from_bytes(&act[1..1 + PUBLIC_KEY_LEN])
            .map_err(invalid_key(1, "masked ephemeral key"))?;
        let w = c.mask.as_ref().ok_or(HandshakeError::InvalidKey {
            act: 1,
            what: "password scalar (missing)",
            source: KeyError::InvalidSecretKey,
        })?;
        let e = unmask(&me, w).map_err(invalid_key(1, "masked ephemeral key"))?;
        c.sym.mix_hash(&e.to_bytes());
        c.remote_ephemeral = Some(e);
        // The tag's AD is h over the *unmasked* key: a different phrase fails right here.
        c.read_tag(1, &act[1 + PUBLIC_KEY_LEN..], HINT_XX_RESPONDER)?;
        Ok(XxResponderSendAct2 { core: self.core })
    }
}

/// XX responder ready to send act 2.
pub struct XxResponderSendAct2 {
    core: Core,
}

impl XxResponderSendAct2 {
    /// Act 2 (`<- e, ee, s, es` + auth data) in our max version's format.
    pub fn write_act2(mut self) -> Result<(XxResponderAwaitAct3, Vec<u8>), HandshakeError> {
        let c = &mut self.core;
        let mut out = Vec::with_capacity(
            XX_ACT2_V0_LEN.max(XX_ACT2_PREFIX + V1_LEN_FIELD + c.auth_data.len() + TAG_LEN),
        );
        out.push(c.version);
        c.write_e(&mut out);
        let re = c.remote_ephemeral()?;
        c.dh(true, re); // ee
        c.write_s(&mut out);
        c.dh(false, re); // es
        c.write_auth_payload(&mut out)?;
        Ok((XxResponderAwaitAct3 { core: self.core }, out))
    }
}

/// XX responder waiting for act 3.
pub struct XxResponderAwaitAct3 {
    core: Core,
}

impl XxResponderAwaitAct3 {
    /// Act 3 (`-> s, se`): learns and authenticates the client's static key; finishes.
    pub fn read_act3(mut self, act: &[u8]) -> Result<Established, HandshakeError> {
        let c = &mut self.core;
        let got = *act.first().ok_or(HandshakeError::ActLength {
            act: 3,
            expected: XX_ACT3_LEN,
            got: 0,
        })?;
        if got != c.version {
            return Err(HandshakeError::VersionMismatch {
                expected: c.version,
                got,
            });
        }
        exact_len(3, act, XX_ACT3_LEN)?;
        c.read_s(3, &act[1..1 + PUBLIC_KEY_LEN + TAG_LEN], HINT_XX_ACT3)?;
        let rs = c.remote_static()?;
        c.dh(true, rs); // se (responder side: DH(e_r, S_i))
        c.read_tag(3, &act[1 + PUBLIC_KEY_LEN + TAG_LEN..], HINT_TAMPER)?;
        self.core.finish()
    }
}

// ---------------------------------------------------------------------------------------
// KK (reconnect: both sides already know each other's static key)

/// KK initiator before act 1: the app reconnecting to a node it paired with.
pub struct KkInitiator {
    core: Core,
}

impl KkInitiator {
    /// Starts a reconnect to the node whose static key was stored after pairing.
    pub fn new<R: CryptoRng + ?Sized>(
        config: &NoiseConfig,
        local_static: &SecretKey,
        remote_static: &PublicKey,
        rng: &mut R,
    ) -> Result<Self, HandshakeError> {
        Self::with_ephemeral(
            config,
            local_static,
            remote_static,
            SecretKey::generate(rng),
        )
    }

    /// Like [`KkInitiator::new`] with a caller-chosen ephemeral key (test vectors only).
    pub fn with_ephemeral(
        config: &NoiseConfig,
        local_static: &SecretKey,
        remote_static: &PublicKey,
        ephemeral: SecretKey,
    ) -> Result<Self, HandshakeError> {
        let core = Core::new(
            config,
            Pattern::Kk,
            true,
            local_static,
            ephemeral,
            Some(remote_static),
            None,
            &[],
        )?;
        Ok(KkInitiator { core })
    }

    /// Act 1 (`-> e, es, ss`): version ‖ ephemeral ‖ tag (50 bytes).
    pub fn write_act1(mut self) -> Result<(KkInitiatorAwaitAct2, Vec<u8>), HandshakeError> {
        let c = &mut self.core;
        let mut out = Vec::with_capacity(ACT1_LEN);
        out.push(c.version);
        c.write_e(&mut out);
        let rs = c.remote_static()?;
        c.dh(true, rs); // es
        c.dh(false, rs); // ss
        c.sym.encrypt_and_hash(&[], &mut out);
        Ok((KkInitiatorAwaitAct2 { core: self.core }, out))
    }
}

/// KK initiator waiting for act 2.
pub struct KkInitiatorAwaitAct2 {
    core: Core,
}

impl KkInitiatorAwaitAct2 {
    /// Act 2 (`<- e, ee, se` + auth data); finishes.
    pub fn read_act2(mut self, act: &[u8]) -> Result<Established, HandshakeError> {
        let c = &mut self.core;
        c.version = c.read_version(2, act)?;
        let e = take(act, 1, PUBLIC_KEY_LEN, 2)?;
        c.read_e(2, e)?;
        let re = c.remote_ephemeral()?;
        c.dh(true, re); // ee
        c.dh(false, re); // se (initiator side: DH(s_i, E_r))
        c.read_auth_payload(&act[KK_ACT2_PREFIX..], KK_ACT2_PREFIX, HINT_KK_INITIATOR)?;
        self.core.finish()
    }
}

/// KK responder before act 1: the node serving a paired session.
pub struct KkResponder {
    core: Core,
}

impl KkResponder {
    /// Prepares to answer a reconnect from the client whose static key was stored at
    /// pairing; `auth_data` is re-sent in act 2.
    pub fn new<R: CryptoRng + ?Sized>(
        config: &NoiseConfig,
        local_static: &SecretKey,
        remote_static: &PublicKey,
        auth_data: &[u8],
        rng: &mut R,
    ) -> Result<Self, HandshakeError> {
        Self::with_ephemeral(
            config,
            local_static,
            remote_static,
            auth_data,
            SecretKey::generate(rng),
        )
    }

    /// Like [`KkResponder::new`] with a caller-chosen ephemeral key (test vectors only).
    pub fn with_ephemeral(
        config: &NoiseConfig,
        local_static: &SecretKey,
        remote_static: &PublicKey,
        auth_data: &[u8],
        ephemeral: SecretKey,
    ) -> Result<Self, HandshakeError> {
        let core = Core::new(
            config,
            Pattern::Kk,
            false,
            local_static,
            ephemeral,
            Some(remote_static),
            None,
            auth_data,
        )?;
        Ok(KkResponder { core })
    }

    /// Act 1 (`-> e, es, ss`). A client with other keys fails here.
    pub fn read_act1(mut self, act: &[u8]) -> Result<KkResponderSendAct2, HandshakeError> {
        let c = &mut self.core;
        c.read_version(1, act)?;
        exact_len(1, act, ACT1_LEN)?;
        c.read_e(1, &act[1..1 + PUBLIC_KEY_LEN])?;
        let re = c.remote_ephemeral()?;
        let rs = c.remote_static()?;
        c.dh(false, re); // es (responder side: DH(s_r, E_i))
        c.dh(false, rs); // ss
        c.read_tag(1, &act[1 + PUBLIC_KEY_LEN..], HINT_KK_RESPONDER)?;
        Ok(KkResponderSendAct2 { core: self.core })
    }
}

/// KK responder ready to send act 2.
pub struct KkResponderSendAct2 {
    core: Core,
}

impl KkResponderSendAct2 {
    /// Act 2 (`<- e, ee, se` + auth data); finishes.
    pub fn write_act2(mut self) -> Result<(Vec<u8>, Established), HandshakeError> {
        let c = &mut self.core;
        let mut out =
            Vec::with_capacity(KK_ACT2_PREFIX + V1_LEN_FIELD + c.auth_data.len() + TAG_LEN);
        out.push(c.version);
        c.write_e(&mut out);
        let re = c.remote_ephemeral()?;
        let rs = c.remote_static()?;
        c.dh(true, re); // ee
        c.dh(true, rs); // se (responder side: DH(e_r, S_i))
        c.write_auth_payload(&mut out)?;
        Ok((out, self.core.finish()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v0 act 2 whose length field claims more than 498 bytes: Go's reader yields the
    /// declared length, the bytes present, then zeros. Only a non-conforming writer can
    /// produce it, so we build it by hand.
    #[test]
    fn v0_reader_zero_fills_declared_lengths_over_498() {
        let cfg = NoiseConfig::pinned(HandshakeVersion::V0);
        let cs = SecretKey::from_bytes(&[0x11; 32]).unwrap();
        let ss = SecretKey::from_bytes(&[0x22; 32]).unwrap();
        let w = MaskScalar::from_stretched(&[3u8; 32]);
        let init =
            XxInitiator::with_ephemeral(&cfg, &cs, &w, SecretKey::from_bytes(&[0x33; 32]).unwrap())
                .unwrap();
        let resp = XxResponder::with_ephemeral(
            &cfg,
            &ss,
            &w,
            b"",
            SecretKey::from_bytes(&[0x44; 32]).unwrap(),
        )
        .unwrap();
        let (init, a1) = init.write_act1().unwrap();
        let mut st = resp.read_act1(&a1).unwrap();
        let c = &mut st.core;
        let mut out = vec![0u8];
        c.write_e(&mut out);
        let re = c.remote_ephemeral().unwrap();
        c.dh(true, re);
        c.write_s(&mut out);
        c.dh(false, re);
        let mut p = [0u8; V0_PAYLOAD_LEN];
        p[..2].copy_from_slice(&600u16.to_be_bytes());
        p[2..].fill(0xaa);
        c.sym.encrypt_and_hash(&p, &mut out);
        assert_eq!(out.len(), XX_ACT2_V0_LEN);
        let got = init.read_act2(&out).unwrap();
        let a = got.auth_data();
        assert_eq!(a.len(), 600);
        assert!(a[..498].iter().all(|&b| b == 0xaa));
        assert!(a[498..].iter().all(|&b| b == 0));
    }
}
