//! Client and API-resource secrets: redacted in `Debug`, stored only as SHA-256, compared in
//! constant time.
//!
//! Generated secrets carry 256 random bits, so a fast hash is enough (as for tokens: there is
//! nothing to brute-force). Operators who set their own secrets must make them long and random.

use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// A secret presented by a client. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(s: impl Into<String>) -> Self {
        ClientSecret(s.into())
    }

    /// A new random secret (256 bits, base62), shown once to the operator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut s = String::with_capacity(43);
        crate::token::random_base62(43, &mut s)?;
        Ok(ClientSecret(s))
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([REDACTED])")
    }
}

/// SHA-256 of a secret, as stored in D1 (lowercase hex).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    /// The hash of a secret presented as text (borrowed from a request: no copy of it is made).
    pub fn of(secret: &str) -> Self {
        SecretHash(Sha256::digest(secret.as_bytes()).into())
    }

    /// Constant-time comparison with the hash of a presented secret.
    pub fn matches(&self, presented: &SecretHash) -> bool {
        bool::from(self.0.ct_eq(&presented.0))
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        unhex32(s).map(SecretHash)
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Constant-time comparison of a presented secret against this hash.
    pub fn verify(&self, presented: &ClientSecret) -> bool {
        self.matches(&presented.hash())
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Constant-time equality for secrets of any length (the length itself is not hidden).
pub fn ct_eq_str(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Hex encoding, now in [`crate::encoding`] (kept here for callers).
pub use crate::encoding::{hex, unhex32};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_only_the_same_secret() {
        let s = ClientSecret::new("demo-api-secret");
        let h = s.hash();
        // pinned: the seed file stores this digest for the demo API resource
        assert_eq!(
            h.to_hex(),
            "0007b27b74dcbb64b6e9ece206e87d11ba77afa1f0f5491c32a930b552ffca04"
        );
        assert!(h.verify(&s));
        assert!(!h.verify(&ClientSecret::new("demo-api-secreT")));
        assert!(!h.verify(&ClientSecret::new("")));
    }

    #[test]
    fn debug_is_redacted() {
        let s = ClientSecret::new("hunter2-very-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", s.hash()).contains(&s.hash().to_hex()[..8]));
    }

    #[test]
    fn generated_secrets_are_long_and_distinct() {
        let a = ClientSecret::generate().expect("rng");
        let b = ClientSecret::generate().expect("rng");
        assert_eq!(a.expose_secret().len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = ClientSecret::new("x").hash();
        assert_eq!(SecretHash::from_hex(&h.to_hex()).map(|x| x.0), Some(h.0));
        assert!(unhex32("00").is_none());
        assert!(unhex32(&"g".repeat(64)).is_none());
        assert!(unhex32(&"é".repeat(32)).is_none());
    }

    #[test]
    fn ct_eq_str_works() {
        assert!(ct_eq_str("abc", "abc"));
        assert!(!ct_eq_str("abc", "abd"));
        assert!(!ct_eq_str("abc", "abcd"));
    }
}
