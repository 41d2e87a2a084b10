//! PKCE (RFC 7636) with the `S256` method only: `plain` and a missing method are refused (OAuth
//! 2.1 and the MCP authorization specification require `S256`; a missing method would mean
//! `plain`, RFC 7636 section 4.3).
//!
//! The challenge is stored as its 32 decoded bytes (persisted as unpadded base64url, the form
//! it arrived in); the verifier is checked against it in constant time.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt;
use subtle::ConstantTimeEq;

/// The only `code_challenge_method` accepted.
pub const S256: &str = "S256";

/// RFC 7636 section 4.1: a verifier is 43 to 128 characters.
pub const MIN_VERIFIER_LEN: usize = 43;
pub const MAX_VERIFIER_LEN: usize = 128;

/// Why PKCE parameters were refused (all `invalid_request` at the authorization endpoint,
/// RFC 7636 section 4.4.1; a malformed verifier is `invalid_request` at the token endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceError {
    MissingChallenge,
    MissingMethod,
    PlainRefused,
    UnknownMethod,
    /// Not 43 base64url characters encoding 32 bytes (what `S256` produces).
    MalformedChallenge,
    MalformedVerifier,
}

impl fmt::Display for PkceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PkceError::MissingChallenge => "code_challenge is required (PKCE with S256)",
            PkceError::MissingMethod => "code_challenge_method is required and must be S256",
            PkceError::PlainRefused => "code_challenge_method plain is not supported: use S256",
            PkceError::UnknownMethod => "code_challenge_method must be S256",
            PkceError::MalformedChallenge => {
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)"
            }
            PkceError::MalformedVerifier => {
                "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~"
            }
        })
    }
}

/// An `S256` code challenge: the SHA-256 of the client's verifier.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CodeChallenge([u8; 32]);

impl CodeChallenge {
    /// From the authorization request's `code_challenge` and `code_challenge_method` (absent =
    /// `None`). The challenge is checked first (RFC 7636 4.4.1: "code challenge required").
    ///
    /// # Errors
    /// The [`PkceError`] that applies.
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, PkceError> {
        let challenge = challenge.ok_or(PkceError::MissingChallenge)?;
        match method {
            None => return Err(PkceError::MissingMethod),
            Some(S256) => {}
            Some("plain") => return Err(PkceError::PlainRefused),
            Some(_) => return Err(PkceError::UnknownMethod),
        }
        Self::from_stored(challenge).ok_or(PkceError::MalformedChallenge)
    }

    /// The challenge as stored (and as sent): unpadded base64url of 32 bytes. Only the
    /// canonical encoding is accepted (no padding, no stray bits in the last character).
    pub fn from_stored(b64: &str) -> Option<Self> {
        if b64.len() != 43 {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .ok()?;
        bytes.try_into().ok().map(CodeChallenge)
    }

    /// The persisted form (D1 `authorization_codes.code_challenge`). Never change it.
    pub fn to_stored(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The challenge of `verifier` (what a client computes).
    pub fn of(verifier: &CodeVerifier<'_>) -> Self {
        CodeChallenge(Sha256::digest(verifier.0.as_bytes()).into())
    }

    /// RFC 7636 section 4.6, in constant time.
    pub fn verify(&self, verifier: &CodeVerifier<'_>) -> bool {
        bool::from(Self::of(verifier).0.ct_eq(&self.0))
    }
}

impl fmt::Debug for CodeChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeChallenge({})", self.to_stored())
    }
}

/// A `code_verifier` of valid grammar (RFC 7636 section 4.1). `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVerifier<'a>(Cow<'a, str>);

impl<'a> CodeVerifier<'a> {
    /// # Errors
    /// [`PkceError::MalformedVerifier`] outside 43-128 characters of the unreserved set.
    pub fn parse(s: impl Into<Cow<'a, str>>) -> Result<Self, PkceError> {
        let s = s.into();
        let ok = (MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if ok {
            Ok(CodeVerifier(s))
        } else {
            Err(PkceError::MalformedVerifier)
        }
    }
}

impl fmt::Debug for CodeVerifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeVerifier([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        let c = CodeChallenge::parse(Some(RFC_CHALLENGE), Some("S256")).expect("ok");
        let v = CodeVerifier::parse(RFC_VERIFIER).expect("ok");
        assert!(c.verify(&v));
        assert_eq!(CodeChallenge::of(&v), c);
        assert_eq!(c.to_stored(), RFC_CHALLENGE);
        let changed = RFC_VERIFIER.replace('d', "e");
        let other = CodeVerifier::parse(changed.as_str()).expect("ok");
        assert!(!c.verify(&other));
    }

    #[test]
    fn only_s256_with_a_challenge() {
        let c = Some(RFC_CHALLENGE);
        assert_eq!(
            CodeChallenge::parse(None, Some("S256")),
            Err(PkceError::MissingChallenge)
        );
        assert_eq!(
            CodeChallenge::parse(None, None),
            Err(PkceError::MissingChallenge)
        );
        assert_eq!(CodeChallenge::parse(c, None), Err(PkceError::MissingMethod));
        assert_eq!(
            CodeChallenge::parse(c, Some("plain")),
            Err(PkceError::PlainRefused)
        );
        for m in ["s256", "S256 ", "SHA256", "S512", ""] {
            assert_eq!(
                CodeChallenge::parse(c, Some(m)),
                Err(PkceError::UnknownMethod),
                "{m:?}"
            );
        }
        // a plain-method client sends its verifier as the challenge: not 32 bytes of base64url
        assert_eq!(
            CodeChallenge::parse(Some(&"a".repeat(60)), Some("S256")),
            Err(PkceError::MalformedChallenge)
        );
    }

    #[test]
    fn malformed_challenges_are_refused() {
        let last_bits = format!("{}d", &RFC_CHALLENGE[..42]); // 'd' sets bits a 32-byte value lacks
        for s in [
            &RFC_CHALLENGE[..42],
            &format!("{RFC_CHALLENGE}="),
            &format!("{RFC_CHALLENGE}A"),
            &RFC_CHALLENGE.replace('-', "+"),
            &RFC_CHALLENGE.replace('E', "/"),
            &last_bits,
            &format!("{}a", "é".repeat(21)),
        ] {
            assert_eq!(CodeChallenge::from_stored(s), None, "{s:?}");
            assert_eq!(
                CodeChallenge::parse(Some(s), Some(S256)),
                Err(PkceError::MalformedChallenge),
                "{s:?}"
            );
        }
    }

    #[test]
    fn verifier_grammar() {
        let ok = [
            "a".repeat(43),
            "Z".repeat(128),
            format!("{}-._~", "0".repeat(40)),
        ];
        for s in &ok {
            assert!(CodeVerifier::parse(s.as_str()).is_ok(), "{s}");
        }
        let bad = [
            "a".repeat(42),
            "a".repeat(129),
            format!("{}+", "a".repeat(42)),
            format!("{}=", "a".repeat(42)),
            format!("{} ", "a".repeat(42)),
            format!("{}é", "a".repeat(41)),
            String::new(),
        ];
        for s in &bad {
            assert_eq!(
                CodeVerifier::parse(s.as_str()),
                Err(PkceError::MalformedVerifier),
                "{s:?}"
            );
        }
        let v = CodeVerifier::parse(RFC_VERIFIER).expect("ok");
        assert!(!format!("{v:?}").contains("dBjft"));
    }

    proptest::proptest! {
        #[test]
        fn a_verifier_matches_its_own_challenge_only(v in "[A-Za-z0-9._~-]{43,128}", w in "[A-Za-z0-9._~-]{43,128}") {
            let v = CodeVerifier::parse(v.as_str()).expect("grammar");
            let w2 = CodeVerifier::parse(w.as_str()).expect("grammar");
            let c = CodeChallenge::of(&v);
            let stored = CodeChallenge::from_stored(&c.to_stored()).expect("round trip");
            proptest::prop_assert!(stored.verify(&v));
            proptest::prop_assert_eq!(stored.verify(&w2), CodeChallenge::of(&w2) == c);
        }

        #[test]
        fn parsing_never_panics(c in "\\PC{0,60}", m in "\\PC{0,8}", v in "\\PC{0,140}") {
            let _ = CodeChallenge::parse(Some(&c), Some(&m));
            let _ = CodeVerifier::parse(v.as_str());
        }
    }
}
