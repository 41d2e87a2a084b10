//! KV keys and what is stored under them.

use crate::model::Grant;
use crate::token::TokenHash;

/// A KV key, with the type of the value stored under it.
pub trait KvKey {
    type Value;
    /// The key as stored.
    fn key(&self) -> String;
}

/// `g:{hex sha256 of the token}` -> [`Grant`] (JSON). Written at issuance, rotation and cache
/// refresh; deleted on revocation; expires with the token.
pub struct GrantKey<'a>(pub &'a TokenHash);

/// Prefix of [`GrantKey`]. Persisted: never change it.
pub const GRANT_PREFIX: &str = "g:";

impl KvKey for GrantKey<'_> {
    type Value = Grant;
    fn key(&self) -> String {
        let mut k = String::with_capacity(GRANT_PREFIX.len() + 64);
        k.push_str(GRANT_PREFIX);
        k.push_str(&self.0.to_hex());
        k
    }
}

/// `d:{jti}` -> [`Denied`]: a revoked JWT's id, expiring with the JWT.
pub struct DenyKey<'a>(pub &'a str);

/// Prefix of [`DenyKey`]. Persisted: never change it.
pub const DENY_PREFIX: &str = "d:";

impl KvKey for DenyKey<'_> {
    type Value = Denied;
    fn key(&self) -> String {
        format!("{DENY_PREFIX}{}", self.0)
    }
}

/// The value under a [`DenyKey`]: its presence is the fact; the value is this constant.
pub struct Denied;

impl Denied {
    /// Stored value. Any value counts as denied when read (only presence is checked).
    pub const VALUE: &'static str = "1";
}

/// `s:{hex sha256 of the token}` -> a token the page showed, sealed (`app::page::replay`: only
/// the same session's resubmission of the same form can open it); expires a minute after.
pub struct SealedKey<'a>(pub &'a TokenHash);

/// Prefix of [`SealedKey`]. Persisted (for a minute at a time): never reuse it for another value.
pub const SEALED_PREFIX: &str = "s:";

impl KvKey for SealedKey<'_> {
    type Value = String;
    fn key(&self) -> String {
        format!("{SEALED_PREFIX}{}", self.0.to_hex())
    }
}

/// KV refuses expirations less than 60 s ahead: every expiration is at least this far out.
pub const MIN_TTL_SECS: i64 = 60;

/// Added to [`MIN_TTL_SECS`]: `now` is the Worker's clock in whole seconds, and that clock stands
/// still while a request runs, so KV's own clock can be ahead by a second or more. Without it a
/// put at exactly the minimum is refused now and then (seen under `wrangler dev`).
pub const TTL_MARGIN_SECS: i64 = 5;

/// The expiration to store a value with: `wanted`, but at least [`MIN_TTL_SECS`] (plus the
/// margin) after `now`.
pub fn expiration(wanted: i64, now: i64) -> i64 {
    wanted.max(now + MIN_TTL_SECS + TTL_MARGIN_SECS)
}

/// A stored grant, read back: `None` for a value that does not parse (treated as a miss, so D1
/// answers and the entry is rewritten; never an error that would fail the request).
pub fn parse_grant(text: &str) -> Option<Grant> {
    serde_json::from_str(text).ok()
}

/// A grant as stored.
///
/// # Errors
/// Never in practice (a `Grant` always serializes); kept fallible to avoid a panic path.
pub fn grant_value(grant: &Grant) -> Result<String, serde_json::Error> {
    serde_json::to_string(grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden: the grant key of a known token. A different key makes every issued token unknown
    /// to introspection until its grant is rewritten.
    #[test]
    fn grant_key_format_unchanged() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        bytes[31] = 0x0f;
        let key = GrantKey(&TokenHash(bytes)).key();
        assert_eq!(
            key,
            "g:ab0000000000000000000000000000000000000000000000000000000000000f"
        );
    }

    /// Golden: a sealed token's key (distinct from the grant's: a sealed value is never a grant).
    #[test]
    fn sealed_key_format_unchanged() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        assert_eq!(
            SealedKey(&TokenHash(bytes)).key(),
            "s:ab00000000000000000000000000000000000000000000000000000000000000"
        );
    }

    /// Golden: a revoked JWT's denylist entry. A different key revives revoked JWTs.
    #[test]
    fn deny_key_format_unchanged() {
        assert_eq!(DenyKey("01JTI").key(), "d:01JTI");
        assert_eq!(Denied::VALUE, "1");
    }

    #[test]
    fn expiration_is_at_least_a_minute_ahead() {
        assert_eq!(expiration(10, 1_000), 1_065);
        assert_eq!(
            expiration(1_061, 1_000),
            1_065,
            "a minute is not enough: the margin"
        );
        assert_eq!(expiration(5_000, 1_000), 5_000);
    }

    #[test]
    fn unreadable_grants_are_misses() {
        assert!(parse_grant("not json").is_none());
        assert!(parse_grant("{}").is_none());
        assert!(parse_grant(r#"{"id":"x","kind":"robot"}"#).is_none());
    }
}
