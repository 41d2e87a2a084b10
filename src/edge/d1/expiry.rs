//! D1 `expiry_notices`: [`ExpiryNotices`].

use super::super::backend::EdgeBackend;
use super::super::js::{err, n, s};
use crate::store::{ExpiryNotice, ExpiryNotices, StoreError};
use serde::Deserialize;

impl ExpiryNotices for EdgeBackend {
    async fn claim_expiry_notices(
        &self,
        threshold_days: i64,
        from: i64,
        to: i64,
        now: i64,
        limit: u32,
    ) -> Result<Vec<ExpiryNotice>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            token_id: String,
            subject: String,
            expires_at: i64,
        }
        // One statement: the notices inserted are the ones returned, so two scans running at once
        // never both emit one (the primary key refuses the second insert).
        let rows: Vec<Row> = self
            .rows(
                "INSERT OR IGNORE INTO expiry_notices \
                 (token_id, threshold_days, notified_at, subject, expires_at) \
                 SELECT id, ?1, ?4, subject, expires_at FROM tokens \
                 WHERE kind = 'pat' AND revoked_at IS NULL AND expires_at > ?2 AND expires_at <= ?3 \
                 AND NOT EXISTS (SELECT 1 FROM expiry_notices n \
                   WHERE n.token_id = tokens.id AND n.threshold_days = ?1) \
                 LIMIT ?5 \
                 RETURNING token_id, subject, expires_at",
                &[n(threshold_days), n(from), n(to), n(now), n(i64::from(limit))],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ExpiryNotice {
                token_id: r.token_id,
                subject: r.subject,
                expires_at: r.expires_at,
            })
            .collect())
    }

    async fn release_expiry_notices(&self, notices: &[(String, i64)]) -> Result<(), StoreError> {
        if notices.is_empty() {
            return Ok(());
        }
        // One statement whatever the count: the pairs as one JSON array parameter.
        let pairs = serde_json::to_string(notices).map_err(err)?;
        self.batch(vec![(
            "DELETE FROM expiry_notices WHERE (token_id, threshold_days) IN \
             (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1))",
            vec![s(&pairs)],
        )])
        .await?;
        Ok(())
    }
}
