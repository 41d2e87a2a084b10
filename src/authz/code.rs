//! The authorization code's life, as pure decisions: a code for an approved request, the checks
//! of its exchange, and the grant a first exchange creates. The store makes the exchange single
//! use (`AuthorizationCodes::consume_code`, one conditional statement); a second use finds the
//! code used and the handler revokes the grant the first use created (RFC 6749 4.1.2: "If an
//! authorization code is used more than once, the authorization server MUST deny the request
//! and SHOULD revoke (when possible) all tokens previously issued based on that authorization
//! code").

use super::records::{AppGrant, Approved, AuthorizationCode, CODE_TTL_SECS};
use super::refresh::RefreshPolicy;
use crate::error::Error;
use crate::oauth::code_grants::AuthorizationCode as CodeRequest;
use crate::token::TokenHash;

/// What consuming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUse {
    /// Its first use: it is now marked used.
    First(AuthorizationCode),
    /// Used before: deny, and revoke its grant.
    Replayed(AuthorizationCode),
    /// Past its expiry (unused).
    Expired,
    /// No such code.
    Unknown,
}

/// The code for `approved`, issued at `now` (its exchange will create grant `grant_id`).
pub fn new_code(
    approved: Approved,
    hash: TokenHash,
    grant_id: String,
    now: i64,
) -> AuthorizationCode {
    AuthorizationCode {
        hash,
        grant_id,
        approved,
        created_at: now,
        expires_at: now + CODE_TTL_SECS,
        used_at: None,
    }
}

/// The checks of a code's first use by the authenticated client `client_uid`, in this order:
/// the client, `redirect_uri` (if sent: exactly the authorization request's), the PKCE
/// verifier, `resource` (if sent: naming the approved one).
///
/// # Errors
/// [`Error::InvalidGrant`] for the first three (RFC 6749 5.2, RFC 7636 4.6),
/// [`Error::InvalidTarget`] for the resource (RFC 8707 2.2).
pub fn check_exchange(
    code: &AuthorizationCode,
    client_uid: &str,
    request: &CodeRequest<'_>,
) -> Result<(), Error> {
    let a = &code.approved;
    if a.client_uid != client_uid {
        return Err(Error::InvalidGrant(
            "the code was issued to another client".into(),
        ));
    }
    if request
        .redirect_uri
        .as_deref()
        .is_some_and(|r| r != a.redirect_uri)
    {
        return Err(Error::InvalidGrant(
            "redirect_uri does not match the authorization request".into(),
        ));
    }
    if !a.code_challenge.verify(&request.code_verifier) {
        return Err(Error::InvalidGrant(
            "code_verifier does not match the code_challenge".into(),
        ));
    }
    if request
        .resource
        .as_ref()
        .is_some_and(|r| !r.names(&a.audience.resource))
    {
        return Err(Error::InvalidTarget(
            "resource is not the one the code was issued for".into(),
        ));
    }
    Ok(())
}

/// The grant a code's first exchange creates at `now`; `refresh` says whether it carries
/// refresh tokens (its first is then generation 1).
pub fn grant_from_code(
    code: &AuthorizationCode,
    now: i64,
    policy: &RefreshPolicy,
    refresh: bool,
) -> AppGrant {
    let a = &code.approved;
    AppGrant {
        id: code.grant_id.clone(),
        subject: a.subject.clone(),
        client_id: a.client_id.clone(),
        client_uid: a.client_uid.clone(),
        redirect_key: a.redirect_key.clone(),
        audience: a.audience.clone(),
        scopes: a.scopes.clone(),
        created_at: now,
        last_used_at: Some(now),
        refresh_generation: i64::from(refresh),
        rotated_generation: 0,
        expires_at: now + policy.absolute_secs,
        revoked_at: None,
        revoked_reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::Audience;
    use super::*;
    use crate::oauth::authorize::{CodeChallenge, CodeVerifier, ResourceIndicator};
    use std::borrow::Cow;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn code() -> AuthorizationCode {
        let approved = Approved {
            subject: "alice".into(),
            client_id: "c".into(),
            client_uid: "u1".into(),
            redirect_uri: "http://127.0.0.1:5000/cb".into(),
            redirect_key: "http://127.0.0.1/cb".into(),
            code_challenge: CodeChallenge::of(&CodeVerifier::parse(VERIFIER).expect("v")),
            audience: Audience {
                resource: "https://api.example/mcp".into(),
                api_id: "demo_api".into(),
                api_uid: "r1".into(),
            },
            scopes: vec!["demo_api:read".into()],
        };
        new_code(approved, TokenHash([1; 32]), "g1".into(), 1000)
    }

    fn request<'a>(
        redirect: Option<&'a str>,
        verifier: &'a str,
        resource: Option<&'a str>,
    ) -> CodeRequest<'a> {
        CodeRequest {
            code: Cow::Borrowed("pgc_x"),
            redirect_uri: redirect.map(Cow::Borrowed),
            code_verifier: CodeVerifier::parse(verifier).expect("grammar"),
            resource: resource.map(|r| ResourceIndicator::parse(Cow::Borrowed(r)).expect("uri")),
        }
    }

    #[test]
    fn a_code_lives_sixty_seconds_and_names_its_grant() {
        let c = code();
        assert_eq!((c.created_at, c.expires_at, c.used_at), (1000, 1060, None));
        let g = grant_from_code(&c, 1010, &RefreshPolicy::default(), true);
        assert_eq!(
            (g.id.as_str(), g.refresh_generation, g.created_at),
            ("g1", 1, 1010)
        );
        assert_eq!(g.expires_at, 1010 + RefreshPolicy::default().absolute_secs);
        assert_eq!((g.subject.as_str(), g.client_uid.as_str()), ("alice", "u1"));
        assert_eq!(
            grant_from_code(&c, 1010, &RefreshPolicy::default(), false).refresh_generation,
            0
        );
        assert!(g.is_live(1010));
    }

    #[test]
    fn exchange_checks_in_order() {
        let c = code();
        let ok = request(
            Some("http://127.0.0.1:5000/cb"),
            VERIFIER,
            Some("HTTPS://api.example/mcp"),
        );
        assert_eq!(check_exchange(&c, "u1", &ok), Ok(()));
        assert_eq!(
            check_exchange(&c, "u1", &request(None, VERIFIER, None)),
            Ok(())
        );
        let other_verifier = "a".repeat(43);
        for (uid, req, want) in [
            (
                "u2",
                request(None, VERIFIER, None),
                Error::InvalidGrant("the code was issued to another client".into()),
            ),
            // the client check comes first, even with everything else wrong
            (
                "u2",
                request(Some("x"), &other_verifier, Some("https://x.example/")),
                Error::InvalidGrant("the code was issued to another client".into()),
            ),
            (
                "u1",
                request(Some("http://127.0.0.1:5001/cb"), VERIFIER, None),
                Error::InvalidGrant("redirect_uri does not match the authorization request".into()),
            ),
            (
                "u1",
                request(Some("http://127.0.0.1/cb"), VERIFIER, None),
                Error::InvalidGrant("redirect_uri does not match the authorization request".into()),
            ),
            (
                "u1",
                request(None, &other_verifier, None),
                Error::InvalidGrant("code_verifier does not match the code_challenge".into()),
            ),
            (
                "u1",
                request(None, VERIFIER, Some("https://api.example/other")),
                Error::InvalidTarget("resource is not the one the code was issued for".into()),
            ),
        ] {
            assert_eq!(check_exchange(&c, uid, &req), Err(want.clone()), "{want:?}");
        }
    }
}
