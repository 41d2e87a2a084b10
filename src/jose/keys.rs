//! Every key patgate reads, parsed in one place:
//!
//! - JWKs ([`parse_jwk`]): `OKP` `Ed25519` (`EdDSA`), `EC` `P-256` (ES256) and `RSA` (RS256,
//!   verification only, modulus of at least [`MIN_RSA_BITS`]), with the private part when one is
//!   wanted and present. A declared `alg` must be the one the key type implies.
//! - The identity provider's JWKS ([`Jwks`]): verification keys for user JWTs.
//! - patgate's own key set ([`SigningKeys`], the `JWT_SIGNING_KEYS` secret): a JSON array of
//!   JWKs, e.g. `[{"kty":"OKP","crv":"Ed25519","d":"..","x":"..","kid":"2026-11"}]`. Supported:
//!   `OKP` `Ed25519` and `EC` `P-256`; every key needs a unique `kid`. The first private key
//!   (one with `d`) signs; every key, private or public-only, is published and accepted for
//!   verification. Rotation without downtime: add the new key after the current one (published,
//!   not yet signing), wait for JWKS caches to refresh, move it first, and drop the old key (or
//!   keep only its public part) once the tokens it signed have expired.
//! - The HS256 shared secret of user JWTs ([`HmacSecret`]).
//! - P-256 public keys as PEM `PUBLIC KEY` ([`p256_public_key_from_pem`]): GitHub's secret
//!   scanning keys.
//!
//! `Debug` never shows key material.

use super::limits::MIN_RSA_BITS;
use base64::Engine as _;
use jwt_compact::{
    alg::{Ed25519, Es256, Rsa, RsaPublicKey},
    jwk::JsonWebKey,
    AlgorithmExt as _, Token, UntrustedToken, ValidationError,
};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Map, Value};
use std::fmt;

/// The HS256 shared secret. `Debug` never shows it.
#[derive(Clone)]
pub struct HmacSecret(Vec<u8>);

impl HmacSecret {
    /// Wraps the secret's UTF-8 bytes (used as the HMAC key as is, not base64-decoded).
    pub fn new(s: impl Into<String>) -> Self {
        HmacSecret(s.into().into_bytes())
    }

    /// Whether the secret is empty (an empty secret is never accepted as configuration).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key bytes.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<String> for HmacSecret {
    fn from(s: String) -> Self {
        HmacSecret::new(s)
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret([REDACTED])")
    }
}

/// A public key that verifies JWS signatures, by algorithm.
#[derive(Clone)]
pub(crate) enum PublicKey {
    Rs256(RsaPublicKey),
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_compact::PublicKey),
}

impl PublicKey {
    /// The JWS `alg` this key verifies.
    pub(crate) fn alg(&self) -> &'static str {
        match self {
            PublicKey::Rs256(_) => "RS256",
            PublicKey::Es256(_) => "ES256",
            PublicKey::EdDsa(_) => "EdDSA",
        }
    }

    /// Checks the signature of `t` with this key and decodes its claims (no claim is checked).
    pub(crate) fn validate<T, H>(
        &self,
        t: &UntrustedToken<'_, H>,
    ) -> Result<Token<T, H>, ValidationError>
    where
        T: serde::de::DeserializeOwned,
        H: Clone,
    {
        match self {
            PublicKey::Rs256(k) => Rsa::rs256().validator(k).validate(t),
            PublicKey::Es256(k) => Es256.validator(k).validate(t),
            PublicKey::EdDsa(k) => Ed25519.validator(k).validate(t),
        }
    }

    /// The public JWK as published: `kty`, `crv`, `x`, (`y`), `kid`, `alg`, `use`.
    fn public_jwk(&self, kid: &str) -> Option<Map<String, Value>> {
        let jwk = match self {
            PublicKey::EdDsa(k) => serde_json::to_value(JsonWebKey::from(k)),
            PublicKey::Es256(k) => serde_json::to_value(JsonWebKey::from(k)),
            PublicKey::Rs256(k) => serde_json::to_value(JsonWebKey::from(k)),
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

/// A private key that signs.
#[derive(Clone)]
pub(crate) enum PrivateKey {
    EdDsa(ed25519_compact::SecretKey),
    Es256(p256::ecdsa::SigningKey),
}

/// Parses one JWK into its public key and, when `with_private` and the JWK has `d`, its
/// private key (checked against the public part). `None` when the key is of an unsupported type
/// or curve, does not decode, is an RSA key shorter than [`MIN_RSA_BITS`] or with a private part
/// asked for, or declares an `alg` other than the one its type implies. `kid`, `use` and
/// `key_ops` are the caller's business.
pub(crate) fn parse_jwk(v: &Value, with_private: bool) -> Option<(PublicKey, Option<PrivateKey>)> {
    let str_field = |name: &str| v.get(name).and_then(Value::as_str);
    let jwk: JsonWebKey<'_> = serde_json::from_value(v.clone()).ok()?;
    let private = with_private && v.get("d").is_some();
    let (public, private) = match (str_field("kty"), str_field("crv")) {
        (Some("OKP"), Some("Ed25519")) if private => {
            // Checks that `x` matches `d`.
            let sk = ed25519_compact::SecretKey::try_from(&jwk).ok()?;
            (
                PublicKey::EdDsa(sk.public_key()),
                Some(PrivateKey::EdDsa(sk)),
            )
        }
        (Some("OKP"), Some("Ed25519")) => (
            PublicKey::EdDsa(ed25519_compact::PublicKey::try_from(&jwk).ok()?),
            None,
        ),
        (Some("EC"), Some("P-256")) if private => {
            // Checks that `x` and `y` match `d`.
            let sk = p256::ecdsa::SigningKey::try_from(&jwk).ok()?;
            (
                PublicKey::Es256(*sk.verifying_key()),
                Some(PrivateKey::Es256(sk)),
            )
        }
        (Some("EC"), Some("P-256")) => (
            PublicKey::Es256(p256::ecdsa::VerifyingKey::try_from(&jwk).ok()?),
            None,
        ),
        (Some("RSA"), _) if !private => {
            let pk = RsaPublicKey::try_from(&jwk).ok()?;
            if pk.n().bits() < MIN_RSA_BITS {
                return None;
            }
            (PublicKey::Rs256(pk), None)
        }
        _ => return None,
    };
    // A key that declares another algorithm than the one its type implies is not used.
    if v.get("alg")
        .is_some_and(|a| a.as_str() != Some(public.alg()))
    {
        return None;
    }
    Some((public, private))
}

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
    /// Supported: `kty` `RSA` (RS256, modulus of at least [`MIN_RSA_BITS`]), `EC` with `crv`
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

/// DER prefix of a `SubjectPublicKeyInfo` for an uncompressed P-256 point (id-ecPublicKey,
/// prime256v1, BIT STRING of 66 bytes): followed by the 65-byte point `04 || x || y`.
pub(crate) const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A PEM `PUBLIC KEY` (`SubjectPublicKeyInfo`) holding an uncompressed P-256 point.
///
/// # Errors
/// A short reason: not PEM, not base64, not an uncompressed P-256 key, not a point on the curve.
pub fn p256_public_key_from_pem(pem: &str) -> Result<p256::ecdsa::VerifyingKey, &'static str> {
    let inner = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|r| r.strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or("not a PEM PUBLIC KEY")?;
    let b64: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the PEM body is not base64")?;
    let point = der
        .strip_prefix(&SPKI_P256_PREFIX[..])
        .filter(|p| p.len() == 65)
        .ok_or("not an uncompressed P-256 public key")?;
    p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| "not a point on P-256")
}

/// Fixed and generated keys for the tests of `jose` (and of the app).
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) mod test_keys {
    use super::{private_jwk, SigningKeys};
    use jwt_compact::{alg::RsaPrivateKey, jwk::JsonWebKey};
    use serde_json::{json, Value};

    /// A fixed Ed25519 private JWK (seed 0x07 * 32).
    pub(crate) fn ed_fixed(kid: &str) -> String {
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7u8; 32]));
        let jwk = JsonWebKey::from(&kp.sk);
        private_jwk(&jwk, kid).expect("jwk")
    }

    /// A fixed P-256 private JWK (d = 0x05 * 32).
    pub(crate) fn es_fixed(kid: &str) -> String {
        let sk = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).expect("key");
        let jwk = JsonWebKey::from(&sk);
        private_jwk(&jwk, kid).expect("jwk")
    }

    pub(crate) fn keys(list: &[&str]) -> SigningKeys {
        SigningKeys::parse(&format!("[{}]", list.join(","))).expect("keys")
    }

    /// A 2048-bit RSA key generated with `openssl genrsa 2048` (test only).
    pub(crate) const RSA_JWK: &str = r#"{"kty": "RSA", "n": "7G9iBRvecZrTFfzYbTqDFtCMVk27NdNYBuv6_X0bEGnsECHzNuAFkYzpbGR2UKiYwdu_W6Bl0OK9XZjySy0KuI6zQgcKb_eFKRnLfjBAsKLbYTfaIn_ch5CRCSgLUgdoz6psJY2XpzbmMAW6wPW4wAl1r5lHg7JF1wef1EKg2j4lnoDDzVu7UwS2AeKgV56Zsq8deb5LTZEZAnNA_ziV29roNoAq0XWeRkEW4eiG-J0OO0gGP8wAIGtTFr5PvGE4Orry2pfVL_IfXrmtR6P1jTp-P4AJ9PSBbmUfSLXp7_lG6z6ppjMff7sorn7tySICfD9Ya2t4lbdp3EbPIJw64Q", "e": "AQAB", "d": "AjNfNDD4NxJ72H6L_ShIRBQY2kzK60tWTGox4d4iPFrgCZ5nRyF6q8ol-g5NU57eHR_QfifWCsWxgYeE6dI3gVRCsuCh5jzljmZhEIGeeIZriFIew6dxBAoCb5Vh1ZegEB7D9u2Eddf6-IN1I4ql95Oe9s10bvNf1wqJIE6mdKGO3w0FN_FgPgygO_rBRXeeb_SyhqB8GJunqO2SYjRvYdtwkG-M5VHUzVQ0qA45QcF61aekWZqyFzNsfK93ZgcVYcaa4PjGCr9MZngbcLtZkiaegr7OMGA3Ex2mbm1iH3ftuT58lIv5nwFfToVcTBCVe6lrmQe5hFTiDqERgFcDCQ", "p": "_dwVv-KC7OMQTOLGja3eLOeWYdjj-zHkuM-sFe-3CrsCnGdVuouHovGJkbZl1zLvWOiOtP3lJOqV41Rlo7D5HFa_NZvmvnoCBmVE0ZMMKnGdjwiYWvxlH-Q3L4Vynd67icvac_tt_7EsuKqELhuJnHMmIFlTFEWndtv-OWVzwi8", "q": "7m2wkVy_jF7Nrohzrdk4fcI6GsIAnow__Ok89x1uaW6PGKlY4g8RLuIkpB22LNfVv8IoG9sQHLj5qMnrhaWkyh0QcriK5I0WOc5v3DFS1xF2DATU02gF9YuNz9XOZbrEX3aYUpxEolVGH3u5xqJQZ5xxqTFvdDyW66bXN_kN3-8"}"#;

    /// A 1024-bit RSA public key (`openssl genrsa 1024`): too weak, skipped.
    pub(crate) const RSA_1024_JWK: &str = r#"{"kty": "RSA", "n": "pXeq6ILvQ6_3DD_2lEaWcYY7ypS3HpwGLbm7MF2yRcQW2nj_rVB2gEJQ8EOFP7HesISQhf8-BvtJ54CGvCMkIGxlgFNhkcs7oBxIF_mRol1QD5OE40O0jvVY1m9uoO9Vt-Q7IuuP1PyK1YZyOH3oIqK0G5yEIm0MuoixFA7osBE", "e": "AQAB"}"#;

    pub(crate) fn ed_pair(seed: u8) -> (ed25519_compact::SecretKey, Value) {
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]));
        let jwk = serde_json::to_value(JsonWebKey::from(&kp.pk)).expect("jwk");
        (kp.sk, jwk)
    }

    pub(crate) fn es_pair(seed: u8) -> (p256::ecdsa::SigningKey, Value) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("key");
        let jwk = serde_json::to_value(JsonWebKey::from(sk.verifying_key())).expect("jwk");
        (sk, jwk)
    }

    pub(crate) fn rsa_pair() -> (RsaPrivateKey, Value) {
        let jwk: JsonWebKey<'_> = serde_json::from_str(RSA_JWK).expect("jwk");
        let sk = RsaPrivateKey::try_from(&jwk).expect("rsa key");
        let public = serde_json::to_value(JsonWebKey::from(&sk.to_public_key())).expect("jwk");
        (sk, public)
    }

    pub(crate) fn with(mut v: Value, k: &str, val: &str) -> Value {
        v[k] = json!(val);
        v
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::test_keys::*;
    use super::*;
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

    #[test]
    fn pem_p256_public_keys() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).expect("key");
        let point = sk.verifying_key().to_encoded_point(false);
        let mut der = SPKI_P256_PREFIX.to_vec();
        der.extend_from_slice(point.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n");
        assert_eq!(
            p256_public_key_from_pem(&pem).expect("pem"),
            *sk.verifying_key()
        );
        let wrap = |body: &str| format!("-----BEGIN PUBLIC KEY-----{body}-----END PUBLIC KEY-----");
        let short = base64::engine::general_purpose::STANDARD.encode(&der[..der.len() - 1]);
        let mut off_curve = der.clone();
        off_curve[40] ^= 1;
        let off_curve = base64::engine::general_purpose::STANDARD.encode(&off_curve);
        for (bad, why) in [
            (String::new(), "not a PEM PUBLIC KEY"),
            (b64.clone(), "not a PEM PUBLIC KEY"),
            (wrap("!!"), "the PEM body is not base64"),
            (wrap(&short), "not an uncompressed P-256 public key"),
            (wrap(&off_curve), "not a point on P-256"),
        ] {
            assert_eq!(p256_public_key_from_pem(&bad).err(), Some(why), "{bad}");
        }
    }

    /// The one parser serves both uses: a private JWK gives the same public key whether it is
    /// read for signing or for verifying, and RSA is never a signing key.
    #[test]
    fn one_parser_for_signing_and_verifying() {
        for jwk in [ed_fixed("a"), es_fixed("b")] {
            let v: Value = serde_json::from_str(&jwk).expect("json");
            let (public, private) = parse_jwk(&v, true).expect("private");
            assert!(private.is_some());
            let (verify_only, none) = parse_jwk(&v, false).expect("public");
            assert!(none.is_none());
            assert_eq!(public.public_jwk("k"), verify_only.public_jwk("k"));
        }
        let (_, rsa) = rsa_pair();
        assert!(matches!(
            parse_jwk(&rsa, false),
            Some((PublicKey::Rs256(_), None))
        ));
        assert_eq!(
            SigningKeys::parse(&format!("[{}]", with(rsa, "kid", "r"))).err(),
            Some(KeyError::BadKey(0))
        );
    }

    proptest::proptest! {
        /// Any JSON-shaped JWK fields: no panic, and nothing usable from garbage.
        #[test]
        fn jwk_parser_never_panics(kty in "\\PC{0,8}", crv in "\\PC{0,10}", x in "\\PC{0,60}",
                                   y in "\\PC{0,60}", d in "\\PC{0,60}") {
            let v = json!({"kty": kty, "crv": crv, "x": x, "y": y, "d": d, "n": x, "e": y});
            let _ = parse_jwk(&v, true);
            let _ = parse_jwk(&v, false);
            let _ = Jwks::parse(&json!({"keys": [v.clone()]}).to_string());
            let _ = SigningKeys::parse(&json!([v]).to_string());
        }
    }
}
