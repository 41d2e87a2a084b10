//! The service (`src/app/`): the router, over capabilities, over shared pieces. No `worker`
//! types here; the runtime layer builds a [`Ctx`], calls [`handle`] (or, on a host other than the
//! issuer's, [`gate::gate`] first), sends the response and runs the [`Deferred`] work after it
//! (`wait_until`).
//!
//! - Capabilities, each a folder used through its `mod.rs`: [`tokens`] (the token decision and a
//!   token's life), `server` (the OAuth server), [`gate`], `page` (the token page), `admin` (the
//!   admin API), [`webhooks`] (events fanned out to endpoints). A capability may use the shared
//!   pieces and another capability's face; the arrows point one way (`docs/ARCHITECTURE.md`).
//! - Shared pieces, which use no capability: [`config`] (and [`settings`], the checks of settings
//!   the runtime reads), [`ctx`] (the request context, deferred work, outcomes), `isolate`
//!   (per-isolate caches and the event sink), `client_auth` (client and API resource
//!   authentication, the registry tables), [`clients`] (every kind of client looked up, one by
//!   one for self-registered ones), `user` (the signed-in user), `ratelimit`,
//!   [`revocations`] (the isolate's view of the revocation feed in the token decision),
//!   [`authz_cleanup`] (the cron's clean-up of ended authorization state).
//!
//! This file is the router and the module list, nothing else.

// Shared pieces.
pub mod authz_cleanup;
mod client_auth;
pub mod clients;
pub mod config;
pub mod ctx;
mod isolate;
mod ratelimit;
pub mod revocations;
pub mod settings;
mod user;

// Capabilities.
mod admin;
pub mod gate;
mod page;
mod server;
pub mod tokens;
pub mod webhooks;

pub use config::{Config, LifecycleConfig, PageConfig, WebhookConfig};
pub use ctx::{Ctx, Deferred, Outcome};
pub use isolate::IsolateState;
pub use page::is_page_path;
pub use tokens::{LEAK_REPORT_HEADERS, LEAK_REPORT_PATH};

use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::store::Backend;

/// Handles one request. Never panics on input; every failure is an [`Error`] mapped in one place.
pub async fn handle<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Outcome {
    let mut outcome = match dispatch(ctx, req).await {
        Ok(o) => o,
        Err(e) => {
            ctx.isolate.error(&e);
            e.into_response().into()
        }
    };
    finish(&req.path, &mut outcome.response);
    outcome
}

/// The answer to a request refused before it could be parsed (a body over the endpoint's limit,
/// an unreadable body), with the same caching headers as every other answer; its cause goes to
/// `isolate`'s event sink like every error's.
pub fn refuse(isolate: &IsolateState, path: &str, e: Error) -> Response {
    isolate.error(&e);
    let mut r = e.into_response();
    finish(path, &mut r);
    r
}

/// Headers every answer carries: `Cache-Control: no-store` unless the handler chose a policy,
/// and `Pragma: no-cache` on `/oauth/*` (RFC 6749 5.1).
fn finish(path: &str, r: &mut Response) {
    if r.header("cache-control").is_none() {
        r.headers.push(("cache-control", "no-store".into()));
    }
    if path.starts_with("/oauth/") {
        r.headers.push(("pragma", "no-cache".into()));
    }
}

/// What a path is. Every host reaches these (on a host other than the issuer's, after the gate
/// found no route for it), but the token page's paths only on the issuer's host.
#[derive(Clone, Copy)]
enum Route<'p> {
    Page,
    /// A page path on another host.
    PageElsewhere,
    Metadata,
    Jwks,
    Token,
    Register,
    Introspect,
    Revoke,
    LeakReport,
    Pats,
    Pat(&'p str),
    RotatePat(&'p str),
    PatUsage(&'p str),
    RotateSelf,
    Admin(&'p str),
}

fn route<'p>(cfg: &Config, req: &'p Request) -> Option<Route<'p>> {
    let path = req.path.as_str();
    Some(match path {
        _ if page::is_page_path(path) && page::on_issuer_host(cfg, req) => Route::Page,
        _ if page::is_page_path(path) => Route::PageElsewhere,
        // Not `/.well-known/openid-configuration`: patgate is no OpenID Provider (it has no
        // authorization endpoint and issues no ID tokens), so it serves no OIDC metadata.
        "/.well-known/oauth-authorization-server" => Route::Metadata,
        "/.well-known/jwks.json" => Route::Jwks,
        "/oauth/token" => Route::Token,
        "/oauth/register" => Route::Register,
        "/oauth/introspect" => Route::Introspect,
        "/oauth/revoke" => Route::Revoke,
        tokens::LEAK_REPORT_PATH => Route::LeakReport,
        "/api/pats" => Route::Pats,
        "/api/pats/self/rotate" => Route::RotateSelf,
        _ if path.starts_with("/admin/") => Route::Admin(&path[7..]),
        _ => {
            let rest = path.strip_prefix("/api/pats/")?;
            match rest.split_once('/') {
                None if !rest.is_empty() => Route::Pat(rest),
                Some((id, "rotate")) if !id.is_empty() => Route::RotatePat(id),
                Some((id, "usage")) if !id.is_empty() => Route::PatUsage(id),
                _ => return None,
            }
        }
    })
}

impl Route<'_> {
    /// The methods of a path (the `Allow` of a 405). The page and the admin API answer every
    /// method themselves.
    fn allow(self) -> &'static str {
        match self {
            Route::Metadata | Route::Jwks | Route::PatUsage(_) => "GET",
            Route::Token
            | Route::Register
            | Route::Introspect
            | Route::Revoke
            | Route::LeakReport
            | Route::RotatePat(_)
            | Route::RotateSelf => "POST",
            Route::Pats => "GET, POST",
            Route::Pat(_) => "GET, DELETE",
            Route::Page | Route::PageElsewhere | Route::Admin(_) => "",
        }
    }
}

/// The table: (path, method) to the capability's entry point; no route is a 404, a route without
/// the method a 405.
async fn dispatch<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    use Method::{Delete, Get, Post};
    let route = route(ctx.cfg, req).ok_or(Error::NotFound)?;
    match (route, req.method) {
        // The token page, on the issuer's host: `/`, `/tokens...` (its own table), `/favicon.ico`.
        (Route::Page, _) => Ok(page::handle(ctx, req).await),
        // Elsewhere a 404, which in local development says where the page is.
        (Route::PageElsewhere, _) => page::not_on_this_host(ctx.cfg)
            .map(Into::into)
            .ok_or(Error::NotFound),
        // The OAuth server.
        (Route::Metadata, Get) => server::metadata(ctx).await.map(Into::into),
        (Route::Jwks, Get) => Ok(server::jwks(ctx).into()),
        (Route::Token, Post) => server::token(ctx, req).await,
        (Route::Register, Post) => server::register_client(ctx, req).await,
        // Tokens: introspection, revocation, leak reports, the PAT management API.
        (Route::Introspect, Post) => tokens::serve_introspection(ctx, req).await,
        (Route::Revoke, Post) => tokens::serve_revocation(ctx, req).await,
        (Route::LeakReport, Post) => tokens::leak_report(ctx, req).await,
        (Route::Pats, Get) => tokens::list_pats(ctx, req).await.map(Into::into),
        (Route::Pats, Post) => tokens::create_pat(ctx, req).await.map(Into::into),
        (Route::Pat(id), Get) => tokens::get_pat(ctx, req, id).await.map(Into::into),
        (Route::Pat(id), Delete) => tokens::revoke_pat(ctx, req, id).await,
        (Route::RotatePat(id), Post) => tokens::rotate_pat(ctx, req, id).await,
        (Route::PatUsage(id), Get) => tokens::pat_usage(ctx, req, id).await.map(Into::into),
        (Route::RotateSelf, Post) => tokens::rotate_self(ctx, req).await,
        // The admin API (its own table: `/admin/clients`, `/admin/resources`, `/admin/routes`,
        // `/admin/webhooks`).
        (Route::Admin(rest), _) => admin::handle(ctx, req, rest).await,
        (route, _) => Err(Error::MethodNotAllowed(route.allow())),
    }
}

/// Parses `body` as every JSON request body of the management and admin APIs (fuzzing and
/// property tests: no input may panic).
#[cfg(test)]
#[doc(hidden)]
pub fn parse_all_json_bodies(body: &[u8]) {
    let _ = crate::http::parse_json_object::<tokens::CreatePat>(body);
    admin::parse_bodies(body);
}

#[cfg(test)]
mod tests;
