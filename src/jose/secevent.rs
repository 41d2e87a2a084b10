//! Security Event Tokens (RFC 8417) signed with patgate's keys, for receivers that learn of
//! revocations by push (RFC 8935).
//!
//! A SET is a JWT with header `typ: secevent+jwt` (RFC 8417 2.3) and claims `iss`, `iat`, `jti`
//! (unique per SET), `aud`, an optional `txn` (the SETs of one revocation share it), the subject
//! `sub_id` (`OpenID` Shared Signals: RFC 9493 subject identifiers at the top level) and `events`
//! (event type URI -> event object). It has no `exp`: RFC 8417 keeps `exp` out so that a SET is
//! never mistaken for an ID or access token, and receivers refuse every `+jwt` type they do not
//! expect (patgate's own user-identity check refuses `secevent+jwt`). Receivers verify it with
//! `/.well-known/jwks.json`.
//!
//! What the events say (CAEP `credential-change`, `session-revoked`) is built in
//! `crate::revocation::push`; this module only signs.

use super::{KeyError, SigningKeys};
use serde::Serialize;
use serde_json::Value;

/// `typ` of a Security Event Token (RFC 8417 2.3).
pub const SECEVENT_TYP: &str = "secevent+jwt";
/// The media type of a pushed SET (RFC 8935 2: the request's `Content-Type`).
pub const SECEVENT_MEDIA_TYPE: &str = "application/secevent+jwt";

/// The claims of one SET (besides `iat`, passed to [`SigningKeys::sign_secevent`]).
#[derive(Debug, Serialize)]
pub struct SecurityEventClaims<'a> {
    pub iss: &'a str,
    /// Unique per SET: receivers refuse a `jti` they have seen (replay) and dedupe retries by it.
    pub jti: &'a str,
    /// The receiver it is meant for (RFC 8417 2.2; RFC 8935 2: receivers check it).
    pub aud: &'a str,
    /// The same for every SET of one revocation (RFC 8417 2.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn: Option<&'a str>,
    /// The subject: an RFC 9493 / Shared Signals subject identifier.
    pub sub_id: &'a Value,
    /// Event type URI -> event object.
    pub events: &'a Value,
}

impl SigningKeys {
    /// Signs a Security Event Token (`typ` `secevent+jwt`): `claims` plus `iat`, and no `exp`.
    ///
    /// # Errors
    /// [`KeyError::Signing`] when `iat` is out of range or the claims are not a JSON object.
    pub fn sign_secevent(
        &self,
        claims: &SecurityEventClaims<'_>,
        iat: i64,
    ) -> Result<String, KeyError> {
        let mut c = jwt_compact::Claims::new(claims);
        c.issued_at = Some(chrono::DateTime::from_timestamp(iat, 0).ok_or(KeyError::Signing)?);
        self.sign(SECEVENT_TYP, &c)
    }
}

/// What a receiver does with a pushed SET, as the tests of patgate's own SETs do it: the header
/// (`typ` `secevent+jwt`, a `kid` of the key set, its algorithm), the signature, and the claims
/// as JSON (the receiver then checks `iss`, `aud` and `jti`).
#[cfg(test)]
pub(crate) fn verify_for_tests(keys: &SigningKeys, jwt: &str) -> Result<Value, &'static str> {
    use jwt_compact::{AlgorithmExt as _, UntrustedToken};
    let t = UntrustedToken::new(jwt).map_err(|_| "malformed")?;
    if t.header().token_type.as_deref() != Some(SECEVENT_TYP) {
        return Err("typ");
    }
    let kid = t.header().key_id.as_deref().ok_or("kid")?;
    let key = keys
        .keys
        .iter()
        .find(|k| k.kid == kid && k.verifier.alg() == t.algorithm())
        .ok_or("unknown key")?;
    let checked = match &key.verifier {
        super::keys::PublicKey::EdDsa(pk) => jwt_compact::alg::Ed25519
            .validator::<Value>(pk)
            .validate(&t)
            .map(|v| v.claims().clone()),
        super::keys::PublicKey::Es256(pk) => jwt_compact::alg::Es256
            .validator::<Value>(pk)
            .validate(&t)
            .map(|v| v.claims().clone()),
        super::keys::PublicKey::Rs256(_) => return Err("algorithm"),
    }
    .map_err(|_| "signature")?;
    if checked.expiration.is_some() {
        return Err("a SET carries no exp");
    }
    let mut claims = checked.custom;
    if let (Value::Object(m), Some(iat)) = (&mut claims, checked.issued_at) {
        m.insert("iat".into(), Value::from(iat.timestamp()));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::keys::test_keys::{ed_fixed, es_fixed, keys};
    use base64::Engine as _;
    use serde_json::json;

    fn segment(jwt: &str, i: usize) -> Value {
        let part = jwt.split('.').nth(i).expect("segment");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn a_set_is_typed_signed_and_has_no_exp() {
        for k in [ed_fixed("set-ed"), es_fixed("set-es")] {
            let keys = keys(&[&k]);
            let sub = json!({"format": "opaque", "id": "tok1"});
            let events = json!({"https://schemas.openid.net/secevent/caep/event-type/credential-change": {"change_type": "revoke"}});
            let claims = SecurityEventClaims {
                iss: "https://patgate.test",
                jti: "set-1",
                aud: "https://api.example",
                txn: Some("tx-1"),
                sub_id: &sub,
                events: &events,
            };
            let jwt = keys.sign_secevent(&claims, 1_795_000_000).expect("signs");
            let header = segment(&jwt, 0);
            assert_eq!(header["typ"], "secevent+jwt");
            assert_eq!(header["kid"], keys.signing_kid());
            let body = verify_for_tests(&keys, &jwt).expect("verifies");
            assert_eq!(
                body,
                json!({
                    "iss": "https://patgate.test", "jti": "set-1", "aud": "https://api.example",
                    "txn": "tx-1", "sub_id": sub, "events": events, "iat": 1_795_000_000
                })
            );
            // a flipped signature byte, another key set: refused
            let mut forged = jwt.clone();
            let last = forged.pop().expect("char");
            forged.push(if last == 'A' { 'B' } else { 'A' });
            assert!(verify_for_tests(&keys, &forged).is_err());
            let other = crate::jose::keys::test_keys::keys(&[&ed_fixed("set-ed-2")]);
            assert!(verify_for_tests(&other, &jwt).is_err());
        }
    }

    #[test]
    fn a_set_is_never_taken_for_an_access_token() {
        let keys = keys(&[&ed_fixed("k")]);
        let sub = json!({"format": "opaque", "id": "t"});
        let events = json!({});
        let claims = SecurityEventClaims {
            iss: "https://patgate.test",
            jti: "j",
            aud: "a",
            txn: None,
            sub_id: &sub,
            events: &events,
        };
        let jwt = keys.sign_secevent(&claims, 1_795_000_000).expect("signs");
        assert!(!segment(&jwt, 1)
            .as_object()
            .expect("object")
            .contains_key("txn"));
        assert!(keys.verify_access_token(&jwt, 1_795_000_000).is_err());
    }
}
