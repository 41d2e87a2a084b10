//! A token's uses: noting each use of a live reference token (introspection and the gate share
//! [`note_use`]) into the isolate's coalescing window, at no storage cost on the request's path,
//! and the usage API (`GET /api/pats/{id}/usage`; the admin API reads any token's through
//! [`usage_response`]).
//!
//! A use becomes work after the response ([`Deferred::RecordUse`]) at most once per token per
//! isolate per `LAST_USED_COALESCE_SECONDS`; the first use held in a window also asks the runtime
//! to flush at the window's end ([`Deferred::FlushUses`]) when that is within what `wait_until`
//! allows, and any later use finds overdue windows (see [`crate::usage::coalesce`]).
//!
//! Grants of the authorization server (per app) are counted the same way once they exist: their
//! decision calls [`note_use`] with the grant's id (its own Durable Object) and a [`UseKey`] of
//! the resource.

use super::pats::owned;
use crate::app::ctx::{Ctx, Deferred};
use crate::app::user;
use crate::error::Error;
use crate::http::{Request, Response};
use crate::last_use::UsedFrom;
use crate::store::Backend;
use crate::usage::coalesce::Noted;
use crate::usage::{day_of, report, UseKey, Via, RETENTION_DAYS};

/// Longest wait for a window's flush after a response: the platform ends `wait_until` work 30 s
/// after the response; a later flush is left to the next use of any token in the isolate.
pub const MAX_FLUSH_DELAY_SECS: i64 = 30;

/// Notes one use of live token `token_id` counted against `key`, and hands what is due to the
/// runtime through `deferred`.
pub fn note_use<B: Backend>(
    ctx: &Ctx<'_, B>,
    token_id: &str,
    key: &UseKey<'_>,
    deferred: &mut Vec<Deferred>,
) {
    let window = ctx.cfg.last_used_coalesce_secs;
    let noted = ctx
        .isolate
        .note_use(token_id, key, ctx.now, window, || used_from(ctx, key));
    match noted {
        Noted::Send(reports) => deferred.extend(
            reports
                .into_iter()
                .map(|r| Deferred::RecordUse(Box::new(r.into_record()))),
        ),
        Noted::Held(Some(at)) => {
            let after = at - ctx.now;
            if (0..=MAX_FLUSH_DELAY_SECS).contains(&after) {
                deferred.push(Deferred::FlushUses {
                    after_secs: after as u64,
                    window,
                });
            }
        }
        Noted::Held(None) => {}
    }
    if ctx.isolate.uses_due(ctx.now) {
        deferred.extend(
            ctx.isolate
                .take_due_uses(ctx.now, window)
                .into_iter()
                .map(|r| Deferred::RecordUse(Box::new(r.into_record()))),
        );
    }
}

/// Where this use came from. Through the gate the caller is the token's holder: its IP, country
/// and the location that received it (read only now, once per window: reading `request.cf` costs
/// CPU). Through introspection the caller is the API: the place is the API resource itself (its
/// IP would be the API server's, not the holder's), and nothing is read.
fn used_from<B: Backend>(ctx: &Ctx<'_, B>, key: &UseKey<'_>) -> UsedFrom {
    let (ip, country, colo) = match key.via {
        Via::Introspection => (None, None, None),
        Via::Gate => {
            let o = ctx.backend.request_origin();
            (o.ip, o.country, o.colo)
        }
    };
    UsedFrom {
        via: key.via.as_str().to_owned(),
        name: key.name.to_owned(),
        ip,
        country,
        colo,
    }
}

/// `GET /api/pats/{id}/usage?days=N` (1 to 90, default 30): the caller's PAT's uses per day and
/// per (via, resource or route, outcome), from D1 (complete up to the coalescing window plus the
/// flush delay).
pub async fn pat_usage<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    let sub = user::authenticate(ctx, req).await?;
    let days = days_param(req)?;
    let rec = owned(ctx, &sub, id).await?;
    usage_response(ctx, &rec.id, days).await
}

/// The `days` query parameter of a usage request (1 to 90, default 30).
pub fn days_param(req: &Request) -> Result<i64, Error> {
    let q = req.query_params()?;
    report::parse_days(q.get("days")).map_err(Error::InvalidRequest)
}

/// The usage report of token `id` (whoever may see it) over the last `days` days.
pub async fn usage_response<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
    days: i64,
) -> Result<Response, Error> {
    let rows = ctx
        .backend
        .token_usage(id, day_of(ctx.now) - days + 1)
        .await?;
    Ok(Response::json(
        200,
        &report::report(id, &rows, days, ctx.now),
    ))
}

/// The hourly scan's part: deletes `token_usage` rows past retention (the last
/// [`RETENTION_DAYS`] UTC days are kept). Each token's object deletes its own old rows when it
/// writes; this catches tokens no longer used.
pub async fn prune<B: Backend>(ctx: &Ctx<'_, B>) -> Result<(), Error> {
    ctx.backend
        .prune_usage(day_of(ctx.now) - RETENTION_DAYS + 1)
        .await?;
    Ok(())
}
