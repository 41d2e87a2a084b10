//! `LastUsed`: one Durable Object per token, keyed by the token id (`idFromName(id)`).
//!
//! Contract:
//! - Why a DO: a single writer per token, so use counts add up without read-modify-write races
//!   in D1, and D1 sees at most one write per token per flush interval however hot the token is.
//! - Stores (DO storage, key `state`): [`UseState`] `{"token_id","last_used_at","use_count"}`.
//!   Persisted format, pinned in `src/last_use.rs`: add only optional fields.
//! - `POST /record` with [`UseRecord`] `{"token_id","at","uses"}` -> 204. Raises `last_used_at` to `at` (never
//!   lowers it), adds `uses`, and arms an alarm `LAST_USED_FLUSH_SECONDS` ahead if none is armed.
//!   Malformed input -> 400; nothing else.
//! - `GET /state` -> 200 with the stored state (diagnostics).
//! - Alarm: writes `last_used_at` and `use_count` to D1 `tokens` (the DO is their only writer).
//!   A failed write throws, and the runtime retries the alarm.
//! - Consistency: best effort, coalesced, bounded lag. Callers send at most one record per token
//!   per isolate per `LAST_USED_COALESCE_SECONDS`, so D1's `last_used_at` trails the real last use
//!   by at most that plus the flush interval (README "Last use").

use crate::last_use::{UseRecord, UseState};
use wasm_bindgen::JsValue;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object]
pub struct LastUsed {
    state: State,
    env: Env,
}

impl DurableObject for LastUsed {
    fn new(state: State, env: Env) -> Self {
        LastUsed { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        match (req.method(), req.path().as_str()) {
            (worker::Method::Post, "/record") => {
                let Ok(rec) = serde_json::from_slice::<UseRecord>(&req.bytes().await?) else {
                    return Response::error("bad record", 400);
                };
                let secs = flush_secs(&self.env)?;
                let mut st: UseState = storage.get("state").await?.unwrap_or_default();
                st.apply(rec);
                storage.put("state", &st).await?;
                if storage.get_alarm().await?.is_none() {
                    storage.set_alarm(secs * 1000).await?;
                }
                Ok(Response::empty()?.with_status(204))
            }
            (worker::Method::Get, "/state") => {
                let st: UseState = storage.get("state").await?.unwrap_or_default();
                Response::from_json(&st)
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let st: Option<UseState> = self.state.storage().get("state").await?;
        if let Some(st) = st {
            let db = self.env.d1("DB")?;
            db.prepare(
                "UPDATE tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2), use_count = ?3 WHERE id = ?1",
            )
            .bind(&[
                JsValue::from_str(&st.token_id),
                JsValue::from_f64(st.last_used_at as f64),
                JsValue::from_f64(st.use_count as f64),
            ])?
            .run()
            .await?;
        }
        Response::empty()
    }
}

/// `LAST_USED_FLUSH_SECONDS`, checked like the Worker's configuration (which refuses to serve
/// with an invalid value, so no record reaches this object then): an invalid value is an error
/// here too, never a silent default.
fn flush_secs(env: &Env) -> Result<i64> {
    let raw = env
        .var("LAST_USED_FLUSH_SECONDS")
        .ok()
        .map(|v| v.to_string());
    crate::app::settings::last_used_flush_secs(raw.as_deref())
        .map_err(|e| worker::Error::RustError(format!("configuration: {e}")))
}
