//! A new PAT: the rules of its name, expiry and scopes, checked the same way for the management
//! API, the token page and token exchange, then issued ([`super::issuance`]) and announced
//! (`pat.created`).

use super::issuance::{self, NewToken};
use crate::app::client_auth;
use crate::app::ctx::Ctx;
use crate::app::ratelimit;
use crate::error::Error;
use crate::events::Event;
use crate::model::{Client, TokenRecord, PAT_CLIENT_ID};
use crate::store::{Backend, Limit};
use crate::token::{PlainToken, TokenKind};
use serde::Deserialize;
use std::rc::Rc;

const MAX_NAME_CHARS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePat {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub expires_in_days: Option<i64>,
    /// The PAT may rotate itself (`POST /api/pats/self/rotate`); off unless asked for.
    #[serde(default)]
    pub allow_self_rotation: bool,
    /// A detected reuse of one of its rotated-away tokens revokes the whole PAT; off unless
    /// asked for.
    #[serde(default)]
    pub revoke_on_reuse: bool,
}

pub fn validate_name(name: &str) -> Result<(), Error> {
    let n = name.chars().count();
    if name.trim().is_empty() || n > MAX_NAME_CHARS {
        return Err(Error::InvalidRequest(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters and not blank"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(
            "name must not contain control characters".into(),
        ));
    }
    Ok(())
}

pub fn validate_expiry(body: &CreatePat, now: i64, max_days: i64) -> Result<i64, Error> {
    let max = now + max_days * 86_400;
    let exp = match (&body.expires_at, body.expires_in_days) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidRequest(
                "give either expires_at or expires_in_days, not both".into(),
            ))
        }
        (None, None) => {
            return Err(Error::InvalidRequest(
                "an expiry is required: expires_at (RFC 3339) or expires_in_days".into(),
            ))
        }
        (Some(at), None) => chrono::DateTime::parse_from_rfc3339(at)
            .map_err(|e| {
                Error::InvalidRequest(format!("expires_at is not an RFC 3339 date-time: {e}"))
            })?
            .timestamp(),
        (None, Some(days)) => {
            if !(1..=max_days).contains(&days) {
                return Err(Error::InvalidRequest(format!(
                    "expires_in_days must be between 1 and {max_days}"
                )));
            }
            now + days * 86_400
        }
    };
    if exp <= now {
        return Err(Error::InvalidRequest(
            "expires_at must be in the future".into(),
        ));
    }
    if exp > max {
        return Err(Error::InvalidRequest(format!(
            "the expiry may be at most {max_days} days ahead"
        )));
    }
    Ok(exp)
}

/// Checks the scopes against the PAT client's allowed scopes; returns the PAT client.
pub async fn validate_scopes<B: Backend>(
    ctx: &Ctx<'_, B>,
    scopes: &[String],
) -> Result<Rc<Client>, Error> {
    if scopes.is_empty() {
        return Err(Error::InvalidScope("at least one scope is required".into()));
    }
    // One meaning, whether the PAT client is missing or disabled: PATs cannot be created here
    // now (`unauthorized_client`, docs/API.md), nothing about the request is wrong.
    let pat_client = match client_auth::load_client(ctx, PAT_CLIENT_ID).await? {
        Some(c) if c.enabled => c,
        found => {
            let why = if found.is_some() {
                "is disabled"
            } else {
                "does not exist"
            };
            return Err(Error::UnauthorizedClient(format!(
                "personal access tokens cannot be created: the client {PAT_CLIENT_ID} {why}"
            )));
        }
    };
    for (i, s) in scopes.iter().enumerate() {
        if scopes[..i].contains(s) {
            return Err(Error::InvalidScope(format!("scope {s} is repeated")));
        }
        if !pat_client.allowed_scopes.contains(s) {
            return Err(Error::InvalidScope(format!(
                "scope {s} is not allowed for personal access tokens"
            )));
        }
    }
    Ok(pat_client)
}

/// Validates and stores a new PAT for `sub`; shared by `POST /api/pats` and token exchange.
pub async fn issue<B: Backend>(
    ctx: &Ctx<'_, B>,
    sub: String,
    body: CreatePat,
) -> Result<(TokenRecord, PlainToken), Error> {
    issue_with_id(ctx, sub, body, None).await
}

/// [`issue`] with a caller-chosen record id and token (`None`: random). The token page derives the
/// id from its one-time form token, so that re-posting the same form cannot create a second PAT,
/// and generates the token first, to keep it sealed for a repeated submission (`page::replay`).
pub async fn issue_with_id<B: Backend>(
    ctx: &Ctx<'_, B>,
    sub: String,
    body: CreatePat,
    chosen: Option<(String, PlainToken)>,
) -> Result<(TokenRecord, PlainToken), Error> {
    validate_name(&body.name)?;
    let expires_at = validate_expiry(&body, ctx.now, ctx.cfg.pat_max_days)?;
    let pat_client = validate_scopes(ctx, &body.scopes).await?;
    ratelimit::count(ctx, Limit::PatCreationsPerUser, &sub).await?;

    let new = NewToken {
        kind: TokenKind::Pat,
        subject: sub,
        client_id: PAT_CLIENT_ID.to_owned(),
        name: Some(body.name),
        scopes: body.scopes,
        expires_at,
        client_uid: pat_client.uid.clone(),
        allow_self_rotation: body.allow_self_rotation,
        revoke_on_reuse: body.revoke_on_reuse,
        grant_id: None,
        audience: None,
    };
    let issued = match chosen {
        None => issuance::issue(ctx, new).await,
        Some((id, token)) => issuance::issue_with_id(ctx, new, id, token).await,
    }?;
    let rec = &issued.0;
    ctx.isolate.emit(Event::PatCreated {
        pat_id: rec.id.clone(),
        sub: rec.subject.clone(),
        scopes: rec.scopes.clone(),
        expires_at: rec.expires_at,
    });
    Ok(issued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::rfc3339;

    fn body(expires_at: Option<&str>, days: Option<i64>) -> CreatePat {
        CreatePat {
            name: "n".into(),
            scopes: vec![],
            expires_at: expires_at.map(str::to_owned),
            expires_in_days: days,
            allow_self_rotation: false,
            revoke_on_reuse: false,
        }
    }

    #[test]
    fn expiry_rules() {
        let now = 1_795_000_000; // 2026-11-18
        assert_eq!(
            validate_expiry(&body(None, Some(1)), now, 366),
            Ok(now + 86_400)
        );
        assert!(validate_expiry(&body(None, Some(0)), now, 366).is_err());
        assert!(validate_expiry(&body(None, Some(367)), now, 366).is_err());
        assert!(validate_expiry(&body(None, None), now, 366).is_err());
        assert!(validate_expiry(&body(Some("2027-01-01T00:00:00Z"), Some(3)), now, 366).is_err());
        assert!(validate_expiry(&body(Some("2020-01-01T00:00:00Z"), None), now, 366).is_err());
        assert!(validate_expiry(&body(Some("tomorrow"), None), now, 366).is_err());
        let at = rfc3339(now + 10);
        assert_eq!(
            validate_expiry(&body(Some(&at), None), now, 366),
            Ok(now + 10)
        );
        let offset = "2027-01-01T02:00:00+02:00";
        assert_eq!(
            validate_expiry(&body(Some(offset), None), now, 366),
            Ok(1_798_761_600)
        );
    }

    #[test]
    fn name_rules() {
        assert!(validate_name("ci deploy").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("   ").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"é".repeat(100)).is_ok());
        assert!(validate_name(&"é".repeat(101)).is_err());
    }
}
