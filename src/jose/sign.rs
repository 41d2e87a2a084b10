//! Signing patgate's own JWTs with the active key of [`SigningKeys`]: RFC 9068 access tokens,
//! RFC 9701 signed introspection responses and the gate's identity assertions. The header
//! always has `typ` (see [`super::claims`]), `kid` and `alg`.
//!
//! Pure and panic-free: times are parameters (unix seconds).

use super::claims::{
    AccessTokenClaims, GateAssertionClaims, IntrospectionResponseClaims, ACCESS_TOKEN_TYP,
    GATE_ASSERTION_TYP, INTROSPECTION_TYP,
};
use super::keys::PrivateKey;
use super::signing_keys::{KeyError, SigningKeys};
use chrono::DateTime;
use jwt_compact::{
    alg::{Ed25519, Es256},
    AlgorithmExt as _, Claims, Header,
};
use serde::Serialize;

/// A timestamp as jwt-compact wants it, or [`KeyError::Signing`] when out of range.
fn timestamp(secs: i64) -> Result<DateTime<chrono::Utc>, KeyError> {
    DateTime::from_timestamp(secs, 0).ok_or(KeyError::Signing)
}

impl SigningKeys {
    /// Signs `claims` with the signing key; the header has `typ`, `kid` and `alg`.
    pub(super) fn sign<T: Serialize>(
        &self,
        typ: &str,
        claims: &Claims<T>,
    ) -> Result<String, KeyError> {
        let key = self.active().ok_or(KeyError::NoSigningKey)?;
        let header = Header::empty().with_key_id(&key.kid).with_token_type(typ);
        match &key.signer {
            Some(PrivateKey::EdDsa(sk)) => Ed25519.token(&header, claims, sk),
            Some(PrivateKey::Es256(sk)) => Es256.token(&header, claims, sk),
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

    /// Signs an RFC 9701 introspection response (`typ` `token-introspection+jwt`).
    ///
    /// # Errors
    /// [`KeyError::Signing`] when the response does not serialize to a JSON object.
    pub fn sign_introspection<T: Serialize>(
        &self,
        claims: &IntrospectionResponseClaims<'_, T>,
    ) -> Result<String, KeyError> {
        self.sign(INTROSPECTION_TYP, &Claims::new(claims))
    }

    /// Signs the gate's identity assertion (`typ` `patgate-assertion+jwt`): `claims` plus `iat`
    /// and `exp`.
    ///
    /// # Errors
    /// [`KeyError::Signing`] when a time is out of range.
    pub fn sign_gate_assertion(
        &self,
        claims: &GateAssertionClaims,
        iat: i64,
        exp: i64,
    ) -> Result<String, KeyError> {
        let mut c = Claims::new(claims);
        c.expiration = Some(timestamp(exp)?);
        c.issued_at = Some(timestamp(iat)?);
        self.sign(GATE_ASSERTION_TYP, &c)
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::jose::keys::test_keys::{ed_fixed, es_fixed, keys};
    use crate::jose::{verify_user_jwt, Jwks, UserAuthConfig, VerifyError, MAX_JWT_LEN};
    use crate::scopes::Scopes;
    use base64::Engine as _;
    use serde_json::json;
    use serde_json::Value;

    const NOW: i64 = 1_795_000_000;
    const ISS: &str = "https://patgate.test";

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: ISS.into(),
            sub: "alice".into(),
            aud: vec!["demo_api".into()],
            iat: NOW,
            jti: "j1".into(),
            client_id: "pat_client".into(),
            client_uid: Some("u1".into()),
            scope: Scopes::from_stored("demo_api:read"),
            pat_id: None,
            pat_gen: None,
            grant_id: None,
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
        let result = json!({"active":true,"sub":"alice"});
        let claims = IntrospectionResponseClaims {
            aud: "demo_api",
            iat: NOW,
            iss: ISS,
            token_introspection: &result,
        };
        let jwt = k.sign_introspection(&claims).expect("sign");
        let payload = json!({"iss":ISS,"aud":"demo_api","iat":NOW,
                             "token_introspection":{"active":true,"sub":"alice"}});
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
        let intro = k
            .sign_introspection(&IntrospectionResponseClaims {
                aud: "demo_api",
                iat: NOW,
                iss: ISS,
                token_introspection: &json!({"active": false}),
            })
            .expect("sign");
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
    fn key_error_signing() {
        let k = keys(&[&ed_fixed("k")]);
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
                Err(crate::jose::AuthFailure::WrongType)
            );
            assert_eq!(
                verify_user_jwt(&cfg, Some(&jwks), &tamper(&jwt), NOW),
                Err(crate::jose::AuthFailure::WrongType)
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
