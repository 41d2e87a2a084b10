//! The management API for a user's personal access tokens. Every call acts only on the caller's
//! own PATs: another user's PAT is a 404, exactly like one that does not exist.

use super::events::Event;
use super::revoke::{revoke_record, Purge};
use super::{client_auth, reference, rfc3339, user, Ctx, Outcome, PAT_CLIENT_ID};
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
    /// The PAT may rotate itself (`POST /api/pats/self/rotate`); off unless asked for.
    #[serde(default)]
    pub allow_self_rotation: bool,
    /// A detected reuse of one of its rotated-away tokens revokes the whole PAT; off unless
    /// asked for.
    #[serde(default)]
    pub revoke_on_reuse: bool,
}

/// The optional body of a rotation.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    grace_seconds: Option<i64>,
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
    allow_self_rotation: bool,
    revoke_on_reuse: bool,
    /// After a rotation with grace: until when the previous token keeps working.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_token_valid_until: Option<String>,
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
    /// `leaked` when a secret scanning report revoked it, `reuse` when a detected reuse of one
    /// of its rotated-away tokens did (`revoke_on_reuse`); else null.
    revoked_reason: Option<&'a str>,
    /// For a leak: where the token was found.
    revoked_source_url: Option<&'a str>,
    /// Every place leak reports found it or one of its rotated-away tokens (the newest 10
    /// distinct URLs, newest first; empty if none), whatever its status.
    leak_urls: &'a [String],
    /// Whole days left before expiry, a started day counting as one (0 once expired or revoked).
    days_left: i64,
    /// Active with 7 days or less left.
    expiring_soon: bool,
    allow_self_rotation: bool,
    revoke_on_reuse: bool,
    /// Detected uses of its rotated-away tokens after they stopped working (README "Reuse
    /// detection"): 0 if none.
    reuse_count: i64,
    /// When the first one was detected.
    first_reuse_at: Option<String>,
    /// The last one: when, from where (as Cloudflare reported it), and when the token used
    /// had been rotated away.
    last_reuse: Option<ReuseView<'a>>,
}

#[derive(Serialize)]
struct ReuseView<'a> {
    at: String,
    ip: Option<&'a str>,
    colo: Option<&'a str>,
    country: Option<&'a str>,
    token_rotated_at: Option<String>,
}

/// Days at or below which a PAT is `expiring_soon` (the page's warning threshold too).
pub const EXPIRING_SOON_DAYS: i64 = 7;

/// Whole days left before `expires_at`, a started day counting as one; 0 once expired.
pub fn days_left(expires_at: i64, now: i64) -> i64 {
    let left = expires_at - now;
    if left <= 0 {
        0
    } else {
        (left + 86_399) / 86_400
    }
}

/// `status`: the one status ([`super::decision::status`]), never the record's alone.
fn view(rec: &TokenRecord, status: Status, now: i64) -> PatView<'_> {
    let days = if status == Status::Active {
        days_left(rec.expires_at, now)
    } else {
        0
    };
    PatView {
        id: &rec.id,
        name: rec.name.as_deref().unwrap_or(""),
        scopes: &rec.scopes,
        created_at: rfc3339(rec.created_at),
        expires_at: rfc3339(rec.expires_at),
        last_used_at: rec.last_used_at.map(rfc3339),
        use_count: rec.use_count,
        status,
        revoked_at: rec.revoked_at.map(rfc3339),
        revoked_reason: rec.revoked_reason.as_deref(),
        revoked_source_url: rec.revoked_url.as_deref(),
        leak_urls: &rec.leak_urls,
        days_left: days,
        expiring_soon: status == Status::Active && days <= EXPIRING_SOON_DAYS,
        allow_self_rotation: rec.allow_self_rotation,
        revoke_on_reuse: rec.revoke_on_reuse,
        reuse_count: rec.reuse.as_ref().map_or(0, |r| r.count),
        first_reuse_at: rec.reuse.as_ref().map(|r| rfc3339(r.first_at)),
        last_reuse: rec.reuse.as_ref().map(|r| ReuseView {
            at: rfc3339(r.last_at),
            ip: r.last_origin.ip.as_deref(),
            colo: r.last_origin.colo.as_deref(),
            country: r.last_origin.country.as_deref(),
            token_rotated_at: r.last_rotated_at.map(rfc3339),
        }),
    }
}

fn created_response(rec: &TokenRecord, token: &PlainToken) -> Response {
    created_response_with(rec, token, None)
}

/// The creation or rotation response; `grace_until`: the previous token works until then.
pub(crate) fn created_response_with(
    rec: &TokenRecord,
    token: &PlainToken,
    grace_until: Option<i64>,
) -> Response {
    Response::json(
        201,
        &CreatedPat {
            id: &rec.id,
            token: token.expose_secret(),
            name: rec.name.as_deref().unwrap_or(""),
            scopes: &rec.scopes,
            created_at: rfc3339(rec.created_at),
            expires_at: rfc3339(rec.expires_at),
            allow_self_rotation: rec.allow_self_rotation,
            revoke_on_reuse: rec.revoke_on_reuse,
            previous_token_valid_until: grace_until.map(rfc3339),
        },
    )
    .with_header("location", format!("/api/pats/{}", rec.id))
}

pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
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

pub(crate) fn validate_expiry(body: &CreatePat, now: i64, max_days: i64) -> Result<i64, Error> {
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
pub(crate) async fn validate_scopes<B: Backend>(
    ctx: &Ctx<'_, B>,
    scopes: &[String],
) -> Result<std::rc::Rc<crate::model::Client>, Error> {
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
    super::ratelimit::count(ctx, crate::store::Limit::PatCreationsPerUser, &sub).await?;

    let new = reference::NewToken {
        kind: TokenKind::Pat,
        subject: sub,
        client_id: PAT_CLIENT_ID.to_owned(),
        name: Some(body.name),
        scopes: body.scopes,
        expires_at,
        client_uid: pat_client.uid.clone(),
        allow_self_rotation: body.allow_self_rotation,
        revoke_on_reuse: body.revoke_on_reuse,
    };
    let issued = match chosen {
        None => reference::issue(ctx, new).await,
        Some((id, token)) => reference::issue_with_id(ctx, new, id, token).await,
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

pub async fn create<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let body: CreatePat = req.json()?;
    let (rec, token) = issue(ctx, sub, body).await?;
    Ok(created_response(&rec, &token))
}

pub(crate) fn parse_cursor(s: &str) -> Result<Cursor, Error> {
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
    let (recs, next) = list_for(ctx, &sub, after.as_ref(), limit).await?;
    let statuses = super::decision::statuses(ctx, &recs).await?;
    let pats: Vec<PatView<'_>> = recs
        .iter()
        .zip(statuses)
        .map(|(r, s)| view(r, s, ctx.now))
        .collect();
    Ok(Response::json(
        200,
        &serde_json::json!({ "pats": pats, "next_cursor": next }),
    ))
}

/// One page of `sub`'s PATs, newest first, and the cursor of the next page if there is one.
pub async fn list_for<B: Backend>(
    ctx: &Ctx<'_, B>,
    sub: &str,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<(Vec<TokenRecord>, Option<String>), Error> {
    let mut recs = ctx.backend.list_pats(sub, after, limit + 1).await?;
    let next = if recs.len() > limit as usize {
        recs.truncate(limit as usize);
        recs.last().map(make_cursor)
    } else {
        None
    };
    Ok((recs, next))
}

pub(crate) async fn owned<B: Backend>(
    ctx: &Ctx<'_, B>,
    sub: &str,
    id: &str,
) -> Result<TokenRecord, Error> {
    ctx.backend
        .pat_for_subject(sub, id)
        .await?
        .ok_or(Error::NotFound)
}

pub async fn get<B: Backend>(ctx: &Ctx<'_, B>, req: &Request, id: &str) -> Result<Response, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let rec = owned(ctx, &sub, id).await?;
    let status = super::decision::status(ctx, &rec).await?;
    Ok(Response::json(200, &view(&rec, status, ctx.now)))
}

pub async fn revoke<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Outcome, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let done = revoke_for(ctx, &sub, id).await?;
    let response = Response::empty(204);
    Ok(Outcome {
        response,
        deferred: done.deferred,
    })
}

/// Revokes `sub`'s PAT `id`; 404 if it is not theirs. Also for a PAT revoked before: a repeated
/// revocation finishes KV deletes that failed then.
pub async fn revoke_for<B: Backend>(ctx: &Ctx<'_, B>, sub: &str, id: &str) -> Result<Purge, Error> {
    let rec = owned(ctx, sub, id).await?;
    let done = revoke_record(ctx, &rec.id, &rec.hash)
        .await?
        .ok_or(Error::NotFound)?;
    ctx.isolate.emit(Event::revoked(&rec, done.newly, "api"));
    Ok(done)
}

pub async fn rotate<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Outcome, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let grace = grace_from_body(ctx, req)?;
    let rec = owned(ctx, &sub, id).await?;
    Ok(rotated_outcome(
        rotate_record(ctx, rec, grace, "api").await?,
    ))
}

pub(crate) fn rotated_outcome(r: Rotated) -> Outcome {
    let response = created_response_with(&r.record, &r.token, r.grace_until);
    Outcome {
        response,
        deferred: r.deferred,
    }
}

/// The grace period a rotation asks for: an optional JSON body `{"grace_seconds": N}` (an empty
/// body: none), 0 to `ROTATION_MAX_GRACE_SECONDS`.
pub(crate) fn grace_from_body<B>(ctx: &Ctx<'_, B>, req: &Request) -> Result<i64, Error> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(0);
    }
    let body: RotateBody = req.json()?;
    let max = ctx
        .cfg
        .lifecycle
        .max_grace_secs
        .clamp(0, super::MAX_ROTATION_GRACE_SECS);
    match body.grace_seconds {
        None => Ok(0),
        Some(g) if (0..=max).contains(&g) => Ok(g),
        Some(_) => Err(Error::InvalidRequest(format!(
            "grace_seconds must be 0 to {max}"
        ))),
    }
}

pub(crate) use super::rotation::{rotate_record, Rotated};

#[cfg(test)]
mod tests {
    use super::*;

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
    fn days_left_counts_a_started_day() {
        let now = 1_795_000_000;
        assert_eq!(days_left(now + 30 * 86_400, now), 30);
        assert_eq!(days_left(now + 7 * 86_400, now), 7);
        assert_eq!(days_left(now + 7 * 86_400 + 1, now), 8);
        assert_eq!(days_left(now + 1, now), 1);
        assert_eq!(days_left(now, now), 0);
        assert_eq!(days_left(now - 86_400, now), 0);
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
            created_at: 42,
            expires_at: 43,
            ..crate::testing::pat_record("abc", "s", crate::token::TokenHash([0; 32]), 0)
        };
        assert_eq!(parse_cursor(&make_cursor(&rec)), Ok((42, "abc".to_owned())));
        assert!(parse_cursor("!!").is_err());
        assert!(parse_cursor("bm9kb3Q").is_err());
    }
}
