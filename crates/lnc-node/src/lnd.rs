//! A gRPC connection to LND (tonic over rustls), trusting LND's self-signed `tls.cert` and
//! sending the node's macaroon as `macaroon` metadata on every call, as LND clients do.
//!
//! The node needs LND for the session macaroons: LND bakes them under a per-session root key
//! ID (`BakeMacaroon`) and forgets that root key on revocation (`DeleteMacaroonID`), which
//! invalidates every macaroon of the session at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use lnc_core::macaroon::Op;
use lnd_api::lnrpc::{self, lightning_client::LightningClient};
use tonic::transport::{Channel, Endpoint};
use zeroize::Zeroizing;

/// Why talking to LND failed.
#[derive(Debug, thiserror::Error)]
pub enum LndError {
    /// A file (TLS certificate, macaroon) could not be read.
    #[error("LND: cannot read {path}: {source} (check --lnd-tls-cert / --lnd-macaroon)")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS certificate file holds no usable certificate.
    #[error("LND: {path} holds no usable PEM certificate ({what})")]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The address is not `host:port`.
    #[error("LND: address {0:?} is not host:port")]
    Address(String),
    /// The connection could not be established.
    #[error("LND: cannot connect to {addr}: {what} (is LND running and reachable?)")]
    Connect {
        /// The address.
        addr: String,
        /// What failed.
        what: String,
    },
    /// LND refused or failed a call.
    #[error("LND {method} failed: {status}")]
    Rpc {
        /// The method.
        method: &'static str,
        /// The gRPC status.
        status: Box<tonic::Status>,
    },
    /// LND returned a macaroon that does not decode.
    #[error("LND returned an undecodable macaroon: {0}")]
    BadMacaroon(String),
}

/// An authenticated connection to LND's gRPC port.
#[derive(Clone)]
pub struct Lnd {
    channel: Channel,
    macaroon_hex: Arc<Zeroizing<String>>,
}

impl std::fmt::Debug for Lnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lnd { macaroon: <redacted> }")
    }
}

impl Lnd {
    /// Connects to `addr` (`host:port`), trusting only the certificate(s) in `tls_cert`
    /// (LND's self-signed `tls.cert`) and authenticating with the macaroon file `macaroon`
    /// (usually `admin.macaroon`: baking and deleting macaroon IDs need `macaroon:generate`
    /// and `macaroon:write`). Unreadable files and bad addresses are errors; an LND that is
    /// down is not (the channel connects once it is up).
    pub async fn connect(addr: &str, tls_cert: &Path, macaroon: &Path) -> Result<Self, LndError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| LndError::File {
                path: p.to_path_buf(),
                source,
            })
        };
        let mac = Zeroizing::new(read(macaroon)?);
        let macaroon_hex = Arc::new(Zeroizing::new(hex::encode(&*mac)));
        let pem = read(tls_cert)?;
        // Pinned, not a root store: LND's tls.cert is its own CA, which WebPKI refuses as a
        // server certificate (see `TlsMode::Pinned`); a real LND showed it, lnd-sim did not.
        let cfg = lnc_tunnel::native::tls_config(&lnc_tunnel::TlsMode::Pinned(pem), &[b"h2"])
            .map_err(|e| LndError::Cert {
                path: tls_cert.to_path_buf(),
                what: e.to_string(),
            })?
            .ok_or_else(|| LndError::Cert {
                path: tls_cert.to_path_buf(),
                what: "no TLS configuration".into(),
            })?;
        let connector = tokio_rustls::TlsConnector::from(cfg);

        let (host, port) = addr
            .rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            .ok_or_else(|| LndError::Address(addr.to_string()))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let server_name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| LndError::Address(addr.to_string()))?;
        let target = format!("{host}:{port}");
        let conn_err = |what: String| LndError::Connect {
            addr: addr.to_string(),
            what,
        };
        let endpoint = Endpoint::from_shared(format!("https://localhost:{port}"))
            .map_err(|e| conn_err(e.to_string()))?;
        let connect = tower::service_fn(move |_| {
            let connector = connector.clone();
            let server_name = server_name.clone();
            let target = target.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(target).await?;
                // gRPC writes small frames; without this, Nagle + delayed ACK add ~40 ms.
                tcp.set_nodelay(true)?;
                let tls = connector.connect(server_name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        });
        // LND is often not up yet when the node starts (a boot, an LND restart, a wallet
        // still locked): the node starts anyway and its calls fail with UNAVAILABLE until
        // LND answers; the channel connects on the next call. Payments reserved at the last
        // stop are reconciled once LND is back.
        let channel = match endpoint.connect_with_connector(connect.clone()).await {
            Ok(channel) => channel,
            Err(e) => {
                tracing::warn!(
                    lnd = %addr,
                    error = %conn_err(format!("{e:?}")),
                    "LND is not reachable yet; the node starts anyway and calls through it fail until it is"
                );
                endpoint.connect_with_connector_lazy(connect)
            }
        };
        Ok(Lnd {
            channel,
            macaroon_hex,
        })
    }

    /// LND on a channel already made, sending `macaroon` (bytes) with every call. The fuzz
    /// targets pass a channel to nowhere; [`connect`](Self::connect) is the real constructor.
    #[doc(hidden)]
    pub fn with_channel(channel: Channel, macaroon: &[u8]) -> Self {
        Lnd {
            channel,
            macaroon_hex: Arc::new(Zeroizing::new(hex::encode(macaroon))),
        }
    }

    /// Wraps `msg` in a request carrying the node's macaroon.
    pub fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Ok(v) = self.macaroon_hex.parse() {
            r.metadata_mut().insert("macaroon", v);
        }
        r
    }

    /// The underlying channel (for other LND services, or to send another macaroon).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A `lnrpc.Lightning` client on this connection (add metadata with [`request`](Self::request)).
    pub fn lightning(&self) -> LightningClient<Channel> {
        LightningClient::new(self.channel.clone())
    }

    /// `BakeMacaroon`: a macaroon with `ops` under `root_key_id`; returns its V2 bytes.
    pub async fn bake_macaroon(
        &self,
        root_key_id: u64,
        ops: &[Op],
        allow_external_permissions: bool,
    ) -> Result<Zeroizing<Vec<u8>>, LndError> {
        let req = lnrpc::BakeMacaroonRequest {
            permissions: ops
                .iter()
                .map(|o| lnrpc::MacaroonPermission {
                    entity: o.entity.clone(),
                    action: o.action.clone(),
                })
                .collect(),
            root_key_id,
            allow_external_permissions,
        };
        let resp = self
            .lightning()
            .bake_macaroon(self.request(req))
            .await
            .map_err(|s| LndError::Rpc {
                method: "BakeMacaroon",
                status: Box::new(s),
            })?
            .into_inner();
        let hex_mac = Zeroizing::new(resp.macaroon);
        hex::decode(&*hex_mac)
            .map(Zeroizing::new)
            .map_err(|e| LndError::BadMacaroon(e.to_string()))
    }

    /// `DeleteMacaroonID`: LND forgets the root key, so every macaroon baked under it stops
    /// verifying. Returns whether LND had that root key.
    pub async fn delete_macaroon_id(&self, root_key_id: u64) -> Result<bool, LndError> {
        let resp = self
            .lightning()
            .delete_macaroon_id(self.request(lnrpc::DeleteMacaroonIdRequest { root_key_id }))
            .await
            .map_err(|s| LndError::Rpc {
                method: "DeleteMacaroonID",
                status: Box::new(s),
            })?
            .into_inner();
        Ok(resp.deleted)
    }
}
