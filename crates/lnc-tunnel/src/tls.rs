//! How an LNC client reaches a relay (or the node reaches LND) over TLS: the one type the
//! app, the node and their stored settings share. Plain data, so that the wasm build (whose
//! browser does TLS itself) can store and show it too; `native` turns it into a rustls
//! configuration.

use core::fmt;

/// How the connection to the relay is secured.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// TLS verified against the operating system's trust store (a public relay such as
    /// `mailbox.terminal.lightning.today:443`).
    #[default]
    System,
    /// Plaintext (h2c / ws): a relay on loopback or behind a TLS-terminating proxy.
    Insecure,
    /// TLS trusting the given PEM CA certificates (a self-hosted relay's own cert).
    CaPem(Vec<u8>),
    /// TLS without certificate verification: a dev relay only; anyone on path can read
    /// the (still Noise-encrypted) traffic metadata and impersonate the relay.
    SkipVerify,
    /// TLS trusting exactly the given PEM certificate(s), byte for byte, whatever their
    /// names and CA flags. For LND's self-signed `tls.cert`: it is its own CA
    /// (`basicConstraints CA:TRUE`), which WebPKI refuses as a server certificate
    /// (`CaUsedAsEndEntity`) while Go's verifier, hence lncli and every Go client, accepts
    /// it; and users reach LND by names the certificate may not list.
    Pinned(Vec<u8>),
}

impl TlsMode {
    /// Whether the connection uses TLS at all.
    pub fn is_tls(&self) -> bool {
        !matches!(self, TlsMode::Insecure)
    }
}

/// Certificates are public, but a PEM dump helps nobody reading a log.
impl fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsMode::System => f.write_str("System"),
            TlsMode::Insecure => f.write_str("Insecure"),
            TlsMode::CaPem(p) => write!(f, "CaPem(<{} bytes>)", p.len()),
            TlsMode::SkipVerify => f.write_str("SkipVerify"),
            TlsMode::Pinned(p) => write!(f, "Pinned(<{} bytes>)", p.len()),
        }
    }
}
