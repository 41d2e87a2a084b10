//! D1 `webhook_deliveries` and the health columns of `webhook_endpoints`: [`DeliveryLog`]
//! (rows: [`crate::storage::deliveries`]).

use super::super::backend::EdgeBackend;
use super::super::js::{err, n, s};
use crate::storage::deliveries::{
    insert_values, DeliveryRow, Value, DELIVERY_COLUMNS, DELIVERY_INSERT_COLUMNS,
};
use crate::store::DeliveryLog;
use crate::store::{StoreError, Write};
use crate::store_usage::{Attempt, EndpointHealth};
use serde::Deserialize;
use wasm_bindgen::JsValue;

#[derive(Deserialize)]
struct IdRow {
    id: i64,
}

fn opt_n(v: Option<i64>) -> JsValue {
    v.map_or(JsValue::NULL, n)
}

impl DeliveryLog for EdgeBackend {
    async fn record_attempt(&self, a: &Attempt) -> Result<i64, StoreError> {
        let args: Vec<JsValue> = insert_values(a)
            .iter()
            .map(|v| match v {
                Value::Text(t) => s(t),
                Value::OptText(t) => t.as_deref().map_or(JsValue::NULL, s),
                Value::Int(i) => opt_n(*i),
            })
            .collect();
        let placeholders: Vec<String> = (1..=args.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO webhook_deliveries ({DELIVERY_INSERT_COLUMNS}) VALUES ({}) RETURNING id",
            placeholders.join(", ")
        );
        let rows: Vec<IdRow> = self.rows(&sql, &args).await?;
        rows.first()
            .map(|r| r.id)
            .ok_or_else(|| err("the insert returned no id"))
    }

    async fn attempts(
        &self,
        endpoint: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Attempt>, StoreError> {
        let rows: Vec<DeliveryRow> = self
            .rows(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ?1 \
                     AND id < ?2 ORDER BY id DESC LIMIT ?3"
                ),
                &[
                    s(endpoint),
                    n(before.unwrap_or(i64::MAX)),
                    n(i64::from(limit)),
                ],
            )
            .await?;
        rows.into_iter().map(DeliveryRow::into_attempt).collect()
    }

    async fn attempt(&self, endpoint: &str, id: i64) -> Result<Option<Attempt>, StoreError> {
        let rows: Vec<DeliveryRow> = self
            .rows(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ?1 \
                     AND id = ?2"
                ),
                &[s(endpoint), n(id)],
            )
            .await?;
        rows.into_iter()
            .next()
            .map(DeliveryRow::into_attempt)
            .transpose()
    }

    async fn set_health(&self, id: &str, h: &EndpointHealth) -> Result<Write, StoreError> {
        self.batch(vec![(
            "UPDATE webhook_endpoints SET failing_since = ?2, disabled_at = ?3, \
             disabled_reason = ?4 WHERE id = ?1",
            vec![
                s(id),
                opt_n(h.failing_since),
                opt_n(h.disabled_at),
                h.disabled_reason.as_deref().map_or(JsValue::NULL, s),
            ],
        )])
        .await
    }

    async fn prune_attempts(&self, before: i64) -> Result<(), StoreError> {
        self.batch(vec![(
            "DELETE FROM webhook_deliveries WHERE at < ?1",
            vec![n(before)],
        )])
        .await
        .map(|_| ())
    }
}
