//! A request on a gate route: its bearer token (RFC 6750 section 2.1 only) through the one token
//! decision for the route's API resource, the method's rule and its scopes, then either a
//! challenge or the forward with the caller's identity (headers and a signed assertion).

use super::answer::{challenge, finish, Forward, GateAnswer, GateRequest, Problem};
use crate::app::client_auth::load_resource;
use crate::app::ctx::{Ctx, Deferred, Outcome};
use crate::app::ratelimit;
use crate::app::tokens::{self, Active, Decision};
use crate::error::Error;
use crate::events::Event;
use crate::gate::forward::{header_value, upstream_url};
use crate::gate::route::{GateRoute, MethodRule};
use crate::http::Response;
use crate::oauth::authorize::ResourceIndicator;
use crate::store::{Backend, Limit};
use crate::token::random_id;
use crate::usage::{Outcome as UseOutcome, UseKey, Via};
use std::borrow::Cow;

/// Lifetime of an `X-Patgate-Assertion`.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// RFC 6750 3 / the MCP specification: a 401 names the scopes the request needs (the
/// challenge's `scope` parameter, empty when the method needs none or is not allowed).
fn scope_param(r: &GateRoute, method: &str) -> String {
    match r.rule_for(method) {
        MethodRule::Scopes(s) if !s.is_empty() => {
            format!(", scope=\"{}\"", crate::scopes::join(s))
        }
        _ => String::new(),
    }
}

/// 405: no rule of the route allows the method (`allow`: the methods some rule allows).
fn not_allowed(allow: &str) -> Response {
    finish(
        Response::json(
            405,
            &Problem {
                error: "method_not_allowed",
                error_description: "no rule of this route allows the method",
            },
        )
        .with_header("allow", allow),
    )
}

pub(super) async fn check<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &GateRequest<'_>,
    r: &GateRoute,
) -> Result<GateAnswer, Error> {
    // An IP this isolate found over the failed-authentication limit is refused outright, like
    // at the OAuth endpoints (no storage read; even a valid token waits for the period).
    ratelimit::check_blocked(ctx, Limit::FailedAuthPerIp, req.client_ip)?;
    let metadata_url = format!("{}://{}{}", req.scheme, req.authority, r.metadata_path());
    let scope_param = scope_param(r, req.method);
    let invalid = |cause: &str| {
        let resp = challenge(
            401,
            "invalid_token",
            "the access token is invalid, expired or revoked",
            &format!(", error=\"invalid_token\"{scope_param}"),
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
                &scope_param,
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
    let mut decided = tokens::decide(ctx, &resource, token).await?;
    let used = decided.used.take();
    let count = |outcome, deferred: &mut _| counted(ctx, used.as_deref(), &r.id, outcome, deferred);
    let respond = |resp: Response, deferred: Vec<Deferred>| {
        GateAnswer::Respond(Outcome {
            response: resp,
            deferred,
        })
    };
    let Decision::Active(active) = decided.decision else {
        count(UseOutcome::NoScope, &mut decided.deferred);
        if let Err(limited) = failed_authentication(ctx, req).await {
            return Ok(respond(finish(limited.into_response()), decided.deferred));
        }
        let resp = invalid("inactive token");
        return Ok(respond(resp, decided.deferred));
    };
    if !audience_is(req, r, &active) {
        let resp = invalid("the token's audience is another resource");
        return Ok(respond(resp, decided.deferred));
    }
    let required = match r.rule_for(req.method) {
        MethodRule::Scopes(s) => s,
        MethodRule::NotAllowed(allow) => {
            let resp = not_allowed(&allow);
            count(UseOutcome::MethodNotAllowed, &mut decided.deferred);
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
        count(UseOutcome::InsufficientScope, &mut decided.deferred);
        return Ok(respond(resp, decided.deferred));
    }
    count(UseOutcome::Active, &mut decided.deferred);

    Ok(GateAnswer::Forward(identity(
        ctx,
        req,
        r,
        &resource.id,
        &active,
        decided.deferred,
    )?))
}

/// Counts this use of live token `used` against route `route`, with what the gate answered.
fn counted<B: Backend>(
    ctx: &Ctx<'_, B>,
    used: Option<&str>,
    route: &str,
    outcome: UseOutcome,
    deferred: &mut Vec<Deferred>,
) {
    if let Some(id) = used {
        let key = UseKey {
            via: Via::Gate,
            name: route,
            outcome,
        };
        tokens::note_use(ctx, id, &key, deferred);
    }
}

/// RFC 8707: a token issued for one resource (an app's access token) is refused by every other,
/// even one of the same API resource. Tokens without an audience pass.
fn audience_is(req: &GateRequest<'_>, r: &GateRoute, active: &Active) -> bool {
    let Some(aud) = &active.aud else {
        return true;
    };
    let own = format!("{}://{}{}", req.scheme, req.authority, r.path_prefix);
    ResourceIndicator::parse(Cow::Borrowed(aud.as_str())).is_ok_and(|i| i.names(&own))
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
