//! The relay's memory promise for queued messages: a relay-wide budget of queued bytes and
//! a per-IP share of it, charged to the IP that *wrote* each message until a reader takes it
//! or the mailbox ends.
//!
//! The per-stream caps (`max_queue_bytes`) bound one mailbox, and `max_streams_per_ip`
//! bounds how many one IP may create, but their product is gigabytes (1,000 × 2 MiB): an
//! IP that writes into many mailboxes nobody reads could pin that much. With the budget, a
//! writer over its IP's share (or writing while the relay's budget is spent) is held back
//! exactly like a writer whose queue is full (back-pressure, nothing dropped), and the other
//! clients' messages still fit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use tokio::sync::Notify;

/// Why a message does not fit now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Over {
    /// The writing IP holds its share.
    IpShare,
    /// The relay's budget is spent.
    Relay,
}

/// Queued bytes, in total and per writing IP.
pub(crate) struct QueueBudget {
    total_cap: usize,
    per_ip_cap: usize,
    used: Mutex<Used>,
    /// Signalled whenever bytes are refunded, so held-back writers try again.
    freed: Notify,
}

#[derive(Default)]
struct Used {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl QueueBudget {
    pub(crate) fn new(total_cap: usize, per_ip_cap: usize) -> Self {
        QueueBudget {
            total_cap,
            per_ip_cap: per_ip_cap.min(total_cap),
            used: Mutex::new(Used::default()),
            freed: Notify::new(),
        }
    }

    /// Charges `len` bytes to `ip`, or says which cap it would cross. A message always fits
    /// when its IP has nothing queued and the relay has room for it, so a share smaller than
    /// the largest message slows a writer down to one message at a time but never stalls it.
    pub(crate) fn charge(&self, ip: IpAddr, len: usize) -> Result<(), Over> {
        let mut u = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let mine = u.per_ip.get(&ip).copied().unwrap_or(0);
        if u.total.saturating_add(len) > self.total_cap && u.total > 0 {
            return Err(Over::Relay);
        }
        if mine > 0 && mine.saturating_add(len) > self.per_ip_cap {
            return Err(Over::IpShare);
        }
        u.total += len;
        *u.per_ip.entry(ip).or_insert(0) += len;
        Ok(())
    }

    /// Gives back bytes charged to `ip` (delivered, or dropped with their mailbox).
    pub(crate) fn refund(&self, ip: IpAddr, len: usize) {
        if len == 0 {
            return;
        }
        {
            let mut u = self.used.lock().unwrap_or_else(|p| p.into_inner());
            u.total = u.total.saturating_sub(len);
            if let Some(n) = u.per_ip.get_mut(&ip) {
                *n = n.saturating_sub(len);
                if *n == 0 {
                    u.per_ip.remove(&ip);
                }
            }
        }
        self.freed.notify_waiters();
    }

    /// Resolves after the next refund; create (and `enable`) it before checking, so a
    /// refund between the check and the wait is not missed.
    pub(crate) fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// Bytes queued relay-wide.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// The relay-wide cap.
    pub(crate) fn total_cap(&self) -> usize {
        self.total_cap
    }

    /// The per-IP share.
    pub(crate) fn per_ip_cap(&self) -> usize {
        self.per_ip_cap
    }
}

/// The default budget: a quarter of the machine's memory (`MemTotal` in `/proc/meminfo`),
/// 1 GiB where that cannot be read.
pub fn default_queue_budget() -> usize {
    const FALLBACK: usize = 1 << 30;
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(FALLBACK, |kib| kib.saturating_mul(1024) / 4)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn an_ip_is_held_at_its_share_and_others_still_fit() {
        let b = QueueBudget::new(1000, 300);
        assert_eq!(b.charge(ip(1), 200), Ok(()));
        assert_eq!(b.charge(ip(1), 200), Err(Over::IpShare));
        assert_eq!(b.charge(ip(2), 200), Ok(()));
        b.refund(ip(1), 200);
        assert_eq!(b.charge(ip(1), 300), Ok(()));
        assert_eq!(b.used(), 500);
    }

    #[test]
    fn the_relay_budget_binds_across_ips() {
        let b = QueueBudget::new(500, 300);
        b.charge(ip(1), 300).unwrap();
        assert_eq!(b.charge(ip(2), 250), Err(Over::Relay));
        b.refund(ip(1), 300);
        b.charge(ip(2), 250).unwrap();
    }

    #[test]
    fn a_message_larger_than_the_share_passes_alone() {
        let b = QueueBudget::new(10_000, 100);
        b.charge(ip(1), 500).unwrap();
        assert_eq!(b.charge(ip(1), 1), Err(Over::IpShare));
        b.refund(ip(1), 500);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn the_default_is_sized_from_the_machine() {
        assert!(default_queue_budget() >= 64 << 20);
    }
}
