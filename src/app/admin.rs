//! `/admin/*`: the operator's API for clients, API resources and their scopes (gate routes:
//! `routes_admin`).
//!
//! Authenticated with the `ADMIN_TOKEN` secret (`Authorization: Bearer`, constant-time compare);
//! without that secret the admin API does not exist (404). All changes go to D1. This isolate
//! forgets its cached copy at once; other isolates within `REGISTRY_CACHE_SECONDS` (30 s), inside
//! the KV propagation bound that revocation has (60 s).

use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::model::{ApiResource, Client, SecretSet, TokenFormat};
use crate::secret::{ct_eq_str, ClientSecret};
use crate::store::{Backend, Write};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Default and longest grace period for a rotated secret.
const DEFAULT_GRACE_SECS: i64 = 3600;
const MAX_GRACE_SECS: i64 = 7 * 86_400;

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

/// An id must be addressable as one URL path segment afterwards (`/admin/clients/{id}`): `.`
/// and `..` are dot-segments that every URL parser removes (RFC 3986 5.2.4, and WHATWG also for
/// `%2e` forms, which the alphabet already excludes).
pub(super) fn check_id(id: &str) -> Result<(), Error> {
    if id == "." || id == ".." {
        return Err(Error::InvalidRequest(
            "id must not be . or .. (a URL cannot address it)".into(),
        ));
    }
    if valid_name(id, 64) {
        Ok(())
    } else {
        Err(Error::InvalidRequest(
            "id must be 1 to 64 characters of A-Z a-z 0-9 _ - . :".into(),
        ))
    }
}

/// The entity tag of a record: a strong `ETag` (RFC 9110 8.8.3), the first 16 bytes of SHA-256
/// over everything stored for it (its `Debug` form, which lists every field, plus the secret
/// hashes that `Debug` redacts), so any change, a secret rotation included, changes it.
fn etag(record: &impl std::fmt::Debug, secret: Option<&SecretSet>) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(format!("{record:?}").as_bytes());
    if let Some(s) = secret {
        h.update(s.current.to_hex().as_bytes());
        if let Some((p, until)) = &s.previous {
            h.update(format!("|{}|{until}", p.to_hex()).as_bytes());
        }
    }
    let digest = h.finalize();
    format!("\"{}\"", crate::encoding::hex(&digest[..16]))
}

fn client_etag(c: &Client) -> String {
    // The uid never changes after creation (and is assigned by the store): not part of the tag.
    let c = Client {
        uid: String::new(),
        ..c.clone()
    };
    etag(&c, c.secret.as_ref())
}

fn resource_etag(r: &ApiResource) -> String {
    let r = ApiResource {
        uid: String::new(),
        ..r.clone()
    };
    etag(&r, Some(&r.secret))
}

/// `If-Match` (RFC 9110 13.1.1): absent, `*`, or a list naming the record's current entity tag
/// (strong comparison: a weak `W/"..."` tag never matches). Otherwise 412: another operator
/// changed the record since this one read it. A write without `If-Match` is unconditional.
fn check_if_match(req: &Request, current: &str) -> Result<(), Error> {
    let Some(h) = req.get_header("if-match")? else {
        return Ok(());
    };
    let h = h.trim();
    if h == "*" || h.split(',').any(|t| t.trim() == current) {
        Ok(())
    } else {
        Err(Error::PreconditionFailed)
    }
}

fn with_etag(r: Response, tag: String) -> Response {
    r.with_header("etag", tag)
}

/// JWT access tokens need signing keys: refuse a client that could never get a token.
fn check_format<B>(ctx: &Ctx<'_, B>, f: TokenFormat) -> Result<(), Error> {
    if f == TokenFormat::Jwt && ctx.cfg.signing_keys.is_none() {
        return Err(Error::InvalidRequest(
            "token_format jwt needs JWT signing keys (JWT_SIGNING_KEYS), which are not configured"
                .into(),
        ));
    }
    Ok(())
}

fn authorize(ctx: &Ctx<'_, impl Backend>, req: &Request) -> Result<(), Error> {
    let Some(expected) = ctx
        .cfg
        .admin_token
        .as_ref()
        .map(ClientSecret::expose_secret)
    else {
        return Err(Error::NotFound);
    };
    let presented = req.bearer()?.ok_or(Error::MissingBearer)?;
    if ct_eq_str(presented, expected) {
        Ok(())
    } else {
        Err(Error::InvalidToken {
            description: "the admin token is not valid",
            cause: "wrong admin token".into(),
        })
    }
}

#[derive(Serialize)]
struct ClientView<'a> {
    id: &'a str,
    public: bool,
    allowed_scopes: &'a [String],
    token_format: TokenFormat,
    token_lifetime: i64,
    enabled: bool,
    previous_secret_valid_until: Option<i64>,
}

fn client_view(c: &Client) -> ClientView<'_> {
    ClientView {
        id: &c.id,
        public: c.secret.is_none(),
        allowed_scopes: &c.allowed_scopes,
        token_format: c.token_format,
        token_lifetime: c.token_lifetime,
        enabled: c.enabled,
        previous_secret_valid_until: c.secret.as_ref().and_then(|s| s.previous.map(|p| p.1)),
    }
}

#[derive(Serialize)]
struct ResourceView<'a> {
    id: &'a str,
    scopes: &'a [String],
    enabled: bool,
    previous_secret_valid_until: Option<i64>,
}

fn resource_view(r: &ApiResource) -> ResourceView<'_> {
    ResourceView {
        id: &r.id,
        scopes: &r.scopes,
        enabled: r.enabled,
        previous_secret_valid_until: r.secret.previous.map(|p| p.1),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClient {
    id: String,
    #[serde(default)]
    public: bool,
    allowed_scopes: Vec<String>,
    #[serde(default = "default_format")]
    token_format: TokenFormat,
    #[serde(default = "default_lifetime")]
    token_lifetime: i64,
}

fn default_format() -> TokenFormat {
    TokenFormat::Reference
}
fn default_lifetime() -> i64 {
    3600
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientPatch {
    allowed_scopes: Option<Vec<String>>,
    token_format: Option<TokenFormat>,
    token_lifetime: Option<i64>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewResource {
    id: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcePatch {
    scopes: Option<Vec<String>>,
    enabled: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    grace_seconds: Option<i64>,
}

/// Every admin JSON body type (fuzzing and property tests).
#[cfg(test)]
pub(super) fn parse_bodies(body: &[u8]) {
    use crate::http::parse_json_object as p;
    let _ = p::<NewClient>(body);
    let _ = p::<ClientPatch>(body);
    let _ = p::<NewResource>(body);
    let _ = p::<ResourcePatch>(body);
    let _ = p::<Rotate>(body);
}

fn check_lifetime(l: i64) -> Result<(), Error> {
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
async fn check_scopes_exist<B: Backend>(ctx: &Ctx<'_, B>, scopes: &[String]) -> Result<(), Error> {
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

fn new_secret() -> Result<ClientSecret, Error> {
    ClientSecret::generate().map_err(|e| Error::Internal(format!("randomness unavailable: {e}")))
}

fn rotated(set: &SecretSet, fresh: &ClientSecret, now: i64, grace: i64) -> SecretSet {
    SecretSet {
        current: fresh.hash(),
        previous: (grace > 0).then_some((set.current, now + grace)),
    }
}

fn grace(req: &Request) -> Result<i64, Error> {
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

pub(super) fn written(w: Write) -> Result<(), Error> {
    match w {
        Write::Done => Ok(()),
        Write::NotFound => Err(Error::NotFound),
        Write::Conflict => Err(Error::Conflict("it already exists".into())),
    }
}

/// The admin API. Every call that is not a read is logged as one `admin.change` security event
/// with its outcome (failed admin authentication included).
pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    rest: &str,
) -> Result<Response, Error> {
    let result = dispatch(ctx, req, rest).await;
    if req.method != Method::Get {
        let (status, outcome) = match &result {
            Ok(r) => (r.status, "ok"),
            Err(e) => (e.status(), e.code()),
        };
        ctx.isolate.emit(crate::events::Event::AdminChange {
            method: match req.method {
                Method::Post => "POST",
                Method::Put => "PUT",
                Method::Patch => "PATCH",
                Method::Delete => "DELETE",
                _ => "OTHER",
            },
            target: rest.chars().take(200).collect(),
            status,
            outcome,
        });
    }
    result
}

async fn dispatch<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    rest: &str,
) -> Result<Response, Error> {
    authorize(ctx, req)?;
    let result = route(ctx, req, rest).await;
    if req.method != Method::Get {
        // Scopes, clients and their state are in the discovery document.
        crate::app::server::forget_metadata();
    }
    result
}

async fn route<B: Backend>(ctx: &Ctx<'_, B>, req: &Request, rest: &str) -> Result<Response, Error> {
    let parts: Vec<&str> = rest.split('/').collect();
    match (parts.as_slice(), req.method) {
        (["routes", ..], _) => super::routes_admin::handle(ctx, req, &parts[1..]).await,
        (["webhooks", ..], _) => super::webhooks::admin(ctx, req, &parts[1..]).await,
        (["clients"], Method::Get) => {
            let all = ctx.backend.list_clients().await?;
            let views: Vec<_> = all.iter().map(client_view).collect();
            Ok(Response::json(200, &json!({ "clients": views })))
        }
        (["clients"], Method::Post) => create_client(ctx, req).await,
        (["clients", id], Method::Get) => {
            let c = ctx.backend.client(id).await?.ok_or(Error::NotFound)?;
            Ok(with_etag(
                Response::json(200, &client_view(&c)),
                client_etag(&c),
            ))
        }
        (["clients", id], Method::Patch) => update_client(ctx, req, id).await,
        (["clients", id], Method::Delete) => {
            if req.get_header("if-match")?.is_some() {
                let c = ctx.backend.client(id).await?.ok_or(Error::NotFound)?;
                check_if_match(req, &client_etag(&c))?;
            }
            written(ctx.backend.delete_client(id).await?)?;
            ctx.isolate.forget_client(id);
            Ok(Response::empty(204))
        }
        (["clients", id, "rotate-secret"], Method::Post) => {
            let grace = grace(req)?;
            let mut c = Client::clone(&ctx.backend.client(id).await?.ok_or(Error::NotFound)?);
            check_if_match(req, &client_etag(&c))?;
            let Some(set) = &c.secret else {
                return Err(Error::Conflict("a public client has no secret".into()));
            };
            let fresh = new_secret()?;
            c.secret = Some(rotated(set, &fresh, ctx.now, grace));
            written(ctx.backend.update_client(&c).await?)?;
            ctx.isolate.forget_client(id);
            Ok(with_etag(
                Response::json(
                    200,
                    &json!({"client_secret": fresh.expose_secret(), "previous_secret_valid_until": c.secret.as_ref().and_then(|s| s.previous.map(|p| p.1))}),
                ),
                client_etag(&c),
            ))
        }
        (["resources"], Method::Get) => {
            let all = ctx.backend.list_resources().await?;
            let views: Vec<_> = all.iter().map(resource_view).collect();
            Ok(Response::json(200, &json!({ "resources": views })))
        }
        (["resources"], Method::Post) => create_resource(ctx, req).await,
        (["resources", id], Method::Get) => {
            let r = ctx.backend.api_resource(id).await?.ok_or(Error::NotFound)?;
            Ok(with_etag(
                Response::json(200, &resource_view(&r)),
                resource_etag(&r),
            ))
        }
        (["resources", id], Method::Patch) => update_resource(ctx, req, id).await,
        (["resources", id], Method::Delete) => {
            if req.get_header("if-match")?.is_some() {
                let r = ctx.backend.api_resource(id).await?.ok_or(Error::NotFound)?;
                check_if_match(req, &resource_etag(&r))?;
            }
            written(ctx.backend.delete_resource(id).await?)?;
            ctx.isolate.forget_resource(id);
            Ok(Response::empty(204))
        }
        (["resources", id, "rotate-secret"], Method::Post) => {
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
        (["clients" | "resources"], _) => Err(Error::MethodNotAllowed("GET, POST")),
        (["clients" | "resources", _], _) => Err(Error::MethodNotAllowed("GET, PATCH, DELETE")),
        (["clients" | "resources", _, "rotate-secret"], _) => Err(Error::MethodNotAllowed("POST")),
        _ => Err(Error::NotFound),
    }
}

async fn create_client<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let body: NewClient = req.json()?;
    check_id(&body.id)?;
    check_format(ctx, body.token_format)?;
    check_lifetime(body.token_lifetime)?;
    check_scopes_exist(ctx, &body.allowed_scopes).await?;
    let secret = if body.public {
        None
    } else {
        Some(new_secret()?)
    };
    let client = Client {
        id: body.id,
        uid: String::new(), // assigned by the store
        secret: secret.as_ref().map(|s| SecretSet {
            current: s.hash(),
            previous: None,
        }),
        allowed_scopes: body.allowed_scopes,
        token_format: body.token_format,
        token_lifetime: body.token_lifetime,
        enabled: true,
    };
    written(ctx.backend.create_client(&client, ctx.now).await?)?;
    ctx.isolate.forget_client(&client.id);
    let mut v = serde_json::to_value(client_view(&client)).unwrap_or_default();
    if let Some(s) = &secret {
        v["client_secret"] = json!(s.expose_secret());
    }
    Ok(with_etag(
        Response::json(201, &v).with_header("location", format!("/admin/clients/{}", client.id)),
        client_etag(&client),
    ))
}

async fn update_client<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    let patch: ClientPatch = req.json()?;
    let mut c = ctx.backend.client(id).await?.ok_or(Error::NotFound)?;
    check_if_match(req, &client_etag(&c))?;
    if let Some(scopes) = patch.allowed_scopes {
        check_scopes_exist(ctx, &scopes).await?;
        c.allowed_scopes = scopes;
    }
    if let Some(f) = patch.token_format {
        check_format(ctx, f)?;
        c.token_format = f;
    }
    if let Some(l) = patch.token_lifetime {
        check_lifetime(l)?;
        c.token_lifetime = l;
    }
    if let Some(e) = patch.enabled {
        c.enabled = e;
    }
    written(ctx.backend.update_client(&c).await?)?;
    ctx.isolate.forget_client(id);
    Ok(with_etag(
        Response::json(200, &client_view(&c)),
        client_etag(&c),
    ))
}

async fn create_resource<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let body: NewResource = req.json()?;
    check_id(&body.id)?;
    check_scope_names(&body.scopes)?;
    let secret = new_secret()?;
    let r = ApiResource {
        id: body.id,
        uid: String::new(), // assigned by the store
        secret: SecretSet {
            current: secret.hash(),
            previous: None,
        },
        enabled: true,
        scopes: body.scopes,
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

async fn update_resource<B: Backend>(
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
    written(ctx.backend.update_resource(&r).await?)?;
    ctx.isolate.forget_resource(id);
    Ok(with_etag(
        Response::json(200, &resource_view(&r)),
        resource_etag(&r),
    ))
}
