//! The session record: everything the node needs to serve one LNC client through the mailbox.
//!
//! Modelled on Lightning Terminal's `session.Session` (spec B.1) with the improvements from
//! DESIGN.md: a session that expires is `Expired` (not `Revoked`), the pairing phrase and keys
//! are encrypted at rest, and unpaired sessions carry a first-connection deadline and a
//! failed-attempt counter.

use std::fmt;
use std::time::{Duration, SystemTime};

use lnc_core::keys::{PublicKey, SecretKey};
use lnc_core::macaroon::Op;
use lnc_core::macaroon::lnd::{
    INVOICE_PERMISSIONS, Preset, ops_from_pairs, super_macaroon_root_key_id,
};
use lnc_core::pairing::{Entropy, PairingPhrase};
use zeroize::Zeroizing;

/// Default session lifetime: litcli's `--expiry` default (7 776 000 s = 90 days).
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// Default time an unpaired session waits for its first client: litd's
/// `firstlncconndeadline` (10 minutes). A phrase nobody used soon is likely lost or leaked.
pub const DEFAULT_FIRST_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Failed authentications (right streams, wrong SPAKE2 password) an unpaired session allows
/// before its phrase is burnt. Only someone who learned the stream IDs without the phrase
/// (e.g. a malicious relay) can cause one, so the design allows a single attempt.
pub const MAX_FAILED_ATTEMPTS: u32 = 1;

/// The 4-byte session ID ("alias"): bytes `[1..5]` of the compressed local public key, as
/// litd derives it. It names the session in LND's macaroon root key ID (spec B.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 4]);

impl SessionId {
    /// Derives the ID from the session's local public key (skipping the 02/03 parity byte).
    pub fn from_public_key(key: &PublicKey) -> Self {
        let b = key.to_bytes();
        SessionId([b[1], b[2], b[3], b[4]])
    }

    /// The macaroon root key ID litd uses for this session: `0xFFEEDDCC ‖ id`, big-endian.
    /// litd (and our node) recognise such macaroons as session ("super") macaroons.
    pub fn macaroon_root_key_id(self) -> u64 {
        super_macaroon_root_key_id(self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// What a session's macaroon allows. The node hands exactly these permissions to LND's
/// `BakeMacaroon`; LND then enforces them on every proxied call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionType {
    /// Every LND entity, `read` only (LND's `readonly.macaroon` ops).
    ReadOnly,
    /// Read and write on everything (LND's `admin.macaroon` ops).
    Admin,
    /// Create and look up invoices and read node info: a point-of-sale app.
    InvoiceOnly,
    /// Exactly these ops: `entity:action` pairs and/or `uri:<full method>` ops.
    Custom(Vec<Op>),
}

impl SessionType {
    /// The ops to bake into the session macaroon.
    pub fn permissions(&self) -> Vec<Op> {
        match self {
            SessionType::ReadOnly => Preset::ReadOnly.ops(),
            SessionType::Admin => Preset::Admin.ops(),
            SessionType::InvoiceOnly => {
                let mut ops = ops_from_pairs(INVOICE_PERMISSIONS);
                ops.push(Op::new("info", "read"));
                ops
            }
            SessionType::Custom(ops) => ops.clone(),
        }
    }

    /// Custom sessions may name methods of other daemons (Loop, Pool) that LND does not
    /// know, so LND must accept permissions it cannot check itself (litd does the same).
    pub fn allow_external_permissions(&self) -> bool {
        matches!(self, SessionType::Custom(_))
    }

    /// Short name used in listings and the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            SessionType::ReadOnly => "readonly",
            SessionType::Admin => "admin",
            SessionType::InvoiceOnly => "invoice",
            SessionType::Custom(_) => "custom",
        }
    }
}

/// Why a session was revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeReason {
    /// The operator revoked it.
    User,
    /// Nobody paired within the first-connection deadline.
    FirstConnectionDeadline,
    /// An authentication failed: someone held the stream IDs but not the phrase.
    FailedAttempts,
    /// Any other reason, as text.
    Other(String),
}

impl fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevokeReason::User => f.write_str("revoked by the operator"),
            RevokeReason::FirstConnectionDeadline => {
                f.write_str("no client paired before the first-connection deadline")
            }
            RevokeReason::FailedAttempts => {
                f.write_str("a pairing attempt failed authentication; the phrase is burnt")
            }
            RevokeReason::Other(s) => f.write_str(s),
        }
    }
}

/// Where a session is in its life (spec B.3, with `Expired` used for every expiry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Created, waiting for the first client to pair with the phrase.
    Created,
    /// Paired: the client's static key is known, later connections use Noise KK.
    InUse,
    /// Terminal: revoked, for the given reason.
    Revoked {
        /// Why.
        reason: RevokeReason,
    },
    /// Terminal: the session reached its expiry.
    Expired,
}

impl SessionState {
    /// Revoked and expired sessions are never served again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, SessionState::Revoked { .. } | SessionState::Expired)
    }

    /// Short name used in listings.
    pub fn name(&self) -> &'static str {
        match self {
            SessionState::Created => "created",
            SessionState::InUse => "in use",
            SessionState::Revoked { .. } => "revoked",
            SessionState::Expired => "expired",
        }
    }

    /// Whether litd's state machine allows `self → to`. Same-state shifts are allowed
    /// (idempotent); terminal states never change.
    pub fn can_shift_to(&self, to: &SessionState) -> bool {
        use SessionState::*;
        matches!(
            (self, to),
            (Created, Created)
                | (InUse, InUse)
                | (Expired, Expired)
                | (Revoked { .. }, Revoked { .. })
                | (Created, InUse)
                | (Created | InUse, Revoked { .. } | Expired)
        )
    }
}

/// One session. Secret fields are private, zeroized on drop and redacted in `Debug`.
#[derive(Clone)]
pub struct Session {
    /// The 4-byte session ID (from the local public key).
    pub id: SessionId,
    /// The operator's label.
    pub label: String,
    /// What the macaroon allows.
    pub session_type: SessionType,
    /// Where the session is in its life.
    pub state: SessionState,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it expires (also baked into the macaroon as `time-before`).
    pub expiry: SystemTime,
    /// When it entered a terminal state.
    pub revoked_at: Option<SystemTime>,
    /// Mailbox `host:port` the session listens on.
    pub mailbox_addr: String,
    /// Skip TLS verification towards the mailbox (local development only).
    pub dev_server: bool,
    /// The local static public key: the session's external identifier.
    pub local_public_key: PublicKey,
    /// The client's static key, learned at pairing (then Noise KK is used).
    pub remote_public_key: Option<PublicKey>,
    /// LND macaroon root key ID (`0xFFEEDDCC ‖ id`); deleted in LND on revocation.
    pub macaroon_root_key_id: u64,
    /// Authentications that failed on this session's streams.
    pub failed_attempts: u32,
    /// An unpaired session is revoked if no client pairs before this instant.
    pub first_connection_deadline: SystemTime,
    /// Last time a client was connected.
    pub last_seen: Option<SystemTime>,
    pub(crate) local_key: SecretKey,
    pub(crate) entropy: Entropy,
    pub(crate) macaroon: Zeroizing<Vec<u8>>,
}

impl Session {
    /// The session's local static private key (for the Noise handshake).
    pub fn local_key(&self) -> &SecretKey {
        &self.local_key
    }

    /// The pairing entropy (for the mailbox stream IDs and the SPAKE2 password).
    pub fn entropy(&self) -> &Entropy {
        &self.entropy
    }

    /// The pairing phrase, only while the session is unpaired and live (DESIGN.md: the phrase
    /// is shown again only until a client pairs; afterwards it no longer locates the session
    /// and re-showing it would only widen its exposure). The tunnel uses [`entropy`](Self::entropy).
    pub fn expose_pairing_phrase(&self) -> Option<PairingPhrase> {
        (self.state == SessionState::Created && self.remote_public_key.is_none())
            .then(|| PairingPhrase::from_entropy(self.entropy.clone()))
    }

    /// The baked session macaroon (V2 binary), a bearer credential for LND.
    pub fn macaroon_bytes(&self) -> &[u8] {
        &self.macaroon
    }

    /// The Noise handshake auth data the client echoes as gRPC metadata: `Macaroon: <hex>`.
    pub fn auth_data(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("Macaroon: {}", hex::encode(&*self.macaroon)))
    }

    /// Whether the session may be served at `now`.
    pub fn is_active_at(&self, now: SystemTime) -> bool {
        !self.state.is_terminal() && now < self.expiry
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("session_type", &self.session_type)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("expiry", &self.expiry)
            .field("revoked_at", &self.revoked_at)
            .field("mailbox_addr", &self.mailbox_addr)
            .field("dev_server", &self.dev_server)
            .field("local_public_key", &self.local_public_key)
            .field("remote_public_key", &self.remote_public_key)
            .field(
                "macaroon_root_key_id",
                &format_args!("{:#018x}", self.macaroon_root_key_id),
            )
            .field("failed_attempts", &self.failed_attempts)
            .field("first_connection_deadline", &self.first_connection_deadline)
            .field("last_seen", &self.last_seen)
            .field("local_key", &"<redacted>")
            .field("entropy", &"<redacted>")
            .field("macaroon", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        use SessionState::*;
        let rev = Revoked {
            reason: RevokeReason::User,
        };
        assert!(Created.can_shift_to(&InUse));
        assert!(Created.can_shift_to(&rev));
        assert!(InUse.can_shift_to(&Expired));
        assert!(!InUse.can_shift_to(&Created));
        assert!(!Expired.can_shift_to(&rev));
        assert!(!rev.can_shift_to(&Expired));
        assert!(!rev.can_shift_to(&InUse));
        assert!(rev.can_shift_to(&rev));
    }

    #[test]
    fn invoice_only_permissions() {
        let ops = SessionType::InvoiceOnly.permissions();
        assert!(ops.contains(&Op::new("invoices", "write")));
        assert!(ops.contains(&Op::new("info", "read")));
        assert!(!ops.contains(&Op::new("offchain", "write")));
        assert!(!SessionType::ReadOnly.allow_external_permissions());
    }

    #[test]
    fn root_key_id_layout() {
        let id = SessionId([0x01, 0x02, 0x03, 0x04]);
        assert_eq!(id.macaroon_root_key_id(), 0xFFEE_DDCC_0102_0304);
    }
}
