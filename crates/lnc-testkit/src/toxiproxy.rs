//! Shopify's toxiproxy (v2.5.0, pinned in `interop/toxiproxy/go.mod`, built by
//! `interop/build.sh` into `$LNC_GOBIN`) as a test's TCP fault injector: a server process
//! on a random loopback port, proxies created and toxics added and removed through its
//! HTTP API. Toxics act on the proxy's existing connections as well as new ones, so a
//! toxic added mid-call hits the call.
//!
//! The API is driven with a few hand-written HTTP/1.0 requests (the server closes the
//! connection after each answer, so no framing to parse): the kit needs four endpoints,
//! not an HTTP client.

use std::fmt;
use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::T;
use crate::go::gobin_dir;
use crate::process::Proc;

/// What went wrong talking to toxiproxy's API.
#[derive(Debug)]
pub enum ToxiproxyError {
    /// The connection or the exchange failed.
    Io(std::io::Error),
    /// The API answered with an error status.
    Status {
        /// The request line.
        request: String,
        /// The HTTP status code.
        code: u16,
        /// The answer's body (toxiproxy's `{"error": …}`).
        body: String,
    },
    /// The answer was not what the API documents.
    Malformed(String),
}

impl fmt::Display for ToxiproxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToxiproxyError::Io(e) => write!(f, "toxiproxy API: {e}"),
            ToxiproxyError::Status {
                request,
                code,
                body,
            } => write!(f, "toxiproxy API: {request} answered {code}: {body}"),
            ToxiproxyError::Malformed(m) => write!(f, "toxiproxy API: malformed answer: {m}"),
        }
    }
}

impl std::error::Error for ToxiproxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ToxiproxyError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ToxiproxyError {
    fn from(e: std::io::Error) -> Self {
        ToxiproxyError::Io(e)
    }
}

/// The path of `toxiproxy-server`; a missing one fails the test with how to build it.
pub fn server_path() -> std::path::PathBuf {
    let p = gobin_dir().join("toxiproxy-server");
    assert!(
        p.is_file(),
        "toxiproxy-server is missing at {}: run `bash interop/toxiproxy/build.sh` (or \
         `bash interop/build.sh`, which runs it; needs Go and the Go module proxy) to build \
         the pinned toxiproxy into $LNC_GOBIN, default ~/.cache/lnc-rs/gobin",
        p.display()
    );
    p
}

/// Which way a toxic acts: `Upstream` on what the client sends, `Downstream` on what
/// the upstream server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client → server.
    Upstream,
    /// Server → client.
    Downstream,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
        }
    }
}

/// One toxic: its type (`latency`, `bandwidth`, `slow_close`, `timeout`, `reset_peer`,
/// `slicer`, `limit_data`) and attributes as toxiproxy's README lists them.
#[derive(Clone, Debug)]
pub struct Toxic {
    /// Its type.
    pub kind: &'static str,
    /// Its attributes (a JSON object).
    pub attributes: Value,
    /// Probability in `[0, 1]` that a connection gets it.
    pub toxicity: f64,
}

impl Toxic {
    /// A toxic of `kind` on every connection.
    pub fn new(kind: &'static str, attributes: Value) -> Toxic {
        Toxic {
            kind,
            attributes,
            toxicity: 1.0,
        }
    }
}

/// A running toxiproxy server; killed when dropped.
pub struct Toxiproxy {
    api: SocketAddr,
    _proc: Proc,
}

impl Toxiproxy {
    /// Starts the server on a free loopback port; returns once its API answers. toxiproxy
    /// cannot report a port it picked itself (it logs the address it was given), so the
    /// port is found free first, and taken again if another process wins the race.
    pub async fn start() -> Toxiproxy {
        let program = server_path();
        let program = program.to_str().expect("utf-8 path");
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            // Its info and warning lines (one per connection, toxic and cut link) only with the
            // processes' log.
            let level = if std::env::var_os("LNC_TEST_PROC_LOG").is_some() {
                "info"
            } else {
                "error"
            };
            let mut p = Proc::spawn_env(
                "toxiproxy",
                program,
                &["-host", "127.0.0.1", "-port", &port.to_string()],
                &[("LOG_LEVEL", level.as_ref())],
            );
            let mut lines = p.lines_from_start();
            let api = SocketAddr::from(([127, 0, 0, 1], port));
            let t = Toxiproxy { api, _proc: p };
            // Ready when the version endpoint answers; a lost race on the port ends the
            // process (a fatal log line), which ends its output.
            let ready = tokio::time::timeout(T, async {
                loop {
                    match t.request("GET", "/version", None).await {
                        Ok(_) => return Ok(()),
                        Err(e) => last = e.to_string(),
                    }
                    match lines.try_recv() {
                        Err(tokio::sync::broadcast::error::TryRecvError::Closed) => {
                            return Err(());
                        }
                        Ok(l) if l.contains("\"fatal\"") => return Err(()),
                        _ => {}
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await;
            match ready {
                Ok(Ok(())) => return t,
                Ok(Err(())) => continue,
                Err(_) => panic!("toxiproxy's API did not answer within {T:?}: {last}"),
            }
        }
        panic!("toxiproxy did not start on a free port: {last}")
    }

    /// The API's address.
    pub fn api(&self) -> SocketAddr {
        self.api
    }

    /// One API call: the answer's body (JSON, or text for `/version`).
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String, ToxiproxyError> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut s = TcpStream::connect(self.api).await?;
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.api,
            body.len()
        );
        s.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        tokio::time::timeout(T, s.read_to_end(&mut raw))
            .await
            .map_err(|_| ToxiproxyError::Malformed(format!("no answer to {method} {path}")))??;
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| ToxiproxyError::Malformed(text.to_string()))?;
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| ToxiproxyError::Malformed(head.to_owned()))?;
        if !(200..300).contains(&code) {
            return Err(ToxiproxyError::Status {
                request: format!("{method} {path}"),
                code,
                body: rest.to_owned(),
            });
        }
        Ok(rest.to_owned())
    }

    /// A proxy `name` listening on `listen` (`host:0` for a port of toxiproxy's choice)
    /// in front of `upstream`; returns the address it listens on.
    pub async fn proxy(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
    ) -> Result<String, ToxiproxyError> {
        let spec = json!({"name": name, "listen": listen, "upstream": upstream, "enabled": true});
        let body = self.request("POST", "/proxies", Some(&spec)).await?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| ToxiproxyError::Malformed(format!("{e}: {body}")))?;
        v["listen"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ToxiproxyError::Malformed(v.to_string()))
    }

    /// Adds `toxic` to proxy `proxy` as `name`, acting in `direction`.
    pub async fn add_toxic(
        &self,
        proxy: &str,
        name: &str,
        direction: Direction,
        toxic: &Toxic,
    ) -> Result<(), ToxiproxyError> {
        let body = json!({
            "name": name,
            "type": toxic.kind,
            "stream": direction.as_str(),
            "toxicity": toxic.toxicity,
            "attributes": toxic.attributes,
        });
        self.request("POST", &format!("/proxies/{proxy}/toxics"), Some(&body))
            .await
            .map(drop)
    }

    /// Removes toxic `name` from proxy `proxy`.
    pub async fn remove_toxic(&self, proxy: &str, name: &str) -> Result<(), ToxiproxyError> {
        self.request("DELETE", &format!("/proxies/{proxy}/toxics/{name}"), None)
            .await
            .map(drop)
    }

    /// Every proxy enabled again and every toxic removed.
    pub async fn reset(&self) -> Result<(), ToxiproxyError> {
        self.request("POST", "/reset", None).await.map(drop)
    }
}
