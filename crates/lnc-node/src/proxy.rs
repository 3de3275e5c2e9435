//! The gRPC proxy served over each tunnel (spec part D): every call, whatever its
//! streaming shape, is forwarded as HTTP/2 frames — headers, messages, trailers and
//! status pass through untouched — to LND by default, or to another daemon chosen by the
//! gRPC service-name prefix.
//!
//! LND checks the session's macaroon itself (the app sends it as `macaroon` metadata, taken
//! from the handshake's auth data). Other daemons do not know LND's root keys, so for them
//! the node admits admin sessions and sessions whose macaroon lists the method as a `uri`
//! op — verified by LND's `CheckMacaroonPermissions`, so a revoked root key fails too — and
//! then swaps in that daemon's own macaroon. The admin API is a separate loopback server:
//! nothing here can reach it.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use lnd_api::lnrpc;
use tonic::transport::Channel;
use tower::ServiceExt as _;
use zeroize::Zeroizing;

use crate::backend_body::BackendBody;
use crate::call_metrics::CallRecord;
use crate::clock::Clock;
use crate::lnd::{Lnd, LndError};
use crate::metrics::NodeMetrics;
use crate::session::{Session, SessionId, SessionType};
use crate::spend::Meter;
use crate::spend::policy::{Verdict, classify};
use crate::spend::service::REMAINING_PATH;

/// Another daemon (Loop, Pool, …) reached by gRPC service-name prefix.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// Service prefix, e.g. `looprpc.`: calls to `/looprpc.SwapClient/...` go there.
    pub prefix: String,
    /// `host:port`.
    pub addr: String,
    /// The daemon's TLS certificate.
    pub tls_cert: PathBuf,
    /// The daemon's macaroon, swapped in for admitted calls.
    pub macaroon: PathBuf,
}

/// What the proxy checks on every call: is the session still live? The node's supervisor
/// writes it (revocation, expiry, an app connecting or leaving); every call reads it.
#[derive(Debug)]
pub struct Gate {
    active: AtomicBool,
    connected: AtomicBool,
    expiry: SystemTime,
    clock: Clock,
}

impl Gate {
    /// A live session that expires at `expiry` on `clock`, no app connected yet.
    pub(crate) fn new(expiry: SystemTime, clock: Clock) -> Self {
        Gate {
            active: AtomicBool::new(true),
            connected: AtomicBool::new(false),
            expiry,
            clock,
        }
    }

    /// Whether calls may pass now (not revoked, not expired). Checked on every call, so
    /// a session that expired between the supervisor's timer and this call still refuses.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire) && self.clock.now() < self.expiry
    }

    /// Whether an app is connected right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Ends the session for every later call (revoked, expired, or the node stops it).
    pub(crate) fn deactivate(&self) {
        self.active.store(false, Ordering::Release);
    }

    /// Records whether an app is connected; returns whether one was before.
    pub(crate) fn set_connected(&self, connected: bool) -> bool {
        self.connected.swap(connected, Ordering::Relaxed)
    }
}

/// The response body of every proxied call (tonic's boxed body carries trailers).
pub type ProxyBody = tonic::body::Body;

struct Upstream {
    prefix: String,
    channel: Channel,
    macaroon: HeaderValue,
}

/// Connections to the other daemons, by service prefix (longest prefix wins).
#[derive(Clone, Default)]
pub struct Upstreams(Arc<Vec<Upstream>>);

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|u| &u.prefix))
            .finish()
    }
}

impl Upstreams {
    /// Connects to each daemon (TLS with its certificate) and loads its macaroon.
    pub async fn connect(configs: &[UpstreamConfig]) -> Result<Self, LndError> {
        let mut v = Vec::new();
        for c in configs {
            let conn = Lnd::connect(&c.addr, &c.tls_cert, &c.macaroon).await?;
            let mac =
                Zeroizing::new(std::fs::read(&c.macaroon).map_err(|source| LndError::File {
                    path: c.macaroon.clone(),
                    source,
                })?);
            v.push((c.prefix.clone(), conn.channel(), mac));
        }
        Self::with_channels(v)
    }

    /// Upstreams on channels already made, `(prefix, channel, macaroon bytes)`: what
    /// [`connect`](Self::connect) ends with. The fuzz targets pass channels to nowhere.
    #[doc(hidden)]
    pub fn with_channels<M: AsRef<[u8]>>(
        upstreams: impl IntoIterator<Item = (String, Channel, M)>,
    ) -> Result<Self, LndError> {
        let mut v = Vec::new();
        for (prefix, channel, mac) in upstreams {
            let mut macaroon = HeaderValue::from_str(&hex::encode(mac.as_ref()))
                .map_err(|e| LndError::BadMacaroon(e.to_string()))?;
            macaroon.set_sensitive(true);
            v.push(Upstream {
                prefix,
                channel,
                macaroon,
            });
        }
        v.sort_by_key(|u| std::cmp::Reverse(u.prefix.len()));
        Ok(Upstreams(Arc::new(v)))
    }

    fn route(&self, service: &str) -> Option<&Upstream> {
        self.0.iter().find(|u| service.starts_with(&u.prefix))
    }
}

struct Ctx {
    id: SessionId,
    gate: Arc<Gate>,
    lnd: Lnd,
    upstreams: Upstreams,
    admin: bool,
    macaroon: Zeroizing<Vec<u8>>,
    /// The session's macaroon as a header, forced on budget sessions' calls.
    macaroon_header: Option<HeaderValue>,
    metrics: Arc<NodeMetrics>,
    meter: Option<Arc<Meter>>,
}

/// The tower service behind one session's tunnel.
#[derive(Clone)]
pub struct Proxy(Arc<Ctx>);

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({})", self.0.id)
    }
}

/// The gRPC service a request path `/<service>/<method>` names, which the proxy routes on
/// (by prefix); `None` if the path has no such shape, and the call is refused.
pub fn service_of(path: &str) -> Option<&str> {
    path.strip_prefix('/')?.split_once('/').map(|(svc, _)| svc)
}

fn refuse(status: tonic::Status) -> Response<ProxyBody> {
    status.into_http()
}

/// Request headers that belong to one HTTP hop, not to the call.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
];

impl Proxy {
    /// The proxy of session `s`, checking `gate` on every call and counting each in
    /// `metrics`.
    pub fn new(
        gate: Arc<Gate>,
        lnd: Lnd,
        upstreams: Upstreams,
        s: &Session,
        metrics: Arc<NodeMetrics>,
        meter: Arc<Meter>,
    ) -> Self {
        let macaroon_header = HeaderValue::from_str(&hex::encode(s.macaroon_bytes()))
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        Proxy(Arc::new(Ctx {
            id: s.id,
            gate,
            lnd,
            upstreams,
            admin: s.session_type == SessionType::Admin,
            macaroon: Zeroizing::new(s.macaroon_bytes().to_vec()),
            macaroon_header,
            metrics,
            meter: Some(meter),
        }))
    }

    /// A proxy of no stored session, for fuzzing without a node: `admin` lets upstream calls
    /// skip LND's `uri` check, which otherwise sends `macaroon`; the gate closes at `expiry`
    /// on the system clock.
    #[doc(hidden)]
    pub fn detached(
        lnd: Lnd,
        upstreams: Upstreams,
        admin: bool,
        macaroon: &[u8],
        expiry: SystemTime,
        metrics: Arc<NodeMetrics>,
    ) -> Self {
        Proxy(Arc::new(Ctx {
            id: SessionId([0; 4]),
            gate: Arc::new(Gate::new(expiry, Clock::system())),
            lnd,
            upstreams,
            admin,
            macaroon: Zeroizing::new(macaroon.to_vec()),
            macaroon_header: None,
            metrics,
            meter: None,
        }))
    }

    async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>) -> Response<ProxyBody> {
        if !ctx.gate.is_active() {
            return refuse(tonic::Status::permission_denied(
                "lnc node: this session is revoked or expired; pair again with a new phrase",
            ));
        }
        let path = req.uri().path().to_owned();
        let Some(service) = service_of(&path) else {
            return refuse(tonic::Status::unimplemented(format!(
                "lnc node: {path} is not a gRPC method path"
            )));
        };
        if path == REMAINING_PATH {
            return match &ctx.meter {
                Some(m) => match m.remaining().await {
                    Some(r) => crate::spend::service::answer(&r),
                    None => refuse(tonic::Status::not_found(
                        "lnc node: this session has no budget: it may spend what its macaroon allows",
                    )),
                },
                None => refuse(tonic::Status::not_found("lnc node: no budget here")),
            };
        }
        let (mut parts, body) = req.into_parts();
        for h in HOP_BY_HOP {
            parts.headers.remove(*h);
        }
        // The node's limits: a call rate, a stream cap, and for budget sessions the
        // payment rules (see `spend`). Sessions without a policy skip all of it.
        let mut permit = None;
        let mut metered = None;
        if let Some(meter) = ctx.meter.as_ref().filter(|m| m.is_active()) {
            match meter.admit() {
                Ok(p) => permit = Some(p),
                Err(e) => return refuse(e.status()),
            }
            if meter.has_budget() {
                match classify(&path) {
                    Verdict::Allowed => {}
                    Verdict::Refused(why) => {
                        return refuse(tonic::Status::permission_denied(format!(
                            "lnc node: {path} refused: {why}"
                        )));
                    }
                    Verdict::Metered(rpc) => metered = Some(rpc),
                }
                // The app sends the macaroon; a budget session's calls carry the session's
                // own, whatever other macaroon the app may hold.
                if let Some(m) = &ctx.macaroon_header {
                    parts.headers.insert("macaroon", m.clone());
                }
            }
        }
        if let (Some(rpc), Some(meter)) = (metered, ctx.meter.clone()) {
            return crate::metered_call::forward_payment(
                meter,
                rpc,
                path,
                parts,
                body,
                ctx.lnd.channel(),
                permit,
            )
            .await;
        }
        let (channel, backend) = match ctx.upstreams.route(service) {
            None => (ctx.lnd.channel(), Cow::Borrowed("LND")),
            Some(up) => {
                if !ctx.admin
                    && let Err(status) = Self::check_uri(&ctx, &path).await
                {
                    tracing::info!(session = %ctx.id, method = %path, "upstream call refused");
                    return refuse(status);
                }
                parts.headers.insert("macaroon", up.macaroon.clone());
                (
                    up.channel.clone(),
                    Cow::Owned(format!("the {} daemon", up.prefix)),
                )
            }
        };
        tracing::debug!(session = %ctx.id, method = %path, "proxying call");
        let req = Request::from_parts(parts, tonic::body::Body::new(body));
        let started = std::time::Instant::now();
        match channel.oneshot(req).await {
            Ok(resp) => {
                ctx.metrics
                    .proxy_latency
                    .observe(started.elapsed().as_secs_f64());
                resp.map(|b| {
                    let body = BackendBody::new(b, backend);
                    match permit {
                        None => ProxyBody::new(body),
                        Some(p) => ProxyBody::new(crate::metered_call::Permitted::new(body, p)),
                    }
                })
            }
            Err(e) => refuse(tonic::Status::unavailable(format!(
                "lnc node: the backend for {service} is unreachable: {e}"
            ))),
        }
    }

    /// A non-admin session may call another daemon's method only if its macaroon lists the
    /// method as a `uri` op; LND verifies the whole macaroon (root key, caveats).
    async fn check_uri(ctx: &Ctx, full_method: &str) -> Result<(), tonic::Status> {
        let req = lnrpc::CheckMacPermRequest {
            macaroon: ctx.macaroon.to_vec(),
            permissions: vec![lnrpc::MacaroonPermission {
                entity: "uri".into(),
                action: full_method.into(),
            }],
            full_method: full_method.into(),
            check_default_perms_from_full_method: false,
        };
        match ctx
            .lnd
            .lightning()
            .check_macaroon_permissions(ctx.lnd.request(req))
            .await
        {
            Ok(r) if r.get_ref().valid => Ok(()),
            Ok(_) => Err(tonic::Status::permission_denied(format!(
                "lnc node: this session may not call {full_method}"
            ))),
            Err(s) => Err(tonic::Status::permission_denied(format!(
                "lnc node: this session may not call {full_method}: {}",
                s.message()
            ))),
        }
    }
}

impl tower::Service<Request<Incoming>> for Proxy {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let ctx = self.0.clone();
        let record = CallRecord::start(ctx.metrics.clone(), req.uri().path(), ctx.meter.clone());
        Box::pin(async move { Ok(record.observe(Self::handle(ctx, req).await)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_of_paths() {
        assert_eq!(
            service_of("/lnrpc.Lightning/GetInfo"),
            Some("lnrpc.Lightning")
        );
        assert_eq!(
            service_of("/looprpc.SwapClient/"),
            Some("looprpc.SwapClient")
        );
        assert_eq!(service_of("/a/b/c"), Some("a"));
        assert_eq!(service_of("//x"), Some(""));
        assert_eq!(service_of("/lnrpc.Lightning"), None);
        assert_eq!(service_of("lnrpc.Lightning/GetInfo"), None);
        assert_eq!(service_of("*"), None);
    }
}
