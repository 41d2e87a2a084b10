//! The service: routing and handlers over the storage traits. No `worker` types here; the
//! runtime layer builds a [`Ctx`], calls [`handle`], sends the response and runs the
//! [`Deferred`] work after it (`wait_until`).

mod admin;
mod client_auth;
mod decision;
mod discovery;
pub mod events;
mod exchange;
pub mod expiry;
pub mod gate;
mod introspect;
mod isolate;
mod jwt_tokens;
mod leaks;
mod lifecycle;
mod page;
mod pats;
mod ratelimit;
mod reference;
mod reuse;
mod revoke;
mod rotation;
mod routes_admin;
pub mod sampling;
pub mod settings;
mod token_endpoint;
mod user;
pub mod webhooks;

pub use isolate::IsolateState;
pub use leaks::{HEADERS as LEAK_REPORT_HEADERS, PATH as LEAK_REPORT_PATH};
pub use page::{is_page_path, PageConfig};

use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::jose::UserAuthConfig;
use crate::model::Grant;
use crate::store::Backend;
use crate::token::TokenHash;

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
    /// During a D1 outage, cached client and resource records are used for at most this long past
    /// `registry_cache_secs` (`REGISTRY_MAX_STALE_SECONDS`); after that the answer is 503.
    pub registry_max_stale_secs: i64,
    /// Longest life of a grant in KV (`GRANT_CACHE_SECONDS`), whatever the token's expiry: the
    /// bound after which a lost KV delete can no longer keep a revoked token alive.
    pub grant_cache_secs: i64,
    /// Lifetime of a JWT exchanged for a PAT (`EXCHANGED_JWT_SECONDS`, at most one hour).
    pub exchanged_jwt_secs: i64,
    pub user_auth: UserAuthConfig,
    /// The admin API's bearer secret; `None` switches the admin API off.
    pub admin_token: Option<crate::secret::ClientSecret>,
    /// Keys for JWT access tokens and signed introspection responses; `None`: no JWTs issued.
    pub signing_keys: Option<std::rc::Rc<crate::jose::SigningKeys>>,
    /// The token page (`SESSION_SECRET`, `DEV_SIGN_IN`).
    pub page: PageConfig,
    /// Leak reports and rotation with grace (issue 11).
    pub lifecycle: LifecycleConfig,
    /// Signed webhooks (README "Webhooks").
    pub webhooks: webhooks::WebhookConfig,
}

/// Token lifecycle settings (see README "Configuration").
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    /// `SECRET_SCANNING_KEYS`: inline public keys of the secret scanning partner (GitHub's key
    /// document). Checked before the fetched ones.
    pub scanning_keys: Option<std::rc::Rc<crate::secret_scanning::KeySet>>,
    /// `SECRET_SCANNING_KEYS_URL`: where the partner publishes its keys, fetched and cached per
    /// isolate like the user JWKS.
    pub scanning_keys_url: Option<String>,
    /// `ROTATION_MAX_GRACE_SECONDS`: the longest grace a rotation may give the old token (at most
    /// [`MAX_ROTATION_GRACE_SECS`]).
    pub max_grace_secs: i64,
}

/// The longest rotation grace, whatever the configuration: 7 days.
pub const MAX_ROTATION_GRACE_SECS: i64 = 7 * 86_400;

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            scanning_keys: None,
            scanning_keys_url: None,
            max_grace_secs: MAX_ROTATION_GRACE_SECS,
        }
    }
}

impl Config {
    /// The defaults of every setting (README "Configuration"), for host tools and benchmarks: no
    /// user JWT verification keys, no admin API, no signing keys.
    pub fn for_tools(issuer: &str) -> Self {
        Config {
            issuer: issuer.to_owned(),
            pat_max_days: 366,
            last_used_coalesce_secs: 30,
            registry_cache_secs: 30,
            registry_max_stale_secs: DEFAULT_REGISTRY_MAX_STALE_SECS,
            grant_cache_secs: DEFAULT_GRANT_CACHE_SECS,
            exchanged_jwt_secs: DEFAULT_EXCHANGED_JWT_SECS,
            user_auth: UserAuthConfig {
                issuer: String::new(),
                audience: String::new(),
                hs256_secret: None,
                jwks: None,
                jwks_url: None,
            },
            admin_token: None,
            signing_keys: None,
            page: PageConfig::default(),
            lifecycle: LifecycleConfig::default(),
            webhooks: webhooks::WebhookConfig::default(),
        }
    }
}

/// Default of [`Config::registry_max_stale_secs`].
pub const DEFAULT_REGISTRY_MAX_STALE_SECS: i64 = 300;
/// Default of [`Config::grant_cache_secs`].
pub const DEFAULT_GRANT_CACHE_SECS: i64 = 3600;
/// Default and longest [`Config::exchanged_jwt_secs`].
pub const DEFAULT_EXCHANGED_JWT_SECS: i64 = 900;
pub const MAX_EXCHANGED_JWT_SECS: i64 = 3600;
/// Delay of the second KV delete after a revocation or rotation.
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
    /// Rewrite a stale KV grant with what D1 said (fresh for [`Config::grant_cache_secs`]).
    CacheGrant { hash: TokenHash, grant: Box<Grant> },
    /// Delete grants from KV after `after_secs`, retrying a failed delete a few times. Revocation
    /// and rotation send the hashes whose delete failed with `after_secs: 0`, and every hash they
    /// retired again after [`REVOCATION_RECHECK_SECS`]: a repair that read D1 just before the
    /// change, or a concurrent rotation's KV write, may land in KV after the first delete.
    PurgeGrants {
        hashes: Vec<TokenHash>,
        after_secs: u64,
    },
    /// Write reuse markers (see [`reuse`]) after `after_secs`, retrying a failed write a few
    /// times (and deleting the entry if that keeps failing: never leave a live grant). Rotation
    /// sends every marker it wrote again after [`REVOCATION_RECHECK_SECS`], for the same reason
    /// as [`Deferred::PurgeGrants`]. A marker never makes a token active, so writing one late
    /// is always safe.
    PutMarkers {
        markers: Vec<(TokenHash, Box<Grant>)>,
        after_secs: u64,
    },
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
        leaks::PATH => (Route::LeakReport, "POST"),
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
    if page::is_page_path(&req.path) {
        if page::on_issuer_host(ctx.cfg, req) {
            return Ok(page::handle(ctx, req).await);
        }
        if let Some(r) = page::not_on_this_host(ctx.cfg) {
            return Ok(r.into());
        }
    }
    let (route, allow) = route(&req.path).ok_or(Error::NotFound)?;
    let m = req.method;
    match (route, m) {
        (Route::Discovery, Method::Get) => discovery::metadata(ctx).await.map(Into::into),
        (Route::Jwks, Method::Get) => Ok(jwt_tokens::jwks(ctx).into()),
        (Route::Token, Method::Post) => token_endpoint::serve(ctx, req).await.map(Into::into),
        (Route::Admin(rest), _) => admin::handle(ctx, req, rest).await.map(Into::into),
        (Route::Introspect, Method::Post) => introspect::serve(ctx, req).await,
        (Route::Revoke, Method::Post) => revoke::serve(ctx, req).await,
        (Route::Pats, Method::Get) => pats::list(ctx, req).await.map(Into::into),
        (Route::Pats, Method::Post) => pats::create(ctx, req).await.map(Into::into),
        (Route::Pat(id), Method::Get) => pats::get(ctx, req, id).await.map(Into::into),
        (Route::Pat(id), Method::Delete) => pats::revoke(ctx, req, id).await,
        (Route::RotatePat(id), Method::Post) => pats::rotate(ctx, req, id).await,
        (Route::RotateSelf, Method::Post) => lifecycle::rotate_self(ctx, req).await,
        (Route::LeakReport, Method::Post) => leaks::handle(ctx, req).await,
        _ => Err(Error::MethodNotAllowed(allow)),
    }
}

/// Parses `body` as every JSON request body of the management and admin APIs (fuzzing and
/// property tests: no input may panic).
#[cfg(test)]
#[doc(hidden)]
pub fn parse_all_json_bodies(body: &[u8]) {
    let _ = crate::http::parse_json_object::<pats::CreatePat>(body);
    admin::parse_bodies(body);
    webhooks::parse_bodies(body);
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
