//! patgate's own key set ([`SigningKeys`], the `JWT_SIGNING_KEYS` secret): a JSON array of
//! JWKs, e.g. `[{"kty":"OKP","crv":"Ed25519","d":"..","x":"..","kid":"2026-11"}]`. Supported:
//! `OKP` `Ed25519` and `EC` `P-256`; every key needs a unique `kid`. The first private key (one
//! with `d`) signs; every key, private or public-only, is published and accepted for
//! verification. Rotation without downtime: add the new key after the current one (published,
//! not yet signing), wait for JWKS caches to refresh, move it first, and drop the old key (or
//! keep only its public part) once the tokens it signed have expired. `Debug` shows only key ids
//! and algorithms, never key material.

use super::keys::{parse_jwk, PrivateKey, PublicKey};
use jwt_compact::jwk::JsonWebKey;
use serde_json::{Map, Value};
use std::fmt;

/// One key of [`SigningKeys`].
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) signer: Option<PrivateKey>,
    pub(crate) verifier: PublicKey,
    /// The published JWK, computed once at parse time.
    public: Map<String, Value>,
}

/// patgate's key set (`JWT_SIGNING_KEYS`, see the module documentation). `Debug` shows only key
/// ids and algorithms, never key material.
pub struct SigningKeys {
    pub(crate) keys: Vec<SigningKey>,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                let kind = if k.signer.is_some() {
                    "private"
                } else {
                    "public"
                };
                format!("{}:{}:{kind}", k.verifier.alg(), k.kid)
            })
            .collect();
        write!(f, "SigningKeys{list:?}")
    }
}

/// Why the key set was refused, or signing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The secret is not a JSON array.
    NotJson,
    /// No key has a private part (`d`).
    NoSigningKey,
    /// The key at this position (0-based) is not an Ed25519 or P-256 JWK, does not decode, or
    /// its private and public parts do not match.
    BadKey(usize),
    /// The key at this position has no `kid` (or an empty or non-string one).
    MissingKid(usize),
    /// Two keys share this `kid`.
    DuplicateKid(String),
    /// The claims could not be serialized (not a JSON object, timestamps out of range).
    Signing,
    /// The system random number generator failed (key generation).
    Randomness,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotJson => f.write_str("not a JSON array of JWKs"),
            KeyError::NoSigningKey => f.write_str("no private key (with \"d\") to sign with"),
            KeyError::BadKey(i) => {
                write!(f, "key #{i} is not a valid Ed25519 (OKP) or P-256 (EC) JWK")
            }
            KeyError::MissingKid(i) => write!(f, "key #{i} has no \"kid\""),
            KeyError::DuplicateKid(kid) => write!(f, "two keys have the kid {kid:?}"),
            KeyError::Signing => f.write_str("the claims cannot be signed"),
            KeyError::Randomness => f.write_str("the random number generator failed"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Parses the JWK at position `i` of `JWT_SIGNING_KEYS`.
fn signing_key(i: usize, v: &Value) -> Result<SigningKey, KeyError> {
    let kid = v
        .get("kid")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or(KeyError::MissingKid(i))?
        .to_owned();
    let (verifier, signer) = match parse_jwk(v, true) {
        // patgate signs with Ed25519 and P-256 only.
        Some((PublicKey::Rs256(_), _)) | None => return Err(KeyError::BadKey(i)),
        Some(pair) => pair,
    };
    let public = verifier.public_jwk(&kid).ok_or(KeyError::BadKey(i))?;
    Ok(SigningKey {
        kid,
        signer,
        verifier,
        public,
    })
}

impl SigningKeys {
    /// Parses the `JWT_SIGNING_KEYS` JSON array (see the module documentation).
    ///
    /// # Errors
    /// [`KeyError::NotJson`], [`KeyError::BadKey`], [`KeyError::MissingKid`],
    /// [`KeyError::DuplicateKid`], or [`KeyError::NoSigningKey`] when no key has a private part.
    pub fn parse(json: &str) -> Result<SigningKeys, KeyError> {
        let arr: Vec<Value> = serde_json::from_str(json).map_err(|_| KeyError::NotJson)?;
        let mut keys: Vec<SigningKey> = Vec::with_capacity(arr.len());
        for (i, v) in arr.iter().enumerate() {
            let k = signing_key(i, v)?;
            if keys.iter().any(|x| x.kid == k.kid) {
                return Err(KeyError::DuplicateKid(k.kid));
            }
            keys.push(k);
        }
        if !keys.iter().any(|k| k.signer.is_some()) {
            return Err(KeyError::NoSigningKey);
        }
        Ok(SigningKeys { keys })
    }

    /// The key that signs: the first one with a private part.
    pub(crate) fn active(&self) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.signer.is_some())
    }

    /// The `kid` of the signing key.
    #[must_use]
    pub fn signing_kid(&self) -> &str {
        self.active().map_or("", |k| k.kid.as_str())
    }

    /// The signing algorithm of the signing key.
    #[must_use]
    pub fn algorithm(&self) -> &'static str {
        self.active().map_or("EdDSA", |k| k.verifier.alg())
    }

    /// Every algorithm a published key uses, in key order, without duplicates.
    #[must_use]
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = Vec::new();
        for k in &self.keys {
            if !v.contains(&k.verifier.alg()) {
                v.push(k.verifier.alg());
            }
        }
        v
    }

    /// The JWKS document, `{"keys":[...]}`, with public parts only, in configuration order.
    #[must_use]
    pub fn jwks_json(&self) -> String {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| Value::Object(k.public.clone()))
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// A new private Ed25519 JWK with this `kid`, as a JSON object (for `npm run gen-key`,
    /// docs and tests). Uses the system random number generator.
    ///
    /// # Errors
    /// [`KeyError::Randomness`] when the random number generator fails.
    pub fn generate_ed25519(kid: &str) -> Result<String, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| KeyError::Randomness)?;
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
        let jwk = JsonWebKey::from(&kp.sk);
        private_jwk(&jwk, kid)
    }

    /// A new private P-256 (ES256) JWK with this `kid`, as a JSON object.
    ///
    /// # Errors
    /// [`KeyError::Randomness`] when the random number generator fails.
    pub fn generate_es256(kid: &str) -> Result<String, KeyError> {
        // A random 32-byte string is a valid scalar except with probability ~2^-32; retry.
        for _ in 0..8 {
            let mut d = [0u8; 32];
            getrandom::fill(&mut d).map_err(|_| KeyError::Randomness)?;
            if let Ok(sk) = p256::ecdsa::SigningKey::from_slice(&d) {
                let jwk = JsonWebKey::from(&sk);
                return private_jwk(&jwk, kid);
            }
        }
        Err(KeyError::Randomness)
    }
}

/// A private JWK as a JSON object string, with `kid` and `alg` added.
pub(crate) fn private_jwk(jwk: &JsonWebKey<'_>, kid: &str) -> Result<String, KeyError> {
    let Ok(Value::Object(mut m)) = serde_json::to_value(jwk) else {
        return Err(KeyError::Signing);
    };
    let alg = match m.get("kty").and_then(Value::as_str) {
        Some("OKP") => "EdDSA",
        _ => "ES256",
    };
    m.insert("kid".into(), kid.into());
    m.insert("alg".into(), alg.into());
    Ok(Value::Object(m).to_string())
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::jose::keys::test_keys::*;
    use serde_json::json;

    #[test]
    fn key_error_not_json() {
        for bad in ["{", "", "{}", r#"{"kty":"OKP"}"#, "42"] {
            assert_eq!(
                SigningKeys::parse(bad).err(),
                Some(KeyError::NotJson),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_error_no_signing_key() {
        assert_eq!(SigningKeys::parse("[]").err(), Some(KeyError::NoSigningKey));
        let mut public: Value = serde_json::from_str(&ed_fixed("k")).expect("json");
        public.as_object_mut().map(|o| o.remove("d"));
        assert_eq!(
            SigningKeys::parse(&format!("[{public}]")).err(),
            Some(KeyError::NoSigningKey)
        );
    }

    #[test]
    fn key_error_bad_key() {
        let ed: Value = serde_json::from_str(&ed_fixed("k")).expect("json");
        let es: Value = serde_json::from_str(&es_fixed("e")).expect("json");
        let mut mismatched = ed.clone();
        mismatched["x"] =
            serde_json::from_str::<Value>(&SigningKeys::generate_ed25519("z").expect("gen"))
                .expect("json")["x"]
                .clone();
        let mut es_mismatched = es.clone();
        es_mismatched["x"] = ed["x"].clone();
        let mut wrong_alg = ed.clone();
        wrong_alg["alg"] = json!("ES256");
        let mut short_d = ed.clone();
        short_d["d"] = json!("AAAA");
        for (i, bad) in [
            json!({"kty":"oct","k":"AAAA","kid":"x"}),
            json!({"kty":"RSA","n":"AQAB","e":"AQAB","kid":"x"}),
            json!({"kty":"EC","crv":"P-384","x":"AA","y":"AA","d":"AA","kid":"x"}),
            json!({"kty":"OKP","crv":"X25519","x":"AA","kid":"x"}),
            json!({"kid":"x"}),
            json!("string"),
            mismatched,
            es_mismatched,
            wrong_alg,
            short_d,
        ]
        .iter()
        .enumerate()
        {
            let doc = format!("[{},{bad}]", es_fixed("first"));
            let err = SigningKeys::parse(&doc).err();
            assert!(
                matches!(err, Some(KeyError::BadKey(1) | KeyError::MissingKid(1))),
                "case {i}: {err:?}"
            );
        }
        assert_eq!(
            SigningKeys::parse(r#"[{"kty":"oct","k":"AA","kid":"x"}]"#).err(),
            Some(KeyError::BadKey(0))
        );
    }

    #[test]
    fn key_error_missing_kid() {
        let mut no_kid: Value = serde_json::from_str(&ed_fixed("k")).expect("json");
        no_kid.as_object_mut().map(|o| o.remove("kid"));
        assert_eq!(
            SigningKeys::parse(&format!("[{no_kid}]")).err(),
            Some(KeyError::MissingKid(0))
        );
        for kid in [json!(""), json!(3)] {
            no_kid["kid"] = kid;
            assert_eq!(
                SigningKeys::parse(&format!("[{no_kid}]")).err(),
                Some(KeyError::MissingKid(0))
            );
        }
    }

    #[test]
    fn key_error_duplicate_kid() {
        assert_eq!(
            SigningKeys::parse(&format!("[{},{}]", ed_fixed("same"), es_fixed("same"))).err(),
            Some(KeyError::DuplicateKid("same".into()))
        );
    }

    #[test]
    fn jwks_has_no_private_parts() {
        let k = keys(&[
            &SigningKeys::generate_ed25519("ed").expect("gen"),
            &SigningKeys::generate_es256("es").expect("gen"),
        ]);
        let jwks: Value = serde_json::from_str(&k.jwks_json()).expect("json");
        let list = jwks["keys"].as_array().expect("keys");
        assert_eq!(list.len(), 2);
        for key in list {
            assert!(key.get("d").is_none(), "{key}");
        }
        assert!(!k.jwks_json().contains("\"d\""));
        let debug = format!("{k:?}");
        assert_eq!(
            debug,
            r#"SigningKeys["EdDSA:ed:private", "ES256:es:private"]"#
        );
    }

    #[test]
    fn jwks_golden() {
        // Public keys cross-checked with `openssl pkey -pubout` / `openssl ec -pubout` from the
        // same fixed private keys.
        let mut public_es: Value = serde_json::from_str(&es_fixed("2026-10")).expect("json");
        public_es.as_object_mut().map(|o| o.remove("d"));
        let k = keys(&[&ed_fixed("2026-11"), &public_es.to_string()]);
        assert_eq!(
            k.jwks_json(),
            concat!(
                r#"{"keys":[{"alg":"EdDSA","crv":"Ed25519","kid":"2026-11","kty":"OKP","use":"sig","#,
                r#""x":"6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw"},"#,
                r#"{"alg":"ES256","crv":"P-256","kid":"2026-10","kty":"EC","use":"sig","#,
                r#""x":"B4EOqXTOpXc-Y7iX83476aCeel_puXGkTRBlrCo6kxE","#,
                r#""y":"Y35HpPmUZKD9zkSojsfXA6kYPB0GVS2eLWt2BpSBxXc"}]}"#
            )
        );
    }

    #[test]
    fn generated_keys_parse_and_sign() {
        let ed: Value =
            serde_json::from_str(&SigningKeys::generate_ed25519("a").expect("gen")).expect("json");
        assert_eq!(
            (
                ed["kty"].as_str(),
                ed["crv"].as_str(),
                ed["alg"].as_str(),
                ed["kid"].as_str()
            ),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("a"))
        );
        assert!(ed["d"].is_string() && ed["x"].is_string());
        let es: Value =
            serde_json::from_str(&SigningKeys::generate_es256("b").expect("gen")).expect("json");
        assert_eq!(
            (es["kty"].as_str(), es["crv"].as_str(), es["alg"].as_str()),
            (Some("EC"), Some("P-256"), Some("ES256"))
        );
        assert_ne!(
            SigningKeys::generate_ed25519("a").expect("gen"),
            ed.to_string()
        );
    }
}
