//! The runtime's storage backend: the bindings (KV `GRANTS`, D1 `DB`, Durable Object `LAST_USED`,
//! rate limiters, outbound `fetch`), each looked up on first use. The storage traits are
//! implemented per binding: `kv.rs` (grants, the JWT denylist), `d1/` (tokens, the registry, gate
//! routes, expiry notices), `durable_object.rs` (last use), `fetch.rs` (JWKS), `ratelimit.rs`.

use super::js::err;
use crate::store::StoreError;
use std::cell::OnceCell;
use wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;
use worker::{D1Database, Env, ObjectNamespace};

use super::kv_namespace::KvNamespace;

/// The bindings, each looked up on first use: a garbage token touches none, an active PAT only KV.
pub struct EdgeBackend {
    pub(super) env: Env,
    kv: OnceCell<KvNamespace>,
    db: OnceCell<D1Database>,
    last_used: OnceCell<ObjectNamespace>,
    /// The request being served, for [`crate::store::RequestOrigin`] (read only when asked).
    request: Option<web_sys::Request>,
}

fn lazy<T>(cell: &OnceCell<T>, make: impl FnOnce() -> worker::Result<T>) -> Result<&T, StoreError> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = make().map_err(err)?;
    Ok(cell.get_or_init(|| v))
}

impl EdgeBackend {
    pub fn new(env: &Env) -> Self {
        EdgeBackend {
            env: env.clone(),
            kv: OnceCell::new(),
            db: OnceCell::new(),
            last_used: OnceCell::new(),
            request: None,
        }
    }

    /// The backend of one request: [`crate::store::RequestOrigin`] reads where it came from.
    pub fn for_request(env: &Env, req: &web_sys::Request) -> Self {
        let mut b = Self::new(env);
        // the JS object reference (not `Request.clone()`, which would tee the body)
        b.request = Some(Clone::clone(req));
        b
    }

    pub(super) fn kv(&self) -> Result<&KvNamespace, StoreError> {
        if let Some(v) = self.kv.get() {
            return Ok(v);
        }
        let v = KvNamespace::from_env(&self.env, "GRANTS")?;
        Ok(self.kv.get_or_init(|| v))
    }

    pub(super) fn db(&self) -> Result<&D1Database, StoreError> {
        lazy(&self.db, || self.env.d1("DB"))
    }

    pub(super) fn last_used(&self) -> Result<&ObjectNamespace, StoreError> {
        lazy(&self.last_used, || self.env.durable_object("LAST_USED"))
    }
}

/// Where the request came from: `CF-Connecting-IP`, and `request.cf.colo` / `.country`. Read
/// only when the service asks (reuse detection): reading `request.cf` costs CPU.
impl crate::store::RequestOrigin for EdgeBackend {
    fn request_origin(&self) -> crate::origin::ClientOrigin {
        let Some(req) = &self.request else {
            return crate::origin::ClientOrigin::default();
        };
        let ip = req.headers().get("cf-connecting-ip").ok().flatten();
        let cf = js_sys::Reflect::get(req, &JsValue::from_str("cf")).ok();
        let field = |name: &str| {
            cf.as_ref()
                .filter(|cf| cf.is_object())
                .and_then(|cf| js_sys::Reflect::get(cf, &JsValue::from_str(name)).ok())
                .and_then(|v| v.as_string())
        };
        crate::origin::ClientOrigin::new(
            ip.as_deref(),
            field("colo").as_deref(),
            field("country").as_deref(),
        )
    }
}
