//! D1 `DB`: the source of truth. Statement helpers here; the traits by table in the submodules.

mod authz;
mod authz_ended;
mod clients;
mod deliveries;
mod expiry;
mod feed;
mod registry;
mod routes;
mod tokens;
mod usage;
mod webhooks;

use super::backend::EdgeBackend;
use super::counters::{bump, Op};
use super::js::err;
use crate::store::{StoreError, Write};
use wasm_bindgen::JsValue;

/// The values of a statement of `crate::storage` as D1 parameters.
pub(super) fn binds(values: &[crate::storage::authz_rows::Bind]) -> Vec<JsValue> {
    use crate::storage::authz_rows::Bind;
    let text = |t: &Option<String>| t.as_deref().map_or(JsValue::NULL, JsValue::from_str);
    let int = |i: Option<i64>| i.map_or(JsValue::NULL, |i| JsValue::from_f64(i as f64));
    values
        .iter()
        .map(|v| match v {
            Bind::Text(t) => JsValue::from_str(t),
            Bind::OptText(t) => text(t),
            Bind::Int(i) => int(Some(*i)),
            Bind::OptInt(i) => int(*i),
        })
        .collect()
}

impl EdgeBackend {
    pub(super) async fn rows<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> Result<Vec<T>, StoreError> {
        bump(Op::D1Query);
        self.db()?
            .prepare(sql)
            .bind(args)
            .map_err(err)?
            .all()
            .await
            .map_err(err)?
            .results()
            .map_err(err)
    }

    /// Runs statements in one D1 batch (a transaction) and returns the rows of the first.
    pub(super) async fn batch_first_rows<T: serde::de::DeserializeOwned>(
        &self,
        stmts: Vec<(&str, Vec<JsValue>)>,
    ) -> Result<Vec<T>, StoreError> {
        bump(Op::D1Query);
        let db = self.db()?;
        let mut prepared = Vec::with_capacity(stmts.len());
        for (sql, args) in stmts {
            prepared.push(db.prepare(sql).bind(&args).map_err(err)?);
        }
        let results = db.batch(prepared).await.map_err(err)?;
        results
            .first()
            .ok_or_else(|| err("D1 batch without results"))?
            .results()
            .map_err(err)
    }

    /// Runs statements in one D1 batch (a transaction) and returns the rows of the last.
    pub(super) async fn batch_last_rows<T: serde::de::DeserializeOwned>(
        &self,
        stmts: Vec<(&str, Vec<JsValue>)>,
    ) -> Result<Vec<T>, StoreError> {
        bump(Op::D1Query);
        let db = self.db()?;
        let mut prepared = Vec::with_capacity(stmts.len());
        for (sql, args) in stmts {
            prepared.push(db.prepare(sql).bind(&args).map_err(err)?);
        }
        let results = db.batch(prepared).await.map_err(err)?;
        results
            .last()
            .ok_or_else(|| err("D1 batch without results"))?
            .results()
            .map_err(err)
    }

    /// Runs statements in one D1 batch (a transaction). A constraint violation is a Conflict.
    pub(super) async fn batch(
        &self,
        stmts: Vec<(&str, Vec<JsValue>)>,
    ) -> Result<Write, StoreError> {
        bump(Op::D1Query);
        let mut prepared = Vec::with_capacity(stmts.len());
        for (sql, args) in stmts {
            prepared.push(self.db()?.prepare(sql).bind(&args).map_err(err)?);
        }
        match self.db()?.batch(prepared).await {
            Ok(results) => {
                let changed: usize = results
                    .iter()
                    .filter_map(|r| r.meta().ok().flatten().and_then(|m| m.changes))
                    .sum();
                Ok(if changed > 0 {
                    Write::Done
                } else {
                    Write::NotFound
                })
            }
            Err(e) if e.to_string().contains("constraint") => Ok(Write::Conflict),
            Err(e) => Err(err(e)),
        }
    }
}
