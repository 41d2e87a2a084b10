//! Test-only faults of the runtime layer (the dev routes are `dev.rs`), for the end-to-end tests of the revocation bound. Both
//! are honoured only with `DEV_COUNTERS="true"` (local dev, tests, the benchmark), and the
//! configuration is refused when they are asked for with an issuer that is not a loopback URL
//! (like `DEV_SIGN_IN`): a deployed Worker never runs them.
//!
//! - `DEV_STALE_KV_SECONDS=N`: KV reads at this isolate behave like a Cloudflare location's KV
//!   read cache: a key read once is answered from that read for N seconds, whatever was written
//!   or deleted elsewhere since (writes made through this isolate are seen at once, as a
//!   location sees its own). So a token revoked at another location stays in "KV" here: only
//!   the revocation feed can refuse it within the bound.
//! - `POST /_dev/faults` with `{"feed": "unreadable"}` (or `"ok"`): this isolate's reads of the
//!   revocation feed (the Cache API snapshot and the D1 feed query) fail, so its view ages and
//!   introspection falls back to D1 for the token.

use crate::http::Response;
use crate::store::StoreError;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use worker::Env;

thread_local! {
    static STALE_SECS: OnceCell<i64> = const { OnceCell::new() };
    /// Key -> (the value read, when it was read, ms).
    static STALE: RefCell<HashMap<String, (Option<String>, f64)>> = RefCell::new(HashMap::new());
    static FEED_UNREADABLE: Cell<bool> = const { Cell::new(false) };
}

/// The var's value, checked: a non-negative integer, only with a loopback issuer.
pub fn check(env: &Env, issuer: &str) -> Result<(), String> {
    let Some(raw) = env.var("DEV_STALE_KV_SECONDS").ok().map(|v| v.to_string()) else {
        return Ok(());
    };
    if raw.is_empty() {
        return Ok(());
    }
    if raw.parse::<u32>().is_err() {
        return Err("DEV_STALE_KV_SECONDS must be a non-negative integer".into());
    }
    if !crate::app::settings::is_loopback_url(issuer) {
        return Err(format!(
            "DEV_STALE_KV_SECONDS is for local tests only: ISSUER {issuer:?} is not a loopback \
             URL; unset DEV_STALE_KV_SECONDS"
        ));
    }
    Ok(())
}

/// Seconds of staleness of this isolate's KV reads (0: off). Read once per isolate.
fn stale_secs(env: &Env) -> i64 {
    STALE_SECS.with(|s| {
        *s.get_or_init(|| {
            if !super::counters::enabled(env) {
                return 0;
            }
            env.var("DEV_STALE_KV_SECONDS")
                .ok()
                .and_then(|v| v.to_string().parse::<i64>().ok())
                .unwrap_or(0)
                .max(0)
        })
    })
}

/// A KV read answered from this isolate's stale copy, if the layer is on and the key was read
/// less than the configured time ago. `Some(None)`: it was absent then (the three cases are
/// the point: not served here, served as absent, served as a value).
#[allow(clippy::option_option)]
pub fn stale_read(env: &Env, key: &str) -> Option<Option<String>> {
    let secs = stale_secs(env);
    if secs == 0 {
        return None;
    }
    let now = js_sys::Date::now();
    STALE.with(|m| {
        let mut m = m.borrow_mut();
        match m.get(key) {
            Some((v, at)) if now - at < secs as f64 * 1000.0 => {
                super::counters::bump(super::counters::Op::StaleKvServed);
                Some(v.clone())
            }
            Some(_) => {
                m.remove(key);
                None
            }
            None => None,
        }
    })
}

/// Remembers what a KV read returned (the layer serves it for the configured time).
pub fn remember_read(env: &Env, key: &str, value: Option<&str>) {
    if stale_secs(env) == 0 {
        return;
    }
    let now = js_sys::Date::now();
    STALE.with(|m| {
        m.borrow_mut()
            .insert(key.to_owned(), (value.map(str::to_owned), now));
    });
}

/// A write or delete through this isolate: seen here at once.
pub fn wrote(env: &Env, key: &str, value: Option<&str>) {
    if stale_secs(env) == 0 {
        return;
    }
    STALE.with(|m| {
        if let Some(slot) = m.borrow_mut().get_mut(key) {
            slot.0 = value.map(str::to_owned);
        }
    });
}

/// `Err` while the feed fault is on (see the module documentation).
pub fn feed_fault() -> Result<(), StoreError> {
    if FEED_UNREADABLE.with(Cell::get) {
        return Err(StoreError::new(
            "the revocation feed is unreadable (dev fault)",
        ));
    }
    Ok(())
}

/// `POST /_dev/faults` (only with `DEV_COUNTERS`): `{"feed": "unreadable" | "ok"}`.
pub fn faults(env: &Env, body: Option<&[u8]>) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Faults {
        feed: String,
    }
    if !super::counters::enabled(env) {
        return crate::error::Error::NotFound.into_response();
    }
    let parsed = body.and_then(|b| serde_json::from_slice::<Faults>(b).ok());
    let unreadable = match parsed.as_ref().map(|f| f.feed.as_str()) {
        Some("unreadable") => true,
        Some("ok") => false,
        _ => {
            return crate::error::Error::InvalidRequest(
                r#"expected {"feed": "unreadable"} or {"feed": "ok"}"#.into(),
            )
            .into_response()
        }
    };
    FEED_UNREADABLE.with(|f| f.set(unreadable));
    Response::json(
        200,
        &serde_json::json!({ "feed": if unreadable { "unreadable" } else { "ok" } }),
    )
    .with_header("cache-control", "no-store")
}
