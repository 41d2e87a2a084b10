//! Small pieces every adapter of the runtime layer uses: the clock, JS strings made once per
//! isolate, JS values for D1 bindings, and a storage error from anything displayable.

use crate::store::StoreError;
use wasm_bindgen::JsValue;

pub fn now_secs() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

thread_local! {
    /// Constant names (headers, bindings) as JS strings, made once per isolate: a `&str`
    /// argument is decoded into a fresh JS string on every call.
    static INTERNED: std::cell::RefCell<Vec<(&'static str, JsValue)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `name` as a JS string, made once per isolate.
pub(super) fn interned(name: &'static str) -> JsValue {
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

pub(super) fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(e)
}

pub(super) fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

pub(super) fn n(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}
