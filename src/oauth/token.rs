//! `POST /oauth/token` (RFC 6749 section 3.2): the request, parsed once into one of the
//! supported grants, and the RFC 6749 5.1 answer.
//!
//! Errors keep the order clients have always seen: the form, the credentials and the grant type
//! (`unsupported_grant_type`, RFC 6749 5.2) before client authentication; a token exchange's
//! parameters after it; a new PAT's parameters after its identity-provider token is verified.
//! The authorization server's grants (`authorization_code`, `refresh_token`) are parsed the same
//! way, their parameters in [`super::code_grants`].

pub use super::code_grants::{AuthorizationCode, RefreshToken, AUTHORIZATION_CODE, REFRESH_TOKEN};
use super::credentials::Presented;
use super::form::{fields, present};
use crate::error::Error;
use crate::http::Request;
use crate::scopes::Scopes;
use std::borrow::Cow;
use std::fmt;

pub const CLIENT_CREDENTIALS: &str = "client_credentials";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// RFC 8693 token type identifiers.
pub const TT_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TT_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TT_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// A requested `scope` as sent (space-separated), one type for every grant.
pub type RequestedScope<'a> = Cow<'a, str>;

/// `POST /oauth/token`.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    pub client: Presented<'a>,
    pub grant: Grant<'a>,
}

#[derive(Debug)]
pub enum Grant<'a> {
    ClientCredentials(ClientCredentials<'a>),
    /// The exchange's parameters, or the first error in them (reported after client
    /// authentication).
    TokenExchange(Result<TokenExchange<'a>, Error>),
    /// The code's parameters, or the first error in them (reported after client
    /// authentication).
    AuthorizationCode(Result<AuthorizationCode<'a>, Error>),
    /// The refresh's parameters, or the first error in them (reported after client
    /// authentication).
    RefreshToken(Result<RefreshToken<'a>, Error>),
}

/// RFC 6749 section 4.4.
#[derive(Debug)]
pub struct ClientCredentials<'a> {
    pub scope: Option<RequestedScope<'a>>,
    /// RFC 8707 `resource` and `audience`: accepted and not used (the audience of a token is the
    /// set of API resources owning its scopes).
    pub resource: Option<Cow<'a, str>>,
    pub audience: Option<Cow<'a, str>>,
}

/// RFC 8693 token exchange.
pub struct TokenExchange<'a> {
    pub subject_token: Cow<'a, str>,
    pub subject_token_type: TokenType<'a>,
    pub requested_token_type: Option<TokenType<'a>>,
    pub scope: Option<RequestedScope<'a>>,
    /// Accepted and not used, as for [`ClientCredentials`].
    pub resource: Option<Cow<'a, str>>,
    pub audience: Option<Cow<'a, str>>,
    /// The new PAT's parameters, or the first error in them (an identity-provider token
    /// exchanged for a PAT reports it after the token is verified; a PAT exchange ignores it).
    pub new_pat: Result<NewPat<'a>, Error>,
}

impl fmt::Debug for TokenExchange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchange")
            .field("subject_token", &"[REDACTED]")
            .field("subject_token_type", &self.subject_token_type)
            .field("requested_token_type", &self.requested_token_type)
            .field("scope", &self.scope)
            .field("new_pat", &self.new_pat)
            .finish_non_exhaustive()
    }
}

/// The PAT an identity-provider token is exchanged for.
#[derive(Debug)]
pub struct NewPat<'a> {
    pub name: Cow<'a, str>,
    pub expires_in_days: Option<i64>,
    pub expires_at: Option<Cow<'a, str>>,
}

/// An RFC 8693 token type identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenType<'a> {
    AccessToken,
    Jwt,
    IdToken,
    Other(Cow<'a, str>),
}

impl<'a> TokenType<'a> {
    pub fn parse(s: Cow<'a, str>) -> Self {
        match &*s {
            TT_ACCESS_TOKEN => TokenType::AccessToken,
            TT_JWT => TokenType::Jwt,
            TT_ID_TOKEN => TokenType::IdToken,
            _ => TokenType::Other(s),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TokenType::AccessToken => TT_ACCESS_TOKEN,
            TokenType::Jwt => TT_JWT,
            TokenType::IdToken => TT_ID_TOKEN,
            TokenType::Other(s) => s,
        }
    }
}

fn missing(name: &str) -> Error {
    Error::InvalidRequest(format!("missing parameter {name}"))
}

/// The token endpoint's parameters, as sent (empty = absent).
struct Params<'a> {
    subject_token: Option<Cow<'a, str>>,
    subject_token_type: Option<Cow<'a, str>>,
    requested_token_type: Option<Cow<'a, str>>,
    actor_token: Option<Cow<'a, str>>,
    scope: Option<Cow<'a, str>>,
    audience: Option<Cow<'a, str>>,
    resource: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
    expires_in_days: Option<Cow<'a, str>>,
    expires_at: Option<Cow<'a, str>>,
    code: Option<Cow<'a, str>>,
    redirect_uri: Option<Cow<'a, str>>,
    code_verifier: Option<Cow<'a, str>>,
    refresh_token: Option<Cow<'a, str>>,
}

/// The form parameters the token endpoint reads (any other is ignored, RFC 6749 3.2).
const NAMES: [&str; 17] = [
    "grant_type",
    "client_id",
    "client_secret",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "scope",
    "audience",
    "resource",
    "name",
    "expires_in_days",
    "expires_at",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
];

impl<'a> TokenRequest<'a> {
    /// # Errors
    /// The form's errors ([`super::form::fields`]), the credentials' ([`Presented::parse`]),
    /// a missing `grant_type`, and [`Error::UnsupportedGrantType`] for another grant.
    pub fn parse(req: &'a Request) -> Result<Self, Error> {
        let [grant_type, id, secret, subject_token, subject_token_type, requested_token_type, actor_token, scope, audience, resource, name, expires_in_days, expires_at, code, redirect_uri, code_verifier, refresh_token] =
            fields(req, NAMES)?.map(present);
        let client = Presented::parse(req, id, secret)?;
        let grant_type = grant_type.ok_or_else(|| missing("grant_type"))?;
        let p = Params {
            subject_token,
            subject_token_type,
            requested_token_type,
            actor_token,
            scope,
            audience,
            resource,
            name,
            expires_in_days,
            expires_at,
            code,
            redirect_uri,
            code_verifier,
            refresh_token,
        };
        let grant = match &*grant_type {
            CLIENT_CREDENTIALS => Grant::ClientCredentials(ClientCredentials {
                scope: p.scope,
                resource: p.resource,
                audience: p.audience,
            }),
            TOKEN_EXCHANGE => Grant::TokenExchange(token_exchange(p)),
            AUTHORIZATION_CODE => Grant::AuthorizationCode(super::code_grants::authorization_code(
                p.code,
                p.redirect_uri,
                p.code_verifier,
                p.resource,
            )),
            REFRESH_TOKEN => Grant::RefreshToken(super::code_grants::refresh_token(
                p.refresh_token,
                p.scope,
                p.resource,
            )),
            other => {
                return Err(Error::UnsupportedGrantType(format!(
                    "grant_type {other} is not supported"
                )))
            }
        };
        Ok(TokenRequest { client, grant })
    }
}

fn token_exchange(p: Params<'_>) -> Result<TokenExchange<'_>, Error> {
    let subject_token = p.subject_token.ok_or_else(|| missing("subject_token"))?;
    let subject_token_type = p
        .subject_token_type
        .ok_or_else(|| missing("subject_token_type"))?;
    if p.actor_token.is_some() {
        return Err(Error::InvalidRequest(
            "delegation (actor_token) is not supported".into(),
        ));
    }
    Ok(TokenExchange {
        subject_token,
        subject_token_type: TokenType::parse(subject_token_type),
        requested_token_type: p.requested_token_type.map(TokenType::parse),
        scope: p.scope,
        resource: p.resource,
        audience: p.audience,
        new_pat: new_pat(p.name, p.expires_in_days, p.expires_at),
    })
}

fn new_pat<'a>(
    name: Option<Cow<'a, str>>,
    days: Option<Cow<'a, str>>,
    expires_at: Option<Cow<'a, str>>,
) -> Result<NewPat<'a>, Error> {
    let expires_in_days = days
        .map(|d| {
            d.parse::<i64>()
                .map_err(|_| Error::InvalidRequest("expires_in_days must be an integer".into()))
        })
        .transpose()?;
    Ok(NewPat {
        name: name.ok_or_else(|| missing("name"))?,
        expires_in_days,
        expires_at,
    })
}

/// The scopes granted for a `requested` scope (RFC 6749 section 3.3): a subset of `allowed`
/// (duplicates dropped, order kept), or all of `allowed` when none is requested.
///
/// # Errors
/// [`Error::InvalidScope`] for a scope not in `allowed`, an empty request, or nothing allowed.
pub fn granted_scopes(
    requested: Option<&RequestedScope<'_>>,
    allowed: &[String],
) -> Result<Vec<String>, Error> {
    let Some(requested) = requested else {
        if allowed.is_empty() {
            return Err(Error::InvalidScope("the client has no scopes".into()));
        }
        return Ok(allowed.to_vec());
    };
    let requested = Scopes::parse(requested).map_err(|e| Error::InvalidScope(e.to_string()))?;
    if let Some(s) = requested.first_outside(allowed) {
        return Err(Error::InvalidScope(format!("scope {s} is not allowed")));
    }
    if requested.is_empty() {
        return Err(Error::InvalidScope("scope is empty".into()));
    }
    Ok(requested.into_vec())
}

/// RFC 6749 section 5.1 (plus RFC 8693 `issued_token_type`). `Debug` hides the token.
#[derive(serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// The new PAT's id, when an exchange issued a PAT (an extra field, which RFC 8693 section
    /// 2.2.1 allows): what `GET`/`DELETE /api/pats/{id}` take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pat_id: Option<String>,
    /// The authorization code and refresh token grants: the grant's new refresh token (rotated
    /// on every use). Never log it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("issued_token_type", &self.issued_token_type)
            .field("pat_id", &self.pat_id)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn form(body: &str) -> Request {
        Request::new(Method::Post, "/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    fn exchange(r: &Request) -> Result<TokenExchange<'_>, Error> {
        match TokenRequest::parse(r).expect("parses").grant {
            Grant::TokenExchange(e) => e,
            other => panic!("{other:?}"),
        }
    }

    fn invalid<T: fmt::Debug>(r: Result<T, Error>) -> String {
        match r {
            Err(Error::InvalidRequest(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn client_credentials() {
        let r = form("grant_type=client_credentials&scope=a+b&client_id=c&client_secret=s&resource=https%3A%2F%2Fapi");
        let t = TokenRequest::parse(&r).expect("ok");
        assert_eq!(t.client.id(), Some("c"));
        let Grant::ClientCredentials(c) = t.grant else {
            panic!("grant");
        };
        assert_eq!(c.scope.as_deref(), Some("a b"));
        assert_eq!(c.resource.as_deref(), Some("https://api"));
        assert_eq!(c.audience, None);
    }

    #[test]
    fn token_exchange_of_a_pat() {
        let r = form(&format!(
            "grant_type={TOKEN_EXCHANGE}&subject_token=pat_x&subject_token_type={TT_ACCESS_TOKEN}&requested_token_type={TT_JWT}&scope=a"
        ));
        let e = exchange(&r).expect("ok");
        assert_eq!(e.subject_token, "pat_x");
        assert_eq!(e.subject_token_type, TokenType::AccessToken);
        assert_eq!(e.requested_token_type, Some(TokenType::Jwt));
        assert_eq!(e.scope.as_deref(), Some("a"));
        assert!(
            matches!(e.new_pat, Err(Error::InvalidRequest(ref m)) if m == "missing parameter name")
        );
        assert!(
            !format!("{e:?}").contains("pat_x"),
            "the subject token is not shown"
        );
    }

    #[test]
    fn token_exchange_for_a_new_pat() {
        let r = form(&format!(
            "grant_type={TOKEN_EXCHANGE}&subject_token=e.y.j&subject_token_type={TT_ID_TOKEN}&name=ci&expires_in_days=30"
        ));
        let p = exchange(&r).expect("ok").new_pat.expect("pat");
        assert_eq!(
            (p.name.as_ref(), p.expires_in_days, p.expires_at),
            ("ci", Some(30), None)
        );
        let r = form(&format!(
            "grant_type={TOKEN_EXCHANGE}&subject_token=x&subject_token_type=urn:other&expires_in_days=x"
        ));
        let e = exchange(&r).expect("ok");
        assert_eq!(e.subject_token_type.as_str(), "urn:other");
        // the days error comes before the missing name, as it always did
        assert_eq!(invalid(e.new_pat), "expires_in_days must be an integer");
    }

    #[test]
    fn exchange_errors_wait_for_client_authentication_in_order() {
        let base = format!("grant_type={TOKEN_EXCHANGE}");
        assert_eq!(
            invalid(exchange(&form(&base))),
            "missing parameter subject_token"
        );
        assert_eq!(
            invalid(exchange(&form(&format!("{base}&subject_token=x")))),
            "missing parameter subject_token_type"
        );
        assert_eq!(
            invalid(exchange(&form(&format!(
                "{base}&subject_token=x&subject_token_type=t&actor_token=y"
            )))),
            "delegation (actor_token) is not supported"
        );
    }

    #[test]
    fn grant_type_errors_come_first() {
        assert_eq!(
            invalid(TokenRequest::parse(&form("scope=a"))),
            "missing parameter grant_type"
        );
        assert_eq!(
            invalid(TokenRequest::parse(&form("grant_type="))),
            "missing parameter grant_type"
        );
        match TokenRequest::parse(&form("grant_type=password&username=a&password=b")) {
            Err(Error::UnsupportedGrantType(m)) => {
                assert_eq!(m, "grant_type password is not supported");
            }
            other => panic!("{other:?}"),
        }
        // the form and the credentials are checked before the grant type
        assert_eq!(
            invalid(TokenRequest::parse(&form(
                "grant_type=password&grant_type=x"
            ))),
            "parameter grant_type is repeated"
        );
        let both =
            form("grant_type=password&client_secret=s").header("authorization", "Basic YzpzCg==");
        assert!(invalid(TokenRequest::parse(&both)).contains("not both"));
        let big = form(&format!(
            "grant_type=client_credentials&scope={}",
            "a".repeat(9000)
        ));
        assert!(matches!(
            TokenRequest::parse(&big),
            Err(Error::PayloadTooLarge(_))
        ));
        let json = Request::new(Method::Post, "/oauth/token")
            .header("content-type", "application/json")
            .body("{}");
        assert!(invalid(TokenRequest::parse(&json)).contains("x-www-form-urlencoded"));
    }

    #[test]
    fn granted_scopes_are_a_subset_of_the_allowed() {
        let allowed = ["a".to_owned(), "b".to_owned()];
        let ask = |s: &str| granted_scopes(Some(&Cow::Borrowed(s)), &allowed);
        assert_eq!(granted_scopes(None, &allowed).expect("all"), allowed);
        assert_eq!(ask("b  a b").expect("ok"), ["b", "a"]);
        for (s, want) in [("c", "scope c is not allowed"), ("  ", "scope is empty")] {
            assert!(
                matches!(ask(s), Err(Error::InvalidScope(m)) if m == want),
                "{s}"
            );
        }
        assert!(matches!(
            granted_scopes(None, &[]),
            Err(Error::InvalidScope(_))
        ));
    }

    #[test]
    fn the_response_hides_its_token_from_debug() {
        let r = TokenResponse {
            access_token: "pat_secret_value".into(),
            token_type: "Bearer",
            expires_in: 60,
            scope: "a".into(),
            issued_token_type: None,
            pat_id: None,
            refresh_token: None,
        };
        assert!(!format!("{r:?}").contains("secret_value"));
        assert_eq!(
            serde_json::to_string(&r).expect("json"),
            r#"{"access_token":"pat_secret_value","token_type":"Bearer","expires_in":60,"scope":"a"}"#
        );
    }
}
