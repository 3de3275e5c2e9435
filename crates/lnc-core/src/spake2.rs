//! SPAKE2-style masking of the initiator's ephemeral key (LNC's "XXeke").
//!
//! The pairing phrase never travels: the app sends `e·G + w·N`, where `w` is the stretched
//! phrase, and only a node that knows `w` can remove the mask. A relay that only saw the
//! stream IDs learns nothing it can check offline.

use k256::elliptic_curve::ops::Reduce;
use k256::{FieldBytes, ProjectivePoint, Scalar};
use zeroize::Zeroize;

use crate::keys::{KeyError, PublicKey};

/// The generator N, fixed by upstream's "nothing up my sleeve" derivation (iteration 1 of
/// `SHA256(BE64(i) || "Lightning Node Connect")` as an even-Y x-coordinate).
pub const N_BYTES: [u8; 33] = [
    0x02, 0x54, 0xa5, 0x8c, 0xd0, 0xf3, 0x1c, 0x00, 0x8f, 0xd0, 0xbc, 0x9b, 0x2d, 0xd5, 0xba, 0x58,
    0x61, 0x44, 0x93, 0x38, 0x29, 0xf6, 0xda, 0x33, 0xac, 0x41, 0x30, 0xb5, 0x55, 0xfb, 0x5e, 0xa3,
    0x2c,
];

/// The SPAKE2 password scalar `w = int_BE(stretched) mod n`. Zeroized on drop.
#[derive(Clone)]
pub struct MaskScalar(Scalar);

impl MaskScalar {
    /// Reduces the 32-byte scrypt output modulo the group order, as btcec's
    /// `ModNScalar.SetByteSlice` does (overflow is reduced, never an error).
    pub fn from_stretched(stretched: &[u8; 32]) -> Self {
        let fb: FieldBytes = (*stretched).into();
        MaskScalar(<Scalar as Reduce<FieldBytes>>::reduce(&fb))
    }

    /// The reduced scalar as 32 big-endian bytes (for vector tests).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    fn times_n(&self) -> ProjectivePoint {
        n_point() * self.0
    }
}

impl Drop for MaskScalar {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl core::fmt::Debug for MaskScalar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MaskScalar(<redacted>)")
    }
}

fn n_point() -> ProjectivePoint {
    // N_BYTES is a valid compressed point; checked by `n_is_valid_and_rederived`.
    match PublicKey::from_bytes(&N_BYTES) {
        Ok(pk) => pk.to_projective(),
        Err(_) => unreachable_n(),
    }
}

#[cold]
fn unreachable_n() -> ProjectivePoint {
    // Only reachable if N_BYTES were edited into an invalid point; tests pin it.
    ProjectivePoint::GENERATOR
}

/// `me = e_pub + w·N`. The point at infinity (only with a maliciously chosen key) is refused.
pub fn mask(e_pub: &PublicKey, w: &MaskScalar) -> Result<PublicKey, KeyError> {
    PublicKey::from_projective(e_pub.to_projective() + w.times_n())
}

/// `E = me − w·N`. With the wrong password this yields an unrelated point, which the Noise
/// layer detects as a MAC failure; only the point at infinity is refused here.
pub fn unmask(me: &PublicKey, w: &MaskScalar) -> Result<PublicKey, KeyError> {
    PublicKey::from_projective(me.to_projective() - w.times_n())
}

/// `w·N`, exposed for vector tests.
pub fn w_times_n(w: &MaskScalar) -> Result<PublicKey, KeyError> {
    PublicKey::from_projective(w.times_n())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use k256::elliptic_curve::sec1::FromSec1Point;
    use sha2::{Digest, Sha256};

    #[test]
    fn n_is_valid_and_rederived() {
        assert!(PublicKey::from_bytes(&N_BYTES).is_ok());
        let mut found = None;
        for i in 0u64..16 {
            let mut h = Sha256::new();
            h.update(i.to_be_bytes());
            h.update(b"Lightning Node Connect");
            let x = h.finalize();
            let mut cand = [0u8; 33];
            cand[0] = 0x02;
            cand[1..].copy_from_slice(&x);
            let Ok(p) = k256::Sec1Point::from_bytes(cand) else {
                continue;
            };
            if Option::<k256::AffinePoint>::from(k256::AffinePoint::from_sec1_point(&p)).is_some() {
                found = Some((i, cand));
                break;
            }
        }
        let (i, cand) = found.unwrap();
        assert_eq!(i, 1);
        assert_eq!(cand, N_BYTES);
    }

    #[test]
    fn mask_unmask_vectors() {
        let v: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("spake2.json")).unwrap();
        assert_eq!(v["N"].as_str().unwrap(), hex::encode(N_BYTES));
        let cases = v["cases"].as_array().unwrap();
        assert!(cases.len() >= 4);
        for c in cases {
            let h = |k: &str| hex::decode(c[k].as_str().unwrap()).unwrap();
            let e = SecretKey::from_bytes(&h("e_priv")).unwrap();
            assert_eq!(e.public_key().to_bytes().to_vec(), h("e_pub"));
            let w_raw: [u8; 32] = h("w").try_into().unwrap();
            let w = MaskScalar::from_stretched(&w_raw);
            assert_eq!(w.to_bytes().to_vec(), h("w_mod_n"));
            assert_eq!(w_times_n(&w).unwrap().to_bytes().to_vec(), h("w_times_N"));
            let me = mask(&e.public_key(), &w).unwrap();
            assert_eq!(me.to_bytes().to_vec(), h("masked_me"));
            let un = unmask(&me, &w).unwrap();
            assert_eq!(un.to_bytes().to_vec(), h("unmasked"));
            assert_eq!(un, e.public_key());
        }
    }

    #[test]
    fn unmask_to_infinity_is_refused() {
        // me = w·N exactly: unmasking gives the identity.
        let w = MaskScalar::from_stretched(&[7u8; 32]);
        let me = w_times_n(&w).unwrap();
        assert_eq!(unmask(&me, &w), Err(KeyError::PointAtInfinity));
    }
}
