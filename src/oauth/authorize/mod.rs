//! `GET /authorize` (RFC 6749 section 4.1.1, OAuth 2.1, the MCP authorization specification):
//! the authorization request parsed once into a typed request.
//!
//! Parsing happens in two layers, because an error is redirected back to the client only once
//! the client and its redirect URI are known good (RFC 6749 4.1.2.1; otherwise the endpoint would
//! be an open redirector), and the parser does not know the client:
//!
//! 1. [`AuthorizationRequest::parse`] identifies the client: `client_id`, `redirect_uri` and
//!    `state`. What goes wrong here is a [`PageError`] (shown on a page, never redirected).
//! 2. Everything else is in [`AuthorizationRequest::params`]: the typed [`AuthorizationParams`],
//!    or the first [`RedirectError`] in them, which the handler sends to the redirect URI (with
//!    `state` and `iss`) after `redirect_uri::select` accepted the URI for that client.
//!
//! Rules: `response_type=code` only; PKCE with `S256` required (`pkce`); exactly one `resource`
//! (RFC 8707, `resource`); `response_mode` absent or `query`; request objects (`request`,
//! `request_uri`) refused; unknown parameters ignored (RFC 6749 3.1); every parameter at most
//! once and empty values counting as absent (RFC 6749 3.1). A query the strict form parser
//! refuses (a repeated parameter, a malformed escape) is still read leniently for `client_id`,
//! `redirect_uri` and `state`, so that the client learns of its mistake by redirect when those
//! three are unambiguous, and sees a page otherwise.
//!
//! Error order inside [`AuthorizationParams`]: request objects, `response_type`,
//! `response_mode`, PKCE, `resource`, `scope`.

pub mod pkce;
pub mod redirect_uri;
pub mod resource;
pub mod response;

pub use pkce::{CodeChallenge, CodeVerifier, PkceError};
pub use redirect_uri::{Redirect, RedirectKind, RedirectPolicy, SelectError};
pub use resource::{ResourceError, ResourceIndicator};
pub use response::{AuthorizeError, ErrorCode, PageError, RedirectError};

use super::form::{parse as parse_form, present};
use super::uri::MAX_URI_LEN;
use crate::scopes::Scopes;
use std::borrow::Cow;

/// Longest `state` accepted (and so echoed back). RFC 6749 sets no bound; clients send tens of
/// characters.
pub const MAX_STATE_LEN: usize = 1024;

/// An authorization request: who the client is, and the rest (or its first error).
#[derive(Debug)]
pub struct AuthorizationRequest<'a> {
    /// Printable ASCII, at most 2048 characters (a client ID metadata document URL fits).
    pub client_id: Cow<'a, str>,
    /// As sent; checked against the client's by `redirect_uri::select`.
    pub redirect_uri: Option<Cow<'a, str>>,
    /// As sent, if valid (RFC 6749 A.5: printable ASCII; at most [`MAX_STATE_LEN`]); an invalid
    /// one is dropped and reported in `params`.
    pub state: Option<Cow<'a, str>>,
    /// The remaining parameters, or the first error in them (to redirect, once the client and
    /// its redirect URI are known good).
    pub params: Result<AuthorizationParams<'a>, RedirectError>,
}

/// The parameters of a valid authorization request beyond the client's identity.
#[derive(Debug)]
pub struct AuthorizationParams<'a> {
    pub code_challenge: CodeChallenge,
    pub resource: ResourceIndicator<'a>,
    /// `None`: not sent (the handler applies the default, RFC 6749 3.3).
    pub scope: Option<Scopes>,
}

const NAMES: [&str; 11] = [
    "client_id",
    "redirect_uri",
    "state",
    "response_type",
    "response_mode",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "scope",
    "request",
    "request_uri",
];

impl<'a> AuthorizationRequest<'a> {
    /// Parses the query of `GET /authorize` (the part after `?`, as received).
    ///
    /// # Errors
    /// A [`PageError`] when the client cannot be identified unambiguously: `client_id` missing,
    /// repeated or malformed; `redirect_uri` repeated or undecodable.
    pub fn parse(query: &'a [u8]) -> Result<Self, PageError> {
        let [client_id, redirect_uri, state, response_type, response_mode, challenge, method, resource, scope, request, request_uri] =
            match parse_form(query, NAMES) {
                Ok(v) => v.map(present),
                Err(e) => return lenient(query, &form_error(&e)),
            };
        let client_id = check_client_id(client_id)?;
        let (state, state_error) = check_state(state);
        let params = match state_error {
            Some(e) => Err(e),
            None => params(Raw {
                response_type,
                response_mode,
                challenge,
                method,
                resource,
                scope,
                request: request.is_some() || request_uri.is_some(),
            }),
        };
        Ok(AuthorizationRequest {
            client_id,
            redirect_uri,
            state,
            params,
        })
    }
}

/// The parameters beyond the client's identity, as sent (empty = absent).
struct Raw<'a> {
    response_type: Option<Cow<'a, str>>,
    response_mode: Option<Cow<'a, str>>,
    challenge: Option<Cow<'a, str>>,
    method: Option<Cow<'a, str>>,
    resource: Option<Cow<'a, str>>,
    scope: Option<Cow<'a, str>>,
    request: bool,
}

fn params(raw: Raw<'_>) -> Result<AuthorizationParams<'_>, RedirectError> {
    if raw.request {
        return Err(RedirectError::invalid_request(
            "request objects (request, request_uri) are not supported",
        ));
    }
    match raw.response_type.as_deref() {
        None => return Err(RedirectError::invalid_request("response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(RedirectError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
    }
    if raw.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Err(RedirectError::invalid_request(
            "only response_mode=query is supported",
        ));
    }
    let code_challenge = CodeChallenge::parse(raw.challenge.as_deref(), raw.method.as_deref())
        .map_err(|e| RedirectError::invalid_request(e.to_string()))?;
    let resource =
        ResourceIndicator::parse(raw.resource.ok_or(ResourceError::Missing).map_err(target)?)
            .map_err(target)?;
    let scope = match raw.scope {
        None => None,
        Some(s) => {
            let scopes = Scopes::parse(&s)
                .map_err(|e| RedirectError::new(ErrorCode::InvalidScope, e.to_string()))?;
            if scopes.is_empty() {
                return Err(RedirectError::new(
                    ErrorCode::InvalidScope,
                    "scope is empty",
                ));
            }
            Some(scopes)
        }
    };
    Ok(AuthorizationParams {
        code_challenge,
        resource,
        scope,
    })
}

fn target(e: ResourceError) -> RedirectError {
    RedirectError::new(ErrorCode::InvalidTarget, e.to_string())
}

fn check_client_id(id: Option<Cow<'_, str>>) -> Result<Cow<'_, str>, PageError> {
    let id = id.ok_or_else(|| PageError::new("client_id is required"))?;
    if id.len() > MAX_URI_LEN || !id.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(PageError::new("client_id is malformed"));
    }
    Ok(id)
}

/// The state to echo, and the error to report if the one sent cannot be echoed.
fn check_state(state: Option<Cow<'_, str>>) -> (Option<Cow<'_, str>>, Option<RedirectError>) {
    match state {
        Some(s) if s.len() > MAX_STATE_LEN => (
            None,
            Some(RedirectError::invalid_request(
                "state is longer than 1024 characters",
            )),
        ),
        Some(s) if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) => (
            None,
            Some(RedirectError::invalid_request(
                "state must be printable ASCII",
            )),
        ),
        s => (s, None),
    }
}

/// The query the strict parser refused (`why`): `client_id`, `redirect_uri` and `state` are
/// read if each appears at most once (and `client_id` exactly once) and decodes; the request
/// then fails by redirect with `invalid_request` (`invalid_target` for a repeated `resource`).
fn lenient<'a>(query: &'a [u8], why: &str) -> Result<AuthorizationRequest<'a>, PageError> {
    const WANTED: [&str; 4] = ["client_id", "redirect_uri", "state", "resource"];
    let mut found: [Vec<Option<String>>; 4] = Default::default();
    for part in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.iter().position(|&b| b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        let Ok(k) = crate::http::percent_decode(k) else {
            continue;
        };
        if let Some(i) = WANTED.iter().position(|w| *w == k) {
            found[i].push(crate::http::percent_decode(v).ok());
        }
    }
    let once = |i: usize| -> Result<Option<Cow<'a, str>>, ()> {
        match found[i].as_slice() {
            [] => Ok(None),
            [Some(v)] => Ok(present(Some(Cow::Owned(v.clone())))),
            _ => Err(()),
        }
    };
    let client_id = once(0).map_err(|()| PageError::new("client_id is repeated or malformed"))?;
    let client_id = check_client_id(client_id)?;
    let redirect_uri =
        once(1).map_err(|()| PageError::new("redirect_uri is repeated or malformed"))?;
    let (state, _) = check_state(once(2).ok().flatten());
    let error = if found[3].len() > 1 {
        RedirectError::new(
            ErrorCode::InvalidTarget,
            "resource is repeated: name exactly one API per request",
        )
    } else {
        RedirectError::invalid_request(why.to_owned())
    };
    Ok(AuthorizationRequest {
        client_id,
        redirect_uri,
        state,
        params: Err(error),
    })
}

/// The message of the form parser's error (its `InvalidRequest` carries one).
fn form_error(e: &crate::error::Error) -> String {
    match e {
        crate::error::Error::InvalidRequest(m) => m.clone(),
        other => other.code().to_owned(),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
