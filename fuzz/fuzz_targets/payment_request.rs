#![no_main]
//! What a budget session's app sends and what LND answers, as the node reads them before
//! and after forwarding a payment (`lnc_node::spend`): any bytes, cut anywhere, as gRPC
//! frames and as each payment RPC's request and result. An app controls the request and a
//! misbehaving LND the result; neither may panic the node, a request's commitment never
//! overflows (amount + fee limit is what the ledger reserves), and the frame decoder holds no
//! more than one bounded message whatever the cuts.
use libfuzzer_sys::fuzz_target;
use lnc_node::spend::amount::{commitment, outcome};
use lnc_node::spend::frames::{Decoded, FrameDecoder};
use lnc_node::spend::policy::PaymentRpc;

const RPCS: [PaymentRpc; 5] = [
    PaymentRpc::SendPaymentV2,
    PaymentRpc::SendPaymentSync,
    PaymentRpc::SendPaymentStream,
    PaymentRpc::SendToRouteSync,
    PaymentRpc::SendToRouteV2,
];

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let rpc = RPCS[usize::from(head) % RPCS.len()];
    if let Ok(c) = commitment(rpc, rest) {
        assert!(c.total_msat() >= c.amount_msat);
        assert!(c.amount_msat > 0, "a payment without an amount was accepted");
    }
    let _ = outcome(rpc, rest);
    // Frames: cut at every `head`-th byte; the decoder stays bounded.
    let limit = 64;
    let mut d = FrameDecoder::new(limit);
    for chunk in rest.chunks(usize::from(head % 17) + 1) {
        for m in d.push(chunk) {
            if let Decoded::Message(m) = m {
                assert!(m.len() <= limit);
                let _ = commitment(rpc, &m);
            }
        }
        assert!(d.buffered() <= 5 + limit);
    }
});
