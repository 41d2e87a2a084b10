//! RFC 7662 token introspection: the request, parsed once, and the response, serialized once
//! (as JSON, or signed per RFC 9701 from the same typed claims).

use super::credentials::Presented;
use super::form::{fields, present};
use crate::error::Error;
use crate::http::Request;
use crate::scopes::Scopes;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::borrow::Cow;

/// The RFC 9701 media type of a signed introspection response.
pub use crate::jose::INTROSPECTION_MEDIA_TYPE as INTROSPECTION_JWT_MEDIA;

/// `POST /oauth/introspect`.
#[derive(Debug)]
pub struct IntrospectionRequest<'a> {
    /// The API resource's credentials.
    pub client: Presented<'a>,
    token: Option<Cow<'a, str>>,
    /// Only a hint (RFC 7662 2.1): every kind of token is looked up whatever it says.
    pub token_type_hint: Option<Cow<'a, str>>,
    /// JSON, or an RFC 9701 signed answer when `Accept` asks for one.
    pub format: ResponseFormat,
}

impl<'a> IntrospectionRequest<'a> {
    /// # Errors
    /// The form's errors ([`super::form::fields`]), then the credentials' ([`Presented::parse`]).
    pub fn parse(req: &'a Request) -> Result<Self, Error> {
        let [token, hint, id, secret] = fields(
            req,
            ["token", "token_type_hint", "client_id", "client_secret"],
        )?;
        Ok(IntrospectionRequest {
            client: Presented::parse(req, present(id), present(secret))?,
            token: present(token),
            token_type_hint: present(hint),
            format: ResponseFormat::from_accept(req),
        })
    }

    /// The token to introspect.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the form has none: reported after the caller is
    /// authenticated, so that an unauthenticated caller learns nothing about its request.
    pub fn token(&self) -> Result<&str, Error> {
        self.token
            .as_deref()
            .ok_or_else(|| Error::InvalidRequest("missing parameter token".into()))
    }
}

/// How the introspection answer is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    /// RFC 9701 `application/token-introspection+jwt`.
    SignedJwt,
}

impl ResponseFormat {
    /// RFC 9701 when `Accept` (one header; a repeated one asks for nothing) has a media range
    /// that is exactly `application/token-introspection+jwt` (case-insensitive) with a weight
    /// above zero (RFC 9110 12.4.2: `q=0` means "not acceptable"). Wildcards do not ask for it.
    pub fn from_accept(req: &Request) -> Self {
        if req
            .get_header("accept")
            .ok()
            .flatten()
            .is_some_and(accepts_introspection_jwt)
        {
            ResponseFormat::SignedJwt
        } else {
            ResponseFormat::Json
        }
    }
}

fn accepts_introspection_jwt(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case(INTROSPECTION_JWT_MEDIA) {
            return false;
        }
        let mut weight = 1.0_f64;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    // A malformed weight counts as 0: not a request for this type.
                    weight = parse_qvalue(v.trim()).unwrap_or(0.0);
                }
            }
        }
        weight > 0.0
    })
}

/// RFC 9110 12.4.2 `qvalue`: `0[.ddd]` or `1[.000]`.
fn parse_qvalue(v: &str) -> Option<f64> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let ok = matches!(int, "0" | "1")
        && frac.len() <= 3
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || frac.bytes().all(|b| b == b'0'));
    ok.then(|| v.parse().ok()).flatten()
}

/// The RFC 7662 answer. An inactive token is exactly `{"active":false}`.
#[derive(Debug, PartialEq)]
pub enum IntrospectionResponse<'a> {
    Inactive,
    Active(ActiveClaims<'a>),
}

/// The exact bytes of an inactive answer.
pub const INACTIVE_JSON: &[u8] = br#"{"active":false}"#;

/// What an active token's answer says (borrowed from the decision, the caller and the config).
#[derive(Debug, PartialEq)]
pub struct ActiveClaims<'a> {
    /// The scopes the caller may see, sent space-separated (RFC 7662 `scope`).
    pub scope: &'a Scopes,
    pub client_id: &'a str,
    pub sub: &'a str,
    pub exp: i64,
    pub iat: i64,
    pub iss: &'a str,
    pub jti: &'a str,
    /// A PAT's name.
    pub name: Option<&'a str>,
    /// The calling API resource.
    pub aud: &'a str,
    /// A token rotated away with a grace period: when it was rotated, and until when it works
    /// (also its `exp`), so that APIs can warn its user.
    pub rotated_at: Option<i64>,
    pub grace_until: Option<i64>,
}

/// `token_type` of every active answer.
pub const TOKEN_TYPE: &str = "Bearer";

impl Serialize for IntrospectionResponse<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Self::Active(c) = self else {
            let mut st = s.serialize_struct("Introspection", 1)?;
            st.serialize_field("active", &false)?;
            return st.end();
        };
        let mut st = s.serialize_struct("Introspection", 13)?;
        st.serialize_field("active", &true)?;
        st.serialize_field("scope", c.scope)?;
        st.serialize_field("client_id", c.client_id)?;
        st.serialize_field("sub", c.sub)?;
        st.serialize_field("exp", &c.exp)?;
        st.serialize_field("iat", &c.iat)?;
        st.serialize_field("iss", c.iss)?;
        st.serialize_field("token_type", TOKEN_TYPE)?;
        st.serialize_field("jti", c.jti)?;
        if let Some(name) = c.name {
            st.serialize_field("name", name)?;
        }
        st.serialize_field("aud", c.aud)?;
        if let Some(at) = c.rotated_at {
            st.serialize_field("rotated_at", &at)?;
        }
        if let Some(until) = c.grace_until {
            st.serialize_field("grace_until", &until)?;
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn form(body: &str) -> Request {
        Request::new(Method::Post, "/oauth/introspect")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    #[test]
    fn parses_token_hint_credentials_and_accept_once() {
        let r = form("token=pat_abc&token_type_hint=access_token&client_id=r&client_secret=s")
            .header("accept", "application/token-introspection+jwt");
        let i = IntrospectionRequest::parse(&r).expect("ok");
        assert_eq!(i.token().expect("token"), "pat_abc");
        assert!(
            matches!(i.token, Some(Cow::Borrowed(_))),
            "the token is not copied"
        );
        assert_eq!(i.token_type_hint.as_deref(), Some("access_token"));
        assert_eq!(i.client.id(), Some("r"));
        assert_eq!(i.format, ResponseFormat::SignedJwt);
        let plain = form("token=x");
        let plain = IntrospectionRequest::parse(&plain).expect("ok");
        assert_eq!(plain.format, ResponseFormat::Json);
        assert!(matches!(plain.client, Presented::None));
    }

    #[test]
    fn a_missing_or_empty_token_is_an_error_only_when_asked_for() {
        for body in ["", "token=", "client_id=r&client_secret=s"] {
            let r = form(body);
            let i = IntrospectionRequest::parse(&r).expect("parses");
            assert!(matches!(
                i.token(),
                Err(Error::InvalidRequest(m)) if m == "missing parameter token"
            ));
        }
    }

    #[test]
    fn hostile_requests_are_refused() {
        let dup = IntrospectionRequest::parse(&form("token=a&token=b")).expect_err("dup");
        assert!(matches!(dup, Error::InvalidRequest(m) if m == "parameter token is repeated"));
        let dup = IntrospectionRequest::parse(&form("token=a&junk=1&junk=2")).expect_err("dup");
        assert!(matches!(dup, Error::InvalidRequest(m) if m == "parameter junk is repeated"));
        let json = Request::new(Method::Post, "/oauth/introspect")
            .header("content-type", "application/json")
            .body(r#"{"token":"a"}"#);
        assert!(matches!(
            IntrospectionRequest::parse(&json),
            Err(Error::InvalidRequest(_))
        ));
        let big = form(&format!("token={}", "a".repeat(crate::http::MAX_FORM_BODY)));
        assert!(matches!(
            IntrospectionRequest::parse(&big),
            Err(Error::PayloadTooLarge(_))
        ));
        let bytes = Request::new(Method::Post, "/oauth/introspect")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"token=\xc3\x28".to_vec());
        assert!(matches!(
            IntrospectionRequest::parse(&bytes),
            Err(Error::InvalidRequest(_))
        ));
        let both =
            form("token=a&client_id=r&client_secret=s").header("authorization", "Basic cjpz");
        assert!(matches!(
            IntrospectionRequest::parse(&both),
            Err(Error::InvalidRequest(m)) if m.contains("not both")
        ));
        let bad64 = form("token=a").header("authorization", "Basic ###");
        assert!(matches!(
            IntrospectionRequest::parse(&bad64),
            Err(Error::InvalidClient(_))
        ));
        let accept_twice = form("token=a")
            .header("accept", INTROSPECTION_JWT_MEDIA)
            .header("accept", INTROSPECTION_JWT_MEDIA);
        assert_eq!(
            IntrospectionRequest::parse(&accept_twice)
                .expect("ok")
                .format,
            ResponseFormat::Json
        );
    }

    #[test]
    fn accept_negotiation_honours_q() {
        let accepts = accepts_introspection_jwt;
        assert!(accepts("application/token-introspection+jwt"));
        assert!(accepts("Application/Token-Introspection+JWT"));
        assert!(accepts(
            "application/json;q=0.5, application/token-introspection+jwt"
        ));
        assert!(accepts("application/token-introspection+jwt; q=0.001"));
        assert!(accepts(
            "application/token-introspection+jwt;charset=utf-8;q=1.000"
        ));
        assert!(!accepts("application/token-introspection+jwt;q=0"));
        assert!(!accepts("application/token-introspection+jwt; Q=0.000"));
        assert!(!accepts(
            "application/json, application/token-introspection+jwt;q=0"
        ));
        assert!(!accepts("application/token-introspection+jwt;q=abc"));
        assert!(!accepts("application/token-introspection+jwt;q=1.5"));
        assert!(!accepts("application/token-introspection+jwtx"));
        assert!(!accepts("*/*"));
        assert!(!accepts("application/json"));
        assert!(!accepts(""));
    }

    fn claims(scope: &Scopes) -> ActiveClaims<'_> {
        ActiveClaims {
            scope,
            client_id: "pat_client",
            sub: "alice",
            exp: 20,
            iat: 10,
            iss: "https://iss",
            jti: "id1",
            name: None,
            aud: "api",
            rotated_at: None,
            grace_until: None,
        }
    }

    #[test]
    fn answers_serialize_as_rfc7662() {
        let inactive = serde_json::to_vec(&IntrospectionResponse::Inactive).expect("json");
        assert_eq!(inactive, INACTIVE_JSON);
        let scopes = Scopes::from_trusted(&["a:read", "b\"x"]);
        let active = IntrospectionResponse::Active(claims(&scopes));
        assert_eq!(
            serde_json::to_string(&active).expect("json"),
            r#"{"active":true,"scope":"a:read b\"x","client_id":"pat_client","sub":"alice","exp":20,"iat":10,"iss":"https://iss","token_type":"Bearer","jti":"id1","aud":"api"}"#
        );
        let one = Scopes::from_trusted(&["a:read"]);
        let mut c = claims(&one);
        c.name = Some("laptop");
        c.rotated_at = Some(15);
        c.grace_until = Some(20);
        let v = serde_json::to_value(IntrospectionResponse::Active(c)).expect("json");
        assert_eq!(v["name"], "laptop");
        assert_eq!(v["rotated_at"], 15);
        assert_eq!(v["grace_until"], 20);
        assert_eq!(v["scope"], "a:read");
        let signed = crate::jose::IntrospectionResponseClaims {
            aud: "api",
            iat: 5,
            iss: "https://iss",
            token_introspection: &IntrospectionResponse::Inactive,
        };
        assert_eq!(
            serde_json::to_string(&signed).expect("json"),
            r#"{"aud":"api","iat":5,"iss":"https://iss","token_introspection":{"active":false}}"#
        );
    }
}
