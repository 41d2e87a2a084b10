//! The limits every JWT and key that patgate reads is held to, in one place.

/// Longest JWT accepted anywhere (bytes): user JWTs, our own access tokens, and the cheap
/// "looks like a JWT" check of introspection and revocation. Longer ones are malformed without
/// any parsing. Both verifiers used 8192 before they were merged; the e2e suite pins it.
pub const MAX_JWT_LEN: usize = 8192;

/// Clock skew tolerated on the `exp` and `nbf` of an identity provider's JWT (seconds). Our own
/// access tokens get none: patgate is their issuer.
pub const LEEWAY_SECS: i64 = 60;

/// Longest `sub` accepted in a user JWT (characters).
pub const MAX_SUBJECT_CHARS: usize = 255;

/// RSA keys with a shorter modulus are skipped when a JWKS is parsed.
pub const MIN_RSA_BITS: usize = 2048;
