//! The core's [`http::Request`] from a Workers request: only the headers the route reads (each
//! read crosses into JS), and the body the shim delivered (or the reason it did not).

use super::js::interned;
use crate::app;
use crate::error::Error;
use crate::http::{self, Method};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast as _, JsValue};
use worker::worker_sys::web_sys;

/// What the token page reads: its host (issuer only), identity, and cross-site signals.
const PAGE_HEADERS: [&str; 5] = [
    "host",
    "cookie",
    "cf-access-jwt-assertion",
    "origin",
    "sec-fetch-site",
];

pub(super) fn to_core_request(
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

/// `headers.get(name)`.
fn header(headers: &web_sys::Headers, name: &'static str) -> Result<Option<String>, JsValue> {
    headers.unchecked_ref::<HeaderMap>().get_by(&interned(name))
}
