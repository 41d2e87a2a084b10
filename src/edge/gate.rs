//! The gate's runtime half: requests to hosts other than the issuer's arrive here unread
//! (`scripts/worker-shim.js`). The core (`app::gate`) decides; this module only moves bytes.
//!
//! Bodies are never read or copied: the incoming request's `ReadableStream` becomes the body of
//! the upstream request, and the upstream's `web_sys::Response` is returned as it is, so bodies
//! of any size stream through (no `worker::Request::stream()`, whose chunks cross into wasm, no
//! identity `TransformStream`, no `clone()`). Requests that match no route are read like the
//! shim reads them (small bodies only) and served by patgate's own endpoints.

use super::backend::EdgeBackend;
use super::config;
use super::deferred::run_deferred;
use super::isolate::{write_events, ISOLATE};
use super::js::now_secs;
use super::response::{error_response, respond};
use super::settle::Settled;
use crate::app::gate::{self as core_gate, GateAnswer, GateRequest};
use crate::app::{self, Deferred};
use crate::error::Error;
use crate::events::Event;
use crate::gate::cors::CorsRequest;
use crate::gate::forward::forwardable_headers;
use crate::http;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast as _, JsValue};
use worker::worker_sys::web_sys;
use worker::{Context, Env};

/// Entry for requests on a host other than the issuer's (called by the shim, body unread).
/// The answer, or `undefined` when no gate route matches (the shim then reads the body like for
/// any of patgate's own endpoints: one body reader, one set of limits, and calls `handle`); either
/// directly or as a promise ([`super::executor::run`]: a garbage token is refused synchronously).
#[wasm_bindgen]
pub fn handle_gate(req: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
    let ctx = Context::new(ctx);
    super::executor::run(async move {
        Ok(serve_gate(&req, &env, &ctx)
            .await?
            .map_or(JsValue::UNDEFINED, JsValue::from))
    })
}

/// `scheme` and `host[:port]` of a serialized URL.
pub(super) fn scheme_and_authority(url: &str) -> (&str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (scheme, &rest[..end])
}

fn defer(env: &Env, ctx: &Context, work: Vec<Deferred>) {
    if !work.is_empty() {
        let env = env.clone();
        ctx.wait_until(async move { run_deferred(env, work).await });
    }
}

async fn serve_gate(
    req: &web_sys::Request,
    env: &Env,
    ctx: &Context,
) -> Result<Option<web_sys::Response>, JsValue> {
    let url = req.url();
    let (path, query) = http::split_url(&url);
    let cfg = match config::load(env) {
        Ok(c) => c,
        Err(e) => {
            return respond(error_response(Error::Internal(format!(
                "configuration: {e}"
            ))))
            .map(Some)
        }
    };
    let (scheme, authority) = scheme_and_authority(&url);
    let method = req.method();
    let headers = req.headers();
    let authorization = headers.get("authorization")?;
    let origin = headers.get("origin")?;
    let (cors_method, cors_headers) = if origin.is_some() && method == "OPTIONS" {
        (
            headers.get("access-control-request-method")?,
            headers.get("access-control-request-headers")?,
        )
    } else {
        (None, None)
    };
    let client_ip = headers
        .get("cf-connecting-ip")?
        .filter(|ip| !ip.is_empty() && ip.len() <= 64);
    let backend = EdgeBackend::for_request(env, req);
    let isolate = ISOLATE.with(Rc::clone);
    let actx = app::Ctx {
        cfg: &cfg,
        backend: &backend,
        isolate: &isolate,
        now: now_secs(),
    };
    let greq = GateRequest {
        method: &method,
        scheme,
        authority,
        path,
        query,
        authorization: authorization.as_deref(),
        cors: CorsRequest {
            origin: origin.as_deref(),
            request_method: cors_method.as_deref(),
            request_headers: cors_headers.as_deref(),
        },
        client_ip: client_ip.as_deref().unwrap_or("unknown"),
    };
    let answer = core_gate::gate(&actx, &greq).await;
    let events = isolate.take_events();
    write_events(&events);
    super::queue::fan_out_later(env, ctx, &cfg, &events);
    match answer {
        GateAnswer::NotGate => Ok(None),
        GateAnswer::Respond(outcome) => {
            defer(env, ctx, outcome.deferred);
            respond(outcome.response).map(Some)
        }
        GateAnswer::Forward(f) => {
            defer(env, ctx, f.deferred);
            match forward(req, &method, &headers, &f.url, f.identity).await {
                Ok(resp) => Ok(Some(match &f.cors {
                    Some(cors) => with_cors(resp, cors),
                    None => resp,
                })),
                Err(e) => {
                    write_events(&[Event::ErrorCause {
                        status: 502,
                        error: "bad_gateway",
                        cause: format!(
                            "gate: upstream fetch failed: {}",
                            e.as_string()
                                .or_else(|| js_sys::Error::from(e).message().as_string())
                                .unwrap_or_default()
                        ),
                    }]);
                    let mut answer = core_gate::bad_gateway();
                    answer.headers.extend(f.cors.unwrap_or_default());
                    respond(answer).map(Some)
                }
            }
        }
    }
}

/// The upstream's answer with the route's CORS headers: a new `Response` over the same body
/// stream (a fetched response's headers are immutable; the body is handed over, not read or
/// copied), its own `Access-Control-*` headers replaced. If that cannot be built, the upstream's
/// answer as it is: the browser then withholds it from the page, which is the safe side.
fn with_cors(resp: web_sys::Response, cors: &[(&'static str, String)]) -> web_sys::Response {
    let rebuilt = || -> Result<web_sys::Response, JsValue> {
        let headers = web_sys::Headers::new_with_headers(&resp.headers())?;
        let mut names = Vec::new();
        if let Some(iter) = js_sys::try_iter(&headers)? {
            for entry in iter {
                let entry: js_sys::Array = entry?.unchecked_into();
                if let Some(k) = entry.get(0).as_string() {
                    if crate::gate::cors::is_cors_response_header(&k) {
                        names.push(k);
                    }
                }
            }
        }
        for k in names {
            headers.delete(&k)?;
        }
        for (k, v) in cors {
            if *k == "vary" {
                headers.append(k, v)?;
            } else {
                headers.set(k, v)?;
            }
        }
        let init = web_sys::ResponseInit::new();
        init.set_status(resp.status());
        init.set_status_text(&resp.status_text());
        init.set_headers(&headers);
        web_sys::Response::new_with_opt_readable_stream_and_init(resp.body().as_ref(), &init)
    };
    match rebuilt() {
        Ok(r) => r,
        Err(e) => {
            super::isolate::write_events(&[Event::Warning {
                message: format!(
                    "gate: CORS headers not added to the upstream's answer: {}",
                    e.as_string()
                        .or_else(|| js_sys::Error::from(e).message().as_string())
                        .unwrap_or_default()
                ),
            }]);
            resp
        }
    }
}

/// Sends the request upstream: same method, the incoming body stream, filtered headers plus
/// the identity, redirects not followed. Returns the upstream response untouched.
async fn forward(
    req: &web_sys::Request,
    method: &str,
    incoming: &web_sys::Headers,
    url: &str,
    identity: Vec<(&'static str, String)>,
) -> Result<web_sys::Response, JsValue> {
    let mut pairs = Vec::new();
    if let Some(iter) = js_sys::try_iter(incoming)? {
        for entry in iter {
            let entry: js_sys::Array = entry?.unchecked_into();
            if let (Some(k), Some(v)) = (entry.get(0).as_string(), entry.get(1).as_string()) {
                pairs.push((k, v));
            }
        }
    }
    let out_headers = web_sys::Headers::new()?;
    for (k, v) in forwardable_headers(&pairs) {
        out_headers.append(&k, &v)?;
    }
    for (k, v) in identity {
        out_headers.set(k, &v)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(&out_headers);
    // A new Request follows redirects by default: the caller gets the upstream's 3xx instead.
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if method != "GET" && method != "HEAD" {
        if let Some(body) = req.body() {
            init.set_body(&body);
        }
    }
    let out = web_sys::Request::new_with_str_and_init(url, &init)?;
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let resp = Settled::new(global.fetch_with_request(&out)).await?;
    resp.dyn_into::<web_sys::Response>()
}
