//! The Lua scripts (one per state change, atomic on the Redis side; the files in `lua/`
//! share `lua/lib.lua`) and how they run: EVALSHA with latency and error accounting.

use std::sync::Mutex;

use fred::prelude::*;

use super::{RedisStore, int, lock, storage_err};
use crate::error::RelayError;

/// A Lua script run by EVALSHA. The SHA1 comes from Redis' `SCRIPT LOAD`
/// (no local hashing), loaded lazily and again after `NOSCRIPT` (a Redis
/// restart empties its script cache).
pub(super) struct Script {
    lua: String,
    sha: Mutex<Option<String>>,
}

impl Script {
    fn from_lua(lua: String) -> Self {
        Script {
            lua,
            sha: Mutex::new(None),
        }
    }
}

pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) delete: Script,
    pub(super) attach: Script,
    pub(super) renew: Script,
    pub(super) release: Script,
    pub(super) push: Script,
    pub(super) pop: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let s = |body: &str| Script::from_lua(format!("{}\n{body}", include_str!("lua/lib.lua")));
        Scripts {
            create: s(include_str!("lua/create.lua")),
            delete: s(include_str!("lua/delete.lua")),
            attach: s(include_str!("lua/attach.lua")),
            renew: s(include_str!("lua/renew.lua")),
            release: s(include_str!("lua/release.lua")),
            push: s(include_str!("lua/push.lua")),
            pop: s(include_str!("lua/pop.lua")),
        }
    }
}

impl RedisStore {
    /// Runs one script with latency and error accounting. Fails fast while
    /// the health check says Redis is down, so clients get a clear error at
    /// once instead of after a command timeout.
    pub(super) async fn eval(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<Value, RelayError> {
        if !self.healthy() {
            return Err(RelayError::StorageUnavailable("redis not reachable".into()));
        }
        let t = std::time::Instant::now();
        let res =
            tokio::time::timeout(self.command_timeout, self.evalsha(script, keys, args)).await;
        self.metrics
            .redis_latency
            .observe(t.elapsed().as_secs_f64());
        match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.metrics.redis_errors.inc();
                tracing::debug!(error = %e, "redis command failed");
                if matches!(
                    e.kind(),
                    ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled
                ) {
                    self.set_healthy(false);
                }
                Err(storage_err(e.details()))
            }
            Err(_) => {
                self.metrics.redis_errors.inc();
                self.set_healthy(false);
                Err(storage_err("timeout"))
            }
        }
    }

    async fn evalsha(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<Value, fred::error::Error> {
        let cached = lock(&script.sha).clone();
        let sha = match cached {
            Some(sha) => sha,
            None => self.load(script).await?,
        };
        match self
            .client
            .evalsha::<Value, _, _, _>(sha, keys.clone(), args.clone())
            .await
        {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                let sha = self.load(script).await?;
                self.client.evalsha(sha, keys, args).await
            }
            r => r,
        }
    }

    async fn load(&self, script: &Script) -> Result<String, fred::error::Error> {
        let sha: String = self.client.script_load(script.lua.clone()).await?;
        *lock(&script.sha) = Some(sha.clone());
        Ok(sha)
    }

    pub(super) async fn eval_int(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<i64, RelayError> {
        let v = self.eval(script, keys, args).await?;
        int(&v).ok_or_else(|| storage_err("unexpected script reply"))
    }
}
