//! The self-service token page: server-rendered HTML at `/` and under `/tokens`, on the issuer's
//! host only. It uses the same PAT logic as the JSON API (the tokens capability's face), and the
//! same user JWT verification (`app::user`) for Cloudflare Access's `Cf-Access-Jwt-Assertion`.
//!
//! Routes (all `GET` pages work without JavaScript; every change is a `POST`):
//!
//! | route | what |
//! |---|---|
//! | `GET /` | 303 to `/tokens` |
//! | `GET /tokens?sort=&cursor=` | the user's tokens, newest first (or by last use: `sort=last_used`, `least_recently_used`), 20 a page |
//! | `GET, POST /tokens/new` | the "Generate new token" form; the POST answers with the token, once |
//! | `GET, POST /tokens/{id}/regenerate` | confirm, then rotate (the new token shown once) |
//! | `GET, POST /tokens/{id}/revoke` | confirm, then revoke (303 to `/tokens`) |
//! | `GET /tokens/{id}/usage` | the token's uses per day (a chart), totals, where it was used from |
//! | `GET, POST /tokens/sign-in`, `POST /tokens/sign-out` | local dev sign-in (`DEV_SIGN_IN`); `?return_to=/authorize?...` comes back |
//! | `GET /authorize` | the authorization endpoint: the consent page, or 302 to the app ([`consent`]) |
//! | `POST /authorize/consent` | Approve or Deny (303 to the app) |
//! | `GET /tokens/apps` | "Authorized applications" ([`apps`]) |
//! | `GET, POST /tokens/apps/{id}/revoke` | confirm, then revoke the app's grant |
//! | `GET /favicon.ico` | the icon |
//!
//! Every POST passes [`form::same_origin`] and carries a CSRF token bound to the session
//! ([`session`]). A reload of a POST answer cannot create a token twice: a new PAT's id is derived
//! from the form's one-time id, and the regenerate form names the token's current hash. A second
//! POST of the same form, from the same session within a minute (a double submit), shows the same
//! token again ([`replay`]); later, never.
//!
//! It owns the pages ([`pats`], double submits: [`replay`]), who is signed in ([`identity`], [`session`]), forms and the
//! cross-site check ([`form`]), the HTML ([`views`], [`dates`], [`assets`]) and the answers
//! ([`respond`]); it may use the shared pieces of `app/`, the tokens capability through its face,
//! storage traits and the pure layer. Only the router uses it.

mod apps;
mod assets;
mod authz_views;
mod consent;
mod dates;
mod form;
mod identity;
mod list_sort;
mod pats;
mod replay;
mod respond;
mod session;
mod usage;
mod views;

use crate::app::config::Config;
use crate::app::ctx::{Ctx, Outcome};
use crate::error::Error;
use crate::gate::host;
use crate::http::{Method, Request, Response};
use crate::store::Backend;
use identity::identify;
use respond::{fail_page, icon, redirect, Fail};
use session::Key;
use views::NewForm;

/// Where the dev sign-in returns to (tests of the open-redirect rule).
#[cfg(test)]
pub fn return_to_of(req: &Request) -> Option<String> {
    identity::return_to(req)
}

/// Whether `path` belongs to the page (it is served only on the issuer's host, see
/// [`on_issuer_host`]).
pub fn is_page_path(path: &str) -> bool {
    path == "/"
        || path == "/favicon.ico"
        || path == "/tokens"
        || path.starts_with("/tokens/")
        || path == "/authorize"
        || path == "/authorize/consent"
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
    let authority = host::authority(&cfg.issuer);
    let host = host::host_name(authority);
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
    Usage(&'p str),
    Authorize,
    Consent,
    Apps,
    RevokeApp(&'p str),
}

fn route(path: &str) -> Option<(Route<'_>, &'static str)> {
    Some(match path {
        "/" => (Route::Root, "GET"),
        "/favicon.ico" => (Route::Icon, "GET"),
        "/tokens" | "/tokens/" => (Route::List, "GET"),
        "/tokens/new" => (Route::New, "GET, POST"),
        "/tokens/sign-in" => (Route::SignIn, "GET, POST"),
        "/tokens/sign-out" => (Route::SignOut, "POST"),
        "/authorize" => (Route::Authorize, "GET"),
        "/authorize/consent" => (Route::Consent, "POST"),
        "/tokens/apps" | "/tokens/apps/" => (Route::Apps, "GET"),
        _ if path.starts_with("/tokens/apps/") => {
            let id = path["/tokens/apps/".len()..].strip_suffix("/revoke")?;
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            (Route::RevokeApp(id), "GET, POST")
        }
        _ => {
            let rest = path.strip_prefix("/tokens/")?;
            let (id, action) = rest.split_once('/')?;
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            match action {
                "revoke" => (Route::Revoke(id), "GET, POST"),
                "regenerate" => (Route::Regenerate(id), "GET, POST"),
                "usage" => (Route::Usage(id), "GET"),
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
        Route::SignIn if get => return identity::sign_in_form(ctx, req, &key, "", None),
        Route::SignIn => return identity::sign_in(ctx, req, &key),
        Route::Authorize => return consent::authorize(ctx, req, &key).await,
        Route::Consent => return consent::answer(ctx, req, &key).await,
        _ => {}
    }
    let who = identify(ctx, req, &key).await?;
    match route {
        Route::List => pats::list(ctx, req, &key, &who).await,
        Route::New if get => pats::new_form(ctx, &key, &who, &NewForm::default(), None, 200).await,
        Route::New => pats::create(ctx, req, &key, &who).await,
        Route::SignOut => identity::sign_out(ctx, req, &key, &who),
        Route::Revoke(id) if get => pats::confirm_revoke(ctx, &key, &who, id).await,
        Route::Revoke(id) => pats::revoke(ctx, req, &key, &who, id).await,
        Route::Regenerate(id) if get => pats::confirm_regenerate(ctx, &key, &who, id).await,
        Route::Regenerate(id) => pats::regenerate(ctx, req, &key, &who, id).await,
        Route::Usage(id) => usage::page(ctx, &key, &who, id).await,
        Route::Apps => apps::list(ctx, &key, &who).await,
        Route::RevokeApp(id) if get => apps::confirm_revoke(ctx, &key, &who, id).await,
        Route::RevokeApp(id) => apps::revoke(ctx, req, &key, &who, id).await,
        Route::Root | Route::Icon | Route::SignIn | Route::Authorize | Route::Consent => {
            Err(Error::NotFound.into())
        }
    }
}

#[cfg(test)]
mod tests;
