//! Operation counters for this isolate, exposed at `GET /_dev/counters` only when the var
//! `DEV_COUNTERS` is `"true"` (local dev and the benchmark), on the issuer's host (`dev.rs`).
//! They let the benchmark prove the hot path's storage operation counts instead of assuming
//! them, and the size of the wasm memory.

use crate::http::Response;
use std::cell::Cell;
use worker::Env;

thread_local! {
    static COUNTS: [Cell<u64>; 6] = Default::default();
}

#[derive(Clone, Copy)]
pub enum Op {
    KvGet = 0,
    KvPut = 1,
    KvDelete = 2,
    D1Query = 3,
    DoCall = 4,
    RateLimit = 5,
}

pub fn bump(op: Op) {
    COUNTS.with(|c| {
        let cell = &c[op as usize];
        cell.set(cell.get() + 1);
    });
}

/// The size of this instance's wasm linear memory. It never shrinks: the gate's tests use it to
/// show that bodies stream past wasm instead of through it.
fn wasm_memory_bytes() -> f64 {
    use wasm_bindgen::JsCast as _;
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length()
        .into()
}

thread_local! {
    static ENABLED: std::cell::OnceCell<bool> = const { std::cell::OnceCell::new() };
}

/// Whether `DEV_COUNTERS` is `"true"` (read once per isolate: vars do not change).
pub fn enabled(env: &Env) -> bool {
    ENABLED.with(|e| {
        *e.get_or_init(|| {
            env.var("DEV_COUNTERS")
                .is_ok_and(|v| v.to_string() == "true")
        })
    })
}

/// `/_dev/floor` (only with `DEV_COUNTERS`): the benchmark's **floor W**, the least a request
/// can cost through patgate's own runtime path (the JS shim reading the body, the wasm entry and
/// executor, the KV binding, the `Response`), without any of patgate's logic: `PUT` stores the
/// body under one KV key, any other method answers that key's value as JSON.
pub async fn floor(
    backend: &super::backend::EdgeBackend,
    method: &str,
    body: Option<Vec<u8>>,
) -> Response {
    const KEY: &str = "f:floor";
    let kv = match backend.kv() {
        Ok(kv) => kv,
        Err(e) => return crate::error::Error::Unavailable(e.0).into_response(),
    };
    if method == "PUT" {
        bump(Op::KvPut);
        let text = String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
        return match kv
            .put_text(KEY, &text, super::js::now_secs() + 86_400)
            .await
        {
            Ok(()) => Response::empty(204),
            Err(e) => crate::error::Error::Unavailable(e.0).into_response(),
        };
    }
    bump(Op::KvGet);
    match kv.get_text(KEY).await {
        Ok(v) => {
            let mut r = Response::empty(200);
            r.headers.push(("content-type", "application/json".into()));
            r.body = v.unwrap_or_else(|| "null".into()).into_bytes();
            r
        }
        Err(e) => crate::error::Error::Unavailable(e.0).into_response(),
    }
}

/// The counters as JSON (`dev.rs` checks the var, host and method).
pub fn respond() -> Response {
    let v = COUNTS.with(|c| c.iter().map(Cell::get).collect::<Vec<_>>());
    Response::json(
        200,
        &serde_json::json!({
            "kv_get": v[0], "kv_put": v[1], "kv_delete": v[2], "d1_query": v[3], "do_call": v[4],
            "rate_limit": v[5],
            "wasm_memory_bytes": wasm_memory_bytes(),
        }),
    )
    .with_header("cache-control", "no-store")
}
