//! The one error type: its codes and statuses. It becomes an HTTP response in one place,
//! `Error::into_response` in `http.rs` (so that this module does not depend on `http`).
//!
//! Bodies always have the RFC 6749 section 5.2 shape `{"error", "error_description"?}`.
//! Causes that must not reach the client (storage failures, why a credential was refused)
//! travel in `Response::log`.
/// Realm used in `WWW-Authenticate` challenges.
pub const REALM: &str = "patgate";

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// RFC 6749 5.2 `invalid_request`: "The request is missing a required parameter, includes an
    /// unsupported parameter value (other than grant type), repeats a parameter, includes
    /// multiple credentials, ... or is otherwise malformed."
    InvalidRequest(String),
    /// RFC 6749 5.2 `invalid_client`: "Client authentication failed (e.g., unknown client, no
    /// client authentication included, or unsupported authentication method)." Always 401 here,
    /// with a `Basic` challenge (HTTP requires a challenge on 401). The cause is logged, not sent.
    InvalidClient(String),
    /// RFC 6749 5.2 `invalid_grant`: the provided grant is invalid, expired or revoked.
    InvalidGrant(String),
    /// RFC 6749 5.2 `invalid_scope`: "The requested scope is invalid, unknown, malformed, or
    /// exceeds the scope granted by the resource owner."
    InvalidScope(String),
    /// RFC 6749 5.2 `unauthorized_client`: "The authenticated client is not authorized to use
    /// this authorization grant type."
    UnauthorizedClient(String),
    /// RFC 6749 5.2 `unsupported_grant_type`.
    UnsupportedGrantType(String),
    // No `unsupported_token_type` (RFC 7009 2.2.1): patgate can revoke every token type it
    // issues, and `token_type_hint` is only a hint (RFC 7009 2.1: an unknown or wrong hint makes
    // the server search all its token types, which it does). An unsupported `subject_token_type`
    // in a token exchange is `invalid_request` (RFC 8693 2.2.2).
    /// RFC 8707 section 2 `invalid_target`: "The requested resource is invalid, missing,
    /// unknown, or malformed."
    InvalidTarget(String),
    /// RFC 6750 3.1: no bearer credentials at all (challenge without an error code).
    MissingBearer,
    /// RFC 6750 3.1 `invalid_token`: "expired, revoked, malformed, or invalid". `cause` is logged.
    InvalidToken {
        description: &'static str,
        cause: String,
    },
    /// RFC 6750 3.1 `insufficient_scope`: the bearer token is valid but lacks the permission
    /// (403).
    Forbidden(String),
    /// A signed request (a secret scanning report) without a valid signature: 401
    /// `invalid_signature`. The cause is logged, not sent.
    InvalidSignature(String),
    NotFound,
    MethodNotAllowed(&'static str),
    PayloadTooLarge(usize),
    UnsupportedMediaType(&'static str),
    Conflict(String),
    /// Past a configured rate (brute force, abuse): 429 with `Retry-After` (seconds). The first
    /// field says what was limited (logged).
    RateLimited(&'static str, u64),
    /// RFC 9110 15.5.13: an `If-Match` precondition failed (the record changed since the
    /// client read it): 412 `precondition_failed`.
    PreconditionFailed,
    /// Storage (KV, D1, Durable Objects) failed: 503 `temporarily_unavailable`, cause logged.
    Unavailable(String),
    /// A bug or an impossible state: 500 `server_error`, cause logged.
    Internal(String),
}

impl Error {
    /// The `error` code sent in the body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_)
            | Error::PayloadTooLarge(_)
            | Error::UnsupportedMediaType(_) => "invalid_request",
            Error::InvalidClient(_) => "invalid_client",
            Error::InvalidGrant(_) => "invalid_grant",
            Error::InvalidScope(_) => "invalid_scope",
            Error::UnauthorizedClient(_) => "unauthorized_client",
            Error::UnsupportedGrantType(_) => "unsupported_grant_type",
            Error::InvalidTarget(_) => "invalid_target",
            Error::MissingBearer => "unauthorized",
            Error::InvalidToken { .. } => "invalid_token",
            Error::Forbidden(_) => "insufficient_scope",
            Error::InvalidSignature(_) => "invalid_signature",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::RateLimited(..) => "rate_limited",
            Error::PreconditionFailed => "precondition_failed",
            Error::Unavailable(_) => "temporarily_unavailable",
            Error::Internal(_) => "server_error",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidRequest(_)
            | Error::InvalidGrant(_)
            | Error::InvalidScope(_)
            | Error::UnauthorizedClient(_)
            | Error::UnsupportedGrantType(_)
            | Error::InvalidTarget(_) => 400,
            Error::InvalidClient(_)
            | Error::MissingBearer
            | Error::InvalidToken { .. }
            | Error::InvalidSignature(_) => 401,
            Error::Forbidden(_) => 403,
            Error::NotFound => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::Conflict(_) => 409,
            Error::RateLimited(..) => 429,
            Error::PreconditionFailed => 412,
            Error::PayloadTooLarge(_) => 413,
            Error::UnsupportedMediaType(_) => 415,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Response;

    fn body(e: Error) -> (u16, serde_json::Value, Response) {
        let r = e.into_response();
        (r.status, r.json_body(), r)
    }

    #[test]
    fn oauth_errors_have_rfc6749_bodies() {
        let cases = [
            (
                Error::InvalidRequest("missing parameter token".into()),
                400,
                "invalid_request",
            ),
            (Error::InvalidGrant("x".into()), 400, "invalid_grant"),
            (Error::InvalidScope("x".into()), 400, "invalid_scope"),
            (
                Error::UnauthorizedClient("x".into()),
                400,
                "unauthorized_client",
            ),
            (
                Error::UnsupportedGrantType("x".into()),
                400,
                "unsupported_grant_type",
            ),
            (Error::InvalidTarget("x".into()), 400, "invalid_target"),
            (Error::Conflict("x".into()), 409, "conflict"),
            (Error::NotFound, 404, "not_found"),
            (Error::PreconditionFailed, 412, "precondition_failed"),
            (Error::PayloadTooLarge(8192), 413, "invalid_request"),
            (
                Error::UnsupportedMediaType("application/json"),
                415,
                "invalid_request",
            ),
        ];
        for (e, status, code) in cases {
            let (s, b, _) = body(e);
            assert_eq!(s, status);
            assert_eq!(b["error"], code);
        }
    }

    #[test]
    fn invalid_client_challenges_basic_and_hides_cause() {
        let (s, b, r) = body(Error::InvalidClient("unknown client demo".into()));
        assert_eq!(s, 401);
        assert_eq!(
            b,
            serde_json::json!({"error":"invalid_client","error_description":"client authentication failed"})
        );
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"patgate\"")
        );
        assert!(Error::InvalidClient("unknown client demo".into())
            .cause()
            .is_some_and(|l| l.contains("unknown client")));
        assert!(!String::from_utf8_lossy(&r.body).contains("demo"));
    }

    #[test]
    fn bearer_challenges_follow_rfc6750() {
        let (s, _, r) = body(Error::MissingBearer);
        assert_eq!(s, 401);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"patgate\"")
        );
        let (s, b, r) = body(Error::InvalidToken {
            description: "the token expired",
            cause: "exp".into(),
        });
        assert_eq!(s, 401);
        assert_eq!(b["error"], "invalid_token");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"patgate\", error=\"invalid_token\", error_description=\"the token expired\"")
        );
    }

    #[test]
    fn storage_failures_are_503_and_internal_500_without_details() {
        let (s, b, r) = body(Error::Unavailable("D1: timeout".into()));
        assert_eq!(s, 503);
        assert_eq!(b["error"], "temporarily_unavailable");
        assert!(!String::from_utf8_lossy(&r.body).contains("D1"));
        let (s, b, _) = body(Error::Internal("bug".into()));
        assert_eq!(s, 500);
        assert_eq!(b, serde_json::json!({"error":"server_error"}));
    }

    #[test]
    fn forbidden_and_bad_signatures() {
        let (s, b, r) = body(Error::Forbidden("no self-rotation".into()));
        assert_eq!(s, 403);
        assert_eq!(b["error"], "insufficient_scope");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"patgate\", error=\"insufficient_scope\"")
        );
        let (s, b, r) = body(Error::InvalidSignature("unknown key k9".into()));
        assert_eq!(s, 401);
        assert_eq!(
            b,
            serde_json::json!({"error":"invalid_signature","error_description":"the request signature is missing or not valid"})
        );
        assert!(Error::InvalidSignature("unknown key k9".into())
            .cause()
            .is_some_and(|l| l.contains("k9")));
        assert!(!String::from_utf8_lossy(&r.body).contains("k9"));
        assert!(r.header("www-authenticate").is_some());
    }

    #[test]
    fn method_not_allowed_lists_allow() {
        let (s, _, r) = body(Error::MethodNotAllowed("GET, POST"));
        assert_eq!(s, 405);
        assert_eq!(r.header("allow"), Some("GET, POST"));
    }
}
