//! A session's spending budget as a pure state machine: what was spent in the current
//! period, what is reserved by payments in flight, and whether one more payment fits.
//!
//! Every payment is *reserved* (amount + the most it may pay in fees) before the node
//! forwards it, and *settled* to what it really cost (or *released*, if it failed) when its
//! outcome is known. A payment that does not fit is refused before any HTLC leaves, so
//! concurrent payments can never together exceed the budget: the caller holds the ledger
//! behind one mutex and `reserve` is the only way to spend.
//!
//! Time is passed in (whole Unix seconds) so a test can roll a period over without waiting.
//! Rolling periods look back from now: a spend stops counting exactly one period after it
//! settled, and the moment budget comes back is the oldest counted spend's anniversary.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Seconds in a day.
const DAY: u64 = 24 * 60 * 60;

/// Settled spends kept per rolling window. Beyond it the two oldest merge into one at the
/// later time, which keeps the sum and only delays when budget comes back (never early).
pub const MAX_SPENDS_IN_WINDOW: usize = 4096;

/// How a budget renews.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Never: the budget is a lifetime total.
    Total,
    /// A rolling 24 hours.
    Day,
    /// A rolling 7 days.
    Week,
    /// A rolling 30 days.
    Month,
}

impl Period {
    /// The window's length in seconds (`None` for a lifetime total).
    pub fn seconds(self) -> Option<u64> {
        match self {
            Period::Total => None,
            Period::Day => Some(DAY),
            Period::Week => Some(7 * DAY),
            Period::Month => Some(30 * DAY),
        }
    }

    /// The name the CLI takes and shows (`50000sat/day`).
    pub fn name(self) -> &'static str {
        match self {
            Period::Total => "total",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

impl std::str::FromStr for Period {
    type Err = BudgetParseError;

    fn from_str(s: &str) -> Result<Self, BudgetParseError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "total" | "lifetime" => Ok(Period::Total),
            "day" | "daily" | "d" => Ok(Period::Day),
            "week" | "weekly" | "w" => Ok(Period::Week),
            "month" | "monthly" | "m" => Ok(Period::Month),
            _ => Err(BudgetParseError(format!(
                "unknown period {s:?}: use total, day, week or month"
            ))),
        }
    }
}

/// A budget or amount the user typed that does not parse; says the accepted form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BudgetParseError(pub String);

/// What a session may spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Most that payments (amounts and fees) may add up to within one period, msat.
    pub limit_msat: u64,
    /// How the limit renews.
    pub period: Period,
    /// Most a single payment (amount + fee limit) may commit, msat.
    pub max_payment_msat: Option<u64>,
}

impl Budget {
    /// Parses the CLI's `50000sat/day` (units: `sat`, `msat`, `btc`; periods: `total`,
    /// `day`, `week`, `month`; no period means `total`).
    pub fn parse(budget: &str, max_payment: Option<&str>) -> Result<Budget, BudgetParseError> {
        let (amount, period) = match budget.split_once('/') {
            Some((a, p)) => (a, p.parse()?),
            None => (budget, Period::Total),
        };
        Ok(Budget {
            limit_msat: parse_msat(amount)?,
            period,
            max_payment_msat: max_payment.map(parse_msat).transpose()?,
        })
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Sat(self.limit_msat), self.period.name())?;
        if let Some(m) = self.max_payment_msat {
            write!(f, ", at most {} a payment", Sat(m))?;
        }
        Ok(())
    }
}

/// Parses `10000sat`, `10000` (sat), `1500msat` or `0.001btc` into msat.
pub fn parse_msat(s: &str) -> Result<u64, BudgetParseError> {
    let t = s.trim().to_ascii_lowercase().replace(['_', ',', ' '], "");
    let bad = || {
        BudgetParseError(format!(
            "cannot read the amount {s:?}: write e.g. 50000sat, 1500msat or 0.001btc"
        ))
    };
    if let Some(n) = t.strip_suffix("msat") {
        return n.parse::<u64>().map_err(|_| bad());
    }
    if let Some(n) = t.strip_suffix("btc") {
        let (whole, frac) = n.split_once('.').unwrap_or((n, ""));
        if frac.len() > 11 || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let frac_msat: u64 = format!("{frac:0<11}").parse().map_err(|_| bad())?;
        return whole
            .checked_mul(100_000_000_000)
            .and_then(|w| w.checked_add(frac_msat))
            .ok_or_else(bad);
    }
    let n = t
        .strip_suffix("sats")
        .or(t.strip_suffix("sat"))
        .unwrap_or(&t);
    n.parse::<u64>()
        .map_err(|_| bad())?
        .checked_mul(1000)
        .ok_or_else(bad)
}

/// An msat amount shown in sat with thousands separators (`12,000 sat`, `1,500.5 sat`).
#[derive(Clone, Copy, Debug)]
pub struct Sat(pub u64);

impl fmt::Display for Sat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sat = (self.0 / 1000).to_string();
        let mut out = String::new();
        for (i, c) in sat.chars().enumerate() {
            if i > 0 && (sat.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        let msat = self.0 % 1000;
        if msat != 0 {
            let frac = format!("{msat:03}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        write!(f, "{out} sat")
    }
}

/// One payment in flight: what it may cost at most.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Amount + fee limit, msat.
    pub msat: u64,
    /// When it was reserved (Unix seconds).
    pub at: u64,
    /// The RPC that made it.
    pub method: String,
}

/// A settled payment that still counts against the period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Spend {
    at: u64,
    msat: u64,
}

/// Why a payment was refused; the message tells the app what it can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not enough budget left in this period.
    OverBudget {
        /// What this payment would commit (amount + fee limit).
        wanted_msat: u64,
        /// What is left now.
        left_msat: u64,
        /// The period's limit.
        limit_msat: u64,
        /// When more budget comes back (`None`: never, a lifetime total).
        resets_at: Option<u64>,
    },
    /// Bigger than the per-payment cap.
    OverMaxPayment {
        /// What this payment would commit.
        wanted_msat: u64,
        /// The cap.
        max_msat: u64,
    },
    /// A payment to the same hash is already in flight through this session.
    AlreadyInFlight,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::OverBudget {
                wanted_msat,
                left_msat,
                limit_msat,
                resets_at,
            } => {
                write!(
                    f,
                    "session budget: {} of {} left",
                    Sat(*left_msat),
                    Sat(*limit_msat)
                )?;
                match resets_at {
                    Some(t) => write!(f, " until {}", utc(*t))?,
                    None => f.write_str(" (a lifetime budget; it does not renew)")?,
                }
                write!(
                    f,
                    "; this payment needs {} (amount + fee limit): pay less, lower the fee limit, or ask the node's operator to raise the budget",
                    Sat(*wanted_msat)
                )
            }
            Refusal::OverMaxPayment {
                wanted_msat,
                max_msat,
            } => write!(
                f,
                "session budget: one payment may commit at most {}, this one needs {} (amount + fee limit): pay less or lower the fee limit",
                Sat(*max_msat),
                Sat(*wanted_msat)
            ),
            Refusal::AlreadyInFlight => f.write_str(
                "session budget: a payment to this hash is already in flight; wait for its outcome (routerrpc.Router.TrackPaymentV2)",
            ),
        }
    }
}

/// `2026-12-04 08:00 UTC` from Unix seconds (civil-from-days, proleptic Gregorian).
pub fn utc(t: u64) -> String {
    let days = (t / DAY) as i64;
    let secs = t % DAY;
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// What the session may still spend, as the node's service, `lnc session list` and
/// `lnc status` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remaining {
    /// The budget.
    pub budget: Budget,
    /// Settled in the current period, msat.
    pub spent_msat: u64,
    /// Reserved by payments in flight, msat.
    pub reserved_msat: u64,
    /// Left to commit now, msat.
    pub left_msat: u64,
    /// When more budget comes back (Unix seconds); `None` for a lifetime total or when
    /// nothing settled counts yet.
    pub resets_at: Option<u64>,
}

/// The budget's state. Serialized as is into the session store after every change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    budget: Budget,
    /// Rolling periods: settled spends, oldest first, pruned as they leave the window.
    spends: VecDeque<Spend>,
    /// Lifetime total of settled spends (what a `total` budget counts).
    settled_total_msat: u64,
    /// Payments in flight by payment hash (hex).
    reservations: BTreeMap<String, Reservation>,
}

impl Ledger {
    /// An empty ledger for `budget`.
    pub fn new(budget: Budget) -> Self {
        Ledger {
            budget,
            spends: VecDeque::new(),
            settled_total_msat: 0,
            reservations: BTreeMap::new(),
        }
    }

    /// The budget.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Changes the budget from now on; what was spent and reserved still counts.
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = budget;
    }

    /// Payments in flight (payment hash in hex → reservation).
    pub fn reservations(&self) -> &BTreeMap<String, Reservation> {
        &self.reservations
    }

    fn prune(&mut self, now: u64) {
        if let Some(len) = self.budget.period.seconds() {
            while self.spends.front().is_some_and(|s| s.at + len <= now) {
                self.spends.pop_front();
            }
        }
    }

    fn spent(&self) -> u64 {
        match self.budget.period {
            Period::Total => self.settled_total_msat,
            _ => self.spends.iter().map(|s| s.msat).sum(),
        }
    }

    fn reserved(&self) -> u64 {
        self.reservations.values().map(|r| r.msat).sum()
    }

    /// What is left at `now`.
    pub fn remaining(&mut self, now: u64) -> Remaining {
        self.prune(now);
        let spent = self.spent();
        let reserved = self.reserved();
        Remaining {
            budget: self.budget,
            spent_msat: spent,
            reserved_msat: reserved,
            left_msat: self.budget.limit_msat.saturating_sub(spent + reserved),
            resets_at: self
                .budget
                .period
                .seconds()
                .and_then(|len| self.spends.front().map(|s| s.at + len)),
        }
    }

    /// Reserves `msat` (amount + fee limit) for the payment to `hash`, or says why not.
    pub fn reserve(
        &mut self,
        hash: &str,
        msat: u64,
        method: &str,
        now: u64,
    ) -> Result<(), Refusal> {
        if let Some(max) = self.budget.max_payment_msat
            && msat > max
        {
            return Err(Refusal::OverMaxPayment {
                wanted_msat: msat,
                max_msat: max,
            });
        }
        if self.reservations.contains_key(hash) {
            return Err(Refusal::AlreadyInFlight);
        }
        let r = self.remaining(now);
        // Compared with what is committed, not with `left_msat`: after the user lowers the
        // budget below what is already committed, `left_msat` saturates at 0 and would let
        // a 0-msat reservation through an exhausted budget.
        if (r.spent_msat + r.reserved_msat).saturating_add(msat) > self.budget.limit_msat {
            return Err(Refusal::OverBudget {
                wanted_msat: msat,
                left_msat: r.left_msat,
                limit_msat: self.budget.limit_msat,
                resets_at: match self.budget.period {
                    Period::Total => None,
                    // Nothing settled to roll off: only in-flight payments hold the budget.
                    _ => r.resets_at,
                },
            });
        }
        self.reservations.insert(
            hash.to_owned(),
            Reservation {
                msat,
                at: now,
                method: method.to_owned(),
            },
        );
        Ok(())
    }

    /// The payment to `hash` succeeded and cost `msat` (amount + fee): the reservation
    /// becomes a spend. Returns whether there was a reservation.
    pub fn settle(&mut self, hash: &str, msat: u64, now: u64) -> bool {
        if self.reservations.remove(hash).is_none() {
            return false;
        }
        self.settled_total_msat = self.settled_total_msat.saturating_add(msat);
        // Kept for a `total` budget too, so a later change to a rolling period sees them.
        self.spends.push_back(Spend { at: now, msat });
        if self.spends.len() > MAX_SPENDS_IN_WINDOW
            && let (Some(a), Some(b)) = (self.spends.pop_front(), self.spends.pop_front())
        {
            self.spends.push_front(Spend {
                at: b.at,
                msat: a.msat.saturating_add(b.msat),
            });
        }
        true
    }

    /// The payment to `hash` failed: its reservation is freed. Returns whether there was one.
    pub fn release(&mut self, hash: &str) -> bool {
        self.reservations.remove(hash).is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn sat(n: u64) -> u64 {
        n * 1000
    }

    fn day(limit: u64) -> Ledger {
        Ledger::new(Budget {
            limit_msat: sat(limit),
            period: Period::Day,
            max_payment_msat: None,
        })
    }

    #[test]
    fn parses_budgets_and_amounts() {
        let b = Budget::parse("50000sat/day", Some("10000sat")).unwrap();
        assert_eq!(b.limit_msat, 50_000_000);
        assert_eq!(b.period, Period::Day);
        assert_eq!(b.max_payment_msat, Some(10_000_000));
        assert_eq!(Budget::parse("1000", None).unwrap().period, Period::Total);
        assert_eq!(parse_msat("1500msat").unwrap(), 1500);
        assert_eq!(parse_msat("0.001btc").unwrap(), 100_000_000);
        assert_eq!(parse_msat("1btc").unwrap(), 100_000_000_000);
        assert_eq!(parse_msat("50,000 sat").unwrap(), 50_000_000);
        for bad in [
            "",
            "x",
            "-5sat",
            "1.5sat",
            "0.000000000001btc",
            "99999999999999999999",
        ] {
            assert!(parse_msat(bad).is_err(), "{bad}");
        }
        assert!(Budget::parse("5sat/fortnight", None).is_err());
        assert_eq!(
            b.to_string(),
            "50,000 sat/day, at most 10,000 sat a payment"
        );
    }

    #[test]
    fn formats_times_and_sats() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_796_371_200), "2026-12-04 08:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(Sat(12_000_000).to_string(), "12,000 sat");
        assert_eq!(Sat(1_500).to_string(), "1.5 sat");
        assert_eq!(Sat(999).to_string(), "0.999 sat");
    }

    #[test]
    fn reserve_settle_release() {
        let mut l = day(50_000);
        l.reserve("a", sat(30_000), "m", 100).unwrap();
        l.reserve("b", sat(15_000), "m", 100).unwrap();
        let refused = l.reserve("c", sat(10_000), "m", 100).unwrap_err();
        assert!(
            matches!(refused, Refusal::OverBudget { left_msat, .. } if left_msat == sat(5_000))
        );
        assert!(l.settle("a", sat(29_000), 200));
        assert!(l.release("b"));
        assert!(!l.release("b"), "released once");
        let r = l.remaining(300);
        assert_eq!(
            (r.spent_msat, r.reserved_msat, r.left_msat),
            (sat(29_000), 0, sat(21_000))
        );
        assert_eq!(r.resets_at, Some(200 + DAY));
        assert_eq!(
            l.reserve("a", 1, "m", 300),
            Ok(()),
            "a hash may be paid again once settled"
        );
        assert_eq!(l.reserve("a", 1, "m", 300), Err(Refusal::AlreadyInFlight));
    }

    #[test]
    fn rolling_window_and_total() {
        let mut l = day(10);
        l.reserve("a", sat(10), "m", 0).unwrap();
        l.settle("a", sat(10), 1000);
        let err = l.reserve("b", 1, "m", 1000 + DAY - 1).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("0 sat of 10 sat left until 1970-01-02 00:16 UTC"),
            "{text}"
        );
        l.reserve("b", sat(10), "m", 1000 + DAY).unwrap();

        let mut t = Ledger::new(Budget {
            limit_msat: sat(10),
            period: Period::Total,
            max_payment_msat: Some(sat(6)),
        });
        assert!(matches!(
            t.reserve("x", sat(7), "m", 0),
            Err(Refusal::OverMaxPayment { .. })
        ));
        t.reserve("x", sat(6), "m", 0).unwrap();
        t.settle("x", sat(6), 0);
        let err = t.reserve("y", sat(5), "m", 10 * 365 * DAY).unwrap_err();
        assert!(err.to_string().contains("lifetime"), "{err}");
    }

    #[test]
    fn many_spends_merge_without_losing_the_sum() {
        let mut l = day(1_000_000);
        for i in 0..(MAX_SPENDS_IN_WINDOW as u64 + 10) {
            let h = i.to_string();
            l.reserve(&h, 7, "m", i).unwrap();
            l.settle(&h, 7, i);
        }
        assert!(l.spends.len() <= MAX_SPENDS_IN_WINDOW);
        assert_eq!(
            l.remaining(MAX_SPENDS_IN_WINDOW as u64 + 10).spent_msat,
            7 * (MAX_SPENDS_IN_WINDOW as u64 + 10)
        );
    }

    #[test]
    fn nothing_is_granted_once_a_lowered_budget_is_exceeded() {
        let mut l = day(10_000);
        l.reserve("a", 1_770, "m", 0).unwrap();
        l.set_budget(Budget {
            limit_msat: 0,
            ..l.budget
        });
        assert!(matches!(
            l.reserve("b", 0, "m", 0),
            Err(Refusal::OverBudget { left_msat: 0, .. })
        ));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Reserve(u8, u64),
        Settle(u8, u64),
        Release(u8),
        Wait(u64),
        SetLimit(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..8, 0u64..5_000).prop_map(|(h, m)| Op::Reserve(h, m)),
            (0u8..8, 0u64..6_000).prop_map(|(h, m)| Op::Settle(h, m)),
            (0u8..8).prop_map(Op::Release),
            (0u64..2 * DAY).prop_map(Op::Wait),
            (0u64..20_000).prop_map(Op::SetLimit),
        ]
    }

    proptest! {
        /// Under any interleaving, what is reserved plus what settled within the window
        /// never exceeds the limit at the moment of a successful reservation, and a
        /// settle never adds more than was reserved (settling at or under the reservation).
        #[test]
        fn never_over_budget(ops in proptest::collection::vec(op(), 0..200)) {
            let mut l = day(10);
            let mut now = 0u64;
            for o in ops {
                match o {
                    Op::Reserve(h, m) => {
                        if l.reserve(&h.to_string(), m, "m", now).is_ok() {
                            let r = l.remaining(now);
                            prop_assert!(r.spent_msat + r.reserved_msat <= l.budget.limit_msat);
                        }
                    }
                    Op::Settle(h, m) => {
                        let key = h.to_string();
                        if let Some(res) = l.reservations.get(&key).cloned() {
                            l.settle(&key, m.min(res.msat), now);
                        }
                    }
                    Op::Release(h) => { l.release(&h.to_string()); }
                    Op::Wait(d) => now += d,
                    Op::SetLimit(m) => l.set_budget(Budget { limit_msat: m, ..l.budget }),
                }
                let r = l.remaining(now);
                prop_assert_eq!(r.left_msat, l.budget.limit_msat.saturating_sub(r.spent_msat + r.reserved_msat));
            }
        }
    }
}
