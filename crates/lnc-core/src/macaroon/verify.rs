//! Verifying a macaroon against its root key, and the first-party caveats LND uses.
//!
//! [`Macaroon::verify`] works the way macaroon-bakery (and so LND's `CheckMacAuth`) does:
//! it recomputes the HMAC chain and compares the signature in constant time first, then runs
//! every first-party condition through the caller's [`CaveatChecker`]. A condition no checker
//! recognises fails verification (`caveat not recognized`), as in bakery: a caveat is a
//! restriction, and ignoring an unknown restriction would widen the macaroon.
//!
//! Built-in checkers: [`TimeBefore`] (`time-before <RFC 3339>`, bakery's expiry, which litd
//! adds to every session macaroon), [`IpLock`] (LND's `ipaddr` / `iprange`) and [`LndCustom`]
//! (LND's `lnd-custom <name> <value>`, enforced by RPC middleware). Combine them with a slice
//! or tuple: `(TimeBefore::new(now), IpLock::new(peer))`. Time is always passed in.

use core::fmt;
use core::net::IpAddr;
use core::time::Duration;

use super::{Caveat, Macaroon, RootKey, Signature, keyed_hash};

/// The bakery condition name for expiry.
pub const COND_TIME_BEFORE: &str = "time-before";
/// LND's condition pinning a macaroon to one client IP.
pub const COND_IP_ADDR: &str = "ipaddr";
/// LND's condition pinning a macaroon to a client IP range (CIDR).
pub const COND_IP_RANGE: &str = "iprange";
/// LND's condition for custom caveats handed to RPC middleware (e.g. litd accounts).
pub const COND_LND_CUSTOM: &str = "lnd-custom";

/// A point in time as seconds (and nanoseconds) since the Unix epoch, supplied by the caller
/// (lnc-core reads no clock). Ordered; may be before 1970.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime {
    secs: i64,
    nanos: u32,
}

impl UnixTime {
    /// Whole seconds since the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        UnixTime { secs, nanos: 0 }
    }

    /// Seconds and nanoseconds since the epoch; `None` if `nanos` is not below 10⁹.
    pub const fn new(secs: i64, nanos: u32) -> Option<Self> {
        if nanos >= 1_000_000_000 {
            return None;
        }
        Some(UnixTime { secs, nanos })
    }

    /// From `SystemTime::now().duration_since(UNIX_EPOCH)` (saturating far in the future).
    pub fn from_duration_since_epoch(d: Duration) -> Self {
        UnixTime {
            secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos(),
        }
    }

    /// Whole seconds since the epoch.
    pub const fn secs(&self) -> i64 {
        self.secs
    }

    /// The sub-second part in nanoseconds.
    pub const fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Parses RFC 3339 as Go's `time.Parse(time.RFC3339Nano, …)` does for bakery's
    /// `time-before`: `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let num = |r: core::ops::Range<usize>| -> Option<u32> {
            let digits = b.get(r)?;
            digits.iter().try_fold(0u32, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        let sep = |i: usize, c: u8| b.get(i) == Some(&c);
        if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || min > 59
            || sec > 59
        {
            return None;
        }
        let mut i = 19;
        let mut nanos = 0u32;
        if sep(i, b'.') {
            let start = i + 1;
            let mut end = start;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            let n = end - start;
            if n == 0 || n > 9 {
                return None;
            }
            nanos = num(start..end)? * 10u32.pow((9 - n) as u32);
            i = end;
        }
        let offset: i64 = match b.get(i) {
            Some(b'Z') if b.len() == i + 1 => 0,
            Some(&s @ (b'+' | b'-')) if b.len() == i + 6 && sep(i + 3, b':') => {
                let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = i64::from(oh * 3600 + om * 60);
                if s == b'-' { -o } else { o }
            }
            _ => return None,
        };
        let days = days_from_civil(i64::from(year), month, day);
        let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec) - offset;
        Some(UnixTime { secs, nanos })
    }

    /// Formats as Go's `t.UTC().Format(time.RFC3339Nano)`: trailing zero digits of the
    /// fraction dropped, no fraction for whole seconds, `Z`. `None` outside years 0–9999.
    pub fn to_rfc3339_nano(&self) -> Option<String> {
        let days = self.secs.div_euclid(86_400);
        let tod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return None;
        }
        let mut s = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            tod / 3600,
            tod / 60 % 60,
            tod % 60
        );
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        s.push('Z');
        Some(s)
    }
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The caveat bakery's `TimeBeforeCaveat` writes and litd appends to every session
/// macaroon: `time-before <RFC 3339 nano, UTC>`. `None` outside years 0–9999.
pub fn time_before_caveat(expiry: UnixTime) -> Option<String> {
    Some(format!("{COND_TIME_BEFORE} {}", expiry.to_rfc3339_nano()?))
}

/// Splits a condition into name and argument at the first space (bakery `ParseCaveat`).
pub fn split_condition(condition: &str) -> (&str, &str) {
    condition.split_once(' ').unwrap_or((condition, ""))
}

/// What a checker says about one first-party condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The condition holds.
    Satisfied,
    /// The condition is understood and does not hold; the text says why.
    Unsatisfied(String),
    /// This checker does not handle the condition (another one may).
    NotRecognized,
}

/// Decides first-party conditions. Implemented by the built-in checkers, by closures
/// `Fn(&str) -> CheckOutcome`, and by slices and tuples of checkers (the first one that
/// recognises a condition decides it).
pub trait CaveatChecker {
    /// Checks one condition (the whole caveat text, e.g. `time-before 2030-01-01T00:00:00Z`).
    fn check(&self, condition: &str) -> CheckOutcome;
}

impl<F: Fn(&str) -> CheckOutcome> CaveatChecker for F {
    fn check(&self, condition: &str) -> CheckOutcome {
        self(condition)
    }
}

impl CaveatChecker for [&dyn CaveatChecker] {
    fn check(&self, condition: &str) -> CheckOutcome {
        for c in self {
            match c.check(condition) {
                CheckOutcome::NotRecognized => {}
                decided => return decided,
            }
        }
        CheckOutcome::NotRecognized
    }
}

macro_rules! tuple_checker {
    ($($name:ident),+) => {
        impl<$($name: CaveatChecker),+> CaveatChecker for ($($name,)+) {
            #[allow(non_snake_case)]
            fn check(&self, condition: &str) -> CheckOutcome {
                let ($($name,)+) = self;
                $(
                    match $name.check(condition) {
                        CheckOutcome::NotRecognized => {}
                        decided => return decided,
                    }
                )+
                CheckOutcome::NotRecognized
            }
        }
    };
}
tuple_checker!(A);
tuple_checker!(A, B);
tuple_checker!(A, B, C);
tuple_checker!(A, B, C, D);

/// Bakery's `time-before` checker: satisfied while `now` is strictly before the time.
#[derive(Clone, Copy, Debug)]
pub struct TimeBefore {
    now: UnixTime,
}

impl TimeBefore {
    /// Checks expiry against the caller's clock reading.
    pub const fn new(now: UnixTime) -> Self {
        TimeBefore { now }
    }
}

impl CaveatChecker for TimeBefore {
    fn check(&self, condition: &str) -> CheckOutcome {
        let (name, arg) = split_condition(condition);
        if name != COND_TIME_BEFORE {
            return CheckOutcome::NotRecognized;
        }
        match UnixTime::parse_rfc3339(arg) {
            None => CheckOutcome::Unsatisfied("cannot parse time-before time".into()),
            Some(t) if self.now < t => CheckOutcome::Satisfied,
            Some(_) => CheckOutcome::Unsatisfied("macaroon has expired".into()),
        }
    }
}

/// LND's `ipaddr` (exact client IP) and `iprange` (CIDR) checkers. The peer address comes
/// from the transport (the caller); `None` means unknown, which fails both conditions.
/// IPv4-mapped IPv6 addresses compare equal to their IPv4 form, as Go's `net.IP.Equal` does.
#[derive(Clone, Copy, Debug)]
pub struct IpLock {
    peer: Option<IpAddr>,
}

impl IpLock {
    /// Checks against the connected peer's address.
    pub const fn new(peer: Option<IpAddr>) -> Self {
        IpLock { peer }
    }
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> Option<bool> {
    let (net, bits) = cidr.split_once('/')?;
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let bits: u32 = bits.parse().ok()?;
    let net: IpAddr = net.parse().ok()?;
    Some(match (net, ip.to_canonical()) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        (IpAddr::V4(_), _) if bits <= 32 => false,
        (IpAddr::V6(_), _) if bits <= 128 => false,
        _ => return None,
    })
}

impl CaveatChecker for IpLock {
    fn check(&self, condition: &str) -> CheckOutcome {
        let (name, arg) = split_condition(condition);
        let Some(peer) = self.peer else {
            return match name {
                COND_IP_ADDR | COND_IP_RANGE => {
                    CheckOutcome::Unsatisfied("unable to get peer info from context".into())
                }
                _ => CheckOutcome::NotRecognized,
            };
        };
        match name {
            COND_IP_ADDR => match arg.parse::<IpAddr>() {
                Ok(ip) if ip.to_canonical() == peer.to_canonical() => CheckOutcome::Satisfied,
                _ => CheckOutcome::Unsatisfied("macaroon locked to different IP address".into()),
            },
            COND_IP_RANGE => match cidr_contains(arg, peer) {
                Some(true) => CheckOutcome::Satisfied,
                Some(false) => {
                    CheckOutcome::Unsatisfied("macaroon locked to different IP range".into())
                }
                None => CheckOutcome::Unsatisfied("unable to parse ip range".into()),
            },
            _ => CheckOutcome::NotRecognized,
        }
    }
}

/// Splits the argument of an `lnd-custom` condition into the custom caveat's name and value
/// (LND `ParseCustomCaveat`): `lnd-custom account abcd` → `("account", "abcd")`.
pub fn parse_lnd_custom(arg: &str) -> Option<(&str, &str)> {
    let (name, value) = arg.split_once(' ')?;
    if name.is_empty() {
        return None;
    }
    Some((name, value.trim()))
}

/// LND's `lnd-custom` checker. LND accepts a custom caveat only when an RPC middleware has
/// registered for its name (the middleware then enforces it per call); `accept` plays that
/// role: it gets the custom name and value and decides.
pub struct LndCustom<F> {
    accept: F,
}

impl<F: Fn(&str, &str) -> Result<(), String>> LndCustom<F> {
    /// A checker that asks `accept(name, value)` about each `lnd-custom` caveat.
    pub const fn new(accept: F) -> Self {
        LndCustom { accept }
    }
}

impl<F> fmt::Debug for LndCustom<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LndCustom(..)")
    }
}

impl<F: Fn(&str, &str) -> Result<(), String>> CaveatChecker for LndCustom<F> {
    fn check(&self, condition: &str) -> CheckOutcome {
        let (name, arg) = split_condition(condition);
        if name != COND_LND_CUSTOM {
            return CheckOutcome::NotRecognized;
        }
        match parse_lnd_custom(arg) {
            None => CheckOutcome::Unsatisfied("invalid custom caveat format".into()),
            Some((n, v)) => match (self.accept)(n, v) {
                Ok(()) => CheckOutcome::Satisfied,
                Err(why) => CheckOutcome::Unsatisfied(why),
            },
        }
    }
}

/// Why a macaroon did not verify. Messages contain the bakery / go-macaroon text for the
/// same failure, so they can be compared with LND's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The HMAC chain does not end in the macaroon's signature: wrong root key, or the
    /// macaroon was altered (a caveat changed or dropped).
    #[error(
        "macaroon verification failed: signature mismatch after caveat verification (wrong root key, or the macaroon was altered; ask for a fresh one)"
    )]
    SignatureMismatch,
    /// The macaroon has a third-party caveat; discharges are not supported.
    #[error(
        "macaroon verification failed: caveat {index} is a third-party caveat, which this verifier does not support (LND macaroons have none)"
    )]
    ThirdPartyCaveat {
        /// Position of the caveat.
        index: usize,
    },
    /// A first-party condition does not hold or no checker recognises it.
    #[error("macaroon: caveat {condition:?} not satisfied: {reason}")]
    CaveatNotSatisfied {
        /// The condition text (lossy UTF-8).
        condition: String,
        /// Why (e.g. `macaroon has expired`, `caveat not recognized`).
        reason: String,
    },
}

impl Macaroon {
    /// Checks the signature only (go-macaroon `VerifySignature`, bakery's first step) and
    /// returns the first-party conditions, which the caller must still check. Fails on any
    /// third-party caveat.
    pub fn verify_signature(&self, root_key: &RootKey) -> Result<Vec<&[u8]>, VerifyError> {
        let key = root_key.derive();
        let mut sig = Signature::from_bytes(keyed_hash(key.as_bytes(), &self.identifier));
        let mut conditions = Vec::with_capacity(self.caveats.len());
        for (index, cav) in self.caveats.iter().enumerate() {
            match cav {
                Caveat::FirstParty(c) => {
                    sig = Signature::from_bytes(keyed_hash(sig.as_bytes(), c));
                    conditions.push(c.as_slice());
                }
                Caveat::ThirdParty(_) => return Err(VerifyError::ThirdPartyCaveat { index }),
            }
        }
        if sig != self.signature {
            return Err(VerifyError::SignatureMismatch);
        }
        Ok(conditions)
    }

    /// Verifies against the root key: signature first (constant-time compare), then every
    /// first-party condition through `checker`, in order. A condition the checker does not
    /// recognise fails with reason `caveat not recognized`.
    pub fn verify<C: CaveatChecker + ?Sized>(
        &self,
        root_key: &RootKey,
        checker: &C,
    ) -> Result<(), VerifyError> {
        for cond in self.verify_signature(root_key)? {
            check_condition(cond, checker)?;
        }
        Ok(())
    }

    /// The earliest `time-before` among the first-party caveats: when the macaroon stops
    /// working (what a client shows as the session's expiry). `Ok(None)` if it never expires;
    /// an unparsable `time-before` is an error, since LND would reject the macaroon.
    pub fn expires_at(&self) -> Result<Option<UnixTime>, VerifyError> {
        let mut earliest: Option<UnixTime> = None;
        for cond in self.first_party_conditions() {
            let Ok(text) = core::str::from_utf8(cond) else {
                continue;
            };
            let (name, arg) = split_condition(text);
            if name != COND_TIME_BEFORE {
                continue;
            }
            let t =
                UnixTime::parse_rfc3339(arg).ok_or_else(|| VerifyError::CaveatNotSatisfied {
                    condition: text.into(),
                    reason: "cannot parse time-before time".into(),
                })?;
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        }
        Ok(earliest)
    }
}

/// Runs one condition through a checker, turning the outcome into bakery's error shape.
pub(crate) fn check_condition<C: CaveatChecker + ?Sized>(
    cond: &[u8],
    checker: &C,
) -> Result<(), VerifyError> {
    let fail = |reason: String| VerifyError::CaveatNotSatisfied {
        condition: String::from_utf8_lossy(cond).into_owned(),
        reason,
    };
    let Ok(text) = core::str::from_utf8(cond) else {
        return Err(fail("caveat not recognized".into()));
    };
    match checker.check(text) {
        CheckOutcome::Satisfied => Ok(()),
        CheckOutcome::Unsatisfied(reason) => Err(fail(reason)),
        CheckOutcome::NotRecognized => Err(fail("caveat not recognized".into())),
    }
}
