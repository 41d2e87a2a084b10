//! The one mapping from an error to a response: status, headers (`WWW-Authenticate`, `Allow`,
//! `Retry-After`) and the RFC 6749 5.2 JSON body. Here, with [`Response`], so that `error` does
//! not depend on `http`.

use super::Response;
use crate::error::{Error, REALM};
use serde::Serialize;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

impl Error {
    /// The single mapping from an error to (status, headers, body).
    /// What an operator needs to know about this error and the client must not see (which
    /// check failed, the storage error): logged as the `error` event
    /// ([`crate::events::Event::ErrorCause`]), never sent. Never contains a secret.
    pub fn cause(&self) -> Option<String> {
        match self {
            Error::InvalidSignature(cause) => Some(format!("invalid_signature: {cause}")),
            Error::InvalidClient(cause) => Some(format!("invalid_client: {cause}")),
            Error::InvalidToken { cause, .. } => Some(format!("invalid_token: {cause}")),
            Error::Unavailable(cause) => Some(format!("storage unavailable: {cause}")),
            Error::Internal(cause) => Some(format!("internal error: {cause}")),
            Error::RateLimited(what, _) => Some(format!("rate limited: {what}")),
            _ => None,
        }
    }

    /// The response: status, RFC 6749 5.2 JSON body, challenge headers. The cause, if any, is
    /// [`Error::cause`], logged by the caller.
    pub fn into_response(self) -> Response {
        let owned_description;
        let description: Option<&str> = match &self {
            Error::InvalidRequest(m)
            | Error::InvalidGrant(m)
            | Error::InvalidScope(m)
            | Error::UnauthorizedClient(m)
            | Error::UnsupportedGrantType(m)
            | Error::InvalidTarget(m)
            | Error::Conflict(m)
            | Error::Forbidden(m) => Some(m.as_str()),
            Error::InvalidSignature(_) => Some("the request signature is missing or not valid"),
            Error::InvalidClient(_) => Some("client authentication failed"),
            Error::MissingBearer => Some("a bearer token is required"),
            Error::InvalidToken { description, .. } => Some(*description),
            Error::NotFound | Error::Internal(_) => None,
            Error::PreconditionFailed => Some(
                "the record changed since it was read (If-Match does not match its ETag): read it again",
            ),
            Error::MethodNotAllowed(_) => Some("method not allowed"),
            Error::PayloadTooLarge(limit) => {
                owned_description = format!("the body is larger than {limit} bytes");
                Some(owned_description.as_str())
            }
            Error::UnsupportedMediaType(expected) => {
                owned_description = format!("the body must be {expected}");
                Some(owned_description.as_str())
            }
            Error::Unavailable(_) => Some("storage is temporarily unavailable, retry later"),
            Error::RateLimited(..) => Some("too many requests, retry later"),
        };
        let mut resp = Response::json(
            self.status(),
            &ErrorBody {
                error: self.code(),
                error_description: description,
            },
        );
        match &self {
            Error::RateLimited(_, secs) => {
                resp = resp.with_header("retry-after", secs.to_string());
            }
            Error::InvalidClient(_) => {
                resp = resp.with_header("www-authenticate", format!("Basic realm=\"{REALM}\""));
            }
            Error::MissingBearer => {
                resp = resp.with_header("www-authenticate", format!("Bearer realm=\"{REALM}\""));
            }
            Error::InvalidToken { description, .. } => {
                resp = resp.with_header(
                    "www-authenticate",
                    format!(
                        "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
                    ),
                );
            }
            Error::Forbidden(_) => {
                resp = resp.with_header(
                    "www-authenticate",
                    format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\""),
                );
            }
            Error::InvalidSignature(_) => {
                resp = resp.with_header("www-authenticate", format!("Signature realm=\"{REALM}\""));
            }
            Error::MethodNotAllowed(allow) => resp = resp.with_header("allow", *allow),
            Error::Unavailable(_) => resp = resp.with_header("retry-after", "1"),
            _ => {}
        }
        resp
    }
}
