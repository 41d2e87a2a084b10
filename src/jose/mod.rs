//! JOSE: every JWT patgate verifies or signs, and every key it reads.
//!
//! - [`keys`]: the one key parser (JWK, the HS256 secret, PEM P-256 public keys); the key sets
//!   built from it: [`jwks`] (the identity provider's) and [`signing_keys`] (`JWT_SIGNING_KEYS`).
//! - [`limits`]: the one set of limits (JWT length, leeway, `sub` length, RSA size).
//! - [`claims`]: the one claims vocabulary (`typ` values, typed claim sets, header checks).
//! - [`verify`]: the checks every JWT passes first, and patgate's own access tokens.
//! - [`user_jwt`]: user JWTs from the identity provider.
//! - [`sign`]: access tokens (RFC 9068), signed introspection responses (RFC 9701), the gate's
//!   identity assertions.
//!
//! Pure (no `worker`), panic-free, with time as a parameter. The names used elsewhere are
//! re-exported here: `crate::jose::{SigningKeys, verify_user_jwt, ...}`.

pub mod claims;
pub mod jwks;
pub mod keys;
pub mod limits;
pub mod sign;
pub mod signing_keys;
pub mod user_jwt;
pub mod verify;

pub use claims::{
    AccessTokenClaims, GateAssertionClaims, IntrospectionResponseClaims, ACCESS_TOKEN_TYP,
    GATE_ASSERTION_TYP, INTROSPECTION_MEDIA_TYPE, INTROSPECTION_TYP,
};
pub use jwks::{Jwks, JwksError};
pub use keys::{p256_public_key_from_pem, HmacSecret};
pub use limits::MAX_JWT_LEN;
pub use signing_keys::{KeyError, SigningKeys};
pub use user_jwt::{verify_user_jwt, AuthFailure, UserAuthConfig};
pub use verify::{looks_like_jwt, VerifyError};
