//! The claims vocabulary: the JOSE header fields patgate looks at, the `typ` of every JWT it
//! issues or refuses, and the typed claim sets it signs and verifies.
//!
//! | `typ` | What | Issued by | Spec |
//! |---|---|---|---|
//! | `at+jwt` | an OAuth access token | [`super::SigningKeys::sign_access_token`] | RFC 9068 |
//! | `token-introspection+jwt` | a signed introspection response | [`super::SigningKeys::sign_introspection`] | RFC 9701 |
//! | `patgate-assertion+jwt` | the gate's identity assertion | [`super::SigningKeys::sign_gate_assertion`] | patgate |
//!
//! A user identity (verified by [`super::verify_user_jwt`]) may carry none of these.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `typ` of access tokens (RFC 9068 2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// `typ` of signed introspection responses (RFC 9701 5).
pub const INTROSPECTION_TYP: &str = "token-introspection+jwt";
/// The media type of a signed introspection response (RFC 9701 5; `Accept` and
/// `Content-Type`).
pub const INTROSPECTION_MEDIA_TYPE: &str = "application/token-introspection+jwt";
/// `typ` of the gate's identity assertion (`X-Patgate-Assertion`): never an access token.
pub const GATE_ASSERTION_TYP: &str = "patgate-assertion+jwt";

/// Header fields jwt-compact does not model but that must be looked at.
#[derive(Clone, Deserialize)]
pub(crate) struct HeaderExtras {
    /// RFC 7515 4.1.11: we implement no extension, so any `crit` makes the token unusable.
    #[serde(default)]
    pub(crate) crit: Option<serde::de::IgnoredAny>,
}

/// Whether a `typ` header names an access token: `at+jwt`, or `application/at+jwt` (RFC 9068
/// 2.1), the type compared without case.
pub(crate) fn is_access_token_typ(typ: Option<&str>) -> bool {
    let typ = typ.unwrap_or("");
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
}

/// Whether a `typ` header value may be a user identity token: refused are every explicitly
/// typed `+jwt` media type (`at+jwt`, `token-introspection+jwt`, `secevent+jwt`, ...) and any
/// type naming patgate (`patgate-assertion+jwt`, ...), compared without case and with or
/// without the `application/` prefix (RFC 7515 4.1.9). `JWT` (the usual value) and other plain
/// values pass (RFC 8725 3.11).
pub(crate) fn may_be_identity_typ(typ: &str) -> bool {
    let t = typ.trim().to_ascii_lowercase();
    let t = t.strip_prefix("application/").unwrap_or(&t);
    !(t.ends_with("+jwt") || t.contains("patgate"))
}

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
    /// That client's never-reused uid at issuance: a client deleted and created again with the
    /// same id (another uid) revives none of its JWTs. Every JWT patgate issues carries it;
    /// everything in patgate that accepts a JWT refuses one without it (issued before it
    /// existed: at most one token lifetime ago).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uid: Option<String>,
    /// The scopes, space-separated on the wire (RFC 9068 2.2.3, RFC 8693 4.2).
    pub scope: crate::scopes::Scopes,
    /// For a JWT exchanged from a PAT (RFC 8693): the PAT's id. Introspection (and everything in
    /// patgate that accepts the JWT) checks that this PAT is still active, at this generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pat_id: Option<String>,
    /// The PAT's rotation generation when the JWT was minted (rotating the PAT kills the JWT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pat_gen: Option<i64>,
    /// For an access token of an authorization grant (its `aud` the grant's resource): the
    /// grant's id. Everything in patgate that accepts the JWT checks that the grant has not
    /// ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
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

/// The claim set of an RFC 9701 signed introspection response (`typ`
/// `token-introspection+jwt`): `iss`, `aud` (the API resource that asked), `iat`, and the RFC
/// 7662 response itself under `token_introspection`.
///
/// Fields are declared in alphabetical order: the signed payload is byte-identical to the JSON
/// object it replaced (`serde_json` maps sort their keys).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct IntrospectionResponseClaims<'a, T: Serialize = Value> {
    pub aud: &'a str,
    pub iat: i64,
    pub iss: &'a str,
    pub token_introspection: &'a T,
}

/// The claim set of the gate's identity assertion (`typ` `patgate-assertion+jwt`), besides
/// `iat` and `exp` (set by the signer).
///
/// Fields are declared in alphabetical order: the signed payload is byte-identical to the JSON
/// object it replaced (`serde_json` maps sort their keys).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct GateAssertionClaims {
    /// The API resource the request is forwarded to.
    pub aud: String,
    pub client_id: String,
    /// patgate's issuer URL.
    pub iss: String,
    /// Unique per assertion.
    pub jti: String,
    /// The scopes the API resource may see, space-separated.
    pub scope: crate::scopes::Scopes,
    pub sub: String,
}

/// The claims of an identity provider's JWT that are checked besides the registered times,
/// kept as JSON so that a claim of an unexpected type maps to its own failure instead of
/// failing deserialization.
#[derive(Deserialize)]
pub(crate) struct IdentityClaims {
    #[serde(default)]
    pub(crate) iss: Option<Value>,
    #[serde(default)]
    pub(crate) aud: Option<Value>,
    #[serde(default)]
    pub(crate) sub: Option<Value>,
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn access_token_typ() {
        for ok in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "application/AT+JWT",
        ] {
            assert!(is_access_token_typ(Some(ok)), "{ok}");
        }
        for bad in [
            None,
            Some(""),
            Some("JWT"),
            Some(" at+jwt"),
            Some("Application/at+jwt"),
            Some(INTROSPECTION_TYP),
            Some(GATE_ASSERTION_TYP),
        ] {
            assert!(!is_access_token_typ(bad), "{bad:?}");
        }
    }

    #[test]
    fn identity_typ() {
        for typ in [ACCESS_TOKEN_TYP, INTROSPECTION_TYP, GATE_ASSERTION_TYP] {
            assert!(!may_be_identity_typ(typ), "{typ}");
            assert!(!may_be_identity_typ(&format!("application/{typ}")), "{typ}");
        }
        assert!(!may_be_identity_typ(INTROSPECTION_MEDIA_TYPE));
        for typ in ["JWT", "jwt", "application/jwt", "JOSE", ""] {
            assert!(may_be_identity_typ(typ), "{typ}");
        }
    }

    /// The signed payloads must not change shape: the typed claim sets serialize exactly like
    /// the `json!` objects they replaced (sorted keys).
    #[test]
    fn typed_claims_serialize_like_sorted_objects() {
        let result = json!({"active": true, "sub": "alice"});
        let typed = IntrospectionResponseClaims {
            aud: "demo_api",
            iat: 7,
            iss: "https://patgate.test",
            token_introspection: &result,
        };
        let untyped = json!({"iss": "https://patgate.test", "aud": "demo_api", "iat": 7,
                             "token_introspection": result});
        assert_eq!(
            serde_json::to_string(&typed).expect("json"),
            untyped.to_string()
        );
        let gate = GateAssertionClaims {
            aud: "demo_api".into(),
            client_id: "pat_client".into(),
            iss: "https://patgate.test".into(),
            jti: "j".into(),
            scope: crate::scopes::Scopes::from_stored("demo_api:read demo_api:write"),
            sub: "alice".into(),
        };
        let untyped = json!({"iss": "https://patgate.test", "aud": "demo_api", "sub": "alice",
            "client_id": "pat_client", "scope": "demo_api:read demo_api:write", "jti": "j"});
        assert_eq!(
            serde_json::to_string(&gate).expect("json"),
            untyped.to_string()
        );
    }
}
