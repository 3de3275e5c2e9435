//! Creating and revoking sessions against LND (spec B.4–B.6, with DESIGN.md's improvement:
//! revocation deletes the session's macaroon root key in LND).

use std::time::{Duration, SystemTime};

use getrandom::SysRng;
use lnc_core::keys::SecretKey;
use lnc_core::macaroon::verify::time_before_caveat;
use lnc_core::macaroon::{Macaroon, UnixTime};
use lnc_core::pairing::{Entropy, PairingPhrase};
use rand_core::UnwrapErr;
use zeroize::Zeroizing;

use crate::lnd::{Lnd, LndError};
use crate::session::{
    DEFAULT_EXPIRY, DEFAULT_FIRST_CONNECTION_TIMEOUT, RevokeReason, Session, SessionId,
    SessionState, SessionType,
};
use crate::store::{SessionStore, StoreError};

/// Attempts at drawing a key whose 4-byte ID is unused before giving up (a collision is a
/// 1-in-4-billion event per existing session; many in a row mean something is broken).
const MAX_ID_ATTEMPTS: usize = 64;

/// What the operator asks for.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Label shown in listings.
    pub label: String,
    /// Permissions.
    pub session_type: SessionType,
    /// Lifetime from `now` (default [`DEFAULT_EXPIRY`], 90 days).
    pub expiry: Option<Duration>,
    /// Mailbox `host:port`.
    pub mailbox_addr: String,
    /// Skip TLS verification towards the mailbox (development only).
    pub dev_server: bool,
    /// Time allowed for the first pairing (default 10 minutes).
    pub first_connection_timeout: Option<Duration>,
    /// A spending budget the node enforces (required for [`SessionType::Spend`]).
    pub budget: Option<crate::spend::Budget>,
    /// Call limits (unset: the defaults of the session's kind).
    pub limits: crate::spend::Limits,
}

impl NewSession {
    /// A session of `session_type` with default expiry and deadline.
    pub fn new(
        label: impl Into<String>,
        session_type: SessionType,
        mailbox_addr: impl Into<String>,
    ) -> Self {
        NewSession {
            label: label.into(),
            session_type,
            expiry: None,
            mailbox_addr: mailbox_addr.into(),
            dev_server: false,
            first_connection_timeout: None,
            budget: None,
            limits: crate::spend::Limits::default(),
        }
    }
}

/// When a session asked for at some instant starts, expires and must first be paired by,
/// and the `time-before` caveat of its expiry: see [`NewSession::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTimes {
    /// The instant, in whole seconds (the store keeps whole seconds, as litd's RPC does).
    pub created: SystemTime,
    /// `created` plus the lifetime.
    pub expiry: SystemTime,
    /// `created` plus the first-connection timeout.
    pub first_connection_deadline: SystemTime,
    /// The macaroon caveat for `expiry`, the same instant to the second.
    pub time_before_caveat: String,
}

impl NewSession {
    /// Everything [`create_session`] checks before it draws a key or asks LND for anything,
    /// for a session created at `now`. The durations come from the admin API's JSON, so one
    /// past what a `SystemTime` or the macaroon's RFC 3339 date can hold is refused, not
    /// added (which panics).
    pub fn check(&self, now: SystemTime) -> Result<SessionTimes, SessionError> {
        let created = SystemTime::UNIX_EPOCH
            + Duration::from_secs(
                now.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            );
        let out_of_range = || SessionError::Invalid("expiry out of range".into());
        let expiry = created
            .checked_add(self.expiry.unwrap_or(DEFAULT_EXPIRY))
            .ok_or_else(out_of_range)?;
        if expiry <= created {
            return Err(SessionError::Invalid("expiry must be in the future".into()));
        }
        if self.label.trim().is_empty() {
            return Err(SessionError::Invalid("a label is required".into()));
        }
        if self.session_type.permissions().is_empty() {
            return Err(SessionError::Invalid(
                "a custom session needs at least one permission".into(),
            ));
        }
        if self.session_type == SessionType::Spend && self.budget.is_none() {
            return Err(SessionError::Invalid(
                "a spend session needs a budget (e.g. --budget 50000sat/day)".into(),
            ));
        }
        let first_connection_deadline = created
            .checked_add(
                self.first_connection_timeout
                    .unwrap_or(DEFAULT_FIRST_CONNECTION_TIMEOUT),
            )
            .ok_or_else(|| SessionError::Invalid("first-connection timeout out of range".into()))?;
        let unix = expiry
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| SessionError::Invalid("expiry before 1970".into()))?;
        let time_before_caveat = time_before_caveat(UnixTime::from_duration_since_epoch(unix))
            .ok_or_else(out_of_range)?;
        Ok(SessionTimes {
            created,
            expiry,
            first_connection_deadline,
            time_before_caveat,
        })
    }
}

/// The result of [`create_session`]: the stored session, and the two secrets the operator
/// or the tunnel need. Debug is redacted.
pub struct CreatedSession {
    /// The stored session.
    pub session: Session,
    phrase: PairingPhrase,
    auth_data: Zeroizing<String>,
}

impl CreatedSession {
    /// The pairing phrase, for the operator to hand to the app (once: it is shown again only
    /// while the session is unpaired).
    pub fn expose_phrase(&self) -> &PairingPhrase {
        &self.phrase
    }

    /// `Macaroon: <hex>`, sent to the client inside the Noise handshake.
    pub fn expose_auth_data(&self) -> &str {
        &self.auth_data
    }
}

impl std::fmt::Debug for CreatedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedSession")
            .field("session", &self.session)
            .field("phrase", &"<redacted>")
            .field("auth_data", &"<redacted>")
            .finish()
    }
}

/// Why creating or revoking a session failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Bad parameters.
    #[error("session: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// LND failed.
    #[error(transparent)]
    Lnd(#[from] LndError),
    /// The session is revoked in the store, but LND could not delete its macaroon root key.
    #[error(
        "session {id} is revoked locally, but LND did not delete its macaroon root key \
         ({source}); its macaroon stays valid against LND until expiry — run revoke again \
         once LND is reachable"
    )]
    RevokedButMacaroonLive {
        /// The session.
        id: SessionId,
        /// The LND error.
        source: LndError,
    },
}

/// Creates a session: fresh local key (re-drawn on ID collision), pairing phrase, a macaroon
/// baked by LND under the session's root key ID with the type's permissions plus a
/// `time-before` caveat at the expiry; stores it as `Created`.
pub async fn create_session(
    lnd: &Lnd,
    store: &SessionStore,
    params: NewSession,
    now: SystemTime,
) -> Result<CreatedSession, SessionError> {
    // Every check comes before LND bakes anything: a request refused later would leave a
    // root key in LND for a session that was never stored.
    let SessionTimes {
        created: now,
        expiry,
        first_connection_deadline,
        time_before_caveat: caveat,
    } = params.check(now)?;
    let ops = params.session_type.permissions();
    let mut rng = UnwrapErr(SysRng);
    let mut local_key = None;
    for _ in 0..MAX_ID_ATTEMPTS {
        let k = SecretKey::generate(&mut rng);
        if !store.contains(SessionId::from_public_key(&k.public_key()))? {
            local_key = Some(k);
            break;
        }
    }
    let local_key = local_key.ok_or_else(|| {
        SessionError::Invalid("could not find an unused session ID; the store looks damaged".into())
    })?;
    let local_public_key = local_key.public_key();
    let id = SessionId::from_public_key(&local_public_key);
    let entropy = Entropy::generate(&mut rng);
    let root_key_id = id.macaroon_root_key_id();

    let baked = lnd
        .bake_macaroon(
            root_key_id,
            &ops,
            params.session_type.allow_external_permissions(),
        )
        .await?;
    let mut mac =
        Macaroon::decode_lenient(&baked).map_err(|e| LndError::BadMacaroon(e.to_string()))?;
    mac.add_first_party_caveat(caveat.as_bytes())
        .map_err(|e| LndError::BadMacaroon(e.to_string()))?;
    let macaroon = Zeroizing::new(mac.to_v2_bytes());

    let session = Session {
        id,
        label: params.label,
        session_type: params.session_type,
        state: SessionState::Created,
        created_at: now,
        expiry,
        revoked_at: None,
        mailbox_addr: params.mailbox_addr,
        dev_server: params.dev_server,
        local_public_key,
        remote_public_key: None,
        macaroon_root_key_id: root_key_id,
        failed_attempts: 0,
        first_connection_deadline,
        last_seen: None,
        local_key,
        entropy,
        macaroon,
    };
    if let Err(e) = store.insert(&session) {
        // Do not leave a live root key behind for a session that does not exist.
        let _ = lnd.delete_macaroon_id(root_key_id).await;
        return Err(e.into());
    }
    Ok(CreatedSession {
        phrase: PairingPhrase::from_entropy(session.entropy.clone()),
        auth_data: session.auth_data(),
        session,
    })
}

/// Revokes a session: first in the store (so the node stops serving it even if LND is
/// down), then in LND (`DeleteMacaroonID`), which invalidates the macaroon everywhere.
/// Safe to repeat, e.g. after LND was unreachable.
pub async fn revoke_session(
    lnd: &Lnd,
    store: &SessionStore,
    id: SessionId,
    reason: RevokeReason,
    now: SystemTime,
) -> Result<Session, SessionError> {
    let session = store.revoke(id, reason, now)?;
    lnd.delete_macaroon_id(session.macaroon_root_key_id)
        .await
        .map_err(|source| SessionError::RevokedButMacaroonLive { id, source })?;
    Ok(session)
}

/// Runs [`SessionStore::sweep`] and deletes the macaroon root key in LND of every session it
/// ended (expired, or unpaired past the first-connection deadline), so those macaroons stop
/// working at once rather than at their `time-before`. Returns the ended sessions; LND errors
/// are returned per session so the caller can log them and retry on the next sweep.
pub async fn sweep_sessions(
    lnd: &Lnd,
    store: &SessionStore,
    now: SystemTime,
) -> Result<Vec<(Session, Result<(), LndError>)>, SessionError> {
    let mut out = Vec::new();
    for s in store.sweep(now)? {
        let r = lnd
            .delete_macaroon_id(s.macaroon_root_key_id)
            .await
            .map(|_| ());
        out.push((s, r));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn check_rounds_now_and_applies_defaults() {
        let p = NewSession::new("l", SessionType::ReadOnly, "m:443");
        let now = at(1_700_000_000) + Duration::from_millis(900);
        let t = p.check(now).unwrap();
        assert_eq!(t.created, at(1_700_000_000));
        assert_eq!(t.expiry, t.created + DEFAULT_EXPIRY);
        assert_eq!(
            t.first_connection_deadline,
            t.created + DEFAULT_FIRST_CONNECTION_TIMEOUT
        );
        assert_eq!(t.time_before_caveat, "time-before 2024-02-12T22:13:20Z");
    }

    #[test]
    fn check_refuses_what_cannot_make_a_session() {
        let now = at(1_700_000_000);
        let refused = |p: NewSession| match p.check(now) {
            Err(SessionError::Invalid(why)) => why,
            other => panic!("{other:?}"),
        };
        let base = NewSession::new("l", SessionType::Admin, "");
        let mut p = base.clone();
        p.expiry = Some(Duration::ZERO);
        assert_eq!(refused(p), "expiry must be in the future");
        // Lifetimes from the admin API's JSON: past what a SystemTime (then a year-9999
        // RFC 3339 date) holds, they are refused instead of overflowing.
        for secs in [u64::MAX, i64::MAX as u64, 300_000_000_000] {
            let mut p = base.clone();
            p.expiry = Some(Duration::from_secs(secs));
            assert_eq!(refused(p), "expiry out of range", "{secs}");
        }
        let mut p = base.clone();
        p.first_connection_timeout = Some(Duration::from_secs(u64::MAX));
        assert_eq!(refused(p), "first-connection timeout out of range");
        let mut p = base.clone();
        p.label = " ".into();
        assert_eq!(refused(p), "a label is required");
        let p = NewSession::new("l", SessionType::Custom(vec![]), "");
        assert_eq!(refused(p), "a custom session needs at least one permission");
    }
}
