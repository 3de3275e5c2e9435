//! The relay's memory promise against a real `lnc mailbox` process (#18, "abuse tests in
//! CI"): one IP attacks it every way the issue names at once — mailboxes written and never
//! read, half-open calls (headers, then no message), slowloris connections (an HTTP/1.1
//! request whose headers never end), a burst of mailbox creations — while another IP keeps
//! using it. The victim's messages still flow, the attacker is told why it was refused,
//! and the relay's resident memory grows by no more than what its budget allows that IP.
//!
//! Nothing sleeps: the test waits on the relay's refusals and on messages.

#![allow(clippy::unwrap_used, missing_docs)]

use std::net::IpAddr;
use std::time::Duration;

use lnc_testkit::dirs::temp_dir;
use lnc_testkit::hashmail::{RelayClient, auth_req, cbox, create, desc, sid, writer};
use lnc_testkit::process::{Proc, rss_kib, wait_line, word_after};
use lnc_tunnel::TlsMode;
use tokio::io::AsyncWriteExt as _;
use tokio::time::timeout;

const LNC: &str = env!("CARGO_BIN_EXE_lnc");
/// Generous for a loaded 2-core CI machine.
const T: Duration = Duration::from_secs(60);
/// The attacker's share of the relay's memory budget.
const SHARE: u64 = 8 << 20;
/// What the relay may grow by besides the attacker's share: the victim, the allocator's
/// slack and the refused connections' buffers before they close. Without the budget the
/// flood alone queues 205 MB.
const ALLOWANCE: u64 = 40 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ip_attacking_every_way_stays_within_its_share() {
    let dir = temp_dir("relay-abuse");
    let data = dir.join("mailbox");
    let share = SHARE.to_string();
    let mut relay = Proc::spawn(
        "mailbox",
        LNC,
        &[
            "mailbox",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--data-dir",
            data.to_str().unwrap(),
            "--queue-budget-per-ip-bytes",
            &share,
        ],
    );
    let mut lines = relay.lines_from_start();
    let l = wait_line(&mut lines, |l| l.contains("mailbox listening")).await;
    let addr = word_after(&l, "addr=").to_owned();
    let pid = relay.id().unwrap();
    let relay_client = RelayClient::new(&addr, TlsMode::Insecure);

    // The victim's mailbox works before the attack (and warms the relay up, so the
    // baseline includes what any client costs).
    let mut victim = relay_client.grpc().await;
    let id = sid(120);
    create(&mut victim, &id).await;
    let mut inbox = victim.recv_stream(desc(&id)).await.unwrap().into_inner();
    let (to_victim, _victim_writer) = writer(&victim);
    let mut check = async |n: u8| {
        timeout(T, to_victim.send(cbox(&id, &[n; 1000])))
            .await
            .unwrap()
            .unwrap();
        let m = timeout(T, inbox.message()).await.unwrap().unwrap().unwrap();
        assert_eq!(m.msg[0], n, "the victim's message");
    };
    check(1).await;
    let rss_before = rss_kib(pid).unwrap() * 1024;

    let attacker_ip: IpAddr = "127.0.0.2".parse().unwrap();
    let attacker = relay_client.clone().from_ip(attacker_ip);
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(attacker.grpc().await);
    }

    // Slowloris: requests whose headers never end.
    let mut slow = Vec::new();
    for _ in 0..32 {
        let mut io = attacker.connect(&[]).await;
        io.write_all(
            b"POST /v1/lightning-node-connect/hashmail HTTP/1.1\r\nHost: relay\r\nX-Slow: ",
        )
        .await
        .unwrap();
        slow.push(io);
    }

    // A burst of mailboxes, each written 16 × 100 KB that no one reads (205 MB in all).
    let mut flood = Vec::new();
    for i in 0..128usize {
        let mut c = conns[i % conns.len()].clone();
        let id = sid(121);
        create(&mut c, &id).await;
        let (tx, task) = writer(&c);
        let feed = tokio::spawn(async move {
            for _ in 0..16 {
                if tx.send(cbox(&id, &[7; 100_000])).await.is_err() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        });
        flood.push((feed, task));
    }
    // Half-open calls: writers that never send a message.
    let mut half_open = Vec::new();
    for i in 0..256usize {
        half_open.push(writer(&conns[i % conns.len()]));
    }

    // The relay tells the attacker why it stops taking its writes.
    let (ended, _, _) = timeout(
        T,
        futures_util::future::select_all(flood.iter_mut().map(|(_, task)| task)),
    )
    .await
    .expect("the relay ends the attacker's writers past its share");
    let refused = ended.unwrap().unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused}");
    assert!(
        refused.message().contains("memory limit reached"),
        "{refused}"
    );
    // New calls from the attacker are refused the same way once its share is held.
    let mut probe = conns[0].clone();
    let e = timeout(T, async {
        loop {
            match probe.del_cipher_box(auth_req(&sid(122))).await {
                Err(e) if e.code() == tonic::Code::ResourceExhausted => return e,
                Err(e) if e.message() == "stream not found" => {
                    // Still room: hold another call open and ask again.
                    half_open.push(writer(&conns[half_open.len() % conns.len()]));
                }
                other => panic!("{:?}", other.map(|_| ())),
            }
        }
    })
    .await
    .expect("calls past the share are refused");
    assert!(e.message().contains("memory limit reached"), "{e}");

    // The victim is untouched, during the attack.
    for n in 2..6 {
        check(n).await;
    }
    let rss_during = rss_kib(pid).unwrap() * 1024;
    let grown = rss_during.saturating_sub(rss_before);
    println!(
        "ABUSE rss_before_mib={:.1} rss_during_mib={:.1} grown_mib={:.1} share_mib={}",
        rss_before as f64 / 1048576.0,
        rss_during as f64 / 1048576.0,
        grown as f64 / 1048576.0,
        SHARE >> 20
    );
    assert!(
        grown <= SHARE + ALLOWANCE,
        "the relay grew by {grown} bytes under one IP's attack; its share is {SHARE}"
    );
    drop((slow, half_open));
    for (feed, _) in flood {
        feed.abort();
    }
    relay.kill().await;
}
