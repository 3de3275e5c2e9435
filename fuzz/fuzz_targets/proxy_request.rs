#![no_main]
//! The node's gRPC proxy as a paired app reaches it: HTTP/2 bytes from the app, decoded by
//! hyper's server (set up as `lnc_tunnel::serve_http2` does, on an in-memory pipe instead
//! of the Noise stream) and handed to `lnc_node::proxy::Proxy`. LND and three upstreams
//! (`looprpc.`, `loop`, `poolrpc.`; two overlap, so the longest prefix must win) sit behind
//! channels whose connections fail at once and are counted, so no network is involved.
//!
//! Input: a flags byte (bit 0: admin session, bit 1: revoked or expired, bit 2: start with
//! a well-formed request whose `:path` is the next length-prefixed bytes, bit 3: that
//! request has no body), then raw bytes after the client preface. The well-formed request
//! lets every input reach the proxy with any path; the raw bytes reach hyper's frame and
//! HPACK decoding and everything else an app can send.
//!
//! Checked, because each is what keeps a session inside its permissions or keeps the node
//! observable:
//! - every call gets the answer the routing rules give for its path: refused as
//!   `PERMISSION_DENIED` on a dead session, `UNIMPLEMENTED` if the path names no service,
//!   `UNAVAILABLE` from an unreachable backend, and `PERMISSION_DENIED` for a non-admin
//!   call to an upstream, which LND must approve first (and cannot here);
//! - no backend is even dialled unless some call routes to it: in particular a non-admin
//!   session never reaches an upstream, where the node swaps in that daemon's macaroon;
//! - `service_of` splits exactly `/<service>/<method>` (the service holds no `/`);
//! - the metrics count every call exactly once (none left in flight once the connection
//!   is gone), and the Prometheus text stays parseable with the app-chosen paths as
//!   labels, each label reading back as the path it counts;
//! - the connection ends once the app's bytes end (time is paused, so a wait on nothing
//!   but a timer fails at once instead of hanging the fuzzer).
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Request, Uri};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use libfuzzer_sys::fuzz_target;
use lnc_node::NodeMetrics;
use lnc_node::lnd::Lnd;
use lnc_node::proxy::{Proxy, Upstreams, service_of};
use tokio::io::AsyncWriteExt as _;
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt as _;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: what must follow the preface.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
const UPSTREAMS: [&str; 3] = ["looprpc.", "loop", "poolrpc."];
/// Index of LND among the backends (after the upstreams).
const LND: usize = UPSTREAMS.len();

const PERMISSION_DENIED: u16 = 7;
const UNIMPLEMENTED: u16 = 12;
const UNAVAILABLE: u16 = 14;

/// The gRPC status of a call to `path`, and the backend it may dial (the routing rules,
/// written out independently of the proxy).
fn expected(path: &str, admin: bool, live: bool) -> (u16, Option<usize>) {
    if !live {
        return (PERMISSION_DENIED, None);
    }
    let Some(service) = service_of(path) else {
        return (UNIMPLEMENTED, None);
    };
    let upstream = UPSTREAMS
        .iter()
        .enumerate()
        .filter(|(_, p)| service.starts_with(*p))
        .max_by_key(|(_, p)| p.len())
        .map(|(i, _)| i);
    match upstream {
        None => (UNAVAILABLE, Some(LND)),
        Some(i) if admin => (UNAVAILABLE, Some(i)),
        Some(_) => (PERMISSION_DENIED, Some(LND)),
    }
}

fn check_service_of(path: &str) {
    match service_of(path) {
        Some(service) => {
            assert!(!service.contains('/'), "{path:?} → {service:?}");
            let method = path
                .get(service.len() + 2..)
                .expect("a method part follows");
            assert_eq!(format!("/{service}/{method}"), path);
        }
        None => assert!(
            path.strip_prefix('/').is_none_or(|p| !p.contains('/')),
            "{path:?} has a service"
        ),
    }
}

/// A channel whose every connection attempt is counted in `attempts` and fails at once.
fn nowhere(attempts: Arc<AtomicUsize>) -> Channel {
    Endpoint::from_static("http://backend.invalid:1").connect_with_connector_lazy(
        tower::service_fn(move |_: Uri| {
            attempts.fetch_add(1, Ordering::Relaxed);
            async {
                Err::<TokioIo<tokio::io::DuplexStream>, _>(std::io::Error::other("no backend"))
            }
        }),
    )
}

/// HPACK integer with an `n`-bit prefix after the bits in `first`.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A HEADERS frame on stream 1: a gRPC request (POST, `application/grpc`, `te: trailers`)
/// to `path`, its literals not Huffman-coded.
fn request_frame(out: &mut Vec<u8>, path: &[u8], end_stream: bool) {
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http (static table)
    hpack_int(&mut block, 0, 4, 4); // literal, not indexed, name :path (static 4)
    hpack_int(&mut block, 0, 7, path.len());
    block.extend_from_slice(path);
    hpack_int(&mut block, 0, 4, 31); // name content-type (static 31)
    hpack_int(&mut block, 0, 7, 16);
    block.extend_from_slice(b"application/grpc");
    block.extend_from_slice(b"\x00\x02te\x08trailers");
    let len = block.len();
    let flags = 0x4 | u8::from(end_stream); // END_HEADERS, END_STREAM
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, 1, flags]);
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.extend_from_slice(&block);
}

/// Parses an OpenMetrics label set after its `{`, through the closing `}`: the decoded
/// `(name, value)` pairs, or `None` if it is malformed.
fn parse_labels(s: &str) -> Option<Vec<(String, String)>> {
    let mut c = s.chars();
    let mut out: Vec<(String, String)> = Vec::new();
    loop {
        let mut name = String::new();
        loop {
            match c.next()? {
                '=' => break,
                ch if ch.is_ascii_alphanumeric() || ch == '_' => name.push(ch),
                _ => return None,
            }
        }
        if name.is_empty() || c.next()? != '"' || out.iter().any(|(n, _)| *n == name) {
            return None;
        }
        let mut value = String::new();
        loop {
            match c.next()? {
                '"' => break,
                '\\' => value.push(match c.next()? {
                    '\\' => '\\',
                    '"' => '"',
                    'n' => '\n',
                    _ => return None,
                }),
                '\n' => return None,
                ch => value.push(ch),
            }
        }
        out.push((name, value));
        match c.next()? {
            ',' => {}
            '}' => break,
            _ => return None,
        }
    }
    c.next().is_none().then_some(out)
}

/// Checks the text exposition line by line; returns the calls counted and their method
/// labels.
fn read_exposition(text: &str) -> (u64, HashSet<String>) {
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (mut calls, mut methods) = (0, HashSet::new());
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad sample: {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (
                name,
                parse_labels(labels).unwrap_or_else(|| panic!("bad labels: {line:?}")),
            ),
            None => (series, Vec::new()),
        };
        assert!(name.starts_with("lnc_node_"), "bad metric name: {line:?}");
        if name == "lnc_node_calls_total" {
            calls += value as u64;
            let method = labels
                .iter()
                .find(|(n, _)| n == "method")
                .expect("method label");
            methods.insert(method.1.clone());
        }
    }
    (calls, methods)
}

fn serve(bytes: Vec<u8>, admin: bool, live: bool) {
    let attempts: [Arc<AtomicUsize>; LND + 1] = Default::default();
    let allowed = Arc::new(Mutex::new([false; LND + 1]));
    let paths = Arc::new(Mutex::new(HashSet::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let metrics = Arc::new(NodeMetrics::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async {
        let lnd = Lnd::with_channel(nowhere(attempts[LND].clone()), b"lnd macaroon");
        let upstreams = Upstreams::with_channels(UPSTREAMS.iter().enumerate().map(|(i, p)| {
            (
                p.to_string(),
                nowhere(attempts[i].clone()),
                b"upstream macaroon",
            )
        }))
        .expect("upstreams");
        let expiry = if live {
            SystemTime::now() + Duration::from_secs(86_400)
        } else {
            UNIX_EPOCH
        };
        let proxy = Proxy::detached(lnd, upstreams, admin, b"session", expiry, metrics.clone());
        let svc = {
            let (allowed, paths, started) = (allowed.clone(), paths.clone(), started.clone());
            hyper::service::service_fn(move |req: Request<Incoming>| {
                let proxy = proxy.clone();
                let (allowed, paths, started) = (allowed.clone(), paths.clone(), started.clone());
                async move {
                    started.fetch_add(1, Ordering::Relaxed);
                    let path = req.uri().path().to_owned();
                    let (code, backend) = expected(&path, admin, live);
                    if let Some(b) = backend {
                        allowed.lock().expect("lock")[b] = true;
                    }
                    paths.lock().expect("lock").insert(path.clone());
                    let resp = proxy.oneshot(req).await.unwrap_or_else(|e| match e {});
                    let status = resp
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok()?.parse::<u16>().ok());
                    assert_eq!(
                        status,
                        Some(code),
                        "{path:?} (admin: {admin}, live: {live})"
                    );
                    Ok::<_, Infallible>(resp)
                }
            })
        };
        let (app, node) = tokio::io::duplex(1 << 16);
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .initial_connection_window_size(16 << 20)
            .initial_stream_window_size(1 << 20)
            .auto_date_header(false);
        let conn = builder.serve_connection(TokioIo::new(node), svc);
        let (mut rd, mut wr) = tokio::io::split(app);
        let write = async move {
            let _ = wr.write_all(&bytes).await;
            // As an app would, wait for the answers before closing: with time paused,
            // this sleep ends once the node has nothing left to do.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = wr.shutdown().await;
        };
        let read = async move {
            let _ = tokio::io::copy(&mut rd, &mut tokio::io::sink()).await;
        };
        let ended = tokio::time::timeout(Duration::from_secs(3600), async {
            tokio::join!(conn, write, read)
        })
        .await;
        assert!(ended.is_ok(), "the connection outlived the app's bytes");
    });
    // Ends the tasks hyper spawned for each stream (and drops their calls).
    drop(rt);

    assert_eq!(metrics.calls_in_flight.get(), 0, "calls left in flight");
    let (calls, methods) = read_exposition(&metrics.encode());
    assert_eq!(
        calls,
        started.load(Ordering::Relaxed) as u64,
        "calls counted"
    );
    let paths = paths.lock().expect("lock");
    for m in &methods {
        assert!(
            paths.contains(m) || m == "other",
            "label {m:?} is no path called"
        );
    }
    let allowed = allowed.lock().expect("lock");
    for (i, a) in attempts.iter().enumerate() {
        let n = a.load(Ordering::Relaxed);
        assert!(
            n == 0 || allowed[i],
            "backend {i} dialled {n} times, no call routes there"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (request, raw) = if flags & 4 != 0 {
        let Some((&n, rest)) = rest.split_first() else {
            return;
        };
        let (path, raw) = rest.split_at(usize::from(n).min(rest.len()));
        (Some(path), raw)
    } else {
        (None, rest)
    };
    if let Ok(p) = std::str::from_utf8(request.unwrap_or(raw)) {
        check_service_of(p);
    }
    let mut bytes = PREFACE.to_vec();
    if let Some(path) = request {
        bytes.extend_from_slice(SETTINGS);
        request_frame(&mut bytes, path, flags & 8 != 0);
    }
    bytes.extend_from_slice(raw);
    serve(bytes, flags & 1 != 0, flags & 2 == 0);
});
