//! The authorization endpoint's decisions (`GET /authorize` and the consent answer), without
//! HTML and without knowing how the user signed in: the token page (`app/page/consent.rs`)
//! identifies the user, shows the consent page and carries the cross-site checks, and calls
//! these three steps.
//!
//! 1. [`check`]: the request, its client (any kind, through `clients::client_for`), the
//!    redirect URI (`redirect_uri::select`: exact, loopback IPs on any port), then the rest:
//!    PKCE (S256 only), the resource (RFC 8707: a gate route's resource, an API resource's
//!    registered `resource_uri`, or `invalid_target`),
//!    the scopes. Until the client and its redirect URI are known good, a refusal is a page
//!    ([`Refused::Page`]); after, a redirect with `error`, `state` and `iss` (RFC 9207).
//! 2. [`begin`]: for the signed-in user, a remembered approval that covers the request (the
//!    exact user, client uid, redirect key and resource; scopes among the remembered ones)
//!    issues the code at once; anything else stores a pending consent behind a one-time handle
//!    (10 minutes, bound to the user) for the page to show.
//! 3. [`answer`]: the user's Approve or Deny on that handle (taken once, by its user only), the
//!    client and redirect URI checked again; Deny is `access_denied`, Approve remembers the
//!    approval and issues the code (single use, 60 seconds, bound to the client, redirect URI,
//!    PKCE challenge, resource and scopes).

use crate::app::client_auth::{load_resource, resources};
use crate::app::clients::{self, ClientLookup};
use crate::app::ctx::Ctx;
use crate::app::gate::load_routes;
use crate::authz::code::new_code;
use crate::authz::records::{
    Approved, Audience, ClientSource, PendingConsent, RememberedApproval, CONSENT_TTL_SECS,
};
use crate::authz::secrets::{ConsentHandle, GrantSecret, SecretKind};
use crate::authz::target::{requested_scopes, resolve};
use crate::error::Error;
use crate::model::AuthzClient;
use crate::oauth::authorize::redirect_uri::select;
use crate::oauth::authorize::response::{error_location, success_location};
use crate::oauth::authorize::{AuthorizationRequest, ErrorCode, Redirect, RedirectError};
use crate::oauth::client_metadata::GrantType;
use crate::oauth::uri::Uri;
use crate::store::Backend;
use crate::token::random_id;

/// Why an authorization request stops here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Shown on a page (400), never redirected: the client or its redirect URI is not known
    /// good. A sentence for the user.
    Page(String),
    /// A redirect to the client's redirect URI with `error`, `state` and `iss`.
    Redirect(String),
}

/// An authorization request that passed [`check`]: everything the user approves but the user.
#[derive(Debug, Clone)]
pub struct Checked {
    pub client: AuthzClient,
    pub redirect: Redirect,
    pub state: Option<String>,
    approved: Approved,
}

/// What the consent page shows (all of it already checked; the page escapes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentView {
    /// The one-time handle (the form's hidden field). Never log it.
    pub handle: String,
    /// The client's name, or its id when it has none.
    pub client_name: String,
    pub client_id: String,
    /// Where the client's identity comes from, in words.
    pub identity: String,
    /// Where the code goes (host and port, or a private-use scheme).
    pub destination: String,
    /// The code goes to an app on this device (loopback, `localhost`, a private-use scheme).
    pub local: bool,
    /// The redirect URI's origin (`scheme://host:port`, or `scheme:` for a private-use one):
    /// the consent form's answer redirects there, so the page's CSP `form-action` allows it.
    pub form_target: String,
    /// The RFC 8707 resource and the API resource it names.
    pub resource: String,
    pub api_id: String,
    /// Each scope with its description (if it has one).
    pub scopes: Vec<(String, Option<String>)>,
}

/// What happens after [`begin`] or an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Redirect the browser here (the code, or an error, with `state` and `iss`).
    Redirect(String),
    /// Ask the user.
    Consent(ConsentView),
}

/// Step 1: checks an authorization request (the query of `GET /authorize`, as received).
///
/// # Errors
/// Storage failures (503) and rate limits on metadata document fetches (429).
pub async fn check<B: Backend>(
    ctx: &Ctx<'_, B>,
    query: &[u8],
) -> Result<Result<Checked, Refused>, Error> {
    let req = match AuthorizationRequest::parse(query) {
        Ok(r) => r,
        Err(e) => return Ok(Err(Refused::Page(e.description.into_owned()))),
    };
    let client = match usable_client(ctx, &req.client_id).await? {
        Ok(c) => c,
        Err(why) => return Ok(Err(Refused::Page(why))),
    };
    let redirect = match select(
        req.redirect_uri.as_deref(),
        &client.profile.redirect_uris,
        ctx.cfg.redirect_policy(),
    ) {
        Ok(r) => r,
        Err(e) => return Ok(Err(Refused::Page(e.to_string()))),
    };
    let state = req.state.as_deref().map(str::to_owned);
    let refuse = |e: RedirectError| {
        Ok(Err(Refused::Redirect(error_location(
            &redirect,
            &e,
            state.as_deref(),
            &ctx.cfg.issuer,
        ))))
    };
    let params = match req.params {
        Ok(p) => p,
        Err(e) => return refuse(e),
    };
    let routes = load_routes(ctx).await?;
    let api_uris = registered_uris(ctx).await?;
    let api_id = match resolve(&params.resource, &ctx.cfg.issuer, &routes, &api_uris) {
        Ok(t) => t.api_id().to_owned(),
        Err(e) => return refuse(e),
    };
    let api = match load_resource(ctx, &api_id).await? {
        Some(a) if a.enabled => a,
        _ => {
            return refuse(RedirectError::new(
                ErrorCode::InvalidTarget,
                "the resource's API is not available",
            ))
        }
    };
    let allowed = clients::allowed_scopes(ctx, &client).await?;
    let scopes = match requested_scopes(params.scope.as_ref(), &api.scopes, &allowed) {
        Ok(s) => s,
        Err(e) => return refuse(e),
    };
    let approved = Approved {
        subject: String::new(),
        client_id: client.client.id.clone(),
        client_uid: client.client.uid.clone(),
        redirect_uri: redirect.as_str().to_owned(),
        redirect_key: redirect.approval_key(),
        code_challenge: params.code_challenge,
        audience: Audience {
            resource: params.resource.as_str().to_owned(),
            api_id: api.id.clone(),
            api_uid: api.uid.clone(),
        },
        scopes,
    };
    Ok(Ok(Checked {
        client,
        redirect,
        state,
        approved,
    }))
}

/// The API resources that registered a `resource_uri`, as `(uri, id)` (from the isolate's copy
/// of the table: no read of its own).
async fn registered_uris<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Vec<(String, String)>, Error> {
    Ok(resources(ctx)
        .await?
        .values()
        .filter_map(|r| r.resource_uri.clone().map(|u| (u, r.id.clone())))
        .collect())
}

/// The client `id` if it may use the authorization endpoint; else why not (for the page).
async fn usable_client<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
) -> Result<Result<AuthzClient, String>, Error> {
    Ok(match clients::client_for(ctx, id).await? {
        ClientLookup::Unknown(why) => Err(format!("{why}: {id}")),
        ClientLookup::Found(c) if !c.client.enabled => Err(format!("the app {id} is disabled")),
        ClientLookup::Found(c) if !c.profile.allows(GrantType::AuthorizationCode) => Err(format!(
            "the app {id} may not use the authorization endpoint"
        )),
        ClientLookup::Found(c) => Ok(c),
    })
}

/// Step 2: the signed-in `subject` asks for `checked`: a code at once when a remembered
/// approval covers it, else a pending consent to show.
///
/// # Errors
/// Storage failures (503).
pub async fn begin<B: Backend>(
    ctx: &Ctx<'_, B>,
    checked: Checked,
    subject: &str,
) -> Result<Next, Error> {
    let mut approved = checked.approved;
    approved.subject = subject.to_owned();
    let remembered = ctx
        .backend
        .remembered_approval(
            subject,
            &approved.client_uid,
            &approved.redirect_key,
            &approved.audience.resource,
        )
        .await?;
    if remembered.is_some_and(|r| r.covers(&approved)) {
        let to = issue_code(ctx, approved, &checked.redirect, checked.state.as_deref()).await?;
        return Ok(Next::Redirect(to));
    }
    let handle = ConsentHandle::generate().map_err(rng)?;
    let pending = PendingConsent {
        handle_hash: handle.hash(),
        request: approved,
        state: checked.state,
        created_at: ctx.now,
        expires_at: ctx.now + CONSENT_TTL_SECS,
        used_at: None,
    };
    ctx.backend.insert_consent(&pending).await?;
    let api = load_resource(ctx, &pending.request.audience.api_id).await?;
    Ok(Next::Consent(view(
        &handle,
        &checked.client,
        &checked.redirect,
        &pending.request,
        api.as_deref(),
    )))
}

fn view(
    handle: &ConsentHandle,
    client: &AuthzClient,
    redirect: &Redirect,
    a: &Approved,
    api: Option<&crate::model::ApiResource>,
) -> ConsentView {
    let describe = |s: &String| {
        api.and_then(|r| r.descriptions.iter().find(|(n, _)| n == s))
            .map(|(_, d)| d.clone())
    };
    ConsentView {
        handle: handle.expose_secret().to_owned(),
        client_name: client
            .profile
            .display_name
            .clone()
            .unwrap_or_else(|| client.client.id.clone()),
        client_id: client.client.id.clone(),
        identity: identity(client),
        destination: redirect.display_target(),
        local: redirect.kind().is_local(),
        form_target: origin_of(redirect.as_str()),
        resource: a.audience.resource.clone(),
        api_id: a.audience.api_id.clone(),
        scopes: a.scopes.iter().map(|s| (s.clone(), describe(s))).collect(),
    }
}

fn origin_of(uri: &str) -> String {
    let Ok(u) = Uri::parse(uri) else {
        return String::new();
    };
    let scheme = u.scheme().to_ascii_lowercase();
    match (u.host(), u.port()) {
        (Some(h), Some(p)) => format!("{scheme}://{h}:{p}"),
        (Some(h), None) => format!("{scheme}://{h}"),
        (None, _) => format!("{scheme}:"),
    }
}

/// Where a client's identity comes from, as the consent page and the token page say it.
pub fn identity(client: &AuthzClient) -> String {
    match client.profile.source {
        ClientSource::Admin => "registered by an administrator".into(),
        ClientSource::Dynamic => "self-registered, not verified".into(),
        ClientSource::MetadataDocument => match Uri::parse(&client.client.id)
            .ok()
            .and_then(|u| u.host().map(str::to_owned))
        {
            Some(host) => format!("identity from {host}"),
            None => "identity from its metadata document".into(),
        },
    }
}

/// Step 3: the user's answer on consent `handle`: `approve` or deny. `Err(sentence)`: the
/// handle is unknown, expired, used, another user's, or the client or its redirect URI changed
/// (a page, never a redirect).
///
/// # Errors
/// Storage failures (503).
pub async fn answer<B: Backend>(
    ctx: &Ctx<'_, B>,
    handle: &str,
    subject: &str,
    approve: bool,
) -> Result<Result<String, String>, Error> {
    const GONE: &str =
        "This authorization request expired or was already answered. Start again from the app.";
    let Some(handle) = ConsentHandle::parse(handle) else {
        return Ok(Err(GONE.into()));
    };
    let Some(pending) = ctx
        .backend
        .take_consent(&handle.hash(), subject, ctx.now)
        .await?
    else {
        return Ok(Err(GONE.into()));
    };
    let a = pending.request;
    let client = match usable_client(ctx, &a.client_id).await? {
        Ok(c) if c.client.uid == a.client_uid => c,
        Ok(_) => return Ok(Err(format!("the app {} changed", a.client_id))),
        Err(why) => return Ok(Err(why)),
    };
    let redirect = match select(
        Some(&a.redirect_uri),
        &client.profile.redirect_uris,
        ctx.cfg.redirect_policy(),
    ) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let state = pending.state.as_deref();
    if !approve {
        let e = RedirectError::new(ErrorCode::AccessDenied, "the user denied the request");
        return Ok(Ok(error_location(&redirect, &e, state, &ctx.cfg.issuer)));
    }
    let remembered = RememberedApproval {
        subject: a.subject.clone(),
        client_uid: a.client_uid.clone(),
        redirect_key: a.redirect_key.clone(),
        resource: a.audience.resource.clone(),
        scopes: a.scopes.clone(),
        approved_at: ctx.now,
    };
    // Remembering saves a later consent page; the code does not depend on it.
    if let Err(e) = ctx.backend.remember_approval(&remembered).await {
        ctx.isolate
            .warn(format!("remembering an approval failed: {}", e.0));
    }
    Ok(Ok(issue_code(ctx, a, &redirect, state).await?))
}

/// Issues a code for `approved` and returns the success redirect.
async fn issue_code<B: Backend>(
    ctx: &Ctx<'_, B>,
    approved: Approved,
    redirect: &Redirect,
    state: Option<&str>,
) -> Result<String, Error> {
    let code = GrantSecret::generate(SecretKind::Code).map_err(rng)?;
    let grant_id = random_id().map_err(rng)?;
    let row = new_code(approved, code.hash(), grant_id, ctx.now);
    ctx.backend.insert_code(&row).await?;
    Ok(success_location(
        redirect,
        code.expose_secret(),
        state,
        &ctx.cfg.issuer,
    ))
}

fn rng(e: getrandom::Error) -> Error {
    Error::Internal(format!("randomness unavailable: {e}"))
}
