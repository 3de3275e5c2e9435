//! The audit log's writer: calls are recorded off the call path, in batches, so a busy
//! session costs one store transaction per batch rather than one per call.
//!
//! The channel is bounded (a stalled disk must not grow the node's memory); an entry that
//! does not fit is counted, and the count is written as an entry of its own once there is
//! room, so a gap in the log is visible rather than silent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::store::AuditEntry;
use crate::session::SessionId;
use crate::store::SessionStore;

/// Entries waiting for the writer.
const QUEUE: usize = 8192;
/// Entries per store transaction, at most.
const BATCH: usize = 512;

/// Where calls are recorded. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditSink {
    tx: mpsc::Sender<(SessionId, AuditEntry)>,
    dropped: Arc<AtomicU64>,
}

impl AuditSink {
    /// Starts the writer for `store`, keeping `keep` entries per session.
    pub(crate) fn start(store: Arc<SessionStore>, keep: u64) -> AuditSink {
        let (tx, mut rx) = mpsc::channel::<(SessionId, AuditEntry)>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let sink = AuditSink {
            tx,
            dropped: dropped.clone(),
        };
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let lost = dropped.swap(0, Ordering::AcqRel);
                if lost > 0 {
                    batch.push((
                        batch[0].0,
                        AuditEntry {
                            at: batch[0].1.at,
                            method: String::new(),
                            status: "GAP".into(),
                            amount_msat: None,
                            fee_msat: None,
                            payment_hash: None,
                            detail: Some(format!(
                                "{lost} entries (of any session) were not recorded: the store was too slow"
                            )),
                        },
                    ));
                }
                let store = store.clone();
                let entries = std::mem::take(&mut batch);
                let written =
                    tokio::task::spawn_blocking(move || store.append_audit(&entries, keep)).await;
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not write the audit log"),
                    Err(e) => tracing::warn!(error = %e, "the audit log writer failed"),
                }
                batch = Vec::with_capacity(BATCH);
            }
        });
        sink
    }

    /// Records `entry` for session `id` (without waiting).
    pub fn send(&self, id: SessionId, mut entry: AuditEntry) {
        // The path comes from the app: bounded, as everything a peer can fill.
        if entry.method.len() > 200 {
            let mut end = 200;
            while !entry.method.is_char_boundary(end) {
                end -= 1;
            }
            entry.method.truncate(end);
        }
        if self.tx.try_send((id, entry)).is_err() {
            self.dropped.fetch_add(1, Ordering::AcqRel);
        }
    }
}
