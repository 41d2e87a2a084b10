//! Client authentication on the OAuth endpoints (RFC 6749 section 2.3.1) of the credentials
//! [`Presented`] (parsed by `oauth::credentials`: `client_secret_basic` or `client_secret_post`,
//! never both; public clients identify with `client_id` alone).
//! API resources are read through the isolate's copy of their table (`registry_cache_secs`);
//! clients of every kind through [`super::clients`] (administrator-made ones from the isolate's
//! admin table, self-registered ones one by one).

use super::clients;
use super::isolate::{table, Table};
use super::ratelimit;
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::model::{ApiResource, Client};
use crate::oauth::Presented;
use crate::store::{Backend, Limit};
use std::rc::Rc;

pub use super::clients::Freshness;

/// Every API resource, from the isolate's copy of the table.
pub async fn resources<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Rc<Table<ApiResource>>, Error> {
    let (c, now) = (ctx.cfg, ctx.now);
    let lookup =
        ctx.isolate
            .lookup_resources(now, c.registry_cache_secs, c.registry_max_stale_secs);
    table(
        lookup,
        ctx.backend.list_resources(),
        |r| &r.id,
        |t| {
            ctx.isolate.store_resources(now, t);
        },
    )
    .await
}

pub async fn load_resource<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
) -> Result<Option<Rc<ApiResource>>, Error> {
    Ok(resources(ctx).await?.get(id).cloned())
}

/// For each scope, the uid of the API resource that owns it now ([`crate::model::NO_OWNER`]:
/// none), recorded with a new token.
pub async fn scope_owners<B: Backend>(
    ctx: &Ctx<'_, B>,
    scopes: &[String],
) -> Result<Vec<String>, Error> {
    let all = resources(ctx).await?;
    Ok(scopes
        .iter()
        .map(|s| {
            all.values()
                .find(|r| r.scopes.contains(s))
                .map_or_else(|| crate::model::NO_OWNER.to_owned(), |r| r.uid.clone())
        })
        .collect())
}

pub async fn load_client<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
) -> Result<Option<Rc<Client>>, Error> {
    load_client_with(ctx, id, Freshness::Cached).await
}

/// The client `id` as stored, of any kind (no metadata document is fetched).
pub async fn load_client_with<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
    freshness: Freshness,
) -> Result<Option<Rc<Client>>, Error> {
    Ok(clients::stored(ctx, id, freshness).await?.map(|c| c.client))
}

/// Authenticates an API resource (introspection caller). Failures count against the rate limits
/// per id and per IP (`ip`); past them the answer is 429, even for a correct secret.
pub async fn authenticate_resource<B: Backend>(
    ctx: &Ctx<'_, B>,
    presented: &Presented<'_>,
    ip: &str,
) -> Result<Rc<ApiResource>, Error> {
    let (Some(id), Some(secret)) = (presented.id(), presented.secret_hash()) else {
        return Err(Error::InvalidClient("no API resource credentials".into()));
    };
    ratelimit::check_blocked(ctx, Limit::FailedAuthPerClient, id)?;
    ratelimit::check_blocked(ctx, Limit::FailedAuthPerIp, ip)?;
    let failure = match load_resource(ctx, id).await? {
        None => format!("unknown API resource {id}"),
        Some(r) if !r.secret.verify_hash(&secret, ctx.now) => {
            format!("wrong secret for API resource {id}")
        }
        Some(r) if !r.enabled => format!("API resource {id} is disabled"),
        Some(r) => return Ok(r),
    };
    Err(ratelimit::failed_auth(ctx, id, ip, Error::InvalidClient(failure)).await)
}

/// Authenticates a confidential client, or identifies a public one by `client_id`. Failures count
/// against the rate limits like [`authenticate_resource`]'s.
pub async fn authenticate_client<B: Backend>(
    ctx: &Ctx<'_, B>,
    presented: &Presented<'_>,
    freshness: Freshness,
    ip: &str,
) -> Result<Rc<Client>, Error> {
    let Some(id) = presented.id() else {
        return Err(Error::InvalidClient("no client identification".into()));
    };
    let secret = presented.secret_hash();
    ratelimit::check_blocked(ctx, Limit::FailedAuthPerClient, id)?;
    ratelimit::check_blocked(ctx, Limit::FailedAuthPerIp, ip)?;
    let failure = match clients::stored(ctx, id, freshness).await? {
        None => format!("unknown client {id}"),
        Some(found) => match (&found.client.secret, secret) {
            (Some(set), Some(s)) if !set.verify_hash(&s, ctx.now) => {
                format!("bad secret for client {id}")
            }
            (Some(_), None) => format!("missing secret for client {id}"),
            (None, Some(_)) => format!("public client {id} sent a secret"),
            _ if !found.client.enabled => format!("client {id} is disabled"),
            _ => {
                clients::note_use(ctx, &found).await;
                return Ok(found.client);
            }
        },
    };
    Err(ratelimit::failed_auth(ctx, id, ip, Error::InvalidClient(failure)).await)
}
