//! The token endpoint's grants of the authorization server: `authorization_code` (RFC 6749
//! 4.1.3 with PKCE, RFC 7636 4.5, and RFC 8707's `resource`) and `refresh_token` (RFC 6749 6).
//! [`super::token::TokenRequest::parse`] reads the form once; these functions turn its values
//! into the typed grant or the first error in them, which the handler reports only after client
//! authentication (public clients identify with `client_id` alone,
//! [`super::Presented::ClientId`]), like a token exchange's.
//!
//! Error order: `authorization_code`: `code`, `code_verifier` (missing, then malformed),
//! `resource`; `refresh_token`: `refresh_token`, `scope`, `resource`. Whether the code or
//! refresh token is valid, and whether `redirect_uri`, the verifier and `resource` match what
//! it was issued for, is the handler's decision (`invalid_grant` / `invalid_target`).

use super::authorize::{CodeVerifier, ResourceIndicator};
use crate::error::Error;
use crate::scopes::Scopes;
use std::borrow::Cow;
use std::fmt;

pub const AUTHORIZATION_CODE: &str = "authorization_code";
pub const REFRESH_TOKEN: &str = "refresh_token";

/// RFC 6749 4.1.3 with PKCE. `Debug` hides the code and the verifier.
pub struct AuthorizationCode<'a> {
    pub code: Cow<'a, str>,
    /// Absent: accepted (PKCE binds the code to the client that asked for it, as OAuth 2.1
    /// does); present: it must equal the authorization request's exactly.
    pub redirect_uri: Option<Cow<'a, str>>,
    pub code_verifier: CodeVerifier<'a>,
    /// Absent: the code's resource; present: it must name the code's resource.
    pub resource: Option<ResourceIndicator<'a>>,
}

impl fmt::Debug for AuthorizationCode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("code", &"[REDACTED]")
            .field("redirect_uri", &self.redirect_uri)
            .field("code_verifier", &self.code_verifier)
            .field("resource", &self.resource)
            .finish()
    }
}

/// RFC 6749 section 6. `Debug` hides the refresh token.
pub struct RefreshToken<'a> {
    pub refresh_token: Cow<'a, str>,
    /// A down-scoping request: a non-empty subset of the grant's scopes (RFC 6749 6).
    pub scope: Option<Scopes>,
    /// Absent: the grant's resource; present: it must name the grant's resource.
    pub resource: Option<ResourceIndicator<'a>>,
}

impl fmt::Debug for RefreshToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("refresh_token", &"[REDACTED]")
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .finish()
    }
}

fn missing(name: &str) -> Error {
    Error::InvalidRequest(format!("missing parameter {name}"))
}

fn resource(value: Option<Cow<'_, str>>) -> Result<Option<ResourceIndicator<'_>>, Error> {
    value
        .map(|r| ResourceIndicator::parse(r).map_err(|e| Error::InvalidTarget(e.to_string())))
        .transpose()
}

/// The `authorization_code` grant from the form's values (empty = absent).
///
/// # Errors
/// [`Error::InvalidRequest`] for a missing `code` or `code_verifier` or a malformed verifier;
/// [`Error::InvalidTarget`] for a malformed `resource`.
pub fn authorization_code<'a>(
    code: Option<Cow<'a, str>>,
    redirect_uri: Option<Cow<'a, str>>,
    code_verifier: Option<Cow<'a, str>>,
    resource_value: Option<Cow<'a, str>>,
) -> Result<AuthorizationCode<'a>, Error> {
    let code = code.ok_or_else(|| missing("code"))?;
    let verifier = code_verifier.ok_or_else(|| missing("code_verifier"))?;
    let code_verifier =
        CodeVerifier::parse(verifier).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    Ok(AuthorizationCode {
        code,
        redirect_uri,
        code_verifier,
        resource: resource(resource_value)?,
    })
}

/// The `refresh_token` grant from the form's values (empty = absent).
///
/// # Errors
/// [`Error::InvalidRequest`] for a missing `refresh_token`; [`Error::InvalidScope`] for a
/// malformed or blank `scope`; [`Error::InvalidTarget`] for a malformed `resource`.
pub fn refresh_token<'a>(
    refresh_token: Option<Cow<'a, str>>,
    scope: Option<Cow<'a, str>>,
    resource_value: Option<Cow<'a, str>>,
) -> Result<RefreshToken<'a>, Error> {
    let refresh_token = refresh_token.ok_or_else(|| missing("refresh_token"))?;
    let scope = match scope {
        None => None,
        Some(s) => {
            let s = Scopes::parse(&s).map_err(|e| Error::InvalidScope(e.to_string()))?;
            if s.is_empty() {
                return Err(Error::InvalidScope("scope is empty".into()));
            }
            Some(s)
        }
    };
    Ok(RefreshToken {
        refresh_token,
        scope,
        resource: resource(resource_value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::token::{Grant, TokenRequest};
    use super::*;
    use crate::http::{Method, Request};
    use crate::oauth::Presented;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn form(body: &str) -> Request {
        Request::new(Method::Post, "/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    fn code_grant(r: &Request) -> Result<AuthorizationCode<'_>, Error> {
        match TokenRequest::parse(r).expect("parses").grant {
            Grant::AuthorizationCode(g) => g,
            other => panic!("{other:?}"),
        }
    }

    fn refresh_grant(r: &Request) -> Result<RefreshToken<'_>, Error> {
        match TokenRequest::parse(r).expect("parses").grant {
            Grant::RefreshToken(g) => g,
            other => panic!("{other:?}"),
        }
    }

    fn err<T: fmt::Debug>(r: Result<T, Error>) -> (String, String) {
        let e = r.expect_err("refused");
        let m = match &e {
            Error::InvalidRequest(m) | Error::InvalidScope(m) | Error::InvalidTarget(m) => {
                m.clone()
            }
            other => panic!("{other:?}"),
        };
        (e.code().to_owned(), m)
    }

    #[test]
    fn a_public_client_exchanges_a_code() {
        let r = form(&format!(
            "grant_type=authorization_code&code=pgc_abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcb\
             &code_verifier={VERIFIER}&client_id=https%3A%2F%2Fapp.example%2Fc.json\
             &resource=https%3A%2F%2Fapi.example%2Fmcp"
        ));
        let t = TokenRequest::parse(&r).expect("ok");
        assert!(matches!(&t.client, Presented::ClientId(id) if id == "https://app.example/c.json"));
        let Grant::AuthorizationCode(Ok(g)) = t.grant else {
            panic!("grant");
        };
        assert_eq!(g.code, "pgc_abc");
        assert_eq!(g.redirect_uri.as_deref(), Some("http://127.0.0.1:5/cb"));
        assert_eq!(
            g.resource.as_ref().map(ResourceIndicator::as_str),
            Some("https://api.example/mcp")
        );
        let shown = format!("{g:?}");
        assert!(
            !shown.contains("pgc_abc") && !shown.contains("dBjft"),
            "{shown}"
        );
        // redirect_uri and resource are optional
        let r = form(&format!(
            "grant_type=authorization_code&code=c&code_verifier={VERIFIER}"
        ));
        let g = code_grant(&r).expect("ok");
        assert!(g.redirect_uri.is_none() && g.resource.is_none());
        // an escaped verifier is decoded first
        let r = form(&format!(
            "grant_type=authorization_code&code=c&code_verifier=%64{}",
            &VERIFIER[1..]
        ));
        assert!(code_grant(&r).is_ok());
    }

    #[test]
    fn code_grant_errors_wait_for_client_authentication_in_order() {
        let base = "grant_type=authorization_code&client_id=c";
        for (body, want) in [
            (
                base.to_owned(),
                ("invalid_request", "missing parameter code"),
            ),
            (
                format!("{base}&code_verifier=x&resource=%23"),
                ("invalid_request", "missing parameter code"),
            ),
            (
                format!("{base}&code=c"),
                ("invalid_request", "missing parameter code_verifier"),
            ),
            (
                format!("{base}&code=c&code_verifier="),
                ("invalid_request", "missing parameter code_verifier"),
            ),
            (
                format!("{base}&code=c&code_verifier=short&resource=%23"),
                (
                    "invalid_request",
                    "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
                ),
            ),
            (
                format!("{base}&code=c&code_verifier={VERIFIER}&resource=api"),
                (
                    "invalid_target",
                    "resource must be an absolute URI (scheme:...)",
                ),
            ),
            (
                format!("{base}&code=c&code_verifier={VERIFIER}&resource=https%3A%2F%2Fa%2F%23f"),
                ("invalid_target", "resource must not have a fragment"),
            ),
        ] {
            let r = form(&body);
            let (code, m) = err(code_grant(&r));
            assert_eq!((code.as_str(), m.as_str()), want, "{body}");
        }
        // the form and the credentials still come first
        let r = form("grant_type=authorization_code&code=a&code=b");
        assert!(
            matches!(TokenRequest::parse(&r), Err(Error::InvalidRequest(m)) if m == "parameter code is repeated")
        );
        let r = form("grant_type=authorization_code&resource=a&resource=b");
        assert!(
            matches!(TokenRequest::parse(&r), Err(Error::InvalidRequest(m)) if m == "parameter resource is repeated")
        );
    }

    #[test]
    fn a_refresh_token_is_typed() {
        let r = form("grant_type=refresh_token&refresh_token=pgr_x&scope=a+b+a&client_id=c");
        let g = refresh_grant(&r).expect("ok");
        assert_eq!(g.refresh_token, "pgr_x");
        assert_eq!(g.scope.map(|s| s.to_string()).as_deref(), Some("a b"));
        assert!(!format!("{:?}", refresh_grant(&r).expect("ok")).contains("pgr_x"));
        for (body, want) in [
            (
                "grant_type=refresh_token&scope=a",
                ("invalid_request", "missing parameter refresh_token"),
            ),
            (
                "grant_type=refresh_token&refresh_token=t&scope=%22",
                ("invalid_scope", "scope \"\\\"\" is malformed"),
            ),
            (
                "grant_type=refresh_token&refresh_token=t&scope=+",
                ("invalid_scope", "scope is empty"),
            ),
            (
                "grant_type=refresh_token&refresh_token=t&resource=%2Fx",
                (
                    "invalid_target",
                    "resource must be an absolute URI (scheme:...)",
                ),
            ),
        ] {
            let r = form(body);
            let (code, m) = err(refresh_grant(&r));
            assert_eq!((code.as_str(), m.as_str()), want, "{body}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_grant_values_parse_without_panic(
            code in proptest::option::of("\\PC{0,60}"),
            verifier in proptest::option::of("\\PC{0,140}"),
            resource_value in proptest::option::of("\\PC{0,60}"),
            scope in proptest::option::of("\\PC{0,30}"),
        ) {
            let _ = authorization_code(code.clone().map(Cow::Owned), None, verifier.map(Cow::Owned), resource_value.clone().map(Cow::Owned));
            let _ = refresh_token(code.map(Cow::Owned), scope.map(Cow::Owned), resource_value.map(Cow::Owned));
        }
    }
}
