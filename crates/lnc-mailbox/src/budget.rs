//! The relay's memory promise: a relay-wide budget and a per-IP share of it, covering
//! together what one client can make the relay hold — the messages it queued (charged to
//! the IP that *wrote* each message until a reader takes it or the mailbox ends), its
//! calls in flight (half-open ones included) and its open connections (a fixed cost each,
//! held for their lifetime).
//!
//! The per-stream caps (`max_queue_bytes`) bound one mailbox, and the per-IP counts bound
//! how many mailboxes, calls and connections one IP may have, but the product of those is
//! gigabytes (1,000 × 2 MiB queued; 2,000 half-open calls × 60 connections took 1.3 GB in
//! #18's row 3): one IP could pin that much. With the budget:
//! - a writer over its IP's share (or writing while the relay's budget is spent) is held
//!   back exactly like a writer whose queue is full (back-pressure, nothing dropped);
//! - a call or connection that would cross its IP's share is refused with a status that
//!   says so ([`crate::error::RelayError::OverMemoryShare`]);
//! - a writer held back reserves what HTTP/2 may buffer for it (its stream window) plus
//!   the message it holds, within everything its IP holds; at the share it is ended with
//!   the same status instead of being kept.
//!
//! Calls and connections are reserved before queued bytes: an IP's queued messages get
//! what its reservations leave of its share, and a full queue never stops the IP from
//! opening the reader that would drain it. So one IP holds at most its share in queued
//! bytes and held writers, and at most its share in calls and connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::error::RelayError;

/// What one call in flight costs the relay, worst case, before it carries a message: the
/// HTTP/2 stream state, the request's headers and the handler's task and buffers. Row 3
/// of #18 measured 1.33 GB for 120,000 half-open `SendStream` calls (≈ 11 KiB each).
pub(crate) const CALL_COST: usize = 16 << 10;

/// What one open connection costs before any call: the TLS session's record buffers
/// (2 × 16.5 KiB), the HTTP/1 or HTTP/2 connection state and its read buffer, the task.
pub(crate) const CONNECTION_COST: usize = 64 << 10;

/// What a writer the relay holds back (its queue full, or its IP's share spent) keeps
/// beyond its queued messages, besides the message it is holding: what HTTP/2 flow control
/// lets its client send before the window closes (the relay's stream window).
pub(crate) const HELD_WRITER_COST: usize = 256 << 10;

/// Why a message, call or connection does not fit now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Over {
    /// The IP holds its share.
    IpShare,
    /// The relay's budget is spent.
    Relay,
}

/// The relay's memory budget: bytes queued and reserved (calls, connections), in total
/// and per IP.
pub(crate) struct MemoryBudget {
    total_cap: usize,
    per_ip_cap: usize,
    used: Mutex<Used>,
    /// Signalled whenever bytes are refunded, so held-back writers try again.
    freed: Notify,
}

#[derive(Default)]
struct Used {
    queued: usize,
    reserved: usize,
    per_ip: HashMap<IpAddr, IpUse>,
}

#[derive(Default)]
struct IpUse {
    queued: usize,
    reserved: usize,
}

impl MemoryBudget {
    pub(crate) fn new(total_cap: usize, per_ip_cap: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            total_cap,
            per_ip_cap: per_ip_cap.min(total_cap),
            used: Mutex::new(Used::default()),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Charges a message of `len` bytes to `ip`, or says which cap it would cross. A
    /// message always fits when its IP has nothing queued and the relay has room for it,
    /// so a share smaller than the largest message slows a writer down to one message at a
    /// time but never stalls it.
    pub(crate) fn charge(&self, ip: IpAddr, len: usize) -> Result<(), Over> {
        let mut u = self.lock();
        let all = u.queued.saturating_add(u.reserved);
        if all.saturating_add(len) > self.total_cap && u.queued > 0 {
            return Err(Over::Relay);
        }
        let mine = u
            .per_ip
            .get(&ip)
            .map_or(0, |m| m.queued.saturating_add(m.reserved));
        let mine_queued = u.per_ip.get(&ip).map_or(0, |m| m.queued);
        if mine_queued > 0 && mine.saturating_add(len) > self.per_ip_cap {
            return Err(Over::IpShare);
        }
        u.queued += len;
        u.per_ip.entry(ip).or_default().queued += len;
        Ok(())
    }

    /// Gives back message bytes charged to `ip` (delivered, or dropped with their mailbox).
    pub(crate) fn refund(&self, ip: IpAddr, len: usize) {
        if len == 0 {
            return;
        }
        {
            let mut u = self.lock();
            u.queued = u.queued.saturating_sub(len);
            if let Some(m) = u.per_ip.get_mut(&ip) {
                m.queued = m.queued.saturating_sub(len);
                if m.queued == 0 && m.reserved == 0 {
                    u.per_ip.remove(&ip);
                }
            }
        }
        self.freed.notify_waiters();
    }

    /// Reserves `cost` bytes for `ip` until the returned guard drops (a call or a
    /// connection). Only reservations count against this check: queued messages yield to
    /// calls, as the reader that drains a queue is itself a call.
    pub(crate) fn reserve(self: &Arc<Self>, ip: IpAddr, cost: usize) -> Result<Reservation, Over> {
        self.reserve_against(ip, cost, false)
    }

    /// Reserves `cost` bytes for a writer held back, checked against everything its IP
    /// holds (queued and reserved): an IP at its share has its further held writers
    /// refused rather than kept, since each would pin its stream's buffers.
    pub(crate) fn reserve_within_share(
        self: &Arc<Self>,
        ip: IpAddr,
        cost: usize,
    ) -> Result<Reservation, Over> {
        self.reserve_against(ip, cost, true)
    }

    /// Reserves `cost` if the reservations (and with `with_queued`, the queued bytes too)
    /// leave room for it in the IP's share and the relay's budget.
    fn reserve_against(
        self: &Arc<Self>,
        ip: IpAddr,
        cost: usize,
        with_queued: bool,
    ) -> Result<Reservation, Over> {
        let mut u = self.lock();
        let queued = |q: usize| if with_queued { q } else { 0 };
        let all = u.reserved.saturating_add(queued(u.queued));
        if all.saturating_add(cost) > self.total_cap {
            return Err(Over::Relay);
        }
        let mine = u
            .per_ip
            .get(&ip)
            .map_or(0, |m| m.reserved.saturating_add(queued(m.queued)));
        if mine.saturating_add(cost) > self.per_ip_cap {
            return Err(Over::IpShare);
        }
        u.reserved += cost;
        u.per_ip.entry(ip).or_default().reserved += cost;
        Ok(Reservation {
            budget: self.clone(),
            ip,
            cost,
        })
    }

    fn release(&self, ip: IpAddr, cost: usize) {
        {
            let mut u = self.lock();
            u.reserved = u.reserved.saturating_sub(cost);
            if let Some(m) = u.per_ip.get_mut(&ip) {
                m.reserved = m.reserved.saturating_sub(cost);
                if m.queued == 0 && m.reserved == 0 {
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
        self.lock().queued
    }

    /// Bytes reserved relay-wide (calls and connections).
    pub(crate) fn reserved(&self) -> usize {
        self.lock().reserved
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

/// The refusal for a call, connection or held writer the budget cannot take.
pub(crate) fn over_share(over: Over, budget: &MemoryBudget) -> RelayError {
    RelayError::OverMemoryShare {
        share: match over {
            Over::IpShare => budget.per_ip_cap(),
            Over::Relay => budget.total_cap(),
        },
    }
}

/// Bytes reserved for one call or connection, given back when it drops.
pub(crate) struct Reservation {
    budget: Arc<MemoryBudget>,
    ip: IpAddr,
    cost: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.ip, self.cost);
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
        let b = MemoryBudget::new(1000, 300);
        assert_eq!(b.charge(ip(1), 200), Ok(()));
        assert_eq!(b.charge(ip(1), 200), Err(Over::IpShare));
        assert_eq!(b.charge(ip(2), 200), Ok(()));
        b.refund(ip(1), 200);
        assert_eq!(b.charge(ip(1), 300), Ok(()));
        assert_eq!(b.used(), 500);
    }

    #[test]
    fn the_relay_budget_binds_across_ips() {
        let b = MemoryBudget::new(500, 300);
        b.charge(ip(1), 300).unwrap();
        assert_eq!(b.charge(ip(2), 250), Err(Over::Relay));
        b.refund(ip(1), 300);
        b.charge(ip(2), 250).unwrap();
    }

    #[test]
    fn a_message_larger_than_the_share_passes_alone() {
        let b = MemoryBudget::new(10_000, 100);
        b.charge(ip(1), 500).unwrap();
        assert_eq!(b.charge(ip(1), 1), Err(Over::IpShare));
        b.refund(ip(1), 500);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn calls_and_connections_share_the_ip_budget_with_queued_bytes() {
        let b = MemoryBudget::new(10_000, 1_000);
        let call = b.reserve(ip(1), 400).unwrap();
        // Queued bytes get what the reservations leave: 600.
        b.charge(ip(1), 500).unwrap();
        assert_eq!(b.charge(ip(1), 200), Err(Over::IpShare));
        // A full queue does not stop a reservation (the reader that drains it is a call)...
        let reader = b.reserve(ip(1), 500).unwrap();
        // ...but reservations alone are capped at the share.
        assert_eq!(b.reserve(ip(1), 200).err(), Some(Over::IpShare));
        assert_eq!(b.reserved(), 900);
        // Another IP is untouched.
        let _other = b.reserve(ip(2), 1_000).unwrap();
        drop((call, reader));
        assert_eq!(b.reserved(), 1_000);
        b.charge(ip(1), 400).unwrap();
    }

    #[test]
    fn reservations_bind_the_relay_total() {
        let b = MemoryBudget::new(1_000, 1_000);
        let _a = b.reserve(ip(1), 800).unwrap();
        assert_eq!(b.reserve(ip(2), 300).err(), Some(Over::Relay));
        // A message still fits alone (nothing queued), then the total binds.
        b.charge(ip(2), 300).unwrap();
        assert_eq!(b.charge(ip(2), 1), Err(Over::Relay));
    }

    #[test]
    fn the_default_is_sized_from_the_machine() {
        assert!(default_queue_budget() >= 64 << 20);
    }
}
