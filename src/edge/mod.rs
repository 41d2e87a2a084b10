//! The runtime layer: the only module that uses the `worker` crate. It turns a Workers request
//! into a core [`Request`], runs [`app::handle`], sends the response and hands deferred work to
//! `wait_until`.

mod backend;
mod config;
mod counters;
mod d1;
mod dev_faults;
mod durable_object;
mod executor;
mod feed_cache;
mod fetch;
mod gate;
mod kv;
mod last_used;
mod queue;
mod ratelimit;
mod settle;

use crate::app::events::Event;
use crate::app::{self, Deferred, IsolateState};
use crate::error::Error;
use crate::http::{self, Method};
use backend::EdgeBackend;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast as _, JsValue};
use worker::worker_sys::web_sys;
use worker::{event, Context, Env};

thread_local! {
    static ISOLATE: Rc<IsolateState> = Rc::new(IsolateState::default());
}

pub fn now_secs() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The request entry point, called by `scripts/worker-shim.js` with the body already read in JS.
///
/// `body_problem` is set by the shim when it did not deliver a body: `"too_large"` (declared or
/// read past the endpoint's limit, [`http::body_limit`]; the rest was cancelled, not read) or
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

/// Builds the Workers response.
fn respond(resp: http::Response) -> Result<web_sys::Response, JsValue> {
    to_web_response(resp)
}

/// Writes events as log lines, one JSON line each: the one place where the isolate's event sink
/// ([`IsolateState::emit`]) reaches the log. Warnings and error causes go to the warning level.
pub(crate) fn write_events(events: &[Event]) {
    for event in events {
        match event {
            Event::Warning { .. } | Event::ErrorCause { .. } => {
                worker::console_warn!("{}", event.line());
            }
            _ => worker::console_log!("{}", event.line()),
        }
    }
}

/// A warning written right away (work after the response, the runtime's own failures).
pub(crate) fn warn(message: String) {
    write_events(&[Event::Warning { message }]);
}

/// The answer to an error of the runtime layer itself (configuration, a JS exception), its cause
/// written like every error's.
fn error_response(e: Error) -> http::Response {
    if let Some(ev) = Event::error_cause(&e) {
        write_events(&[ev]);
    }
    e.into_response()
}

/// The Cron Trigger entry point (wrangler.toml `[triggers]`), called by the shim's `scheduled`:
/// the expiry scan ([`app::expiry::scan`]). Its events are written as log lines like a request's.
#[wasm_bindgen]
pub fn scheduled(env: Env) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let cfg =
            config::load(&env).map_err(|e| JsValue::from_str(&format!("configuration: {e}")))?;
        let backend = EdgeBackend::new(&env);
        let isolate = ISOLATE.with(Rc::clone);
        let actx = app::Ctx {
            cfg: &cfg,
            backend: &backend,
            isolate: &isolate,
            now: now_secs(),
        };
        let result = app::expiry::scan(&actx).await;
        let events = isolate.take_events();
        write_events(&events);
        let out = queue::fan_out_now(&env, &cfg, &events).await;
        // Notices whose deliveries were not queued are released for the next scan.
        app::expiry::release_unqueued(&actx, &events, &out.not_queued).await;
        write_events(&isolate.take_events());
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
    if path == "/_dev/counters" {
        return Ok(counters::respond(env));
    }
    if path == "/_dev/floor" && counters::enabled(env) {
        let backend = EdgeBackend::new(env);
        return Ok(counters::floor(&backend, &req.method(), body).await);
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
    let actx = app::Ctx {
        cfg: &cfg,
        backend: &backend,
        isolate: &isolate,
        now: now_secs(),
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

async fn run_deferred(env: Env, work: Vec<Deferred>) {
    let backend = EdgeBackend::new(&env);
    for d in work {
        let result = match &d {
            Deferred::RecordUse { token_id, at, uses } => {
                use crate::store::UsageRecorder;
                backend.record_use(token_id, *at, *uses).await
            }
            Deferred::CacheGrant { hash, grant } => {
                use crate::store::GrantCache;
                backend.put_grant(hash, grant).await
            }
            Deferred::PurgeGrants { hashes, after_secs } => {
                sleep_secs(*after_secs).await;
                purge_with_retries(&backend, hashes).await
            }
            Deferred::PutMarkers {
                markers,
                after_secs,
            } => {
                sleep_secs(*after_secs).await;
                mark_with_retries(&backend, markers).await
            }
        };
        if let Err(e) = result {
            warn(format!("deferred work failed: {}", e.0));
        }
    }
}

async fn sleep_secs(secs: u64) {
    if secs > 0 {
        worker::Delay::from(std::time::Duration::from_secs(secs)).await;
    }
}

/// Deletes each grant, retrying a failed delete after 1, 2 and 4 seconds. What still fails is
/// left to the next revoke or rotate of the token and, at the latest, to the KV entry's expiry
/// (`GRANT_CACHE_SECONDS`).
async fn purge_with_retries(
    backend: &EdgeBackend,
    hashes: &[crate::token::TokenHash],
) -> Result<(), crate::store::StoreError> {
    use crate::store::GrantCache;
    let mut last = Ok(());
    for hash in hashes {
        let r = with_retries(|| backend.delete_grant(hash)).await;
        if r.is_err() {
            last = r;
        }
    }
    last
}

/// Runs `op`, and again after 1, 2 and 4 seconds while it fails: its last result.
async fn with_retries<F, Fut>(mut op: F) -> Result<(), crate::store::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::store::StoreError>>,
{
    let mut delay = 1;
    loop {
        match op().await {
            Ok(()) => return Ok(()),
            Err(e) if delay > 4 => return Err(e),
            Err(_) => {
                sleep_secs(delay).await;
                delay *= 2;
            }
        }
    }
}

/// Writes each reuse marker, retrying a failed write after 1, 2 and 4 seconds; one that still
/// fails is deleted instead (whatever KV held for that hash must not stay a live grant).
async fn mark_with_retries(
    backend: &EdgeBackend,
    markers: &[(crate::token::TokenHash, Box<crate::model::Grant>)],
) -> Result<(), crate::store::StoreError> {
    use crate::store::GrantCache;
    let mut last = Ok(());
    for (hash, marker) in markers {
        let r = with_retries(|| backend.put_grant(hash, marker)).await;
        if r.is_err() {
            last = purge_with_retries(backend, &[*hash]).await.and(r);
        }
    }
    last
}

/// What the token page reads: its host (issuer only), identity, and cross-site signals.
const PAGE_HEADERS: [&str; 5] = [
    "host",
    "cookie",
    "cf-access-jwt-assertion",
    "origin",
    "sec-fetch-site",
];

fn to_core_request(
    req: &web_sys::Request,
    path: &str,
    query: Option<&str>,
    body: Option<Vec<u8>>,
    body_problem: Option<&str>,
) -> Result<Result<http::Request, Error>, JsValue> {
    let limit = http::body_limit(path);
    match body_problem {
        None => {}
        Some("too_large") => return Ok(Err(Error::PayloadTooLarge(limit))),
        Some(_) => {
            return Ok(Err(Error::InvalidRequest(
                "the request body could not be read (malformed or interrupted)".into(),
            )))
        }
    }
    let method = Method::parse(&req.method());
    let headers = req.headers();
    let mut out = Vec::with_capacity(3);
    // Each header read crosses into JS: read only what the route can use.
    let extra: &[&str] = if path.starts_with("/api/") {
        &["cf-access-jwt-assertion"]
    } else if path == "/oauth/introspect" {
        &["accept", "cf-connecting-ip"]
    } else if path.starts_with("/oauth/") {
        // rate limits per IP (README "Security")
        &["cf-connecting-ip"]
    } else if path.starts_with("/admin/") {
        &["if-match"]
    } else if app::is_page_path(path) {
        &PAGE_HEADERS
    } else if path == app::LEAK_REPORT_PATH {
        &app::LEAK_REPORT_HEADERS
    } else {
        &[]
    };
    for &name in ["authorization", "content-type"].iter().chain(extra) {
        if let Some(v) = header(&headers, name)? {
            out.push((name.to_owned(), v));
        }
    }
    let has_body = matches!(
        method,
        Method::Post | Method::Put | Method::Patch | Method::Delete
    );
    let body = match body {
        Some(b) if has_body => b,
        // The shim reads no body over the endpoint's limit and says so in `body_problem`;
        // this is a second guard should a caller pass no body and no reason.
        None if has_body => {
            let declared = headers
                .get("content-length")?
                .and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > limit) {
                return Ok(Err(Error::PayloadTooLarge(limit)));
            }
            Vec::new()
        }
        _ => Vec::new(),
    };
    Ok(Ok(http::Request {
        method,
        path: path.to_owned(),
        query: query.map(str::to_owned),
        headers: out,
        body,
    }))
}

#[wasm_bindgen]
extern "C" {
    /// `Headers`, seen through `get` with a JS string made once per name.
    type HeaderMap;
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_by(this: &HeaderMap, name: &JsValue) -> Result<Option<String>, JsValue>;
}

thread_local! {
    /// Constant names (headers, bindings) as JS strings, made once per isolate: a `&str`
    /// argument is decoded into a fresh JS string on every call.
    static INTERNED: std::cell::RefCell<Vec<(&'static str, JsValue)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `name` as a JS string, made once per isolate.
fn interned(name: &'static str) -> JsValue {
    INTERNED.with(|names| {
        let mut names = names.borrow_mut();
        if let Some((_, js)) = names.iter().find(|(n, _)| *n == name) {
            return js.clone();
        }
        let js = JsValue::from_str(name);
        names.push((name, js.clone()));
        js
    })
}

/// `headers.get(name)`.
fn header(headers: &web_sys::Headers, name: &'static str) -> Result<Option<String>, JsValue> {
    headers.unchecked_ref::<HeaderMap>().get_by(&interned(name))
}

/// Most responses share status and headers (an introspection answer, `{"active":false}`, ...).
/// `new Response()` copies its init, so one `ResponseInit` per distinct (status, headers) can be
/// reused instead of building a `Headers` object per request. Bounded; responses with per-request
/// headers (`location`, `set-cookie`, `etag`) are not cached.
const MAX_CACHED_INITS: usize = 32;

type CachedInit = (u16, Vec<(&'static str, String)>, web_sys::ResponseInit);

thread_local! {
    static INITS: std::cell::RefCell<Vec<CachedInit>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn build_init(r: &http::Response) -> Result<web_sys::ResponseInit, JsValue> {
    let headers = web_sys::Headers::new()?;
    for (k, v) in &r.headers {
        headers.append(k, v)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(r.status);
    init.set_headers(&headers);
    Ok(init)
}

fn to_web_response(mut r: http::Response) -> Result<web_sys::Response, JsValue> {
    let body = (!r.body.is_empty()).then_some(r.body.as_mut_slice());
    let cacheable = r
        .headers
        .iter()
        .all(|(k, _)| *k != "location" && *k != "set-cookie" && *k != "etag");
    if cacheable {
        let hit = INITS.with(|c| {
            c.borrow()
                .iter()
                .find(|(s, h, _)| *s == r.status && *h == r.headers)
                .map(|(_, _, init)| init.clone())
        });
        if let Some(init) = hit {
            return web_sys::Response::new_with_opt_u8_array_and_init(body, &init);
        }
    }
    let init = build_init(&r)?;
    if cacheable {
        INITS.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() < MAX_CACHED_INITS {
                c.push((r.status, r.headers.clone(), init.clone()));
            }
        });
    }
    let body = (!r.body.is_empty()).then_some(r.body.as_mut_slice());
    web_sys::Response::new_with_opt_u8_array_and_init(body, &init)
}
