//! The management API for a user's personal access tokens. Every call acts only on the caller's
//! own PATs: another user's PAT is a 404, exactly like one that does not exist.

use super::{
    client_auth, reference, revoke::revoke_record, rfc3339, user, Ctx, Deferred, Outcome,
    PAT_CLIENT_ID,
};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::{Status, TokenRecord};
use crate::store::{Backend, Cursor};
use crate::token::{PlainToken, TokenKind};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

const MAX_NAME_CHARS: usize = 100;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePat {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub expires_in_days: Option<i64>,
}

/// The creation (and rotation) response: the only place the token ever appears.
#[derive(Serialize)]
struct CreatedPat<'a> {
    id: &'a str,
    token: &'a str,
    name: &'a str,
    scopes: &'a [String],
    created_at: String,
    expires_at: String,
}

/// A PAT as its owner sees it: never the token or its hash.
#[derive(Serialize)]
struct PatView<'a> {
    id: &'a str,
    name: &'a str,
    scopes: &'a [String],
    created_at: String,
    expires_at: String,
    last_used_at: Option<String>,
    use_count: i64,
    status: Status,
    revoked_at: Option<String>,
}

fn view(rec: &TokenRecord, now: i64) -> PatView<'_> {
    PatView {
        id: &rec.id,
        name: rec.name.as_deref().unwrap_or(""),
        scopes: &rec.scopes,
        created_at: rfc3339(rec.created_at),
        expires_at: rfc3339(rec.expires_at),
        last_used_at: rec.last_used_at.map(rfc3339),
        use_count: rec.use_count,
        status: rec.status(now),
        revoked_at: rec.revoked_at.map(rfc3339),
    }
}

fn created_response(rec: &TokenRecord, token: &PlainToken) -> Response {
    Response::json(
        201,
        &CreatedPat {
            id: &rec.id,
            token: token.expose_secret(),
            name: rec.name.as_deref().unwrap_or(""),
            scopes: &rec.scopes,
            created_at: rfc3339(rec.created_at),
            expires_at: rfc3339(rec.expires_at),
        },
    )
    .with_header("location", format!("/api/pats/{}", rec.id))
}

fn validate_name(name: &str) -> Result<(), Error> {
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

fn validate_expiry(body: &CreatePat, now: i64, max_days: i64) -> Result<i64, Error> {
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

async fn validate_scopes<B: Backend>(ctx: &Ctx<'_, B>, scopes: &[String]) -> Result<(), Error> {
    if scopes.is_empty() {
        return Err(Error::InvalidScope("at least one scope is required".into()));
    }
    let pat_client = client_auth::load_client(ctx, PAT_CLIENT_ID)
        .await?
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "personal access tokens are not enabled here (no client {PAT_CLIENT_ID} is configured)"
            ))
        })?;
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
    Ok(())
}

/// Validates and stores a new PAT for `sub`; shared by `POST /api/pats` and token exchange.
pub async fn issue<B: Backend>(
    ctx: &Ctx<'_, B>,
    sub: String,
    body: CreatePat,
) -> Result<(TokenRecord, PlainToken, Option<String>), Error> {
    validate_name(&body.name)?;
    let expires_at = validate_expiry(&body, ctx.now, ctx.cfg.pat_max_days)?;
    validate_scopes(ctx, &body.scopes).await?;

    reference::issue(
        ctx,
        reference::NewToken {
            kind: TokenKind::Pat,
            subject: sub,
            client_id: PAT_CLIENT_ID.to_owned(),
            name: Some(body.name),
            scopes: body.scopes,
            expires_at,
        },
    )
    .await
}

pub async fn create<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let body: CreatePat = req.json()?;
    let (rec, token, log) = issue(ctx, sub, body).await?;
    let mut resp = created_response(&rec, &token);
    resp.log = log;
    Ok(resp)
}

fn parse_cursor(s: &str) -> Result<Cursor, Error> {
    let bad = || Error::InvalidRequest("cursor is not valid".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (ts, id) = text.split_once('.').ok_or_else(bad)?;
    Ok((ts.parse().map_err(|_| bad())?, id.to_owned()))
}

fn make_cursor(rec: &TokenRecord) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}.{}", rec.created_at, rec.id))
}

pub async fn list<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let q = req.query_params()?;
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| Error::InvalidRequest(format!("limit must be 1 to {MAX_PAGE}")))?,
    };
    let after = q.get("cursor").map(parse_cursor).transpose()?;
    let mut recs = ctx
        .backend
        .list_pats(&sub, after.as_ref(), limit + 1)
        .await?;
    let next = if recs.len() > limit as usize {
        recs.truncate(limit as usize);
        recs.last().map(make_cursor)
    } else {
        None
    };
    let pats: Vec<PatView<'_>> = recs.iter().map(|r| view(r, ctx.now)).collect();
    Ok(Response::json(
        200,
        &serde_json::json!({ "pats": pats, "next_cursor": next }),
    ))
}

async fn owned<B: Backend>(ctx: &Ctx<'_, B>, sub: &str, id: &str) -> Result<TokenRecord, Error> {
    ctx.backend
        .pat_for_subject(sub, id)
        .await?
        .ok_or(Error::NotFound)
}

pub async fn get<B: Backend>(ctx: &Ctx<'_, B>, req: &Request, id: &str) -> Result<Response, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let rec = owned(ctx, &sub, id).await?;
    Ok(Response::json(200, &view(&rec, ctx.now)))
}

pub async fn revoke<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Outcome, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let rec = owned(ctx, &sub, id).await?;
    let mut deferred = Vec::new();
    if rec.revoked_at.is_none() {
        deferred.push(revoke_record(ctx, &rec.id, &rec.hash).await?);
    }
    Ok(Outcome {
        response: Response::empty(204),
        deferred,
    })
}

pub async fn rotate<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Outcome, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let mut rec = owned(ctx, &sub, id).await?;
    if rec.status(ctx.now) != Status::Active {
        return Err(Error::Conflict(
            "only an active token can be rotated".into(),
        ));
    }
    let token = PlainToken::generate(TokenKind::Pat)
        .map_err(|e| Error::Internal(format!("randomness unavailable: {e}")))?;
    let old = rec.hash;
    rec.hash = token.hash();
    if !ctx
        .backend
        .replace_token_hash(&rec.id, &old, &rec.hash)
        .await?
    {
        return Err(Error::Conflict("the token was changed concurrently".into()));
    }
    ctx.backend.delete_grant(&old).await?;
    ctx.isolate.mark_inactive(old, ctx.now);
    let mut response = created_response(&rec, &token);
    if let Err(e) = ctx
        .backend
        .put_grant(&rec.hash, &rec.grant(), rec.expires_at)
        .await
    {
        response.log = Some(format!("KV write after PAT rotation failed: {}", e.0));
    }
    Ok(Outcome {
        response,
        deferred: vec![Deferred::DeleteGrantAgain { hash: old }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(expires_at: Option<&str>, days: Option<i64>) -> CreatePat {
        CreatePat {
            name: "n".into(),
            scopes: vec![],
            expires_at: expires_at.map(str::to_owned),
            expires_in_days: days,
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

    #[test]
    fn cursor_round_trip_and_garbage() {
        let rec = TokenRecord {
            id: "abc".into(),
            kind: TokenKind::Pat,
            hash: crate::token::TokenHash([0; 32]),
            subject: "s".into(),
            client_id: "c".into(),
            name: None,
            scopes: vec![],
            created_at: 42,
            expires_at: 43,
            revoked_at: None,
            last_used_at: None,
            use_count: 0,
        };
        assert_eq!(parse_cursor(&make_cursor(&rec)), Ok((42, "abc".to_owned())));
        assert!(parse_cursor("!!").is_err());
        assert!(parse_cursor("bm9kb3Q").is_err());
    }
}
