//! The management API for a user's personal access tokens (`/api/pats`). Every call acts only on
//! the caller's own PATs: another user's PAT is a 404, exactly like one that does not exist.

use super::new_pat::{self, CreatePat};
use super::one_status;
use super::pat_list::{self, PatSort};
use super::revocation::{revoke_record, revoked_event, Purge};
use super::rotation::{self, grace_from_body, Rotated};
use crate::app::ctx::{Ctx, Outcome};
use crate::app::user;
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::{Status, TokenRecord};
use crate::store::Backend;
use crate::time::rfc3339;
use crate::token::PlainToken;
use serde::Serialize;

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;

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
    /// An administrator's reason for revoking it (`revoked_reason` is then `admin`).
    revoked_message: Option<&'a str>,
    /// Uses today, in the last 7, 30 and 90 UTC days (README "Usage").
    usage: crate::usage::summary::Totals,
    /// The last few places it was used from, most recent first.
    last_used_from: Vec<super::used_from::FromView<'a>>,
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

/// `status`: the one status ([`super::one_status::status`]), never the record's alone.
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
        revoked_message: rec.revoked_message.as_deref(),
        usage: rec.daily_uses.totals(now),
        last_used_from: super::used_from::from_views(&rec.last_used_from),
    }
}

fn created_response(rec: &TokenRecord, token: &PlainToken) -> Response {
    created_response_with(rec, token, None)
}

/// The creation or rotation response; `grace_until`: the previous token works until then.
pub fn created_response_with(
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

pub async fn create<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let body: CreatePat = req.json()?;
    let (rec, token) = new_pat::issue(ctx, sub, body).await?;
    Ok(created_response(&rec, &token))
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
    let sort = PatSort::parse(q.get("sort"))?;
    let after = q
        .get("cursor")
        .map(|c| pat_list::parse_cursor(c, sort))
        .transpose()?;
    let (recs, next) = pat_list::list_for(ctx, &sub, sort, after.as_ref(), limit).await?;
    let statuses = one_status::statuses(ctx, &recs).await?;
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

pub async fn owned<B: Backend>(
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
    let status = one_status::status(ctx, &rec).await?;
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
    ctx.isolate.emit(revoked_event(&rec, done.newly, "api"));
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
        rotation::rotate_record(ctx, rec, grace, "api").await?,
    ))
}

pub fn rotated_outcome(r: Rotated) -> Outcome {
    let response = created_response_with(&r.record, &r.token, r.grace_until);
    Outcome {
        response,
        deferred: r.deferred,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
