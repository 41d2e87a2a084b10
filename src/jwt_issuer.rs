//! patgate's own signed JWTs: RFC 9068 access tokens and RFC 9701 introspection responses,
//! and the JWKS that publishes their keys.
//!
//! Keys come from the `JWT_SIGNING_KEYS` secret: a JSON array of JWKs, e.g.
//! `[{"kty":"OKP","crv":"Ed25519","d":"..","x":"..","kid":"2026-11"}]`. Supported: `OKP`
//! `Ed25519` (`EdDSA`) and `EC` `P-256` (ES256); every key needs a unique `kid`. The first
//! private key (one with `d`) signs; every key, private or public-only, is published and
//! accepted for verification. Rotation without downtime: add the new key after the current one
//! (published, not yet signing), wait for JWKS caches to refresh, move it first, and drop the old
//! key (or keep only its public part) once the tokens it signed have expired.
//!
//! Everything here is pure and panic-free: time is a parameter (`now`, unix seconds).

use chrono::DateTime;
use jwt_compact::{
    alg::{Ed25519, Es256},
    jwk::JsonWebKey,
    AlgorithmExt as _, Claims, Header, UntrustedToken, ValidationError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// `typ` of access tokens (RFC 9068 2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// `typ` of signed introspection responses (RFC 9701 5).
pub const INTROSPECTION_TYP: &str = "token-introspection+jwt";
/// Longest JWT [`SigningKeys::verify_access_token`] looks at (bytes).
pub const MAX_JWT_LEN: usize = 8192;
/// `typ` of the gate's identity assertion (`X-Patgate-Assertion`): never an access token.
pub const GATE_ASSERTION_TYP: &str = "patgate-assertion+jwt";

/// A private key that signs.
#[derive(Clone)]
enum Signer {
    Ed(ed25519_compact::SecretKey),
    Es(p256::ecdsa::SigningKey),
}

/// A public key that verifies.
#[derive(Clone)]
enum Verifier {
    Ed(ed25519_compact::PublicKey),
    Es(p256::ecdsa::VerifyingKey),
}

impl Verifier {
    /// The JWS `alg` of this key.
    fn alg(&self) -> &'static str {
        match self {
            Verifier::Ed(_) => "EdDSA",
            Verifier::Es(_) => "ES256",
        }
    }

    /// The public JWK as published: `kty`, `crv`, `x`, (`y`), `kid`, `alg`, `use`.
    fn public_jwk(&self, kid: &str) -> Option<Map<String, Value>> {
        let jwk = match self {
            Verifier::Ed(k) => serde_json::to_value(JsonWebKey::from(k)),
            Verifier::Es(k) => serde_json::to_value(JsonWebKey::from(k)),
        };
        let Ok(Value::Object(mut m)) = jwk else {
            return None;
        };
        m.remove("d"); // never there for a public key; belt and braces
        m.insert("kid".into(), kid.into());
        m.insert("alg".into(), self.alg().into());
        m.insert("use".into(), "sig".into());
        Some(m)
    }
}

/// One configured key.
struct Key {
    kid: String,
    signer: Option<Signer>,
    verifier: Verifier,
    /// The published JWK, computed once at parse time.
    public: Map<String, Value>,
}

/// The signing key set. `Debug` shows only key ids and algorithms, never key material.
pub struct SigningKeys {
    keys: Vec<Key>,
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

/// RFC 9068 access token claims (besides `exp`, which is passed and returned separately).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenClaims {
    /// patgate's issuer URL.
    pub iss: String,
    /// The user, or the client for `client_credentials`.
    pub sub: String,
    /// The API resources whose scopes the token carries (serialized as an array, which RFC 7519
    /// allows; verifiers accept a string too).
    #[serde(deserialize_with = "string_or_list")]
    pub aud: Vec<String>,
    /// Issued at (unix seconds). Serialized by jwt-compact's `Claims` (its own `iat` field),
    /// not by this struct.
    #[serde(skip)]
    pub iat: i64,
    /// Unique token id (revocation denylist key).
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// For a JWT exchanged from a PAT (RFC 8693): the PAT's id. Introspection (and everything in
    /// patgate that accepts the JWT) checks that this PAT is still active, at this generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pat_id: Option<String>,
    /// The PAT's rotation generation when the JWT was minted (rotating the PAT kills the JWT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pat_gen: Option<i64>,
}

/// `aud` as RFC 7519 allows it: one string or an array of strings.
fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Aud::deserialize(d)? {
        Aud::One(s) => vec![s],
        Aud::Many(v) => v,
    })
}

/// Header fields jwt-compact does not model but that must be looked at.
#[derive(Clone, Deserialize)]
struct HeaderExtras {
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// Parses the JWK at position `i`.
fn parse_key(i: usize, v: &Value) -> Result<Key, KeyError> {
    let kid = v
        .get("kid")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or(KeyError::MissingKid(i))?
        .to_owned();
    let jwk: JsonWebKey<'_> = serde_json::from_value(v.clone()).map_err(|_| KeyError::BadKey(i))?;
    let private = v.get("d").is_some();
    let bad = |_| KeyError::BadKey(i);
    let (signer, verifier) = match (
        v.get("kty").and_then(Value::as_str),
        v.get("crv").and_then(Value::as_str),
    ) {
        (Some("OKP"), Some("Ed25519")) if private => {
            // Checks that `x` matches `d`.
            let sk = ed25519_compact::SecretKey::try_from(&jwk).map_err(bad)?;
            let pk = sk.public_key();
            (Some(Signer::Ed(sk)), Verifier::Ed(pk))
        }
        (Some("OKP"), Some("Ed25519")) => (
            None,
            Verifier::Ed(ed25519_compact::PublicKey::try_from(&jwk).map_err(bad)?),
        ),
        (Some("EC"), Some("P-256")) if private => {
            // Checks that `x` and `y` match `d`.
            let sk = p256::ecdsa::SigningKey::try_from(&jwk).map_err(bad)?;
            let pk = *sk.verifying_key();
            (Some(Signer::Es(sk)), Verifier::Es(pk))
        }
        (Some("EC"), Some("P-256")) => (
            None,
            Verifier::Es(p256::ecdsa::VerifyingKey::try_from(&jwk).map_err(bad)?),
        ),
        _ => return Err(KeyError::BadKey(i)),
    };
    // A declared `alg` must be the one the key type implies.
    if v.get("alg")
        .is_some_and(|a| a.as_str() != Some(verifier.alg()))
    {
        return Err(KeyError::BadKey(i));
    }
    let public = verifier.public_jwk(&kid).ok_or(KeyError::BadKey(i))?;
    Ok(Key {
        kid,
        signer,
        verifier,
        public,
    })
}

/// A timestamp as jwt-compact wants it, or [`KeyError::Signing`] when out of range.
fn timestamp(secs: i64) -> Result<DateTime<chrono::Utc>, KeyError> {
    DateTime::from_timestamp(secs, 0).ok_or(KeyError::Signing)
}

impl SigningKeys {
    /// Parses the `JWT_SIGNING_KEYS` JSON array (see the module documentation).
    ///
    /// # Errors
    /// [`KeyError::NotJson`], [`KeyError::BadKey`], [`KeyError::MissingKid`],
    /// [`KeyError::DuplicateKid`], or [`KeyError::NoSigningKey`] when no key has a private part.
    pub fn parse(json: &str) -> Result<SigningKeys, KeyError> {
        let arr: Vec<Value> = serde_json::from_str(json).map_err(|_| KeyError::NotJson)?;
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

    /// The key that signs: the first one with a private part.
    fn active(&self) -> Option<&Key> {
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

    /// Signs `claims` with the signing key; the header has `typ`, `kid` and `alg`.
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

    /// Signs an RFC 9068 access token (`typ` `at+jwt`) valid until `exp` (unix seconds).
    /// `claims.iat` becomes the `iat` claim.
    ///
    /// # Errors
    /// [`KeyError::Signing`] when `exp` or `iat` is out of the representable range.
    pub fn sign_access_token(
        &self,
        claims: &AccessTokenClaims,
        exp: i64,
    ) -> Result<String, KeyError> {
        let mut c = Claims::new(claims);
        c.expiration = Some(timestamp(exp)?);
        c.issued_at = Some(timestamp(claims.iat)?);
        self.sign(ACCESS_TOKEN_TYP, &c)
    }

    /// Signs an RFC 9701 introspection response (`typ` `token-introspection+jwt`); `payload` is
    /// the whole claim set (`iss`, `aud`, `iat`, `token_introspection`), serialized once, and
    /// must serialize as an object.
    ///
    /// # Errors
    /// [`KeyError::Signing`] when `payload` is not an object.
    pub fn sign_introspection<T: Serialize + ?Sized>(
        &self,
        payload: &T,
    ) -> Result<String, KeyError> {
        self.sign(INTROSPECTION_TYP, &Claims::new(payload))
    }

    /// Signs the gate's identity assertion (`typ` `patgate-assertion+jwt`): `payload` (an
    /// object: `iss`, `aud`, `sub`, `client_id`, `scope`, `jti`) plus `iat` and `exp`.
    ///
    /// # Errors
    /// [`KeyError::Signing`] when `payload` is not an object or a time is out of range.
    pub fn sign_gate_assertion(
        &self,
        payload: &Value,
        iat: i64,
        exp: i64,
    ) -> Result<String, KeyError> {
        if !payload.is_object() {
            return Err(KeyError::Signing);
        }
        let mut c = Claims::new(payload);
        c.expiration = Some(timestamp(exp)?);
        c.issued_at = Some(timestamp(iat)?);
        self.sign(GATE_ASSERTION_TYP, &c)
    }

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
        if jwt.len() > MAX_JWT_LEN {
            return Err(VerifyError::Malformed);
        }
        let t =
            UntrustedToken::<HeaderExtras>::try_from(jwt).map_err(|_| VerifyError::Malformed)?;
        if t.header().other_fields.crit.is_some() {
            return Err(VerifyError::Malformed);
        }
        let typ = t.header().token_type.as_deref().unwrap_or("");
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        if !typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) {
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
        .map_err(|e| match e {
            ValidationError::MalformedClaims(_) => VerifyError::Malformed,
            _ => VerifyError::BadSignature,
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
fn private_jwk(jwk: &JsonWebKey<'_>, kid: &str) -> Result<String, KeyError> {
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
    use crate::user_auth::{verify_user_jwt, Jwks, UserAuthConfig};
    use base64::Engine as _;
    use serde_json::json;

    const NOW: i64 = 1_795_000_000;
    const ISS: &str = "https://patgate.test";

    /// A fixed Ed25519 private JWK (seed 0x07 * 32).
    fn ed_fixed(kid: &str) -> String {
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7u8; 32]));
        let jwk = JsonWebKey::from(&kp.sk);
        private_jwk(&jwk, kid).expect("jwk")
    }

    /// A fixed P-256 private JWK (d = 0x05 * 32).
    fn es_fixed(kid: &str) -> String {
        let sk = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).expect("key");
        let jwk = JsonWebKey::from(&sk);
        private_jwk(&jwk, kid).expect("jwk")
    }

    fn keys(list: &[&str]) -> SigningKeys {
        SigningKeys::parse(&format!("[{}]", list.join(","))).expect("keys")
    }

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: ISS.into(),
            sub: "alice".into(),
            aud: vec!["demo_api".into()],
            iat: NOW,
            jti: "j1".into(),
            client_id: "pat_client".into(),
            scope: "demo_api:read".into(),
            pat_id: None,
            pat_gen: None,
        }
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    fn segment(jwt: &str, i: usize) -> Value {
        let part = jwt.split('.').nth(i).expect("segment");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64");
        serde_json::from_slice(&bytes).expect("json")
    }

    /// Flips one character in the middle of the signature (not the last one, whose low bits
    /// are padding).
    fn tamper(jwt: &str) -> String {
        let mut chars: Vec<char> = jwt.chars().collect();
        let i = chars.len() - 20;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    }

    #[test]
    fn round_trip_eddsa_and_es256() {
        let ed = SigningKeys::generate_ed25519("ed").expect("gen");
        let es = SigningKeys::generate_es256("es").expect("gen");
        for (jwk, alg) in [(ed, "EdDSA"), (es, "ES256")] {
            let k = keys(&[&jwk]);
            assert_eq!(k.algorithm(), alg);
            let jwt = k.sign_access_token(&claims(), NOW + 60).expect("sign");
            let header = segment(&jwt, 0);
            assert_eq!(header["typ"], "at+jwt");
            assert_eq!(header["alg"], alg);
            assert_eq!(header["kid"], k.signing_kid());
            let payload = segment(&jwt, 1);
            assert_eq!(payload["exp"], NOW + 60);
            assert_eq!(payload["iat"], NOW);
            assert_eq!(payload["aud"], json!(["demo_api"]));
            assert_eq!(k.verify_access_token(&jwt, NOW), Ok((claims(), NOW + 60)));
            assert_eq!(
                k.verify_access_token(&jwt, NOW + 59).map(|c| c.1),
                Ok(NOW + 60)
            );
        }
    }

    #[test]
    fn introspection_response() {
        let k = keys(&[&es_fixed("es")]);
        let payload = json!({"iss":ISS,"aud":"demo_api","iat":NOW,
                             "token_introspection":{"active":true,"sub":"alice"}});
        let jwt = k.sign_introspection(&payload).expect("sign");
        assert_eq!(segment(&jwt, 0)["typ"], "token-introspection+jwt");
        assert_eq!(segment(&jwt, 0)["kid"], "es");
        assert_eq!(segment(&jwt, 1), payload);
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let old = ed_fixed("old");
        let new = es_fixed("new");
        let before = keys(&[&old]);
        let jwt = before.sign_access_token(&claims(), NOW + 60).expect("sign");
        // Step 1: the new key is published but the old one still signs.
        let step1 = keys(&[&old, &new]);
        assert_eq!(step1.signing_kid(), "old");
        // Step 2: the new key signs; the old one is kept (or only its public part).
        let mut old_public: Value = serde_json::from_str(&old).expect("json");
        old_public.as_object_mut().map(|o| o.remove("d"));
        for after in [keys(&[&new, &old]), keys(&[&new, &old_public.to_string()])] {
            assert_eq!(after.signing_kid(), "new");
            assert_eq!(
                after.verify_access_token(&jwt, NOW).map(|c| c.0),
                Ok(claims())
            );
            let fresh = after.sign_access_token(&claims(), NOW + 60).expect("sign");
            assert_eq!(segment(&fresh, 0)["kid"], "new");
            assert_eq!(
                before.verify_access_token(&fresh, NOW),
                Err(VerifyError::UnknownKey)
            );
            assert_eq!(
                step1.verify_access_token(&fresh, NOW).map(|c| c.1),
                Ok(NOW + 60)
            );
            assert_eq!(after.algorithms(), vec!["ES256", "EdDSA"]);
        }
        // Step 3: the old key is gone.
        assert_eq!(
            keys(&[&new]).verify_access_token(&jwt, NOW),
            Err(VerifyError::UnknownKey)
        );
    }

    #[test]
    fn verify_error_malformed() {
        let k = keys(&[&ed_fixed("k")]);
        for bad in ["", "x.y", "a.b.c", "a.b.c.d"] {
            assert_eq!(
                k.verify_access_token(bad, NOW),
                Err(VerifyError::Malformed),
                "{bad}"
            );
        }
        let jwt = k.sign_access_token(&claims(), NOW + 60).expect("sign");
        let long = format!("{jwt}{}", "A".repeat(MAX_JWT_LEN));
        assert_eq!(
            k.verify_access_token(&long, NOW),
            Err(VerifyError::Malformed)
        );
        // Correctly signed claims of the wrong shape.
        let header = json!({"alg":"EdDSA","kid":"k","typ":"at+jwt"});
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7u8; 32]));
        let signed = |h: &Value, p: &Value| {
            let input = format!(
                "{}.{}",
                b64(h.to_string().as_bytes()),
                b64(p.to_string().as_bytes())
            );
            let sig = kp.sk.sign(input.as_bytes(), None);
            format!("{input}.{}", b64(sig.as_ref()))
        };
        let no_exp = json!({"iss":ISS,"sub":"a","aud":"x","jti":"j","client_id":"c","scope":"s"});
        assert_eq!(
            k.verify_access_token(&signed(&header, &no_exp), NOW),
            Err(VerifyError::Malformed)
        );
        let no_sub =
            json!({"iss":ISS,"aud":"x","jti":"j","client_id":"c","scope":"s","exp":NOW + 5});
        assert_eq!(
            k.verify_access_token(&signed(&header, &no_sub), NOW),
            Err(VerifyError::Malformed)
        );
        // `aud` as a single string is accepted.
        let mut one_aud = no_sub.clone();
        one_aud["sub"] = json!("a");
        let (c, exp) = k
            .verify_access_token(&signed(&header, &one_aud), NOW)
            .expect("ok");
        assert_eq!((c.aud, c.iat, exp), (vec!["x".to_owned()], 0, NOW + 5));
        // `crit` is refused.
        let crit = json!({"alg":"EdDSA","kid":"k","typ":"at+jwt","crit":["exp"]});
        assert_eq!(
            k.verify_access_token(&signed(&crit, &one_aud), NOW),
            Err(VerifyError::Malformed)
        );
        // `application/at+jwt` is the same type (RFC 9068 2.1).
        let long_typ = json!({"alg":"EdDSA","kid":"k","typ":"application/AT+JWT"});
        assert!(k
            .verify_access_token(&signed(&long_typ, &one_aud), NOW)
            .is_ok());
    }

    #[test]
    fn verify_error_wrong_type() {
        let k = keys(&[&ed_fixed("k")]);
        let intro = k.sign_introspection(&json!({"iss":ISS})).expect("sign");
        assert_eq!(
            k.verify_access_token(&intro, NOW),
            Err(VerifyError::WrongType)
        );
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7u8; 32]));
        let mut c = Claims::new(claims());
        c.expiration = DateTime::from_timestamp(NOW + 60, 0);
        let plain = Ed25519
            .token(&Header::empty().with_key_id("k"), &c, &kp.sk)
            .expect("sign");
        assert_eq!(
            k.verify_access_token(&plain, NOW),
            Err(VerifyError::WrongType)
        );
    }

    #[test]
    fn verify_error_unknown_key() {
        let k = keys(&[&ed_fixed("k")]);
        let other = keys(&[&ed_fixed("other")]);
        let jwt = other.sign_access_token(&claims(), NOW + 60).expect("sign");
        assert_eq!(
            k.verify_access_token(&jwt, NOW),
            Err(VerifyError::UnknownKey)
        );
        // Known kid but another algorithm.
        let es_as_k = keys(&[&es_fixed("k")]);
        let jwt = es_as_k
            .sign_access_token(&claims(), NOW + 60)
            .expect("sign");
        assert_eq!(
            k.verify_access_token(&jwt, NOW),
            Err(VerifyError::UnknownKey)
        );
        // No kid.
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7u8; 32]));
        let mut c = Claims::new(claims());
        c.expiration = DateTime::from_timestamp(NOW + 60, 0);
        let no_kid = Ed25519
            .token(&Header::empty().with_token_type("at+jwt"), &c, &kp.sk)
            .expect("sign");
        assert_eq!(
            k.verify_access_token(&no_kid, NOW),
            Err(VerifyError::UnknownKey)
        );
    }

    #[test]
    fn verify_error_bad_signature() {
        for jwk in [ed_fixed("k"), es_fixed("k")] {
            let k = keys(&[&jwk]);
            let jwt = k.sign_access_token(&claims(), NOW + 60).expect("sign");
            assert_eq!(
                k.verify_access_token(&tamper(&jwt), NOW),
                Err(VerifyError::BadSignature)
            );
            // Same kid, another key.
            let forged = keys(&[&SigningKeys::generate_ed25519("k").expect("gen")])
                .sign_access_token(&claims(), NOW + 60)
                .expect("sign");
            if k.algorithm() == "EdDSA" {
                assert_eq!(
                    k.verify_access_token(&forged, NOW),
                    Err(VerifyError::BadSignature)
                );
            }
            // A modified payload.
            let parts: Vec<&str> = jwt.split('.').collect();
            let mut payload = segment(&jwt, 1);
            payload["scope"] = json!("admin");
            let swapped = format!(
                "{}.{}.{}",
                parts[0],
                b64(payload.to_string().as_bytes()),
                parts[2]
            );
            assert_eq!(
                k.verify_access_token(&swapped, NOW),
                Err(VerifyError::BadSignature)
            );
        }
    }

    #[test]
    fn verify_error_expired_without_leeway() {
        let k = keys(&[&ed_fixed("k")]);
        let jwt = k.sign_access_token(&claims(), NOW + 60).expect("sign");
        assert!(k.verify_access_token(&jwt, NOW + 59).is_ok());
        assert_eq!(
            k.verify_access_token(&jwt, NOW + 60),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            k.verify_access_token(&jwt, i64::MAX),
            Err(VerifyError::Expired)
        );
    }

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
    fn key_error_signing() {
        let k = keys(&[&ed_fixed("k")]);
        assert_eq!(
            k.sign_introspection(&json!([1, 2])).err(),
            Some(KeyError::Signing)
        );
        assert_eq!(
            k.sign_access_token(&claims(), i64::MAX).err(),
            Some(KeyError::Signing)
        );
        let mut c = claims();
        c.iat = i64::MIN;
        assert_eq!(k.sign_access_token(&c, NOW).err(), Some(KeyError::Signing));
        // Randomness cannot be made to fail here; its message at least is distinct.
        assert_ne!(
            KeyError::Randomness.to_string(),
            KeyError::Signing.to_string()
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

    #[test]
    fn published_jwks_parses_as_user_keys_but_access_tokens_are_refused() {
        let k = keys(&[&ed_fixed("ed"), &es_fixed("es")]);
        let jwks = Jwks::parse(&k.jwks_json()).expect("jwks");
        assert_eq!(format!("{jwks:?}"), r#"Jwks["EdDSA:ed", "ES256:es"]"#);
        let cfg = UserAuthConfig {
            issuer: ISS.into(),
            audience: "demo_api".into(),
            hs256_secret: None,
            jwks: Some(jwks.clone()),
            jwks_url: None,
        };
        for signer in [
            keys(&[&ed_fixed("ed"), &es_fixed("es")]),
            keys(&[&es_fixed("es"), &ed_fixed("ed")]),
        ] {
            let jwt = signer
                .sign_access_token(&claims(), NOW + 600)
                .expect("sign");
            // The keys parse as user-JWT keys, but an access token (`typ` `at+jwt`) is never
            // a user identity, even when an operator points the user keys at patgate's JWKS.
            assert_eq!(
                verify_user_jwt(&cfg, None, &jwt, NOW),
                Err(crate::user_auth::AuthFailure::WrongType)
            );
            assert_eq!(
                verify_user_jwt(&cfg, Some(&jwks), &tamper(&jwt), NOW),
                Err(crate::user_auth::AuthFailure::WrongType)
            );
        }
    }

    #[test]
    fn messages() {
        assert_eq!(
            KeyError::BadKey(2).to_string(),
            "key #2 is not a valid Ed25519 (OKP) or P-256 (EC) JWK"
        );
        assert_eq!(
            VerifyError::WrongType.to_string(),
            "not an access token JWT"
        );
        assert_eq!(
            KeyError::DuplicateKid("a".into()).to_string(),
            "two keys have the kid \"a\""
        );
    }
}
