//! `LastUsed`: one Durable Object per token, keyed by the token id (`idFromName(id)`).
//!
//! Contract:
//! - Why a DO: a single writer per token, so use counts add up without read-modify-write races
//!   in D1, and D1 sees at most one write per token per flush interval however hot the token is.
//! - Stores (DO storage; formats pinned in `src/last_use.rs`, add only optional fields): key
//!   `state`, [`UseState`] (last use, total, per-day totals of the last 90 days, the days not yet
//!   written to D1, the last places used from); keys `day:{n}`, one [`DayBucket`] per UTC day
//!   (uses per via, resource or route, outcome). A record writes the state and its days' buckets
//!   in one atomic put.
//! - `POST /record` with [`UseRecord`] -> 204: applied by [`book::apply`] (`last_used_at` only
//!   rises, counts add up, days past retention are deleted), and an alarm is armed
//!   `LAST_USED_FLUSH_SECONDS` ahead if none is. Malformed or inconsistent input -> 400, nothing
//!   changed. A record of the previous version (no `counts`) counts on the day of its `at`.
//! - `GET /state` -> 200 with the stored state; `GET /usage` -> 200 `{"state", "days"}` with
//!   every kept day's bucket (diagnostics and tests: exact, without the flush delay).
//! - Alarm: writes the token's `last_used_at`, `use_count`, `daily_uses` and `last_used_from`
//!   and the `token_usage` rows of the changed days to D1 in one batch (absolute values: a
//!   retried alarm writes the same), deletes its rows past retention, then forgets which days
//!   changed unless a record came in meanwhile (then it arms the alarm again). A failed write
//!   throws, and the runtime retries the alarm.
//! - Consistency: best effort, coalesced, bounded lag. Callers send at most one record per token
//!   per isolate per `LAST_USED_COALESCE_SECONDS`, so D1 trails the real use by at most that
//!   plus the flush interval (README "Usage").

use crate::last_use::{day_key, DayBucket, UseRecord, UseState};
use crate::usage::book;
use std::collections::BTreeMap;
use wasm_bindgen::JsValue;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State, Storage};

#[durable_object]
pub struct LastUsed {
    state: State,
    env: Env,
}

fn now_secs() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

fn js_err(e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

/// The buckets of `days` that exist.
async fn load_days(storage: &Storage, days: &[i64]) -> Result<BTreeMap<i64, DayBucket>> {
    let mut out = BTreeMap::new();
    if days.is_empty() {
        return Ok(out);
    }
    let keys: Vec<String> = days.iter().map(|d| day_key(*d)).collect();
    let map = storage.get_multiple(keys.clone()).await?;
    for (day, key) in days.iter().zip(&keys) {
        let v = map.get(&JsValue::from_str(key));
        if v.is_undefined() {
            continue;
        }
        let b: DayBucket = serde_wasm_bindgen::from_value(v).map_err(js_err)?;
        out.insert(*day, b);
    }
    Ok(out)
}

/// Writes the state and the buckets in one atomic put.
async fn store(storage: &Storage, st: &UseState, buckets: &[DayBucket]) -> Result<()> {
    let obj = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        js_sys::Reflect::set(&obj, &JsValue::from_str(k), &v)
            .map(|_| ())
            .map_err(|e| js_err(format!("{e:?}")))
    };
    set("state", serde_wasm_bindgen::to_value(st).map_err(js_err)?)?;
    for b in buckets {
        set(
            &day_key(b.day),
            serde_wasm_bindgen::to_value(b).map_err(js_err)?,
        )?;
    }
    storage.put_multiple_raw(obj).await
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
                if let Err(e) = book::check(&rec) {
                    return Response::error(format!("bad record: {}", e.0), 400);
                }
                let flush = flush_secs(&self.env)?;
                let now = now_secs();
                let mut st: UseState = storage.get("state").await?.unwrap_or_default();
                let mut buckets = load_days(&storage, &book::days_needed(&rec, now)).await?;
                let applied = book::apply(&mut st, &mut buckets, &rec, now);
                store(&storage, &st, &applied.write).await?;
                if !applied.delete.is_empty() {
                    let keys: Vec<String> = applied.delete.iter().map(|d| day_key(*d)).collect();
                    storage.delete_multiple(keys).await?;
                }
                if storage.get_alarm().await?.is_none() {
                    storage.set_alarm(flush * 1000).await?;
                }
                Ok(Response::empty()?.with_status(204))
            }
            (worker::Method::Get, "/state") => {
                let st: UseState = storage.get("state").await?.unwrap_or_default();
                Response::from_json(&st)
            }
            (worker::Method::Get, "/usage") => {
                let st: UseState = storage.get("state").await?.unwrap_or_default();
                let days: Vec<i64> = st.daily.iter().map(|(d, _)| *d).collect();
                let buckets = load_days(&storage, &days).await?;
                let days: Vec<&DayBucket> = buckets.values().collect();
                Response::from_json(&serde_json::json!({ "state": st, "days": days }))
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let storage = self.state.storage();
        let Some(st) = storage.get::<UseState>("state").await? else {
            return Response::empty();
        };
        let seq = st.seq;
        let dirty = load_days(&storage, &st.dirty).await?;
        let dirty: Vec<DayBucket> = dirty.into_values().collect();
        let f = book::flush(&st, &dirty, now_secs());
        write_d1(&self.env, &f).await?;
        // Records may have come in while D1 was written: they keep their days for the next write.
        let mut st: UseState = storage.get("state").await?.unwrap_or_default();
        book::flushed(&mut st, seq);
        if st.seq == seq {
            storage.put("state", &st).await?;
        } else if storage.get_alarm().await?.is_none() {
            storage.set_alarm(flush_secs(&self.env)? * 1000).await?;
        }
        Response::empty()
    }
}

fn num(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

/// The flush as one D1 batch: the token's row, its changed days, its days past retention.
async fn write_d1(env: &Env, f: &book::Flush) -> Result<()> {
    let db = env.d1("DB")?;
    let id = JsValue::from_str(&f.token_id);
    let mut stmts = vec![db
        .prepare(
            "UPDATE tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2), use_count = ?3, \
             daily_uses = ?4, last_used_from = ?5 WHERE id = ?1",
        )
        .bind(&[
            id.clone(),
            num(f.last_used_at),
            num(f.use_count),
            JsValue::from_str(&f.daily_uses),
            JsValue::from_str(&f.last_used_from),
        ])?];
    for r in &f.rows {
        stmts.push(
            db.prepare(
                "INSERT INTO token_usage (token_id, day, via, name, outcome, uses) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (token_id, day, via, name, outcome) DO UPDATE SET uses = excluded.uses",
            )
            .bind(&[
                id.clone(),
                num(r.day),
                JsValue::from_str(&r.via),
                JsValue::from_str(&r.name),
                JsValue::from_str(&r.outcome),
                num(r.uses as i64),
            ])?,
        );
    }
    stmts.push(
        db.prepare("DELETE FROM token_usage WHERE token_id = ?1 AND day < ?2")
            .bind(&[id, num(f.first_kept_day)])?,
    );
    db.batch(stmts).await?;
    Ok(())
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
