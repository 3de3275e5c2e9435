//! Per-IP counts held by guards: the primitive under the open-connection table (`client`)
//! and the calls-in-flight table (`activity`), so that each table is a policy over it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts per client IP, each unit held by an [`IpCount`] until it drops: open
/// connections (`client::ConnTable`) and calls in flight (`activity::CallTable`).
#[derive(Default)]
pub(crate) struct IpCounts {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl IpCounts {
    /// Counts one more for `ip` unless it already has `cap`; returns the guard and the
    /// count with it.
    pub(crate) fn add(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<(IpCount, usize)> {
        let mut t = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = t.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        let count = *n;
        Some((
            IpCount {
                ip,
                table: self.clone(),
            },
            count,
        ))
    }

    #[cfg(test)]
    pub(crate) fn get(&self, ip: IpAddr) -> usize {
        let t = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        t.get(&ip).copied().unwrap_or(0)
    }
}

/// One unit counted against its IP until dropped.
pub(crate) struct IpCount {
    ip: IpAddr,
    table: Arc<IpCounts>,
}

impl Drop for IpCount {
    fn drop(&mut self) {
        let mut t = self.table.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = t.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}
