//! The edge gate (README "Protect an API"): on a host other than the issuer's, a request whose
//! path falls under a gate route is checked (token, method, scopes) with the same decision as
//! introspection, then either answered here (RFC 6750 / RFC 9728 challenges) or handed to the
//! runtime layer to forward, with the caller's identity. Also serves each route's RFC 9728
//! protected resource metadata.
//!
//! Sans-IO towards the upstream: this module says what to forward; the runtime does the fetch
//! and passes the body streams through untouched.

use super::client_auth::load_resource;
use super::decision::{self, Active, Decision};
use super::events::Event;
use super::isolate::Lookup;
use super::{ratelimit, Ctx, Deferred, Outcome};
use crate::error::{Error, REALM};
use crate::gate::cors::{self, CorsRequest, Headers as CorsHeaders};
use crate::gate::forward::{header_value, upstream_url};
use crate::gate::route::{self, GateRoute, MethodRule};
use crate::http::Response;
use crate::store::{Backend, Limit};
use crate::token::random_id;
use serde::Serialize;
use std::rc::Rc;

/// Lifetime of an `X-Patgate-Assertion`.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// What the gate needs of a request (no body: it is never read).
#[derive(Debug, Clone, Copy)]
pub struct GateRequest<'a> {
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// `host[:port]` of the request URL.
    pub authority: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// `Origin` and the preflight headers (for routes with a CORS policy).
    pub cors: CorsRequest<'a>,
    /// `CF-Connecting-IP` (or `unknown`): refused requests are rate limited per IP.
    pub client_ip: &'a str,
}

/// The gate's answer.
#[derive(Debug)]
pub enum GateAnswer {
    /// No route for this request: patgate's own endpoints answer it.
    NotGate,
    /// Answered here (challenge, metadata, storage failure); never reaches the upstream.
    Respond(Outcome),
    /// Send upstream.
    Forward(Forward),
}

/// A request to forward: the URL, the identity headers to add (after the runtime removed the
/// headers [`crate::gate::forward::forwardable_headers`] drops), and work for after the response.
#[derive(Debug)]
pub struct Forward {
    pub url: String,
    pub identity: Vec<(&'static str, String)>,
    pub deferred: Vec<Deferred>,
    /// For a route with a CORS policy: the headers to set on the upstream's answer, replacing
    /// its own `Access-Control-*` headers ([`crate::gate::cors::is_cors_response_header`]);
    /// `None`: the upstream's answer is returned untouched.
    pub cors: Option<CorsHeaders>,
}

/// Loads the route table through the isolate cache (one value for all routes; the registry
/// tables' policy: a failed refresh serves the cached table within `registry_max_stale_secs`).
pub async fn load_routes<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Rc<Vec<GateRoute>>, Error> {
    let (c, now) = (ctx.cfg, ctx.now);
    let lookup = ctx
        .isolate
        .lookup_routes(now, c.registry_cache_secs, c.registry_max_stale_secs);
    match lookup {
        Lookup::Fresh(Some(t)) => Ok(t),
        Lookup::Stale(Some(old)) => match ctx.backend.list_routes().await {
            Ok(rows) => {
                let t = Rc::new(rows);
                ctx.isolate.store_routes(now, t.clone());
                Ok(t)
            }
            Err(_) => Ok(old),
        },
        _ => {
            let t = Rc::new(ctx.backend.list_routes().await?);
            ctx.isolate.store_routes(now, t.clone());
            Ok(t)
        }
    }
}

/// Whether `req` is gate traffic, and if so the answer or what to forward.
pub async fn gate<B: Backend>(ctx: &Ctx<'_, B>, req: &GateRequest<'_>) -> GateAnswer {
    if route::is_issuer_host(&ctx.cfg.issuer, req.authority) {
        return GateAnswer::NotGate;
    }
    let routes = match load_routes(ctx).await {
        Ok(r) => r,
        Err(e) => {
            ctx.isolate.error(&e);
            return GateAnswer::Respond(finish(e.into_response()).into());
        }
    };
    if let Some(suffix) = req.path.strip_prefix(METADATA_PATH) {
        if let Some(r) =
            route::find_by_metadata_suffix(&routes, &ctx.cfg.issuer, req.authority, suffix)
        {
            let resp = match metadata(ctx, req, r).await {
                Ok(r) => r,
                Err(e) => {
                    ctx.isolate.error(&e);
                    e.into_response()
                }
            };
            return GateAnswer::Respond(finish(resp).into());
        }
    }
    let Some(r) = route::find(&routes, &ctx.cfg.issuer, req.authority, req.path) else {
        return GateAnswer::NotGate;
    };
    if let Some(policy) = &r.cors {
        // Before any token is looked at: a browser's preflight never carries one.
        if cors::is_preflight(req.method, &req.cors) {
            return GateAnswer::Respond(finish(preflight(ctx, r, policy, &req.cors)).into());
        }
    }
    let answer = match check(ctx, req, r).await {
        Ok(a) => a,
        Err(e) => {
            ctx.isolate.error(&e);
            GateAnswer::Respond(finish(e.into_response()).into())
        }
    };
    let Some(policy) = &r.cors else {
        return answer;
    };
    match answer {
        GateAnswer::Respond(mut o) => {
            o.response
                .headers
                .extend(policy.actual(req.cors.origin, true));
            GateAnswer::Respond(o)
        }
        GateAnswer::Forward(mut f) => {
            f.cors = Some(policy.actual(req.cors.origin, false));
            GateAnswer::Forward(f)
        }
        GateAnswer::NotGate => GateAnswer::NotGate,
    }
}

/// The answer to a CORS preflight on a route with a policy: `204` with the CORS headers, or
/// `403` without them (the browser then sends nothing). Never forwarded, no token needed.
fn preflight<B>(
    ctx: &Ctx<'_, B>,
    r: &GateRoute,
    policy: &cors::Cors,
    req: &CorsRequest<'_>,
) -> Response {
    match policy.preflight(req) {
        Ok(headers) => {
            let mut resp = Response::empty(204);
            resp.headers.extend(headers);
            resp
        }
        Err(refused) => {
            let description = refused.description();
            ctx.isolate.emit(Event::ErrorCause {
                status: 403,
                error: "cors_refused",
                cause: format!("gate route {}: preflight refused: {description}", r.id),
            });
            Response::json(
                403,
                &Problem {
                    error: "cors_refused",
                    error_description: &description,
                },
            )
            .with_header(
                "vary",
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            )
        }
    }
}

/// The upstream could not be reached: 502 `{"error":"bad_gateway"}`.
pub fn bad_gateway() -> Response {
    let mut r = Response::empty(502);
    r.headers.push(("content-type", "application/json".into()));
    r.body = br#"{"error":"bad_gateway"}"#.to_vec();
    finish(r)
}

fn finish(mut r: Response) -> Response {
    if r.header("cache-control").is_none() {
        r.headers.push(("cache-control", "no-store".into()));
    }
    r
}

#[derive(Serialize)]
struct Problem<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// A bearer challenge (RFC 6750 section 3, RFC 9728 section 5.1) with a small JSON body.
fn challenge(
    status: u16,
    error: &str,
    description: &str,
    attrs: &str,
    metadata_url: &str,
) -> Response {
    let www = format!("Bearer realm=\"{REALM}\"{attrs}, resource_metadata=\"{metadata_url}\"");
    finish(
        Response::json(
            status,
            &Problem {
                error,
                error_description: description,
            },
        )
        .with_header("www-authenticate", www),
    )
}

fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn check<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &GateRequest<'_>,
    r: &GateRoute,
) -> Result<GateAnswer, Error> {
    // An IP this isolate found over the failed-authentication limit is refused outright, like
    // at the OAuth endpoints (no storage read; even a valid token waits for the period).
    ratelimit::check_blocked(ctx, Limit::FailedAuthPerIp, req.client_ip)?;
    let metadata_url = format!("{}://{}{}", req.scheme, req.authority, r.metadata_path());
    let invalid = |cause: &str| {
        let resp = challenge(
            401,
            "invalid_token",
            "the access token is invalid, expired or revoked",
            ", error=\"invalid_token\"",
            &metadata_url,
        );
        ctx.isolate.emit(Event::ErrorCause {
            status: 401,
            error: "invalid_token",
            cause: format!("gate route {}: {cause}", r.id),
        });
        resp
    };
    // RFC 6750 section 2.1 only: a token in the query or the body is not looked at.
    let Some(token) = bearer(req.authorization) else {
        failed_authentication(ctx, req).await?;
        return Ok(GateAnswer::Respond(
            challenge(
                401,
                "invalid_request",
                "a bearer token is required (Authorization: Bearer)",
                "",
                &metadata_url,
            )
            .into(),
        ));
    };
    let resource = match load_resource(ctx, &r.resource).await? {
        Some(res) if res.enabled => res,
        _ => {
            let resp = invalid("the route's API resource is missing or disabled");
            return Ok(GateAnswer::Respond(resp.into()));
        }
    };
    let decided = decision::decide(ctx, &resource, token).await?;
    let respond = |resp: Response, deferred: Vec<Deferred>| {
        GateAnswer::Respond(Outcome {
            response: resp,
            deferred,
        })
    };
    let Decision::Active(active) = decided.decision else {
        if let Err(limited) = failed_authentication(ctx, req).await {
            return Ok(respond(finish(limited.into_response()), decided.deferred));
        }
        let resp = invalid("inactive token");
        return Ok(respond(resp, decided.deferred));
    };
    let required = match r.rule_for(req.method) {
        MethodRule::Scopes(s) => s,
        MethodRule::NotAllowed(allow) => {
            let resp = finish(
                Response::json(
                    405,
                    &Problem {
                        error: "method_not_allowed",
                        error_description: "no rule of this route allows the method",
                    },
                )
                .with_header("allow", allow),
            );
            return Ok(respond(resp, decided.deferred));
        }
    };
    if !required.iter().all(|s| active.scopes.contains(s)) {
        let scope = crate::scopes::join(required);
        let resp = challenge(
            403,
            "insufficient_scope",
            "the access token lacks a scope this request requires",
            &format!(", error=\"insufficient_scope\", scope=\"{scope}\""),
            &metadata_url,
        );
        return Ok(respond(resp, decided.deferred));
    }

    Ok(GateAnswer::Forward(identity(
        ctx,
        req,
        r,
        &resource.id,
        &active,
        decided.deferred,
    )?))
}

/// A request refused for its token (missing, garbage, unknown, revoked, expired): counted per IP
/// against the failed-authentication limit shared with the OAuth endpoints. `Err`: 429.
async fn failed_authentication<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &GateRequest<'_>,
) -> Result<(), Error> {
    ratelimit::count(ctx, Limit::FailedAuthPerIp, req.client_ip).await
}

/// The forward of an accepted request: URL, identity headers and the signed assertion.
fn identity<B>(
    ctx: &Ctx<'_, B>,
    req: &GateRequest<'_>,
    r: &GateRoute,
    resource_id: &str,
    active: &Active,
    deferred: Vec<Deferred>,
) -> Result<Forward, Error> {
    let scope = active.scope();
    let mut identity = vec![
        ("x-patgate-subject", header_value(&active.sub)),
        ("x-patgate-client-id", header_value(&active.client_id)),
        ("x-patgate-scope", header_value(&scope)),
        ("x-patgate-token-id", header_value(&active.jti)),
    ];
    if let Some(keys) = &ctx.cfg.signing_keys {
        let jti = random_id().map_err(|e| Error::Unavailable(format!("randomness: {e}")))?;
        let claims = crate::jose::GateAssertionClaims {
            aud: resource_id.to_owned(),
            client_id: active.client_id.clone(),
            iss: ctx.cfg.issuer.clone(),
            jti,
            scope: active.scopes.clone(),
            sub: active.sub.clone(),
        };
        match keys.sign_gate_assertion(&claims, ctx.now, ctx.now + ASSERTION_LIFETIME_SECS) {
            Ok(jwt) => identity.push(("x-patgate-assertion", jwt)),
            Err(e) => ctx.isolate.warn(format!("gate assertion not signed: {e}")),
        }
    }
    Ok(Forward {
        url: upstream_url(r, req.path, req.query),
        identity,
        deferred,
        cors: None,
    })
}

/// RFC 9728 section 3.2: the protected resource metadata of a route.
async fn metadata<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &GateRequest<'_>,
    r: &GateRoute,
) -> Result<Response, Error> {
    if req.method != "GET" && req.method != "HEAD" {
        return Err(Error::MethodNotAllowed("GET"));
    }
    let scopes = load_resource(ctx, &r.resource)
        .await?
        .map(|res| res.scopes.clone())
        .unwrap_or_default();
    let doc = serde_json::json!({
        "resource": format!("{}://{}{}", req.scheme, req.authority, r.path_prefix),
        "authorization_servers": [ctx.cfg.issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
    });
    Ok(Response::json(200, &doc).with_header("cache-control", "public, max-age=300"))
}

#[cfg(test)]
impl GateAnswer {
    /// The response, for tests of answers given here.
    pub fn response(&self) -> Option<&Response> {
        match self {
            GateAnswer::Respond(o) => Some(&o.response),
            _ => None,
        }
    }
}
