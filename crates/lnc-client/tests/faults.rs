//! GBN over a faulty mailbox: a wrapper `Mailbox` whose send side drops, duplicates and
//! reorders packets (both directions, from the first SYN on). Pairing, 100 unary calls
//! and a stream still deliver everything.
#![allow(clippy::unwrap_used, missing_docs)]

use core::pin::Pin;
use core::task::{Context, Poll};
use futures_util::Sink;
use lnc_client::{ConnectOptions, MailboxInfo, TlsMode, Transport};
use lnc_core::pairing::StreamId;
use lnc_testkit::T;
use lnc_testkit::node::*;
use lnc_testkit::relay::Relay;
use lnc_tunnel::mailbox::{PacketSink, PacketStream};
use lnc_tunnel::rt::{BoxFuture, TokioRuntime};
use lnc_tunnel::{Mailbox, MailboxError, TunnelOptions};
use lnd_api::lnrpc;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

struct Faulty {
    inner: Arc<dyn Mailbox>,
    rng: Arc<Mutex<ChaCha20Rng>>,
    counts: Arc<Counts>,
}

struct FaultySink {
    inner: PacketSink,
    rng: Arc<Mutex<ChaCha20Rng>>,
    counts: Arc<Counts>,
    held: Option<Vec<u8>>,
    queue: VecDeque<Vec<u8>>,
}

impl FaultySink {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), MailboxError>> {
        while !self.queue.is_empty() {
            match self.inner.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let p = self.queue.pop_front().unwrap_or_default();
                    self.inner.as_mut().start_send(p)?;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Sink<Vec<u8>> for FaultySink {
    type Error = MailboxError;
    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), MailboxError>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => self.inner.as_mut().poll_ready(cx),
            other => other,
        }
    }
    fn start_send(mut self: Pin<&mut Self>, item: Vec<u8>) -> Result<(), MailboxError> {
        let roll = self.rng.lock().unwrap().next_u32() % 100;
        self.counts.sent.fetch_add(1, Ordering::Relaxed);
        let held = self.held.take();
        match roll {
            0..10 => {
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
            10..20 => {
                self.counts.duplicated.fetch_add(1, Ordering::Relaxed);
                self.queue.push_back(item.clone());
                self.queue.push_back(item);
            }
            20..30 if held.is_none() => {
                self.counts.reordered.fetch_add(1, Ordering::Relaxed);
                self.held = Some(item);
                return Ok(());
            }
            _ => self.queue.push_back(item),
        }
        if let Some(h) = held {
            self.queue.push_back(h);
        }
        Ok(())
    }
    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), MailboxError>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => self.inner.as_mut().poll_flush(cx),
            other => other,
        }
    }
    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), MailboxError>> {
        self.inner.as_mut().poll_close(cx)
    }
}

impl Mailbox for Faulty {
    fn open_recv(&self, id: StreamId) -> BoxFuture<Result<PacketStream, MailboxError>> {
        self.inner.open_recv(id)
    }
    fn open_send(&self, id: StreamId) -> BoxFuture<Result<PacketSink, MailboxError>> {
        let f = self.inner.open_send(id);
        let (rng, counts) = (self.rng.clone(), self.counts.clone());
        Box::pin(async move {
            let inner = f.await?;
            Ok(Box::pin(FaultySink {
                inner,
                rng,
                counts,
                held: None,
                queue: VecDeque::new(),
            }) as PacketSink)
        })
    }
    fn create(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        self.inner.create(id)
    }
    fn delete(&self, id: StreamId) -> BoxFuture<Result<(), MailboxError>> {
        self.inner.delete(id)
    }
}

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
    let counts = Arc::new(Counts::default());
    let faulty = |seed: u64| -> Arc<dyn Mailbox> {
        Arc::new(Faulty {
            inner: grpc_mailbox(&relay),
            rng: Arc::new(Mutex::new(ChaCha20Rng::seed_from_u64(seed))),
            counts: counts.clone(),
        })
    };
    let mut node = node(faulty(100), &s, lossy_options());
    next_listening(&mut node).await;
    let info = MailboxInfo::new(relay.addr().to_string(), Transport::Grpc, TlsMode::Insecure);
    let (client, _) = tokio::time::timeout(
        T,
        lnc_client::pair(
            &TokioRuntime::new(),
            faulty(200),
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
    let (d, u, r) = (
        counts.dropped.load(Ordering::Relaxed),
        counts.duplicated.load(Ordering::Relaxed),
        counts.reordered.load(Ordering::Relaxed),
    );
    println!(
        "faults over {} packets: {d} dropped, {u} duplicated, {r} reordered",
        counts.sent.load(Ordering::Relaxed)
    );
    assert!(d > 20 && u > 20 && r > 20, "faults were injected");
    client.close();
}
