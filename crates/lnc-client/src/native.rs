//! Native (tokio) conveniences: mailbox transports from a [`MailboxInfo`], the OS random
//! source and clock, and the encrypted credentials file store.

use crate::client::{Client, ConnectOptions};
use crate::credentials::{Credentials, EncryptedCredentials, MailboxInfo, Transport};
use crate::error::Error;
use lnc_core::macaroon::UnixTime;
use lnc_tunnel::Mailbox;
use lnc_tunnel::native::{GrpcMailbox, RelayAddr, WsMailbox};
use lnc_tunnel::rt::TokioRuntime;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The OS random source as the `CryptoRng` the protocol code takes.
pub type OsRng = rand_core::UnwrapErr<getrandom::SysRng>;

/// A fresh handle on the OS random source.
pub fn os_rng() -> OsRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// The wall clock as the macaroon code's time type.
pub fn now() -> UnixTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UnixTime::from_duration_since_epoch(d)
}

/// The transport `info` names, connected lazily.
pub fn mailbox(info: &MailboxInfo) -> Result<Arc<dyn Mailbox>, Error> {
    let relay = RelayAddr {
        addr: info.addr().to_owned(),
        tls: info.tls.clone(),
    };
    let unreachable = |e: lnc_tunnel::MailboxError| Error::MailboxUnreachable {
        addr: info.addr().to_owned(),
        message: e.message,
    };
    Ok(match info.transport {
        Transport::Grpc => Arc::new(GrpcMailbox::new(relay).map_err(unreachable)?),
        Transport::WebSocket => Arc::new(WsMailbox::new(relay).map_err(unreachable)?),
    })
}

fn fill_now(mut options: ConnectOptions) -> ConnectOptions {
    if options.now.is_none() {
        options.now = Some(now());
    }
    options
}

/// [`crate::pair`] on the current tokio runtime with the transport `info` names.
pub async fn pair(
    info: MailboxInfo,
    phrase: &str,
    options: ConnectOptions,
) -> Result<(Client, Credentials), Error> {
    let mb = mailbox(&info)?;
    crate::client::pair(
        &TokioRuntime::new(),
        mb,
        info,
        phrase,
        fill_now(options),
        os_rng(),
    )
    .await
}

/// [`crate::connect`] on the current tokio runtime with the credentials' relay settings.
pub async fn connect(credentials: &Credentials, options: ConnectOptions) -> Result<Client, Error> {
    let mb = mailbox(credentials.mailbox())?;
    crate::client::connect(
        &TokioRuntime::new(),
        mb,
        credentials,
        fill_now(options),
        os_rng(),
    )
    .await
}

/// Encrypted credentials on disk: one `NAME.json` per profile under a directory, mode
/// 0600, replaced atomically (write to a temp file, fsync, rename) so a crash never
/// leaves a half-written profile.
#[derive(Clone, Debug)]
pub struct ProfileStore {
    dir: PathBuf,
}

/// The environment variable naming lnc's data directory (default `~/.lnc`).
pub const LNC_HOME: &str = "LNC_HOME";

fn store_err(path: &Path, source: std::io::Error) -> Error {
    Error::Store {
        path: path.display().to_string(),
        source,
    }
}

impl ProfileStore {
    /// A store in `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ProfileStore { dir: dir.into() }
    }

    /// `$LNC_HOME/profiles`, else `~/.lnc/profiles`.
    pub fn default_dir() -> Result<PathBuf, Error> {
        if let Some(h) = std::env::var_os(LNC_HOME).filter(|h| !h.is_empty()) {
            return Ok(PathBuf::from(h).join("profiles"));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or(Error::NoHome)?;
        Ok(PathBuf::from(home).join(".lnc").join("profiles"))
    }

    /// The store at [`ProfileStore::default_dir`].
    pub fn open_default() -> Result<Self, Error> {
        Ok(Self::new(Self::default_dir()?))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, Error> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !name.starts_with('.');
        if !ok {
            return Err(Error::ProfileName {
                name: name.to_owned(),
            });
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// Seals `creds` with `password` and writes profile `name` (replacing it).
    pub fn save(&self, name: &str, creds: &Credentials, password: &[u8]) -> Result<(), Error> {
        let env = EncryptedCredentials::seal(creds, password, &mut os_rng());
        self.save_sealed(name, &env)
    }

    /// Writes an already sealed profile.
    pub fn save_sealed(&self, name: &str, env: &EncryptedCredentials) -> Result<(), Error> {
        use std::io::Write as _;
        let path = self.path(name)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| store_err(&self.dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        }
        let tmp = self
            .dir
            .join(format!(".{name}.json.tmp{}", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let result = (|| {
            let mut f = opts.open(&tmp)?;
            f.write_all(env.to_json().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(store_err(&path, e));
        }
        Ok(())
    }

    /// Reads profile `name` (still sealed).
    pub fn load_sealed(&self, name: &str) -> Result<EncryptedCredentials, Error> {
        let path = self.path(name)?;
        let data = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NoProfile {
                    name: name.to_owned(),
                    dir: self.dir.display().to_string(),
                }
            } else {
                store_err(&path, e)
            }
        })?;
        Ok(EncryptedCredentials::from_json(&data)?)
    }

    /// Reads and decrypts profile `name`.
    pub fn load(&self, name: &str, password: &[u8]) -> Result<Credentials, Error> {
        Ok(self.load_sealed(name)?.open(password)?)
    }

    /// Profile names, sorted.
    pub fn list(&self) -> Result<Vec<String>, Error> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(store_err(&self.dir, e)),
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                let stem = n.strip_suffix(".json")?;
                (!stem.starts_with('.')).then(|| stem.to_owned())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Deletes profile `name`; `false` if it did not exist.
    pub fn remove(&self, name: &str) -> Result<bool, Error> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(store_err(&path, e)),
        }
    }
}
