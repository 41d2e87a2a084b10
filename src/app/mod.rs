//! The service: routing and handlers over the storage traits. No `worker` types here; the
//! runtime layer builds a [`Ctx`], calls [`handle`], sends the response and runs the
//! [`Deferred`] work after it (`wait_until`).

mod admin;
mod client_auth;
pub mod config;
pub mod ctx;
pub mod gate;
mod isolate;
mod page;
mod ratelimit;
mod server;
pub mod tokens;
mod user;
pub mod webhooks;

pub use config::{Config, LifecycleConfig, PageConfig, WebhookConfig};
pub use ctx::{Ctx, Deferred, Outcome};
pub use isolate::IsolateState;
pub use page::is_page_path;
pub use tokens::{LEAK_REPORT_HEADERS, LEAK_REPORT_PATH};

use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::store::Backend;

enum Route<'p> {
    Discovery,
    Jwks,
    Token,
    Admin(&'p str),
    Introspect,
    Revoke,
    Pats,
    Pat(&'p str),
    RotatePat(&'p str),
    RotateSelf,
    LeakReport,
}

fn route(path: &str) -> Option<(Route<'_>, &'static str)> {
    Some(match path {
        // Not `/.well-known/openid-configuration`: patgate is no OpenID Provider (it has no
        // authorization endpoint and issues no ID tokens), so it serves no OIDC metadata.
        "/.well-known/oauth-authorization-server" => (Route::Discovery, "GET"),
        "/.well-known/jwks.json" => (Route::Jwks, "GET"),
        "/oauth/token" => (Route::Token, "POST"),
        "/oauth/introspect" => (Route::Introspect, "POST"),
        "/oauth/revoke" => (Route::Revoke, "POST"),
        "/api/pats" => (Route::Pats, "GET, POST"),
        "/api/pats/self/rotate" => (Route::RotateSelf, "POST"),
        tokens::LEAK_REPORT_PATH => (Route::LeakReport, "POST"),
        _ if path.starts_with("/admin/") => (Route::Admin(&path[7..]), ""),
        _ => {
            let rest = path.strip_prefix("/api/pats/")?;
            match rest.split_once('/') {
                None if !rest.is_empty() => (Route::Pat(rest), "GET, DELETE"),
                Some((id, "rotate")) if !id.is_empty() => (Route::RotatePat(id), "POST"),
                _ => return None,
            }
        }
    })
}

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

async fn dispatch<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    if page::is_page_path(&req.path) && page::on_issuer_host(ctx.cfg, req) {
        return Ok(page::handle(ctx, req).await);
    }
    let (route, allow) = route(&req.path).ok_or(Error::NotFound)?;
    let m = req.method;
    match (route, m) {
        (Route::Discovery, Method::Get) => server::metadata(ctx).await.map(Into::into),
        (Route::Jwks, Method::Get) => Ok(server::jwks(ctx).into()),
        (Route::Token, Method::Post) => server::token(ctx, req).await.map(Into::into),
        (Route::Admin(rest), _) => admin::handle(ctx, req, rest).await.map(Into::into),
        (Route::Introspect, Method::Post) => tokens::serve_introspection(ctx, req).await,
        (Route::Revoke, Method::Post) => tokens::serve_revocation(ctx, req).await,
        (Route::Pats, Method::Get) => tokens::list_pats(ctx, req).await.map(Into::into),
        (Route::Pats, Method::Post) => tokens::create_pat(ctx, req).await.map(Into::into),
        (Route::Pat(id), Method::Get) => tokens::get_pat(ctx, req, id).await.map(Into::into),
        (Route::Pat(id), Method::Delete) => tokens::revoke_pat(ctx, req, id).await,
        (Route::RotatePat(id), Method::Post) => tokens::rotate_pat(ctx, req, id).await,
        (Route::RotateSelf, Method::Post) => tokens::rotate_self(ctx, req).await,
        (Route::LeakReport, Method::Post) => tokens::leak_report(ctx, req).await,
        _ => Err(Error::MethodNotAllowed(allow)),
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
