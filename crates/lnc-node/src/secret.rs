//! The node secret: a 32-byte key in a `0600` file beside the store, used to encrypt session
//! private keys, pairing entropy and macaroons at rest (litd stores them in plaintext, spec B.9).
//!
//! The file is created on first start. If its mode grants anything to group or others the node
//! refuses to start: a readable key file would make the encryption pointless.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// File name of the node secret inside the data directory.
pub const NODE_SECRET_FILE: &str = "node.secret";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Why the node secret could not be loaded or a sealed value not opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Reading or creating the file failed.
    #[error("node secret {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is readable by group/others.
    #[error(
        "node secret {path} has mode {mode:o}, which lets other users read the key that \
         encrypts session secrets; run `chmod 600 {path}` and start again"
    )]
    InsecureMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold exactly 32 bytes.
    #[error(
        "node secret {path} is {len} bytes, expected 32; the file is damaged (restore it from a backup, or remove it together with the session store)"
    )]
    BadLength {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// Decryption failed: the store belongs to another node secret or was tampered with.
    #[error(
        "session store: a sealed record does not open with this node secret (wrong node.secret for this store, or the store was modified)"
    )]
    Unseal,
    /// The OS random source failed.
    #[error("node secret: the OS random number generator failed: {0}")]
    Random(String),
}

/// The key that seals session secrets. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct NodeSecret([u8; KEY_LEN]);

impl fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeSecret(<redacted>)")
    }
}

impl NodeSecret {
    /// Loads `dir/node.secret`, creating it (mode 0600, fresh random key) if it is absent.
    pub fn load_or_create(dir: &Path) -> Result<Self, SecretError> {
        let path = dir.join(NODE_SECRET_FILE);
        let io = |source| SecretError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::metadata(&path) {
            Ok(meta) => {
                check_mode(&path, &meta)?;
                let bytes = Zeroizing::new(std::fs::read(&path).map_err(io)?);
                let key: [u8; KEY_LEN] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| SecretError::BadLength {
                            path: path.clone(),
                            len: bytes.len(),
                        })?;
                Ok(NodeSecret(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                getrandom::fill(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
                let secret = NodeSecret(key);
                key.zeroize();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    opts.mode(0o600);
                }
                let mut f = opts.open(&path).map_err(io)?;
                f.write_all(&secret.0).map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok(secret)
            }
            Err(e) => Err(io(e)),
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.0))
    }

    /// Encrypts `plaintext` bound to `aad` (the record's public identity, so sealed blobs
    /// cannot be swapped between records). Output: random nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
        let ct = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SecretError::Unseal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Reverses [`seal`](Self::seal).
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let (nonce, ct) = sealed
            .split_at_checked(NONCE_LEN)
            .ok_or(SecretError::Unseal)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Unseal)?;
        self.cipher()
            .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| SecretError::Unseal)
    }
}

fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), SecretError> {
    match loose_mode(meta) {
        Some(mode) => Err(SecretError::InsecureMode {
            path: path.to_path_buf(),
            mode,
        }),
        None => Ok(()),
    }
}

/// The permission bits of a file that holds a secret, if they grant group or others
/// anything (`None` when only the owner has access, and always on non-Unix systems).
///
/// The one rule for every secret file we read (the node secret, the admin token, the
/// relay's `--create-auth` tokens): like ssh with a private key, refuse a file others can
/// read rather than use a secret that may already be known.
pub fn loose_mode(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}
