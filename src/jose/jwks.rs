//! The identity provider's JWKS ([`Jwks`]): the verification keys of user JWTs, from the inline
//! `USER_JWKS` or fetched from `USER_JWKS_URL` (by the runtime, cached per isolate). A key that
//! cannot verify signatures is skipped, not fatal. `Debug` lists `alg:kid` pairs only.

use super::keys::{parse_jwk, PublicKey};
use serde_json::Value;
use std::fmt;

/// One usable key of a JWKS: its optional `kid` and its key.
#[derive(Clone)]
pub(crate) struct JwksKey {
    pub(crate) kid: Option<String>,
    pub(crate) key: PublicKey,
}

/// Verifying keys parsed from a JWKS document (`{"keys":[...]}`).
///
/// `Debug` lists `alg:kid` pairs only.
#[derive(Clone, Default)]
pub struct Jwks {
    pub(crate) keys: Vec<JwksKey>,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{}:{}", k.key.alg(), k.kid.as_deref().unwrap_or("-")))
            .collect();
        write!(f, "Jwks{list:?}")
    }
}

/// Why a JWKS document was refused as a whole (single unusable keys are skipped instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksError {
    /// The document is not JSON.
    NotJson,
    /// The document has no `keys` array.
    NoKeysArray,
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwksError::NotJson => "the JWKS is not JSON",
            JwksError::NoKeysArray => "the JWKS has no \"keys\" array",
        })
    }
}

impl std::error::Error for JwksError {}

impl Jwks {
    /// Parses a JWKS as identity providers serve it.
    ///
    /// Supported: `kty` `RSA` (RS256, modulus of at least
    /// [`MIN_RSA_BITS`](super::limits::MIN_RSA_BITS)), `EC` with `crv`
    /// `P-256` (ES256), `OKP` with `crv` `Ed25519` (`EdDSA`). Keys of other types or curves,
    /// with `use` other than `sig`, with `key_ops` lacking `verify`, with an `alg` other than the
    /// one their type implies, or that do not decode, are skipped: the result may be empty.
    ///
    /// # Errors
    /// [`JwksError::NotJson`] or [`JwksError::NoKeysArray`] for the document as a whole.
    pub fn parse(json: &str) -> Result<Jwks, JwksError> {
        let doc: Value = serde_json::from_str(json).map_err(|_| JwksError::NotJson)?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NoKeysArray)?;
        Ok(Jwks {
            keys: keys.iter().filter_map(jwks_key).collect(),
        })
    }

    /// Whether no usable key was found.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The number of usable keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// One JWK of a JWKS, or `None` when it is not usable for verifying signatures.
fn jwks_key(v: &Value) -> Option<JwksKey> {
    let str_field = |name: &str| v.get(name).and_then(Value::as_str);
    if str_field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = v.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return None;
        }
    }
    let (key, _) = parse_jwk(v, false)?;
    Some(JwksKey {
        kid: str_field("kid").map(str::to_owned),
        key,
    })
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::jose::keys::test_keys::*;
    use serde_json::json;

    #[test]
    fn jwks_error_not_json() {
        assert_eq!(Jwks::parse("nope").map(|_| ()), Err(JwksError::NotJson));
        assert_eq!(Jwks::parse("").map(|_| ()), Err(JwksError::NotJson));
    }

    #[test]
    fn jwks_error_no_keys_array() {
        for doc in ["{}", "[]", r#"{"keys":{}}"#, r#"{"keys":null}"#, "42"] {
            assert_eq!(
                Jwks::parse(doc).map(|_| ()),
                Err(JwksError::NoKeysArray),
                "{doc}"
            );
        }
        assert!(Jwks::parse(r#"{"keys":[]}"#).expect("empty").is_empty());
    }

    #[test]
    fn jwks_skips_unusable_keys() {
        let (_, ed) = ed_pair(1);
        let (_, es) = es_pair(2);
        let (_, rsa) = rsa_pair();
        let weak: Value = serde_json::from_str(RSA_1024_JWK).expect("json");
        let skipped = json!([
            with(ed.clone(), "use", "enc"),
            with(ed.clone(), "alg", "RS256"),
            with(es.clone(), "crv", "P-384"),
            {"kty":"oct","k":"AAAA"},
            {"kty":"OKP","crv":"X25519","x":"AAAA"},
            {"kty":"EC","crv":"P-256","x":"AA","y":"AA"},
            {"kty":"RSA","n":"AQAB"},
            weak,
            42, "key", null,
        ]);
        let mut ops = ed.clone();
        ops["key_ops"] = json!(["encrypt"]);
        let doc = json!({"keys": skipped});
        assert!(Jwks::parse(&doc.to_string()).expect("jwks").is_empty());
        assert!(Jwks::parse(&json!({"keys":[ops]}).to_string())
            .expect("jwks")
            .is_empty());
        let kept = json!({"keys":[with(ed, "use", "sig"), with(es, "alg", "ES256"), rsa]});
        let jwks = Jwks::parse(&kept.to_string()).expect("jwks");
        assert_eq!(jwks.len(), 3);
        assert_eq!(
            format!("{jwks:?}"),
            r#"Jwks["EdDSA:-", "ES256:-", "RS256:-"]"#
        );
    }
}
