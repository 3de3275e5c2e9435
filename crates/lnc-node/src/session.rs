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

/// A session ID as the admin API and the CLI take it: exactly 8 hex digits (either case).
impl std::str::FromStr for SessionId {
    type Err = InvalidSessionId;

    fn from_str(s: &str) -> Result<Self, InvalidSessionId> {
        let b = hex::decode(s).map_err(|_| InvalidSessionId)?;
        Ok(SessionId(b.try_into().map_err(|_| InvalidSessionId)?))
    }
}

/// A string that is not a session ID (8 hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a session ID is 8 hex digits")]
pub struct InvalidSessionId;

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
    /// Read everything, create invoices and pay within a budget the node enforces
    /// (`crate::spend`): LND's read-only ops plus `offchain:write` and `invoices:write`.
    /// On-chain sends and channel changes are refused by the node whatever the macaroon
    /// says.
    Spend,
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
            SessionType::Spend => {
                let mut ops = Preset::ReadOnly.ops();
                ops.push(Op::new("offchain", "write"));
                ops.push(Op::new("invoices", "write"));
                ops
            }
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
            SessionType::Spend => "spend",
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

/// The session's life as pure transitions: each takes the time it happens at, changes the
/// record or refuses, and touches nothing else. The store runs one inside a write
/// transaction and persists the result; the node decides what to do about it (stop the
/// listener, delete the root key). So every rule is tested here without a database or a
/// clock.
impl Session {
    /// Moves to `to` if litd's state machine allows it; entering a terminal state stamps
    /// `revoked_at = now`. Shifting to the current state changes nothing.
    pub fn shift(&mut self, to: SessionState, now: SystemTime) -> Result<(), TransitionError> {
        if self.state == to {
            return Ok(());
        }
        if !self.state.can_shift_to(&to) {
            return Err(TransitionError::Illegal {
                id: self.id,
                from: self.state.name(),
                to: to.name(),
            });
        }
        if to.is_terminal() {
            self.revoked_at = Some(now);
        }
        self.state = to;
        Ok(())
    }

    /// The first successful handshake: the app's static key is stored and later connections
    /// use Noise KK. Pairing again with the same key changes nothing; with another, refused.
    pub fn pair(&mut self, remote: &PublicKey, now: SystemTime) -> Result<(), TransitionError> {
        if self.remote_public_key.is_some_and(|k| k != *remote) {
            return Err(TransitionError::AlreadyPaired(self.id));
        }
        self.shift(SessionState::InUse, now)?;
        self.remote_public_key = Some(*remote);
        self.last_seen = Some(now);
        Ok(())
    }

    /// An app is (still) connected.
    pub fn touch(&mut self, now: SystemTime) {
        self.last_seen = Some(now);
    }

    /// Counts a failed or stalled pairing attempt. An unpaired session that reaches `limit`
    /// (at least 1) is revoked: its phrase must be taken as known to an attacker. A paired
    /// session only counts (its phrase no longer opens it).
    pub fn count_failed_attempt(
        &mut self,
        limit: u32,
        now: SystemTime,
    ) -> Result<(), TransitionError> {
        self.failed_attempts = self.failed_attempts.saturating_add(1);
        if self.failed_attempts >= limit.max(1) && self.state == SessionState::Created {
            self.shift(
                SessionState::Revoked {
                    reason: RevokeReason::FailedAttempts,
                },
                now,
            )?;
        }
        Ok(())
    }

    /// Revokes the session. A revoked session keeps its first reason; an expired one cannot
    /// be revoked (as in litd).
    pub fn revoke(&mut self, reason: RevokeReason, now: SystemTime) -> Result<(), TransitionError> {
        if matches!(self.state, SessionState::Revoked { .. }) {
            return Ok(());
        }
        self.shift(SessionState::Revoked { reason }, now)
    }

    /// The terminal state a live session must enter at `now`, if any: `Expired` past its
    /// expiry, or revoked past its first-connection deadline while still unpaired.
    pub fn due_ending(&self, now: SystemTime) -> Option<SessionState> {
        if self.state.is_terminal() {
            None
        } else if now >= self.expiry {
            Some(SessionState::Expired)
        } else if self.state == SessionState::Created
            && self.remote_public_key.is_none()
            && now >= self.first_connection_deadline
        {
            Some(SessionState::Revoked {
                reason: RevokeReason::FirstConnectionDeadline,
            })
        } else {
            None
        }
    }

    /// Enters [`due_ending`](Self::due_ending)'s state if one is due; returns whether it did.
    pub fn end_if_due(&mut self, now: SystemTime) -> Result<bool, TransitionError> {
        match self.due_ending(now) {
            Some(to) => self.shift(to, now).map(|()| true),
            None => Ok(false),
        }
    }
}

/// A change the session's rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The state machine does not allow it (e.g. reviving an expired session).
    #[error("session {id}: illegal state transition from {from} to {to}")]
    Illegal {
        /// The session.
        id: SessionId,
        /// Current state name.
        from: &'static str,
        /// Requested state name.
        to: &'static str,
    },
    /// The session is paired with another app's key; pair a new session for a new app.
    #[error("session {0} is already paired with a different client key")]
    AlreadyPaired(SessionId),
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
pub(crate) mod tests {
    use super::*;
    use lnc_core::keys::SecretKey;

    fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
        rand_core::UnwrapErr(getrandom::SysRng)
    }

    /// An unpaired custom session created at `now`, expiring an hour later.
    pub(crate) fn sample(now: SystemTime) -> Session {
        let local_key = SecretKey::generate(&mut rng());
        let local_public_key = local_key.public_key();
        let id = SessionId::from_public_key(&local_public_key);
        Session {
            id,
            label: "test".into(),
            session_type: SessionType::Custom(vec![
                Op::new("info", "read"),
                Op::uri("/lnrpc.Lightning/GetInfo"),
            ]),
            state: SessionState::Created,
            created_at: now,
            expiry: now + Duration::from_secs(3600),
            revoked_at: None,
            mailbox_addr: "mailbox.example:443".into(),
            dev_server: false,
            local_public_key,
            remote_public_key: None,
            macaroon_root_key_id: id.macaroon_root_key_id(),
            failed_attempts: 0,
            first_connection_deadline: now + DEFAULT_FIRST_CONNECTION_TIMEOUT,
            last_seen: None,
            local_key,
            entropy: Entropy::generate(&mut rng()),
            macaroon: Zeroizing::new(b"\x02\x01\x03lnd-secret-macaroon-bytes".to_vec()),
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn ending_is_due_at_the_deadline_unpaired_and_at_expiry_always() {
        let s = sample(at(0));
        let deadline = DEFAULT_FIRST_CONNECTION_TIMEOUT.as_secs();
        assert_eq!(s.due_ending(at(deadline - 1)), None);
        assert_eq!(
            s.due_ending(at(deadline)),
            Some(SessionState::Revoked {
                reason: RevokeReason::FirstConnectionDeadline
            })
        );
        let mut paired = s.clone();
        let app = SecretKey::generate(&mut rng()).public_key();
        paired.pair(&app, at(1)).unwrap();
        assert_eq!(
            paired.due_ending(at(deadline)),
            None,
            "a paired session has no deadline"
        );
        assert_eq!(paired.due_ending(at(3600)), Some(SessionState::Expired));
        let mut ended = paired.clone();
        assert!(ended.end_if_due(at(3600)).unwrap());
        assert_eq!(ended.revoked_at, Some(at(3600)));
        assert_eq!(
            ended.due_ending(at(9999)),
            None,
            "terminal states end nothing more"
        );
        assert!(!ended.end_if_due(at(9999)).unwrap());
    }

    #[test]
    fn attempts_burn_an_unpaired_phrase_at_the_limit_only() {
        let mut s = sample(at(0));
        s.count_failed_attempt(3, at(1)).unwrap();
        s.count_failed_attempt(3, at(2)).unwrap();
        assert_eq!((s.failed_attempts, &s.state), (2, &SessionState::Created));
        s.count_failed_attempt(3, at(3)).unwrap();
        assert!(matches!(
            s.state,
            SessionState::Revoked {
                reason: RevokeReason::FailedAttempts
            }
        ));
        let mut paired = sample(at(0));
        paired
            .pair(&SecretKey::generate(&mut rng()).public_key(), at(1))
            .unwrap();
        paired.count_failed_attempt(1, at(2)).unwrap();
        assert_eq!(
            paired.state,
            SessionState::InUse,
            "a paired session only counts"
        );
    }

    #[test]
    fn pairing_twice_needs_the_same_key_and_revoking_keeps_the_first_reason() {
        let mut s = sample(at(0));
        let app = SecretKey::generate(&mut rng()).public_key();
        s.pair(&app, at(1)).unwrap();
        s.pair(&app, at(2)).unwrap();
        let other = SecretKey::generate(&mut rng()).public_key();
        assert_eq!(
            s.pair(&other, at(3)),
            Err(TransitionError::AlreadyPaired(s.id))
        );
        s.revoke(RevokeReason::User, at(4)).unwrap();
        s.revoke(RevokeReason::FailedAttempts, at(5)).unwrap();
        assert_eq!(
            s.state,
            SessionState::Revoked {
                reason: RevokeReason::User
            }
        );
        assert_eq!(s.revoked_at, Some(at(4)));
        let mut expired = sample(at(0));
        expired.end_if_due(at(3600)).unwrap();
        assert!(matches!(
            expired.revoke(RevokeReason::User, at(3601)),
            Err(TransitionError::Illegal { .. })
        ));
    }

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
    fn session_id_from_str() {
        let id: SessionId = "0a0B0c0D".parse().unwrap();
        assert_eq!(id, SessionId([0x0a, 0x0b, 0x0c, 0x0d]));
        assert_eq!(id.to_string(), "0a0b0c0d");
        for bad in [
            "",
            "0a0b0c0",
            "0a0b0c0d0e",
            "0a0b0c0g",
            " 0a0b0c0d",
            "+a0b0c0d",
        ] {
            assert_eq!(bad.parse::<SessionId>(), Err(InvalidSessionId), "{bad:?}");
        }
    }

    #[test]
    fn root_key_id_layout() {
        let id = SessionId([0x01, 0x02, 0x03, 0x04]);
        assert_eq!(id.macaroon_root_key_id(), 0xFFEE_DDCC_0102_0304);
    }
}
