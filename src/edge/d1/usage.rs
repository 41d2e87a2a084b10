//! D1 `token_usage` ([`UsageStore`]) and the administrators' inventory over `tokens`
//! ([`Inventory`]; its SQL: [`crate::storage::inventory`]).

use super::super::backend::EdgeBackend;
use super::super::js::{err, n, s};
use crate::model::{SqlValue, TokenRecord};
use crate::storage::deliveries::{UsageDbRow, USAGE_COLUMNS};
use crate::storage::rows::{LEAK_URLS_COLUMN, TOKEN_COLUMNS};
use crate::storage::{grant_usage, inventory};
use crate::store::StoreError;
use crate::store::{Inventory, UsageStore};
use crate::store_usage::{GrantUses, InventoryQuery};
use crate::usage::book::UsageRow;
use serde::Deserialize;
use wasm_bindgen::JsValue;

fn bind(values: &[SqlValue]) -> Vec<JsValue> {
    values
        .iter()
        .map(|v| match v {
            SqlValue::Text(t) => s(t),
            SqlValue::OptText(t) => t.as_deref().map_or(JsValue::NULL, s),
            SqlValue::Int(i) => n(*i),
        })
        .collect()
}

impl UsageStore for EdgeBackend {
    async fn token_usage(&self, id: &str, from_day: i64) -> Result<Vec<UsageRow>, StoreError> {
        let rows: Vec<UsageDbRow> = self
            .rows(
                &format!(
                    "SELECT {USAGE_COLUMNS} FROM token_usage WHERE token_id = ?1 AND day >= ?2"
                ),
                &[s(id), n(from_day)],
            )
            .await?;
        rows.into_iter().map(UsageDbRow::into_row).collect()
    }

    async fn prune_usage(&self, before_day: i64) -> Result<(), StoreError> {
        self.batch(vec![(
            "DELETE FROM token_usage WHERE day < ?1",
            vec![n(before_day)],
        )])
        .await
        .map(|_| ())
    }

    async fn grant_uses(
        &self,
        grant_ids: &[String],
        from_day: i64,
    ) -> Result<Vec<GrantUses>, StoreError> {
        if grant_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = s(&grant_usage::ids_json(grant_ids));
        let totals = self
            .rows(grant_usage::TOTALS_SQL, std::slice::from_ref(&ids))
            .await?;
        let days = self
            .rows(grant_usage::DAYS_SQL, &[ids, n(from_day)])
            .await?;
        grant_usage::combine(totals, days)
    }
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

impl Inventory for EdgeBackend {
    async fn inventory(&self, q: &InventoryQuery) -> Result<Vec<TokenRecord>, StoreError> {
        // with the leak report URLs: the token page lists a user's PATs through this too
        let (sql, values) = inventory::page_sql(q, &format!("{TOKEN_COLUMNS}, {LEAK_URLS_COLUMN}"));
        self.query_tokens(&sql, &bind(&values)).await
    }

    async fn inventory_count(&self, q: &InventoryQuery) -> Result<u64, StoreError> {
        let (sql, values) = inventory::count_sql(q);
        let rows: Vec<CountRow> = self.rows(&sql, &bind(&values)).await?;
        let c = rows.first().map_or(0, |r| r.n);
        u64::try_from(c).map_err(err)
    }
}
