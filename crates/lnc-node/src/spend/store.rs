//! The budget ledgers, per-session limits and the audit log, in the session store's redb
//! file beside `sessions`, so they survive restarts with the sessions they belong to.
//!
//! The audit log is bounded: each session keeps its newest [`AuditLog::max_entries`]
//! entries; older ones are deleted as new ones arrive.

use redb::{ReadableDatabase as _, ReadableTable as _, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::ledger::Ledger;
use crate::session::SessionId;
use crate::store::{SessionStore, StoreError, db_err};

const POLICIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("spend_policies");
/// Key: session ID ‖ sequence number (big-endian u64), so one session's entries are a
/// contiguous range in time order.
const AUDIT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("audit_log");

/// Default number of audit entries kept per session.
pub const DEFAULT_AUDIT_ENTRIES: u64 = 10_000;

/// Call limits of one session. Unset fields take the defaults of the session's kind
/// ([`Limits::effective`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Calls per second, sustained.
    pub calls_per_second: Option<u32>,
    /// Calls allowed in a burst above the sustained rate.
    pub burst: Option<u32>,
    /// Calls (streams) open at once.
    pub max_streams: Option<u32>,
}

/// Limits in force: what was set, else the defaults for budget sessions (an app that can
/// spend gets a rate a wallet's start-up burst fits in); other sessions are unlimited
/// unless set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveLimits {
    /// Calls per second (`None`: unlimited).
    pub calls_per_second: Option<u32>,
    /// Burst.
    pub burst: u32,
    /// Concurrent calls (`None`: unlimited).
    pub max_streams: Option<u32>,
}

/// Default sustained call rate of a budget session.
pub const BUDGET_CALLS_PER_SECOND: u32 = 20;
/// Default burst of a budget session.
pub const BUDGET_BURST: u32 = 100;
/// Default concurrent calls of a budget session.
pub const BUDGET_MAX_STREAMS: u32 = 32;

impl Limits {
    /// The limits in force for a session with (`budget`) or without a budget.
    pub fn effective(&self, budget: bool) -> EffectiveLimits {
        let rate = self
            .calls_per_second
            .or(budget.then_some(BUDGET_CALLS_PER_SECOND));
        EffectiveLimits {
            calls_per_second: rate,
            burst: self
                .burst
                .or(budget.then_some(BUDGET_BURST))
                .unwrap_or_else(|| rate.unwrap_or(0).saturating_mul(5))
                .max(1),
            max_streams: self.max_streams.or(budget.then_some(BUDGET_MAX_STREAMS)),
        }
    }
}

/// What the node enforces for one session beyond LND's macaroon check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPolicy {
    /// The spending budget and its ledger, if the session has one.
    pub ledger: Option<Ledger>,
    /// Call limits.
    pub limits: Limits,
}

impl SessionPolicy {
    /// Whether the node has anything to enforce (else the proxy skips the meter).
    pub fn is_empty(&self) -> bool {
        self.ledger.is_none() && self.limits == Limits::default()
    }
}

/// One line of a session's audit log. No secret ever goes here: no macaroon, preimage,
/// invoice or request body, only what the operator needs to see what the app did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: u64,
    /// `/package.Service/Method`.
    pub method: String,
    /// The call's gRPC status (`OK`, `RESOURCE_EXHAUSTED`, …), or what happened to a
    /// payment (`SUCCEEDED`, `FAILED`).
    pub status: String,
    /// A payment's amount, msat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_msat: Option<u64>,
    /// A payment's fee (or fee limit, while in flight), msat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_msat: Option<u64>,
    /// A payment's hash (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_hash: Option<String>,
    /// Why the node refused or how a payment ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(POLICIES).map_err(db_err)?;
    txn.open_table(AUDIT).map_err(db_err)?;
    Ok(())
}

fn corrupt(id: SessionId, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        id,
        what: format!("spend policy: {e}"),
    }
}

fn audit_key(id: SessionId, seq: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&id.0);
    k[4..].copy_from_slice(&seq.to_be_bytes());
    k
}

impl SessionStore {
    /// The session's policy (empty if none was set).
    pub fn policy(&self, id: SessionId) -> Result<SessionPolicy, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(POLICIES).map_err(db_err)?;
        match t.get(id.0.as_slice()).map_err(db_err)? {
            None => Ok(SessionPolicy::default()),
            Some(v) => serde_json::from_slice(v.value()).map_err(|e| corrupt(id, e)),
        }
    }

    /// Stores the session's policy (ledger included), durably.
    pub fn put_policy(&self, id: SessionId, p: &SessionPolicy) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(p).map_err(|e| corrupt(id, e))?;
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(POLICIES).map_err(db_err)?;
            t.insert(id.0.as_slice(), bytes.as_slice())
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// Appends entries to the audit logs (one transaction), keeping at most `keep` per
    /// session.
    pub fn append_audit(
        &self,
        entries: &[(SessionId, AuditEntry)],
        keep: u64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(AUDIT).map_err(db_err)?;
            for (id, e) in entries {
                let bytes = serde_json::to_vec(e).map_err(|err| corrupt(*id, err))?;
                let next = {
                    let last = t
                        .range(audit_key(*id, 0).as_slice()..=audit_key(*id, u64::MAX).as_slice())
                        .map_err(db_err)?
                        .next_back()
                        .transpose()
                        .map_err(db_err)?;
                    match last {
                        None => 0,
                        Some((k, _)) => {
                            let k = k.value();
                            let seq = k
                                .get(4..12)
                                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                                .map_or(0, u64::from_be_bytes);
                            seq + 1
                        }
                    }
                };
                t.insert(audit_key(*id, next).as_slice(), bytes.as_slice())
                    .map_err(db_err)?;
                if keep > 0 && next >= keep {
                    t.remove(audit_key(*id, next - keep).as_slice())
                        .map_err(db_err)?;
                }
            }
        }
        txn.commit().map_err(db_err)
    }

    /// The newest `limit` audit entries of a session, oldest first.
    pub fn audit_log(&self, id: SessionId, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(AUDIT).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t
            .range(audit_key(id, 0).as_slice()..=audit_key(id, u64::MAX).as_slice())
            .map_err(db_err)?
            .rev()
            .take(limit)
        {
            let (_, v) = item.map_err(db_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(|e| corrupt(id, e))?);
        }
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::spend::ledger::{Budget, Period};

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            at: n,
            method: "/lnrpc.Lightning/GetInfo".into(),
            status: "OK".into(),
            amount_msat: None,
            fee_msat: None,
            payment_hash: None,
            detail: None,
        }
    }

    #[test]
    fn policy_and_audit_survive_reopening_and_stay_bounded() {
        let dir = lnc_testkit::dirs::temp_dir("spend-store");
        let dir = dir.as_path();
        let a = SessionId([1, 2, 3, 4]);
        let b = SessionId([1, 2, 3, 5]);
        {
            let store = SessionStore::open(dir).unwrap();
            assert!(store.policy(a).unwrap().is_empty());
            let mut ledger = Ledger::new(Budget {
                limit_msat: 1000,
                period: Period::Day,
                max_payment_msat: None,
            });
            ledger.reserve("ab", 10, "m", 5).unwrap();
            store
                .put_policy(
                    a,
                    &SessionPolicy {
                        ledger: Some(ledger),
                        limits: Limits::default(),
                    },
                )
                .unwrap();
            let batch: Vec<_> = (0..7)
                .map(|n| (a, entry(n)))
                .chain([(b, entry(99))])
                .collect();
            store.append_audit(&batch, 5).unwrap();
        }
        let store = SessionStore::open(dir).unwrap();
        let p = store.policy(a).unwrap();
        assert_eq!(p.ledger.unwrap().reservations().len(), 1);
        let log = store.audit_log(a, 100).unwrap();
        assert_eq!(
            log.iter().map(|e| e.at).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6]
        );
        assert_eq!(store.audit_log(a, 2).unwrap()[1].at, 6);
        assert_eq!(store.audit_log(b, 100).unwrap(), vec![entry(99)]);
    }

    #[test]
    fn effective_limits() {
        let l = Limits::default();
        assert_eq!(l.effective(false).calls_per_second, None);
        assert_eq!(l.effective(true).max_streams, Some(BUDGET_MAX_STREAMS));
        let set = Limits {
            calls_per_second: Some(2),
            burst: None,
            max_streams: Some(1),
        };
        assert_eq!(set.effective(false).burst, 10);
    }
}
