//! Who is calling: the client IP every per-IP limit counts against (the socket's, or the
//! forwarded one behind a trusted proxy) and the table of open connections per IP. Shared
//! by the listener (`conn`) and the front ends (`grpc`, `ws`), which read [`ClientInfo`]
//! from each request.

use std::net::IpAddr;
use std::sync::Arc;

use crate::budget::{CONNECTION_COST, MemoryBudget, Reservation, over_share};
use crate::error::RelayError;
use crate::ip_counts::{IpCount, IpCounts};

/// Who sent a request: the client IP used for per-IP limits. Carried as a
/// request extension; it also keeps the connection counted while an upgraded
/// WebSocket lives.
#[derive(Clone)]
pub struct ClientInfo {
    /// Socket IP, or the first untrusted X-Forwarded-For hop behind a trusted
    /// proxy.
    pub ip: IpAddr,
    pub(crate) _conn: Arc<ConnGuard>,
    /// Keeps the request counted as in flight on its connection while an upgraded
    /// WebSocket lives (its HTTP response is long over).
    pub(crate) _request: Arc<crate::activity::RequestGuard>,
}

/// One open connection: counted against its IP, and its memory reserved in the budget
/// (none for a trusted proxy's connection, which carries many clients), until dropped.
pub(crate) struct ConnGuard {
    _count: IpCount,
    _memory: Option<Reservation>,
}

/// Open connections per client IP.
#[derive(Default)]
pub(crate) struct ConnTable {
    counts: Arc<IpCounts>,
}

/// How many over-limit connections of one IP still get an explanatory error
/// (served briefly) before further ones are dropped silently.
const OVER_LIMIT_GRACE: usize = 8;

pub(crate) enum Admission {
    Ok(Arc<ConnGuard>),
    /// Served briefly to explain the refusal, then closed.
    Reject(Arc<ConnGuard>, RelayError),
    Drop,
}

impl ConnTable {
    /// Counts a connection of `ip` and reserves its memory. Over either limit it is still
    /// counted (so an IP cannot flood the explanations) but refused; far over the count
    /// it is dropped.
    pub(crate) fn admit(
        &self,
        ip: IpAddr,
        limit: usize,
        exempt: bool,
        budget: &Arc<MemoryBudget>,
    ) -> Admission {
        let cap = if exempt {
            usize::MAX
        } else {
            limit.saturating_add(OVER_LIMIT_GRACE)
        };
        let Some((count, n)) = self.counts.add(ip, cap) else {
            return Admission::Drop;
        };
        if !exempt && n > limit {
            let guard = ConnGuard {
                _count: count,
                _memory: None,
            };
            return Admission::Reject(Arc::new(guard), RelayError::TooManyConnections(limit));
        }
        let memory = if exempt {
            None
        } else {
            match budget.reserve(ip, CONNECTION_COST) {
                Ok(r) => Some(r),
                Err(over) => {
                    let guard = ConnGuard {
                        _count: count,
                        _memory: None,
                    };
                    return Admission::Reject(Arc::new(guard), over_share(over, budget));
                }
            }
        };
        Admission::Ok(Arc::new(ConnGuard {
            _count: count,
            _memory: memory,
        }))
    }
}

/// The client IP: the socket's, unless the socket is a trusted proxy; then
/// the rightmost X-Forwarded-For entry that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &http::HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut ip = peer;
    for hop in hops.iter().rev() {
        let Ok(parsed) = hop.parse::<IpAddr>() else {
            break;
        };
        ip = parsed.to_canonical();
        if !trusted.contains(&ip) {
            break;
        }
    }
    ip
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn xff_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let lb: IpAddr = "10.0.0.2".parse().unwrap();
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.2".parse().unwrap(),
        );
        let untrusted: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(client_ip(untrusted, &h, &[proxy]), untrusted);
        assert_eq!(
            client_ip(proxy, &h, &[proxy, lb]),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        // Without the LB trusted, the LB is the client.
        assert_eq!(client_ip(proxy, &h, &[proxy]), lb);
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_ip(proxy, &h, &[proxy]), proxy);
        let mapped: IpAddr = "::ffff:9.9.9.9".parse().unwrap();
        assert_eq!(client_ip(mapped, &h, &[]), untrusted);
    }
}
