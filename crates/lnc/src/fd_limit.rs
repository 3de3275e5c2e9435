//! The daemons' file-descriptor limit. Every relay connection and every session's relay
//! stream costs a descriptor, and the usual soft limit (1,024) is far below what the hard
//! limit allows: a relay would refuse clients ("Too many open files") with the machine
//! idle. The daemons raise their soft limit to the hard one at start, as Go's runtime
//! does for Go servers (aperture, litd) since Go 1.19.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; logs what it got, and a warning if
/// it could not (the daemon still runs, with the limit it has).
pub fn raise() {
    let before = rlimit::Resource::NOFILE.get().ok();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => tracing::debug!(before = ?before.map(|(soft, _)| soft), now, "open file limit"),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open file limit; clients may be refused under load (raise it with ulimit -n)")
        }
    }
}
