//! What an app keeps after pairing, and how it is stored.
//!
//! After the first (XX) handshake the pairing phrase is spent: later connections are KK
//! handshakes between the app's static key and the node's, on stream IDs derived from
//! both (crypto.md §7). [`Credentials`] holds exactly that state plus where the relay is
//! and the macaroon the node handed over (`Macaroon: <hex>` in act 2), from which the
//! session's expiry and permissions are read.
//!
//! Two codecs:
//! * [`Credentials::to_bytes`]/[`Credentials::from_bytes`]: a versioned, bounded binary
//!   encoding of the secret state (never written anywhere in the clear);
//! * [`EncryptedCredentials`]: that encoding sealed with a user password — scrypt
//!   (random 16-byte salt) → ChaCha20-Poly1305 (random 12-byte nonce) — in a small JSON
//!   envelope. A wrong password fails the AEAD tag and is reported as
//!   [`CredentialsError::WrongPassword`].

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use core::fmt;
use lnc_core::keys::{PUBLIC_KEY_LEN, PublicKey, SecretKey};
use lnc_core::macaroon::{Macaroon, Op, UnixTime};
use lnc_core::pairing::{ConnectionState, ENTROPY_LEN, Entropy, Role};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

/// How the app reaches the relay: gRPC (HashMail, upstream's native client) or the
/// WebSocket JSON protocol (what browsers use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transport {
    /// HashMail over gRPC/HTTP2.
    #[default]
    Grpc,
    /// HashMail's WebSocket JSON frames.
    WebSocket,
}

/// How the connection to the relay is secured (lnc-tunnel's, shared with the node).
pub use lnc_tunnel::TlsMode;

/// Where the relay is. More than one address is kept for relay failover; the first is
/// the primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxInfo {
    /// `host:port` addresses, primary first (at least one).
    pub addrs: Vec<String>,
    /// The transport to use.
    pub transport: Transport,
    /// TLS mode.
    pub tls: TlsMode,
}

impl MailboxInfo {
    /// One relay address.
    pub fn new(addr: impl Into<String>, transport: Transport, tls: TlsMode) -> Self {
        MailboxInfo {
            addrs: vec![addr.into()],
            transport,
            tls,
        }
    }

    /// The primary address.
    pub fn addr(&self) -> &str {
        self.addrs.first().map(String::as_str).unwrap_or("")
    }
}

/// Why credentials could not be read, decrypted or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The AEAD tag did not verify: the password is wrong (or the file was altered).
    #[error("credentials: wrong password (or the credentials file was modified); try again")]
    WrongPassword,
    /// The data is not in a format this version reads.
    #[error("credentials: {0}; the profile is corrupt, pair again with a new phrase")]
    Corrupt(&'static str),
    /// The data comes from a newer lnc version.
    #[error("credentials: format version {0} is not supported by this lnc; upgrade lnc")]
    UnsupportedVersion(u32),
    /// The scrypt parameters in the file are outside the accepted range (a hostile file
    /// could otherwise ask for gigabytes of memory).
    #[error("credentials: key-derivation parameters out of range; the profile is corrupt")]
    KdfParams,
    /// Pairing has not stored the node's key (a version-1 node): KK reconnects need it.
    #[error(
        "credentials: the node did not send its static key (old handshake version); pair again"
    )]
    NoRemoteKey,
}

/// Everything needed to reconnect to a node without the phrase. Secrets are zeroized on
/// drop; `Debug` prints only public facts.
#[derive(Clone)]
pub struct Credentials {
    local_static: SecretKey,
    remote_static: PublicKey,
    entropy: Entropy,
    auth_data: Zeroizing<Vec<u8>>,
    mailbox: MailboxInfo,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("local_static", &"<redacted>")
            .field("remote_static", &self.remote_static)
            .field("entropy", &"<redacted>")
            .field(
                "auth_data",
                &format_args!("<{} bytes redacted>", self.auth_data.len()),
            )
            .field("mailbox", &self.mailbox)
            .finish()
    }
}

const PLAIN_MAGIC: &[u8; 4] = b"LNCc";
const PLAIN_VERSION: u8 = 1;
/// Largest auth data accepted (a macaroon is well under 4 KiB; LND's cap is 64 KiB).
pub const MAX_AUTH_DATA: usize = 64 * 1024;
/// Largest CA bundle accepted.
pub const MAX_CA_PEM: usize = 1 << 20;
/// Most relay addresses kept.
pub const MAX_ADDRS: usize = 8;
/// Longest relay address.
pub const MAX_ADDR_LEN: usize = 255;

impl Credentials {
    /// Builds credentials from a connection state after a successful pairing (the state
    /// must hold the node's static key and the received auth data).
    pub fn from_state(
        state: &ConnectionState,
        mailbox: MailboxInfo,
    ) -> Result<Self, CredentialsError> {
        let remote_static = *state.remote_static().ok_or(CredentialsError::NoRemoteKey)?;
        Ok(Credentials {
            local_static: state.local_static().clone(),
            remote_static,
            entropy: state.entropy().clone(),
            auth_data: Zeroizing::new(state.auth_data().unwrap_or_default().to_vec()),
            mailbox,
        })
    }

    /// The client-side connection state for a KK reconnect.
    pub fn connection_state(&self) -> ConnectionState {
        ConnectionState::new(
            Role::Client,
            self.local_static.clone(),
            self.entropy.clone(),
        )
        .with_remote_static(Some(self.remote_static))
        .with_auth_data(self.auth_data.to_vec())
    }

    /// The node's static public key (identifies the session's node).
    pub fn remote_static(&self) -> &PublicKey {
        &self.remote_static
    }

    /// Our static public key.
    pub fn local_public(&self) -> PublicKey {
        self.local_static.public_key()
    }

    /// Where the relay is.
    pub fn mailbox(&self) -> &MailboxInfo {
        &self.mailbox
    }

    /// Replaces the relay settings (e.g. a relay that moved).
    pub fn set_mailbox(&mut self, mailbox: MailboxInfo) {
        self.mailbox = mailbox;
    }

    /// The raw auth data the node sent in act 2.
    pub fn auth_data(&self) -> &[u8] {
        &self.auth_data
    }

    /// The session macaroon from the auth data, if it carries a decodable one.
    pub fn macaroon(&self) -> Option<Macaroon> {
        let hv = lnc_tunnel::macaroon_from_auth_data(&self.auth_data)?;
        Macaroon::from_hex(hv.to_str().ok()?).ok()
    }

    /// When the session's macaroon stops working (its earliest `time-before` caveat);
    /// `None` if there is no macaroon or it never expires.
    pub fn expiry(&self) -> Option<UnixTime> {
        self.macaroon()?.expires_at().ok().flatten()
    }

    /// Whether the macaroon has expired at `now` (then connecting is pointless: LND would
    /// refuse every call).
    pub fn is_expired(&self, now: UnixTime) -> bool {
        self.expiry().is_some_and(|e| e <= now)
    }

    /// The permissions the macaroon grants (LND ops such as `info:read`); empty if there
    /// is no LND macaroon.
    pub fn permissions(&self) -> Vec<Op> {
        self.macaroon()
            .and_then(|m| m.lnd_ops().ok())
            .unwrap_or_default()
    }

    /// The binary encoding (secret: encrypt it before storing, see
    /// [`EncryptedCredentials::seal`]).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(128 + self.auth_data.len()));
        out.extend_from_slice(PLAIN_MAGIC);
        out.push(PLAIN_VERSION);
        out.extend_from_slice(self.local_static.to_bytes().as_ref());
        out.extend_from_slice(&self.remote_static.to_bytes());
        out.extend_from_slice(self.entropy.as_bytes());
        put_bytes32(&mut out, &self.auth_data);
        out.push(match self.mailbox.transport {
            Transport::Grpc => 0,
            Transport::WebSocket => 1,
        });
        match &self.mailbox.tls {
            TlsMode::System => out.push(0),
            TlsMode::Insecure => out.push(1),
            TlsMode::CaPem(pem) => {
                out.push(2);
                put_bytes32(&mut out, pem);
            }
            TlsMode::SkipVerify => out.push(3),
            TlsMode::Pinned(pem) => {
                out.push(4);
                put_bytes32(&mut out, pem);
            }
        }
        let addrs = &self.mailbox.addrs[..self.mailbox.addrs.len().min(MAX_ADDRS)];
        out.push(addrs.len() as u8);
        for a in addrs {
            let a = &a.as_bytes()[..a.len().min(MAX_ADDR_LEN)];
            out.push(a.len() as u8);
            out.extend_from_slice(a);
        }
        out
    }

    /// Decodes [`Credentials::to_bytes`]. Never panics; every length is checked before
    /// anything is allocated.
    pub fn from_bytes(data: &[u8]) -> Result<Self, CredentialsError> {
        let mut r = Reader(data);
        if r.take(4)? != PLAIN_MAGIC {
            return Err(CredentialsError::Corrupt("not lnc credentials"));
        }
        let v = r.u8()?;
        if v != PLAIN_VERSION {
            return Err(CredentialsError::UnsupportedVersion(v.into()));
        }
        let local_static = SecretKey::from_bytes(r.take(32)?)
            .map_err(|_| CredentialsError::Corrupt("bad local key"))?;
        let remote_static = PublicKey::from_bytes(r.take(PUBLIC_KEY_LEN)?)
            .map_err(|_| CredentialsError::Corrupt("bad node key"))?;
        let entropy = Entropy::from_bytes(r.take(ENTROPY_LEN)?)
            .map_err(|_| CredentialsError::Corrupt("bad pairing entropy"))?;
        let auth_data = Zeroizing::new(r.bytes32(MAX_AUTH_DATA)?.to_vec());
        let transport = match r.u8()? {
            0 => Transport::Grpc,
            1 => Transport::WebSocket,
            _ => return Err(CredentialsError::Corrupt("unknown transport")),
        };
        let tls = match r.u8()? {
            0 => TlsMode::System,
            1 => TlsMode::Insecure,
            2 => TlsMode::CaPem(r.bytes32(MAX_CA_PEM)?.to_vec()),
            3 => TlsMode::SkipVerify,
            4 => TlsMode::Pinned(r.bytes32(MAX_CA_PEM)?.to_vec()),
            _ => return Err(CredentialsError::Corrupt("unknown TLS mode")),
        };
        let n = usize::from(r.u8()?);
        if n == 0 || n > MAX_ADDRS {
            return Err(CredentialsError::Corrupt("bad relay address count"));
        }
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            let len = usize::from(r.u8()?);
            let a = core::str::from_utf8(r.take(len)?)
                .map_err(|_| CredentialsError::Corrupt("relay address is not UTF-8"))?;
            addrs.push(a.to_owned());
        }
        if !r.0.is_empty() {
            return Err(CredentialsError::Corrupt("trailing bytes"));
        }
        Ok(Credentials {
            local_static,
            remote_static,
            entropy,
            auth_data,
            mailbox: MailboxInfo {
                addrs,
                transport,
                tls,
            },
        })
    }
}

fn put_bytes32(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CredentialsError> {
        let (h, t) = self
            .0
            .split_at_checked(n)
            .ok_or(CredentialsError::Corrupt("truncated"))?;
        self.0 = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, CredentialsError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn bytes32(&mut self, max: usize) -> Result<&'a [u8], CredentialsError> {
        let b = self.take(4)?;
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if n > max {
            return Err(CredentialsError::Corrupt("field too long"));
        }
        self.take(n)
    }
}

/// The scrypt cost of sealing: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s): a password guess
/// costs an attacker with the file as much.
pub const DEFAULT_LOG_N: u8 = 15;
const MAX_LOG_N: u8 = 20;
const MAX_R: u32 = 32;
const MAX_P: u32 = 4;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const FORMAT: &str = "lnc-credentials";
const ENVELOPE_VERSION: u32 = 1;
/// Largest envelope accepted by [`EncryptedCredentials::from_json`].
pub const MAX_ENVELOPE: usize = 4 << 20;

/// Public facts kept in the clear next to the ciphertext so `lnc profiles list` can show
/// them without the password. Authenticated (bound as AEAD associated data).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublicInfo {
    /// The primary relay address.
    pub mailbox: String,
    /// The node's static key (hex).
    pub node_pubkey: String,
    /// Macaroon expiry, Unix seconds (`None` = no expiry).
    pub expiry: Option<i64>,
}

/// Credentials sealed with a password: what a profile file holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EncryptedCredentials {
    format: String,
    version: u32,
    kdf: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
    nonce: String,
    ciphertext: String,
    /// The clear public facts (authenticated).
    pub info: PublicInfo,
}

impl EncryptedCredentials {
    /// Encrypts `creds` under `password` with a fresh random salt and nonce.
    pub fn seal<G: CryptoRng + ?Sized>(creds: &Credentials, password: &[u8], rng: &mut G) -> Self {
        Self::seal_with(creds, password, DEFAULT_LOG_N, rng)
    }

    /// [`seal`](Self::seal) with a chosen scrypt cost (tests use a low one).
    pub fn seal_with<G: CryptoRng + ?Sized>(
        creds: &Credentials,
        password: &[u8],
        log_n: u8,
        rng: &mut G,
    ) -> Self {
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut salt);
        rng.fill_bytes(&mut nonce);
        let info = PublicInfo {
            mailbox: creds.mailbox.addr().to_owned(),
            node_pubkey: hex::encode(creds.remote_static.to_bytes()),
            expiry: creds.expiry().map(|t| t.secs()),
        };
        let log_n = log_n.clamp(1, MAX_LOG_N);
        let mut env = EncryptedCredentials {
            format: FORMAT.into(),
            version: ENVELOPE_VERSION,
            kdf: "scrypt".into(),
            log_n,
            r: 8,
            p: 1,
            salt: hex::encode(salt),
            nonce: hex::encode(nonce),
            ciphertext: String::new(),
            info,
        };
        let ct = derive_key(password, &salt, log_n, 8, 1)
            .ok()
            .and_then(|key| {
                let plain = creds.to_bytes();
                cipher(&key)
                    .encrypt(
                        &Nonce::from(nonce),
                        Payload {
                            msg: &plain,
                            aad: &env.aad(),
                        },
                    )
                    .ok()
            })
            .unwrap_or_default();
        env.ciphertext = hex::encode(ct);
        env
    }

    /// Decrypts with `password`. A wrong password is [`CredentialsError::WrongPassword`].
    pub fn open(&self, password: &[u8]) -> Result<Credentials, CredentialsError> {
        self.check_header()?;
        let salt = hex::decode(&self.salt).map_err(|_| CredentialsError::Corrupt("bad salt"))?;
        let nonce: [u8; NONCE_LEN] = hex::decode(&self.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(CredentialsError::Corrupt("bad nonce"))?;
        let ct = hex::decode(&self.ciphertext)
            .map_err(|_| CredentialsError::Corrupt("bad ciphertext"))?;
        let key = derive_key(password, &salt, self.log_n, self.r, self.p)?;
        let plain = cipher(&key)
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &ct,
                    aad: &self.aad(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CredentialsError::WrongPassword)?;
        Credentials::from_bytes(&plain)
    }

    fn check_header(&self) -> Result<(), CredentialsError> {
        if self.format != FORMAT {
            return Err(CredentialsError::Corrupt("not an lnc credentials file"));
        }
        if self.version != ENVELOPE_VERSION {
            return Err(CredentialsError::UnsupportedVersion(self.version));
        }
        if self.kdf != "scrypt" {
            return Err(CredentialsError::Corrupt("unknown key derivation"));
        }
        if self.log_n == 0 || self.log_n > MAX_LOG_N || self.r == 0 || self.r > MAX_R {
            return Err(CredentialsError::KdfParams);
        }
        if self.p == 0 || self.p > MAX_P {
            return Err(CredentialsError::KdfParams);
        }
        if self.salt.len() != 2 * SALT_LEN {
            return Err(CredentialsError::Corrupt("bad salt"));
        }
        Ok(())
    }

    /// Everything public, bound to the ciphertext.
    fn aad(&self) -> Vec<u8> {
        let mut a = Vec::with_capacity(128);
        a.extend_from_slice(FORMAT.as_bytes());
        a.extend_from_slice(&self.version.to_be_bytes());
        a.push(self.log_n);
        a.extend_from_slice(&self.r.to_be_bytes());
        a.extend_from_slice(&self.p.to_be_bytes());
        a.extend_from_slice(self.salt.as_bytes());
        a.push(0);
        a.extend_from_slice(self.info.mailbox.as_bytes());
        a.push(0);
        a.extend_from_slice(self.info.node_pubkey.as_bytes());
        a.push(0);
        if let Some(e) = self.info.expiry {
            a.extend_from_slice(&e.to_be_bytes());
        }
        a
    }

    /// The JSON envelope (what the profile file holds).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses the JSON envelope (bounded; never panics). Decryption needs
    /// [`open`](Self::open).
    pub fn from_json(data: &[u8]) -> Result<Self, CredentialsError> {
        if data.len() > MAX_ENVELOPE {
            return Err(CredentialsError::Corrupt("file too large"));
        }
        let env: EncryptedCredentials = serde_json::from_slice(data)
            .map_err(|_| CredentialsError::Corrupt("not a credentials JSON file"))?;
        env.check_header()?;
        Ok(env)
    }
}

fn derive_key(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, CredentialsError> {
    let params = scrypt::Params::new(log_n, r, p).map_err(|_| CredentialsError::KdfParams)?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, key.as_mut())
        .map_err(|_| CredentialsError::KdfParams)?;
    Ok(key)
}

fn cipher(key: &[u8; 32]) -> ChaCha20Poly1305 {
    let mut k = Key::from(*key);
    let c = ChaCha20Poly1305::new(&k);
    k.zeroize();
    c
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    pub(crate) fn sample(seed: u64, auth: &[u8], tls: TlsMode) -> Credentials {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let node = SecretKey::generate(&mut rng).public_key();
        let state = ConnectionState::new(
            Role::Client,
            SecretKey::generate(&mut rng),
            Entropy::generate(&mut rng),
        )
        .with_remote_static(Some(node))
        .with_auth_data(auth.to_vec());
        Credentials::from_state(
            &state,
            MailboxInfo {
                addrs: vec!["127.0.0.1:1234".into(), "relay.example:443".into()],
                transport: Transport::WebSocket,
                tls,
            },
        )
        .unwrap()
    }

    fn same(a: &Credentials, b: &Credentials) {
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_eq!(a.remote_static, b.remote_static);
        assert_eq!(a.mailbox, b.mailbox);
    }

    #[test]
    fn binary_round_trip() {
        let c = sample(1, b"Macaroon: 0201", TlsMode::CaPem(b"PEM".to_vec()));
        let d = Credentials::from_bytes(&c.to_bytes()).unwrap();
        same(&c, &d);
        assert_eq!(
            d.connection_state().stream_ids(),
            c.connection_state().stream_ids()
        );
    }

    #[test]
    fn seal_open_and_wrong_password() {
        let c = sample(2, b"Macaroon: 0201", TlsMode::Insecure);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let env = EncryptedCredentials::seal_with(&c, b"hunter2", 4, &mut rng);
        let json = env.to_json();
        assert!(
            !json.contains("0201"),
            "secrets must not appear in the clear"
        );
        let env2 = EncryptedCredentials::from_json(json.as_bytes()).unwrap();
        same(&env2.open(b"hunter2").unwrap(), &c);
        assert_eq!(
            env2.open(b"hunter3").unwrap_err(),
            CredentialsError::WrongPassword
        );
        // Tampering with public info is detected too.
        let mut t = env2.clone();
        t.info.mailbox = "evil:1".into();
        assert_eq!(
            t.open(b"hunter2").unwrap_err(),
            CredentialsError::WrongPassword
        );
        // Fresh salt and nonce every time.
        let env3 = EncryptedCredentials::seal_with(&c, b"hunter2", 4, &mut rng);
        assert_ne!(env3.salt, env2.salt);
        assert_ne!(env3.ciphertext, env2.ciphertext);
    }

    #[test]
    fn hostile_kdf_params_are_refused() {
        let c = sample(4, b"", TlsMode::System);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut env = EncryptedCredentials::seal_with(&c, b"pw", 4, &mut rng);
        env.log_n = 40;
        let j = serde_json::to_vec(&env).unwrap();
        assert_eq!(
            EncryptedCredentials::from_json(&j).unwrap_err(),
            CredentialsError::KdfParams
        );
        env.log_n = 4;
        env.version = 9;
        let j = serde_json::to_vec(&env).unwrap();
        assert_eq!(
            EncryptedCredentials::from_json(&j).unwrap_err(),
            CredentialsError::UnsupportedVersion(9)
        );
    }

    #[test]
    fn debug_is_redacted() {
        let c = sample(5, b"Macaroon: 0201abcdef", TlsMode::System);
        let d = format!("{c:?}");
        assert!(!d.contains("abcdef"));
        assert!(d.contains("redacted"));
        let hex_local = hex::encode(c.local_static.to_bytes().as_ref());
        assert!(!d.contains(&hex_local));
    }

    proptest! {
        #[test]
        fn round_trip_any(seed in any::<u64>(), auth in proptest::collection::vec(any::<u8>(), 0..512),
                          ca in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256))) {
            let tls = ca.map(TlsMode::CaPem).unwrap_or(TlsMode::SkipVerify);
            let c = sample(seed, &auth, tls);
            let d = Credentials::from_bytes(&c.to_bytes()).unwrap();
            prop_assert_eq!(c.to_bytes(), d.to_bytes());
        }

        #[test]
        fn decode_arbitrary_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Credentials::from_bytes(&data);
            let _ = EncryptedCredentials::from_json(&data);
            let mut v = b"LNCc\x01".to_vec();
            v.extend_from_slice(&data);
            let _ = Credentials::from_bytes(&v);
        }
    }
}
