//! Root keys and LND's macaroon check (`ValidateMacaroon` → `CheckMacAuth`).
//!
//! Root keys are kept per root key ID (the macaroon id's storage ID, decimal ASCII as LND's
//! `BakeMacaroon` writes it; `"0"` for the default macaroons) and persisted in the data
//! dir, so the macaroon files stay valid across restarts. Deleting a root key ID refuses
//! every macaroon baked under it, as LND's `DeleteMacaroonID` does.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use lnc_core::macaroon::lnd::{AuthError, PermissionError};
use lnc_core::macaroon::verify::{IpLock, TimeBefore};
use lnc_core::macaroon::{Macaroon, Op, RootKey, UnixTime, VerifyError};

use crate::SimError;

/// The root key store: root key ID → key, mirrored to `<data dir>/macaroons.keys`.
pub(crate) struct RootKeys {
    keys: BTreeMap<Vec<u8>, RootKey>,
    path: PathBuf,
}

/// 32 random bytes from the OS.
pub(crate) fn random32() -> Result<[u8; 32], SimError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| SimError::Random(e.to_string()))?;
    Ok(b)
}

impl RootKeys {
    /// Loads the store (an absent file is an empty store).
    pub(crate) fn load(dir: &Path) -> Result<Self, SimError> {
        let path = dir.join("macaroons.keys");
        let mut keys = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let parsed = line
                        .split_once(' ')
                        .and_then(|(id, k)| Some((id.to_owned(), hex::decode(k.trim()).ok()?)));
                    let Some((id, key)) = parsed else {
                        return Err(SimError::Corrupt(path));
                    };
                    keys.insert(id.into_bytes(), RootKey::new(&key));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SimError::Io(path, e)),
        }
        Ok(RootKeys { keys, path })
    }

    fn save(&self) -> Result<(), SimError> {
        let mut text = String::new();
        for (id, key) in &self.keys {
            text.push_str(&String::from_utf8_lossy(id));
            text.push(' ');
            text.push_str(&hex::encode(key.as_bytes()));
            text.push('\n');
        }
        crate::write_private(&self.path, text.as_bytes())
    }

    /// The key for an ID, if it exists.
    pub(crate) fn get(&self, id: &[u8]) -> Option<&RootKey> {
        self.keys.get(id)
    }

    /// The key for an ID, created (and persisted) if missing, as LND's root key store does
    /// when baking. Returns whether it was created.
    pub(crate) fn get_or_create(&mut self, id: &[u8]) -> Result<(RootKey, bool), SimError> {
        if let Some(k) = self.keys.get(id) {
            return Ok((k.clone(), false));
        }
        let key = RootKey::new(&random32()?);
        self.keys.insert(id.to_vec(), key.clone());
        self.save()?;
        Ok((key, true))
    }

    /// Removes an ID; returns whether it existed.
    pub(crate) fn delete(&mut self, id: &[u8]) -> Result<bool, SimError> {
        let existed = self.keys.remove(id).is_some();
        if existed {
            self.save()?;
        }
        Ok(existed)
    }
}

/// LND's `CheckMacAuth`: the root key named by the id's storage ID, the HMAC chain, the
/// first-party caveats (`time-before` against the wall clock, `ipaddr`/`iprange` against the
/// peer), then the required ops or `uri:<method>`. Errors carry LND's text.
pub(crate) fn check_mac_auth(
    keys: &RootKeys,
    mac: &Macaroon,
    required: &[Op],
    full_method: &str,
    peer: Option<IpAddr>,
) -> Result<(), String> {
    let id = mac.lnd_id().map_err(|e| e.to_string())?;
    let root = keys.get(&id.storage_id).ok_or_else(|| {
        format!(
            "cannot retrieve macaroon: cannot get macaroon: root key with id {} doesn't exist",
            String::from_utf8_lossy(&id.storage_id)
        )
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let checker = (
        TimeBefore::new(UnixTime::from_duration_since_epoch(now)),
        IpLock::new(peer),
    );
    match mac.check_mac_auth(root, &checker, required, full_method) {
        Ok(_) => Ok(()),
        Err(AuthError::Verify(VerifyError::SignatureMismatch)) => {
            Err("verification failed: signature mismatch after caveat verification".into())
        }
        Err(AuthError::Verify(VerifyError::CaveatNotSatisfied { condition, reason })) => {
            Err(format!("caveat {condition:?} not satisfied: {reason}"))
        }
        Err(AuthError::Permission(PermissionError::Denied { .. })) => {
            Err("permission denied".into())
        }
        Err(e) => Err(e.to_string()),
    }
}
