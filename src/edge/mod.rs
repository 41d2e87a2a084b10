//! The runtime layer: the only module that uses the `worker` crate. It turns a Workers request
//! into a core [`Request`], runs [`app::handle`], sends the response and hands deferred work to
//! `wait_until`.

mod backend;
mod config;
mod counters;
mod last_used;

use crate::app::{self, Deferred, IsolateState};
use crate::error::Error;
use crate::http::{self, Method};
use backend::EdgeBackend;
use std::rc::Rc;
use worker::{event, Context, Env, Headers};

/// Bodies declared larger than this are refused without being read.
const MAX_READ_BODY: usize = 64 * 1024;

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

#[event(fetch)]
async fn fetch(req: worker::Request, env: Env, ctx: Context) -> worker::Result<worker::Response> {
    let resp = match serve(req, &env, &ctx).await {
        Ok(r) => r,
        Err(e) => Error::Internal(e.to_string()).into_response(),
    };
    if let Some(line) = &resp.log {
        worker::console_warn!("{}", line);
    }
    to_worker_response(resp)
}

async fn serve(
    mut req: worker::Request,
    env: &Env,
    ctx: &Context,
) -> worker::Result<http::Response> {
    let path = req.path();
    if path == "/_dev/counters" {
        return Ok(counters::respond(env));
    }
    let cfg = match config::load(env) {
        Ok(c) => c,
        Err(e) => return Ok(Error::Internal(format!("configuration: {e}")).into_response()),
    };
    let core_req = match to_core_request(&mut req, path).await? {
        Ok(r) => r,
        Err(e) => return Ok(e.into_response()),
    };
    let backend = EdgeBackend::new(env)?;
    let isolate = ISOLATE.with(Rc::clone);
    let actx = app::Ctx {
        cfg: &cfg,
        backend: &backend,
        isolate: &isolate,
        now: now_secs(),
    };
    let outcome = app::handle(&actx, &core_req).await;
    if !outcome.deferred.is_empty() {
        let env = env.clone();
        ctx.wait_until(async move { run_deferred(env, outcome.deferred).await });
    }
    Ok(outcome.response)
}

async fn run_deferred(env: Env, work: Vec<Deferred>) {
    let Ok(backend) = EdgeBackend::new(&env) else {
        return;
    };
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
        };
        if let Err(e) = result {
            worker::console_warn!("deferred work failed: {}", e.0);
        }
    }
}

async fn to_core_request(
    req: &mut worker::Request,
    path: String,
) -> worker::Result<Result<http::Request, Error>> {
    let method = Method::parse(req.method().as_ref());
    let query = req.url()?.query().map(str::to_owned);
    let headers = req.headers();
    let mut out = Vec::with_capacity(4);
    for name in [
        "authorization",
        "content-type",
        "cf-access-jwt-assertion",
        "accept",
    ] {
        if let Some(v) = headers.get(name)? {
            out.push((name.to_owned(), v));
        }
    }
    let declared = headers
        .get("content-length")?
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_READ_BODY) {
        return Ok(Err(Error::PayloadTooLarge(http::MAX_JSON_BODY)));
    }
    let body = if matches!(
        method,
        Method::Post | Method::Put | Method::Patch | Method::Delete
    ) {
        req.bytes().await?
    } else {
        Vec::new()
    };
    Ok(Ok(http::Request {
        method,
        path,
        query,
        headers: out,
        body,
    }))
}

fn to_worker_response(r: http::Response) -> worker::Result<worker::Response> {
    let headers = Headers::new();
    for (k, v) in &r.headers {
        headers.append(k, v)?;
    }
    let resp = if r.body.is_empty() {
        worker::Response::empty()?
    } else {
        worker::Response::from_bytes(r.body)?
    };
    Ok(resp.with_status(r.status).with_headers(headers))
}
