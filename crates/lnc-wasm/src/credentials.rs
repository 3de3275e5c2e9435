//! Credentials persisted by the page (localStorage), sealed with the user's password.
//!
//! After pairing, the app keeps its static key, the node's static key and the auth data
//! (the session macaroon), so a reload reconnects with KK and the password alone
//! (transport.md §6.3–6.4). The sealed form is a JSON string; a wrong password is a clear
//! error, never garbage state.
//!
//! INTERIM: until `lnc-client`'s credentials codec (EncryptedCredentials) is on main, this
//! module seals with the same construction it uses (scrypt log_n 15, r 8, p 1 → a
//! ChaCha20-Poly1305 key; header bound as associated data). It is to be replaced by
//! `lnc_client::credentials` without changing the JS API.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use lnc_core::keys::{PublicKey, SecretKey};
use lnc_core::pairing::{ConnectionState, ENTROPY_LEN, Entropy, Role};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

const FORMAT: &str = "lnc-web-credentials";
const LOG_N: u8 = 15;
/// The largest sealed string accepted (a hostile localStorage value cannot make us
/// allocate more).
pub const MAX_SEALED: usize = 256 * 1024;

/// Why stored credentials cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The AEAD tag did not verify.
    #[error("credentials: wrong password (or the stored credentials were modified); try again")]
    WrongPassword,
    /// Not something this version wrote.
    #[error("credentials: {0}; clear them (lnc.credentials.clear()) and pair again")]
    Corrupt(&'static str),
    /// The handshake did not give the node's key (old node): KK is impossible.
    #[error(
        "credentials: the node did not send its static key (old handshake version); pair again"
    )]
    NoRemoteKey,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    format: String,
    log_n: u8,
    salt: String,
    nonce: String,
    ciphertext: String,
}

fn key(password: &[u8], salt: &[u8], log_n: u8) -> Result<Zeroizing<[u8; 32]>, CredentialsError> {
    let params = scrypt::Params::new(log_n, 8, 1)
        .map_err(|_| CredentialsError::Corrupt("bad key-derivation parameters"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, out.as_mut_slice())
        .map_err(|_| CredentialsError::Corrupt("key derivation failed"))?;
    Ok(out)
}

fn aad(log_n: u8, salt: &str) -> Vec<u8> {
    format!("{FORMAT}|{log_n}|{salt}").into_bytes()
}

/// Seals the state after a handshake (it must hold the node's key).
pub fn seal<G: CryptoRng + ?Sized>(
    state: &ConnectionState,
    password: &[u8],
    rng: &mut G,
) -> Result<String, CredentialsError> {
    seal_with(state, password, LOG_N, rng)
}

fn seal_with<G: CryptoRng + ?Sized>(
    state: &ConnectionState,
    password: &[u8],
    log_n: u8,
    rng: &mut G,
) -> Result<String, CredentialsError> {
    let remote = state.remote_static().ok_or(CredentialsError::NoRemoteKey)?;
    let auth = state.auth_data().unwrap_or_default();
    let mut plain = Zeroizing::new(Vec::with_capacity(32 + 33 + auth.len()));
    plain.extend_from_slice(state.local_static().to_bytes().as_slice());
    plain.extend_from_slice(&remote.to_bytes());
    plain.extend_from_slice(auth);
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut nonce);
    let salt_hex = hex::encode(salt);
    let k = key(password, &salt, log_n)?;
    let ct = ChaCha20Poly1305::new(&Key::from(*k))
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &plain,
                aad: &aad(log_n, &salt_hex),
            },
        )
        .map_err(|_| CredentialsError::Corrupt("encryption failed"))?;
    let env = Envelope {
        format: FORMAT.into(),
        log_n,
        salt: salt_hex,
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ct),
    };
    serde_json::to_string(&env).map_err(|_| CredentialsError::Corrupt("encoding failed"))
}

/// Opens sealed credentials into the client state for a KK reconnect.
pub fn open(sealed: &str, password: &[u8]) -> Result<ConnectionState, CredentialsError> {
    if sealed.len() > MAX_SEALED {
        return Err(CredentialsError::Corrupt("stored credentials too large"));
    }
    let env: Envelope =
        serde_json::from_str(sealed).map_err(|_| CredentialsError::Corrupt("not JSON"))?;
    if env.format != FORMAT {
        return Err(CredentialsError::Corrupt("unknown format"));
    }
    if !(10..=20).contains(&env.log_n) {
        return Err(CredentialsError::Corrupt(
            "key-derivation cost out of range",
        ));
    }
    let salt = hex::decode(&env.salt).map_err(|_| CredentialsError::Corrupt("bad salt"))?;
    let nonce: [u8; 12] = hex::decode(&env.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or(CredentialsError::Corrupt("bad nonce"))?;
    let ct =
        hex::decode(&env.ciphertext).map_err(|_| CredentialsError::Corrupt("bad ciphertext"))?;
    let k = key(password, &salt, env.log_n)?;
    let plain = Zeroizing::new(
        ChaCha20Poly1305::new(&Key::from(*k))
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &ct,
                    aad: &aad(env.log_n, &env.salt),
                },
            )
            .map_err(|_| CredentialsError::WrongPassword)?,
    );
    let (local, rest) = plain
        .split_at_checked(32)
        .ok_or(CredentialsError::Corrupt("truncated"))?;
    let (remote, auth) = rest
        .split_at_checked(33)
        .ok_or(CredentialsError::Corrupt("truncated"))?;
    let local =
        SecretKey::from_bytes(local).map_err(|_| CredentialsError::Corrupt("bad local key"))?;
    let remote =
        PublicKey::from_bytes(remote).map_err(|_| CredentialsError::Corrupt("bad remote key"))?;
    // KK derives the streams from the two static keys; the pairing entropy is not used.
    let entropy =
        Entropy::from_bytes(&[0; ENTROPY_LEN]).map_err(|_| CredentialsError::Corrupt("entropy"))?;
    Ok(ConnectionState::new(Role::Client, local, entropy)
        .with_remote_static(Some(remote))
        .with_auth_data(auth.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    fn paired(rng: &mut ChaCha20Rng) -> ConnectionState {
        let node = SecretKey::generate(rng).public_key();
        ConnectionState::new(
            Role::Client,
            SecretKey::generate(rng),
            Entropy::generate(rng),
        )
        .with_remote_static(Some(node))
        .with_auth_data(b"Macaroon: 0201".to_vec())
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let st = paired(&mut rng);
        let sealed = seal_with(&st, b"pw", 10, &mut rng).unwrap();
        assert!(!sealed.contains("0201"), "auth data is encrypted");
        let back = open(&sealed, b"pw").unwrap();
        assert_eq!(back.remote_static(), st.remote_static());
        assert_eq!(
            back.local_static().public_key(),
            st.local_static().public_key()
        );
        assert_eq!(back.auth_data(), st.auth_data());
        assert_eq!(back.stream_ids(), st.stream_ids());
        assert_eq!(
            open(&sealed, b"nope").unwrap_err(),
            CredentialsError::WrongPassword
        );
    }

    #[test]
    fn tampering_and_garbage_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let sealed = seal_with(&paired(&mut rng), b"pw", 10, &mut rng).unwrap();
        let tampered = sealed.replace("\"log_n\":10", "\"log_n\":11");
        assert_eq!(
            open(&tampered, b"pw").unwrap_err(),
            CredentialsError::WrongPassword
        );
        for bad in ["", "{}", "null", "[1]", &"x".repeat(MAX_SEALED + 1)] {
            assert!(
                matches!(open(bad, b"pw"), Err(CredentialsError::Corrupt(_))),
                "{bad:.20}"
            );
        }
        let unpaired = ConnectionState::new(
            Role::Client,
            SecretKey::generate(&mut rng),
            Entropy::generate(&mut rng),
        );
        assert_eq!(
            seal(&unpaired, b"pw", &mut rng).unwrap_err(),
            CredentialsError::NoRemoteKey
        );
    }
}
