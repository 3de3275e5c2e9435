//! GBN over a faulty mailbox (`lnc_testkit::faults`: the send side drops, duplicates and
//! reorders packets, both directions, from the first SYN on), with short timers and no
//! FIFO assumption. Pairing, 100 unary calls and a stream still deliver everything.
#![allow(clippy::unwrap_used, missing_docs)]

use lnc_client::{ConnectOptions, MailboxInfo, TlsMode, Transport};
use lnc_testkit::T;
use lnc_testkit::faults::{FaultStats, Faults, FaultyMailbox};
use lnc_testkit::node::*;
use lnc_testkit::relay::Relay;
use lnc_tunnel::TunnelOptions;
use lnc_tunnel::rt::TokioRuntime;
use lnd_api::lnrpc;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Short timers so resends come quickly; at most half the window in flight, as the GBN
/// docs require on a network that reorders.
fn lossy_options() -> TunnelOptions {
    let mut gbn = lnc_core::gbn::Config::client();
    gbn.handshake_timeout = Duration::from_millis(100);
    gbn.initial_resend_timeout = Duration::from_millis(60);
    gbn.min_resend_timeout = Duration::from_millis(60);
    gbn.max_in_flight = Some(10);
    gbn.fifo_transport = false;
    TunnelOptions {
        gbn: Some(gbn),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbn_over_lossy_reordering_duplicating_mailbox_delivers_every_call() {
    let relay = Relay::insecure().await;
    let s = session(21, FAR_FUTURE);
    let faulty = |seed: u64| {
        Arc::new(FaultyMailbox::new(
            grpc_mailbox(&relay),
            Faults::each(0.10, seed),
        ))
    };
    let (node_mb, app_mb) = (faulty(100), faulty(200));
    let mut node = node(node_mb.clone(), &s, lossy_options());
    next_listening(&mut node).await;
    let info = MailboxInfo::new(relay.addr().to_string(), Transport::Grpc, TlsMode::Insecure);
    let (client, _) = tokio::time::timeout(
        T,
        lnc_client::pair(
            &TokioRuntime::new(),
            app_mb.clone(),
            info,
            &s.phrase,
            ConnectOptions {
                tunnel: lossy_options(),
                ..Default::default()
            },
            ChaCha20Rng::seed_from_u64(3),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    for i in 0..100i64 {
        let r = tokio::time::timeout(
            T,
            client.lightning().add_invoice(lnrpc::Invoice {
                memo: format!("lossy-{i}"),
                value: i,
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .unwrap()
        .into_inner();
        assert_eq!(r.payment_request, format!("lossy-{i}"));
    }
    let calls = (0..20i64).map(|i| {
        let c = client.clone();
        async move {
            let j = c
                .call(
                    "lnrpc.Lightning.AddInvoice",
                    &format!(r#"{{"memo":"c{i}","value":"{i}"}}"#),
                )
                .await
                .unwrap();
            assert!(j.contains(&format!("\"c{i}\"")));
        }
    });
    tokio::time::timeout(T, futures_util::future::join_all(calls))
        .await
        .unwrap();
    let mut st = client
        .lightning()
        .subscribe_invoices(lnrpc::InvoiceSubscription {
            add_index: 200,
            settle_index: 300,
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(inv) = tokio::time::timeout(T, st.message())
        .await
        .unwrap()
        .unwrap()
    {
        assert_eq!(inv.add_index, n);
        assert_eq!(inv.memo.len(), 300);
        n += 1;
    }
    assert_eq!(n, 200);
    let both = |f: fn(&FaultStats) -> u64| f(&node_mb.stats) + f(&app_mb.stats);
    let (d, u, r) = (
        both(|s| s.lost.load(Ordering::Relaxed)),
        both(|s| s.duplicated.load(Ordering::Relaxed)),
        both(|s| s.reordered.load(Ordering::Relaxed)),
    );
    println!(
        "faults over {} packets: {d} dropped, {u} duplicated, {r} reordered",
        both(|s| s.written.load(Ordering::Relaxed))
    );
    assert!(d > 20 && u > 20 && r > 20, "faults were injected");
    client.close();
}
