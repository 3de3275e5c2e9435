//! Optional bearer-token authentication of mailbox creation and deletion.
//!
//! LNC's design reserves an auth option on `CipherBoxAuth`, but the Go relay's
//! check is an empty stub, so anyone can create (fill memory with) mailboxes or
//! delete someone else's. With a token file configured, NewCipherBox and
//! DelCipherBox need `authorization: Bearer <token>`; reading and writing still
//! need only the (unguessable) stream id, so unmodified clients keep working.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::error::RelayError;

/// The allowed tokens, stored as SHA-256 digests (lookups do not compare
/// secrets byte by byte, and the tokens themselves are not kept).
#[derive(Default)]
pub struct Auth {
    tokens: Option<HashMap<[u8; 32], u32>>,
}

impl core::fmt::Debug for Auth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Auth({} tokens)",
            self.tokens.as_ref().map_or(0, HashMap::len)
        )
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// `None` = creation is open (Go-relay compatible).
    pub fn new(tokens: Option<&[String]>) -> Self {
        Self {
            tokens: tokens.map(|t| {
                t.iter()
                    .enumerate()
                    .map(|(i, tok)| (digest(tok), u32::try_from(i).unwrap_or(u32::MAX)))
                    .collect()
            }),
        }
    }

    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        self.tokens.is_some()
    }

    /// Checks the `authorization` value (gRPC metadata or HTTP header).
    /// Returns the token's index (who created a mailbox), or `None` when auth
    /// is off.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<Option<u32>, RelayError> {
        let Some(tokens) = &self.tokens else {
            return Ok(None);
        };
        let value = authorization.ok_or(RelayError::Unauthenticated(
            "missing 'authorization: Bearer <token>' metadata",
        ))?;
        let value = core::str::from_utf8(value)
            .map_err(|_| RelayError::Unauthenticated("authorization is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(RelayError::Unauthenticated(
                "authorization must be 'Bearer <token>'",
            ))?;
        tokens
            .get(&digest(token.trim()))
            .copied()
            .map(Some)
            .ok_or(RelayError::Unauthenticated("unknown token"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default() {
        assert_eq!(Auth::new(None).check(None), Ok(None));
    }

    #[test]
    fn checks_bearer() {
        let a = Auth::new(Some(&["t1".to_owned(), "t2".to_owned()]));
        assert_eq!(a.check(Some(b"Bearer t2")), Ok(Some(1)));
        assert!(a.check(Some(b"Bearer nope")).is_err());
        assert!(a.check(Some(b"t1")).is_err());
        assert!(a.check(None).is_err());
        assert!(a.check(Some(&[0xff])).is_err());
    }
}
