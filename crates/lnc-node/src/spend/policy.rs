//! Which RPCs a budget session may call, and which of them spend.
//!
//! A budget is only as good as the node's knowledge of every way funds can leave. So for a
//! budget session the rule is an allowlist, not LND's macaroon alone: a call passes only if
//! its service is one the node knows, and a method that moves funds passes only if the node
//! can tell what it costs (it is *metered*). Everything else that moves funds — on-chain
//! sends, channel opens and closes, PSBT funding and signing, HTLC interception, payment
//! deletion (which would hide spends from reconciliation) — is refused whatever the
//! session's macaroon says, and so is every other daemon behind the node (Loop, Pool,
//! Taproot Assets): their spends are not visible to this budget.

/// A payment RPC whose amount the node determines from the request (see [`super::amount`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentRpc {
    /// `routerrpc.Router/SendPaymentV2`: server stream of `lnrpc.Payment`.
    SendPaymentV2,
    /// `lnrpc.Lightning/SendPaymentSync`: one `SendResponse`.
    SendPaymentSync,
    /// `lnrpc.Lightning/SendPayment`: a bidirectional stream of `SendRequest` /
    /// `SendResponse`, each message a payment of its own.
    SendPaymentStream,
    /// `lnrpc.Lightning/SendToRouteSync`: one `SendResponse`.
    SendToRouteSync,
    /// `routerrpc.Router/SendToRouteV2`: one `lnrpc.HTLCAttempt`.
    SendToRouteV2,
}

impl PaymentRpc {
    /// The gRPC path.
    pub fn path(self) -> &'static str {
        match self {
            PaymentRpc::SendPaymentV2 => "/routerrpc.Router/SendPaymentV2",
            PaymentRpc::SendPaymentSync => "/lnrpc.Lightning/SendPaymentSync",
            PaymentRpc::SendPaymentStream => "/lnrpc.Lightning/SendPayment",
            PaymentRpc::SendToRouteSync => "/lnrpc.Lightning/SendToRouteSync",
            PaymentRpc::SendToRouteV2 => "/routerrpc.Router/SendToRouteV2",
        }
    }
}

/// The node's verdict on one call of a budget session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward as is (LND's macaroon check still applies).
    Allowed,
    /// A payment: reserve its cost first.
    Metered(PaymentRpc),
    /// Refused by the node; the text says why.
    Refused(&'static str),
}

/// The node's own read-only service, answered without LND.
pub const BUDGET_SERVICE: &str = "lncnode.Budget";

/// Services a budget session may reach. Methods that move funds inside them are listed in
/// [`REFUSED`] or metered.
const SERVICES: &[&str] = &[
    "lnrpc.Lightning",
    "lnrpc.State",
    "routerrpc.Router",
    "invoicesrpc.Invoices",
    "chainrpc.ChainNotifier",
    "peersrpc.Peers",
    "verrpc.Versioner",
    "walletrpc.WalletKit",
    BUDGET_SERVICE,
];

/// WalletKit is on-chain funds end to end; only these read-only methods pass.
const WALLET_READS: &[&str] = &[
    "ListUnspent",
    "ListLeases",
    "ListAccounts",
    "ListAddresses",
    "ListSweeps",
    "PendingSweeps",
    "EstimateFee",
    "RequiredReserve",
    "GetTransaction",
];

const ON_CHAIN: &str = "budget sessions cannot move on-chain funds; use an admin session for this";
const CHANNELS: &str =
    "budget sessions cannot open, fund or close channels; use an admin session for this";
const UNMETERED: &str = "budget sessions cannot use this payment RPC, whose cost the node cannot meter; use routerrpc.Router/SendPaymentV2";
const HIDES: &str = "budget sessions cannot delete payments or intercept HTLCs (the node's budget accounting depends on them)";

/// Methods of the allowed services that move funds (or would hide spends), refused.
const REFUSED: &[(&str, &str)] = &[
    ("/lnrpc.Lightning/SendCoins", ON_CHAIN),
    ("/lnrpc.Lightning/SendMany", ON_CHAIN),
    ("/lnrpc.Lightning/OpenChannel", CHANNELS),
    ("/lnrpc.Lightning/OpenChannelSync", CHANNELS),
    ("/lnrpc.Lightning/BatchOpenChannel", CHANNELS),
    ("/lnrpc.Lightning/FundingStateStep", CHANNELS),
    ("/lnrpc.Lightning/ChannelAcceptor", CHANNELS),
    ("/lnrpc.Lightning/CloseChannel", CHANNELS),
    ("/lnrpc.Lightning/AbandonChannel", CHANNELS),
    ("/lnrpc.Lightning/RestoreChannelBackups", CHANNELS),
    ("/lnrpc.Lightning/SendToRoute", UNMETERED),
    ("/lnrpc.Lightning/DeletePayment", HIDES),
    ("/lnrpc.Lightning/DeleteAllPayments", HIDES),
    (
        "/lnrpc.Lightning/BakeMacaroon",
        "budget sessions cannot bake macaroons",
    ),
    ("/routerrpc.Router/SendPayment", UNMETERED),
    ("/routerrpc.Router/SendToRoute", UNMETERED),
    ("/routerrpc.Router/HtlcInterceptor", HIDES),
    ("/routerrpc.Router/UpdateChanStatus", CHANNELS),
];

/// The verdict on `path` (`/package.Service/Method`) for a budget session.
pub fn classify(path: &str) -> Verdict {
    for rpc in [
        PaymentRpc::SendPaymentV2,
        PaymentRpc::SendPaymentSync,
        PaymentRpc::SendPaymentStream,
        PaymentRpc::SendToRouteSync,
        PaymentRpc::SendToRouteV2,
    ] {
        if path == rpc.path() {
            return Verdict::Metered(rpc);
        }
    }
    if let Some((_, why)) = REFUSED.iter().find(|(p, _)| *p == path) {
        return Verdict::Refused(why);
    }
    let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return Verdict::Refused("not a gRPC method path");
    };
    if !SERVICES.contains(&service) {
        return Verdict::Refused(
            "budget sessions reach only LND's own services: other daemons' spends (Loop, Pool, Taproot Assets) cannot be metered",
        );
    }
    if service == "walletrpc.WalletKit" && !WALLET_READS.contains(&method) {
        return Verdict::Refused(ON_CHAIN);
    }
    Verdict::Allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payments_are_metered_and_fund_movers_refused() {
        assert_eq!(
            classify("/routerrpc.Router/SendPaymentV2"),
            Verdict::Metered(PaymentRpc::SendPaymentV2)
        );
        assert_eq!(
            classify("/lnrpc.Lightning/SendPayment"),
            Verdict::Metered(PaymentRpc::SendPaymentStream)
        );
        for p in [
            "/lnrpc.Lightning/SendCoins",
            "/lnrpc.Lightning/OpenChannelSync",
            "/lnrpc.Lightning/CloseChannel",
            "/walletrpc.WalletKit/FundPsbt",
            "/walletrpc.WalletKit/SendOutputs",
            "/signrpc.Signer/SignOutputRaw",
            "/looprpc.SwapClient/LoopOut",
            "/routerrpc.Router/HtlcInterceptor",
            "/lnrpc.Lightning/DeleteAllPayments",
            "garbage",
        ] {
            assert!(matches!(classify(p), Verdict::Refused(_)), "{p}");
        }
        for p in [
            "/lnrpc.Lightning/GetInfo",
            "/lnrpc.Lightning/AddInvoice",
            "/routerrpc.Router/TrackPaymentV2",
            "/walletrpc.WalletKit/ListUnspent",
            "/lncnode.Budget/Remaining",
        ] {
            assert_eq!(classify(p), Verdict::Allowed, "{p}");
        }
    }
}
