//! D1 `DB`: the source of truth. Statement helpers here; the traits by table in the submodules.

mod authz;
mod expiry;
mod registry;
mod routes;
mod tokens;
mod webhooks;

use super::backend::{err, EdgeBackend};
use super::counters::{bump, Op};
use crate::store::{StoreError, Write};
use wasm_bindgen::JsValue;

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
