//! Verifying JWTs: the checks every JWT passes before any key is looked at (length, compact
//! JWS, no `crit`), and patgate's own access tokens (introspection, revocation, the gate). User
//! JWTs from the identity provider are [`super::user_jwt`].
//!
//! Pure and panic-free: time is a parameter (`now`, unix seconds), input is parsed fallibly.

use super::claims::{is_access_token_typ, AccessTokenClaims, HeaderExtras};
use super::limits::MAX_JWT_LEN;
use super::signing_keys::SigningKeys;
use jwt_compact::{UntrustedToken, ValidationError};
use std::fmt;

/// Looks like a compact JWS (three base64url parts, at most [`MAX_JWT_LEN`] bytes): the cheap
/// check before any parsing or crypto, which tells a JWT from a reference token.
pub fn looks_like_jwt(s: &str) -> bool {
    s.len() <= MAX_JWT_LEN
        && s.split('.').count() == 3
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Checks the length and the header every JWT must pass before any key is looked at: at most
/// [`MAX_JWT_LEN`] bytes, a compact JWS, no `crit`. `None`: malformed.
pub(super) fn untrusted(jwt: &str) -> Option<UntrustedToken<'_, HeaderExtras>> {
    if jwt.len() > MAX_JWT_LEN {
        return None;
    }
    let t = UntrustedToken::<HeaderExtras>::try_from(jwt).ok()?;
    t.header().other_fields.crit.is_none().then_some(t)
}

/// Whether jwt-compact refused the claims (undecodable) rather than the signature (algorithm
/// mismatch, signature length or encoding, signature).
pub(super) fn claims_malformed(e: &ValidationError) -> bool {
    matches!(e, ValidationError::MalformedClaims(_))
}

/// Why an access token did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a compact JWS, too long, a `crit` header, or undecodable claims (`exp` missing).
    Malformed,
    /// `typ` is not `at+jwt` (e.g. a signed introspection response or an ID token).
    WrongType,
    /// No `kid`, or no published key with this `kid` and the token's `alg`.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is not in the future (no leeway: we are the issuer).
    Expired,
}

impl VerifyError {
    /// A short description for logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyError::Malformed => "malformed JWT",
            VerifyError::WrongType => "not an access token JWT",
            VerifyError::UnknownKey => "unknown signing key",
            VerifyError::BadSignature => "bad JWT signature",
            VerifyError::Expired => "JWT expired",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for VerifyError {}

impl SigningKeys {
    /// Verifies one of our access tokens: `typ` (`at+jwt` or `application/at+jwt`), a known
    /// `kid` whose key has the token's `alg`, the signature, and `exp` (required, no leeway).
    /// Returns the claims (with `iat`, 0 when absent) and `exp`. The caller checks `iss` and
    /// revocation.
    ///
    /// # Errors
    /// The first check that fails, as a [`VerifyError`].
    pub fn verify_access_token(
        &self,
        jwt: &str,
        now: i64,
    ) -> Result<(AccessTokenClaims, i64), VerifyError> {
        let t = untrusted(jwt).ok_or(VerifyError::Malformed)?;
        if !is_access_token_typ(t.header().token_type.as_deref()) {
            return Err(VerifyError::WrongType);
        }
        let kid = t
            .header()
            .key_id
            .as_deref()
            .ok_or(VerifyError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid && k.verifier.alg() == t.algorithm())
            .ok_or(VerifyError::UnknownKey)?;
        let token = key
            .verifier
            .validate::<AccessTokenClaims, _>(&t)
            .map_err(|e| {
                if claims_malformed(&e) {
                    VerifyError::Malformed
                } else {
                    VerifyError::BadSignature
                }
            })?;
        let claims = token.claims();
        let exp = claims.expiration.ok_or(VerifyError::Malformed)?.timestamp();
        if now >= exp {
            return Err(VerifyError::Expired);
        }
        let mut custom = claims.custom.clone();
        custom.iat = claims.issued_at.map_or(0, |t| t.timestamp());
        Ok((custom, exp))
    }
}
