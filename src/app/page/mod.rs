//! The self-service token page: server-rendered HTML at `/` and under `/tokens`, on the issuer's
//! host only. It uses the same PAT logic as the JSON API (`super::pats`), and the same user JWT
//! verification (`super::user`) for Cloudflare Access's `Cf-Access-Jwt-Assertion`.
//!
//! Routes (all `GET` pages work without JavaScript; every change is a `POST`):
//!
//! | route | what |
//! |---|---|
//! | `GET /` | 303 to `/tokens` |
//! | `GET /tokens?cursor=` | the user's tokens, newest first, 20 a page |
//! | `GET, POST /tokens/new` | the "Generate new token" form; the POST answers with the token, once |
//! | `GET, POST /tokens/{id}/regenerate` | confirm, then rotate (the new token shown once) |
//! | `GET, POST /tokens/{id}/revoke` | confirm, then revoke (303 to `/tokens`) |
//! | `GET, POST /tokens/sign-in`, `POST /tokens/sign-out` | local dev sign-in (`DEV_SIGN_IN`) |
//! | `GET /favicon.ico` | the icon |
//!
//! Every POST passes [`form::same_origin`] and carries a CSRF token bound to the session
//! ([`session`]). A reload of a POST answer cannot create a token twice: a new PAT's id is derived
//! from the form's one-time id, and the regenerate form names the token's current hash. A second
//! POST of the same form, from the same session within a minute (a double submit), shows the same
//! token again ([`replay`]); later, never.

mod assets;
mod form;
mod replay;
mod session;
mod views;

use super::events::Event;
use super::{client_auth, pats, user, Config, Ctx, Outcome, PAT_CLIENT_ID};
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::model::{Status, TokenRecord};
use crate::store::Backend;
use form::PageForm;
use maud::Markup;
use session::{Key, Session};
use views::{FormErrors, NewForm, NewPage, ScopeGroup, SignOut, Viewer};

/// Tokens per page of the list.
const PAGE_SIZE: u32 = 20;

/// The page's configuration (see README "Configuration").
#[derive(Clone, Default)]
pub struct PageConfig {
    /// `SESSION_SECRET`: the HMAC key of sessions and CSRF tokens (at least 32 bytes). Without it
    /// the page answers 503 "not configured".
    pub session_secret: Option<String>,
    /// `DEV_SIGN_IN="true"`: the local sign-in form. Only the local dev config sets it.
    pub dev_sign_in: bool,
}

impl std::fmt::Debug for PageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageConfig")
            .field(
                "session_secret",
                &self.session_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("dev_sign_in", &self.dev_sign_in)
            .finish()
    }
}

/// Whether `path` belongs to the page (it is served only on the issuer's host, see [`on_issuer_host`]).
pub fn is_page_path(path: &str) -> bool {
    path == "/" || path == "/favicon.ico" || path == "/tokens" || path.starts_with("/tokens/")
}

/// Whether the request's `Host` is the issuer's. The page is never served on other hosts that
/// route to this Worker, so no other content shares its origin.
pub fn on_issuer_host(cfg: &Config, req: &Request) -> bool {
    let own = form::origin_of(&cfg.issuer);
    let authority = own.split_once("://").map_or(own.as_str(), |(_, a)| a);
    matches!(req.get_header("host"), Ok(Some(h)) if h.eq_ignore_ascii_case(authority))
}

/// A page path on another host than the issuer's, in local development (a loopback `ISSUER`):
/// a 404 that says where the page is (`http://localhost:8787/` is the gate's host there, and a
/// newcomer opens it first). `None` in production: there, other hosts say nothing about the page.
pub fn not_on_this_host(cfg: &Config) -> Option<Response> {
    let authority = crate::gate::route::authority(&cfg.issuer);
    let host = crate::gate::route::host_name(authority);
    let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
    loopback.then(|| {
        Response::json(
            404,
            &serde_json::json!({
                "error": "not_found",
                "error_description": format!(
                    "this host serves the gate; the token page is on {}/",
                    form::origin_of(&cfg.issuer)
                ),
            }),
        )
        .with_header("cache-control", "no-store")
    })
}

/// Why a page request fails (rendered as HTML, never JSON).
#[derive(Debug)]
enum Fail {
    Core(Error),
    /// Cross-site request or bad CSRF token: 403, nothing changed.
    Forbidden(&'static str),
    /// No valid identity; the cause is logged.
    SignInRequired(Option<String>),
    /// `SESSION_SECRET` is missing or too short.
    NotConfigured,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Core(e)
    }
}

fn rng(e: getrandom::Error) -> Fail {
    Fail::Core(Error::Internal(format!("randomness unavailable: {e}")))
}

/// The signed-in user and what their CSRF tokens are bound to.
struct Who {
    user: String,
    binding: Vec<u8>,
    access: bool,
}

/// Serves a page request. Never fails: errors are HTML pages.
pub async fn handle<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Outcome {
    match serve(ctx, req).await {
        Ok(o) => o,
        Err(f) => fail_page(ctx, req, f).into(),
    }
}

enum Route<'p> {
    Root,
    Icon,
    List,
    New,
    SignIn,
    SignOut,
    Revoke(&'p str),
    Regenerate(&'p str),
}

fn route(path: &str) -> Option<(Route<'_>, &'static str)> {
    Some(match path {
        "/" => (Route::Root, "GET"),
        "/favicon.ico" => (Route::Icon, "GET"),
        "/tokens" | "/tokens/" => (Route::List, "GET"),
        "/tokens/new" => (Route::New, "GET, POST"),
        "/tokens/sign-in" => (Route::SignIn, "GET, POST"),
        "/tokens/sign-out" => (Route::SignOut, "POST"),
        _ => {
            let rest = path.strip_prefix("/tokens/")?;
            let (id, action) = rest.split_once('/')?;
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            match action {
                "revoke" => (Route::Revoke(id), "GET, POST"),
                "regenerate" => (Route::Regenerate(id), "GET, POST"),
                _ => return None,
            }
        }
    })
}

async fn serve<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Fail> {
    let (route, allow) = route(&req.path).ok_or(Fail::Core(Error::NotFound))?;
    let get = req.method == Method::Get;
    let post = req.method == Method::Post;
    if !(get && allow.contains("GET") || post && allow.contains("POST")) {
        return Err(Error::MethodNotAllowed(allow).into());
    }
    match route {
        Route::Icon => return Ok(icon().into()),
        Route::Root => return Ok(redirect("/tokens").into()),
        _ => {}
    }
    let key = ctx
        .cfg
        .page
        .session_secret
        .as_deref()
        .and_then(Key::new)
        .ok_or(Fail::NotConfigured)?;
    match route {
        Route::SignIn if get => return sign_in_form(ctx, req, &key, "", None),
        Route::SignIn => return sign_in(ctx, req, &key),
        _ => {}
    }
    let who = identify(ctx, req, &key).await?;
    match route {
        Route::List => list(ctx, req, &key, &who).await,
        Route::New if get => new_form(ctx, &key, &who, &NewForm::default(), None, 200).await,
        Route::New => create(ctx, req, &key, &who).await,
        Route::SignOut => sign_out(ctx, req, &key, &who),
        Route::Revoke(id) if get => confirm_revoke(ctx, &key, &who, id).await,
        Route::Revoke(id) => revoke(ctx, req, &key, &who, id).await,
        Route::Regenerate(id) if get => confirm_regenerate(ctx, &key, &who, id).await,
        Route::Regenerate(id) => regenerate(ctx, req, &key, &who, id).await,
        Route::Root | Route::Icon | Route::SignIn => Err(Error::NotFound.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

/// Headers on every page response.
fn secure_headers(mut r: Response) -> Response {
    r.headers.extend([
        ("content-security-policy", assets::csp()),
        ("x-content-type-options", "nosniff".to_owned()),
        ("referrer-policy", "no-referrer".to_owned()),
        ("cache-control", "no-store".to_owned()),
        ("x-frame-options", "DENY".to_owned()),
        ("cross-origin-opener-policy", "same-origin".to_owned()),
    ]);
    r
}

fn html(status: u16, markup: Markup) -> Response {
    let mut r = Response::empty(status);
    r.headers
        .push(("content-type", "text/html; charset=utf-8".to_owned()));
    r.body = markup.into_string().into_bytes();
    secure_headers(r)
}

/// 303 See Other (POST/redirect/GET).
fn redirect(location: &str) -> Response {
    secure_headers(Response::empty(303).with_header("location", location.to_owned()))
}

fn icon() -> Response {
    let mut r = Response::empty(200);
    r.headers.extend([
        ("content-type", "image/svg+xml".to_owned()),
        ("cache-control", "public, max-age=86400".to_owned()),
        ("content-security-policy", "default-src 'none'".to_owned()),
        ("x-content-type-options", "nosniff".to_owned()),
    ]);
    r.body = assets::ICON_SVG.as_bytes().to_vec();
    r
}

fn fail_page<B: Backend>(ctx: &Ctx<'_, B>, req: &Request, f: Fail) -> Response {
    let msg = |status, title, text: &str| html(status, views::message(None, title, text, None));
    let back = Some(("/tokens", "Back to your tokens"));
    match f {
        Fail::Forbidden(why) => {
            let r = html(
                403,
                views::message(
                    None,
                    "Request refused",
                    "This request did not come from this page (or the page was open too long). \
                     Nothing was changed. Reload the page and try again.",
                    back,
                ),
            );
            log_cause(
                ctx,
                403,
                "forbidden",
                format!("token page: refused {}: {why}", req.path),
            );
            r
        }
        Fail::SignInRequired(cause) => {
            // A presented but invalid Access assertion gets the 401 page, not the dev form.
            if ctx.cfg.page.dev_sign_in && req.method == Method::Get && cause.is_none() {
                return redirect("/tokens/sign-in");
            }
            let text = if ctx.cfg.page.dev_sign_in {
                "Sign in first."
            } else {
                "This page is for signed-in members of the organisation. Open it through your \
                 organisation's sign-in (Cloudflare Access)."
            };
            let link = ctx
                .cfg
                .page
                .dev_sign_in
                .then_some(("/tokens/sign-in", "Sign in"));
            let r = html(401, views::message(None, "Sign-in required", text, link)).with_header(
                "www-authenticate",
                format!("Bearer realm=\"{}\"", crate::error::REALM),
            );
            if let Some(c) = cause {
                log_cause(
                    ctx,
                    401,
                    "sign_in_required",
                    format!("token page: sign-in refused: {c}"),
                );
            }
            r
        }
        Fail::NotConfigured => {
            log_cause(
                ctx,
                503,
                "not_configured",
                "token page: SESSION_SECRET is missing or shorter than 32 bytes".into(),
            );
            msg(
                503,
                "Not configured",
                "The token page is not configured on this server yet.",
            )
        }
        Fail::Core(e) => core_failure_page(ctx, &e),
    }
}

/// The page for a core error: a message, the headers the error calls for, its cause logged.
fn core_failure_page<B>(ctx: &Ctx<'_, B>, e: &Error) -> Response {
    let back = Some(("/tokens", "Back to your tokens"));
    let status = e.status();
    let (title, text, log): (&str, String, Option<String>) = match e {
        Error::NotFound => (
            "Not found",
            "There is no such page or token, or it is not yours.".into(),
            None,
        ),
        Error::MethodNotAllowed(_) => ("Method not allowed", String::new(), None),
        Error::InvalidRequest(m) | Error::Conflict(m) | Error::InvalidScope(m) => {
            ("Bad request", ucfirst(m), None)
        }
        Error::PayloadTooLarge(_) | Error::UnsupportedMediaType(_) => {
            ("Bad request", "The form could not be read.".into(), None)
        }
        Error::RateLimited(what, secs) => (
            "Too many requests",
            format!(
                "Too many {what} for now. Try again in {} minutes.",
                secs.div_ceil(60)
            ),
            None,
        ),
        Error::Unavailable(c) => (
            "Temporarily unavailable",
            "Storage is temporarily unavailable. Nothing may have changed; try again in a moment."
                .into(),
            Some(c.clone()),
        ),
        other => (
            "Something went wrong",
            "An internal error occurred. Try again later.".into(),
            Some(format!("{other:?}")),
        ),
    };
    let title = if status == 409 { "Conflict" } else { title };
    let mut r = html(status, views::message(None, title, &text, back));
    match e {
        Error::MethodNotAllowed(allow) => r.headers.push(("allow", (*allow).to_owned())),
        Error::RateLimited(_, secs) => r.headers.push(("retry-after", secs.to_string())),
        _ => {}
    }
    if let Some(l) = log {
        log_cause(ctx, status, e.code(), format!("token page: {l}"));
    }
    r
}

/// Logs why the page refused or failed a request (the `error` event; never shown on the page).
fn log_cause<B>(ctx: &Ctx<'_, B>, status: u16, error: &'static str, cause: String) {
    ctx.isolate.emit(Event::ErrorCause {
        status,
        error,
        cause,
    });
}

fn ucfirst(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

fn message_of(e: &Error) -> String {
    match e {
        Error::InvalidRequest(m) | Error::InvalidScope(m) | Error::Conflict(m) => ucfirst(m),
        _ => "The token could not be created.".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Identity

async fn identify<B: Backend>(ctx: &Ctx<'_, B>, req: &Request, key: &Key) -> Result<Who, Fail> {
    if let Some(jwt) = req.get_header("cf-access-jwt-assertion")? {
        return match user::verify(ctx, jwt).await {
            Ok(user) => Ok(Who {
                user,
                binding: session::binding_of("access", jwt),
                access: true,
            }),
            Err(Error::InvalidToken { cause, .. }) => Err(Fail::SignInRequired(Some(cause))),
            Err(e) => Err(e.into()),
        };
    }
    if ctx.cfg.page.dev_sign_in {
        let cookie = session::cookie(req.get_header("cookie")?, session::SESSION_COOKIE);
        if let Some(s) = cookie.and_then(|v| Session::decode(v, key, ctx.now)) {
            return Ok(Who {
                user: s.user,
                binding: session::binding_of("session", &s.id),
                access: false,
            });
        }
    }
    Err(Fail::SignInRequired(None))
}

fn csrf_for(key: &Key, who: &Who) -> Result<String, Fail> {
    session::csrf_token(key, &who.binding).map_err(rng)
}

fn viewer<'a>(who: &'a Who, csrf: &'a str) -> Viewer<'a> {
    Viewer {
        user: &who.user,
        sign_out: if who.access {
            SignOut::Access
        } else {
            SignOut::Dev { csrf }
        },
    }
}

/// The cross-site checks of every POST: origin, then form, then the CSRF token for `binding`.
fn checked_form(
    ctx: &Ctx<'_, impl Backend>,
    req: &Request,
    key: &Key,
    binding: &[u8],
) -> Result<PageForm, Fail> {
    form::same_origin(req, &form::origin_of(&ctx.cfg.issuer)).map_err(Fail::Forbidden)?;
    let f = PageForm::parse(req)?;
    if !session::csrf_valid(key, binding, f.one("csrf")?) {
        return Err(Fail::Forbidden("missing or invalid CSRF token"));
    }
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// Dev sign-in

fn sign_in_form<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    user: &str,
    error: Option<&str>,
) -> Result<Outcome, Fail> {
    if !ctx.cfg.page.dev_sign_in {
        return Err(Error::NotFound.into());
    }
    let cookies = req.get_header("cookie")?;
    if error.is_none() {
        let signed_in = session::cookie(cookies, session::SESSION_COOKIE)
            .and_then(|v| Session::decode(v, key, ctx.now));
        if signed_in.is_some() {
            return Ok(redirect("/tokens").into());
        }
    }
    let pre = match session::cookie(cookies, session::SIGNIN_COOKIE) {
        Some(v) if v.len() == 43 => v.to_owned(),
        _ => session::random_b64(32).map_err(rng)?,
    };
    let csrf = session::csrf_token(key, &session::binding_of("signin", &pre)).map_err(rng)?;
    let status = if error.is_some() { 400 } else { 200 };
    Ok(html(status, views::sign_in(&csrf, user, error))
        .with_header(
            "set-cookie",
            session::set_cookie(session::SIGNIN_COOKIE, &pre, 3600),
        )
        .into())
}

fn sign_in<B: Backend>(ctx: &Ctx<'_, B>, req: &Request, key: &Key) -> Result<Outcome, Fail> {
    if !ctx.cfg.page.dev_sign_in {
        return Err(Error::NotFound.into());
    }
    let pre = session::cookie(req.get_header("cookie")?, session::SIGNIN_COOKIE)
        .ok_or(Fail::Forbidden("no sign-in cookie"))?;
    let f = checked_form(ctx, req, key, &session::binding_of("signin", pre))?;
    let user = f.one("user")?.trim();
    if !session::valid_user(user) {
        return sign_in_form(
            ctx,
            req,
            key,
            user,
            Some("Enter a user id of 1 to 64 letters, digits or . _ @ -"),
        );
    }
    let s = Session::new(user, ctx.now).map_err(rng)?;
    Ok(redirect("/tokens")
        .with_header(
            "set-cookie",
            session::set_cookie(
                session::SESSION_COOKIE,
                &s.encode(key),
                session::SESSION_SECS,
            ),
        )
        .with_header(
            "set-cookie",
            session::set_cookie(session::SIGNIN_COOKIE, "", 0),
        )
        .into())
}

fn sign_out<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
) -> Result<Outcome, Fail> {
    checked_form(ctx, req, key, &who.binding)?;
    if who.access {
        return Ok(redirect(views::ACCESS_LOGOUT).into());
    }
    Ok(redirect("/tokens/sign-in")
        .with_header(
            "set-cookie",
            session::set_cookie(session::SESSION_COOKIE, "", 0),
        )
        .into())
}

// ---------------------------------------------------------------------------------------------
// Tokens

async fn list<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
) -> Result<Outcome, Fail> {
    let q = req.query_params()?;
    let after = q.get("cursor").map(pats::parse_cursor).transpose()?;
    let (recs, next) = pats::list_for(ctx, &who.user, after.as_ref(), PAGE_SIZE).await?;
    let statuses = crate::app::decision::statuses(ctx, &recs).await?;
    let csrf = csrf_for(key, who)?;
    let page = views::list_page(
        &viewer(who, &csrf),
        &recs,
        &statuses,
        ctx.now,
        next.as_deref(),
        after.is_none(),
    );
    Ok(html(200, page).into())
}

/// The scopes PATs may carry (the PAT client's allowed scopes), grouped by API resource.
async fn scope_groups<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Vec<ScopeGroup>, Error> {
    // A disabled or missing PAT client allows nothing (the form says so; creation refuses).
    let Some(client) = client_auth::load_client(ctx, PAT_CLIENT_ID)
        .await?
        .filter(|c| c.enabled)
    else {
        return Ok(Vec::new());
    };
    let allowed = &client.allowed_scopes;
    // the isolate's copy of the resource table (REGISTRY_CACHE_SECONDS), not a D1 read per page
    let table = client_auth::resources(ctx).await?;
    let mut resources: Vec<_> = table.values().cloned().collect();
    resources.sort_by(|a, b| a.id.cmp(&b.id));
    let mut groups = Vec::new();
    let mut placed: Vec<&String> = Vec::new();
    for r in &resources {
        let mut scopes: Vec<String> = r
            .scopes
            .iter()
            .filter(|s| allowed.contains(s))
            .cloned()
            .collect();
        scopes.sort();
        placed.extend(r.scopes.iter());
        if !scopes.is_empty() {
            groups.push(ScopeGroup {
                resource: Some(r.id.clone()),
                scopes,
            });
        }
    }
    let mut rest: Vec<String> = allowed
        .iter()
        .filter(|s| !placed.contains(s))
        .cloned()
        .collect();
    rest.sort();
    if !rest.is_empty() {
        groups.push(ScopeGroup {
            resource: None,
            scopes: rest,
        });
    }
    Ok(groups)
}

async fn new_form<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
    f: &NewForm,
    form_id: Option<&str>,
    status: u16,
) -> Result<Outcome, Fail> {
    let groups = scope_groups(ctx).await?;
    let csrf = csrf_for(key, who)?;
    let form_id = if let Some(id) = form_id {
        id.to_owned()
    } else {
        session::random_b64(16).map_err(rng)?
    };
    let max_days = ctx.cfg.pat_max_days;
    let page = NewPage {
        csrf: &csrf,
        form_id: &form_id,
        groups: &groups,
        form: f,
        max_days,
        min_date: views::date(ctx.now + 86_400),
        max_date: views::date(ctx.now + max_days * 86_400),
    };
    Ok(html(status, views::new_page(&viewer(who, &csrf), &page)).into())
}

/// The expiry the form asks for, as the API's input, or the message to show next to the field.
fn form_expiry(f: &NewForm, now: i64, max_days: i64) -> Result<pats::CreatePat, String> {
    let mut body = pats::CreatePat {
        name: String::new(),
        scopes: Vec::new(),
        expires_at: None,
        expires_in_days: None,
        allow_self_rotation: false,
        revoke_on_reuse: false,
    };
    let range = || {
        format!(
            "Choose a date from {} to {}.",
            views::date(now + 86_400),
            views::date(now + max_days * 86_400)
        )
    };
    if f.expiration == "custom" {
        let ts = views::parse_date(&f.custom_date)
            .ok_or_else(|| format!("Enter the custom date as YYYY-MM-DD. {}", range()))?;
        body.expires_at = Some(crate::app::rfc3339(ts));
    } else {
        let days = f
            .expiration
            .parse::<i64>()
            .ok()
            .filter(|d| views::PRESETS.contains(d) && *d <= max_days)
            .ok_or("Choose one of the expiration options.")?;
        body.expires_in_days = Some(days);
    }
    pats::validate_expiry(&body, now, max_days).map_err(|_| range())?;
    Ok(body)
}

/// A one-time form id: 16 random bytes, base64url.
fn valid_form_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn create<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
) -> Result<Outcome, Fail> {
    let f = checked_form(ctx, req, key, &who.binding)?;
    let form_id = f.one("form_id")?;
    if !valid_form_id(form_id) {
        return Err(Error::InvalidRequest("the form is incomplete: reload it".into()).into());
    }
    let mut nf = NewForm {
        name: f.one("name")?.to_owned(),
        expiration: f.one("expiration")?.to_owned(),
        custom_date: f.one("custom_date")?.to_owned(),
        scopes: f.all("scope"),
        allow_self_rotation: false,
        revoke_on_reuse: false,
        errors: FormErrors::default(),
    };
    match (
        f.checkbox("allow_self_rotation"),
        f.checkbox("revoke_on_reuse"),
    ) {
        (Some(self_rotation), Some(reuse)) => {
            nf.allow_self_rotation = self_rotation;
            nf.revoke_on_reuse = reuse;
        }
        // Only a forged form gets here (a checkbox sends `on` or nothing): both shown unchecked.
        _ => nf.errors.options = Some("Lifecycle options can only be checked or unchecked.".into()),
    }
    // The id this form's token gets: a re-posted form (double submit, reload, back) finds it.
    let id = key.derive_id(&who.user, form_id);
    let sealer = replay::Sealer::new(key, &who.user, form_id, &who.binding);
    match pats::owned(ctx, &who.user, &id).await {
        Ok(rec) => return already_created(ctx, key, who, &sealer, &rec).await,
        Err(Error::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = pats::validate_name(&nf.name) {
        nf.errors.name = Some(message_of(&e));
    }
    let expiry = form_expiry(&nf, ctx.now, ctx.cfg.pat_max_days);
    if let Err(m) = &expiry {
        nf.errors.expiration = Some(m.clone());
    }
    if nf.scopes.is_empty() {
        nf.errors.scopes = Some("Select at least one scope.".into());
    } else if let Err(e) = pats::validate_scopes(ctx, &nf.scopes).await {
        match e {
            Error::InvalidScope(m) => nf.errors.scopes = Some(ucfirst(&m)),
            Error::UnauthorizedClient(_) => {
                nf.errors.form = Some(
                    "Personal access tokens cannot be created at the moment: ask your \
                     administrator."
                        .into(),
                );
            }
            e => return Err(e.into()),
        }
    }
    let Ok(mut body) = expiry else {
        return new_form(ctx, key, who, &nf, Some(form_id), 400).await;
    };
    if nf.errors.any() {
        return new_form(ctx, key, who, &nf, Some(form_id), 400).await;
    }
    body.name.clone_from(&nf.name);
    body.scopes.clone_from(&nf.scopes);
    body.allow_self_rotation = nf.allow_self_rotation;
    body.revoke_on_reuse = nf.revoke_on_reuse;
    // Sealed before the PAT exists: a twin POST that finds the PAT also finds its token.
    let token = crate::token::PlainToken::generate(crate::token::TokenKind::Pat).map_err(rng)?;
    sealer.keep(ctx, &token).await;
    match pats::issue_with_id(ctx, who.user.clone(), body, Some((id.clone(), token))).await {
        Ok((rec, token)) => {
            let csrf = csrf_for(key, who)?;
            let page = views::shown_once(&viewer(who, &csrf), &rec, token.expose_secret(), false);
            Ok(html(200, page).into())
        }
        Err(e @ (Error::InvalidRequest(_) | Error::InvalidScope(_))) => {
            nf.errors.form = Some(message_of(&e));
            new_form(ctx, key, who, &nf, Some(form_id), 400).await
        }
        Err(e) => {
            // A twin POST of this form may have stored the PAT first (the insert of the same id
            // failed): show what it created.
            match pats::owned(ctx, &who.user, &id).await {
                Ok(rec) => already_created(ctx, key, who, &sealer, &rec).await,
                Err(_) => Err(e.into()),
            }
        }
    }
}

/// A POST of a form whose PAT exists: the same token again for a resubmission from the same
/// session within a minute ([`replay`]), else 409 "already created".
async fn already_created<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
    sealer: &replay::Sealer,
    rec: &TokenRecord,
) -> Result<Outcome, Fail> {
    let csrf = csrf_for(key, who)?;
    if let Some(token) = sealer.shown_again(ctx, rec).await {
        let page = views::shown_once(&viewer(who, &csrf), rec, token.expose_secret(), false);
        return Ok(html(200, page).into());
    }
    let page = views::message(
        Some(&viewer(who, &csrf)),
        "Token already created",
        "This form was already submitted: its token was created and shown, and cannot be shown \
         again. If you did not copy it, regenerate or revoke it.",
        Some(("/tokens", "Back to your tokens")),
    );
    Ok(html(409, page).into())
}

async fn confirm_revoke<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    let rec = pats::owned(ctx, &who.user, id).await?;
    let csrf = csrf_for(key, who)?;
    let v = viewer(who, &csrf);
    if rec.revoked_at.is_some() {
        let page = views::message(
            Some(&v),
            "Already revoked",
            "This token is already revoked.",
            Some(("/tokens", "Back to your tokens")),
        );
        return Ok(html(200, page).into());
    }
    Ok(html(200, views::confirm_revoke(&v, &csrf, &rec)).into())
}

async fn revoke<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    checked_form(ctx, req, key, &who.binding)?;
    let done = pats::revoke_for(ctx, &who.user, id).await?;
    let response = redirect("/tokens");
    Ok(Outcome {
        response,
        deferred: done.deferred,
    })
}

fn version_of(key: &Key, rec: &TokenRecord) -> String {
    key.version(&rec.id, &rec.hash.0)
}

fn not_active_page(who: &Who, csrf: &str) -> Response {
    html(
        409,
        views::message(
            Some(&viewer(who, csrf)),
            "Cannot regenerate",
            "Only an active token can be regenerated.",
            Some(("/tokens", "Back to your tokens")),
        ),
    )
}

async fn confirm_regenerate<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    let rec = pats::owned(ctx, &who.user, id).await?;
    let csrf = csrf_for(key, who)?;
    if rec.status(ctx.now) != Status::Active {
        return Ok(not_active_page(who, &csrf).into());
    }
    let page = views::confirm_regenerate(&viewer(who, &csrf), &csrf, &version_of(key, &rec), &rec);
    Ok(html(200, page).into())
}

async fn regenerate<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    let f = checked_form(ctx, req, key, &who.binding)?;
    let rec = pats::owned(ctx, &who.user, id).await?;
    let csrf = csrf_for(key, who)?;
    if rec.status(ctx.now) != Status::Active {
        return Ok(not_active_page(who, &csrf).into());
    }
    let already = |who: &Who| {
        // The token changed since the form was shown: a reload of the answer, another tab, or
        // a concurrent post of the same form.
        let page = views::message(
            Some(&viewer(who, &csrf)),
            "Already regenerated",
            "This token was regenerated since this form was shown; the new token was shown once \
             and cannot be shown again. Nothing was changed now. If you do not have the new \
             token, regenerate it again.",
            Some(("/tokens", "Back to your tokens")),
        );
        Ok(html(409, page).into())
    };
    if !session::ct_eq(f.one("version")?, &version_of(key, &rec)) {
        return already(who);
    }
    // Exactly the version checked is rotated (D1's update is conditional on its hash).
    let r = match pats::rotate_record(ctx, rec, 0, "api").await {
        Err(Error::Conflict(_)) => return already(who),
        r => r?,
    };
    let page = views::shown_once(
        &viewer(who, &csrf),
        &r.record,
        r.token.expose_secret(),
        true,
    );
    let response = html(200, page);
    Ok(Outcome {
        response,
        deferred: r.deferred,
    })
}

#[cfg(test)]
mod tests;
