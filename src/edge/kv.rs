//! KV `GRANTS`: token grants (`g:{sha256 hex}`), the JWT denylist (`d:{jti}`) and, for a minute
//! each, tokens the page showed, sealed (`s:{sha256 hex}`); the keys and values are
//! [`crate::storage::kv`].
//!
//! The binding is called directly (`env.GRANTS.get(key)`): workers-rs's `KvStore` looks up five
//! methods with `Reflect.get` when it is built and builds an options object per read, which the
//! V8 profile of the introspection hot path showed (`node bench/profile.mjs active`).

use super::backend::err;
use super::backend::EdgeBackend;
use super::counters::{bump, Op};
use super::settle::Settled;
use crate::model::Grant;
use crate::storage::kv::{self as kv_format, Denied, DenyKey, GrantKey, KvKey as _, SealedKey};
use crate::store::{GrantCache, StoreError};
use crate::token::TokenHash;
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
        let v = js_sys::Reflect::get(env, &super::interned(binding))
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

    async fn delete_key(&self, key: &str) -> Result<(), StoreError> {
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

impl GrantCache for EdgeBackend {
    async fn get_grant(&self, hash: &TokenHash) -> Result<Option<Grant>, StoreError> {
        bump(Op::KvGet);
        let text = self.kv()?.get_text(&GrantKey(hash).key()).await?;
        Ok(text.as_deref().and_then(kv_format::parse_grant))
    }

    async fn put_grant(&self, hash: &TokenHash, grant: &Grant) -> Result<(), StoreError> {
        bump(Op::KvPut);
        let now = super::now_secs();
        let value = kv_format::grant_value(grant).map_err(err)?;
        let exp = kv_format::expiration(grant.kv_expires_at(), now);
        self.kv()?
            .put_text(&GrantKey(hash).key(), &value, exp)
            .await
    }

    async fn delete_grant(&self, hash: &TokenHash) -> Result<(), StoreError> {
        bump(Op::KvDelete);
        self.kv()?.delete_key(&GrantKey(hash).key()).await
    }

    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        bump(Op::KvGet);
        Ok(self.kv()?.get_text(&DenyKey(jti).key()).await?.is_some())
    }

    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StoreError> {
        bump(Op::KvPut);
        let exp = kv_format::expiration(exp, super::now_secs());
        self.kv()?
            .put_text(&DenyKey(jti).key(), Denied::VALUE, exp)
            .await
    }

    async fn put_sealed(
        &self,
        hash: &TokenHash,
        sealed: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        bump(Op::KvPut);
        let exp = kv_format::expiration(expires_at, super::now_secs());
        self.kv()?
            .put_text(&SealedKey(hash).key(), sealed, exp)
            .await
    }

    async fn get_sealed(&self, hash: &TokenHash) -> Result<Option<String>, StoreError> {
        bump(Op::KvGet);
        self.kv()?.get_text(&SealedKey(hash).key()).await
    }
}
