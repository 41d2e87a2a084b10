//! The Workers response: built from the core's [`http::Response`], with the `ResponseInit`s
//! that most answers share made once per isolate; and the answer to the runtime's own errors.

use super::isolate::write_events;
use crate::error::Error;
use crate::events::Event;
use crate::http;
use wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;

/// Builds the Workers response.
pub(super) fn respond(resp: http::Response) -> Result<web_sys::Response, JsValue> {
    to_web_response(resp)
}

/// The answer to an error of the runtime layer itself (configuration, a JS exception), its cause
/// written like every error's.
pub(super) fn error_response(e: Error) -> http::Response {
    if let Some(ev) = Event::error_cause(&e) {
        write_events(&[ev]);
    }
    e.into_response()
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
