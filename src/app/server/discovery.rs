//! RFC 8414 authorization server metadata at `/.well-known/oauth-authorization-server`: every
//! endpoint, grant type, authentication method, algorithm and scope that really works with this
//! configuration and registry, and nothing that does not.
//!
//! patgate is not an `OpenID` Provider (no ID tokens), so it serves no
//! `/.well-known/openid-configuration` (404).
//!
//! The rendered document is cached per isolate for `REGISTRY_CACHE_SECONDS`, like the registry
//! records it is made of: a GET costs no storage read while the cache is fresh. The admin API
//! forgets it in its own isolate after every change ([`forget`]); other isolates render it
//! again within `REGISTRY_CACHE_SECONDS`.

use crate::app::client_auth;
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::http::Response;
use crate::model::PAT_CLIENT_ID;
use crate::oauth::token::{
    AUTHORIZATION_CODE, CLIENT_CREDENTIALS, REFRESH_TOKEN, TOKEN_EXCHANGE, TT_ACCESS_TOKEN,
    TT_ID_TOKEN, TT_JWT,
};
use crate::store::Backend;
use serde_json::json;
use std::cell::RefCell;

/// The rendered document of one isolate (the `IsolateState` it was rendered for, by address,
/// and the issuer), and when.
struct Cached {
    isolate: usize,
    issuer: String,
    at: i64,
    body: Vec<u8>,
}

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// Drops the cached document (after an admin change in this isolate).
pub fn forget() {
    CACHE.with(|c| c.borrow_mut().take());
}

/// Whether user JWTs can be verified at all (some key source is configured).
fn user_keys_configured<B>(ctx: &Ctx<'_, B>) -> bool {
    let u = &ctx.cfg.user_auth;
    u.hs256_secret.as_ref().is_some_and(|s| !s.is_empty())
        || u.jwks.as_ref().is_some_and(|j| !j.is_empty())
        || u.jwks_url.is_some()
}

pub async fn metadata<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Response, Error> {
    let me = std::ptr::from_ref(ctx.isolate) as usize;
    let hit = CACHE.with(|c| {
        c.borrow().as_ref().and_then(|d| {
            let fresh = d.isolate == me
                && d.issuer == ctx.cfg.issuer
                && ctx.now >= d.at
                && ctx.now - d.at < ctx.cfg.registry_cache_secs;
            fresh.then(|| d.body.clone())
        })
    });
    let body = if let Some(b) = hit {
        b
    } else {
        let body = render(ctx).await?;
        CACHE.with(|c| {
            *c.borrow_mut() = Some(Cached {
                isolate: me,
                issuer: ctx.cfg.issuer.clone(),
                at: ctx.now,
                body: body.clone(),
            });
        });
        body
    };
    let mut r = Response::empty(200);
    r.headers.push(("content-type", "application/json".into()));
    r.body = body;
    Ok(r)
}

async fn render<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Vec<u8>, Error> {
    let iss = &ctx.cfg.issuer;
    let mut scopes: Vec<String> = ctx
        .backend
        .list_resources()
        .await?
        .into_iter()
        .filter(|r| r.enabled)
        .flat_map(|r| r.scopes)
        .collect();
    scopes.sort();
    let pat_client = client_auth::load_client(ctx, PAT_CLIENT_ID)
        .await?
        .is_some_and(|c| c.enabled);
    let keys = ctx.cfg.signing_keys.as_ref();
    // Token exchange works in two directions, each only when its parts are there: single
    // sign-on to PAT needs user-JWT keys and the public PAT client; PAT to JWT needs signing keys.
    let sso_to_pat = pat_client && user_keys_configured(ctx);
    let pat_to_jwt = keys.is_some();
    let mut subject_types: Vec<&str> = Vec::new();
    if sso_to_pat {
        subject_types.extend([TT_ACCESS_TOKEN, TT_JWT, TT_ID_TOKEN]);
    } else if pat_to_jwt {
        subject_types.push(TT_ACCESS_TOKEN);
    }
    let mut grants = vec![CLIENT_CREDENTIALS, AUTHORIZATION_CODE, REFRESH_TOKEN];
    if !subject_types.is_empty() {
        grants.push(TOKEN_EXCHANGE);
    }
    // `none`: public clients, which always may exist: a client ID metadata document's URL is
    // a client (public by rule), like RFC 7591 registrations and the public PAT client.
    let client_methods = ["client_secret_basic", "client_secret_post", "none"];
    let mut doc = json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}/oauth/token"),
        "token_endpoint_auth_methods_supported": client_methods,
        "grant_types_supported": grants,
        "authorization_endpoint": format!("{iss}/authorize"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "revocation_endpoint_auth_methods_supported": client_methods,
        "scopes_supported": scopes,
    });
    if !subject_types.is_empty() {
        doc["token_exchange_subject_token_types_supported"] = json!(subject_types);
    }
    // Clients that register themselves: a client ID metadata document's URL as `client_id`
    // (always), RFC 7591 registration (when configured).
    doc["client_id_metadata_document_supported"] = json!(true);
    if ctx.cfg.clients.dynamic_registration {
        doc["registration_endpoint"] = json!(format!("{iss}/oauth/register"));
    }
    if let Some(keys) = keys {
        doc["jwks_uri"] = json!(format!("{iss}/.well-known/jwks.json"));
        doc["introspection_signing_alg_values_supported"] = json!([keys.algorithm()]);
        doc["access_token_signing_alg_values_supported"] = json!(keys.algorithms());
    }
    serde_json::to_vec(&doc).map_err(|e| Error::Internal(format!("metadata: {e}")))
}
