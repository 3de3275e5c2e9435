//! The session store: one redb file in the node's data directory, keyed by session ID.
//!
//! Public fields are stored as JSON; the local private key, the pairing entropy and the
//! macaroon are sealed with the node secret (ChaCha20-Poly1305, bound to the session ID and
//! public key), so a copied store file reveals no credential.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lnc_core::keys::{PUBLIC_KEY_LEN, PublicKey, SecretKey};
use lnc_core::macaroon::Op;
use lnc_core::pairing::{ENTROPY_LEN, Entropy};
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secret::{NodeSecret, SecretError};
use crate::session::{
    MAX_FAILED_ATTEMPTS, RevokeReason, Session, SessionId, SessionState, SessionType,
    TransitionError,
};

/// File name of the store inside the data directory.
pub const STORE_FILE: &str = "sessions.redb";

const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
const RECORD_VERSION: u8 = 1;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The node secret could not be loaded, or a record could not be (un)sealed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The data directory could not be created.
    #[error("session store: cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store file's mode could not be set to owner-only.
    #[error(
        "session store {path}: cannot make it readable by its owner only ({source}); run `chmod 600 {path}` as the file's owner"
    )]
    StoreMode {
        /// The store file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// redb failed (I/O, corruption, or the file is locked by another running node).
    #[error(
        "session store: database error: {0} (is another `lnc node` using this data directory?)"
    )]
    Db(Box<redb::Error>),
    /// A stored record could not be decoded.
    #[error("session store: record {id} is corrupt: {what}")]
    Corrupt {
        /// The session.
        id: SessionId,
        /// What is wrong.
        what: String,
    },
    /// No session with that ID.
    #[error("session {0} not found")]
    NotFound(SessionId),
    /// A session with that ID exists already.
    #[error("session {0} already exists")]
    Exists(SessionId),
    /// The session's rules refuse the change.
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

pub(crate) fn db_err<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(Box::new(e.into()))
}

/// The redb-backed session store. Cheap to share behind an `Arc`; every method runs one
/// short transaction (call from `spawn_blocking` in async code if latency matters).
pub struct SessionStore {
    pub(crate) db: Database,
    secret: NodeSecret,
    dir: PathBuf,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SessionStore {
    /// Opens (or creates) the store in `dir`, loading or creating `dir/node.secret`.
    /// Refuses to open if the secret file is readable by group or others.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let dir_err = |source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        };
        // Owner-only, as LND's data dir: the store holds labels, session types, keys and
        // states that other local users have no business reading.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(dir_err)?;
        let secret = NodeSecret::load_or_create(dir)?;
        let path = dir.join(STORE_FILE);
        let db = Database::create(&path).map_err(db_err)?;
        // redb creates the file with the umask's mode (usually 0644); also tightens a
        // store created by an older version.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| StoreError::StoreMode {
                    path: path.clone(),
                    source,
                },
            )?;
        }
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(SESSIONS).map_err(db_err)?;
        crate::spend::store::create_tables(&txn)?;
        txn.commit().map_err(db_err)?;
        Ok(SessionStore {
            db,
            secret,
            dir: dir.to_path_buf(),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a session ID is taken (creation picks a fresh key on collision, as litd does).
    pub fn contains(&self, id: SessionId) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(SESSIONS).map_err(db_err)?;
        Ok(t.get(id.0.as_slice()).map_err(db_err)?.is_some())
    }

    /// Inserts a new session; fails with [`StoreError::Exists`] if the ID is taken.
    pub fn insert(&self, session: &Session) -> Result<(), StoreError> {
        let bytes = self.encode(session)?;
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(SESSIONS).map_err(db_err)?;
            if t.get(session.id.0.as_slice()).map_err(db_err)?.is_some() {
                return Err(StoreError::Exists(session.id));
            }
            t.insert(session.id.0.as_slice(), bytes.as_slice())
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// Reads one session.
    pub fn get(&self, id: SessionId) -> Result<Session, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(SESSIONS).map_err(db_err)?;
        let v = t
            .get(id.0.as_slice())
            .map_err(db_err)?
            .ok_or(StoreError::NotFound(id))?;
        self.decode(id, v.value())
    }

    /// Finds a session by its local public key (the identifier `revoke` uses in litd).
    pub fn get_by_public_key(&self, key: &PublicKey) -> Result<Session, StoreError> {
        let id = SessionId::from_public_key(key);
        let s = self.get(id)?;
        if s.local_public_key != *key {
            return Err(StoreError::NotFound(id));
        }
        Ok(s)
    }

    /// Every session, in ID order.
    pub fn list(&self) -> Result<Vec<Session>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(SESSIONS).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            let id = SessionId(k.value().try_into().map_err(|_| StoreError::Corrupt {
                id: SessionId([0; 4]),
                what: "key is not 4 bytes".into(),
            })?);
            out.push(self.decode(id, v.value())?);
        }
        Ok(out)
    }

    /// Read-modify-write of one session in a single write transaction.
    fn update<T>(
        &self,
        id: SessionId,
        f: impl FnOnce(&mut Session) -> Result<T, StoreError>,
    ) -> Result<(Session, T), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let (session, out) = {
            let mut t = txn.open_table(SESSIONS).map_err(db_err)?;
            let mut s = {
                let v = t
                    .get(id.0.as_slice())
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound(id))?;
                self.decode(id, v.value())?
            };
            let out = f(&mut s)?;
            let bytes = self.encode(&s)?;
            t.insert(id.0.as_slice(), bytes.as_slice())
                .map_err(db_err)?;
            (s, out)
        };
        txn.commit().map_err(db_err)?;
        Ok((session, out))
    }

    /// Runs one of [`Session`]'s transitions on the stored session and persists the result,
    /// in one write transaction.
    pub fn apply<T>(
        &self,
        id: SessionId,
        transition: impl FnOnce(&mut Session) -> Result<T, TransitionError>,
    ) -> Result<(Session, T), StoreError> {
        self.update(id, |s| transition(s).map_err(StoreError::from))
    }

    /// [`Session::shift`], persisted.
    pub fn update_state(
        &self,
        id: SessionId,
        to: SessionState,
        now: SystemTime,
    ) -> Result<Session, StoreError> {
        self.apply(id, |s| s.shift(to, now)).map(|(s, ())| s)
    }

    /// [`Session::pair`], persisted.
    pub fn record_pairing(
        &self,
        id: SessionId,
        remote: &PublicKey,
        now: SystemTime,
    ) -> Result<Session, StoreError> {
        self.apply(id, |s| s.pair(remote, now)).map(|(s, ())| s)
    }

    /// [`Session::touch`], persisted.
    pub fn touch(&self, id: SessionId, now: SystemTime) -> Result<Session, StoreError> {
        self.apply(id, |s| {
            s.touch(now);
            Ok(())
        })
        .map(|(s, ())| s)
    }

    /// Counts a failed authentication. An unpaired session reaching
    /// [`MAX_FAILED_ATTEMPTS`] is revoked: its phrase must be considered known to an attacker.
    pub fn record_failed_attempt(
        &self,
        id: SessionId,
        now: SystemTime,
    ) -> Result<Session, StoreError> {
        self.apply(id, |s| s.count_failed_attempt(MAX_FAILED_ATTEMPTS, now))
            .map(|(s, ())| s)
    }

    /// Counts a pairing handshake that stopped after act 2 (no act 3 in time). Unlike a
    /// failed authentication this may be a flaky network, so an unpaired session is
    /// revoked only once `limit` attempts (of either kind) have been counted.
    pub fn record_stalled_attempt(
        &self,
        id: SessionId,
        limit: u32,
        now: SystemTime,
    ) -> Result<Session, StoreError> {
        self.apply(id, |s| s.count_failed_attempt(limit, now))
            .map(|(s, ())| s)
    }

    /// [`Session::revoke`], persisted.
    pub fn revoke(
        &self,
        id: SessionId,
        reason: RevokeReason,
        now: SystemTime,
    ) -> Result<Session, StoreError> {
        self.apply(id, |s| s.revoke(reason, now)).map(|(s, ())| s)
    }

    /// [`Session::end_if_due`], persisted: the session and whether it ended now.
    pub fn end_if_due(
        &self,
        id: SessionId,
        now: SystemTime,
    ) -> Result<(Session, bool), StoreError> {
        self.apply(id, |s| s.end_if_due(now))
    }

    /// Ends every live session that is past its expiry (→ `Expired`) or, still unpaired,
    /// past its first-connection deadline (→ `Revoked`). Returns the sessions changed, so
    /// the caller can stop their listeners and delete their macaroon root keys in LND.
    pub fn sweep(&self, now: SystemTime) -> Result<Vec<Session>, StoreError> {
        let mut changed = Vec::new();
        for s in self.list()? {
            if s.due_ending(now).is_none() {
                continue;
            }
            // Decide again inside the write transaction: the session may have changed
            // (revoked, paired) since the listing.
            let (s, ended) = self.end_if_due(s.id, now)?;
            if ended {
                changed.push(s);
            }
        }
        Ok(changed)
    }

    fn aad(id: SessionId, key: &PublicKey) -> Vec<u8> {
        let mut aad = b"lnc-node session v1".to_vec();
        aad.extend_from_slice(&id.0);
        aad.extend_from_slice(&key.to_bytes());
        aad
    }

    fn encode(&self, s: &Session) -> Result<Vec<u8>, StoreError> {
        let mut plain = Zeroizing::new(Vec::with_capacity(32 + ENTROPY_LEN + s.macaroon.len()));
        plain.extend_from_slice(&*s.local_key.to_bytes());
        plain.extend_from_slice(s.entropy.as_bytes());
        plain.extend_from_slice(&s.macaroon);
        let sealed = self
            .secret
            .seal(&plain, &Self::aad(s.id, &s.local_public_key))?;
        let rec = Record {
            v: RECORD_VERSION,
            label: s.label.clone(),
            session_type: StoredType::from(&s.session_type),
            state: StoredState::from(&s.state),
            created_at: secs(s.created_at),
            expiry: secs(s.expiry),
            revoked_at: s.revoked_at.map(secs),
            mailbox_addr: s.mailbox_addr.clone(),
            dev_server: s.dev_server,
            local_public_key: hex::encode(s.local_public_key.to_bytes()),
            remote_public_key: s.remote_public_key.map(|k| hex::encode(k.to_bytes())),
            macaroon_root_key_id: s.macaroon_root_key_id,
            failed_attempts: s.failed_attempts,
            first_connection_deadline: secs(s.first_connection_deadline),
            last_seen: s.last_seen.map(secs),
            sealed: hex::encode(sealed),
        };
        serde_json::to_vec(&rec).map_err(|e| StoreError::Corrupt {
            id: s.id,
            what: e.to_string(),
        })
    }

    fn decode(&self, id: SessionId, bytes: &[u8]) -> Result<Session, StoreError> {
        let bad = |what: &str| StoreError::Corrupt {
            id,
            what: what.to_string(),
        };
        let rec: Record = serde_json::from_slice(bytes).map_err(|e| bad(&e.to_string()))?;
        if rec.v != RECORD_VERSION {
            return Err(bad("unknown record version (written by a newer lnc?)"));
        }
        let pubkey = |h: &str| {
            hex::decode(h)
                .ok()
                .filter(|b| b.len() == PUBLIC_KEY_LEN)
                .and_then(|b| PublicKey::from_bytes(&b).ok())
                .ok_or_else(|| bad("invalid public key"))
        };
        let local_public_key = pubkey(&rec.local_public_key)?;
        let remote_public_key = rec.remote_public_key.as_deref().map(pubkey).transpose()?;
        let sealed = hex::decode(&rec.sealed).map_err(|_| bad("sealed field is not hex"))?;
        let plain = self
            .secret
            .open(&sealed, &Self::aad(id, &local_public_key))?;
        let (key, rest) = plain
            .split_at_checked(32)
            .ok_or_else(|| bad("sealed secrets too short"))?;
        let (entropy, macaroon) = rest
            .split_at_checked(ENTROPY_LEN)
            .ok_or_else(|| bad("sealed secrets too short"))?;
        let local_key = SecretKey::from_bytes(key).map_err(|_| bad("invalid private key"))?;
        if local_key.public_key() != local_public_key {
            return Err(bad("private key does not match public key"));
        }
        let entropy = Entropy::from_bytes(entropy).map_err(|_| bad("invalid pairing entropy"))?;
        Ok(Session {
            id,
            label: rec.label,
            session_type: rec.session_type.into(),
            state: rec.state.into(),
            created_at: time(rec.created_at),
            expiry: time(rec.expiry),
            revoked_at: rec.revoked_at.map(time),
            mailbox_addr: rec.mailbox_addr,
            dev_server: rec.dev_server,
            local_public_key,
            remote_public_key,
            macaroon_root_key_id: rec.macaroon_root_key_id,
            failed_attempts: rec.failed_attempts,
            first_connection_deadline: time(rec.first_connection_deadline),
            last_seen: rec.last_seen.map(time),
            local_key,
            entropy,
            macaroon: Zeroizing::new(macaroon.to_vec()),
        })
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn time(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

#[derive(Serialize, Deserialize)]
struct Record {
    v: u8,
    label: String,
    session_type: StoredType,
    state: StoredState,
    created_at: u64,
    expiry: u64,
    revoked_at: Option<u64>,
    mailbox_addr: String,
    dev_server: bool,
    local_public_key: String,
    remote_public_key: Option<String>,
    macaroon_root_key_id: u64,
    failed_attempts: u32,
    first_connection_deadline: u64,
    last_seen: Option<u64>,
    sealed: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredType {
    ReadOnly,
    Admin,
    InvoiceOnly,
    Custom { ops: Vec<(String, String)> },
    Spend,
}

impl From<&SessionType> for StoredType {
    fn from(t: &SessionType) -> Self {
        match t {
            SessionType::ReadOnly => StoredType::ReadOnly,
            SessionType::Admin => StoredType::Admin,
            SessionType::InvoiceOnly => StoredType::InvoiceOnly,
            SessionType::Spend => StoredType::Spend,
            SessionType::Custom(ops) => StoredType::Custom {
                ops: ops
                    .iter()
                    .map(|o| (o.entity.clone(), o.action.clone()))
                    .collect(),
            },
        }
    }
}

impl From<StoredType> for SessionType {
    fn from(t: StoredType) -> Self {
        match t {
            StoredType::ReadOnly => SessionType::ReadOnly,
            StoredType::Admin => SessionType::Admin,
            StoredType::InvoiceOnly => SessionType::InvoiceOnly,
            StoredType::Spend => SessionType::Spend,
            StoredType::Custom { ops } => {
                SessionType::Custom(ops.iter().map(|(e, a)| Op::new(e, a)).collect())
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum StoredState {
    Created,
    InUse,
    Revoked { reason: StoredReason },
    Expired,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredReason {
    User,
    FirstConnectionDeadline,
    FailedAttempts,
    Other(String),
}

impl From<&SessionState> for StoredState {
    fn from(s: &SessionState) -> Self {
        match s {
            SessionState::Created => StoredState::Created,
            SessionState::InUse => StoredState::InUse,
            SessionState::Expired => StoredState::Expired,
            SessionState::Revoked { reason } => StoredState::Revoked {
                reason: match reason {
                    RevokeReason::User => StoredReason::User,
                    RevokeReason::FirstConnectionDeadline => StoredReason::FirstConnectionDeadline,
                    RevokeReason::FailedAttempts => StoredReason::FailedAttempts,
                    RevokeReason::Other(s) => StoredReason::Other(s.clone()),
                },
            },
        }
    }
}

impl From<StoredState> for SessionState {
    fn from(s: StoredState) -> Self {
        match s {
            StoredState::Created => SessionState::Created,
            StoredState::InUse => SessionState::InUse,
            StoredState::Expired => SessionState::Expired,
            StoredState::Revoked { reason } => SessionState::Revoked {
                reason: match reason {
                    StoredReason::User => RevokeReason::User,
                    StoredReason::FirstConnectionDeadline => RevokeReason::FirstConnectionDeadline,
                    StoredReason::FailedAttempts => RevokeReason::FailedAttempts,
                    StoredReason::Other(s) => RevokeReason::Other(s),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::session::DEFAULT_FIRST_CONNECTION_TIMEOUT;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn temp_dir() -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "lnc-node-store-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
        rand_core::UnwrapErr(getrandom::SysRng)
    }

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn sample(now: SystemTime) -> Session {
        crate::session::tests::sample(now)
    }

    fn assert_same(a: &Session, b: &Session) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.label, b.label);
        assert_eq!(a.session_type, b.session_type);
        assert_eq!(a.state, b.state);
        assert_eq!(a.created_at, b.created_at);
        assert_eq!(a.expiry, b.expiry);
        assert_eq!(a.revoked_at, b.revoked_at);
        assert_eq!(a.mailbox_addr, b.mailbox_addr);
        assert_eq!(a.local_public_key, b.local_public_key);
        assert_eq!(a.remote_public_key, b.remote_public_key);
        assert_eq!(a.macaroon_root_key_id, b.macaroon_root_key_id);
        assert_eq!(a.failed_attempts, b.failed_attempts);
        assert_eq!(a.first_connection_deadline, b.first_connection_deadline);
        assert_eq!(a.last_seen, b.last_seen);
        assert_eq!(*a.local_key.to_bytes(), *b.local_key.to_bytes());
        assert_eq!(a.entropy.as_bytes(), b.entropy.as_bytes());
        assert_eq!(a.macaroon_bytes(), b.macaroon_bytes());
    }

    #[test]
    fn round_trip_and_list() {
        let dir = temp_dir();
        let store = SessionStore::open(&dir).unwrap();
        let a = sample(t(1_000));
        let b = sample(t(2_000));
        store.insert(&a).unwrap();
        store.insert(&b).unwrap();
        assert_same(&store.get(a.id).unwrap(), &a);
        assert_same(&store.get_by_public_key(&b.local_public_key).unwrap(), &b);
        assert_eq!(store.list().unwrap().len(), 2);
        assert!(matches!(store.insert(&a), Err(StoreError::Exists(_))));
        assert!(matches!(
            store.get(SessionId([9, 9, 9, 9])),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn survives_reopen() {
        let dir = temp_dir();
        let a = sample(t(1_000));
        let remote = SecretKey::generate(&mut rng()).public_key();
        {
            let store = SessionStore::open(&dir).unwrap();
            store.insert(&a).unwrap();
            store.record_pairing(a.id, &remote, t(1_100)).unwrap();
        }
        let store = SessionStore::open(&dir).unwrap();
        let got = store.get(a.id).unwrap();
        assert_eq!(got.state, SessionState::InUse);
        assert_eq!(got.remote_public_key, Some(remote));
        assert_eq!(got.last_seen, Some(t(1_100)));
        assert_eq!(*got.local_key.to_bytes(), *a.local_key.to_bytes());
        assert_eq!(got.entropy.as_bytes(), a.entropy.as_bytes());
        assert_eq!(got.auth_data(), a.auth_data());
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn secrets_are_encrypted_at_rest() {
        let dir = temp_dir();
        let a = sample(t(1_000));
        {
            let store = SessionStore::open(&dir).unwrap();
            store.insert(&a).unwrap();
        }
        let raw = std::fs::read(dir.join(STORE_FILE)).unwrap();
        assert!(
            contains(&raw, a.label.as_bytes()),
            "public fields are stored"
        );
        let key = a.local_key.to_bytes();
        for secret in [
            key.to_vec(),
            a.entropy.as_bytes().to_vec(),
            a.macaroon.to_vec(),
            b"lnd-secret-macaroon-bytes".to_vec(),
        ] {
            assert!(!contains(&raw, &secret));
            assert!(!contains(&raw, hex::encode(&secret).as_bytes()));
        }
    }

    #[test]
    fn wrong_node_secret_cannot_open_records() {
        let dir = temp_dir();
        let a = sample(t(1_000));
        {
            let store = SessionStore::open(&dir).unwrap();
            store.insert(&a).unwrap();
        }
        std::fs::remove_file(dir.join(crate::secret::NODE_SECRET_FILE)).unwrap();
        let store = SessionStore::open(&dir).unwrap();
        assert!(matches!(
            store.get(a.id),
            Err(StoreError::Secret(SecretError::Unseal))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn insecure_secret_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = temp_dir();
        drop(SessionStore::open(&dir).unwrap());
        let path = dir.join(crate::secret::NODE_SECRET_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "created with mode 0600");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SessionStore::open(&dir).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Secret(SecretError::InsecureMode { mode: 0o644, .. })
        ));
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        SessionStore::open(&dir).unwrap();
    }

    /// #18 row 5: the data dir was 0755 and the store 0644.
    #[cfg(unix)]
    #[test]
    fn data_dir_and_store_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = temp_dir().join("fresh");
        drop(SessionStore::open(&dir).unwrap());
        assert_eq!(mode(&dir), 0o700);
        let store = dir.join(STORE_FILE);
        assert_eq!(mode(&store), 0o600);
        // A store left readable (an older version, a copy) is tightened on open.
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(SessionStore::open(&dir).unwrap());
        assert_eq!(mode(&store), 0o600);
    }

    #[test]
    fn revoke_and_illegal_transitions() {
        let store = SessionStore::open(&temp_dir()).unwrap();
        let a = sample(t(1_000));
        store.insert(&a).unwrap();
        let s = store.revoke(a.id, RevokeReason::User, t(1_010)).unwrap();
        assert_eq!(
            s.state,
            SessionState::Revoked {
                reason: RevokeReason::User
            }
        );
        assert_eq!(s.revoked_at, Some(t(1_010)));
        // Idempotent, first reason and time kept.
        let s = store
            .revoke(a.id, RevokeReason::FailedAttempts, t(1_020))
            .unwrap();
        assert_eq!(s.revoked_at, Some(t(1_010)));
        assert!(matches!(
            s.state,
            SessionState::Revoked {
                reason: RevokeReason::User
            }
        ));
        assert!(matches!(
            store.update_state(a.id, SessionState::InUse, t(1_030)),
            Err(StoreError::Transition(TransitionError::Illegal { .. }))
        ));
        assert!(matches!(
            store.update_state(a.id, SessionState::Expired, t(1_030)),
            Err(StoreError::Transition(TransitionError::Illegal { .. }))
        ));
        let b = sample(t(1_000));
        store.insert(&b).unwrap();
        store
            .update_state(b.id, SessionState::Expired, t(5_000))
            .unwrap();
        let err = store
            .revoke(b.id, RevokeReason::User, t(5_001))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("illegal state transition from expired to revoked")
        );
    }

    #[test]
    fn pairing_rules() {
        let store = SessionStore::open(&temp_dir()).unwrap();
        let a = sample(t(1_000));
        store.insert(&a).unwrap();
        let k1 = SecretKey::generate(&mut rng()).public_key();
        let k2 = SecretKey::generate(&mut rng()).public_key();
        store.record_pairing(a.id, &k1, t(1_001)).unwrap();
        store.record_pairing(a.id, &k1, t(1_002)).unwrap();
        assert!(matches!(
            store.record_pairing(a.id, &k2, t(1_003)),
            Err(StoreError::Transition(TransitionError::AlreadyPaired(_)))
        ));
        let s = store.touch(a.id, t(1_500)).unwrap();
        assert_eq!(s.last_seen, Some(t(1_500)));
    }

    #[test]
    fn sweep_expires_and_enforces_first_connection_deadline() {
        let store = SessionStore::open(&temp_dir()).unwrap();
        let now = t(10_000);
        let unpaired = sample(now);
        let paired = sample(now);
        let mut expiring = sample(now);
        expiring.expiry = now + Duration::from_secs(60);
        for s in [&unpaired, &paired, &expiring] {
            store.insert(s).unwrap();
        }
        let remote = SecretKey::generate(&mut rng()).public_key();
        store.record_pairing(paired.id, &remote, now).unwrap();

        // Before any deadline: nothing changes.
        assert!(
            store
                .sweep(now + Duration::from_secs(59))
                .unwrap()
                .is_empty()
        );
        // At 60 s: the short session expires (reported as EXPIRED, not REVOKED).
        let changed = store.sweep(now + Duration::from_secs(60)).unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].id, expiring.id);
        assert_eq!(changed[0].state, SessionState::Expired);
        // At 10 min: the unpaired one misses its first-connection deadline; the paired one stays.
        let at = now + DEFAULT_FIRST_CONNECTION_TIMEOUT;
        let changed = store.sweep(at).unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].id, unpaired.id);
        assert_eq!(
            changed[0].state,
            SessionState::Revoked {
                reason: RevokeReason::FirstConnectionDeadline
            }
        );
        assert_eq!(changed[0].revoked_at, Some(at));
        assert_eq!(store.get(paired.id).unwrap().state, SessionState::InUse);
        // At expiry the paired one expires.
        let changed = store.sweep(paired.expiry).unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].state, SessionState::Expired);
        assert!(store.sweep(paired.expiry).unwrap().is_empty());
    }

    #[test]
    fn failed_attempt_burns_unpaired_phrase() {
        let store = SessionStore::open(&temp_dir()).unwrap();
        let a = sample(t(1_000));
        let b = sample(t(1_000));
        store.insert(&a).unwrap();
        store.insert(&b).unwrap();
        let s = store.record_failed_attempt(a.id, t(1_001)).unwrap();
        assert_eq!(s.failed_attempts, 1);
        assert_eq!(
            s.state,
            SessionState::Revoked {
                reason: RevokeReason::FailedAttempts
            }
        );
        // A paired session only counts (its phrase no longer locates it).
        let remote = SecretKey::generate(&mut rng()).public_key();
        store.record_pairing(b.id, &remote, t(1_001)).unwrap();
        let s = store.record_failed_attempt(b.id, t(1_002)).unwrap();
        assert_eq!(s.failed_attempts, 1);
        assert_eq!(s.state, SessionState::InUse);
    }

    #[test]
    fn debug_is_redacted() {
        let a = sample(t(1_000));
        let dbg = format!("{a:?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(&hex::encode(*a.local_key.to_bytes())));
        assert!(!dbg.contains(&hex::encode(a.entropy.as_bytes())));
        assert!(!dbg.contains("lnd-secret-macaroon"));
        let secret = NodeSecret::load_or_create(&temp_dir_created()).unwrap();
        assert_eq!(format!("{secret:?}"), "NodeSecret(<redacted>)");
    }

    #[test]
    fn tampered_or_swapped_sealed_blobs_are_refused() {
        let store = SessionStore::open(&temp_dir()).unwrap();
        let a = sample(t(1_000));
        let b = sample(t(1_000));
        let ea = store.encode(&a).unwrap();
        let eb = store.encode(&b).unwrap();
        assert_same(&store.decode(a.id, &ea).unwrap(), &a);
        // b's sealed secrets inside a's record: bound to b's ID and key, so refused.
        let mut ra: serde_json::Value = serde_json::from_slice(&ea).unwrap();
        let rb: serde_json::Value = serde_json::from_slice(&eb).unwrap();
        ra["sealed"] = rb["sealed"].clone();
        let swapped = serde_json::to_vec(&ra).unwrap();
        assert!(matches!(
            store.decode(a.id, &swapped),
            Err(StoreError::Secret(SecretError::Unseal))
        ));
        // One flipped ciphertext bit.
        let mut sealed = hex::decode(ra["sealed"].as_str().unwrap()).unwrap();
        sealed[20] ^= 1;
        ra["sealed"] = hex::encode(sealed).into();
        assert!(
            store
                .decode(b.id, &serde_json::to_vec(&ra).unwrap())
                .is_err()
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let store = shared_store();
            let _ = store.decode(SessionId([1, 2, 3, 4]), &bytes);
        }

        #[test]
        fn decode_never_panics_on_bad_sealed(sealed in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
            let store = shared_store();
            let a = sample(t(1_000));
            let mut r: serde_json::Value = serde_json::from_slice(&store.encode(&a).unwrap()).unwrap();
            r["sealed"] = hex::encode(&sealed).into();
            proptest::prop_assert!(store.decode(a.id, &serde_json::to_vec(&r).unwrap()).is_err());
        }
    }

    /// One store for all proptest cases (decode does not touch the database).
    fn shared_store() -> &'static SessionStore {
        static STORE: std::sync::OnceLock<SessionStore> = std::sync::OnceLock::new();
        STORE.get_or_init(|| SessionStore::open(&temp_dir()).unwrap())
    }

    fn temp_dir_created() -> PathBuf {
        let d = temp_dir();
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
