//! Durable Object `LAST_USED`: [`UsageRecorder`] (the object itself is `last_used.rs`).

use super::backend::EdgeBackend;
use super::counters::{bump, Op};
use super::js::err;
use crate::store::{StoreError, UsageRecorder};
use wasm_bindgen::JsValue;

impl UsageRecorder for EdgeBackend {
    async fn record_use(&self, token_id: &str, at: i64, uses: u32) -> Result<(), StoreError> {
        bump(Op::DoCall);
        let stub = self
            .last_used()?
            .id_from_name(token_id)
            .and_then(|id| id.get_stub())
            .map_err(err)?;
        let body = serde_json::to_string(&crate::last_use::UseRecord {
            token_id: token_id.to_owned(),
            at,
            uses,
        })
        .map_err(err)?;
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let req = worker::Request::new_with_init("https://last-used/record", &init).map_err(err)?;
        let resp = stub.fetch_with_request(req).await.map_err(err)?;
        if resp.status_code() != 204 {
            return Err(err(format!(
                "last-used object answered {}",
                resp.status_code()
            )));
        }
        Ok(())
    }
}
