//! What the gate reads of a request and what it answers: its own answers (RFC 6750 challenges
//! with RFC 9728 pointers, CORS preflights, a small JSON body, never cached) or a request to
//! forward.

use crate::app::ctx::{Ctx, Deferred, Outcome};
use crate::error::REALM;
use crate::events::Event;
use crate::gate::cors::{self, CorsRequest, Headers as CorsHeaders};
use crate::gate::route::GateRoute;
use crate::http::Response;
use serde::Serialize;

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

/// The upstream could not be reached: 502 `{"error":"bad_gateway"}`.
pub fn bad_gateway() -> Response {
    let mut r = Response::empty(502);
    r.headers.push(("content-type", "application/json".into()));
    r.body = br#"{"error":"bad_gateway"}"#.to_vec();
    finish(r)
}

pub(super) fn finish(mut r: Response) -> Response {
    if r.header("cache-control").is_none() {
        r.headers.push(("cache-control", "no-store".into()));
    }
    r
}

/// The answer to a CORS preflight on a route with a policy: `204` with the CORS headers, or
/// `403` without them (the browser then sends nothing). Never forwarded, no token needed.
pub(super) fn preflight<B>(
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

#[derive(Serialize)]
pub(super) struct Problem<'a> {
    pub error: &'a str,
    pub error_description: &'a str,
}

/// A bearer challenge (RFC 6750 section 3, RFC 9728 section 5.1) with a small JSON body.
pub(super) fn challenge(
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
