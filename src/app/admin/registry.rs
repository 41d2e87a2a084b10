//! API resources in the admin API (`/admin/resources`, clients in [`super::clients`]): create,
//! read, change, delete, rotate a secret with a grace period for the old one. This isolate
//! forgets its cached copy at once; other isolates within `REGISTRY_CACHE_SECONDS` (30 s), inside
//! the KV propagation bound that revocation has (60 s).

use super::checks::{check_id, check_if_match, etag, valid_name, with_etag, written, Change};
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::{ApiResource, SecretSet, TokenFormat};
use crate::oauth::authorize::resource::check_registered_uri;
use crate::secret::ClientSecret;
use crate::store::Backend;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Default and longest grace period for a rotated secret.
const DEFAULT_GRACE_SECS: i64 = 3600;
const MAX_GRACE_SECS: i64 = 7 * 86_400;

fn resource_etag(r: &ApiResource) -> String {
    let r = ApiResource {
        descriptions: Vec::new(),
        uid: String::new(),
        ..r.clone()
    };
    etag(&r, Some(&r.secret))
}

/// JWT access tokens need signing keys: refuse a client that could never get a token.
pub(super) fn check_format<B>(ctx: &Ctx<'_, B>, f: TokenFormat) -> Result<(), Error> {
    if f == TokenFormat::Jwt && ctx.cfg.signing_keys.is_none() {
        return Err(Error::InvalidRequest(
            "token_format jwt needs JWT signing keys (JWT_SIGNING_KEYS), which are not configured"
                .into(),
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct ResourceView<'a> {
    id: &'a str,
    scopes: &'a [String],
    enabled: bool,
    previous_secret_valid_until: Option<i64>,
    resource_uri: Option<&'a str>,
}

fn resource_view(r: &ApiResource) -> ResourceView<'_> {
    ResourceView {
        id: &r.id,
        scopes: &r.scopes,
        enabled: r.enabled,
        previous_secret_valid_until: r.secret.previous.map(|p| p.1),
        resource_uri: r.resource_uri.as_deref(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewResource {
    id: String,
    scopes: Vec<String>,
    resource_uri: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcePatch {
    scopes: Option<Vec<String>>,
    enabled: Option<bool>,
    #[serde(default)]
    resource_uri: Change<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    grace_seconds: Option<i64>,
}

/// Every admin JSON body type (fuzzing and property tests).
#[cfg(test)]
pub fn parse_bodies(body: &[u8]) {
    use crate::http::parse_json_object as p;
    let _ = p::<NewResource>(body);
    let _ = p::<ResourcePatch>(body);
    let _ = p::<Rotate>(body);
}

pub(super) fn check_lifetime(l: i64) -> Result<(), Error> {
    if (60..=86_400).contains(&l) {
        Ok(())
    } else {
        Err(Error::InvalidRequest(
            "token_lifetime must be 60 to 86400 seconds".into(),
        ))
    }
}

fn check_scope_names(scopes: &[String]) -> Result<(), Error> {
    for (i, s) in scopes.iter().enumerate() {
        if !valid_name(s, crate::scopes::MAX_SCOPE_LEN) {
            return Err(Error::InvalidRequest(format!(
                "scope name {s:?} is not valid"
            )));
        }
        if scopes[..i].contains(s) {
            return Err(Error::InvalidRequest(format!("scope {s} is repeated")));
        }
    }
    Ok(())
}

/// A client may be allowed only scopes that some API resource owns.
pub(super) async fn check_scopes_exist<B: Backend>(
    ctx: &Ctx<'_, B>,
    scopes: &[String],
) -> Result<(), Error> {
    check_scope_names(scopes)?;
    let resources = ctx.backend.list_resources().await?;
    for s in scopes {
        if !resources.iter().any(|r| r.scopes.contains(s)) {
            return Err(Error::InvalidScope(format!(
                "no API resource owns scope {s}"
            )));
        }
    }
    Ok(())
}

/// A `resource_uri` (the RFC 8707 identifier of an API that is not behind a gate route): see
/// [`check_registered_uri`]; `http` loopback URLs only where loopback metadata documents are
/// allowed (development).
fn check_resource_uri<B>(ctx: &Ctx<'_, B>, uri: Option<&str>) -> Result<(), Error> {
    match uri {
        Some(u) => check_registered_uri(u, ctx.cfg.clients.metadata_http_loopback)
            .map_err(Error::InvalidRequest),
        None => Ok(()),
    }
}

pub(super) fn new_secret() -> Result<ClientSecret, Error> {
    ClientSecret::generate().map_err(|e| Error::Internal(format!("randomness unavailable: {e}")))
}

pub(super) fn rotated(set: &SecretSet, fresh: &ClientSecret, now: i64, grace: i64) -> SecretSet {
    SecretSet {
        current: fresh.hash(),
        previous: (grace > 0).then_some((set.current, now + grace)),
    }
}

pub(super) fn grace(req: &Request) -> Result<i64, Error> {
    let r: Rotate = if req.body.is_empty() {
        Rotate::default()
    } else {
        req.json()?
    };
    let g = r.grace_seconds.unwrap_or(DEFAULT_GRACE_SECS);
    if (0..=MAX_GRACE_SECS).contains(&g) {
        Ok(g)
    } else {
        Err(Error::InvalidRequest(format!(
            "grace_seconds must be 0 to {MAX_GRACE_SECS}"
        )))
    }
}

/// `GET /admin/resources`.
pub async fn list_resources<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Response, Error> {
    let all = ctx.backend.list_resources().await?;
    let views: Vec<_> = all.iter().map(resource_view).collect();
    Ok(Response::json(200, &json!({ "resources": views })))
}

/// `GET /admin/resources/{id}`, with its entity tag.
pub async fn get_resource<B: Backend>(ctx: &Ctx<'_, B>, id: &str) -> Result<Response, Error> {
    let r = ctx.backend.api_resource(id).await?.ok_or(Error::NotFound)?;
    Ok(with_etag(
        Response::json(200, &resource_view(&r)),
        resource_etag(&r),
    ))
}

/// `DELETE /admin/resources/{id}` (conditional with `If-Match`).
pub async fn delete_resource<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    if req.get_header("if-match")?.is_some() {
        let r = ctx.backend.api_resource(id).await?.ok_or(Error::NotFound)?;
        check_if_match(req, &resource_etag(&r))?;
    }
    written(ctx.backend.delete_resource(id).await?)?;
    ctx.isolate.forget_resource(id);
    Ok(Response::empty(204))
}

/// `POST /admin/resources/{id}/rotate-secret`: a new secret, shown once; the old one works for the
/// grace period.
pub async fn rotate_resource_secret<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    let grace = grace(req)?;
    let mut r = ctx.backend.api_resource(id).await?.ok_or(Error::NotFound)?;
    check_if_match(req, &resource_etag(&r))?;
    let fresh = new_secret()?;
    r.secret = rotated(&r.secret, &fresh, ctx.now, grace);
    written(ctx.backend.update_resource(&r).await?)?;
    ctx.isolate.forget_resource(id);
    Ok(with_etag(
        Response::json(
            200,
            &json!({"secret": fresh.expose_secret(), "previous_secret_valid_until": r.secret.previous.map(|p| p.1)}),
        ),
        resource_etag(&r),
    ))
}

pub async fn create_resource<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
) -> Result<Response, Error> {
    let body: NewResource = req.json()?;
    check_id(&body.id)?;
    check_scope_names(&body.scopes)?;
    check_resource_uri(ctx, body.resource_uri.as_deref())?;
    let secret = new_secret()?;
    let r = ApiResource {
        descriptions: Vec::new(),
        id: body.id,
        uid: String::new(), // assigned by the store
        secret: SecretSet {
            current: secret.hash(),
            previous: None,
        },
        enabled: true,
        scopes: body.scopes,
        resource_uri: body.resource_uri,
    };
    written(ctx.backend.create_resource(&r, ctx.now).await?)?;
    ctx.isolate.forget_resource(&r.id);
    let mut v = serde_json::to_value(resource_view(&r)).unwrap_or_default();
    v["secret"] = json!(secret.expose_secret());
    Ok(with_etag(
        Response::json(201, &v).with_header("location", format!("/admin/resources/{}", r.id)),
        resource_etag(&r),
    ))
}

pub async fn update_resource<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    let patch: ResourcePatch = req.json()?;
    let mut r = ctx.backend.api_resource(id).await?.ok_or(Error::NotFound)?;
    check_if_match(req, &resource_etag(&r))?;
    if let Some(scopes) = patch.scopes {
        check_scope_names(&scopes)?;
        r.scopes = scopes;
    }
    if let Some(e) = patch.enabled {
        r.enabled = e;
    }
    if let Change::Set(u) = &patch.resource_uri {
        check_resource_uri(ctx, Some(u))?;
    }
    patch.resource_uri.apply(&mut r.resource_uri);
    written(ctx.backend.update_resource(&r).await?)?;
    ctx.isolate.forget_resource(id);
    Ok(with_etag(
        Response::json(200, &resource_view(&r)),
        resource_etag(&r),
    ))
}
