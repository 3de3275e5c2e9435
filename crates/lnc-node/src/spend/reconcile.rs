//! Learning a payment's outcome from LND when the node did not see it: at start for every
//! payment still reserved (the node stopped while it was in flight), and whenever a
//! metered call ends without a final status (the app closed the stream early).
//!
//! `TrackPaymentV2` answers with the payment's current state and then each change; the
//! first final one decides. A payment LND never started (`NOT_FOUND`) cost nothing.

use lnd_api::routerrpc;
use lnd_api::routerrpc::router_client::RouterClient;

use super::amount::{Outcome, payment_outcome};
use crate::lnd::Lnd;

/// Why LND could not say.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The stored hash is not 32 bytes of hex.
    #[error("the reserved payment hash {0:?} is not valid")]
    BadHash(String),
    /// LND refused or is unreachable.
    #[error("LND's TrackPaymentV2 failed: {0}")]
    Lnd(#[from] tonic::Status),
    /// The stream ended before a final state.
    #[error("LND's TrackPaymentV2 ended before the payment did")]
    Ended,
}

/// Waits for the final outcome of the payment to `hash` (hex).
pub async fn track(lnd: &Lnd, hash: &str) -> Result<Outcome, ReconcileError> {
    let payment_hash = hex::decode(hash)
        .ok()
        .filter(|h| h.len() == 32)
        .ok_or_else(|| ReconcileError::BadHash(hash.to_owned()))?;
    let req = routerrpc::TrackPaymentRequest {
        payment_hash,
        no_inflight_updates: true,
    };
    let mut stream = match RouterClient::new(lnd.channel())
        .track_payment_v2(lnd.request(req))
        .await
    {
        Ok(s) => s.into_inner(),
        Err(s) if s.code() == tonic::Code::NotFound => return Ok(Outcome::Failed),
        Err(s) => return Err(s.into()),
    };
    loop {
        match stream.message().await {
            Ok(Some(p)) => match payment_outcome(&p) {
                Outcome::Pending => continue,
                done => return Ok(done),
            },
            Ok(None) => return Err(ReconcileError::Ended),
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(Outcome::Failed),
            Err(s) => return Err(s.into()),
        }
    }
}
