//! What a payment request commits to — its payment hash, amount and the most it may pay in
//! fees — and what a payment result says it cost. Pure functions over the encoded messages.
//!
//! The amount comes from the BOLT11 invoice when it has one (LND refuses a request amount
//! then), else from the request; a request whose amount or payment hash the node cannot
//! determine is refused rather than guessed. Fee limits follow LND: `routerrpc` requests
//! pay at most `fee_limit_sat`/`fee_limit_msat` (zero means zero-fee routes only), `lnrpc`
//! requests without a `fee_limit` get LND's default (`lnwallet.
//! DefaultRoutingFeeLimitForAmount`: the whole amount up to 1,000 sat, 5 % above), and a
//! route's fees are what the route says.

use std::str::FromStr as _;

use lnd_api::lnrpc;
use lnd_api::routerrpc;
use prost::Message as _;
use sha2::Digest as _;

use super::policy::PaymentRpc;

/// The keysend record: the preimage the sender chose, whose hash is the payment hash.
pub const KEYSEND_RECORD: u64 = 5_482_373_484;

/// What one payment request commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitment {
    /// The payment hash (what LND tracks the payment by).
    pub hash: [u8; 32],
    /// The amount the payee gets, msat.
    pub amount_msat: u64,
    /// The most the payment may pay in routing fees, msat.
    pub fee_limit_msat: u64,
}

impl Commitment {
    /// What the budget must reserve: amount + fee limit.
    pub fn total_msat(&self) -> u64 {
        self.amount_msat.saturating_add(self.fee_limit_msat)
    }

    /// The payment hash in hex (the ledger's and LND's key).
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// A payment request the node cannot meter; the text says what the app can change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a valid protobuf message of the method's request type.
    #[error("the payment request does not decode ({0}); send a valid request")]
    Decode(String),
    /// The BOLT11 invoice does not parse.
    #[error("the invoice does not parse ({0}); check the payment_request")]
    Invoice(String),
    /// Neither the invoice nor the request gives an amount.
    #[error(
        "the payment has no amount: a zero-amount invoice needs amt or amt_msat in the request"
    )]
    NoAmount,
    /// No payment hash: neither an invoice, a payment_hash nor a keysend preimage.
    #[error(
        "budget sessions pay invoices, keysend (dest_custom_records[5482373484]) or a payment_hash; this request has none"
    )]
    NoHash,
    /// A negative or overflowing number.
    #[error("the payment request has a negative or too large {0}")]
    BadNumber(&'static str),
    /// AMP: LND picks the payment's hashes itself, so the node cannot track it.
    #[error(
        "budget sessions cannot send AMP payments (the node could not track them); pay without amp"
    )]
    Amp,
    /// A route-based payment without a route.
    #[error("the request has no route")]
    NoRoute,
}

fn msat(field: &'static str, sat: i64, msat: i64) -> Result<u64, AmountError> {
    let sat = u64::try_from(sat).map_err(|_| AmountError::BadNumber(field))?;
    let msat = u64::try_from(msat).map_err(|_| AmountError::BadNumber(field))?;
    if msat != 0 {
        return Ok(msat);
    }
    sat.checked_mul(1000).ok_or(AmountError::BadNumber(field))
}

fn hash32(b: &[u8]) -> Option<[u8; 32]> {
    b.try_into().ok()
}

/// The invoice's amount (msat, `None` for a zero-amount invoice) and payment hash.
fn invoice(s: &str) -> Result<(Option<u64>, [u8; 32]), AmountError> {
    let inv = lightning_invoice::Bolt11Invoice::from_str(s.trim())
        .map_err(|e| AmountError::Invoice(e.to_string()))?;
    let hash: &[u8] = inv.payment_hash().as_ref();
    let hash = hash32(hash).ok_or_else(|| AmountError::Invoice("bad payment hash".into()))?;
    Ok((inv.amount_milli_satoshis(), hash))
}

/// Amount and hash from the invoice if there is one, else from the request fields.
fn amount_and_hash(
    payment_request: &str,
    request_msat: u64,
    payment_hash: &[u8],
    custom_records: &std::collections::HashMap<u64, Vec<u8>>,
) -> Result<(u64, [u8; 32]), AmountError> {
    if !payment_request.is_empty() {
        let (amount, hash) = invoice(payment_request)?;
        let amount = match amount {
            // LND refuses a request amount beside an invoice amount; the larger is safe.
            Some(a) => a.max(request_msat),
            None => request_msat,
        };
        if amount == 0 {
            return Err(AmountError::NoAmount);
        }
        return Ok((amount, hash));
    }
    if request_msat == 0 {
        return Err(AmountError::NoAmount);
    }
    let hash = hash32(payment_hash)
        .or_else(|| {
            custom_records
                .get(&KEYSEND_RECORD)
                .map(|preimage| sha2::Sha256::digest(preimage).into())
        })
        .ok_or(AmountError::NoHash)?;
    Ok((request_msat, hash))
}

/// What the first (or, for `SendPayment`'s stream, each) request message commits to.
pub fn commitment(rpc: PaymentRpc, msg: &[u8]) -> Result<Commitment, AmountError> {
    let decode = |e: prost::DecodeError| AmountError::Decode(e.to_string());
    match rpc {
        PaymentRpc::SendPaymentV2 => {
            let r = routerrpc::SendPaymentRequest::decode(msg).map_err(decode)?;
            if r.amp {
                return Err(AmountError::Amp);
            }
            let (amount_msat, hash) = amount_and_hash(
                &r.payment_request,
                msat("amt", r.amt, r.amt_msat)?,
                &r.payment_hash,
                &r.dest_custom_records,
            )?;
            Ok(Commitment {
                hash,
                amount_msat,
                fee_limit_msat: msat("fee_limit", r.fee_limit_sat, r.fee_limit_msat)?,
            })
        }
        PaymentRpc::SendPaymentSync | PaymentRpc::SendPaymentStream => {
            let r = lnrpc::SendRequest::decode(msg).map_err(decode)?;
            let hash_field = send_request_hash(&r);
            let (amount_msat, hash) = amount_and_hash(
                &r.payment_request,
                msat("amt", r.amt, r.amt_msat)?,
                &hash_field,
                &r.dest_custom_records,
            )?;
            use lnrpc::fee_limit::Limit;
            let fee_limit_msat = match r.fee_limit.and_then(|f| f.limit) {
                None => lnd_default_fee_limit(amount_msat),
                Some(Limit::Fixed(sat)) => msat("fee_limit", sat, 0)?,
                Some(Limit::FixedMsat(m)) => msat("fee_limit", 0, m)?,
                Some(Limit::Percent(p)) => {
                    let p = u64::try_from(p).map_err(|_| AmountError::BadNumber("fee_limit"))?;
                    amount_msat
                        .checked_mul(p)
                        .ok_or(AmountError::BadNumber("fee_limit"))?
                        / 100
                }
            };
            Ok(Commitment {
                hash,
                amount_msat,
                fee_limit_msat,
            })
        }
        PaymentRpc::SendToRouteSync => {
            let r = lnrpc::SendToRouteRequest::decode(msg).map_err(decode)?;
            route(&send_to_route_hash(&r), r.route.as_ref())
        }
        PaymentRpc::SendToRouteV2 => {
            let r = routerrpc::SendToRouteRequest::decode(msg).map_err(decode)?;
            route(&r.payment_hash, r.route.as_ref())
        }
    }
}

/// LND's fee limit for an `lnrpc` payment that sets none (LND v0.20
/// `lnwallet.DefaultRoutingFeeLimitForAmount`).
pub fn lnd_default_fee_limit(amount_msat: u64) -> u64 {
    if amount_msat <= 1_000_000 {
        amount_msat
    } else {
        amount_msat / 100 * 5 + amount_msat % 100 * 5 / 100
    }
}

fn route(hash: &[u8], route: Option<&lnrpc::Route>) -> Result<Commitment, AmountError> {
    let route = route.ok_or(AmountError::NoRoute)?;
    let total = msat("route amount", 0, route.total_amt_msat)?;
    let fees = msat("route fees", 0, route.total_fees_msat)?;
    if total == 0 {
        return Err(AmountError::NoAmount);
    }
    Ok(Commitment {
        hash: hash32(hash).ok_or(AmountError::NoHash)?,
        amount_msat: total.saturating_sub(fees),
        fee_limit_msat: fees.min(total),
    })
}

/// What a response message says about a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still in flight; wait for the next message.
    Pending,
    /// Paid: amount + fee, msat.
    Succeeded {
        /// The amount the payee got.
        amount_msat: u64,
        /// The fee paid.
        fee_msat: u64,
    },
    /// Failed for good: nothing was paid.
    Failed,
}

/// The outcome one response message of `rpc` reports, with the payment hash it is about
/// when the message names one (`SendPayment`'s stream answers each request in turn).
pub fn outcome(rpc: PaymentRpc, msg: &[u8]) -> Result<(Outcome, Option<[u8; 32]>), AmountError> {
    let decode = |e: prost::DecodeError| AmountError::Decode(e.to_string());
    let route_cost = |r: Option<&lnrpc::Route>| {
        let r = r?;
        let total = msat("", 0, r.total_amt_msat).ok()?;
        let fee = msat("", 0, r.total_fees_msat).ok()?;
        Some(Outcome::Succeeded {
            amount_msat: total.saturating_sub(fee),
            fee_msat: fee.min(total),
        })
    };
    match rpc {
        PaymentRpc::SendPaymentV2 => {
            let p = lnrpc::Payment::decode(msg).map_err(decode)?;
            Ok((payment_outcome(&p), None))
        }
        PaymentRpc::SendPaymentSync
        | PaymentRpc::SendPaymentStream
        | PaymentRpc::SendToRouteSync => {
            let r = lnrpc::SendResponse::decode(msg).map_err(decode)?;
            let hash = hash32(&r.payment_hash);
            if !r.payment_error.is_empty() {
                return Ok((Outcome::Failed, hash));
            }
            // Success without a route to read the cost from: unknown, keep the reservation.
            Ok((
                route_cost(r.payment_route.as_ref()).unwrap_or(Outcome::Pending),
                hash,
            ))
        }
        PaymentRpc::SendToRouteV2 => {
            let a = lnrpc::HtlcAttempt::decode(msg).map_err(decode)?;
            use lnrpc::htlc_attempt::HtlcStatus;
            let o = match HtlcStatus::try_from(a.status) {
                Ok(HtlcStatus::Succeeded) => {
                    route_cost(a.route.as_ref()).unwrap_or(Outcome::Pending)
                }
                Ok(HtlcStatus::Failed) => Outcome::Failed,
                _ => Outcome::Pending,
            };
            Ok((o, None))
        }
    }
}

/// The outcome an `lnrpc.Payment` (SendPaymentV2, TrackPaymentV2) reports.
pub fn payment_outcome(p: &lnrpc::Payment) -> Outcome {
    use lnrpc::payment::PaymentStatus;
    match PaymentStatus::try_from(p.status) {
        Ok(PaymentStatus::Succeeded) => Outcome::Succeeded {
            amount_msat: u64::try_from(p.value_msat).unwrap_or(0),
            fee_msat: u64::try_from(p.fee_msat).unwrap_or(0),
        },
        Ok(PaymentStatus::Failed) => Outcome::Failed,
        _ => Outcome::Pending,
    }
}

/// The payment hash of an `lnrpc` request: LND v0.20 still honours the deprecated hex field
/// when the bytes are absent, so the budget reads it too (an undecodable one is refused as
/// no hash at all, as LND refuses it).
#[allow(deprecated)]
fn send_request_hash(r: &lnrpc::SendRequest) -> Vec<u8> {
    bytes_or_hex(&r.payment_hash, &r.payment_hash_string)
}

/// As [`send_request_hash`], for `SendToRouteSync`.
#[allow(deprecated)]
fn send_to_route_hash(r: &lnrpc::SendToRouteRequest) -> Vec<u8> {
    bytes_or_hex(&r.payment_hash, &r.payment_hash_string)
}

fn bytes_or_hex(bytes: &[u8], hex_str: &str) -> Vec<u8> {
    if bytes.is_empty() {
        hex::decode(hex_str).unwrap_or_default()
    } else {
        bytes.to_vec()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// A signed regtest invoice for `amount_msat` (none: a zero-amount invoice) and the
    /// payment hash `[0, 1, 2, …, 31]`.
    fn invoice(amount_msat: Option<u64>) -> String {
        use bitcoin::hashes::Hash as _;
        use bitcoin::secp256k1::{Secp256k1, SecretKey};
        let hash: [u8; 32] = std::array::from_fn(|i| i as u8);
        let b = lightning_invoice::InvoiceBuilder::new(lightning_invoice::Currency::Regtest)
            .description("coffee".into())
            .payment_hash(bitcoin::hashes::sha256::Hash::from_byte_array(hash))
            .payment_secret(lightning_invoice::PaymentSecret([42; 32]))
            .duration_since_epoch(std::time::Duration::from_secs(1_796_371_200))
            .min_final_cltv_expiry_delta(144);
        let b = match amount_msat {
            Some(a) => b.amount_milli_satoshis(a),
            None => b,
        };
        let key = SecretKey::from_slice(&[0x11; 32]).unwrap();
        b.build_signed(|h| Secp256k1::new().sign_ecdsa_recoverable(h, &key))
            .unwrap()
            .to_string()
    }

    fn v2(f: impl FnOnce(&mut routerrpc::SendPaymentRequest)) -> Vec<u8> {
        let mut r = routerrpc::SendPaymentRequest::default();
        f(&mut r);
        r.encode_to_vec()
    }

    #[test]
    fn invoice_amount_and_fee_limit() {
        let c = commitment(
            PaymentRpc::SendPaymentV2,
            &v2(|r| {
                r.payment_request = invoice(Some(250_000_000));
                r.fee_limit_sat = 10;
            }),
        )
        .unwrap();
        assert_eq!(c.amount_msat, 250_000_000);
        assert_eq!(c.fee_limit_msat, 10_000);
        assert_eq!(c.total_msat(), 250_010_000);
        assert_eq!(&c.hash[..4], &[0, 1, 2, 3]);
    }

    #[test]
    fn zero_amount_invoice_takes_the_request_amount() {
        let c = commitment(
            PaymentRpc::SendPaymentV2,
            &v2(|r| {
                r.payment_request = invoice(None);
                r.amt = 1234;
            }),
        )
        .unwrap();
        assert_eq!(c.amount_msat, 1_234_000);
        assert_eq!(
            commitment(
                PaymentRpc::SendPaymentV2,
                &v2(|r| r.payment_request = invoice(None))
            ),
            Err(AmountError::NoAmount)
        );
    }

    #[test]
    fn keysend_hash_is_the_preimages() {
        let c = commitment(
            PaymentRpc::SendPaymentV2,
            &v2(|r| {
                r.dest = vec![2; 33];
                r.amt_msat = 5000;
                r.dest_custom_records.insert(KEYSEND_RECORD, vec![9; 32]);
            }),
        )
        .unwrap();
        assert_eq!(c.hash, <[u8; 32]>::from(sha2::Sha256::digest([9u8; 32])));
        assert_eq!(
            commitment(PaymentRpc::SendPaymentV2, &v2(|r| r.amt = 5)),
            Err(AmountError::NoHash)
        );
        assert_eq!(
            commitment(PaymentRpc::SendPaymentV2, &v2(|r| r.amp = true)),
            Err(AmountError::Amp)
        );
        assert_eq!(
            commitment(
                PaymentRpc::SendPaymentV2,
                &v2(|r| {
                    r.amt = -1;
                })
            ),
            Err(AmountError::BadNumber("amt"))
        );
    }

    #[test]
    fn lnrpc_default_fee_limit_is_lnds() {
        let mut r = lnrpc::SendRequest {
            payment_request: invoice(Some(250_000_000)),
            ..Default::default()
        };
        let c = commitment(PaymentRpc::SendPaymentSync, &r.encode_to_vec()).unwrap();
        assert_eq!(c.fee_limit_msat, 12_500_000, "5 % above 1,000 sat");
        assert_eq!(
            lnd_default_fee_limit(999_000),
            999_000,
            "100 % up to 1,000 sat"
        );
        assert_eq!(lnd_default_fee_limit(1_000_001), 50_000);
        r.fee_limit = Some(lnrpc::FeeLimit {
            limit: Some(lnrpc::fee_limit::Limit::Percent(2)),
        });
        let c = commitment(PaymentRpc::SendPaymentSync, &r.encode_to_vec()).unwrap();
        assert_eq!(c.fee_limit_msat, 5_000_000);
    }

    #[test]
    fn routes_commit_their_total() {
        let r = routerrpc::SendToRouteRequest {
            payment_hash: vec![1; 32],
            route: Some(lnrpc::Route {
                total_amt_msat: 10_500,
                total_fees_msat: 500,
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = commitment(PaymentRpc::SendToRouteV2, &r.encode_to_vec()).unwrap();
        assert_eq!((c.amount_msat, c.fee_limit_msat), (10_000, 500));
    }

    #[test]
    fn outcomes() {
        let p = lnrpc::Payment {
            status: lnrpc::payment::PaymentStatus::Succeeded as i32,
            value_msat: 1000,
            fee_msat: 3,
            ..Default::default()
        };
        assert_eq!(
            outcome(PaymentRpc::SendPaymentV2, &p.encode_to_vec())
                .unwrap()
                .0,
            Outcome::Succeeded {
                amount_msat: 1000,
                fee_msat: 3
            }
        );
        let failed = lnrpc::SendResponse {
            payment_error: "no route".into(),
            payment_hash: vec![4; 32],
            ..Default::default()
        };
        assert_eq!(
            outcome(PaymentRpc::SendPaymentSync, &failed.encode_to_vec()).unwrap(),
            (Outcome::Failed, Some([4; 32]))
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), which in 0usize..5) {
            let rpc = [PaymentRpc::SendPaymentV2, PaymentRpc::SendPaymentSync, PaymentRpc::SendPaymentStream, PaymentRpc::SendToRouteSync, PaymentRpc::SendToRouteV2][which];
            let _ = commitment(rpc, &bytes);
            let _ = outcome(rpc, &bytes);
        }
    }
}
