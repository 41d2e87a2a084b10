//! D1 `webhook_endpoints`: [`WebhookStore`] (rows: [`crate::storage::webhooks`]).

use super::super::backend::EdgeBackend;
use super::super::js::{n, s};
use crate::storage::webhooks::{WebhookRow, WEBHOOK_COLUMNS};
use crate::store::{StoreError, WebhookEndpoint, WebhookStore, Write};
use wasm_bindgen::JsValue;

fn previous(w: &WebhookEndpoint) -> (JsValue, JsValue) {
    match &w.previous_secret {
        Some((p, until)) => (s(p.expose_secret()), n(*until)),
        None => (JsValue::NULL, JsValue::NULL),
    }
}

impl WebhookStore for EdgeBackend {
    async fn list_webhooks(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let rows: Vec<WebhookRow> = self
            .rows(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints ORDER BY id"),
                &[],
            )
            .await?;
        rows.into_iter().map(WebhookRow::into_model).collect()
    }

    async fn webhook(&self, id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
        let rows: Vec<WebhookRow> = self
            .rows(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE id = ?1"),
                &[s(id)],
            )
            .await?;
        rows.into_iter()
            .next()
            .map(WebhookRow::into_model)
            .transpose()
    }

    async fn create_webhook(&self, w: &WebhookEndpoint) -> Result<Write, StoreError> {
        let types = WebhookRow::event_types_column(&w.event_types)?;
        let (prev, until) = previous(w);
        self.batch(vec![(
            "INSERT INTO webhook_endpoints \
             (id, url, event_types, secret, previous_secret, previous_secret_until, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            vec![
                s(&w.id),
                s(&w.url),
                s(&types),
                s(w.secret.expose_secret()),
                prev,
                until,
                n(w.created_at),
            ],
        )])
        .await
    }

    async fn update_webhook_secrets(&self, w: &WebhookEndpoint) -> Result<Write, StoreError> {
        let (prev, until) = previous(w);
        self.batch(vec![(
            "UPDATE webhook_endpoints SET secret = ?2, previous_secret = ?3, \
             previous_secret_until = ?4 WHERE id = ?1",
            vec![s(&w.id), s(w.secret.expose_secret()), prev, until],
        )])
        .await
    }

    async fn delete_webhook(&self, id: &str) -> Result<Write, StoreError> {
        self.batch(vec![(
            "DELETE FROM webhook_endpoints WHERE id = ?1",
            vec![s(id)],
        )])
        .await
    }
}
