//! Verifying the identity provider's user JWTs (the management API's authentication).
//!
//! patgate does not log users in: it trusts a JWT from the organisation's identity provider
//! (or Cloudflare Access) and verifies it at the edge with jwt-compact. Keys: an HS256 shared
//! secret, and/or RS256, ES256 and EdDSA public keys from an inline JWKS or a JWKS URL (fetched
//! and cached by the runtime). The user is the `sub` claim.

use chrono::{DateTime, Duration, Utc};
use jwt_compact::{
    alg::{Ed25519, Es256, Hs256, Hs256Key, Rsa, RsaPublicKey},
    jwk::JsonWebKey,
    AlgorithmExt as _, Claims, TimeOptions, Token, UntrustedToken,
};
use serde::Deserialize;
use std::fmt;

/// Longest JWT accepted (bytes).
pub const MAX_JWT_LEN: usize = 8192;
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;

/// The HS256 shared secret. `Debug` never shows it.
#[derive(Clone)]
pub struct HmacSecret(Vec<u8>);

impl HmacSecret {
    pub fn new(s: impl Into<String>) -> Self {
        HmacSecret(s.into().into_bytes())
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret([REDACTED])")
    }
}

/// A verifying key from a JWKS.
#[derive(Clone)]
enum KeyMaterial {
    Rs256(RsaPublicKey),
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_compact::PublicKey),
}

impl KeyMaterial {
    fn alg(&self) -> &'static str {
        match self {
            KeyMaterial::Rs256(_) => "RS256",
            KeyMaterial::Es256(_) => "ES256",
            KeyMaterial::EdDsa(_) => "EdDSA",
        }
    }
}

#[derive(Clone)]
struct Jwk {
    kid: Option<String>,
    key: KeyMaterial,
}

/// Public keys from a JWKS document.
#[derive(Clone, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
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

/// Why a JWKS document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    NotJson,
    NoKeysArray,
}

impl Jwks {
    /// Parses `{"keys":[...]}`. Keys of unsupported types, curves or uses (`enc`) are skipped.
    pub fn parse(json: &str) -> Result<Jwks, JwksError> {
        let doc: serde_json::Value = serde_json::from_str(json).map_err(|_| JwksError::NotJson)?;
        let keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or(JwksError::NoKeysArray)?;
        Ok(Jwks {
            keys: keys.iter().filter_map(parse_jwk).collect(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

fn parse_jwk(v: &serde_json::Value) -> Option<Jwk> {
    if v.get("use")
        .and_then(|u| u.as_str())
        .is_some_and(|u| u != "sig")
    {
        return None;
    }
    let kid = v.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
    let declared_alg = v.get("alg").and_then(|a| a.as_str());
    let jwk: JsonWebKey<'_> = serde_json::from_value(v.clone()).ok()?;
    let key = match v.get("kty").and_then(|k| k.as_str())? {
        "RSA" => KeyMaterial::Rs256(RsaPublicKey::try_from(&jwk).ok()?),
        "EC" if v.get("crv").and_then(|c| c.as_str()) == Some("P-256") => {
            KeyMaterial::Es256(p256::ecdsa::VerifyingKey::try_from(&jwk).ok()?)
        }
        "OKP" if v.get("crv").and_then(|c| c.as_str()) == Some("Ed25519") => {
            KeyMaterial::EdDsa(ed25519_compact::PublicKey::try_from(&jwk).ok()?)
        }
        _ => return None,
    };
    // A key that declares another algorithm than the one its type implies is not used.
    if declared_alg.is_some_and(|a| a != key.alg()) {
        return None;
    }
    Some(Jwk { kid, key })
}

/// How users are authenticated (README "Configuration").
#[derive(Debug, Clone)]
pub struct UserAuthConfig {
    pub issuer: String,
    pub audience: String,
    pub hs256_secret: Option<HmacSecret>,
    pub jwks: Option<Jwks>,
    pub jwks_url: Option<String>,
}

impl UserAuthConfig {
    /// Builds the configuration from vars; an unparsable inline JWKS is a configuration error.
    pub fn from_parts(
        issuer: String,
        audience: String,
        hs256_secret: Option<String>,
        jwks_json: Option<String>,
        jwks_url: Option<String>,
    ) -> Result<Self, String> {
        let jwks = jwks_json
            .map(|j| Jwks::parse(&j).map_err(|e| format!("USER_JWKS is not a JWKS: {e:?}")))
            .transpose()?;
        Ok(UserAuthConfig {
            issuer,
            audience,
            hs256_secret: hs256_secret.map(HmacSecret::new),
            jwks,
            jwks_url,
        })
    }
}

/// Why a user JWT was refused (logged; the client sees only "invalid" or "expired").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Malformed,
    UnsupportedAlgorithm,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    MissingSubject,
}

impl AuthFailure {
    pub fn is_expired(self) -> bool {
        self == AuthFailure::Expired
    }

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
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct UserClaims {
    iss: Option<String>,
    aud: Option<Audience>,
    sub: Option<String>,
}

fn time_options(now: i64) -> TimeOptions<impl Fn() -> DateTime<Utc>> {
    let at = DateTime::from_timestamp(now, 0).unwrap_or_default();
    TimeOptions::new(Duration::seconds(LEEWAY_SECS), move || at)
}

/// Verifies a user JWT and returns its `sub`. `fetched` is the JWKS from `jwks_url`, if any.
pub fn verify_user_jwt(
    cfg: &UserAuthConfig,
    fetched: Option<&Jwks>,
    jwt: &str,
    now: i64,
) -> Result<String, AuthFailure> {
    if jwt.len() > MAX_JWT_LEN {
        return Err(AuthFailure::Malformed);
    }
    let untrusted = UntrustedToken::new(jwt).map_err(|_| AuthFailure::Malformed)?;
    let alg = untrusted.algorithm();
    let token: Token<UserClaims> = if alg == "HS256" {
        let secret = cfg
            .hs256_secret
            .as_ref()
            .ok_or(AuthFailure::UnsupportedAlgorithm)?;
        let key = Hs256Key::new(&secret.0);
        Hs256
            .validator(&key)
            .validate(&untrusted)
            .map_err(|_| AuthFailure::BadSignature)?
    } else {
        if !matches!(alg, "RS256" | "ES256" | "EdDSA") {
            return Err(AuthFailure::UnsupportedAlgorithm);
        }
        let kid = untrusted.header().key_id.as_deref();
        let candidates: Vec<&Jwk> = cfg
            .jwks
            .iter()
            .chain(fetched)
            .flat_map(|j| j.keys.iter())
            .filter(|k| k.key.alg() == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .collect();
        if candidates.is_empty() {
            return Err(AuthFailure::UnknownKey);
        }
        candidates
            .into_iter()
            .find_map(|k| verify_with(&k.key, &untrusted))
            .ok_or(AuthFailure::BadSignature)?
    };
    check_claims(cfg, token.claims(), now)
}

fn verify_with(key: &KeyMaterial, t: &UntrustedToken<'_>) -> Option<Token<UserClaims>> {
    match key {
        KeyMaterial::Rs256(k) => Rsa::rs256().validator(k).validate(t).ok(),
        KeyMaterial::Es256(k) => Es256.validator(k).validate(t).ok(),
        KeyMaterial::EdDsa(k) => Ed25519.validator(k).validate(t).ok(),
    }
}

fn check_claims(
    cfg: &UserAuthConfig,
    claims: &Claims<UserClaims>,
    now: i64,
) -> Result<String, AuthFailure> {
    let opts = time_options(now);
    if claims.expiration.is_none() {
        return Err(AuthFailure::Expired);
    }
    claims
        .validate_expiration(&opts)
        .map_err(|_| AuthFailure::Expired)?;
    if claims.not_before.is_some() {
        claims
            .validate_maturity(&opts)
            .map_err(|_| AuthFailure::NotYetValid)?;
    }
    let c = &claims.custom;
    if c.iss.as_deref() != Some(cfg.issuer.as_str()) {
        return Err(AuthFailure::WrongIssuer);
    }
    let aud_ok = match &c.aud {
        Some(Audience::One(a)) => *a == cfg.audience,
        Some(Audience::Many(list)) => list.contains(&cfg.audience),
        None => false,
    };
    if !aud_ok {
        return Err(AuthFailure::WrongAudience);
    }
    match c.sub.as_deref() {
        Some(s) if !s.is_empty() && s.len() <= 255 => Ok(s.to_owned()),
        _ => Err(AuthFailure::MissingSubject),
    }
}

#[cfg(test)]
#[allow(clippy::similar_names, clippy::needless_pass_by_value)]
mod tests {
    use super::*;
    use jwt_compact::Header;
    use serde_json::json;

    const NOW: i64 = 1_795_000_000;

    fn cfg(jwks: Option<Jwks>) -> UserAuthConfig {
        UserAuthConfig {
            issuer: "idp".into(),
            audience: "patgate".into(),
            hs256_secret: Some(HmacSecret::new("s3cret")),
            jwks,
            jwks_url: None,
        }
    }

    fn claims(extra: serde_json::Value) -> Claims<serde_json::Value> {
        let mut base = json!({"iss":"idp","aud":"patgate","sub":"alice"});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let mut c = Claims::new(base);
        c.expiration = DateTime::from_timestamp(NOW + 600, 0);
        c
    }

    fn hs(secret: &str, c: &Claims<serde_json::Value>) -> String {
        Hs256
            .token(&Header::empty(), c, &Hs256Key::new(secret.as_bytes()))
            .expect("sign")
    }

    fn ed_pair(seed: u8) -> (ed25519_compact::SecretKey, serde_json::Value) {
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]));
        let jwk = serde_json::to_value(JsonWebKey::from(&kp.pk)).expect("jwk");
        (kp.sk, jwk)
    }

    fn es_pair(seed: u8) -> (p256::ecdsa::SigningKey, serde_json::Value) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("key");
        let jwk = serde_json::to_value(JsonWebKey::from(sk.verifying_key())).expect("jwk");
        (sk, jwk)
    }

    fn with(mut v: serde_json::Value, k: &str, val: &str) -> serde_json::Value {
        v[k] = json!(val);
        v
    }

    #[test]
    fn hs256_happy_path_and_audience_list() {
        let t = hs("s3cret", &claims(json!({})));
        assert_eq!(
            verify_user_jwt(&cfg(None), None, &t, NOW),
            Ok("alice".into())
        );
        let t = hs("s3cret", &claims(json!({"aud":["other","patgate"]})));
        assert_eq!(
            verify_user_jwt(&cfg(None), None, &t, NOW),
            Ok("alice".into())
        );
    }

    #[test]
    fn each_failure() {
        let c = cfg(None);
        let check = |t: &str, f| assert_eq!(verify_user_jwt(&c, None, t, NOW), Err(f));
        check("garbage", AuthFailure::Malformed);
        check(&"a".repeat(MAX_JWT_LEN + 1), AuthFailure::Malformed);
        check(&hs("wrong", &claims(json!({}))), AuthFailure::BadSignature);
        check(
            &hs("s3cret", &claims(json!({"iss":"evil"}))),
            AuthFailure::WrongIssuer,
        );
        check(
            &hs("s3cret", &claims(json!({"aud":"other"}))),
            AuthFailure::WrongAudience,
        );
        check(
            &hs("s3cret", &claims(json!({"sub":""}))),
            AuthFailure::MissingSubject,
        );
        let mut expired = claims(json!({}));
        expired.expiration = DateTime::from_timestamp(NOW - LEEWAY_SECS - 1, 0);
        check(&hs("s3cret", &expired), AuthFailure::Expired);
        let mut no_exp = claims(json!({}));
        no_exp.expiration = None;
        check(&hs("s3cret", &no_exp), AuthFailure::Expired);
        let mut future = claims(json!({}));
        future.not_before = DateTime::from_timestamp(NOW + LEEWAY_SECS + 10, 0);
        check(&hs("s3cret", &future), AuthFailure::NotYetValid);
        // alg none
        let none = format!(
            "{}.{}.",
            base64_url(br#"{"alg":"none"}"#),
            base64_url(br#"{"iss":"idp","aud":"patgate","sub":"x","exp":9999999999}"#)
        );
        check(&none, AuthFailure::UnsupportedAlgorithm);
        // HS256 without a configured secret
        let no_secret = UserAuthConfig {
            hs256_secret: None,
            ..cfg(None)
        };
        assert_eq!(
            verify_user_jwt(&no_secret, None, &hs("s3cret", &claims(json!({}))), NOW),
            Err(AuthFailure::UnsupportedAlgorithm)
        );
    }

    fn base64_url(b: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    #[test]
    fn eddsa_and_es256_from_inline_or_fetched_jwks() {
        let (ed_sk, ed_jwk) = ed_pair(7);
        let (es_sk, es_jwk) = es_pair(9);
        let doc = json!({"keys":[with(ed_jwk, "kid", "ed1"), with(es_jwk, "kid", "es1"),
                                 {"kty":"oct","k":"AAAA"}, {"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]});
        let jwks = Jwks::parse(&doc.to_string()).expect("jwks");
        assert_eq!(jwks.len(), 2, "unsupported keys are skipped");
        let ed = Ed25519
            .token(
                &Header::empty().with_key_id("ed1"),
                &claims(json!({})),
                &ed_sk,
            )
            .expect("sign");
        let es = Es256
            .token(
                &Header::empty().with_key_id("es1"),
                &claims(json!({})),
                &es_sk,
            )
            .expect("sign");
        let inline = cfg(Some(jwks.clone()));
        assert_eq!(verify_user_jwt(&inline, None, &ed, NOW), Ok("alice".into()));
        assert_eq!(verify_user_jwt(&inline, None, &es, NOW), Ok("alice".into()));
        assert_eq!(
            verify_user_jwt(&cfg(None), Some(&jwks), &es, NOW),
            Ok("alice".into())
        );
        // unknown kid, and no key at all
        let other = Ed25519
            .token(
                &Header::empty().with_key_id("nope"),
                &claims(json!({})),
                &ed_sk,
            )
            .expect("sign");
        assert_eq!(
            verify_user_jwt(&inline, None, &other, NOW),
            Err(AuthFailure::UnknownKey)
        );
        assert_eq!(
            verify_user_jwt(&cfg(None), None, &ed, NOW),
            Err(AuthFailure::UnknownKey)
        );
        // right kid, wrong key
        let (bad_sk, _) = ed_pair(8);
        let forged = Ed25519
            .token(
                &Header::empty().with_key_id("ed1"),
                &claims(json!({})),
                &bad_sk,
            )
            .expect("sign");
        assert_eq!(
            verify_user_jwt(&inline, None, &forged, NOW),
            Err(AuthFailure::BadSignature)
        );
    }

    #[test]
    fn rs256_with_a_real_key() {
        let mut rng = rand_core::OsRng;
        let sk = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("rsa key");
        let pk = sk.to_public_key();
        let jwk = serde_json::to_value(JsonWebKey::from(&pk)).expect("jwk");
        let jwks = Jwks::parse(&json!({"keys":[jwk]}).to_string()).expect("jwks");
        let t = Rsa::rs256()
            .token(&Header::empty(), &claims(json!({})), &sk)
            .expect("sign");
        assert_eq!(
            verify_user_jwt(&cfg(Some(jwks)), None, &t, NOW),
            Ok("alice".into())
        );
    }

    #[test]
    fn jwks_errors_and_enc_keys() {
        assert_eq!(Jwks::parse("nope").map(|_| ()), Err(JwksError::NotJson));
        assert_eq!(Jwks::parse("{}").map(|_| ()), Err(JwksError::NoKeysArray));
        let (_, jwk) = ed_pair(1);
        let enc = with(jwk.clone(), "use", "enc");
        assert!(Jwks::parse(&json!({"keys":[enc]}).to_string())
            .expect("ok")
            .is_empty());
        let wrong_alg = with(jwk, "alg", "RS256");
        assert!(Jwks::parse(&json!({"keys":[wrong_alg]}).to_string())
            .expect("ok")
            .is_empty());
    }

    #[test]
    fn debug_is_redacted() {
        assert!(!format!("{:?}", HmacSecret::new("s3cret")).contains("s3cret"));
        assert!(!format!("{:?}", cfg(None)).contains("s3cret"));
    }
}
