//! patgate's own signed JWTs: RFC 9068 access tokens and RFC 9701 introspection responses,
//! and the JWKS that publishes their keys.
//!
//! Keys come from the `JWT_SIGNING_KEYS` secret: a JSON array of JWKs, e.g.
//! `[{"kty":"OKP","crv":"Ed25519","d":"..","x":"..","kid":"2026-11"}]`. The first private key
//! signs; every key (private or public-only) is published and accepted for verification, so a
//! new key can be put first while the old one stays published until its tokens expire.

use chrono::{DateTime, Duration, Utc};
use jwt_compact::{
    alg::{Ed25519, Es256},
    jwk::JsonWebKey,
    AlgorithmExt as _, Claims, Header, TimeOptions, UntrustedToken,
};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
pub const INTROSPECTION_TYP: &str = "token-introspection+jwt";

#[derive(Clone)]
enum Signer {
    Ed(ed25519_compact::SecretKey),
    Es(p256::ecdsa::SigningKey),
}

#[derive(Clone)]
enum Verifier {
    Ed(ed25519_compact::PublicKey),
    Es(p256::ecdsa::VerifyingKey),
}

impl Verifier {
    fn alg(&self) -> &'static str {
        match self {
            Verifier::Ed(_) => "EdDSA",
            Verifier::Es(_) => "ES256",
        }
    }

    fn public_jwk(&self, kid: &str) -> serde_json::Value {
        let mut v = match self {
            Verifier::Ed(k) => serde_json::to_value(JsonWebKey::from(k)),
            Verifier::Es(k) => serde_json::to_value(JsonWebKey::from(k)),
        }
        .unwrap_or_default();
        v["kid"] = kid.into();
        v["alg"] = self.alg().into();
        v["use"] = "sig".into();
        v
    }
}

struct Key {
    kid: String,
    signer: Option<Signer>,
    verifier: Verifier,
}

/// The signing key set. `Debug` shows only key ids.
pub struct SigningKeys {
    keys: Vec<Key>,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        write!(f, "SigningKeys{kids:?}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    NotJson,
    NoSigningKey,
    /// The key at this position is not an Ed25519 or P-256 JWK, or is malformed.
    BadKey(usize),
    MissingKid(usize),
    DuplicateKid(String),
    Signing,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    Malformed,
    WrongType,
    UnknownKey,
    BadSignature,
    Expired,
}

/// RFC 9068 access token claims.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    /// The API resources whose scopes the token carries.
    pub aud: Vec<String>,
    /// Serialized by jwt-compact's `Claims` (its own `iat` field), not by this struct.
    #[serde(skip)]
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
}

fn parse_key(i: usize, v: &serde_json::Value) -> Result<Key, KeyError> {
    let kid = v
        .get("kid")
        .and_then(|k| k.as_str())
        .filter(|k| !k.is_empty())
        .ok_or(KeyError::MissingKid(i))?
        .to_owned();
    let jwk: JsonWebKey<'_> = serde_json::from_value(v.clone()).map_err(|_| KeyError::BadKey(i))?;
    let private = v.get("d").is_some();
    let (signer, verifier) = match (
        v.get("kty").and_then(|k| k.as_str()),
        v.get("crv").and_then(|c| c.as_str()),
    ) {
        (Some("OKP"), Some("Ed25519")) => {
            if private {
                let sk =
                    ed25519_compact::SecretKey::try_from(&jwk).map_err(|_| KeyError::BadKey(i))?;
                let pk = sk.public_key();
                (Some(Signer::Ed(sk)), Verifier::Ed(pk))
            } else {
                let pk =
                    ed25519_compact::PublicKey::try_from(&jwk).map_err(|_| KeyError::BadKey(i))?;
                (None, Verifier::Ed(pk))
            }
        }
        (Some("EC"), Some("P-256")) => {
            if private {
                let sk =
                    p256::ecdsa::SigningKey::try_from(&jwk).map_err(|_| KeyError::BadKey(i))?;
                let pk = *sk.verifying_key();
                (Some(Signer::Es(sk)), Verifier::Es(pk))
            } else {
                let pk =
                    p256::ecdsa::VerifyingKey::try_from(&jwk).map_err(|_| KeyError::BadKey(i))?;
                (None, Verifier::Es(pk))
            }
        }
        _ => return Err(KeyError::BadKey(i)),
    };
    Ok(Key {
        kid,
        signer,
        verifier,
    })
}

impl SigningKeys {
    /// Parses the `JWT_SIGNING_KEYS` JSON array.
    pub fn parse(json: &str) -> Result<SigningKeys, KeyError> {
        let arr: Vec<serde_json::Value> =
            serde_json::from_str(json).map_err(|_| KeyError::NotJson)?;
        let mut keys: Vec<Key> = Vec::with_capacity(arr.len());
        for (i, v) in arr.iter().enumerate() {
            let k = parse_key(i, v)?;
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

    /// The signing algorithm of the active key.
    pub fn algorithm(&self) -> &'static str {
        self.active().map_or("EdDSA", |k| k.verifier.alg())
    }

    /// Every algorithm a published key uses.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = Vec::new();
        for k in &self.keys {
            if !v.contains(&k.verifier.alg()) {
                v.push(k.verifier.alg());
            }
        }
        v
    }

    fn active(&self) -> Option<&Key> {
        self.keys.iter().find(|k| k.signer.is_some())
    }

    /// `{"keys":[...]}` with public parts only.
    pub fn jwks_json(&self) -> String {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| k.verifier.public_jwk(&k.kid))
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    fn sign<T: Serialize>(&self, typ: &str, claims: &Claims<T>) -> Result<String, KeyError> {
        let key = self.active().ok_or(KeyError::NoSigningKey)?;
        let header = Header::empty().with_key_id(&key.kid).with_token_type(typ);
        match &key.signer {
            Some(Signer::Ed(sk)) => Ed25519.token(&header, claims, sk),
            Some(Signer::Es(sk)) => Es256.token(&header, claims, sk),
            None => return Err(KeyError::NoSigningKey),
        }
        .map_err(|_| KeyError::Signing)
    }

    /// Signs an RFC 9068 access token valid until `exp`.
    pub fn sign_access_token(
        &self,
        claims: &AccessTokenClaims,
        exp: i64,
    ) -> Result<String, KeyError> {
        let mut c = Claims::new(claims);
        c.expiration = DateTime::from_timestamp(exp, 0);
        c.issued_at = DateTime::from_timestamp(claims.iat, 0);
        self.sign(ACCESS_TOKEN_TYP, &c)
    }

    /// Signs an RFC 9701 introspection response (the whole payload is given).
    pub fn sign_introspection(&self, payload: &serde_json::Value) -> Result<String, KeyError> {
        self.sign(INTROSPECTION_TYP, &Claims::new(payload))
    }

    /// Verifies one of our access tokens: `typ`, known `kid`, signature and expiry (no leeway).
    /// Returns the claims and `exp`.
    pub fn verify_access_token(
        &self,
        jwt: &str,
        now: i64,
    ) -> Result<(AccessTokenClaims, i64), VerifyError> {
        if jwt.len() > 4096 {
            return Err(VerifyError::Malformed);
        }
        let t = UntrustedToken::new(jwt).map_err(|_| VerifyError::Malformed)?;
        if t.header().token_type.as_deref() != Some(ACCESS_TOKEN_TYP) {
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
        let token = match &key.verifier {
            Verifier::Ed(pk) => Ed25519.validator::<AccessTokenClaims>(pk).validate(&t),
            Verifier::Es(pk) => Es256.validator::<AccessTokenClaims>(pk).validate(&t),
        }
        .map_err(|_| VerifyError::BadSignature)?;
        let claims = token.claims();
        let at = DateTime::from_timestamp(now, 0).unwrap_or_default();
        let opts = TimeOptions::new(Duration::zero(), move || at);
        claims
            .validate_expiration(&opts)
            .map_err(|_| VerifyError::Expired)?;
        let exp = claims
            .expiration
            .map_or(0, |e: DateTime<Utc>| e.timestamp());
        let mut custom = claims.custom.clone();
        custom.iat = claims.issued_at.map_or(0, |t| t.timestamp());
        Ok((custom, exp))
    }

    /// A new private Ed25519 JWK (for `npm run gen-key` and tests).
    pub fn generate_ed25519(kid: &str) -> Result<String, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| KeyError::Signing)?;
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
        let mut v =
            serde_json::to_value(JsonWebKey::from(&kp.sk)).map_err(|_| KeyError::Signing)?;
        v["kid"] = kid.into();
        Ok(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000;

    fn es_private(kid: &str) -> String {
        let sk = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).expect("key");
        let mut v = serde_json::to_value(JsonWebKey::from(&sk)).expect("jwk");
        v["kid"] = kid.into();
        v.to_string()
    }

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://patgate.test".into(),
            sub: "alice".into(),
            aud: vec!["demo_api".into()],
            iat: NOW,
            jti: "j1".into(),
            client_id: "pat_client".into(),
            scope: "demo_api:read".into(),
        }
    }

    #[test]
    fn sign_and_verify_both_algorithms() {
        let ed = SigningKeys::generate_ed25519("ed").expect("gen");
        for keys in [format!("[{ed}]"), format!("[{}]", es_private("es"))] {
            let k = SigningKeys::parse(&keys).expect("keys");
            let jwt = k.sign_access_token(&claims(), NOW + 60).expect("sign");
            assert_eq!(k.verify_access_token(&jwt, NOW), Ok((claims(), NOW + 60)));
            assert_eq!(
                k.verify_access_token(&jwt, NOW + 61),
                Err(VerifyError::Expired)
            );
            let mut tampered = jwt.clone();
            tampered.pop();
            tampered.push(if jwt.ends_with('A') { 'B' } else { 'A' });
            assert!(k.verify_access_token(&tampered, NOW).is_err());
        }
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let old = SigningKeys::generate_ed25519("old").expect("gen");
        let new = SigningKeys::generate_ed25519("new").expect("gen");
        let before = SigningKeys::parse(&format!("[{old}]")).expect("keys");
        let jwt = before.sign_access_token(&claims(), NOW + 60).expect("sign");
        let after = SigningKeys::parse(&format!("[{new},{old}]")).expect("keys");
        assert!(after.verify_access_token(&jwt, NOW).is_ok());
        let fresh = after.sign_access_token(&claims(), NOW + 60).expect("sign");
        assert_eq!(
            before.verify_access_token(&fresh, NOW),
            Err(VerifyError::UnknownKey)
        );
        let published: serde_json::Value = serde_json::from_str(&after.jwks_json()).expect("json");
        assert_eq!(published["keys"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn wrong_typ_is_refused() {
        let k = SigningKeys::parse(&format!(
            "[{}]",
            SigningKeys::generate_ed25519("k").expect("gen")
        ))
        .expect("keys");
        let intro = k
            .sign_introspection(&serde_json::json!({"x":1}))
            .expect("sign");
        assert_eq!(
            k.verify_access_token(&intro, NOW),
            Err(VerifyError::WrongType)
        );
        assert_eq!(
            k.verify_access_token("x.y", NOW),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn jwks_has_no_private_parts_and_is_consumable() {
        let k = SigningKeys::parse(&format!(
            "[{},{}]",
            SigningKeys::generate_ed25519("ed").expect("gen"),
            es_private("es")
        ))
        .expect("keys");
        let jwks = k.jwks_json();
        assert!(!jwks.contains("\"d\""));
        let v: serde_json::Value = serde_json::from_str(&jwks).expect("json");
        assert_eq!(v["keys"][0]["kty"], "OKP");
        assert_eq!(v["keys"][0]["alg"], "EdDSA");
        assert_eq!(v["keys"][0]["use"], "sig");
        assert_eq!(v["keys"][1]["kty"], "EC");
        assert_eq!(v["keys"][1]["crv"], "P-256");
        assert_eq!(
            crate::user_auth::Jwks::parse(&jwks).expect("parse").len(),
            2
        );
        assert_eq!(k.algorithms(), vec!["EdDSA", "ES256"]);
    }

    #[test]
    fn key_errors() {
        assert_eq!(SigningKeys::parse("{").err(), Some(KeyError::NotJson));
        assert_eq!(SigningKeys::parse("[]").err(), Some(KeyError::NoSigningKey));
        assert_eq!(
            SigningKeys::parse(r#"[{"kty":"oct","k":"AA","kid":"x"}]"#).err(),
            Some(KeyError::BadKey(0))
        );
        let ed = SigningKeys::generate_ed25519("same").expect("gen");
        assert_eq!(
            SigningKeys::parse(&format!("[{ed},{ed}]")).err(),
            Some(KeyError::DuplicateKid("same".into()))
        );
        let mut no_kid: serde_json::Value = serde_json::from_str(&ed).expect("json");
        no_kid.as_object_mut().map(|o| o.remove("kid"));
        assert_eq!(
            SigningKeys::parse(&format!("[{no_kid}]")).err(),
            Some(KeyError::MissingKid(0))
        );
        assert!(
            !format!("{:?}", SigningKeys::parse(&format!("[{ed}]")).expect("k")).contains("\"d\"")
        );
    }
}
