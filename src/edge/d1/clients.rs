//! D1 `clients` one by one: [`ClientDirectory`] (self-registered clients can number in the tens
//! of thousands; nothing here reads the whole table). Statements and row mapping in
//! `storage::client_rows`.

use super::super::backend::EdgeBackend;
use super::super::js::{n, s};
use super::binds;
use crate::authz::records::ClientProfile;
use crate::authz::store::ClientDirectory;
use crate::model::Client;
use crate::model::SecretSet;
use crate::secret::SecretHash;
use crate::storage::authz_rows::sql::PUT_METADATA_CLIENT;
use crate::storage::client_rows::{
    put_metadata_client_values, register_client_sql, register_client_values, select_admin_clients,
    select_client_by_id, FullClientRow, EXPIRE_DYNAMIC_CLIENTS, SET_CLIENT_SECRET, TOUCH_CLIENT,
};
use crate::store::{StoreError, Write};
use serde::Deserialize;
use wasm_bindgen::JsValue;

impl ClientDirectory for EdgeBackend {
    async fn admin_clients(&self) -> Result<Vec<(Client, ClientProfile)>, StoreError> {
        let rows: Vec<FullClientRow> = self.rows(&select_admin_clients(), &[]).await?;
        rows.into_iter().map(FullClientRow::into_records).collect()
    }

    async fn client_profile(
        &self,
        id: &str,
    ) -> Result<Option<(Client, ClientProfile)>, StoreError> {
        let rows: Vec<FullClientRow> = self.rows(&select_client_by_id(), &[s(id)]).await?;
        rows.into_iter()
            .next()
            .map(FullClientRow::into_records)
            .transpose()
    }

    async fn put_metadata_client(
        &self,
        client: &Client,
        profile: &ClientProfile,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        #[derive(Deserialize)]
        struct Uid {
            uid: String,
        }
        let args = binds(&put_metadata_client_values(client, profile, now)?);
        let rows: Vec<Uid> = self.rows(PUT_METADATA_CLIENT, &args).await?;
        Ok(rows.into_iter().next().map(|r| r.uid))
    }

    async fn register_client(
        &self,
        client: &Client,
        profile: &ClientProfile,
        now: i64,
    ) -> Result<Write, StoreError> {
        let sql = register_client_sql();
        let args = binds(&register_client_values(client, profile, now)?);
        self.batch(vec![(sql.as_str(), args)]).await
    }

    async fn touch_client(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.execute(TOUCH_CLIENT, &[s(id), n(now)]).await?;
        Ok(())
    }

    async fn expire_dynamic_clients(
        &self,
        unused_since: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let rows: Vec<Id> = self
            .rows(
                EXPIRE_DYNAMIC_CLIENTS,
                &[n(unused_since), n(i64::from(limit))],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    async fn set_client_secret(
        &self,
        id: &str,
        uid: &str,
        expected: Option<&SecretHash>,
        secret: &SecretSet,
    ) -> Result<Write, StoreError> {
        let hex = |h: Option<&SecretHash>| h.map_or(JsValue::NULL, |h| s(&h.to_hex()));
        let (prev, until) = secret
            .previous
            .as_ref()
            .map_or((JsValue::NULL, JsValue::NULL), |(h, t)| {
                (s(&h.to_hex()), n(*t))
            });
        self.batch(vec![(
            SET_CLIENT_SECRET,
            vec![
                s(id),
                s(uid),
                hex(expected),
                s(&secret.current.to_hex()),
                prev,
                until,
            ],
        )])
        .await
    }
}
