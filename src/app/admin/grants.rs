//! `/admin/grants`: a user's live authorization grants (`GET ?subject=&client_id=`, the user
//! required, at most 100, newest first, each with the summed uses of its access tokens) and ending one (`DELETE /admin/grants/{id}`: the grant
//! with every access and refresh token issued from it, `grant.revoked` with `via: "admin"`).

use crate::app::ctx::Ctx;
use crate::app::tokens;
use crate::authz::records::{AppGrant, GrantEnd};
use crate::error::Error;
use crate::http::{percent_decode, Request, Response};
use crate::store::Backend;
use crate::store_usage::GrantUses;
use serde_json::json;

/// Most grants listed.
const MAX_LISTED: u32 = 100;

/// The value of query parameter `name` (`None`: absent; repeated is an error).
fn param(req: &Request, name: &str) -> Result<Option<String>, Error> {
    let mut found = None;
    for part in req.query.as_deref().unwrap_or("").split('&') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        if k == name {
            if found.is_some() {
                return Err(Error::InvalidRequest(format!("{name} is repeated")));
            }
            found = Some(percent_decode(v.as_bytes()).map_err(Error::InvalidRequest)?);
        }
    }
    Ok(found)
}

/// A grant; `usage`: the summed uses of its access tokens (`last_used_at` the last use of any
/// of them, `last_30_days` today and the 29 days before, `last_used_from` where the most recently
/// used one was used from), all zero for a grant whose tokens were never used.
fn view(g: &AppGrant, u: Option<&GrantUses>) -> serde_json::Value {
    json!({
        "id": g.id,
        "subject": g.subject,
        "client_id": g.client_id,
        "resource": g.audience.resource,
        "api_resource": g.audience.api_id,
        "scopes": g.scopes,
        "created_at": g.created_at,
        "last_used_at": g.last_used_at,
        "expires_at": g.expires_at,
        "usage": {
            "last_used_at": u.and_then(|u| u.last_used_at),
            "use_count": u.map_or(0, |u| u.use_count),
            "last_30_days": u.map_or(0, |u| u.recent_uses),
            "last_used_from": tokens::from_views(u.map_or(&[][..], |u| &u.last_used_from)),
        },
    })
}

pub(super) async fn list<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let subject = param(req, "subject")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::InvalidRequest("subject is required".into()))?;
    let client = param(req, "client_id")?;
    let grants = ctx.backend.grants_of(&subject, ctx.now, MAX_LISTED).await?;
    let shown: Vec<&AppGrant> = grants
        .iter()
        .filter(|g| client.as_deref().is_none_or(|c| g.client_id == c))
        .collect();
    let ids: Vec<String> = shown.iter().map(|g| g.id.clone()).collect();
    let uses = tokens::grant_uses(ctx, &ids).await?;
    let shown: Vec<_> = shown.iter().map(|g| view(g, uses.get(&g.id))).collect();
    Ok(Response::json(200, &json!({ "grants": shown })))
}

pub(super) async fn revoke<B: Backend>(ctx: &Ctx<'_, B>, id: &str) -> Result<Response, Error> {
    match tokens::end_grant_by_id(ctx, id, GrantEnd::Admin).await? {
        Some(_) => Ok(Response::empty(204)),
        None => Err(Error::NotFound),
    }
}
