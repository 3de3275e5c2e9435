//! The permissions of the methods lnd-sim serves, copied as plain data from LND's
//! `MainRPCServerPermissions` and the router sub-server (v0.19; checked against
//! `vectors/go/lnd_permissions.json` by a test), plus LND's entity and action lists.

use lnc_core::macaroon::PermissionTable;

/// Every method lnd-sim serves and the ops LND requires for it (all of them are needed).
pub const SERVED_PERMISSIONS: &[(&str, &[(&str, &str)])] = &[
    ("/lnrpc.Lightning/GetInfo", &[("info", "read")]),
    ("/lnrpc.Lightning/WalletBalance", &[("onchain", "read")]),
    ("/lnrpc.Lightning/ChannelBalance", &[("offchain", "read")]),
    ("/lnrpc.Lightning/ListChannels", &[("offchain", "read")]),
    ("/lnrpc.Lightning/AddInvoice", &[("invoices", "write")]),
    ("/lnrpc.Lightning/LookupInvoice", &[("invoices", "read")]),
    (
        "/lnrpc.Lightning/SubscribeInvoices",
        &[("invoices", "read")],
    ),
    ("/lnrpc.Lightning/BakeMacaroon", &[("macaroon", "generate")]),
    (
        "/lnrpc.Lightning/DeleteMacaroonID",
        &[("macaroon", "write")],
    ),
    ("/lnrpc.Lightning/ListPermissions", &[("info", "read")]),
    (
        "/lnrpc.Lightning/CheckMacaroonPermissions",
        &[("macaroon", "read")],
    ),
    ("/lnrpc.Lightning/SendPaymentSync", &[("offchain", "write")]),
    ("/routerrpc.Router/SendPaymentV2", &[("offchain", "write")]),
];

/// The entities LND's `BakeMacaroon` accepts without `allow_external_permissions`
/// (every entity of its permission table).
pub const VALID_ENTITIES: &[&str] = &[
    "onchain", "offchain", "address", "message", "peers", "info", "invoices", "signer", "macaroon",
];

/// The actions LND's `BakeMacaroon` accepts for those entities.
pub const VALID_ACTIONS: &[&str] = &["read", "write", "generate"];

/// The served methods as a [`PermissionTable`].
pub fn table() -> PermissionTable {
    PermissionTable::from_pairs(
        SERVED_PERMISSIONS
            .iter()
            .map(|(m, ops)| (*m, ops.iter().copied())),
    )
}
