//! The Noise symmetric state (`ck`, `h`, handshake cipher) and the shared AEAD/HKDF helpers.
//!
//! LNC's machine is lnd's brontide, not textbook Noise: right after `InitializeSymmetric`
//! the cipher is *active* with an all-zero key, so XX act 1 carries a 16-byte tag made with
//! `k = 0^32` (spec §5.2). Everything else is standard: `MixHash`, `MixKey` via
//! HKDF-SHA256(salt = ck), `EncryptAndHash` with `ad = h`.
//!
//! Go's handshake cipher also carries the transport's rotate-at-1000 check; a handshake
//! uses at most three nonces per key, so it is left out here.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of every AEAD tag (Poly1305).
pub const TAG_LEN: usize = 16;

/// The 12-byte AEAD nonce: 4 zero bytes then the 64-bit counter little-endian (brontide /
/// Noise ChaChaPoly; Go's `x/crypto` peers expect exactly this layout).
#[inline]
pub(crate) fn nonce(n: u64) -> Nonce {
    let mut b = [0u8; 12];
    b[4..].copy_from_slice(&n.to_le_bytes());
    Nonce::from(b)
}

/// Builds the AEAD for a key. With chacha20poly1305's `zeroize` feature the key copy inside
/// the cipher is wiped when it is dropped.
#[inline]
pub(crate) fn aead(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(&Key::from(*key))
}

/// `HKDF-SHA256(salt, ikm, info = "")`, first 64 bytes split in two. Used by `MixKey`,
/// `Split` and transport key rotation, which all read the output the same way.
pub(crate) fn hkdf2(salt: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut okm = [0u8; 64];
    // 64 bytes is far below HKDF-SHA256's 255·32 limit, so expand cannot fail.
    if hk.expand(&[], &mut okm).is_err() {
        okm = [0u8; 64];
    }
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    okm.zeroize();
    (a, b)
}

/// The handshake's symmetric state. Every field is secret or transcript-bound; all are wiped
/// on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SymmetricState {
    ck: [u8; 32],
    h: [u8; 32],
    k: [u8; 32],
    n: u64,
}

/// Why a handshake decryption failed; mapped to a user-facing error by the caller, who
/// knows which act and field it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecryptFailed;

impl SymmetricState {
    /// `InitializeSymmetric(name)` then `MixHash(prologue)` — both patterns start this way.
    pub(crate) fn new(protocol_name: &[u8], prologue: &[u8]) -> Self {
        let h: [u8; 32] = Sha256::digest(protocol_name).into();
        let mut s = SymmetricState {
            ck: h,
            h,
            k: [0u8; 32],
            n: 0,
        };
        s.mix_hash(prologue);
        s
    }

    /// `h = SHA256(h || data)`.
    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        let mut d = Sha256::new();
        d.update(self.h);
        d.update(data);
        self.h = d.finalize().into();
    }

    /// `(ck, k) = HKDF(ck, ikm)`, nonce reset.
    pub(crate) fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.k = k;
        self.n = 0;
    }

    /// Appends `AEAD(k, n, ad = h, pt)` to `out` and mixes the ciphertext into `h`.
    pub(crate) fn encrypt_and_hash(&mut self, pt: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(pt);
        let tag = aead(&self.k)
            .encrypt_inout_detached(&nonce(self.n), &self.h, (&mut out[start..]).into())
            // ChaCha20Poly1305 only fails for messages over 256 GiB; handshake payloads are
            // capped far below that by the callers.
            .unwrap_or_default();
        out.extend_from_slice(&tag);
        self.n = self.n.wrapping_add(1);
        self.mix_hash(&out[start..]);
    }

    /// Opens `ct` (ciphertext ‖ tag) with `ad = h`; on success mixes `ct` into `h` and
    /// returns the plaintext. The nonce advances even on failure, as in Go (the handshake is
    /// aborted anyway).
    pub(crate) fn decrypt_and_hash(&mut self, ct: &[u8]) -> Result<Vec<u8>, DecryptFailed> {
        let n = self.n;
        self.n = self.n.wrapping_add(1);
        let Some(body_len) = ct.len().checked_sub(TAG_LEN) else {
            return Err(DecryptFailed);
        };
        let (body, tag) = ct.split_at(body_len);
        let tag = Tag::try_from(tag).map_err(|_| DecryptFailed)?;
        let mut pt = body.to_vec();
        aead(&self.k)
            .decrypt_inout_detached(&nonce(n), &self.h, pt.as_mut_slice().into(), &tag)
            .map_err(|_| {
                pt.zeroize();
                DecryptFailed
            })?;
        self.mix_hash(ct);
        Ok(pt)
    }

    /// `Split()`: `(k1, k2) = HKDF(ck, "")`; also returns `ck`, the transport rotation salt.
    pub(crate) fn split(&self) -> ([u8; 32], [u8; 32], [u8; 32]) {
        let (k1, k2) = hkdf2(&self.ck, &[]);
        (k1, k2, self.ck)
    }

    pub(crate) fn h(&self) -> [u8; 32] {
        self.h
    }

    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn ck(&self) -> [u8; 32] {
        self.ck
    }
}

impl core::fmt::Debug for SymmetricState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SymmetricState(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_layout_is_four_zero_bytes_then_le64() {
        let n = nonce(0x0102_0304_0506_0708);
        assert_eq!(n.as_slice(), &[0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn encrypt_then_decrypt_and_hash_agree() {
        let mut a = SymmetricState::new(b"Noise_test", b"p");
        let mut b = a.clone();
        a.mix_key(b"ikm");
        b.mix_key(b"ikm");
        let mut out = Vec::new();
        a.encrypt_and_hash(b"hello", &mut out);
        assert_eq!(out.len(), 5 + TAG_LEN);
        assert_eq!(b.decrypt_and_hash(&out).unwrap(), b"hello");
        assert_eq!(a.h(), b.h());
        // Tampering fails and does not mix.
        let h_before = b.h();
        out[0] ^= 1;
        assert_eq!(b.decrypt_and_hash(&out), Err(DecryptFailed));
        assert_eq!(b.h(), h_before);
        assert_eq!(b.decrypt_and_hash(&out[..3]), Err(DecryptFailed));
    }

    #[test]
    fn debug_is_redacted() {
        let s = SymmetricState::new(b"x", b"y");
        assert_eq!(format!("{s:?}"), "SymmetricState(<redacted>)");
    }
}
