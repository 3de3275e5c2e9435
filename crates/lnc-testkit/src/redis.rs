//! A private `redis-server` on a random free port with a temp dir, and relay instances
//! sharing it that can be crashed (their runtime torn down: no graceful release of
//! leases, connections cut) — the scale-out fixtures.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use lnc_mailbox::{Config, RedisConfig, Server, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// How long redis-server gets to answer PING after start.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The redis-server binary: `$LNC_REDIS_SERVER`, /usr/bin/redis-server, or
/// `redis-server` on PATH. Missing → the test FAILS (never skips).
pub fn redis_binary() -> PathBuf {
    if let Ok(p) = std::env::var("LNC_REDIS_SERVER") {
        return PathBuf::from(p);
    }
    let usr = PathBuf::from("/usr/bin/redis-server");
    if usr.exists() {
        return usr;
    }
    if let Some(p) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("redis-server"))
            .find(|p| p.exists())
    }) {
        return p;
    }
    panic!(
        "redis-server not found (/usr/bin/redis-server, PATH, or $LNC_REDIS_SERVER): \
         the scale-out tests need a real Redis. Install it with \
         `apt-get install -y redis-server` (.ci/run does this)."
    );
}

/// A private redis-server, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// Starts it on a free port and waits until it answers PING.
    pub async fn start() -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("lnc-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = RedisServer {
            child: None,
            port,
            dir,
        };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let child = Command::new(redis_binary())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
        self.child = Some(child);
        tokio::time::timeout(START_TIMEOUT, self.wait_ping())
            .await
            .expect("redis-server did not answer PING within 15 s");
    }

    /// PING until +PONG (each attempt is a fresh connection; a refused
    /// connect is retried at once after yielding).
    async fn wait_ping(&self) {
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await
                && s.write_all(b"PING\r\n").await.is_ok()
            {
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n" {
                    return;
                }
            }
            tokio::task::yield_now().await;
            // Bounded by START_TIMEOUT around the caller; back off a little
            // so a starting server is not hammered.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data is gone: no persistence).
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
            let _ = c.wait().await;
        }
    }

    /// Starts it again on the same port (empty).
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A relay config for one instance sharing `redis` (short leases so a
/// crashed instance's holds lapse in about a second).
pub fn instance_config(redis: &RedisServer) -> Config {
    let mut c = Config::loopback_insecure();
    let mut r = RedisConfig::new(redis.url());
    r.lease_ttl = Duration::from_millis(900);
    r.command_timeout = Duration::from_millis(500);
    c.redis = Some(r);
    c.timers.shutdown_grace = Duration::from_millis(100);
    c
}

/// A relay instance on its own runtime, so it can be crashed.
pub struct Instance {
    /// The running instance.
    pub handle: ServerHandle,
    rt: Option<tokio::runtime::Runtime>,
}

impl Instance {
    /// Starts an instance with `config` and waits until it is ready.
    pub async fn start(config: Config) -> Instance {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.spawn(Server::bind(config)).await.unwrap().unwrap();
        let handle = server.handle();
        rt.spawn(server.serve(std::future::pending()));
        let i = Instance {
            handle,
            rt: Some(rt),
        };
        i.wait_ready(true).await;
        i
    }

    /// Waits until readiness equals `up` (on the store's events).
    pub async fn wait_ready(&self, up: bool) {
        tokio::time::timeout(Duration::from_secs(20), self.handle.wait_ready(up))
            .await
            .unwrap_or_else(|_| panic!("instance never became ready={up}"));
    }

    /// Crash: tears the runtime down without any graceful step.
    pub fn crash(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.crash();
    }
}
