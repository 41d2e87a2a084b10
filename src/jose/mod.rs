//! JOSE: every JWT patgate verifies or signs, and every key it reads.
//!
//! - [`keys`]: the one key parser (JWK, JWKS, `JWT_SIGNING_KEYS`, the HS256 secret, PEM P-256
//!   public keys) and the key sets built from it.
//! - [`limits`]: the one set of limits (JWT length, leeway, `sub` length, RSA size).
//! - [`claims`]: the one claims vocabulary (`typ` values, typed claim sets, header checks).
//! - [`verify`]: user JWTs from the identity provider, and patgate's own access tokens.
//! - [`sign`]: access tokens (RFC 9068), signed introspection responses (RFC 9701), the gate's
//!   identity assertions.
//! - [`secevent`]: Security Event Tokens (RFC 8417) pushed to receivers of revocations.
//!
//! Pure (no `worker`), panic-free, with time as a parameter. The names used elsewhere are
//! re-exported here: `crate::jose::{SigningKeys, verify_user_jwt, ...}`.

pub mod claims;
pub mod keys;
pub mod limits;
pub mod secevent;
pub mod sign;
pub mod verify;

pub use claims::{
    AccessTokenClaims, GateAssertionClaims, IntrospectionResponseClaims, ACCESS_TOKEN_TYP,
    GATE_ASSERTION_TYP, INTROSPECTION_MEDIA_TYPE, INTROSPECTION_TYP,
};
pub use keys::{p256_public_key_from_pem, HmacSecret, Jwks, JwksError, KeyError, SigningKeys};
pub use limits::MAX_JWT_LEN;
pub use verify::{looks_like_jwt, verify_user_jwt, AuthFailure, UserAuthConfig, VerifyError};
