//! D1: the clean-up of ended authorization state ([`EndedState`]), statements in
//! `storage::authz_ended`.

use super::super::backend::EdgeBackend;
use super::super::js::n;
use crate::authz::store::EndedState;
use crate::storage::authz_ended::{
    DELETE_ENDED_GRANTS, DELETE_ENDED_GRANTS_REFRESH, DELETE_EXPIRED_CODES, DELETE_EXPIRED_CONSENTS,
};
use crate::store::StoreError;
use serde::de::IgnoredAny;
use wasm_bindgen::JsValue;

fn args(before: i64, limit: u32) -> Vec<JsValue> {
    vec![n(before), n(i64::from(limit))]
}

fn count(rows: &[IgnoredAny]) -> u32 {
    u32::try_from(rows.len()).unwrap_or(u32::MAX)
}

impl EndedState for EdgeBackend {
    async fn delete_expired_codes(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        let rows: Vec<IgnoredAny> = self
            .rows(DELETE_EXPIRED_CODES, &args(before, limit))
            .await?;
        Ok(count(&rows))
    }

    async fn delete_expired_consents(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        let rows: Vec<IgnoredAny> = self
            .rows(DELETE_EXPIRED_CONSENTS, &args(before, limit))
            .await?;
        Ok(count(&rows))
    }

    async fn delete_ended_grants(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        let rows: Vec<IgnoredAny> = self
            .batch_last_rows(vec![
                (DELETE_ENDED_GRANTS_REFRESH, args(before, limit)),
                (DELETE_ENDED_GRANTS, args(before, limit)),
            ])
            .await?;
        Ok(count(&rows))
    }
}
