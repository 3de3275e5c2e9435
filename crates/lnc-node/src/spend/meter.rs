//! One session's enforcement at run time: the rate limit, the stream cap and the budget
//! ledger, with every change written to the session store before the call it allows goes
//! on. The decisions are the pure parts' ([`super::ledger`], [`super::limits`],
//! [`super::policy`]); this drives them with the clock, the store and LND.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::amount::{Commitment, Outcome};
use super::audit::AuditSink;
use super::ledger::{Budget, Ledger, Refusal, Remaining};
use super::limits::TokenBucket;
use super::store::{AuditEntry, EffectiveLimits, Limits, SessionPolicy};
use crate::clock::Clock;
use crate::lnd::Lnd;
use crate::session::SessionId;
use crate::store::{SessionStore, StoreError};

/// First wait before asking LND again about a payment's outcome.
const RECONCILE_FIRST_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest wait between two such questions.
const RECONCILE_MAX_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// Unix seconds on the node's clock.
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

struct Rate {
    limits: Limits,
    effective: EffectiveLimits,
    bucket: Option<TokenBucket>,
}

/// The enforcement state of one session, shared by its proxy, the admin API and the
/// reconciler. Cheap to check for a session without a policy (one atomic load).
pub struct Meter {
    id: SessionId,
    store: Arc<SessionStore>,
    clock: Clock,
    lnd: Lnd,
    audit: AuditSink,
    /// A spend session: without a ledger (its creation was cut short) it may not pay.
    requires_budget: bool,
    /// Whether there is anything to enforce.
    active: AtomicBool,
    /// Whether the session has a budget (the ledger is `Some`), readable without the lock.
    budgeted: AtomicBool,
    /// Held across the store write, so the stored ledger is always the newest.
    ledger: tokio::sync::Mutex<Option<Ledger>>,
    rate: Mutex<Rate>,
    streams: Arc<AtomicU32>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Meter({})", self.id)
    }
}

/// One call counted against the session's stream cap until dropped.
#[derive(Debug)]
pub struct StreamPermit(Option<Arc<AtomicU32>>);

impl Drop for StreamPermit {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Why a call is refused before it reaches LND; becomes the call's gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    /// Over the call rate.
    #[error(
        "lnc node: this session's call rate limit ({rate}/s) is reached; retry in {retry_ms} ms"
    )]
    Rate {
        /// The limit.
        rate: u32,
        /// When a call is allowed again.
        retry_ms: u64,
    },
    /// Over the stream cap.
    #[error(
        "lnc node: this session may have at most {0} calls open at once; close a stream or wait for a call to finish"
    )]
    Streams(u32),
    /// The budget refuses the payment.
    #[error("lnc node: {0}")]
    Budget(Refusal),
    /// A spend session without a stored budget.
    #[error(
        "lnc node: this spend session has no budget; the node's operator can set one with `lnc session budget`"
    )]
    NoBudget,
    /// The ledger could not be written: the payment is not sent.
    #[error(
        "lnc node: the payment was not sent because the node could not record it ({0}); the node's operator should check its data dir"
    )]
    Store(#[from] StoreError),
}

impl MeterError {
    /// The gRPC status the app gets.
    pub fn status(&self) -> tonic::Status {
        match self {
            MeterError::Rate { .. } | MeterError::Streams(_) => {
                tonic::Status::resource_exhausted(self.to_string())
            }
            MeterError::Budget(Refusal::AlreadyInFlight) => {
                tonic::Status::already_exists(self.to_string())
            }
            MeterError::Budget(_) | MeterError::NoBudget => {
                tonic::Status::resource_exhausted(self.to_string())
            }
            MeterError::Store(_) => tonic::Status::unavailable(self.to_string()),
        }
    }
}

fn rate_state(limits: Limits, budget: bool) -> Rate {
    let effective = limits.effective(budget);
    Rate {
        limits,
        effective,
        bucket: effective
            .calls_per_second
            .map(|r| TokenBucket::new(r, effective.burst, Instant::now())),
    }
}

impl Meter {
    /// The meter of session `id`, with its stored policy.
    pub(crate) fn load(
        id: SessionId,
        store: Arc<SessionStore>,
        clock: Clock,
        lnd: Lnd,
        audit: AuditSink,
        requires_budget: bool,
    ) -> Result<Arc<Meter>, StoreError> {
        let p = store.policy(id)?;
        Ok(Arc::new(Meter {
            id,
            requires_budget,
            active: AtomicBool::new(!p.is_empty() || requires_budget),
            budgeted: AtomicBool::new(p.ledger.is_some() || requires_budget),
            rate: Mutex::new(rate_state(p.limits, p.ledger.is_some())),
            ledger: tokio::sync::Mutex::new(p.ledger),
            streams: Arc::new(AtomicU32::new(0)),
            store,
            clock,
            lnd,
            audit,
        }))
    }

    /// The session.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Whether the node enforces anything for this session.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Whether the session has a budget (and so the payment rules).
    pub fn has_budget(&self) -> bool {
        self.budgeted.load(Ordering::Acquire)
    }

    pub(crate) fn audit(&self, entry: AuditEntry) {
        self.audit.send(self.id, entry);
    }

    fn now(&self) -> u64 {
        unix(self.clock.now())
    }

    fn lock_rate(&self) -> std::sync::MutexGuard<'_, Rate> {
        self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits one call under the rate limit and the stream cap.
    pub fn admit(&self) -> Result<StreamPermit, MeterError> {
        let max_streams = {
            let mut r = self.lock_rate();
            let eff = r.effective;
            if let Some(b) = r.bucket.as_mut()
                && let Err(wait) = b.take(Instant::now())
            {
                return Err(MeterError::Rate {
                    rate: eff.calls_per_second.unwrap_or(0),
                    retry_ms: wait.as_millis().try_into().unwrap_or(u64::MAX).max(1),
                });
            }
            eff.max_streams
        };
        let Some(max) = max_streams else {
            return Ok(StreamPermit(None));
        };
        let counted = self
            .streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match counted {
            Ok(_) => Ok(StreamPermit(Some(self.streams.clone()))),
            Err(_) => Err(MeterError::Streams(max)),
        }
    }

    async fn persist(&self, ledger: &Option<Ledger>) -> Result<(), StoreError> {
        let policy = SessionPolicy {
            ledger: ledger.clone(),
            limits: self.lock_rate().limits,
        };
        let store = self.store.clone();
        let id = self.id;
        tokio::task::spawn_blocking(move || store.put_policy(id, &policy))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Corrupt {
                    id,
                    what: format!("store task failed: {e}"),
                })
            })
    }

    /// Reserves what `c` commits to, durably, before the payment may be forwarded.
    pub async fn reserve(&self, c: &Commitment, method: &str) -> Result<(), MeterError> {
        let mut guard = self.ledger.lock().await;
        let Some(ledger) = guard.as_mut() else {
            if self.requires_budget {
                return Err(MeterError::NoBudget);
            }
            return Ok(());
        };
        let hash = c.hash_hex();
        ledger
            .reserve(&hash, c.total_msat(), method, self.now())
            .map_err(MeterError::Budget)?;
        if let Err(e) = self.persist(&guard).await {
            if let Some(l) = guard.as_mut() {
                l.release(&hash);
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Records a payment's final outcome: settled to what it cost, or released. Unknown
    /// hashes (already settled, or reserved by no one) change nothing.
    pub async fn finish(&self, hash: &str, method: &str, outcome: &Outcome) {
        let mut guard = self.ledger.lock().await;
        let Some(ledger) = guard.as_mut() else {
            return;
        };
        let now = self.now();
        let (changed, entry) = match outcome {
            Outcome::Succeeded {
                amount_msat,
                fee_msat,
            } => (
                ledger.settle(hash, amount_msat.saturating_add(*fee_msat), now),
                AuditEntry {
                    at: now,
                    method: method.to_owned(),
                    status: "SUCCEEDED".into(),
                    amount_msat: Some(*amount_msat),
                    fee_msat: Some(*fee_msat),
                    payment_hash: Some(hash.to_owned()),
                    detail: None,
                },
            ),
            Outcome::Failed => (
                ledger.release(hash),
                AuditEntry {
                    at: now,
                    method: method.to_owned(),
                    status: "FAILED".into(),
                    amount_msat: None,
                    fee_msat: None,
                    payment_hash: Some(hash.to_owned()),
                    detail: Some("payment failed; its reservation is released".into()),
                },
            ),
            Outcome::Pending => return,
        };
        if !changed {
            return;
        }
        if let Err(e) = self.persist(&guard).await {
            tracing::warn!(session = %self.id, error = %e, "could not record a payment's outcome; it is reconciled with LND at the next start");
        }
        drop(guard);
        tracing::info!(session = %self.id, status = %entry.status, "payment finished");
        self.audit(entry);
    }

    /// What the session may still spend (`None`: no budget).
    pub async fn remaining(&self) -> Option<Remaining> {
        let now = self.now();
        self.ledger.lock().await.as_mut().map(|l| l.remaining(now))
    }

    /// Payment hashes reserved and not yet settled or released.
    pub async fn open_reservations(&self) -> Vec<(String, String)> {
        self.ledger
            .lock()
            .await
            .as_ref()
            .map_or_else(Vec::new, |l| {
                l.reservations()
                    .iter()
                    .map(|(h, r)| (h.clone(), r.method.clone()))
                    .collect()
            })
    }

    /// Sets (or, with `None`, keeps) the budget and the limits, live and durably. What was
    /// spent and reserved still counts against a changed budget.
    pub async fn set_policy(
        &self,
        budget: Option<Budget>,
        limits: Option<Limits>,
    ) -> Result<SessionPolicy, StoreError> {
        let mut guard = self.ledger.lock().await;
        match (guard.as_mut(), budget) {
            (Some(l), Some(b)) => l.set_budget(b),
            (None, Some(b)) => *guard = Some(Ledger::new(b)),
            (_, None) => {}
        }
        {
            let mut r = self.lock_rate();
            let limits = limits.unwrap_or(r.limits);
            *r = rate_state(limits, guard.is_some());
        }
        self.persist(&guard).await?;
        let policy = SessionPolicy {
            ledger: guard.clone(),
            limits: self.lock_rate().limits,
        };
        self.budgeted.store(
            policy.ledger.is_some() || self.requires_budget,
            Ordering::Release,
        );
        self.active.store(
            !policy.is_empty() || self.requires_budget,
            Ordering::Release,
        );
        Ok(policy)
    }

    /// Resolves a payment whose outcome the node did not see (the app went away, the
    /// stream broke, the node restarted) by asking LND, in the background, until LND
    /// answers.
    pub fn reconcile(self: &Arc<Self>, hash: String, method: String) {
        let meter = self.clone();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            // LND may be down (it often is when the node restarts with it): ask again, less
            // and less often; the payment stays reserved meanwhile, so nothing is lost.
            let mut wait = RECONCILE_FIRST_RETRY;
            loop {
                match super::reconcile::track(&meter.lnd, &hash).await {
                    Ok(o) => return meter.finish(&hash, &method, &o).await,
                    Err(e @ super::reconcile::ReconcileError::BadHash(_)) => {
                        // Corrupt data, not LND's state: asking again cannot help.
                        return tracing::warn!(session = %meter.id, error = %e, "a reserved payment cannot be reconciled; it stays reserved");
                    }
                    Err(e) => {
                        tracing::warn!(session = %meter.id, error = %e, retry_in = ?wait, "could not learn a payment's outcome from LND; it stays reserved");
                    }
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECONCILE_MAX_RETRY);
            }
        });
    }
}
