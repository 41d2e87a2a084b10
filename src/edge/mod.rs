//! The runtime layer: the only module that uses the `worker` crate. Here are its entry points
//! (a request, the Cron Trigger; the gate's and the queue consumer's are in `gate.rs` and
//! `queue.rs`): a Workers request becomes a core [`http::Request`] (`request.rs`), runs
//! [`app::handle`], its response goes back (`response.rs`), its events to the log
//! (`isolate.rs`) and the webhook queue (`queue.rs`), its deferred work to `wait_until`
//! (`deferred.rs`); `/_dev/*` (local development and the benchmark) is `dev.rs`. The storage
//! traits are implemented per binding (`backend.rs` looks them up);
//! `js.rs` holds what every adapter uses. Nothing here is used back by those modules.

mod backend;
mod config;
mod counters;
mod d1;
mod deferred;
mod dev;
mod dev_faults;
mod durable_object;
mod executor;
mod feed_cache;
mod fetch;
mod gate;
mod isolate;
mod js;
mod kv;
mod kv_namespace;
mod last_used;
mod queue;
mod ratelimit;
mod request;
mod response;
mod settle;

use crate::app;
use crate::error::Error;
use crate::http;
use backend::EdgeBackend;
use deferred::run_deferred;
use isolate::{warn, write_events, ISOLATE};
use js::now_ms;
use request::to_core_request;
use response::{error_response, respond};
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast as _, JsValue};
use worker::worker_sys::web_sys;
use worker::{event, Context, Env};

/// The panic hook: a Rust panic is about to trap this wasm instance (`panic = "abort"`). Besides
/// the message in the log, the request being polled is failed now, with a
/// `WebAssembly.RuntimeError` (else the trap in its wake-up would leave it unanswered), and the
/// shim is told that this instance is poisoned (`scripts/worker-shim.js`, "Wasm traps").
#[event(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let message = info.to_string();
        executor::fail_current(&message);
        let global = js_sys::global();
        if let Ok(poisoned) =
            js_sys::Reflect::get(&global, &JsValue::from_str("__patgate_poisoned"))
        {
            if let Ok(poisoned) = poisoned.dyn_into::<js_sys::Function>() {
                let _ = poisoned.call1(&JsValue::UNDEFINED, &JsValue::from_str(&message));
            }
        }
    }));
}

/// The request entry point, called by `scripts/worker-shim.js` with the body already read in JS.
///
/// `body_problem` is set by the shim when it did not deliver a body: `"too_large"` (declared or
/// read past the endpoint's limit, [`http::body_limit`]; the rest was drained or cancelled) or
/// `"unreadable"` (the body stream failed, e.g. malformed chunked encoding). Either is answered
/// here, through the one error mapping, without running the handler.
///
/// The request future runs on [`executor::run`]: requests that need no I/O (a garbage token, a
/// token this isolate knows is inactive, most errors) complete in its first poll and return a
/// `Response` synchronously; the others return a `Promise`, and each wake-up polls the future
/// right away (no `queueMicrotask` round per await).
#[wasm_bindgen]
pub fn handle(
    req: web_sys::Request,
    body: Option<Vec<u8>>,
    env: Env,
    ctx: worker::worker_sys::Context,
    body_problem: Option<String>,
) -> JsValue {
    let ctx = Context::new(ctx);
    executor::run(async move {
        let resp = match serve(&req, body, body_problem.as_deref(), &env, &ctx).await {
            Ok(r) => r,
            Err(e) => error_response(Error::Internal(format!("{e:?}"))),
        };
        respond(resp).map(JsValue::from)
    })
}

/// The Cron Trigger entry point (wrangler.toml `[triggers]`), called by the shim's `scheduled`: the
/// expiry scan ([`app::tokens::expiry_scan`]), the clean-up of unused dynamic client
/// registrations ([`app::clients::expire_unused`]) and of ended authorization state
/// ([`app::authz_cleanup::clean_ended`]), then the usage rows past retention
/// ([`app::tokens::prune_usage`]) and the webhook delivery log's
/// ([`app::webhooks::prune_deliveries`]); a failure of one clean-up is logged and does not stop
/// the others. Its events are written as log lines like a request's.
#[wasm_bindgen]
pub fn scheduled(env: Env) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let cfg =
            config::load(&env).map_err(|e| JsValue::from_str(&format!("configuration: {e}")))?;
        let backend = EdgeBackend::new(&env);
        let isolate = ISOLATE.with(Rc::clone);
        let now_ms = now_ms();
        let actx = app::Ctx {
            cfg: &cfg,
            backend: &backend,
            isolate: &isolate,
            now: now_ms / 1000,
            now_ms,
        };
        let result = app::tokens::expiry_scan(&actx).await;
        if let Err(e) = app::clients::expire_unused(&actx).await {
            warn(format!(
                "expiry of unused client registrations failed: {e:?}"
            ));
        }
        // Its failures are warnings among the events written below.
        app::authz_cleanup::clean_ended(&actx).await;
        let events = isolate.take_events();
        write_events(&events);
        let out = queue::fan_out_now(&env, &cfg, &events).await;
        // Notices whose deliveries were not queued are released for the next scan.
        app::tokens::release_unqueued_notices(&actx, &events, &out.not_queued).await;
        write_events(&isolate.take_events());
        if let Err(e) = app::tokens::prune_usage(&actx).await {
            warn(format!("usage pruning failed (next hour again): {e:?}"));
        }
        if let Err(e) = app::webhooks::prune_deliveries(&cfg, &backend, actx.now).await {
            warn(format!(
                "delivery log pruning failed (next hour again): {}",
                e.0
            ));
        }
        match result {
            Ok(n) => Ok(JsValue::from_f64(n as f64)),
            Err(e) => {
                warn(format!("expiry scan failed: {e:?}"));
                Err(JsValue::from_str("expiry scan failed"))
            }
        }
    })
}

/// Works on the raw `web_sys::Request`: workers-rs's own `Request` reads `request.cf` on every
/// request, which the profile showed as ~5% of the isolate's CPU on the introspection path.
async fn serve(
    req: &web_sys::Request,
    body: Option<Vec<u8>>,
    body_problem: Option<&str>,
    env: &Env,
    ctx: &Context,
) -> Result<http::Response, JsValue> {
    let url = req.url();
    let (path, query) = http::split_url(&url);
    if path.starts_with("/_dev/") {
        let (_, authority) = gate::scheme_and_authority(&url);
        if let Some(r) = dev::serve(env, &req.method(), authority, path, query, body.clone()).await
        {
            return Ok(r);
        }
    }
    let cfg = match config::load(env) {
        Ok(c) => c,
        Err(e) => {
            return Ok(error_response(Error::Internal(format!(
                "configuration: {e}"
            ))))
        }
    };
    let isolate = ISOLATE.with(Rc::clone);
    let core_req = match to_core_request(req, path, query, body, body_problem)? {
        Ok(r) => r,
        Err(e) => {
            let r = app::refuse(&isolate, path, e);
            write_events(&isolate.take_events());
            return Ok(r);
        }
    };
    let backend = EdgeBackend::for_request(env, req);
    let now_ms = now_ms();
    let actx = app::Ctx {
        cfg: &cfg,
        backend: &backend,
        isolate: &isolate,
        now: now_ms / 1000,
        now_ms,
    };
    let outcome = app::handle(&actx, &core_req).await;
    let events = isolate.take_events();
    write_events(&events);
    queue::fan_out_later(env, ctx, &cfg, &events);
    if !outcome.deferred.is_empty() {
        let env = env.clone();
        ctx.wait_until(async move { run_deferred(env, outcome.deferred).await });
    }
    Ok(outcome.response)
}
