//! secp256k1 keys and the ECDH that LNC uses everywhere (Noise DH, post-pairing stream IDs).
//!
//! LNC follows lnd's `keychain` convention: the shared secret is SHA-256 of the *compressed*
//! shared point, not the raw x-coordinate that `k256::ecdh` would give. Keeping that in one
//! place means the Noise machine and the stream-ID derivation cannot disagree.

use core::fmt;

use k256::elliptic_curve::sec1::{FromSec1Point, ToSec1Point};
use k256::{AffinePoint, ProjectivePoint, Scalar, Sec1Point};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a compressed SEC1 public key on the wire.
pub const PUBLIC_KEY_LEN: usize = 33;

/// Why a key could not be used. Keys arrive from peers and from storage, so these are
/// ordinary input errors, never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes are not a 33-byte compressed point on secp256k1.
    #[error(
        "invalid public key: expected a 33-byte compressed secp256k1 point (the peer or the stored credentials are corrupt)"
    )]
    InvalidPublicKey,
    /// The bytes are not a scalar in [1, n-1].
    #[error("invalid private key: expected 32 bytes encoding a scalar in [1, n-1]")]
    InvalidSecretKey,
    /// A point operation produced the point at infinity, which has no encoding.
    #[error("point at infinity: the peer sent a degenerate key; abort the handshake")]
    PointAtInfinity,
}

/// A secp256k1 private key (static or ephemeral). Zeroized on drop, never printed.
#[derive(Clone)]
pub struct SecretKey(k256::NonZeroScalar);

impl SecretKey {
    /// Generates a fresh key from a caller-supplied CSPRNG (lnc-core never reads a global RNG,
    /// so the same code runs in wasm and tests can inject fixed keys).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        SecretKey(<k256::NonZeroScalar as k256::elliptic_curve::Generate>::generate_from_rng(rng))
    }

    /// Parses a 32-byte big-endian scalar, as stored by the node and in the test vectors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::InvalidSecretKey)?;
        let sk =
            k256::SecretKey::from_bytes(&arr.into()).map_err(|_| KeyError::InvalidSecretKey)?;
        Ok(SecretKey(sk.to_nonzero_scalar()))
    }

    /// The 32-byte big-endian scalar, for encrypted storage. The caller owns zeroizing it.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        let mut out = zeroize::Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(k256::PublicKey::from_secret_scalar(&self.0))
    }

    /// The scalar, for point arithmetic inside this crate (SPAKE2 masking).
    pub(crate) fn scalar(&self) -> Scalar {
        *self.0.as_ref()
    }

    /// LNC's ECDH: `SHA256(ser_compressed(self · remote))`.
    pub fn ecdh(&self, remote: &PublicKey) -> SharedSecret {
        let shared = (remote.0.to_projective() * self.scalar()).to_affine();
        // `remote` is a valid non-identity point and the scalar is non-zero on a prime-order
        // curve, so the product is never the identity.
        let enc = shared.to_sec1_point(true);
        SharedSecret(Sha256::digest(enc.as_bytes()).into())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        // NonZeroScalar zeroizes to one, which is still a valid scalar but not the secret.
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

/// A secp256k1 public key, always carried as 33 compressed bytes on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(k256::PublicKey);

impl PublicKey {
    /// Parses a 33-byte compressed point. Uncompressed encodings are refused: LNC peers only
    /// ever send 33 bytes, so anything else is corruption.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != PUBLIC_KEY_LEN || !(bytes[0] == 0x02 || bytes[0] == 0x03) {
            return Err(KeyError::InvalidPublicKey);
        }
        let point = Sec1Point::from_bytes(bytes).map_err(|_| KeyError::InvalidPublicKey)?;
        let pk = Option::<k256::PublicKey>::from(k256::PublicKey::from_sec1_point(&point))
            .ok_or(KeyError::InvalidPublicKey)?;
        Ok(PublicKey(pk))
    }

    /// The 33-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        let enc = self.0.as_affine().to_sec1_point(true);
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out.copy_from_slice(enc.as_bytes());
        out
    }

    pub(crate) fn to_projective(self) -> ProjectivePoint {
        self.0.to_projective()
    }

    /// Builds a public key from a point; the identity has no encoding and is refused.
    pub(crate) fn from_projective(p: ProjectivePoint) -> Result<Self, KeyError> {
        let affine: AffinePoint = p.to_affine();
        k256::PublicKey::from_affine(affine)
            .map(PublicKey)
            .map_err(|_| KeyError::PointAtInfinity)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for b in self.to_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A 32-byte ECDH output. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret(pub(crate) [u8; 32]);

impl SharedSecret {
    /// The raw secret, for key derivation.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sk(hex_str: &str) -> SecretKey {
        SecretKey::from_bytes(&hex::decode(hex_str).unwrap()).unwrap()
    }

    #[test]
    fn ecdh_is_symmetric() {
        let a = sk("0cfcef9bd5a28dc7ea30f910fdd0829ac44250c3ca5b32daa593495e612264c2");
        let b = sk("d2ba04ef28e7a35fa7a92803fdea6134257cb339156fa6f1097088a817f65d8e");
        assert_eq!(
            a.ecdh(&b.public_key()).as_bytes(),
            b.ecdh(&a.public_key()).as_bytes()
        );
    }

    #[test]
    fn public_key_round_trip_and_rejects() {
        let a = sk("0cfcef9bd5a28dc7ea30f910fdd0829ac44250c3ca5b32daa593495e612264c2");
        let pk = a.public_key();
        assert_eq!(
            hex::encode(pk.to_bytes()),
            "02fa7e5d6ff3648ba1aa7eb5c8eb560e5b33f27ab7918c20e9ea73a948db5870e2"
        );
        assert_eq!(PublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
        assert!(PublicKey::from_bytes(&[0u8; 33]).is_err());
        assert!(PublicKey::from_bytes(&pk.to_bytes()[..32]).is_err());
        let mut bad = pk.to_bytes();
        bad[0] = 0x04;
        assert!(PublicKey::from_bytes(&bad).is_err());
        assert!(SecretKey::from_bytes(&[0u8; 32]).is_err());
        assert!(SecretKey::from_bytes(&[0xffu8; 32]).is_err());
    }

    #[test]
    fn debug_redacts_secrets() {
        let a = sk("0cfcef9bd5a28dc7ea30f910fdd0829ac44250c3ca5b32daa593495e612264c2");
        assert_eq!(format!("{a:?}"), "SecretKey(<redacted>)");
        let s = a.ecdh(&a.public_key());
        assert!(!format!("{s:?}").contains("0c"));
    }
}
