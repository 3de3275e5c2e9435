//! LND v0.20's synchronous payment messages (`lnrpc.SendRequest`, `SendResponse`,
//! `SendToRouteRequest`), which `lnd-api`'s descriptors lack: they follow LND master, where
//! `SendPaymentSync`, `SendPayment` and `SendToRouteSync` are gone, while the LND we serve
//! (v0.20.2) still answers them. Only the fields the budget reads are declared; the field
//! numbers are LND v0.20.2's `lightning.proto`. Unknown fields are skipped by prost, so the
//! preimage in a `SendResponse` is never even decoded.

use std::collections::HashMap;

use lnd_api::lnrpc::{FeeLimit, Route};

/// `lnrpc.SendRequest` (the fields that decide what a payment costs).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendRequest {
    /// The payee (keysend or spontaneous payments).
    #[prost(bytes = "vec", tag = "1")]
    pub dest: Vec<u8>,
    /// Amount, sat.
    #[prost(int64, tag = "3")]
    pub amt: i64,
    /// Payment hash.
    #[prost(bytes = "vec", tag = "4")]
    pub payment_hash: Vec<u8>,
    /// Payment hash in hex (deprecated in LND, still honoured).
    #[prost(string, tag = "5")]
    pub payment_hash_string: String,
    /// BOLT11 invoice.
    #[prost(string, tag = "6")]
    pub payment_request: String,
    /// Fee limit (fixed, fixed msat or percent); LND's default when absent.
    #[prost(message, optional, tag = "8")]
    pub fee_limit: Option<FeeLimit>,
    /// Custom records (keysend's preimage under 5482373484).
    #[prost(map = "uint64, bytes", tag = "11")]
    pub dest_custom_records: HashMap<u64, Vec<u8>>,
    /// Amount, msat.
    #[prost(int64, tag = "12")]
    pub amt_msat: i64,
}

/// `lnrpc.SendResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendResponse {
    /// Non-empty if the payment failed.
    #[prost(string, tag = "1")]
    pub payment_error: String,
    /// The route taken (amount and fees).
    #[prost(message, optional, tag = "3")]
    pub payment_route: Option<Route>,
    /// The payment hash.
    #[prost(bytes = "vec", tag = "4")]
    pub payment_hash: Vec<u8>,
}

/// `lnrpc.SendToRouteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendToRouteRequest {
    /// Payment hash.
    #[prost(bytes = "vec", tag = "1")]
    pub payment_hash: Vec<u8>,
    /// Payment hash in hex (deprecated in LND, still honoured).
    #[prost(string, tag = "2")]
    pub payment_hash_string: String,
    /// The route.
    #[prost(message, optional, tag = "4")]
    pub route: Option<Route>,
}
