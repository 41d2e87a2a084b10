//! Tests of user JWT verification: round trips per algorithm and key source, and one test per
//! failure.

#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::similar_names)]

use super::*;
use crate::jose::jwks::JwksError;
use crate::jose::keys::test_keys::{ed_pair, es_pair, rsa_pair, with};
use crate::jose::limits::MAX_JWT_LEN;
use crate::jose::verify::looks_like_jwt;
use base64::Engine as _;
use chrono::DateTime;
use jwt_compact::{
    alg::{Ed25519, Es256, Rsa},
    Header,
};
use serde_json::json;

const NOW: i64 = 1_795_000_000;
const SECRET: &str = "an-hs256-secret-of-32-bytes-long";

fn cfg(jwks: Option<Jwks>) -> UserAuthConfig {
    UserAuthConfig {
        issuer: "https://idp.example".into(),
        audience: "patgate".into(),
        hs256_secret: Some(HmacSecret::new(SECRET)),
        jwks,
        jwks_url: None,
    }
}

/// Valid claims (expiring in 10 minutes), with `extra` merged in (`null` removes a claim).
fn claims(extra: &Value) -> Claims<Value> {
    let mut base = json!({"iss":"https://idp.example","aud":"patgate","sub":"alice"});
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    let mut c = Claims::new(base);
    c.expiration = DateTime::from_timestamp(NOW + 600, 0);
    c.issued_at = DateTime::from_timestamp(NOW, 0);
    c
}

fn ok() -> Claims<Value> {
    claims(&json!({}))
}

fn hs(secret: &str, c: &Claims<Value>) -> String {
    Hs256
        .token(&Header::empty(), c, &Hs256Key::new(secret.as_bytes()))
        .expect("sign")
}

fn ed_token(kid: Option<&str>, sk: &ed25519_compact::SecretKey, c: &Claims<Value>) -> String {
    let header = kid.map_or_else(Header::empty, |k| Header::empty().with_key_id(k));
    Ed25519.token(&header, c, sk).expect("sign")
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A token with an arbitrary header and payload, signed with HS256 and [`SECRET`].
fn hs_raw(header: &Value, payload: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let key = Hs256Key::new(SECRET.as_bytes());
    let sig = jwt_compact::Algorithm::sign(&Hs256, &key, signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        b64(jwt_compact::AlgorithmSignature::as_bytes(&sig).as_ref())
    )
}

fn check(c: &UserAuthConfig, fetched: Option<&Jwks>, jwt: &str) -> Result<String, AuthFailure> {
    verify_user_jwt(c, fetched, jwt, NOW)
}

#[test]
fn hs256_round_trip_with_audience_string_or_list() {
    assert_eq!(
        check(&cfg(None), None, &hs(SECRET, &ok())),
        Ok("alice".into())
    );
    let listed = claims(&json!({"aud":["other","patgate"]}));
    assert_eq!(
        check(&cfg(None), None, &hs(SECRET, &listed)),
        Ok("alice".into())
    );
    let raw = hs_raw(
        &json!({"alg":"HS256","typ":"JWT"}),
        &json!({
        "iss":"https://idp.example","aud":"patgate","sub":"bob","exp":NOW + 5}),
    );
    assert_eq!(check(&cfg(None), None, &raw), Ok("bob".into()));
}

#[test]
fn rs256_es256_eddsa_round_trips() {
    let (rsa_sk, rsa_jwk) = rsa_pair();
    let (ed_sk, ed_jwk) = ed_pair(7);
    let (es_sk, es_jwk) = es_pair(9);
    let doc = json!({"keys":[with(rsa_jwk, "kid", "rsa1"), with(ed_jwk, "kid", "ed1"),
                             with(es_jwk, "kid", "es1")]});
    let jwks = Jwks::parse(&doc.to_string()).expect("jwks");
    assert_eq!(jwks.len(), 3);
    let rs = Rsa::rs256()
        .token(&Header::empty().with_key_id("rsa1"), &ok(), &rsa_sk)
        .expect("sign");
    let es = Es256
        .token(&Header::empty().with_key_id("es1"), &ok(), &es_sk)
        .expect("sign");
    let ed = ed_token(Some("ed1"), &ed_sk, &ok());
    let inline = cfg(Some(jwks.clone()));
    for t in [&rs, &es, &ed] {
        assert_eq!(check(&inline, None, t), Ok("alice".into()));
        // The same keys fetched from jwks_url instead of inline.
        assert_eq!(check(&cfg(None), Some(&jwks), t), Ok("alice".into()));
    }
    // Without a kid, every key of the token's alg is tried.
    let rs_no_kid = Rsa::rs256()
        .token(&Header::empty(), &ok(), &rsa_sk)
        .expect("sign");
    assert_eq!(check(&inline, None, &rs_no_kid), Ok("alice".into()));
}

#[test]
fn kidless_token_tries_every_key_of_its_alg() {
    let (_, first) = ed_pair(1);
    let (sk, second) = ed_pair(2);
    let jwks = Jwks::parse(&json!({"keys":[first, second]}).to_string()).expect("jwks");
    let t = ed_token(None, &sk, &ok());
    assert_eq!(check(&cfg(Some(jwks)), None, &t), Ok("alice".into()));
}

#[test]
fn looks_like_jwt_is_the_cheap_shape_check() {
    let t = hs(SECRET, &ok());
    assert!(looks_like_jwt(&t));
    let padded = format!("{t}{}", "A".repeat(MAX_JWT_LEN - t.len()));
    assert!(looks_like_jwt(&padded));
    assert!(!looks_like_jwt(&format!("{padded}A")));
    for bad in [
        "", "a.b", "a.b.c.d", "a.b.c=", "a.b.c d", "a.b.c\n", "pga_abc", "a.b.c/",
    ] {
        assert!(!looks_like_jwt(bad), "{bad:?}");
    }
    assert!(looks_like_jwt("a.b.c") && looks_like_jwt(".."));
}

#[test]
fn failure_malformed() {
    let c = cfg(None);
    for bad in ["", "garbage", "a.b", "a.b.c.d", "!!.??.**"] {
        assert_eq!(check(&c, None, bad), Err(AuthFailure::Malformed), "{bad}");
    }
    let long = format!("{}.{}", hs(SECRET, &ok()), "a".repeat(MAX_JWT_LEN));
    assert_eq!(check(&c, None, &long), Err(AuthFailure::Malformed));
    // Correctly signed, but `exp` missing, `exp` of the wrong type, or a `crit` header.
    let mut no_exp = ok();
    no_exp.expiration = None;
    assert_eq!(
        check(&c, None, &hs(SECRET, &no_exp)),
        Err(AuthFailure::Malformed)
    );
    let typed = hs_raw(
        &json!({"alg":"HS256"}),
        &json!({
        "iss":"https://idp.example","aud":"patgate","sub":"bob","exp":"tomorrow"}),
    );
    assert_eq!(check(&c, None, &typed), Err(AuthFailure::Malformed));
    let crit = hs_raw(
        &json!({"alg":"HS256","crit":["b64"],"b64":false}),
        &json!({
        "iss":"https://idp.example","aud":"patgate","sub":"bob","exp":NOW + 5}),
    );
    assert_eq!(check(&c, None, &crit), Err(AuthFailure::Malformed));
    // Malformed claims with an asymmetric key too.
    let (sk, jwk) = ed_pair(3);
    let jwks = Jwks::parse(&json!({"keys":[jwk]}).to_string()).expect("jwks");
    assert_eq!(
        check(&cfg(Some(jwks)), None, &ed_token(None, &sk, &no_exp)),
        Err(AuthFailure::Malformed)
    );
}

#[test]
fn failure_unsupported_algorithm() {
    let c = cfg(None);
    let payload = json!({"iss":"https://idp.example","aud":"patgate","sub":"x","exp":NOW + 5});
    for alg in [
        "none", "None", "HS384", "HS512", "PS256", "RS512", "ES384", "ES256K", "",
    ] {
        let t = format!(
            "{}.{}.",
            b64(json!({"alg":alg}).to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        assert_eq!(
            check(&c, None, &t),
            Err(AuthFailure::UnsupportedAlgorithm),
            "{alg}"
        );
    }
    // HS256 without a configured secret (or with an empty one).
    let t = hs(SECRET, &ok());
    for secret in [None, Some(HmacSecret::new(""))] {
        let no_secret = UserAuthConfig {
            hs256_secret: secret,
            ..cfg(None)
        };
        assert_eq!(
            check(&no_secret, None, &t),
            Err(AuthFailure::UnsupportedAlgorithm)
        );
    }
}

#[test]
fn failure_unknown_key() {
    let (sk, jwk) = ed_pair(7);
    let (_, es_jwk) = es_pair(9);
    let jwks = Jwks::parse(
        &json!({"keys":[with(jwk, "kid", "ed1"), with(es_jwk, "kid", "es1")]}).to_string(),
    )
    .expect("jwks");
    let c = cfg(Some(jwks));
    // A kid nobody has.
    assert_eq!(
        check(&c, None, &ed_token(Some("nope"), &sk, &ok())),
        Err(AuthFailure::UnknownKey)
    );
    // A kid of a key of another algorithm.
    assert_eq!(
        check(&c, None, &ed_token(Some("es1"), &sk, &ok())),
        Err(AuthFailure::UnknownKey)
    );
    // No keys at all.
    assert_eq!(
        check(&cfg(None), None, &ed_token(None, &sk, &ok())),
        Err(AuthFailure::UnknownKey)
    );
    // No key of the token's algorithm.
    let (rsa_sk, _) = rsa_pair();
    let rs = Rsa::rs256()
        .token(&Header::empty(), &ok(), &rsa_sk)
        .expect("sign");
    assert_eq!(check(&c, None, &rs), Err(AuthFailure::UnknownKey));
}

#[test]
fn failure_bad_signature() {
    assert_eq!(
        check(&cfg(None), None, &hs("another-secret", &ok())),
        Err(AuthFailure::BadSignature)
    );
    // Right kid, wrong private key.
    let (_, jwk) = ed_pair(7);
    let (forger, _) = ed_pair(8);
    let jwks = Jwks::parse(&json!({"keys":[with(jwk, "kid", "ed1")]}).to_string()).expect("jwks");
    let c = cfg(Some(jwks));
    assert_eq!(
        check(&c, None, &ed_token(Some("ed1"), &forger, &ok())),
        Err(AuthFailure::BadSignature)
    );
    assert_eq!(
        check(&c, None, &ed_token(None, &forger, &ok())),
        Err(AuthFailure::BadSignature)
    );
    // A modified payload, and a truncated signature.
    let t = hs(SECRET, &ok());
    let parts: Vec<&str> = t.split('.').collect();
    let evil = b64(
        json!({"iss":"https://idp.example","aud":"patgate","sub":"root","exp":NOW + 600})
            .to_string()
            .as_bytes(),
    );
    let swapped = format!("{}.{evil}.{}", parts[0], parts[2]);
    assert_eq!(
        check(&cfg(None), None, &swapped),
        Err(AuthFailure::BadSignature)
    );
    let short = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..12]);
    assert_eq!(
        check(&cfg(None), None, &short),
        Err(AuthFailure::BadSignature)
    );
}

#[test]
fn failure_expired_with_leeway() {
    let c = cfg(None);
    let at = |exp: i64| {
        let mut cl = ok();
        cl.expiration = DateTime::from_timestamp(exp, 0);
        hs(SECRET, &cl)
    };
    assert_eq!(
        check(&c, None, &at(NOW - LEEWAY_SECS + 1)),
        Ok("alice".into())
    );
    assert_eq!(
        check(&c, None, &at(NOW - LEEWAY_SECS)),
        Err(AuthFailure::Expired)
    );
    assert_eq!(
        check(&c, None, &at(NOW - 86_400)),
        Err(AuthFailure::Expired)
    );
    assert!(AuthFailure::Expired.is_expired());
    assert!(!AuthFailure::BadSignature.is_expired());
}

#[test]
fn failure_not_yet_valid_with_leeway() {
    let c = cfg(None);
    let at = |nbf: i64| {
        let mut cl = ok();
        cl.not_before = DateTime::from_timestamp(nbf, 0);
        hs(SECRET, &cl)
    };
    assert_eq!(check(&c, None, &at(NOW + LEEWAY_SECS)), Ok("alice".into()));
    assert_eq!(
        check(&c, None, &at(NOW + LEEWAY_SECS + 1)),
        Err(AuthFailure::NotYetValid)
    );
    // Extreme timestamps do not overflow.
    let extreme = hs_raw(
        &json!({"alg":"HS256"}),
        &json!({"iss":"https://idp.example",
        "aud":"patgate","sub":"x","exp":NOW + 5,"nbf":-8_334_601_228_800_i64}),
    );
    assert_eq!(check(&c, None, &extreme), Ok("x".into()));
    assert_eq!(
        verify_user_jwt(&c, None, &at(NOW), i64::MIN),
        Err(AuthFailure::NotYetValid)
    );
    assert_eq!(
        verify_user_jwt(&c, None, &at(NOW), i64::MAX),
        Err(AuthFailure::Expired)
    );
}

#[test]
fn failure_wrong_issuer() {
    let c = cfg(None);
    for iss in [
        json!("https://evil.example"),
        json!(null),
        json!(42),
        json!(["https://idp.example"]),
    ] {
        let t = hs(SECRET, &claims(&json!({"iss": iss})));
        assert_eq!(check(&c, None, &t), Err(AuthFailure::WrongIssuer), "{iss}");
    }
}

#[test]
fn failure_wrong_audience() {
    let c = cfg(None);
    for aud in [
        json!("other"),
        json!(null),
        json!([]),
        json!(["a", "b"]),
        json!(7),
        json!(["patgate", 7]),
        json!({"patgate": true}),
    ] {
        let t = hs(SECRET, &claims(&json!({"aud": aud})));
        assert_eq!(
            check(&c, None, &t),
            Err(AuthFailure::WrongAudience),
            "{aud}"
        );
    }
}

#[test]
fn failure_wrong_type() {
    let c = cfg(None);
    let payload = json!({"iss":"https://idp.example","aud":"patgate","sub":"bob","exp":NOW + 5});
    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/At+Jwt",
        "token-introspection+jwt",
        "application/token-introspection+jwt",
        "patgate-assertion+jwt",
        "application/PATGATE-ASSERTION+JWT",
        "patgate",
        "secevent+jwt",
        " at+jwt ",
    ] {
        let t = hs_raw(&json!({"alg":"HS256","typ":typ}), &payload);
        assert_eq!(check(&c, None, &t), Err(AuthFailure::WrongType), "{typ}");
    }
    for typ in ["JWT", "jwt", "application/jwt", "JOSE"] {
        let t = hs_raw(&json!({"alg":"HS256","typ":typ}), &payload);
        assert_eq!(check(&c, None, &t), Ok("bob".into()), "{typ}");
    }
    let untyped = hs_raw(&json!({"alg":"HS256"}), &payload);
    assert_eq!(check(&c, None, &untyped), Ok("bob".into()));
}

/// A real patgate access token (RFC 9068, `typ` `at+jwt`, signed by patgate's key) is refused
/// as a user identity even when the identity provider's keys include patgate's key and the
/// issuer and audience match.
#[test]
fn patgate_access_token_is_not_a_user_identity() {
    let keys = crate::jose::SigningKeys::parse(
        &crate::jose::SigningKeys::generate_ed25519("k1")
            .map(|k| format!("[{k}]"))
            .expect("gen"),
    )
    .expect("keys");
    // From JSON, so that claims added later (optional ones) do not break this test.
    let mut claims: crate::jose::AccessTokenClaims = serde_json::from_value(json!({
        "iss": "https://idp.example", "sub": "alice", "aud": ["patgate"], "jti": "j",
        "client_id": "pat_client", "scope": "demo_api:read"}))
    .expect("claims");
    claims.iat = NOW;
    let at = keys.sign_access_token(&claims, NOW + 600).expect("sign");
    let jwks = Jwks::parse(&keys.jwks_json()).expect("jwks");
    assert_eq!(
        check(&cfg(Some(jwks)), None, &at),
        Err(AuthFailure::WrongType)
    );
}

#[test]
fn failure_missing_subject() {
    let c = cfg(None);
    for sub in [
        json!(null),
        json!(""),
        json!(" "),
        json!("\t \u{3000}"),
        json!("alice\n"),
        json!("al\u{0}ice"),
        json!("bob\u{1b}[31m"),
        json!("\u{85}"),
        json!(42),
        json!(["alice"]),
        json!("x".repeat(256)),
    ] {
        let t = hs(SECRET, &claims(&json!({"sub": sub})));
        assert_eq!(
            check(&c, None, &t),
            Err(AuthFailure::MissingSubject),
            "{sub}"
        );
    }
    // 255 characters (more bytes) is fine.
    let long = "é".repeat(MAX_SUBJECT_CHARS);
    let t = hs(SECRET, &claims(&json!({"sub": long})));
    assert_eq!(check(&c, None, &t), Ok(long));
}

#[test]
fn config_from_parts() {
    let c = UserAuthConfig::from_parts(
        "iss".into(),
        "aud".into(),
        Some("s".into()),
        Some(r#"{"keys":[]}"#.into()),
        Some("https://idp/jwks".into()),
    )
    .expect("config");
    assert!(c.jwks.is_some_and(|j| j.is_empty()));
    assert!(
        UserAuthConfig::from_parts("iss".into(), "aud".into(), None, Some("{".into()), None)
            .is_err_and(|e| e.contains("USER_JWKS"))
    );
    assert!(UserAuthConfig::from_parts(
        "iss".into(),
        "aud".into(),
        Some(String::new()),
        None,
        None
    )
    .is_err_and(|e| e.contains("USER_JWT_HS256_SECRET")));
    assert!(UserAuthConfig::from_parts(String::new(), "aud".into(), None, None, None).is_err());
    assert!(UserAuthConfig::from_parts("iss".into(), String::new(), None, None, None).is_err());
}

#[test]
fn messages_and_redaction() {
    assert_eq!(
        AuthFailure::UnknownKey.to_string(),
        "no key matches the JWT"
    );
    assert_eq!(
        JwksError::NoKeysArray.to_string(),
        "the JWKS has no \"keys\" array"
    );
    assert!(!format!("{:?}", HmacSecret::new(SECRET)).contains(SECRET));
    assert!(!format!("{:?}", cfg(None)).contains(SECRET));
    assert!(!format!("{:?}", HmacSecret::from(SECRET.to_owned())).contains(SECRET));
}

proptest::proptest! {
    /// Anything a fuzzer makes without the keys: an error, never a panic.
    #[test]
    fn user_jwt_parser_never_panics_and_refuses_garbage(s in "\\PC{0,400}") {
        proptest::prop_assert!(verify_user_jwt(&cfg(None), None, &s, NOW).is_err());
    }

    /// Three base64url parts with arbitrary JSON-ish content and any header: refused.
    #[test]
    fn user_jwt_shaped_garbage_is_refused(
        head in "\\PC{0,80}", body in "\\PC{0,80}", sig in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)
    ) {
        let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwt = format!("{}.{}.{}", b(head.as_bytes()), b(body.as_bytes()), b(&sig));
        proptest::prop_assert!(verify_user_jwt(&cfg(None), None, &jwt, NOW).is_err());
    }
}
