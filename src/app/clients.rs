//! Clients, one by one: the one lookup of every client kind ([`client_for`], for the
//! authorization endpoint and consent, and [`stored`] for everything that only needs the
//! client as stored), the isolate's admin table, and the unused registrations' expiry.
//!
//! A `client_id`'s shape says where to look before any read (`authz::client_cache::classify`):
//!
//! - an administrator-made id: the isolate's admin table (`source = 'admin'`, read whole every
//!   `registry_cache_secs` like the API resources): an unknown one costs no read;
//! - a dynamic registration's `pgd_` id: only if its HMAC tag verifies under `CLIENT_ID_KEYS`
//!   (a forged one costs no read), then the isolate's bounded [`ClientCache`] and D1 (`WHERE id
//!   = ?`), remembered either way (not found: `CLIENT_NEGATIVE_CACHE_SECONDS`);
//! - a metadata document URL: the same cache and D1, and, when D1 has no fresh copy and only
//!   for [`client_for`], the guarded fetch (`oauth::metadata_document::fetchable_url`, rate
//!   limited per client id and per IP), validated and stored; a refused or failed fetch is
//!   remembered as missing, with why.
//!
//! Self-registered clients (metadata documents, dynamic registration) are public and number in
//! the tens of thousands: nothing here reads the whole `clients` table.

use super::config::Config;
use super::ctx::Ctx;
use super::isolate::{table, Table};
use super::ratelimit;
use crate::authz::client_cache::{classify, CachePolicy, Cached, ClientIdKind, UNKNOWN_CLIENT};
use crate::authz::records::{ClientProfile, ClientSource};
use crate::authz::store::Fetched;
use crate::error::Error;
use crate::events::Event;
use crate::model::{AuthzClient, Client, TokenFormat, PAT_CLIENT_ID};
use crate::oauth::client_metadata::GrantType;
use crate::oauth::metadata_document::{
    cache_until, fetchable_url, validate_document, CacheBounds, CacheHeaders, MAX_DOCUMENT_BYTES,
};
use crate::store::{Backend, Limit};
use std::rc::Rc;

/// How long a metadata document fetch may take (connection, answer and body).
pub const METADATA_FETCH_TIMEOUT_MS: u32 = 3000;

/// A dynamic client's use is written at most this often per isolate.
pub const TOUCH_INTERVAL_SECS: i64 = 3600;

/// Unused registrations deleted per cron run.
pub const MAX_EXPIRED_PER_RUN: u32 = 500;

/// What [`client_for`] found.
#[derive(Debug, Clone)]
pub enum ClientLookup {
    Found(AuthzClient),
    /// Not a client this server knows or can identify; why, a sentence for the page (never a
    /// secret; a document's problem or "unknown client").
    Unknown(Rc<str>),
}

/// How current a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The isolate's caches may answer (hot paths: introspection, revocation).
    Cached,
    /// Read D1 for a client the caches know (issuing tokens: a disabled client must stop
    /// getting tokens at once). An id the caches know not to exist is still unknown without a
    /// read: a client created at another location works here within the cache's lifetime.
    Fresh,
}

fn policy(cfg: &Config) -> CachePolicy {
    CachePolicy {
        ttl: cfg.registry_cache_secs,
        max_stale: cfg.registry_max_stale_secs,
        negative_ttl: cfg.clients.negative_cache_secs,
    }
}

fn kind(cfg: &Config, id: &str) -> ClientIdKind {
    classify(id, &cfg.clients.id_keys, cfg.clients.metadata_http_loopback)
}

/// Whether `id` has the shape of a self-registered client (a metadata document URL or a `pgd_`
/// id, tagged or not): such clients may use the authorization code and refresh token grants
/// only.
pub fn is_self_registered(id: &str) -> bool {
    crate::oauth::metadata_document::is_metadata_url(id, true)
        || crate::authz::secrets::is_dynamic_id(id)
}

fn pair((c, p): (Client, ClientProfile)) -> AuthzClient {
    AuthzClient::new(c, p)
}

/// The administrator-made clients, from the isolate's copy of that table.
pub async fn admin_table<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Rc<Table<AuthzClient>>, Error> {
    let (c, now) = (ctx.cfg, ctx.now);
    let lookup = ctx
        .isolate
        .lookup_clients(now, c.registry_cache_secs, c.registry_max_stale_secs);
    table(
        lookup,
        async {
            Ok(ctx
                .backend
                .admin_clients()
                .await?
                .into_iter()
                .map(pair)
                .collect())
        },
        |c| &c.client.id,
        |t| ctx.isolate.store_clients(now, t),
    )
    .await
}

/// The client `id` as stored, of any kind (no metadata document is fetched here). `None`: no
/// such client, or an id that cannot exist.
pub async fn stored<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
    freshness: Freshness,
) -> Result<Option<AuthzClient>, Error> {
    match kind(ctx.cfg, id) {
        ClientIdKind::Impossible => Ok(None),
        ClientIdKind::Admin => {
            let cached = admin_table(ctx).await?.get(id).map(|c| (**c).clone());
            match (freshness, cached) {
                (Freshness::Fresh, Some(_)) => Ok(ctx
                    .backend
                    .client_profile(id)
                    .await?
                    .filter(|(_, p)| p.source == ClientSource::Admin)
                    .map(pair)),
                (_, cached) => Ok(cached),
            }
        }
        ClientIdKind::Dynamic | ClientIdKind::MetadataUrl => {
            let p = policy(ctx.cfg);
            let cached = ctx.isolate.clients_one_by_one(|c| c.get(id, ctx.now, &p));
            let found = match (cached, freshness) {
                // D1 had no row. (A refused metadata document, remembered with why, says
                // nothing about D1: a copy stored earlier still serves its tokens.)
                (Cached::Missing(why), _) if &*why == UNKNOWN_CLIENT => return Ok(None),
                (Cached::Found(c), Freshness::Cached) => return Ok(Some((*c).clone())),
                (Cached::Stale(old), Freshness::Cached) => match read(ctx, id).await {
                    Ok(found) => found,
                    // D1 failing: the stale copy, within the stale bound.
                    Err(_) => return Ok(Some((*old).clone())),
                },
                _ => read(ctx, id).await?,
            };
            Ok(found)
        }
    }
}

/// One self-registered client from D1, cached either way.
async fn read<B: Backend>(ctx: &Ctx<'_, B>, id: &str) -> Result<Option<AuthzClient>, Error> {
    let found = ctx
        .backend
        .client_profile(id)
        .await?
        .filter(|(_, p)| p.source != ClientSource::Admin)
        .map(pair);
    ctx.isolate.clients_one_by_one(|c| match &found {
        Some(f) => c.put_rc(id, Rc::new(f.clone()), ctx.now),
        None => c.put(id, None, ctx.now),
    });
    Ok(found)
}

/// Notes a dynamic client's use (an authorization or token request: its registration expires
/// when unused), at most once per [`TOUCH_INTERVAL_SECS`] per isolate; a failed write only
/// warns.
pub async fn note_use<B: Backend>(ctx: &Ctx<'_, B>, c: &AuthzClient) {
    if c.profile.source != ClientSource::Dynamic
        || c.profile
            .last_used_at
            .is_some_and(|t| ctx.now - t < TOUCH_INTERVAL_SECS)
        || !ctx
            .isolate
            .claim_client_touch(&c.client.id, ctx.now, TOUCH_INTERVAL_SECS)
    {
        return;
    }
    if let Err(e) = ctx.backend.touch_client(&c.client.id, ctx.now).await {
        ctx.isolate.warn(format!(
            "client {}: last use not recorded: {}",
            c.client.id, e.0
        ));
    }
}

/// The client an authorization request names, for `GET /authorize` and the consent answer:
/// the one lookup of the authorization endpoint. A metadata document URL that D1 holds no fresh
/// copy of is fetched, validated and stored here. The client is returned as stored whatever its
/// `enabled` flag and grant types: the caller refuses a disabled one, or one whose profile does
/// not allow [`GrantType::AuthorizationCode`].
///
/// # Errors
/// Storage failures (503) and rate limits on metadata fetches (429).
pub async fn client_for<B: Backend>(ctx: &Ctx<'_, B>, id: &str) -> Result<ClientLookup, Error> {
    let unknown = || Ok(ClientLookup::Unknown(UNKNOWN_CLIENT.into()));
    match kind(ctx.cfg, id) {
        ClientIdKind::MetadataUrl => metadata_client(ctx, id).await,
        _ => match stored(ctx, id, Freshness::Cached).await? {
            Some(c) => {
                note_use(ctx, &c).await;
                Ok(ClientLookup::Found(c))
            }
            None => unknown(),
        },
    }
}

/// A metadata document client: the cache, D1, then the document itself.
async fn metadata_client<B: Backend>(ctx: &Ctx<'_, B>, id: &str) -> Result<ClientLookup, Error> {
    let now = ctx.now;
    let p = policy(ctx.cfg);
    let fresh = |c: &AuthzClient| c.profile.metadata_expires_at.is_some_and(|t| now < t);
    let known = match ctx.isolate.clients_one_by_one(|c| c.get(id, now, &p)) {
        // A refused document, remembered with why. A plain "unknown client" (D1 had no row
        // when a token request asked) does not stop the first fetch.
        Cached::Missing(why) if &*why != UNKNOWN_CLIENT => return Ok(ClientLookup::Unknown(why)),
        Cached::Found(c) if fresh(&c) => return Ok(ClientLookup::Found((*c).clone())),
        Cached::Found(_) | Cached::Stale(_) | Cached::Miss | Cached::Missing(_) => {
            read(ctx, id).await?
        }
    };
    match known {
        Some(c) if fresh(&c) => Ok(ClientLookup::Found(c)),
        known => fetch_document(ctx, id, known.is_none()).await,
    }
}

/// Why a fetched document is not used, a sentence for the page.
fn fetch_problem(f: &Fetched) -> Option<String> {
    match f.status {
        200 => None,
        300..=399 => Some(format!(
            "its client metadata document answered with a redirect ({}); redirects are not followed",
            f.status
        )),
        s => Some(format!("its client metadata document answered HTTP {s}")),
    }
}

/// Fetches, validates and stores the document at `id`; remembers a failure (with why) for
/// `CLIENT_NEGATIVE_CACHE_SECONDS`.
async fn fetch_document<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
    first: bool,
) -> Result<ClientLookup, Error> {
    let now = ctx.now;
    let missing = |why: String| {
        let why = format!("this app could not be identified: {why}");
        ctx.isolate
            .clients_one_by_one(|c| c.put_missing(id, &why, now));
        ctx.isolate
            .warn(format!("client metadata document {id} refused: {why}"));
        Ok(ClientLookup::Unknown(why.into()))
    };
    let url = match fetchable_url(id, ctx.cfg.clients.metadata_http_loopback) {
        Ok(u) => u,
        Err(e) => return missing(e.to_string()),
    };
    let ip = ctx.backend.request_origin().ip.unwrap_or_default();
    ratelimit::count(ctx, Limit::MetadataFetches, &format!("client:{id}")).await?;
    ratelimit::count(ctx, Limit::MetadataFetches, &format!("ip:{ip}")).await?;
    let fetched = match ctx
        .backend
        .fetch_metadata(&url, MAX_DOCUMENT_BYTES, METADATA_FETCH_TIMEOUT_MS)
        .await
    {
        Ok(f) => f,
        Err(e) => {
            let why = if e.0.contains("no answer within") {
                format!(
                    "its client metadata document did not answer within {} s",
                    METADATA_FETCH_TIMEOUT_MS / 1000
                )
            } else {
                "its client metadata document could not be fetched".to_owned()
            };
            ctx.isolate.warn(format!(
                "client metadata document {id}: fetch failed: {}",
                e.0
            ));
            return missing(why);
        }
    };
    if let Some(why) = fetch_problem(&fetched) {
        return missing(why);
    }
    let meta = match validate_document(id, &fetched.body, ctx.cfg.redirect_policy()) {
        Ok(m) => m,
        Err(e) => return missing(e.to_string()),
    };
    let headers = CacheHeaders {
        cache_control: fetched.cache_control.as_deref(),
        expires: fetched.expires.as_deref(),
        date: fetched.date.as_deref(),
        age: fetched.age.as_deref(),
    };
    let profile = ClientProfile {
        source: ClientSource::MetadataDocument,
        display_name: meta.client_name.clone(),
        logo_uri: meta.logo_uri.clone(),
        redirect_uris: meta.redirect_uris.clone(),
        grant_types: Some(meta.grant_types.clone()),
        refresh_tokens: meta.uses(GrantType::RefreshToken),
        metadata_expires_at: Some(cache_until(&headers, now, CacheBounds::default())),
        last_used_at: None,
    };
    let mut client = self_registered(ctx.cfg, id);
    let Some(uid) = ctx
        .backend
        .put_metadata_client(&client, &profile, now)
        .await?
    else {
        // The id belongs to a client of another source (cannot happen by shape): left alone.
        return missing("its client_id is taken".to_owned());
    };
    client.uid = uid;
    let found = pair((client, profile));
    ctx.isolate
        .clients_one_by_one(|c| c.put_rc(id, Rc::new(found.clone()), now));
    if first {
        ctx.isolate.emit(Event::ClientRegistered {
            client_id: id.to_owned(),
            source: ClientSource::MetadataDocument.as_db(),
        });
    }
    Ok(ClientLookup::Found(found))
}

/// The record of a self-registered client: public, reference tokens living
/// `SELF_REGISTERED_TOKEN_SECONDS`, no scopes of its own (an authorization request may ask for
/// what the public PAT client allows: [`allowed_scopes`]).
pub fn self_registered(cfg: &Config, id: &str) -> Client {
    Client {
        id: id.to_owned(),
        uid: String::new(),
        secret: None,
        allowed_scopes: Vec::new(),
        token_format: TokenFormat::Reference,
        token_lifetime: cfg.clients.token_secs,
        enabled: true,
    }
}

/// The scopes an authorization request of `c` may ask for: an administrator-made client's
/// `allowed_scopes`; for a self-registered client, those of the public PAT client (a user can
/// delegate to an app what they could put on a PAT), none without it.
pub async fn allowed_scopes<B: Backend>(
    ctx: &Ctx<'_, B>,
    c: &AuthzClient,
) -> Result<Vec<String>, Error> {
    if c.profile.source == ClientSource::Admin {
        return Ok(c.client.allowed_scopes.clone());
    }
    Ok(stored(ctx, PAT_CLIENT_ID, Freshness::Cached)
        .await?
        .filter(|p| p.client.enabled)
        .map(|p| p.client.allowed_scopes.clone())
        .unwrap_or_default())
}

/// After an admin change of client `id`: this isolate reads it again at once.
pub fn forget<B>(ctx: &Ctx<'_, B>, id: &str) {
    ctx.isolate.forget_client(id);
}

/// The cron's clean-up: dynamic registrations unused for `DYNAMIC_CLIENT_UNUSED_DAYS` with no
/// live grant are deleted (at most [`MAX_EXPIRED_PER_RUN`] a run). Returns how many.
///
/// # Errors
/// Storage failures.
pub async fn expire_unused<B: Backend>(ctx: &Ctx<'_, B>) -> Result<usize, Error> {
    let since = ctx.now - ctx.cfg.clients.unused_days * 86_400;
    let gone = ctx
        .backend
        .expire_dynamic_clients(since, MAX_EXPIRED_PER_RUN)
        .await?;
    for id in &gone {
        ctx.isolate.forget_client(id);
        ctx.isolate.emit(Event::ClientExpired {
            client_id: id.clone(),
        });
    }
    Ok(gone.len())
}
