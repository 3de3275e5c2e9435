//! `lnc bench …`: load generators.
//!
//! `lnc bench mailbox` measures a running relay (started separately, e.g.
//! `lnc mailbox --insecure`, so its RSS is its own): memory per idle stream
//! pair (readers held as gRPC streams multiplexed over a few connections, the
//! way nodes hold them), relay rate for 1 and N active pairs and added
//! latency, each against a raw WebSocket echo server measured in the same run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use futures_util::{SinkExt, StreamExt};
use lnc_hashmail::json;
use lnc_hashmail::pb;
use lnc_hashmail::pb::hash_mail_client::HashMailClient;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tonic::transport::{Channel, Endpoint};

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Load a running mailbox (plaintext listener): idle memory, relay rate,
    /// latency, against a raw WebSocket echo server.
    Mailbox(MailboxBench),
    /// The client library end to end through a loopback relay: pairing, reconnect,
    /// unary latency and bulk streaming against direct gRPC/TCP.
    Tunnel(super::bench_tunnel::TunnelBench),
    /// Load relay instances sharing one Redis (`lnc mailbox --redis`):
    /// latency and rate with writer and reader on the same or on different
    /// instances, Redis memory per idle pair, Redis CPU per message.
    Scaleout(ScaleoutBench),
}

/// Options of `lnc bench scaleout`.
#[derive(Args, Debug)]
pub struct ScaleoutBench {
    /// Plaintext addresses of the instances (comma list). Pair i writes to
    /// instance i mod N and reads from instance (i + 1) mod N when N > 1.
    #[arg(long, value_delimiter = ',', required = true)]
    addr: Vec<SocketAddr>,
    /// The shared Redis, for INFO memory (omit for an in-memory relay).
    #[arg(long)]
    redis: Option<String>,
    /// PID of redis-server, to report its CPU use during the rate runs.
    #[arg(long)]
    redis_pid: Option<u32>,
    /// Idle stream pairs to create and hold (for Redis memory per pair).
    #[arg(long, default_value_t = 0)]
    idle_pairs: usize,
    /// Active pairs for the rate run.
    #[arg(long, default_value_t = 100)]
    active_pairs: usize,
    /// Messages for the rate run (split over the pairs).
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Sequential round trips for the latency measurement.
    #[arg(long, default_value_t = 1_000)]
    latency_samples: usize,
    /// A label printed on every result line.
    #[arg(long, default_value = "run")]
    label: String,
}

/// Options of `lnc bench mailbox`.
#[derive(Args, Debug)]
pub struct MailboxBench {
    /// The mailbox's plaintext address (`lnc mailbox --insecure`).
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// PID of the mailbox process, to report its RSS (Linux /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Idle stream pairs to hold (2 mailboxes + 2 gRPC readers each).
    #[arg(long, default_value_t = 10_000)]
    idle_pairs: usize,
    /// gRPC connections the idle readers are multiplexed over.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Active pair counts to measure (WebSocket writer → relay → WebSocket reader).
    #[arg(long, value_delimiter = ',', default_value = "1,1000")]
    active_pairs: Vec<usize>,
    /// Messages per active run (split over the pairs).
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
    /// Message size in bytes (a go-back-N packet; LNC's are mostly < 1 KiB).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Sequential round trips for the latency measurement.
    #[arg(long, default_value_t = 2_000)]
    latency_samples: usize,
    /// Last, flood from this one IP: this many mailboxes, each written 16 × 131,000 B
    /// that no one reads (#18 row 2), then deleted; reports the server's RSS at each step.
    #[arg(long, default_value_t = 0)]
    flood_boxes: usize,
}

/// Runs a benchmark.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Mailbox(b) => mailbox(b).await,
        BenchCommand::Scaleout(b) => scaleout(b).await,
        BenchCommand::Tunnel(b) => super::bench_tunnel::run(b).await,
    }
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn stream_id(run: u64, pair: usize, side: u8) -> Vec<u8> {
    let mut id = vec![0u8; 64];
    id[..8].copy_from_slice(&run.to_be_bytes());
    id[8..16].copy_from_slice(&(pair as u64).to_be_bytes());
    id[63] = side;
    id
}

async fn grpc_clients(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<HashMailClient<Channel>>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let ch = Endpoint::from_shared(format!("http://{addr}"))?
            .initial_stream_window_size(64 * 1024)
            .connect()
            .await
            .with_context(|| format!("connecting to the mailbox at {addr}"))?;
        out.push(HashMailClient::new(ch));
    }
    Ok(out)
}

fn auth(id: &[u8]) -> pb::CipherBoxAuth {
    pb::CipherBoxAuth {
        desc: Some(pb::CipherBoxDesc {
            stream_id: id.to_vec().into(),
        }),
        auth: Some(pb::cipher_box_auth::Auth::LndAuth(pb::LndAuth {})),
    }
}

async fn create(c: &mut HashMailClient<Channel>, id: &[u8]) -> anyhow::Result<()> {
    match c.new_cipher_box(auth(id)).await {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
        Err(s) => Err(anyhow::anyhow!("NewCipherBox: {s}")),
    }
}

/// Creates `pairs` stream pairs (two mailboxes each) and attaches a gRPC reader to every
/// mailbox, spread over `clients`; the readers hold the mailboxes open until dropped.
async fn hold_idle_pairs(
    clients: &[HashMailClient<Channel>],
    run: u64,
    pairs: usize,
) -> anyhow::Result<Vec<tonic::Streaming<pb::CipherBox>>> {
    let readers = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(pairs * 2)));
    futures_util::stream::iter(0..pairs)
        .map(|i| {
            let mut c = clients[i % clients.len()].clone();
            let readers = readers.clone();
            async move {
                for side in 0..2u8 {
                    let id = stream_id(run, i, side);
                    create(&mut c, &id).await?;
                    let s = c
                        .recv_stream(pb::CipherBoxDesc {
                            stream_id: id.into(),
                        })
                        .await
                        .map_err(|s| anyhow::anyhow!("RecvStream: {s}"))?
                        .into_inner();
                    readers.lock().await.push(s);
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    let readers = std::mem::take(&mut *readers.lock().await);
    Ok(readers)
}

/// Relay round trips against raw WebSocket echo round trips (sorted), and what the relay
/// adds at p50 and p99.
fn latency_line(size: usize, relay: &[Duration], echo: &[Duration]) -> String {
    let (r50, r99, e50, e99) = (
        pct(relay, 0.5),
        pct(relay, 0.99),
        pct(echo, 0.5),
        pct(echo, 0.99),
    );
    format!(
        "latency ({size} B, {} sequential round trips): relay p50 {r50:?} p99 {r99:?}; raw ws echo p50 {e50:?} p99 {e99:?}; added p50 {:?} p99 {:?}",
        relay.len(),
        r50.saturating_sub(e50),
        r99.saturating_sub(e99),
    )
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

type Ws = WebSocketStream<TcpStream>;

async fn ws(addr: SocketAddr, path: &str) -> anyhow::Result<Ws> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let url = format!("ws://{addr}{path}?method=POST");
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
    Ok(ws)
}

async fn next_text(ws: &mut futures_util::stream::SplitStream<Ws>) -> anyhow::Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => anyhow::bail!("unexpected frame: {other:?}"),
        }
    }
}

/// A raw WebSocket echo server: the baseline for one network hop each way.
async fn echo_server() -> anyhow::Result<SocketAddr> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() && ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// One pair of sockets: where to write and where to read.
struct Pair {
    tx: futures_util::stream::SplitSink<Ws, Message>,
    rx: futures_util::stream::SplitStream<Ws>,
    id: Vec<u8>,
}

async fn relay_pair(
    addr: SocketAddr,
    grpc: &mut HashMailClient<Channel>,
    id: Vec<u8>,
) -> anyhow::Result<Pair> {
    relay_pair2(addr, addr, grpc, id).await
}

/// A pair whose writer is on `w` and reader on `r` (instances of one relay).
async fn relay_pair2(
    w: SocketAddr,
    r: SocketAddr,
    grpc: &mut HashMailClient<Channel>,
    id: Vec<u8>,
) -> anyhow::Result<Pair> {
    create(grpc, &id).await?;
    let mut recv = ws(r, lnc_hashmail::paths::WS_RECEIVE).await?;
    recv.send(Message::Text(json::desc_frame(&id).into()))
        .await?;
    let send = ws(w, lnc_hashmail::paths::WS_SEND).await?;
    let (tx, _) = send.split();
    let (_, rx) = recv.split();
    Ok(Pair { tx, rx, id })
}

async fn echo_pair(addr: SocketAddr, id: Vec<u8>) -> anyhow::Result<Pair> {
    let (tx, rx) = ws(addr, "/echo").await?.split();
    Ok(Pair { tx, rx, id })
}

fn payload(size: usize, t0: Instant) -> Vec<u8> {
    let mut v = vec![0x5a; size.max(8)];
    let ns = t0.elapsed().as_nanos() as u64;
    v[..8].copy_from_slice(&ns.to_be_bytes());
    v
}

fn parse_ts(frame: &str) -> anyhow::Result<u64> {
    let msg = match json::parse_recv_frame(frame) {
        Ok(json::RecvFrame::Result(b)) => b.msg.0,
        Ok(json::RecvFrame::Error(s)) => anyhow::bail!("relay error: {}", s.message),
        Err(_) => json::parse_cipher_box(frame)?.msg.0,
    };
    let b: [u8; 8] = msg
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .context("short message")?;
    Ok(u64::from_be_bytes(b))
}

/// Pipelined throughput over `pairs`: every pair sends `per_pair` messages.
async fn throughput(
    pairs: Vec<Pair>,
    per_pair: usize,
    size: usize,
) -> anyhow::Result<(f64, Duration)> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for mut p in pairs {
        tasks.push(tokio::spawn(async move {
            let id = p.id.clone();
            let mut tx = p.tx;
            let sender = tokio::spawn(async move {
                for _ in 0..per_pair {
                    let frame = json::send_frame(&id, &payload(size, t0));
                    tx.send(Message::Text(frame.into())).await?;
                }
                anyhow::Ok(tx)
            });
            let mut worst = Duration::ZERO;
            for _ in 0..per_pair {
                let ns = parse_ts(&next_text(&mut p.rx).await?)?;
                worst = worst.max(t0.elapsed().saturating_sub(Duration::from_nanos(ns)));
            }
            let _tx = sender.await??;
            anyhow::Ok(worst)
        }));
    }
    let mut worst = Duration::ZERO;
    for t in tasks {
        worst = worst.max(t.await??);
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(((per_pair as f64) / secs, worst))
}

/// Sequential one-message round trips on one pair: latency samples.
async fn latency(mut p: Pair, n: usize, size: usize) -> anyhow::Result<Vec<Duration>> {
    let t0 = Instant::now();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        p.tx.send(Message::Text(
            json::send_frame(&p.id, &payload(size, t0)).into(),
        ))
        .await?;
        next_text(&mut p.rx).await?;
        out.push(start.elapsed());
    }
    out.sort();
    Ok(out)
}

async fn mailbox(b: MailboxBench) -> anyhow::Result<()> {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let echo = echo_server().await?;
    let mut clients = grpc_clients(b.addr, b.connections).await?;
    println!(
        "# lnc bench mailbox against {} (echo baseline on {echo})",
        b.addr
    );

    // 1. Idle pairs: memory.
    let rss0 = rss_kib(b.server_pid);
    let t = Instant::now();
    let readers = hold_idle_pairs(&clients, run, b.idle_pairs).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = rss_kib(b.server_pid);
    println!(
        "idle: {} pairs (2 mailboxes + 2 gRPC readers each) over {} connections, set up in {:.1?}",
        b.idle_pairs,
        clients.len(),
        t.elapsed()
    );
    if let (Some(a), Some(z)) = (rss0, rss1) {
        let per_pair = (z.saturating_sub(a) as f64 * 1024.0) / b.idle_pairs.max(1) as f64;
        println!(
            "idle: server RSS {:.1} MiB before, {:.1} MiB with the pairs: {:.0} bytes per idle pair (100k pairs ≈ {:.0} MiB)",
            a as f64 / 1024.0,
            z as f64 / 1024.0,
            per_pair,
            per_pair * 100_000.0 / 1_048_576.0 + a as f64 / 1024.0
        );
    }

    // 2. Latency: sequential round trips, relay vs echo.
    let c0 = &mut clients[0];
    let relay_lat = latency(
        relay_pair(b.addr, c0, stream_id(run, usize::MAX - 1, 7)).await?,
        b.latency_samples,
        b.size,
    )
    .await?;
    let echo_lat = latency(
        echo_pair(echo, vec![0; 64]).await?,
        b.latency_samples,
        b.size,
    )
    .await?;
    println!("{}", latency_line(b.size, &relay_lat, &echo_lat));

    // 3. Throughput for each pair count.
    for &n in &b.active_pairs {
        let per_pair = (b.messages / n.max(1)).max(1);
        let mut pairs = Vec::with_capacity(n);
        for i in 0..n {
            let c = &mut clients[i % b.connections.max(1)];
            pairs.push(relay_pair(b.addr, c, stream_id(run, usize::MAX - 10 - i, 9)).await?);
        }
        let (relay_rate, relay_worst) = throughput(pairs, per_pair, b.size).await?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            pairs.push(echo_pair(echo, vec![0; 64]).await?);
        }
        let (echo_rate, echo_worst) = throughput(pairs, per_pair, b.size).await?;
        let total = per_pair * n;
        println!(
            "rate, {n} active pairs x {per_pair} msgs ({} B): relay {:.0} msg/s (max latency {:?}); raw ws echo {:.0} msg/s (max {:?}); relay/echo = {:.2}",
            b.size,
            relay_rate * n as f64,
            relay_worst,
            echo_rate * n as f64,
            echo_worst,
            relay_rate / echo_rate
        );
        let _ = total;
    }
    if b.flood_boxes > 0 {
        flood(&b, run).await?;
    }
    if let Some(r) = rss_kib(b.server_pid) {
        println!("server RSS at the end: {:.1} MiB", r as f64 / 1024.0);
    }
    drop(readers);
    Ok(())
}

/// Total CPU time (user + system) of a process, from /proc (Linux).
/// Writes 16 × 131,000 B into each of `flood_boxes` mailboxes that no one reads, from one
/// IP over `connections` connections (the writers stay open), then deletes the mailboxes
/// from fresh connections (held writers stall theirs by HTTP/2 flow control).
async fn flood(b: &MailboxBench, run: u64) -> anyhow::Result<()> {
    const MSGS: usize = 16;
    const SIZE: usize = 131_000;
    let mib = |k: Option<u64>| k.map_or(f64::NAN, |k| k as f64 / 1024.0);
    let clients = grpc_clients(b.addr, b.connections).await?;
    let ids: Vec<Vec<u8>> = (0..b.flood_boxes)
        .map(|i| stream_id(run ^ 0xF100D, i, 3))
        .collect();
    let rss0 = rss_kib(b.server_pid);
    for (i, id) in ids.iter().enumerate() {
        create(&mut clients[i % clients.len()].clone(), id).await?;
    }
    let writers: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut c = clients[i % clients.len()].clone();
            let boxes: Vec<_> = (0..MSGS)
                .map(|_| pb::CipherBox {
                    desc: Some(pb::CipherBoxDesc {
                        stream_id: id.clone().into(),
                    }),
                    msg: vec![7; SIZE].into(),
                })
                .collect();
            let body = futures_util::stream::iter(boxes).chain(futures_util::stream::pending());
            tokio::spawn(async move { c.send_stream(body).await })
        })
        .collect();
    // Settle: the writers push until the relay holds them back.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss1 = rss_kib(b.server_pid);
    let fresh = grpc_clients(b.addr, 4).await?;
    for (i, id) in ids.iter().enumerate() {
        let mut c = fresh[i % fresh.len()].clone();
        c.del_cipher_box(auth(id))
            .await
            .map_err(|s| anyhow::anyhow!("DelCipherBox: {s}"))?;
    }
    for w in &writers {
        w.abort();
    }
    drop(clients);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss2 = rss_kib(b.server_pid);
    // The allocator's purge runs on its decay clock (jemalloc: 10 s), so look again later.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss3 = rss_kib(b.server_pid);
    println!(
        "flood: {} unread mailboxes x {MSGS} x {SIZE} B ({:.0} MiB written) from one IP: server RSS {:.1} MiB before, {:.1} MiB flooded, {:.1} MiB 5 s and {:.1} MiB 15 s after deleting them",
        ids.len(),
        (ids.len() * MSGS * SIZE) as f64 / (1 << 20) as f64,
        mib(rss0),
        mib(rss1),
        mib(rss2),
        mib(rss3),
    );
    Ok(())
}

fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

async fn redis_used_memory(client: &fred::prelude::Client) -> anyhow::Result<u64> {
    use fred::prelude::ClientLike as _;
    let info: String = client
        .info(Some(fred::types::InfoKind::Memory))
        .await
        .context("redis INFO memory")?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("used_memory missing from INFO")
}

async fn scaleout(b: ScaleoutBench) -> anyhow::Result<()> {
    use fred::prelude::ClientLike as _;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let n = b.addr.len();
    let reader_of = |i: usize| b.addr[(i + usize::from(n > 1)) % n];
    let writer_of = |i: usize| b.addr[i % n];
    let label = &b.label;
    let redis = match &b.redis {
        Some(url) => {
            let c = fred::prelude::Builder::from_config(fred::prelude::Config::from_url(url)?)
                .build()?;
            c.init().await.context("connecting to redis")?;
            Some(c)
        }
        None => None,
    };
    let mut clients = Vec::new();
    for a in &b.addr {
        clients.extend(grpc_clients(*a, 4).await?);
    }
    println!(
        "# [{label}] lnc bench scaleout: {n} instance(s) {:?}, pairs {}",
        b.addr,
        if n > 1 {
            "across instances"
        } else {
            "on one instance"
        }
    );

    // Idle pairs: Redis memory.
    if b.idle_pairs > 0 {
        let mem0 = match &redis {
            Some(r) => Some(redis_used_memory(r).await?),
            None => None,
        };
        let readers = hold_idle_pairs(&clients, run, b.idle_pairs).await?;
        if let (Some(r), Some(m0)) = (&redis, mem0) {
            let m1 = redis_used_memory(r).await?;
            let per = m1.saturating_sub(m0) as f64 / b.idle_pairs as f64;
            println!(
                "[{label}] redis memory: {:.1} MiB before, {:.1} MiB with {} idle pairs (2 mailboxes + 2 attached readers each): {per:.0} bytes per pair (100k pairs = {:.0} MiB)",
                m0 as f64 / 1_048_576.0,
                m1 as f64 / 1_048_576.0,
                b.idle_pairs,
                per * 100_000.0 / 1_048_576.0
            );
        }
        // Idle cost: Redis CPU while only lease renewals run.
        if b.redis_pid.is_some() {
            let c0 = cpu_time(b.redis_pid);
            let t = Instant::now();
            tokio::time::sleep(Duration::from_secs(5)).await;
            if let (Some(z), Some(a)) = (cpu_time(b.redis_pid), c0) {
                let pct = z.saturating_sub(a).as_secs_f64() / t.elapsed().as_secs_f64() * 100.0;
                println!(
                    "[{label}] redis CPU with {} idle pairs (lease renewals only): {pct:.1}% of one core",
                    b.idle_pairs
                );
            }
        }
        drop(readers);
    }

    // Latency: pair 0 (writer on instance 0, reader on instance 1 if any).
    let echo = echo_server().await?;
    let lat = latency(
        relay_pair2(
            writer_of(0),
            reader_of(0),
            &mut clients[0],
            stream_id(run, usize::MAX - 1, 7),
        )
        .await?,
        b.latency_samples,
        b.size,
    )
    .await?;
    let echo_lat = latency(
        echo_pair(echo, vec![0; 64]).await?,
        b.latency_samples,
        b.size,
    )
    .await?;
    println!("[{label}] {}", latency_line(b.size, &lat, &echo_lat));

    // Rate: active pairs spread over the instances.
    let p = b.active_pairs.max(1);
    let per_pair = (b.messages / p).max(1);
    let mut pairs = Vec::with_capacity(p);
    let nc = clients.len();
    for i in 0..p {
        let c = &mut clients[i % nc];
        pairs.push(
            relay_pair2(
                writer_of(i),
                reader_of(i),
                c,
                stream_id(run, usize::MAX - 10 - i, 9),
            )
            .await?,
        );
    }
    let cpu0 = cpu_time(b.redis_pid);
    let t = Instant::now();
    let (rate, worst) = throughput(pairs, per_pair, b.size).await?;
    let wall = t.elapsed();
    let total = rate * p as f64;
    let cpu = cpu_time(b.redis_pid)
        .zip(cpu0)
        .map(|(a, z)| a.saturating_sub(z));
    match cpu {
        Some(c) => {
            let per_msg = c.as_secs_f64() * 1e6 / (per_pair * p) as f64;
            println!(
                "[{label}] rate, {p} active pairs x {per_pair} msgs: {total:.0} msg/s (max latency {worst:?}); redis CPU {:.0}% of one core, {per_msg:.1} µs per message => one Redis core saturates at ≈ {:.0} msg/s",
                c.as_secs_f64() / wall.as_secs_f64() * 100.0,
                1e6 / per_msg.max(0.001)
            );
        }
        None => println!(
            "[{label}] rate, {p} active pairs x {per_pair} msgs: {total:.0} msg/s (max latency {worst:?})"
        ),
    }
    if let Some(r) = redis {
        let _ = r.quit().await;
    }
    Ok(())
}
