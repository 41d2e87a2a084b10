//! Client authentication on the OAuth endpoints (RFC 6749 section 2.3.1): `client_secret_basic`
//! or `client_secret_post`, never both; public clients identify with `client_id` alone.
//! API resources and clients are read through the isolate cache (`registry_cache_secs`).

use super::isolate::Lookup;
use super::Ctx;
use crate::error::Error;
use crate::http::{Form, Request};
use crate::model::{ApiResource, Client};
use crate::secret::ClientSecret;
use crate::store::{Backend, StoreError};
use std::rc::Rc;

/// What the request presented.
#[derive(Debug)]
pub enum Presented {
    /// id and secret (Basic header or form fields).
    Secret {
        id: String,
        secret: ClientSecret,
    },
    /// `client_id` alone (public clients).
    IdOnly(String),
    None,
}

pub fn presented(req: &Request, form: &Form) -> Result<Presented, Error> {
    let basic = req.basic_credentials()?;
    let post_id = form.get("client_id");
    let post_secret = form.get("client_secret");
    match (basic, post_id, post_secret) {
        (Some(_), _, Some(_)) => Err(Error::InvalidRequest(
            "use one client authentication method, not both".into(),
        )),
        (Some((id, _)), Some(pid), None) if pid != id => Err(Error::InvalidRequest(
            "client_id does not match the Authorization header".into(),
        )),
        (Some((id, secret)), _, None) => Ok(Presented::Secret {
            id,
            secret: ClientSecret::new(secret),
        }),
        (None, Some(id), Some(secret)) => Ok(Presented::Secret {
            id: id.to_owned(),
            secret: ClientSecret::new(secret),
        }),
        (None, Some(id), None) => Ok(Presented::IdOnly(id.to_owned())),
        (None, None, Some(_)) => Err(Error::InvalidRequest(
            "client_secret without client_id".into(),
        )),
        (None, None, None) => Ok(Presented::None),
    }
}

/// Reads through the isolate cache. A stale entry is refreshed by the one request that found it
/// stale; if that D1 read fails, the stale record is served (at most one more cache lifetime).
pub(super) async fn through_cache<T>(
    lookup: Lookup<T>,
    fetch: impl std::future::Future<Output = Result<Option<T>, StoreError>>,
    store: impl FnOnce(Option<Rc<T>>),
) -> Result<Option<Rc<T>>, Error> {
    match lookup {
        Lookup::Fresh(v) => Ok(v),
        Lookup::Stale(old) => match fetch.await {
            Ok(v) => {
                let v = v.map(Rc::new);
                store(v.clone());
                Ok(v)
            }
            Err(_) => Ok(old),
        },
        Lookup::Miss => {
            let v = fetch.await?.map(Rc::new);
            store(v.clone());
            Ok(v)
        }
    }
}

pub async fn load_resource<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
) -> Result<Option<Rc<ApiResource>>, Error> {
    let lookup = ctx
        .isolate
        .lookup_resource(id, ctx.now, ctx.cfg.registry_cache_secs);
    through_cache(lookup, ctx.backend.api_resource(id), |v| {
        ctx.isolate.store_resource(id, ctx.now, v);
    })
    .await
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
    /// Read D1 (issuing tokens: a disabled client must stop getting tokens at once).
    Fresh,
}

pub async fn load_client_with<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
    freshness: Freshness,
) -> Result<Option<Rc<Client>>, Error> {
    let lookup = match freshness {
        Freshness::Cached => ctx
            .isolate
            .lookup_client(id, ctx.now, ctx.cfg.registry_cache_secs),
        Freshness::Fresh => Lookup::Miss,
    };
    through_cache(lookup, ctx.backend.client(id), |v| {
        ctx.isolate.store_client(id, ctx.now, v);
    })
    .await
}

/// Authenticates an API resource (introspection caller).
pub async fn authenticate_resource<B: Backend>(
    ctx: &Ctx<'_, B>,
    presented: Presented,
) -> Result<Rc<ApiResource>, Error> {
    let Presented::Secret { id, secret } = presented else {
        return Err(Error::InvalidClient("no API resource credentials".into()));
    };
    let resource = load_resource(ctx, &id)
        .await?
        .ok_or_else(|| Error::InvalidClient(format!("unknown API resource {id}")))?;
    if !resource.secret.verify(&secret, ctx.now) {
        return Err(Error::InvalidClient(format!(
            "wrong secret for API resource {id}"
        )));
    }
    if !resource.enabled {
        return Err(Error::InvalidClient(format!(
            "API resource {id} is disabled"
        )));
    }
    Ok(resource)
}

/// Authenticates a confidential client, or identifies a public one by `client_id`.
pub async fn authenticate_client<B: Backend>(
    ctx: &Ctx<'_, B>,
    presented: Presented,
    freshness: Freshness,
) -> Result<Rc<Client>, Error> {
    let (id, secret) = match presented {
        Presented::Secret { id, secret } => (id, Some(secret)),
        Presented::IdOnly(id) => (id, None),
        Presented::None => return Err(Error::InvalidClient("no client identification".into())),
    };
    let client = load_client_with(ctx, &id, freshness)
        .await?
        .ok_or_else(|| Error::InvalidClient(format!("unknown client {id}")))?;
    match (&client.secret, secret) {
        (Some(set), Some(s)) if set.verify(&s, ctx.now) => {}
        (None, None) => {}
        (None, Some(_)) => {
            return Err(Error::InvalidClient(format!(
                "public client {id} sent a secret"
            )))
        }
        _ => {
            return Err(Error::InvalidClient(format!(
                "bad or missing secret for client {id}"
            )))
        }
    }
    if !client.enabled {
        return Err(Error::InvalidClient(format!("client {id} is disabled")));
    }
    Ok(client)
}
