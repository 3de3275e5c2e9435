//! What one side of an LNC connection remembers between connections (Go's `ConnData`).
//!
//! First connection vs reconnect is decided by a single fact: "do I hold the peer's static
//! key?". Without it the peers pair with the phrase (XX + SPAKE2 on `SHA512(E)` streams);
//! with it they reconnect with KK on streams derived from the static keys. There is no
//! in-band flag, so this state is the one place that decides — and it is plain data: the
//! driver persists what [`ConnectionState::record_handshake`] says changed (Go's
//! `onRemoteStatic` / `onAuthData` hooks become the returned [`HandshakeRecord`]).

use core::fmt;

use zeroize::Zeroizing;

use super::phrase::Entropy;
use super::stream_id::{MailboxStreams, Role, StreamId};
use super::stretch;
use crate::keys::{PublicKey, SecretKey};
use crate::noise::{Established, HandshakeVersion, Pattern};
use crate::spake2::MaskScalar;

/// First handshake version at which the peers persist each other's static keys (and may
/// therefore use KK next time). With version 0 or 1 every connection stays XX.
pub const MIN_VERSION_STORING_REMOTE_STATIC: HandshakeVersion = HandshakeVersion::V2;

/// Everything the Noise layer needs to run the next handshake, by pattern.
///
/// Owned values (keys are cheap clones, zeroized on drop) so the Noise machine does not
/// borrow the state while the driver keeps using it.
#[derive(Debug, Clone)]
pub enum HandshakeInputs {
    /// Pair with the phrase.
    Xx {
        /// Our long-term static key.
        local_static: SecretKey,
        /// The SPAKE2 password scalar derived from the pairing entropy.
        mask: MaskScalar,
    },
    /// Reconnect with known static keys.
    Kk {
        /// Our long-term static key.
        local_static: SecretKey,
        /// The peer's static key, learned in an earlier handshake of version ≥ 2.
        remote_static: PublicKey,
    },
}

impl HandshakeInputs {
    /// The pattern these inputs are for.
    pub fn pattern(&self) -> Pattern {
        match self {
            HandshakeInputs::Xx { .. } => Pattern::Xx,
            HandshakeInputs::Kk { .. } => Pattern::Kk,
        }
    }
}

/// The result of a completed handshake, as reported by the Noise layer.
#[derive(Clone)]
pub struct HandshakeOutcome {
    /// The negotiated handshake version.
    pub version: HandshakeVersion,
    /// The peer's static key as authenticated by the handshake.
    pub remote_static: PublicKey,
    /// Initiator (client) only: the auth data the server sent in act 2 (empty if none).
    /// Ignored on the server, which sends rather than receives auth data. Zeroized on drop:
    /// it carries the session's macaroon.
    pub received_auth_data: Zeroizing<Vec<u8>>,
}

impl HandshakeOutcome {
    /// What a completed Noise handshake tells the pairing state.
    pub fn of(est: &Established) -> Self {
        HandshakeOutcome {
            version: est.version,
            remote_static: est.remote_static,
            received_auth_data: est.auth_data.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Debug for HandshakeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeOutcome")
            .field("version", &self.version)
            .field("remote_static", &self.remote_static)
            .field(
                "received_auth_data",
                &format_args!("<{} bytes redacted>", self.received_auth_data.len()),
            )
            .finish()
    }
}

/// What [`ConnectionState::record_handshake`] changed, so the driver can persist it and move
/// streams. (Go calls its persistence hooks even when the value is unchanged; the flags say
/// "stored", and the `*_changed` flags say whether it differs from before.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeRecord {
    /// The remote static key was stored (negotiated version ≥ 2). Persist it: the next
    /// connection will be KK.
    pub remote_static_stored: bool,
    /// The stream IDs differ from before the handshake (the first v2 pairing just
    /// completed): close the mailbox streams and reopen on [`ConnectionState::stream_ids`].
    pub streams_changed: bool,
    /// Client only: the received auth data (the macaroon) was stored. Persist it.
    pub auth_data_stored: bool,
}

/// Why a handshake outcome was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// A handshake authenticated a different static key from the one already stored.
    /// KK authenticates the stored key by construction, so this means the driver mixed up
    /// sessions; the stored key is kept.
    #[error(
        "pairing state: the handshake authenticated a different remote static key than the stored one; the session state is inconsistent, start a new pairing"
    )]
    RemoteStaticMismatch,
}

/// One side's long-lived connection state (crypto spec §7).
///
/// Holds the local static key, the peer's static key once learned, the pairing entropy and
/// the auth data (server: what it sends in act 2; client: what it received). Secrets are
/// zeroized on drop and `Debug` redacts them.
#[derive(Clone)]
pub struct ConnectionState {
    role: Role,
    local_static: SecretKey,
    remote_static: Option<PublicKey>,
    entropy: Entropy,
    auth_data: Option<Zeroizing<Vec<u8>>>,
}

impl ConnectionState {
    /// State for a new pairing: nothing is known about the peer yet, so the first handshake
    /// is XX with the phrase.
    pub fn new(role: Role, local_static: SecretKey, entropy: Entropy) -> Self {
        ConnectionState {
            role,
            local_static,
            remote_static: None,
            entropy,
            auth_data: None,
        }
    }

    /// Restores the state persisted after an earlier connection (the remote static key, if
    /// a version ≥ 2 handshake stored one).
    pub fn with_remote_static(mut self, remote_static: Option<PublicKey>) -> Self {
        self.remote_static = remote_static;
        self
    }

    /// Sets the auth data: on the server, the bytes it sends in act 2 (litd sends
    /// `"Macaroon: " + hex(macaroon)`); on the client, restored credentials.
    pub fn with_auth_data(mut self, auth_data: Vec<u8>) -> Self {
        self.auth_data = Some(Zeroizing::new(auth_data));
        self
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Our static key.
    pub fn local_static(&self) -> &SecretKey {
        &self.local_static
    }

    /// The peer's static key, if a version ≥ 2 handshake stored one.
    pub fn remote_static(&self) -> Option<&PublicKey> {
        self.remote_static.as_ref()
    }

    /// The pairing entropy.
    pub fn entropy(&self) -> &Entropy {
        &self.entropy
    }

    /// The auth data (server: sent; client: received), if any.
    pub fn auth_data(&self) -> Option<&[u8]> {
        self.auth_data.as_deref().map(Vec::as_slice)
    }

    /// Which pattern the next handshake uses: XX until the peer's static key is known,
    /// then KK. Cheap; see [`ConnectionState::handshake`] for the inputs.
    pub fn handshake_pattern(&self) -> Pattern {
        match self.remote_static {
            None => Pattern::Xx,
            Some(_) => Pattern::Kk,
        }
    }

    /// The inputs for the next handshake. For XX this runs the scrypt stretch (~64 MiB,
    /// a few hundred ms): call it once per connection attempt.
    pub fn handshake(&self) -> HandshakeInputs {
        match self.remote_static {
            None => HandshakeInputs::Xx {
                local_static: self.local_static.clone(),
                mask: stretch::mask_scalar(&self.entropy),
            },
            Some(remote_static) => HandshakeInputs::Kk {
                local_static: self.local_static.clone(),
                remote_static,
            },
        }
    }

    /// The base SID: `SHA512(E)` before pairing, the static-key-derived SID after.
    pub fn sid(&self) -> StreamId {
        match &self.remote_static {
            None => StreamId::pairing(&self.entropy),
            Some(remote) => StreamId::post_pairing(&self.local_static, remote),
        }
    }

    /// The (receive, send) mailbox streams for our role.
    pub fn stream_ids(&self) -> MailboxStreams {
        self.sid().streams(self.role)
    }

    /// The streams of this session's pairing (XX) connection, for our role. After pairing
    /// they carry nothing new; but an app can still be on the pairing connection when the
    /// node restarts, and the restarted node listens on the post-pairing streams only, so
    /// that app hears nothing until its keepalive gives up (≈ 10 s) unless the node ends
    /// the old connection on these streams.
    pub fn pairing_stream_ids(&self) -> MailboxStreams {
        StreamId::pairing(&self.entropy).streams(self.role)
    }

    /// Records a completed handshake (after the Noise split), as Go's `DoHandshake` does:
    /// with version ≥ 2 the peer's static key is stored (so the next connection is KK on
    /// new streams); on the client the received auth data is stored (any version).
    ///
    /// If a remote static key is already stored and the handshake authenticated another
    /// one, nothing is changed and an error is returned.
    pub fn record_handshake(
        &mut self,
        outcome: HandshakeOutcome,
    ) -> Result<HandshakeRecord, StateError> {
        let store_remote = outcome.version >= MIN_VERSION_STORING_REMOTE_STATIC;
        if let Some(known) = &self.remote_static
            && *known != outcome.remote_static
        {
            return Err(StateError::RemoteStaticMismatch);
        }
        let before = self.sid();
        if store_remote {
            self.remote_static = Some(outcome.remote_static);
        }
        let auth_data_stored = self.role == Role::Client;
        if auth_data_stored {
            self.auth_data = Some(outcome.received_auth_data);
        }
        Ok(HandshakeRecord {
            remote_static_stored: store_remote,
            streams_changed: self.sid() != before,
            auth_data_stored,
        })
    }
}

impl fmt::Debug for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionState")
            .field("role", &self.role)
            .field("local_static", &self.local_static)
            .field("remote_static", &self.remote_static)
            .field("entropy", &self.entropy)
            .field(
                "auth_data",
                &self
                    .auth_data
                    .as_ref()
                    .map(|a| format!("<{} bytes redacted>", a.len())),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::PairingPhrase;

    struct Fixture {
        client_priv: SecretKey,
        server_priv: SecretKey,
        entropy: Entropy,
        xx_sid: StreamId,
        kk_sid: StreamId,
        stretched: String,
    }

    fn fixture() -> Fixture {
        let xx: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("xx_handshake_v2.json")).unwrap();
        let kk: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("kk_handshake_v2.json")).unwrap();
        let h = |v: &serde_json::Value| hex::decode(v.as_str().unwrap()).unwrap();
        let sid = |v: &serde_json::Value| StreamId::from_bytes(h(v).try_into().unwrap());
        Fixture {
            client_priv: SecretKey::from_bytes(&h(&xx["client_initiator"]["static_priv"])).unwrap(),
            server_priv: SecretKey::from_bytes(&h(&xx["server_responder"]["static_priv"])).unwrap(),
            entropy: PairingPhrase::parse(xx["pairing_phrase"].as_str().unwrap())
                .unwrap()
                .into_entropy(),
            xx_sid: sid(&xx["sid"]),
            kk_sid: sid(&kk["sid_derivation"]["sid"]),
            stretched: xx["stretched_password"].as_str().unwrap().to_owned(),
        }
    }

    fn outcome(version: u8, remote: PublicKey, auth: &[u8]) -> HandshakeOutcome {
        HandshakeOutcome {
            version: HandshakeVersion::from_u8(version).expect("a known version"),
            remote_static: remote,
            received_auth_data: Zeroizing::new(auth.to_vec()),
        }
    }

    #[test]
    fn pairing_then_reconnect_both_sides() {
        let f = fixture();
        let mut client =
            ConnectionState::new(Role::Client, f.client_priv.clone(), f.entropy.clone());
        let mut server =
            ConnectionState::new(Role::Server, f.server_priv.clone(), f.entropy.clone())
                .with_auth_data(b"Macaroon: 0201".to_vec());

        // First connection: XX on SHA512(E) streams; the two sides' streams mirror.
        for s in [&client, &server] {
            assert_eq!(s.handshake_pattern(), Pattern::Xx);
            assert_eq!(s.sid(), f.xx_sid);
        }
        assert_eq!(client.stream_ids().send, server.stream_ids().receive);
        assert_eq!(client.stream_ids().receive, server.stream_ids().send);
        assert_eq!(client.stream_ids().send, f.xx_sid.client_to_server());
        let HandshakeInputs::Xx { local_static, mask } = client.handshake() else {
            panic!("expected XX");
        };
        assert_eq!(local_static.public_key(), f.client_priv.public_key());
        let want_mask =
            MaskScalar::from_stretched(&hex::decode(&f.stretched).unwrap().try_into().unwrap());
        assert_eq!(mask.to_bytes(), want_mask.to_bytes());

        // Version 2 handshake completes: both store the peer key and move streams.
        let rec = client
            .record_handshake(outcome(2, f.server_priv.public_key(), b"Macaroon: 0201"))
            .unwrap();
        assert_eq!(
            rec,
            HandshakeRecord {
                remote_static_stored: true,
                streams_changed: true,
                auth_data_stored: true
            }
        );
        assert_eq!(client.auth_data(), Some(&b"Macaroon: 0201"[..]));
        let rec = server
            .record_handshake(outcome(2, f.client_priv.public_key(), b"ignored"))
            .unwrap();
        assert_eq!(
            rec,
            HandshakeRecord {
                remote_static_stored: true,
                streams_changed: true,
                auth_data_stored: false
            }
        );
        assert_eq!(server.auth_data(), Some(&b"Macaroon: 0201"[..]));

        // Reconnect: KK on the ECDH-derived streams (the kk_handshake_v2 vector).
        for s in [&client, &server] {
            assert_eq!(s.handshake_pattern(), Pattern::Kk);
            assert_eq!(s.sid(), f.kk_sid);
        }
        assert_eq!(client.stream_ids().send, server.stream_ids().receive);
        assert_eq!(server.stream_ids().send, f.kk_sid);
        let HandshakeInputs::Kk { remote_static, .. } = client.handshake() else {
            panic!("expected KK");
        };
        assert_eq!(remote_static, f.server_priv.public_key());
        assert_eq!(client.handshake().pattern(), Pattern::Kk);

        // A KK handshake re-stores the same key: stored, streams unchanged.
        let rec = client
            .record_handshake(outcome(2, f.server_priv.public_key(), b"Macaroon: 0202"))
            .unwrap();
        assert!(rec.remote_static_stored && !rec.streams_changed && rec.auth_data_stored);
        assert_eq!(client.auth_data(), Some(&b"Macaroon: 0202"[..]));

        // A different key is refused and nothing changes.
        let before = client.sid();
        assert_eq!(
            client.record_handshake(outcome(2, f.client_priv.public_key(), b"x")),
            Err(StateError::RemoteStaticMismatch)
        );
        assert_eq!(client.sid(), before);
        assert_eq!(client.auth_data(), Some(&b"Macaroon: 0202"[..]));
    }

    #[test]
    fn legacy_versions_never_store_the_remote_key() {
        let f = fixture();
        for v in [0u8, 1] {
            let mut client =
                ConnectionState::new(Role::Client, f.client_priv.clone(), f.entropy.clone());
            let rec = client
                .record_handshake(outcome(v, f.server_priv.public_key(), b""))
                .unwrap();
            assert_eq!(
                rec,
                HandshakeRecord {
                    remote_static_stored: false,
                    streams_changed: false,
                    auth_data_stored: true
                }
            );
            assert_eq!(client.auth_data(), Some(&b""[..]));
            assert_eq!(client.handshake_pattern(), Pattern::Xx);
            assert_eq!(client.sid(), f.xx_sid);
        }
    }

    #[test]
    fn restore_goes_straight_to_kk() {
        let f = fixture();
        let s = ConnectionState::new(Role::Server, f.server_priv.clone(), f.entropy.clone())
            .with_remote_static(Some(f.client_priv.public_key()));
        assert_eq!(s.handshake_pattern(), Pattern::Kk);
        assert_eq!(s.stream_ids().receive, f.kk_sid.client_to_server());
        assert_eq!(s.remote_static(), Some(&f.client_priv.public_key()));
        assert_eq!(s.role(), Role::Server);
    }

    #[test]
    fn debug_redacts_secrets() {
        let f = fixture();
        let s = ConnectionState::new(Role::Client, f.client_priv.clone(), f.entropy.clone())
            .with_auth_data(b"Macaroon: secret".to_vec());
        let d = format!("{s:?}");
        assert!(d.contains("<redacted>"));
        assert!(!d.contains("secret"));
        let o = outcome(2, f.server_priv.public_key(), b"Macaroon: secret");
        assert!(!format!("{o:?}").contains("secret"));
    }
}
