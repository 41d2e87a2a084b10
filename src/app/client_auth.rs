//! Client authentication on the OAuth endpoints (RFC 6749 section 2.3.1) of the credentials
//! [`Presented`] (parsed by `oauth::credentials`: `client_secret_basic` or `client_secret_post`,
//! never both; public clients identify with `client_id` alone).
//! API resources and clients are read through the isolate cache (`registry_cache_secs`).

use super::isolate::{Lookup, Table};
use super::ratelimit;
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::model::{ApiResource, Client};
use crate::oauth::Presented;
use crate::store::{Backend, Limit, StoreError};
use std::rc::Rc;

/// A registry table through the isolate cache: read whole from D1, so an unknown id costs no D1
/// query. A stale table is refreshed by the one request that found it stale; if that D1 read
/// fails, the stale table is served (within `registry_max_stale_secs` past its life, see
/// [`super::isolate`]); a miss whose D1 read fails is a 503.
async fn table<T>(
    lookup: Lookup<Table<T>>,
    fetch: impl std::future::Future<Output = Result<Vec<T>, StoreError>>,
    id_of: fn(&T) -> &str,
    store: impl FnOnce(Rc<Table<T>>),
) -> Result<Rc<Table<T>>, Error> {
    let build = |rows: Vec<T>| -> Rc<Table<T>> {
        Rc::new(
            rows.into_iter()
                .map(|r| (id_of(&r).to_owned(), Rc::new(r)))
                .collect(),
        )
    };
    match lookup {
        Lookup::Fresh(Some(t)) => Ok(t),
        Lookup::Stale(Some(old)) => match fetch.await {
            Ok(rows) => {
                let t = build(rows);
                store(t.clone());
                Ok(t)
            }
            Err(_) => Ok(old),
        },
        _ => {
            let t = build(fetch.await?);
            store(t.clone());
            Ok(t)
        }
    }
}

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

/// How current a registry read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The isolate cache may answer (hot paths: introspection, revocation).
    Cached,
    /// Read D1 (issuing tokens: a disabled client must stop getting tokens at once). An id the
    /// cached table does not know is still unknown without a D1 read: a client created at
    /// another location works here within `registry_cache_secs`.
    Fresh,
}

pub async fn load_client_with<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
    freshness: Freshness,
) -> Result<Option<Rc<Client>>, Error> {
    let (c, now) = (ctx.cfg, ctx.now);
    let lookup = ctx
        .isolate
        .lookup_clients(now, c.registry_cache_secs, c.registry_max_stale_secs);
    let t = table(
        lookup,
        ctx.backend.list_clients(),
        |c| &c.id,
        |t| {
            ctx.isolate.store_clients(now, t);
        },
    )
    .await?;
    let cached = t.get(id).cloned();
    match (freshness, cached) {
        (Freshness::Fresh, Some(_)) => Ok(ctx.backend.client(id).await?.map(Rc::new)),
        (_, cached) => Ok(cached),
    }
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
    let failure = match load_client_with(ctx, id, freshness).await? {
        None => format!("unknown client {id}"),
        Some(client) => match (&client.secret, secret) {
            (Some(set), Some(s)) if !set.verify_hash(&s, ctx.now) => {
                format!("bad secret for client {id}")
            }
            (Some(_), None) => format!("missing secret for client {id}"),
            (None, Some(_)) => format!("public client {id} sent a secret"),
            _ if !client.enabled => format!("client {id} is disabled"),
            _ => return Ok(client),
        },
    };
    Err(ratelimit::failed_auth(ctx, id, ip, Error::InvalidClient(failure)).await)
}
