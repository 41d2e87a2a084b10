//! D1 `gate_routes`: [`RouteStore`].

use super::super::backend::EdgeBackend;
use super::super::js::{n, s};
use crate::gate::route::GateRoute;
use crate::storage::rows::RouteRow;
use crate::store::{RouteStore, StoreError, Write};
use wasm_bindgen::JsValue;

impl RouteStore for EdgeBackend {
    async fn list_routes(&self) -> Result<Vec<GateRoute>, StoreError> {
        let rows: Vec<RouteRow> = self
            .rows(
                "SELECT id, host, path_prefix, upstream, resource_id, rules, cors FROM gate_routes ORDER BY id",
                &[],
            )
            .await?;
        rows.into_iter().map(RouteRow::into_model).collect()
    }

    async fn put_route(&self, r: &GateRoute, now: i64) -> Result<Write, StoreError> {
        let rules = RouteRow::rules_column(&r.rules)?;
        let cors = RouteRow::cors_column(r.cors.as_ref())?;
        self.batch(vec![(
            "INSERT INTO gate_routes (id, host, path_prefix, upstream, resource_id, rules, created_at, updated_at, cors) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8) \
             ON CONFLICT(id) DO UPDATE SET host = excluded.host, path_prefix = excluded.path_prefix, \
             upstream = excluded.upstream, resource_id = excluded.resource_id, rules = excluded.rules, \
             updated_at = excluded.updated_at, cors = excluded.cors",
            vec![
                s(&r.id),
                s(r.host.as_deref().unwrap_or("")),
                s(&r.path_prefix),
                s(&r.upstream),
                s(&r.resource),
                s(&rules),
                n(now),
                cors.as_deref().map_or(JsValue::NULL, JsValue::from_str),
            ],
        )])
        .await
    }

    async fn delete_route(&self, id: &str) -> Result<Write, StoreError> {
        self.batch(vec![("DELETE FROM gate_routes WHERE id = ?1", vec![s(id)])])
            .await
    }
}
