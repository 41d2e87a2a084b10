//! Clients in the admin API (`/admin/clients`): create, read, change, delete, rotate a secret
//! with a grace period for the old one. Confidential clients (a generated secret) and public ones
//! (`"public": true`: `client_id` alone, PKCE binds their codes); for the authorization code flow
//! a client gets `redirect_uris`, `grant_types` (`authorization_code`, `refresh_token`), a
//! `display_name` and a `logo_uri` for the consent page. Only administrator-made clients are
//! listed and changed here (`source = 'admin'`): self-registered ones (metadata documents,
//! RFC 7591) can number in the tens of thousands and are never read whole; an administrator may
//! only make one confidential and rotate its secret ([`super::confidential`]). This isolate forgets
//! its cached copy at once; other isolates within `REGISTRY_CACHE_SECONDS` (30 s).

use super::checks::{check_id, check_if_match, client_etag, with_etag, written, Change};
use super::registry::{
    check_format, check_lifetime, check_scopes_exist, grace, new_secret, rotated,
};
use crate::app::ctx::Ctx;
use crate::authz::records::{ClientProfile, ClientSource};
use crate::authz::secrets::is_dynamic_id;
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::{Client, SecretSet, TokenFormat};
use crate::oauth::authorize::redirect_uri::check_registered;
use crate::oauth::client_metadata::{check_name, check_web_uri, GrantType};
use crate::store::Backend;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Serialize)]
struct ClientView<'a> {
    id: &'a str,
    public: bool,
    allowed_scopes: &'a [String],
    token_format: TokenFormat,
    token_lifetime: i64,
    enabled: bool,
    previous_secret_valid_until: Option<i64>,
    redirect_uris: &'a [String],
    /// `null`: a client made before the authorization code flow (client credentials and token
    /// exchange only).
    grant_types: Option<Vec<&'static str>>,
    display_name: Option<&'a str>,
    logo_uri: Option<&'a str>,
}

fn client_view<'a>(c: &'a Client, p: &'a ClientProfile) -> ClientView<'a> {
    ClientView {
        id: &c.id,
        public: c.secret.is_none(),
        allowed_scopes: &c.allowed_scopes,
        token_format: c.token_format,
        token_lifetime: c.token_lifetime,
        enabled: c.enabled,
        previous_secret_valid_until: c.secret.as_ref().and_then(|s| s.previous.map(|p| p.1)),
        redirect_uris: &p.redirect_uris,
        grant_types: p
            .grant_types
            .as_ref()
            .map(|g| g.iter().map(|t| t.as_str()).collect()),
        display_name: p.display_name.as_deref(),
        logo_uri: p.logo_uri.as_deref(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewClient {
    id: String,
    #[serde(default)]
    public: bool,
    allowed_scopes: Vec<String>,
    #[serde(default = "default_format")]
    token_format: TokenFormat,
    #[serde(default = "default_lifetime")]
    token_lifetime: i64,
    #[serde(default)]
    redirect_uris: Vec<String>,
    grant_types: Option<Vec<String>>,
    display_name: Option<String>,
    logo_uri: Option<String>,
}

fn default_format() -> TokenFormat {
    TokenFormat::Reference
}
fn default_lifetime() -> i64 {
    3600
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientPatch {
    allowed_scopes: Option<Vec<String>>,
    token_format: Option<TokenFormat>,
    token_lifetime: Option<i64>,
    enabled: Option<bool>,
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    grant_types: Change<Vec<String>>,
    #[serde(default)]
    display_name: Change<String>,
    #[serde(default)]
    logo_uri: Change<String>,
}

/// The authorization-code side as the operator asked for it, checked: grant types patgate knows
/// (`refresh_token` only with `authorization_code`), redirect URIs by the same rules as
/// self-registered clients' (at least one usable for `authorization_code`), a display name
/// without control or formatting characters, an `https` logo URL.
fn check_profile<B>(ctx: &Ctx<'_, B>, p: &ClientProfile) -> Result<(), Error> {
    let bad = |m: String| Err(Error::InvalidRequest(m));
    if let Some(gs) = &p.grant_types {
        if gs.contains(&GrantType::RefreshToken) && !gs.contains(&GrantType::AuthorizationCode) {
            return bad("grant_types: refresh_token needs authorization_code".into());
        }
    }
    if !p.redirect_uris.is_empty() || p.allows(GrantType::AuthorizationCode) {
        if let Err(e) = check_registered(&p.redirect_uris, ctx.cfg.redirect_policy()) {
            return bad(format!("redirect_uris: {e}"));
        }
    }
    if let Some(n) = &p.display_name {
        if let Err(e) = check_name(n) {
            return bad(format!("display_name: {e}"));
        }
    }
    if let Some(u) = &p.logo_uri {
        if let Err(e) = check_web_uri("logo_uri", u.clone()) {
            return bad(e.to_string());
        }
    }
    Ok(())
}

fn grant_types(listed: Option<Vec<String>>) -> Result<Option<Vec<GrantType>>, Error> {
    listed
        .map(|l| {
            let mut out: Vec<GrantType> = Vec::new();
            for g in &l {
                let t = GrantType::parse(g).ok_or_else(|| {
                    Error::InvalidRequest(format!(
                        "grant_types: {g:?} is not one of authorization_code, refresh_token"
                    ))
                })?;
                if out.contains(&t) {
                    return Err(Error::InvalidRequest(format!(
                        "grant_types: {g} is repeated"
                    )));
                }
                out.push(t);
            }
            Ok(out)
        })
        .transpose()
}

fn trimmed(n: Option<String>) -> Option<String> {
    n.map(|n| n.trim().to_owned())
}

/// Every client JSON body type (fuzzing and property tests).
#[cfg(test)]
pub fn parse_bodies(body: &[u8]) {
    use crate::http::parse_json_object as p;
    let _ = p::<NewClient>(body);
    let _ = p::<ClientPatch>(body);
}

/// Ids self-registered clients have: never given out here.
fn check_new_id(id: &str) -> Result<(), Error> {
    check_id(id)?;
    if is_dynamic_id(id) {
        return Err(Error::InvalidRequest(
            "ids starting with pgd_ belong to self-registered clients".into(),
        ));
    }
    Ok(())
}

/// An administrator-made client and its profile (`None`: no such client, or a self-registered
/// one, which the admin API does not manage).
async fn admin_client<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
) -> Result<(Client, ClientProfile), Error> {
    match ctx.backend.client_profile(id).await? {
        Some((c, p)) if p.source == ClientSource::Admin => Ok((c, p)),
        _ => Err(Error::NotFound),
    }
}

fn forget<B>(ctx: &Ctx<'_, B>, id: &str) {
    ctx.isolate.forget_client(id);
}

/// `GET /admin/clients`: the administrator-made clients.
pub async fn list<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Response, Error> {
    let all = ctx.backend.admin_clients().await?;
    let views: Vec<_> = all.iter().map(|(c, p)| client_view(c, p)).collect();
    Ok(Response::json(200, &json!({ "clients": views })))
}

/// `GET /admin/clients/{id}`, with its entity tag.
pub async fn get<B: Backend>(ctx: &Ctx<'_, B>, id: &str) -> Result<Response, Error> {
    let (c, p) = admin_client(ctx, id).await?;
    Ok(with_etag(
        Response::json(200, &client_view(&c, &p)),
        client_etag(&c, &p),
    ))
}

/// `DELETE /admin/clients/{id}` (conditional with `If-Match`).
pub async fn delete<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    if req.get_header("if-match")?.is_some() {
        let (c, p) = admin_client(ctx, id).await?;
        check_if_match(req, &client_etag(&c, &p))?;
    }
    written(ctx.backend.delete_client(id, &ctx.feed_stamp()).await?)?;
    forget(ctx, id);
    client_disabled(ctx, id, "deleted");
    Ok(Response::empty(204))
}

/// `POST /admin/clients/{id}/rotate-secret`: a new secret, shown once; the old one works for the
/// grace period. Also for a self-registered client an administrator made confidential
/// ([`super::confidential`]): only its secret changes.
pub async fn rotate_secret<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    let grace = grace(req)?;
    let id = &super::confidential::client_id_segment(id)?;
    let (mut c, p) = ctx
        .backend
        .client_profile(id)
        .await?
        .ok_or(Error::NotFound)?;
    check_if_match(req, &client_etag(&c, &p))?;
    let Some(set) = &c.secret else {
        return Err(Error::Conflict("a public client has no secret".into()));
    };
    let fresh = new_secret()?;
    let (current, next) = (set.current, rotated(set, &fresh, ctx.now, grace));
    if p.source == ClientSource::Admin {
        c.secret = Some(next);
        written(ctx.backend.update_client(&c, &p, &ctx.feed_stamp()).await?)?;
    } else {
        super::confidential::rotate(ctx, &c, &current, &next).await?;
        c.secret = Some(next);
    }
    forget(ctx, id);
    Ok(with_etag(
        Response::json(
            200,
            &json!({"client_secret": fresh.expose_secret(), "previous_secret_valid_until": c.secret.as_ref().and_then(|s| s.previous.map(|p| p.1))}),
        ),
        client_etag(&c, &p),
    ))
}

/// `POST /admin/clients`.
pub async fn create<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let body: NewClient = req.json()?;
    check_new_id(&body.id)?;
    check_format(ctx, body.token_format)?;
    check_lifetime(body.token_lifetime)?;
    check_scopes_exist(ctx, &body.allowed_scopes).await?;
    let grant_types = grant_types(body.grant_types)?;
    let profile = ClientProfile {
        source: ClientSource::Admin,
        display_name: trimmed(body.display_name),
        logo_uri: body.logo_uri,
        redirect_uris: body.redirect_uris,
        refresh_tokens: grant_types
            .as_ref()
            .is_none_or(|g| g.contains(&GrantType::RefreshToken)),
        grant_types,
        metadata_expires_at: None,
        last_used_at: None,
    };
    check_profile(ctx, &profile)?;
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
    written(
        ctx.backend
            .create_client(&client, &profile, ctx.now)
            .await?,
    )?;
    forget(ctx, &client.id);
    let mut v = serde_json::to_value(client_view(&client, &profile)).unwrap_or_default();
    if let Some(s) = &secret {
        v["client_secret"] = json!(s.expose_secret());
    }
    Ok(with_etag(
        Response::json(201, &v).with_header("location", format!("/admin/clients/{}", client.id)),
        client_etag(&client, &profile),
    ))
}

/// `PATCH /admin/clients/{id}`.
pub async fn update<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    let patch: ClientPatch = req.json()?;
    let (mut c, mut p) = admin_client(ctx, id).await?;
    check_if_match(req, &client_etag(&c, &p))?;
    let was_enabled = c.enabled;
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
    if let Some(uris) = patch.redirect_uris {
        p.redirect_uris = uris;
    }
    let mut listed = None;
    match patch.grant_types {
        Change::Keep => {}
        change => {
            change.apply(&mut listed);
            p.grant_types = grant_types(listed)?;
            p.refresh_tokens = p
                .grant_types
                .as_ref()
                .is_none_or(|g| g.contains(&GrantType::RefreshToken));
        }
    }
    patch.display_name.apply(&mut p.display_name);
    p.display_name = trimmed(p.display_name.take());
    patch.logo_uri.apply(&mut p.logo_uri);
    check_profile(ctx, &p)?;
    written(ctx.backend.update_client(&c, &p, &ctx.feed_stamp()).await?)?;
    forget(ctx, id);
    if was_enabled && !c.enabled {
        client_disabled(ctx, id, "disabled");
    }
    Ok(with_etag(
        Response::json(200, &client_view(&c, &p)),
        client_etag(&c, &p),
    ))
}

/// Tells Security Event Token receivers that client `id`'s tokens stopped working.
fn client_disabled<B>(ctx: &Ctx<'_, B>, id: &str, reason: &'static str) {
    use crate::revocation::push::{Change, Initiator, Notice};
    ctx.isolate
        .emit(crate::events::Event::revocation_notice(Notice {
            change: Change::ClientDisabled {
                client_id: id.to_owned(),
            },
            at: ctx.now,
            initiator: Initiator::Admin,
            reason,
        }));
}
