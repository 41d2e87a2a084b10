//! D1 `webhook_endpoints`: [`WebhookStore`].

use super::super::backend::{err, n, s, EdgeBackend};
use crate::store::{StoreError, WebhookEndpoint, WebhookStore, Write};
use crate::webhook::WebhookSecret;
use serde::Deserialize;
use wasm_bindgen::JsValue;

const COLUMNS: &str =
    "id, url, event_types, secret, previous_secret, previous_secret_until, created_at";

/// A row of D1 `webhook_endpoints`.
#[derive(Deserialize)]
struct Row {
    id: String,
    url: String,
    event_types: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<i64>,
    created_at: i64,
}

impl Row {
    fn into_model(self) -> Result<WebhookEndpoint, StoreError> {
        let bad = |what: &str| {
            err(format!(
                "webhook_endpoints.{what} of {} is unusable",
                self.id
            ))
        };
        let secret = WebhookSecret::parse(&self.secret).map_err(|_| bad("secret"))?;
        let previous_secret = match (&self.previous_secret, self.previous_secret_until) {
            (Some(p), Some(until)) => Some((
                WebhookSecret::parse(p).map_err(|_| bad("previous_secret"))?,
                until,
            )),
            _ => None,
        };
        Ok(WebhookEndpoint {
            event_types: serde_json::from_str(&self.event_types).map_err(|_| bad("event_types"))?,
            secret,
            previous_secret,
            id: self.id,
            url: self.url,
            created_at: self.created_at,
        })
    }
}

fn previous(w: &WebhookEndpoint) -> (JsValue, JsValue) {
    match &w.previous_secret {
        Some((p, until)) => (s(p.expose_secret()), n(*until)),
        None => (JsValue::NULL, JsValue::NULL),
    }
}

impl WebhookStore for EdgeBackend {
    async fn list_webhooks(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let rows: Vec<Row> = self
            .rows(
                &format!("SELECT {COLUMNS} FROM webhook_endpoints ORDER BY id"),
                &[],
            )
            .await?;
        rows.into_iter().map(Row::into_model).collect()
    }

    async fn webhook(&self, id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
        let rows: Vec<Row> = self
            .rows(
                &format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE id = ?1"),
                &[s(id)],
            )
            .await?;
        rows.into_iter().next().map(Row::into_model).transpose()
    }

    async fn create_webhook(&self, w: &WebhookEndpoint) -> Result<Write, StoreError> {
        let types = serde_json::to_string(&w.event_types).map_err(err)?;
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
