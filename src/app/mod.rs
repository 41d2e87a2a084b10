//! The service: routing and handlers over the storage traits. No `worker` types here; the
//! runtime layer builds a [`Ctx`], calls [`handle`], sends the response and runs the
//! [`Deferred`] work after it (`wait_until`).

mod admin;
mod client_auth;
mod discovery;
mod exchange;
mod introspect;
mod isolate;
mod jwt_tokens;
mod pats;
mod reference;
mod revoke;
mod token_endpoint;
mod user;

pub use isolate::IsolateState;

use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::model::Grant;
use crate::store::Backend;
use crate::token::TokenHash;
use crate::user_auth::UserAuthConfig;

/// Configuration from Worker vars and secrets (see README "Configuration").
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's base URL, without a trailing slash.
    pub issuer: String,
    pub pat_max_days: i64,
    /// Per isolate, at most one last-use write per token per this many seconds.
    pub last_used_coalesce_secs: i64,
    /// How long an isolate trusts a cached API resource or client record.
    pub registry_cache_secs: i64,
    pub user_auth: UserAuthConfig,
    /// The admin API's bearer secret; `None` switches the admin API off.
    pub admin_token: Option<String>,
    /// Keys for JWT access tokens and signed introspection responses; `None`: no JWTs issued.
    pub signing_keys: Option<std::rc::Rc<crate::jwt_issuer::SigningKeys>>,
}

/// A grant written back to KV after a miss lives at most this long (not until the token's expiry),
/// so that a repair racing a revocation cannot keep a revoked token alive in KV for long.
pub const REPAIR_TTL_SECS: i64 = 3600;
/// Delay of the second KV delete after a revocation.
pub const REVOCATION_RECHECK_SECS: u64 = 10;

/// The id of the public client that PATs are issued to.
pub const PAT_CLIENT_ID: &str = "pat_client";

/// What a handler needs: configuration, storage, this isolate's caches, and the time.
pub struct Ctx<'a, B> {
    pub cfg: &'a Config,
    pub backend: &'a B,
    pub isolate: &'a IsolateState,
    /// Unix seconds, from the runtime's clock.
    pub now: i64,
}

/// Work done after the response is sent (`wait_until`), never delaying it.
#[derive(Debug, Clone, PartialEq)]
pub enum Deferred {
    /// Tell the token's Durable Object it was used.
    RecordUse {
        token_id: String,
        at: i64,
        uses: u32,
    },
    /// Write a grant read from D1 back into KV (repair after a KV miss), until `until`.
    CacheGrant {
        hash: TokenHash,
        grant: Grant,
        until: i64,
    },
    /// Delete a revoked grant from KV once more, [`REVOCATION_RECHECK_SECS`] after revocation:
    /// a repair that read D1 just before the revocation may land in KV after its first delete.
    DeleteGrantAgain { hash: TokenHash },
}

/// A response plus the work to do after sending it.
#[derive(Debug)]
pub struct Outcome {
    pub response: Response,
    pub deferred: Vec<Deferred>,
}

impl From<Response> for Outcome {
    fn from(response: Response) -> Self {
        Outcome {
            response,
            deferred: Vec::new(),
        }
    }
}

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
        Err(e) => e.into_response().into(),
    };
    finish(&req.path, &mut outcome.response);
    outcome
}

/// The answer to a request refused before it could be parsed (a body over the endpoint's limit,
/// an unreadable body), with the same caching headers as every other answer.
pub fn refuse(path: &str, e: Error) -> Response {
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
    let (route, allow) = route(&req.path).ok_or(Error::NotFound)?;
    let m = req.method;
    match (route, m) {
        (Route::Discovery, Method::Get) => discovery::metadata(ctx).await.map(Into::into),
        (Route::Jwks, Method::Get) => Ok(jwt_tokens::jwks(ctx).into()),
        (Route::Token, Method::Post) => token_endpoint::handle(ctx, req).await.map(Into::into),
        (Route::Admin(rest), _) => admin::handle(ctx, req, rest).await.map(Into::into),
        (Route::Introspect, Method::Post) => introspect::handle(ctx, req).await,
        (Route::Revoke, Method::Post) => revoke::handle(ctx, req).await,
        (Route::Pats, Method::Get) => pats::list(ctx, req).await.map(Into::into),
        (Route::Pats, Method::Post) => pats::create(ctx, req).await.map(Into::into),
        (Route::Pat(id), Method::Get) => pats::get(ctx, req, id).await.map(Into::into),
        (Route::Pat(id), Method::Delete) => pats::revoke(ctx, req, id).await,
        (Route::RotatePat(id), Method::Post) => pats::rotate(ctx, req, id).await,
        _ => Err(Error::MethodNotAllowed(allow)),
    }
}

/// Parses `body` as every JSON request body of the management and admin APIs (fuzzing and
/// property tests: no input may panic).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub fn parse_all_json_bodies(body: &[u8]) {
    let _ = crate::http::parse_json_object::<pats::CreatePat>(body);
    admin::parse_bodies(body);
}

/// RFC 3339 in UTC with seconds precision, e.g. `2026-11-23T22:00:00Z`.
pub fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).map_or_else(
        || ts.to_string(),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests;
