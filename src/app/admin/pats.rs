//! `/admin/pats`: the administrators' inventory of reference tokens across users (GitLab's
//! credentials inventory): filtered, sorted, paged, with each token's use counts; one token, its
//! usage per day and resource; and a revocation with a reason its owner sees, through the one
//! revocation path (`tokens::revoke_record_because`), logged as `pat.revoked` (`via: admin`).
//! The caller in `admin` has authorized the request and logs an `admin.change` event for every
//! write.

use crate::app::ctx::{Ctx, Outcome};
use crate::app::tokens::{self, FromView};
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::model::{Status, TokenRecord};
use crate::storage::inventory::sort_value;
use crate::store::{Backend, RevocationNote};
use crate::store_usage::{InventoryQuery, KindFilter, SortKey, StatusFilter};
use crate::time::rfc3339;
use crate::usage::summary::Totals;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;
/// Longest value of the `client`, `scope` and `user` filters.
const MAX_FILTER_CHARS: usize = 255;
/// Longest reason of an administrator's revocation.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest `*_days` filter (about 100 years).
const MAX_DAYS: i64 = 36_600;

const PARAMS: [&str; 13] = [
    "kind",
    "status",
    "expiring_within_days",
    "unused_for_days",
    "leaked",
    "client",
    "scope",
    "user",
    "sort",
    "order",
    "limit",
    "cursor",
    "days",
];

/// `/admin/pats...` (path segments after `pats`).
pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    rest: &[&str],
) -> Result<Outcome, Error> {
    match (rest, req.method) {
        ([], Method::Get) => list(ctx, req).await.map(Into::into),
        ([id], Method::Get) => {
            let rec = ctx.backend.token_by_id(id).await?.ok_or(Error::NotFound)?;
            let status = tokens::status(ctx, &rec).await?;
            Ok(Response::json(200, &view(&rec, status, ctx.now)).into())
        }
        ([id, "usage"], Method::Get) => {
            let days = tokens::days_param(req)?;
            let rec = ctx.backend.token_by_id(id).await?.ok_or(Error::NotFound)?;
            tokens::usage_response(ctx, &rec.id, days)
                .await
                .map(Into::into)
        }
        ([id, "revoke"], Method::Post) => revoke(ctx, req, id).await,
        ([_, "revoke"], _) => Err(Error::MethodNotAllowed("POST")),
        ([] | [_] | [_, "usage"], _) => Err(Error::MethodNotAllowed("GET")),
        _ => Err(Error::NotFound),
    }
}

/// A token as administrators see it: never the token or its hash.
#[derive(Serialize)]
struct AdminView<'a> {
    id: &'a str,
    kind: &'a str,
    /// The owner: the user of a PAT, the client of a client token.
    user: &'a str,
    client_id: &'a str,
    name: Option<&'a str>,
    scopes: &'a [String],
    status: Status,
    created_at: String,
    expires_at: String,
    revoked_at: Option<String>,
    revoked_reason: Option<&'a str>,
    revoked_message: Option<&'a str>,
    last_used_at: Option<String>,
    use_count: i64,
    usage: Totals,
    last_used_from: Vec<FromView<'a>>,
}

/// `status`: the one status ([`tokens::status`]), never the record's alone.
fn view(rec: &TokenRecord, status: Status, now: i64) -> AdminView<'_> {
    AdminView {
        id: &rec.id,
        kind: rec.kind.as_str(),
        user: &rec.subject,
        client_id: &rec.client_id,
        name: rec.name.as_deref(),
        scopes: &rec.scopes,
        status,
        created_at: rfc3339(rec.created_at),
        expires_at: rfc3339(rec.expires_at),
        revoked_at: rec.revoked_at.map(rfc3339),
        revoked_reason: rec.revoked_reason.as_deref(),
        revoked_message: rec.revoked_message.as_deref(),
        last_used_at: rec.last_used_at.map(rfc3339),
        use_count: rec.use_count,
        usage: rec.daily_uses.totals(now),
        last_used_from: tokens::from_views(&rec.last_used_from),
    }
}

fn bad(what: String) -> Error {
    Error::InvalidRequest(what)
}

fn days(v: Option<&str>, name: &str) -> Result<Option<i64>, Error> {
    v.map(|s| {
        s.parse::<i64>()
            .ok()
            .filter(|d| s.bytes().all(|b| b.is_ascii_digit()) && (0..=MAX_DAYS).contains(d))
            .ok_or_else(|| bad(format!("{name} must be a number of days, 0 to {MAX_DAYS}")))
    })
    .transpose()
}

fn text(v: Option<&str>, name: &str) -> Result<Option<String>, Error> {
    v.map(|s| {
        if s.chars().count() > MAX_FILTER_CHARS || s.chars().any(char::is_control) {
            Err(bad(format!(
                "{name} must be at most {MAX_FILTER_CHARS} characters, without control characters"
            )))
        } else {
            Ok(s.to_owned())
        }
    })
    .transpose()
}

fn sort_name(k: SortKey) -> &'static str {
    match k {
        SortKey::Created => "created",
        SortKey::Expires => "expires",
        SortKey::LastUsed => "last_used",
        SortKey::Uses => "uses",
    }
}

/// The cursor of the row after which the next page starts: the sort, its value and the id.
fn make_cursor(rec: &TokenRecord, sort: SortKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}.{}.{}",
        sort_name(sort),
        sort_value(rec, sort),
        rec.id
    ))
}

fn parse_cursor(s: &str, sort: SortKey) -> Result<(i64, String), Error> {
    let invalid = || bad("cursor is not valid".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '.');
    let (Some(k), Some(v), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if k != sort_name(sort) {
        return Err(bad("cursor belongs to another sort order".into()));
    }
    Ok((v.parse().map_err(|_| invalid())?, id.to_owned()))
}

/// The inventory query of a request (every parameter checked; an unknown one is refused: a
/// misspelt filter must not list every token).
pub fn query(req: &Request, now: i64) -> Result<InventoryQuery, Error> {
    let q = req.query_params()?;
    if let Some(unknown) = q.names().find(|n| !PARAMS.contains(n)) {
        let shown: String = unknown.chars().take(40).collect();
        return Err(bad(format!(
            "unknown parameter {shown:?} (known: {})",
            PARAMS.join(", ")
        )));
    }
    let kind = match q.get("kind") {
        None | Some("pat") => KindFilter::Pat,
        Some("access") => KindFilter::Access,
        Some("any") => KindFilter::Any,
        Some(_) => return Err(bad("kind must be pat, access or any".into())),
    };
    let status = match q.get("status") {
        None => None,
        Some("active") => Some(StatusFilter::Active),
        Some("expired") => Some(StatusFilter::Expired),
        Some("revoked") => Some(StatusFilter::Revoked),
        Some(_) => return Err(bad("status must be active, expired or revoked".into())),
    };
    let leaked = match q.get("leaked") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(bad("leaked must be true or false".into())),
    };
    let sort = match q.get("sort") {
        None | Some("created") => SortKey::Created,
        Some("expires") => SortKey::Expires,
        Some("last_used") => SortKey::LastUsed,
        Some("uses") => SortKey::Uses,
        Some(_) => {
            return Err(bad(
                "sort must be created, expires, last_used or uses".into()
            ))
        }
    };
    let descending = match q.get("order") {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(bad("order must be asc or desc".into())),
    };
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| bad(format!("limit must be 1 to {MAX_PAGE}")))?,
    };
    Ok(InventoryQuery {
        kind,
        status,
        expiring_within_days: days(q.get("expiring_within_days"), "expiring_within_days")?,
        unused_for_days: days(q.get("unused_for_days"), "unused_for_days")?,
        leaked,
        client: text(q.get("client"), "client")?,
        scope: text(q.get("scope"), "scope")?,
        user: text(q.get("user"), "user")?,
        sort,
        descending,
        after: q.get("cursor").map(|c| parse_cursor(c, sort)).transpose()?,
        limit,
        now,
    })
}

async fn list<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let mut q = query(req, ctx.now)?;
    let total = ctx.backend.inventory_count(&q).await?;
    let limit = q.limit;
    q.limit += 1;
    let mut recs = ctx.backend.inventory(&q).await?;
    let next = if recs.len() > limit as usize {
        recs.truncate(limit as usize);
        recs.last().map(|r| make_cursor(r, q.sort))
    } else {
        None
    };
    let statuses = tokens::statuses(ctx, &recs).await?;
    let pats: Vec<AdminView<'_>> = recs
        .iter()
        .zip(statuses)
        .map(|(r, s)| view(r, s, ctx.now))
        .collect();
    Ok(Response::json(
        200,
        &serde_json::json!({ "pats": pats, "total": total, "next_cursor": next }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeBody {
    reason: String,
}

/// `POST /admin/pats/{id}/revoke` with `{"reason"}`: revoked through the one revocation path;
/// the reason is recorded (if this call revokes it) and shown to the owner.
async fn revoke<B: Backend>(ctx: &Ctx<'_, B>, req: &Request, id: &str) -> Result<Outcome, Error> {
    let body: RevokeBody = req.json()?;
    let reason = body.reason.trim();
    if reason.is_empty()
        || reason.chars().count() > MAX_REASON_CHARS
        || reason.chars().any(char::is_control)
    {
        return Err(bad(format!(
            "reason must be 1 to {MAX_REASON_CHARS} characters, without control characters"
        )));
    }
    let rec = ctx.backend.token_by_id(id).await?.ok_or(Error::NotFound)?;
    let note = RevocationNote {
        reason: "admin",
        url: None,
        message: Some(reason.to_owned()),
    };
    let done = tokens::revoke_record_because(ctx, &rec.id, &rec.hash, Some(&note))
        .await?
        .ok_or(Error::NotFound)?;
    ctx.isolate
        .emit(tokens::revoked_event(&rec, done.newly, "admin"));
    let now = ctx.backend.token_by_id(id).await?.ok_or(Error::NotFound)?;
    let status = tokens::status(ctx, &now).await?;
    Ok(Outcome {
        response: Response::json(200, &view(&now, status, ctx.now)),
        deferred: done.deferred,
    })
}
