//! A KV namespace binding, called directly (`env.GRANTS.get(key)`): workers-rs's `KvStore` looks
//! up five methods with `Reflect.get` when it is built and builds an options object per read,
//! which the V8 profile of the introspection hot path showed (`node bench/profile.mjs active`).

use super::js::{err, interned};
use super::settle::Settled;
use crate::store::StoreError;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// A KV namespace binding (`KVNamespace`).
    #[derive(Clone)]
    pub type KvNamespace;

    /// `get(key)`: resolves to the value as text, or `null`.
    #[wasm_bindgen(method, catch)]
    fn get(this: &KvNamespace, key: &str) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn put(
        this: &KvNamespace,
        key: &str,
        value: &str,
        options: &js_sys::Object,
    ) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn delete(this: &KvNamespace, key: &str) -> Result<js_sys::Promise, JsValue>;
}

impl KvNamespace {
    pub fn from_env(env: &worker::Env, binding: &'static str) -> Result<Self, StoreError> {
        let v = js_sys::Reflect::get(env, &interned(binding))
            .map_err(|_| err(format!("KV binding {binding} unreadable")))?;
        if v.is_undefined() || v.is_null() {
            return Err(err(format!("KV binding {binding} missing")));
        }
        Ok(v.unchecked_into())
    }

    pub(super) async fn get_text(&self, key: &str) -> Result<Option<String>, StoreError> {
        let promise = self.get(key).map_err(js_err)?;
        Ok(Settled::new(promise).await.map_err(js_err)?.as_string())
    }

    pub(super) async fn put_text(
        &self,
        key: &str,
        value: &str,
        expiration: i64,
    ) -> Result<(), StoreError> {
        let options = js_sys::Object::new();
        js_sys::Reflect::set(
            &options,
            &JsValue::from_str("expiration"),
            &JsValue::from_f64(expiration as f64),
        )
        .map_err(js_err)?;
        let promise = self.put(key, value, &options).map_err(js_err)?;
        JsFuture::from(promise).await.map_err(js_err).map(|_| ())
    }

    pub(super) async fn delete_key(&self, key: &str) -> Result<(), StoreError> {
        let promise = self.delete(key).map_err(js_err)?;
        JsFuture::from(promise).await.map_err(js_err).map(|_| ())
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(js_err)`
fn js_err(e: JsValue) -> StoreError {
    let text = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "KV operation failed".to_owned());
    err(text)
}
