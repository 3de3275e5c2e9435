//! The scrypt stretch that turns the pairing entropy into the SPAKE2 password.
//!
//! The app proves knowledge of the phrase by masking its first ephemeral key with
//! `w = scrypt(E) mod n`. scrypt makes each guess cost ~64 MiB and ~0.2 s, which matters
//! because a relay that saw act 1 could otherwise test guesses offline against the
//! mask; with 110 bits of entropy this is defence in depth.

use zeroize::Zeroizing;

use super::phrase::Entropy;
use crate::spake2::MaskScalar;

/// log2 of scrypt's N (N = 65536). Fixed by Go's `stretchPassphrase`; unchanged in every
/// handshake version.
pub const SCRYPT_LOG_N: u8 = 16;
/// scrypt block size r.
pub const SCRYPT_R: u32 = 8;
/// scrypt parallelism p.
pub const SCRYPT_P: u32 = 1;
/// Length of the stretched password.
pub const STRETCHED_LEN: usize = 32;

/// `scrypt(password = E, salt = E, N = 2^16, r = 8, p = 1, 32 bytes)`, zeroized on drop.
///
/// Costs ~64 MiB of memory and a few hundred milliseconds: only the XX (pairing) handshake
/// needs it, and a driver should compute it once per connection attempt, not per act.
pub fn stretch(entropy: &Entropy) -> Zeroizing<[u8; STRETCHED_LEN]> {
    let mut out = Zeroizing::new([0u8; STRETCHED_LEN]);
    // Both calls can only fail for invalid constants (parameters out of range, empty
    // output), which the vector tests pin; there is no input-dependent failure.
    let params = match scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P) {
        Ok(p) => p,
        Err(_) => unreachable!("scrypt parameters are compile-time constants"),
    };
    let e = entropy.as_bytes();
    if scrypt::scrypt(e, e, &params, out.as_mut()).is_err() {
        unreachable!("scrypt output length is a non-zero constant");
    }
    out
}

/// The SPAKE2 password scalar `w = int_BE(stretch(E)) mod n` for the XX handshake.
pub fn mask_scalar(entropy: &Entropy) -> MaskScalar {
    MaskScalar::from_stretched(&stretch(entropy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::PairingPhrase;

    #[test]
    fn pairing_phrase_vectors() {
        let v: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("pairing_phrase.json")).unwrap();
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 5);
        for c in cases {
            let p = PairingPhrase::parse(c["phrase"].as_str().unwrap()).unwrap();
            assert_eq!(
                hex::encode(*stretch(p.entropy())),
                c["stretched_password"].as_str().unwrap(),
                "{}",
                c["description"]
            );
        }
    }

    #[test]
    fn mask_scalar_matches_spake2_vectors() {
        // spake2.json's `w` values are the stretched passwords of phrase cases 1-3.
        let phrases: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("pairing_phrase.json")).unwrap();
        let spake: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("spake2.json")).unwrap();
        let mut matched = 0;
        for c in phrases["cases"].as_array().unwrap() {
            let p = PairingPhrase::parse(c["phrase"].as_str().unwrap()).unwrap();
            let w = c["stretched_password"].as_str().unwrap();
            for sc in spake["cases"].as_array().unwrap() {
                if sc["w"].as_str() == Some(w) {
                    assert_eq!(
                        hex::encode(mask_scalar(p.entropy()).to_bytes()),
                        sc["w_mod_n"].as_str().unwrap()
                    );
                    matched += 1;
                }
            }
        }
        assert_eq!(matched, 3);
    }

    #[test]
    fn xx_v2_vector_and_mask_scalar() {
        let v: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("xx_handshake_v2.json")).unwrap();
        let p = PairingPhrase::parse(v["pairing_phrase"].as_str().unwrap()).unwrap();
        let s = stretch(p.entropy());
        assert_eq!(hex::encode(*s), v["stretched_password"].as_str().unwrap());
        // The mask scalar agrees with the SPAKE2 module's reduction of the same bytes.
        assert_eq!(
            mask_scalar(p.entropy()).to_bytes(),
            MaskScalar::from_stretched(&s).to_bytes()
        );
    }
}
