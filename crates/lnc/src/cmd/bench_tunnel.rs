//! `lnc bench tunnel`: the client library end to end, in one process: an lnc relay on
//! loopback, a node (`listen`) serving a small `lnrpc.Lightning`, and `lnc-client`.
//! Measures pairing (XX incl. scrypt), KK reconnect, unary round trips and bulk
//! streaming, each against the same service over direct gRPC on TCP in the same run, and
//! relay messages per small unary call.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use lnc_client::{ConnectOptions, MailboxInfo, TlsMode, Transport};
use lnc_core::keys::SecretKey;
use lnc_core::pairing::{ConnectionState, Entropy, PairingPhrase, Role};
use lnc_tunnel::TunnelOptions;
use lnc_tunnel::native::{GrpcMailbox, RelayAddr};
use lnc_tunnel::rt::TokioRuntime;
use lnd_api::lnrpc;
use lnd_api::lnrpc::lightning_client::LightningClient;
use lnd_api::lnrpc::lightning_server::{Lightning, LightningServer};
use tonic::{Request, Response, Status};

/// Options of `lnc bench tunnel`.
#[derive(Args, Debug)]
pub struct TunnelBench {
    /// Sequential unary calls per path.
    #[arg(long, default_value_t = 2_000)]
    calls: usize,
    /// Bulk stream: messages × bytes each.
    #[arg(long, default_value_t = 256)]
    bulk_messages: u64,
    /// Bulk stream message size.
    #[arg(long, default_value_t = 65_536)]
    bulk_size: u64,
    /// Relay transport for the client: grpc or ws.
    #[arg(long, default_value = "grpc")]
    transport: String,
    /// KK reconnects to time.
    #[arg(long, default_value_t = 20)]
    kk_runs: usize,
    /// Reconnect as soon as the previous client is closed, without waiting for the node
    /// to listen again (what a browser reload or a CLI run in a loop does).
    #[arg(long)]
    kk_immediate: bool,
}

#[derive(Clone)]
struct BenchLnd;

type Stream<T> = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Lightning for BenchLnd {
    async fn add_invoice(
        &self,
        req: Request<lnrpc::Invoice>,
    ) -> Result<Response<lnrpc::AddInvoiceResponse>, Status> {
        let inv = req.into_inner();
        Ok(Response::new(lnrpc::AddInvoiceResponse {
            payment_request: inv.memo,
            add_index: inv.value as u64,
            ..Default::default()
        }))
    }

    async fn subscribe_invoices(
        &self,
        req: Request<lnrpc::InvoiceSubscription>,
    ) -> Result<Response<Stream<lnrpc::Invoice>>, Status> {
        let r = req.into_inner();
        let memo = "x".repeat(r.settle_index as usize);
        let items = (0..r.add_index).map(move |i| {
            Ok(lnrpc::Invoice {
                memo: memo.clone(),
                add_index: i,
                ..Default::default()
            })
        });
        Ok(Response::new(Box::pin(futures_util::stream::iter(items))))
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * p) as usize)
        .copied()
        .unwrap_or_default()
}

async fn unary<T>(c: &mut LightningClient<T>, n: usize) -> anyhow::Result<Vec<Duration>>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let r = c
            .add_invoice(lnrpc::Invoice {
                memo: "bench".into(),
                value: i as i64,
                ..Default::default()
            })
            .await?
            .into_inner();
        anyhow::ensure!(r.add_index == i as u64, "wrong answer");
        lat.push(t.elapsed());
    }
    lat.sort();
    Ok(lat)
}

async fn bulk<T>(c: &mut LightningClient<T>, n: u64, size: u64) -> anyhow::Result<f64>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let t = Instant::now();
    let mut s = c
        .subscribe_invoices(lnrpc::InvoiceSubscription {
            add_index: n,
            settle_index: size,
        })
        .await?
        .into_inner();
    let mut bytes = 0u64;
    while let Some(m) = s.message().await? {
        bytes += m.memo.len() as u64;
    }
    anyhow::ensure!(bytes == n * size, "stream lost data");
    Ok(bytes as f64 / t.elapsed().as_secs_f64() / 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// `lnc bench tunnel`.
pub async fn run(b: TunnelBench) -> anyhow::Result<()> {
    // Relay.
    // The relay's per-stream rate limit (1,000 msg/s) is lifted: this measures our stack,
    // not the relay's abuse limits.
    let mut config = lnc_mailbox::Config::loopback_insecure();
    config.limits.stream_rate_per_sec = 1e9;
    config.limits.stream_burst = 1_000_000;
    let server = lnc_mailbox::Server::bind(config)
        .await
        .context("starting the relay")?;
    let relay = server.handle().local_addr();
    tokio::spawn(async move {
        let _ = server.serve(std::future::pending::<()>()).await;
    });
    // Node.
    let mut rng = lnc_client::native::os_rng();
    let entropy = Entropy::generate(&mut rng);
    let phrase = PairingPhrase::from_entropy(entropy.clone()).to_phrase_string();
    let node_state = ConnectionState::new(Role::Server, SecretKey::generate(&mut rng), entropy)
        .with_auth_data(b"Macaroon: 0201".to_vec());
    let node_mb = std::sync::Arc::new(GrpcMailbox::new(RelayAddr {
        addr: relay.to_string(),
        tls: TlsMode::Insecure,
    })?);
    let mut listener = lnc_tunnel::listen(
        &TokioRuntime::new(),
        node_mb,
        node_state,
        LightningServer::new(BenchLnd),
        TunnelOptions::default(),
        lnc_client::native::os_rng(),
    );
    let transport = match b.transport.as_str() {
        "ws" => Transport::WebSocket,
        _ => Transport::Grpc,
    };
    let info = MailboxInfo::new(relay.to_string(), transport, TlsMode::Insecure);

    // Pairing (XX, scrypt included), then KK reconnect.
    let t = Instant::now();
    let scrypt_entropy = Entropy::generate(&mut rng);
    let _ = lnc_core::pairing::stretch(&scrypt_entropy);
    let scrypt = t.elapsed();
    let t = Instant::now();
    let (client, creds) =
        lnc_client::native::pair(info, &phrase, ConnectOptions::default()).await?;
    let mut lc = client.lightning();
    unary(&mut lc, 1).await?;
    let pair_time = t.elapsed();
    client.close();
    let mut kk = Vec::new();
    for _ in 0..b.kk_runs.max(1) {
        if !b.kk_immediate {
            wait_listening(&mut listener).await?;
        }
        let t = Instant::now();
        let c = lnc_client::native::connect(&creds, ConnectOptions::default()).await?;
        let mut lc = c.lightning();
        unary(&mut lc, 1).await?;
        kk.push(t.elapsed());
        c.close();
    }
    kk.sort();
    if !b.kk_immediate {
        wait_listening(&mut listener).await?;
    }
    let client = lnc_client::native::connect(&creds, ConnectOptions::default()).await?;
    let mut lc = client.lightning();
    unary(&mut lc, 200).await?; // warm up

    // Unary through the tunnel, with relay message counts.
    let before = client.channel().gbn().map(|g| g.stats());
    let tun = unary(&mut lc, b.calls).await?;
    let after = client.channel().gbn().map(|g| g.stats());
    let (up, down) = match (before, after) {
        (Some(a), Some(z)) => (
            (z.packets_sent - a.packets_sent) as f64 / b.calls as f64,
            (z.packets_received - a.packets_received) as f64 / b.calls as f64,
        ),
        _ => (f64::NAN, f64::NAN),
    };
    let tun_bulk = bulk(&mut lc, b.bulk_messages, b.bulk_size).await?;

    // The same service over direct gRPC on TCP.
    let tcp = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let direct_addr = tcp.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .initial_connection_window_size(lnc_tunnel::h2::CONNECTION_WINDOW)
            .initial_stream_window_size(lnc_tunnel::h2::STREAM_WINDOW)
            .add_service(LightningServer::new(BenchLnd))
            .serve_with_incoming(tokio_stream_of(tcp)),
    );
    let ch = tonic::transport::Endpoint::from_shared(format!("http://{direct_addr}"))?
        .tcp_nodelay(true)
        .initial_connection_window_size(lnc_tunnel::h2::CONNECTION_WINDOW)
        .initial_stream_window_size(lnc_tunnel::h2::STREAM_WINDOW)
        .connect()
        .await?;
    let mut dc = LightningClient::new(ch);
    unary(&mut dc, 200).await?;
    let direct = unary(&mut dc, b.calls).await?;
    let direct_bulk = bulk(&mut dc, b.bulk_messages, b.bulk_size).await?;
    client.close();

    println!(
        "lnc bench tunnel ({} transport, {} calls)",
        b.transport, b.calls
    );
    println!("scrypt alone: {}", ms(scrypt));
    println!("pair (XX incl. scrypt) -> first call: {}", ms(pair_time));
    println!(
        "KK reconnect{} -> first call ({} runs): min {} median {} p99 {} max {}",
        if b.kk_immediate {
            " right after close"
        } else {
            ""
        },
        kk.len(),
        ms(kk[0]),
        ms(pct(&kk, 0.5)),
        ms(pct(&kk, 0.99)),
        ms(kk[kk.len() - 1])
    );
    println!(
        "unary via tunnel: p50 {} p99 {} | direct gRPC/TCP: p50 {} p99 {}",
        ms(pct(&tun, 0.5)),
        ms(pct(&tun, 0.99)),
        ms(pct(&direct, 0.5)),
        ms(pct(&direct, 0.99))
    );
    println!("relay messages per unary call: {up:.2} up (app->node), {down:.2} down");
    println!(
        "bulk {} x {} B: tunnel {tun_bulk:.1} MB/s | direct gRPC/TCP {direct_bulk:.1} MB/s",
        b.bulk_messages, b.bulk_size
    );
    Ok(())
}

async fn wait_listening(l: &mut lnc_tunnel::Listener) -> anyhow::Result<()> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), l.next_event()).await {
            Ok(Some(lnc_tunnel::ListenerEvent::Listening(_))) => return Ok(()),
            Ok(Some(_)) => {}
            _ => anyhow::bail!("the node did not listen again"),
        }
    }
}

fn tokio_stream_of(
    l: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(l, |l| async move {
        let r = l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        });
        Some((r, l))
    })
}
