//! Mailbox stream IDs: which two one-way relay streams a connection uses.
//!
//! The relay (hashmail) only forwards bytes between streams named by 64-byte IDs, so both
//! sides must derive the same IDs from what they share: the pairing entropy before pairing,
//! and the ECDH of their static keys after it. The relay learns the IDs but not the secrets
//! behind them, and a wrong phrase names different streams, so a mistyped phrase never
//! reaches the node.

use core::fmt;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::phrase::Entropy;
use crate::keys::{PublicKey, SecretKey};

/// Length of a mailbox stream ID.
pub const STREAM_ID_LEN: usize = 64;

/// Message HMAC'd with the static-key ECDH to derive the post-pairing SID.
const POST_PAIRING_LABEL: &[u8] = b"mailbox";

/// Which end of an LNC connection we are. Decides which of the two directional streams we
/// read and which we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The app (browser, mobile, CLI): always the Noise initiator. Sends on the
    /// client→server stream, receives on the server→client stream.
    Client,
    /// The node side (litd / `lnc node`): always the Noise responder.
    Server,
}

/// A 64-byte mailbox stream ID (a base SID or one of its two directional IDs).
///
/// Not a secret — the relay sees it — but it is derived from one and identifies a session,
/// so `Debug` prints only an 8-byte hex prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId([u8; STREAM_ID_LEN]);

impl StreamId {
    /// Wraps 64 raw bytes (e.g. a stream ID read from the relay protocol).
    pub const fn from_bytes(bytes: [u8; STREAM_ID_LEN]) -> Self {
        StreamId(bytes)
    }

    /// The 64 bytes, as sent to the relay.
    pub const fn as_bytes(&self) -> &[u8; STREAM_ID_LEN] {
        &self.0
    }

    /// First-connection SID: `SHA512(E)`. No remote static key is known yet, so the pairing
    /// entropy is the only shared value. (No salt or label: fixed by Go's `ConnData.SID`.)
    pub fn pairing(entropy: &Entropy) -> Self {
        StreamId(Sha512::digest(entropy.as_bytes()).into())
    }

    /// Post-pairing SID: `SHA512(HMAC-SHA256(key = ECDH(local, remote), "mailbox"))`.
    /// Once the peers know each other's static keys they move to streams that do not depend
    /// on the phrase, so a leaked phrase no longer locates the session. ECDH is symmetric, so
    /// both sides get the same SID.
    pub fn post_pairing(local_static: &SecretKey, remote_static: &PublicKey) -> Self {
        let shared = local_static.ecdh(remote_static);
        // HMAC pads keys shorter than its 64-byte block with zeros (RFC 2104 §2), so the
        // 32-byte ECDH output zero-extended to 64 bytes is the same key — and this form makes
        // the key length a type, so construction cannot fail.
        let mut key = Zeroizing::new([0u8; 64]);
        key[..32].copy_from_slice(shared.as_bytes());
        let mut mac = hmac::Hmac::<sha2::Sha256>::new(&(*key).into());
        mac.update(POST_PAIRING_LABEL);
        let tag = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
        StreamId(Sha512::digest(tag.as_ref()).into())
    }

    /// The server→client directional ID: the SID itself (Go's `GetSID(sid, true)`).
    pub fn server_to_client(&self) -> Self {
        *self
    }

    /// The client→server directional ID: the SID with the low bit of its last byte flipped
    /// (Go's `GetSID(sid, false)`).
    pub fn client_to_server(&self) -> Self {
        let mut id = self.0;
        id[STREAM_ID_LEN - 1] ^= 0x01;
        StreamId(id)
    }

    /// The (receive, send) stream pair of a base SID for the given role.
    pub fn streams(&self, role: Role) -> MailboxStreams {
        match role {
            Role::Client => MailboxStreams {
                receive: self.server_to_client(),
                send: self.client_to_server(),
            },
            Role::Server => MailboxStreams {
                receive: self.client_to_server(),
                send: self.server_to_client(),
            },
        }
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamId(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

/// The two mailbox streams one side uses: it reads `receive` and writes `send`; the peer
/// has them the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailboxStreams {
    /// The stream this side reads from.
    pub receive: StreamId,
    /// The stream this side writes to.
    pub send: StreamId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::PairingPhrase;

    fn id(s: &str) -> StreamId {
        StreamId::from_bytes(hex::decode(s).unwrap().try_into().unwrap())
    }

    fn check_directional(v: &serde_json::Value, sid: StreamId) {
        let s2c = id(v["stream_id_server_to_client"].as_str().unwrap());
        let c2s = id(v["stream_id_client_to_server"].as_str().unwrap());
        assert_eq!(sid.server_to_client(), s2c);
        assert_eq!(sid.client_to_server(), c2s);
        assert_eq!(
            sid.streams(Role::Client),
            MailboxStreams {
                receive: s2c,
                send: c2s
            }
        );
        assert_eq!(
            sid.streams(Role::Server),
            MailboxStreams {
                receive: c2s,
                send: s2c
            }
        );
    }

    #[test]
    fn pairing_phrase_vectors() {
        let v: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("pairing_phrase.json")).unwrap();
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 5);
        for c in cases {
            let p = PairingPhrase::parse(c["phrase"].as_str().unwrap()).unwrap();
            let sid = StreamId::pairing(p.entropy());
            assert_eq!(sid, id(c["sid"].as_str().unwrap()), "{}", c["description"]);
            check_directional(c, sid);
        }
    }

    #[test]
    fn xx_v2_vector_sids() {
        let v: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("xx_handshake_v2.json")).unwrap();
        let p = PairingPhrase::parse(v["pairing_phrase"].as_str().unwrap()).unwrap();
        assert_eq!(
            hex::encode(p.entropy().as_bytes()),
            v["passphrase_entropy"].as_str().unwrap()
        );
        let sid = StreamId::pairing(p.entropy());
        assert_eq!(sid, id(v["sid"].as_str().unwrap()));
        check_directional(&v, sid);
    }

    #[test]
    fn kk_post_pairing_sid_vector() {
        let v: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("kk_handshake_v2.json")).unwrap();
        let t = &v["transcript"];
        let d = &v["sid_derivation"];
        let key = |side: &str, k: &str| hex::decode(t[side][k].as_str().unwrap()).unwrap();
        let c_priv = SecretKey::from_bytes(&key("client_initiator", "static_priv")).unwrap();
        let s_priv = SecretKey::from_bytes(&key("server_responder", "static_priv")).unwrap();
        let c_pub = PublicKey::from_bytes(&key("client_initiator", "static_pub")).unwrap();
        let s_pub = PublicKey::from_bytes(&key("server_responder", "static_pub")).unwrap();
        assert_eq!(c_priv.public_key(), c_pub);
        assert_eq!(s_priv.public_key(), s_pub);

        assert_eq!(
            hex::encode(c_priv.ecdh(&s_pub).as_bytes()),
            d["ecdh_client_view"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(s_priv.ecdh(&c_pub).as_bytes()),
            d["ecdh_server_view"].as_str().unwrap()
        );
        // The intermediate HMAC, computed independently with the plain 32-byte key.
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(c_priv.ecdh(&s_pub).as_bytes())
                .unwrap();
        mac.update(b"mailbox");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            d["hmac_sha256_ecdh_mailbox"].as_str().unwrap()
        );

        let want = id(d["sid"].as_str().unwrap());
        let client_view = StreamId::post_pairing(&c_priv, &s_pub);
        let server_view = StreamId::post_pairing(&s_priv, &c_pub);
        assert_eq!(client_view, want);
        assert_eq!(server_view, want);
        assert_eq!(want, id(t["sid"].as_str().unwrap()));
        check_directional(t, want);
    }

    #[test]
    fn debug_prints_prefix_only() {
        let sid = StreamId::from_bytes([0xab; 64]);
        assert_eq!(format!("{sid:?}"), "StreamId(abababababababab…)");
    }
}
