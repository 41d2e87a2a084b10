//! User JWTs: patgate does not log users in: it trusts a JWT from the organisation's identity
//! provider (`Authorization: Bearer <jwt>`, or Cloudflare Access's `Cf-Access-Jwt-Assertion`)
//! and verifies it at the edge with jwt-compact. Keys: an HS256 shared secret, and/or RS256,
//! ES256 and `EdDSA` public keys from an inline JWKS or a JWKS URL (fetched and cached by the
//! runtime layer). The user is the `sub` claim.
//!
//! Everything here is pure and panic-free: time is a parameter (`now`, unix seconds), input is
//! parsed fallibly, and time arithmetic saturates instead of overflowing.

use super::claims::{may_be_identity_typ, IdentityClaims};
use super::jwks::Jwks;
use super::keys::HmacSecret;
use super::limits::{LEEWAY_SECS, MAX_SUBJECT_CHARS};
use super::verify::{claims_malformed, untrusted};
use jwt_compact::{
    alg::{Hs256, Hs256Key},
    AlgorithmExt as _, Claims, ValidationError,
};
use serde_json::Value;
use std::fmt;

/// How users are authenticated (README "Configuration").
#[derive(Debug, Clone)]
pub struct UserAuthConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Required member of `aud`.
    pub audience: String,
    /// Enables HS256 with this shared secret.
    pub hs256_secret: Option<HmacSecret>,
    /// Inline public keys.
    pub jwks: Option<Jwks>,
    /// Where the runtime layer fetches (and caches) more public keys.
    pub jwks_url: Option<String>,
}

impl UserAuthConfig {
    /// Builds the configuration from the Worker's vars and secrets.
    ///
    /// An empty issuer, audience or HS256 secret, or an inline JWKS that is not a JWKS, is a
    /// configuration error (the message names the variable).
    ///
    /// # Errors
    /// A message naming the offending variable.
    pub fn from_parts(
        issuer: String,
        audience: String,
        hs256_secret: Option<String>,
        jwks_json: Option<String>,
        jwks_url: Option<String>,
    ) -> Result<Self, String> {
        if issuer.is_empty() {
            return Err("USER_JWT_ISSUER is empty".into());
        }
        if audience.is_empty() {
            return Err("USER_JWT_AUDIENCE is empty".into());
        }
        let hs256_secret = hs256_secret.map(HmacSecret::new);
        if hs256_secret.as_ref().is_some_and(HmacSecret::is_empty) {
            return Err("USER_JWT_HS256_SECRET is empty".into());
        }
        let jwks = jwks_json
            .map(|j| Jwks::parse(&j).map_err(|e| format!("USER_JWKS: {e}")))
            .transpose()?;
        Ok(UserAuthConfig {
            issuer,
            audience,
            hs256_secret,
            jwks,
            jwks_url,
        })
    }
}

/// Why a user JWT was refused (logged; the client sees only "invalid" or "expired").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Not a compact JWS, too long, undecodable, a `crit` header, or claims of the wrong types
    /// (including a missing `exp`).
    Malformed,
    /// `alg` is not HS256 (when configured), RS256, ES256 or `EdDSA`; `none` included.
    UnsupportedAlgorithm,
    /// No configured key has the header's `kid` (and the token's `alg`), or no key of that `alg`.
    UnknownKey,
    /// No candidate key verifies the signature.
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iss` is missing or not the configured issuer.
    WrongIssuer,
    /// `aud` is missing or does not contain the configured audience.
    WrongAudience,
    /// `sub` is missing, not a string, empty, blank, with a control character, or longer than
    /// [`MAX_SUBJECT_CHARS`].
    MissingSubject,
    /// The `typ` header marks another kind of token (an OAuth access token `at+jwt`, a signed
    /// introspection response, any other explicitly typed `+jwt`, or one of patgate's own
    /// types): it is not a user identity, whoever signed it (RFC 8725 section 3.11).
    WrongType,
}

impl AuthFailure {
    /// Whether the token was valid but expired (clients may refresh and retry).
    #[must_use]
    pub fn is_expired(self) -> bool {
        self == AuthFailure::Expired
    }

    /// A short description for logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Malformed => "malformed JWT",
            AuthFailure::UnsupportedAlgorithm => "unsupported JWT algorithm",
            AuthFailure::UnknownKey => "no key matches the JWT",
            AuthFailure::BadSignature => "bad JWT signature",
            AuthFailure::Expired => "JWT expired",
            AuthFailure::NotYetValid => "JWT not yet valid",
            AuthFailure::WrongIssuer => "wrong JWT issuer",
            AuthFailure::WrongAudience => "wrong JWT audience",
            AuthFailure::MissingSubject => "JWT without a usable sub",
            AuthFailure::WrongType => "JWT typ is not a user identity token",
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for AuthFailure {}

/// Verifies a user JWT and returns its `sub`.
///
/// `fetched` is the JWKS fetched from `cfg.jwks_url` by the runtime layer; its keys are used in
/// addition to the inline ones. `now` is the current time in unix seconds.
///
/// Checks, in order: length, structure and header, algorithm, key (by `kid` when the header has
/// one, else every key of the token's `alg`), signature, `exp` (required) and `nbf` (optional)
/// with [`LEEWAY_SECS`] of leeway, `iss`, `aud`, `sub`.
///
/// # Errors
/// The first check that fails, as an [`AuthFailure`].
pub fn verify_user_jwt(
    cfg: &UserAuthConfig,
    fetched: Option<&Jwks>,
    jwt: &str,
    now: i64,
) -> Result<String, AuthFailure> {
    let untrusted = untrusted(jwt).ok_or(AuthFailure::Malformed)?;
    if let Some(typ) = untrusted.header().token_type.as_deref() {
        if !may_be_identity_typ(typ) {
            return Err(AuthFailure::WrongType);
        }
    }
    let map_validation = |e: &ValidationError| {
        if claims_malformed(e) {
            AuthFailure::Malformed
        } else {
            AuthFailure::BadSignature
        }
    };
    let alg = untrusted.algorithm();
    let token = match alg {
        "HS256" => {
            let secret = cfg
                .hs256_secret
                .as_ref()
                .filter(|s| !s.is_empty())
                .ok_or(AuthFailure::UnsupportedAlgorithm)?;
            Hs256
                .validator::<IdentityClaims>(&Hs256Key::new(secret.expose()))
                .validate(&untrusted)
                .map_err(|e| map_validation(&e))?
        }
        "RS256" | "ES256" | "EdDSA" => {
            let kid = untrusted.header().key_id.as_deref();
            let all = || cfg.jwks.iter().chain(fetched).flat_map(|j| j.keys.iter());
            if let Some(kid) = kid {
                if !all().any(|k| k.kid.as_deref() == Some(kid)) {
                    return Err(AuthFailure::UnknownKey);
                }
            }
            let mut candidates = all()
                .filter(|k| k.key.alg() == alg && (kid.is_none() || k.kid.as_deref() == kid))
                .peekable();
            if candidates.peek().is_none() {
                return Err(AuthFailure::UnknownKey);
            }
            let mut last = AuthFailure::BadSignature;
            let mut verified = None;
            for k in candidates {
                match k.key.validate(&untrusted).map_err(|e| map_validation(&e)) {
                    Ok(t) => {
                        verified = Some(t);
                        break;
                    }
                    // Malformed claims fail the same way with every key.
                    Err(AuthFailure::Malformed) => return Err(AuthFailure::Malformed),
                    Err(e) => last = e,
                }
            }
            verified.ok_or(last)?
        }
        _ => return Err(AuthFailure::UnsupportedAlgorithm),
    };
    check_claims(cfg, token.claims(), now)
}

/// The registered time claims and patgate's own claim checks, on a signature-verified token.
///
/// Time checks are done here in saturating `i64` arithmetic rather than with jwt-compact's
/// `validate_maturity`, which subtracts the leeway from `nbf` with a panicking operator.
fn check_claims(
    cfg: &UserAuthConfig,
    claims: &Claims<IdentityClaims>,
    now: i64,
) -> Result<String, AuthFailure> {
    let exp = claims.expiration.ok_or(AuthFailure::Malformed)?.timestamp();
    // RFC 7519 4.1.4: valid only before `exp`.
    if now >= exp.saturating_add(LEEWAY_SECS) {
        return Err(AuthFailure::Expired);
    }
    if let Some(nbf) = claims.not_before {
        // RFC 7519 4.1.5: valid from `nbf` on.
        if now < nbf.timestamp().saturating_sub(LEEWAY_SECS) {
            return Err(AuthFailure::NotYetValid);
        }
    }
    let c = &claims.custom;
    if c.iss.as_ref().and_then(Value::as_str) != Some(cfg.issuer.as_str()) {
        return Err(AuthFailure::WrongIssuer);
    }
    let aud_ok = match &c.aud {
        Some(Value::String(a)) => *a == cfg.audience,
        Some(Value::Array(list)) => {
            list.iter().all(Value::is_string)
                && list
                    .iter()
                    .any(|a| a.as_str() == Some(cfg.audience.as_str()))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(AuthFailure::WrongAudience);
    }
    match c.sub.as_ref().and_then(Value::as_str) {
        Some(s)
            if !s.trim().is_empty()
                && !s.chars().any(char::is_control)
                && s.chars().count() <= MAX_SUBJECT_CHARS =>
        {
            Ok(s.to_owned())
        }
        _ => Err(AuthFailure::MissingSubject),
    }
}

#[cfg(test)]
mod tests;
