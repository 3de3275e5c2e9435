//! `dial` (app side): a GBN connection, the Noise handshake and the encrypted stream, on the
//! stream IDs the pairing state names (transport.md §6); and what both sides share about
//! a tunnel (options, errors, session facts). The node side is [`crate::listener`].

use crate::driver::{DriverOptions, GbnError, GbnHandle, spawn_gbn};
use crate::mailbox::Mailbox;
use crate::rt::Runtime;
use crate::stream::{HandshakeFailure, NoiseStream, initiate};
use core::time::Duration;
use lnc_core::gbn::{self, Side};
use lnc_core::keys::PublicKey;
use lnc_core::noise::{HandshakeVersion, NoiseConfig, Pattern};
use lnc_core::pairing::{
    ConnectionState, HandshakeOutcome, HandshakeRecord, MailboxStreams, StateError,
};
use rand_core::CryptoRng;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Settings of the layers below gRPC.
#[derive(Debug, Clone, Default)]
pub struct TunnelOptions {
    /// GBN settings; `None` = upstream's client/server defaults for our role.
    pub gbn: Option<gbn::Config>,
    /// Noise handshake settings.
    pub noise: NoiseConfig,
    /// Node side: the longest a handshake may take once the app's GBN connection is up
    /// (`None`: no limit). Without it a peer that stops mid-handshake holds the session's
    /// only connection slot, and a pairing that stalls after act 2 is never counted.
    pub handshake_timeout: Option<Duration>,
}

/// Why a tunnel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The GBN settings are invalid.
    #[error("tunnel: invalid GBN configuration: {0}")]
    Config(#[from] gbn::ConfigError),
    /// The GBN connection ended before the tunnel was up.
    #[error(transparent)]
    Gbn(#[from] GbnError),
    /// The handshake failed (wrong phrase or keys, incompatible peer).
    #[error(transparent)]
    Handshake(#[from] HandshakeFailure),
    /// The handshake did not finish within [`TunnelOptions::handshake_timeout`].
    #[error("tunnel: the handshake did not finish within {0:?}; waiting for the app again")]
    HandshakeTimeout(Duration),
    /// The handshake authenticated a key other than the stored one.
    #[error(transparent)]
    State(#[from] StateError),
}

impl TunnelError {
    /// A short, stable name for why the tunnel failed, for metrics labels: operators
    /// alert on a rise in one kind (wrong phrases, timeouts) without parsing messages.
    pub fn kind(&self) -> &'static str {
        match self {
            TunnelError::Config(_) => "config",
            TunnelError::Gbn(_) | TunnelError::Handshake(HandshakeFailure::Gbn(_)) => "connection",
            TunnelError::Handshake(HandshakeFailure::MsgData(_)) => "malformed",
            TunnelError::Handshake(HandshakeFailure::Noise(_)) => "noise",
            TunnelError::HandshakeTimeout(_) => "timeout",
            TunnelError::State(_) => "unexpected_key",
        }
    }
}

/// What a finished handshake established about the session.
#[derive(Clone)]
pub struct SessionInfo {
    /// The peer's static key (persist it when `record.remote_static_stored`).
    pub remote_static: PublicKey,
    /// The negotiated handshake version.
    pub version: HandshakeVersion,
    /// XX (pairing) or KK (reconnect).
    pub pattern: Pattern,
    /// App side: the node's auth data (`Macaroon: <hex>`); empty on the node.
    pub auth_data: Zeroizing<Vec<u8>>,
    /// What changed in the pairing state (persist it; new stream IDs next time).
    pub record: HandshakeRecord,
    /// The streams this connection runs on.
    pub streams: MailboxStreams,
}

impl core::fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionInfo")
            .field("remote_static", &self.remote_static)
            .field("version", &self.version)
            .field("pattern", &self.pattern)
            .field(
                "auth_data",
                &format_args!("<{} bytes redacted>", self.auth_data.len()),
            )
            .field("record", &self.record)
            .finish()
    }
}

/// An established tunnel: the encrypted stream and what the handshake established.
#[derive(Debug)]
pub struct Tunnel {
    /// The encrypted byte stream (run HTTP/2 on it).
    pub stream: NoiseStream,
    /// The session facts.
    pub session: SessionInfo,
    /// The GBN connection (status, stats, close).
    pub gbn: GbnHandle,
}

/// App side: connects to the node through the mailbox, with XX and the phrase on the
/// first connection or KK with the stored keys afterwards. `state` is updated (remote
/// key, auth data); persist it when `session.record` says so.
///
/// While the node is offline the relay answers "stream not found" and this keeps
/// retrying (25 ms doubling to 2 s; see [`GbnHandle::status`]); bound it with a timeout.
pub async fn dial<R: Runtime, G: CryptoRng + ?Sized>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    state: &mut ConnectionState,
    options: &TunnelOptions,
    rng: &mut G,
) -> Result<Tunnel, TunnelError> {
    dial_observed(rt, mailbox, state, options, rng, |_| {}).await
}

/// [`dial`], handing the GBN connection to `observe` as soon as it starts, so the app can
/// show upstream's status strings ("Session Not Found" while the node is offline or the
/// phrase is wrong) with [`GbnHandle::status_changed`] or [`GbnHandle::close`] it.
pub async fn dial_observed<R: Runtime, G: CryptoRng + ?Sized>(
    rt: &R,
    mailbox: Arc<dyn Mailbox>,
    state: &mut ConnectionState,
    options: &TunnelOptions,
    rng: &mut G,
    observe: impl FnOnce(GbnHandle),
) -> Result<Tunnel, TunnelError> {
    let streams = state.stream_ids();
    let config = options.gbn.clone().unwrap_or_else(gbn::Config::client);
    let opts = DriverOptions {
        create_boxes: false,
        send_after_recv: true,
    };
    let gbn = spawn_gbn(rt, mailbox, streams, Side::Client, config, opts)?;
    observe(gbn.clone());
    // For XX this runs scrypt while GBN connects.
    let inputs = state.handshake();
    gbn.connected().await?;
    let est = initiate(&gbn, &inputs, &options.noise, rng).await?;
    let record = state.record_handshake(HandshakeOutcome::of(&est))?;
    let session = SessionInfo {
        remote_static: est.remote_static,
        version: est.version,
        pattern: est.pattern,
        auth_data: est.auth_data.clone().unwrap_or_default(),
        record,
        streams,
    };
    Ok(Tunnel {
        stream: NoiseStream::new(gbn.clone(), est),
        session,
        gbn,
    })
}
