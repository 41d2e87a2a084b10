//! Operation counters for this isolate, exposed at `GET /_dev/counters` only when the var
//! `DEV_COUNTERS` is `"true"` (local dev and the benchmark). They let the benchmark prove the
//! hot path's storage operation counts instead of assuming them, and the size of the wasm
//! memory.

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

pub fn respond(env: &Env) -> Response {
    let enabled = env
        .var("DEV_COUNTERS")
        .is_ok_and(|v| v.to_string() == "true");
    if !enabled {
        return crate::error::Error::NotFound.into_response();
    }
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
