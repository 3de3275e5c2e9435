#![no_main]
//! Two GBN machines over a simulated network whose loss, duplication, delay and
//! reordering come from the fuzzer. Invariants: no panic; messages arrive in order,
//! intact, never duplicated; memory stays bounded; a connection only ever closes because
//! of keepalive or the peer's FIN, never with a protocol error. Optionally the fuzzer also
//! injects raw packets into the server (then only "no panic, bounded memory" is checked).
use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use lnc_core::gbn::testing::{End, Link, Pair, check_message, message};
use lnc_core::gbn::{CloseReason, Config, Event};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (params, rest) = data.split_at(8);
    let fifo = params[1] & 1 == 1;
    // With reordering the window must allow at most N/2 in flight, so N >= 2.
    let window = if fifo {
        1 + params[0] % 40
    } else {
        2 + params[0] % 39
    };
    let inject = params[1] & 2 == 2;
    let loss = u32::from(params[2]) * 300 / 255;
    let dup = u32::from(params[3]) * 200 / 255;
    let delay = Duration::from_millis(5 + u64::from(params[4] % 50));
    // Reordering is only safe within GBN's sequence space if late packets cannot outlive a
    // sequence wrap: bounded jitter, and at most N/2 in flight.
    let jitter = delay * 2 * u32::from(params[5]) / 255;
    let chunk = usize::from(params[6] % 8) * 5;
    let count = 1 + u32::from(params[7] % 64);

    let mut cc = Config::client();
    cc.window = window;
    cc.max_chunk_size = chunk;
    let mut sc = Config::server();
    sc.max_chunk_size = chunk;
    if !fifo {
        cc.max_in_flight = Some((window / 2).max(1));
        sc.max_in_flight = cc.max_in_flight;
        cc.fifo_transport = false;
        sc.fifo_transport = false;
    }
    let link = Link {
        loss_permille: loss,
        dup_permille: dup,
        delay,
        jitter,
        fifo,
    };
    let (fates, injected) = if inject {
        rest.split_at(rest.len() / 2)
    } else {
        (rest, &[][..])
    };
    let mut p = Pair::from_bytes(fates, cc, sc, link.clone(), link);
    let mut injected = injected.split(|b| *b == 0xff);

    let (mut sent, mut got, mut sent_back, mut got_back) = (0u32, 0u32, 0u32, 0u32);
    for _ in 0..20_000 {
        while sent < count && p.client.can_send() {
            let _ = p.client.send(&message(sent, (sent as usize * 13) % 200));
            sent += 1;
        }
        while sent_back < count / 2 && p.server.can_send() {
            let _ = p.server.send(&message(sent_back, 9));
            sent_back += 1;
        }
        while let Some(m) = p.server.recv() {
            if !inject {
                assert_eq!(check_message(&m), Some(got));
            }
            got += 1;
        }
        while let Some(m) = p.client.recv() {
            if !inject {
                assert_eq!(check_message(&m), Some(got_back));
            }
            got_back += 1;
        }
        let n = usize::from(p.server.window());
        assert!(p.server.pending_messages() <= n && p.client.pending_messages() <= n);
        assert!(p.client.in_flight() <= n && p.server.in_flight() <= n);
        for end in [End::Client, End::Server] {
            while let Some(e) = p.conn(end).poll_event() {
                if let Event::Closed(r) = e {
                    if !inject {
                        assert!(
                            matches!(r, CloseReason::KeepaliveTimeout | CloseReason::PeerFin),
                            "{end:?} closed: {r:?}"
                        );
                    }
                }
            }
        }
        if inject {
            if let Some(pkt) = injected.next() {
                let now = p.now;
                let _ = p.server.handle_packet(now, pkt);
            }
        }
        if got == count && got_back == count / 2 {
            break;
        }
        if !p.step() {
            break;
        }
    }
});
