//! D1 `clients`, `api_resources`, `scopes`: [`Registry`] and [`AdminStore`].

use super::super::backend::EdgeBackend;
use super::super::js::{n, s};
use crate::authz::records::ClientProfile;
use crate::model::{ApiResource, Client, TokenFormat};
use crate::secret::SecretHash;
use crate::storage::authz_rows::client_profile_values;
use crate::storage::feed::{FeedStamp, Kind};
use crate::storage::rows::{ClientRow, ResourceRow};
use crate::store::{AdminStore, Registry, StoreError, Write};
use wasm_bindgen::JsValue;

const RESOURCE_SELECT: &str = "SELECT r.id, r.uid, r.secret_hash, r.previous_secret_hash, \
    r.previous_secret_expires_at, r.enabled, r.resource_uri, \
    (SELECT group_concat(name, ' ') FROM scopes WHERE resource_id = r.id) AS scopes, \
    (SELECT json_group_array(json_array(name, description)) FROM scopes \
     WHERE resource_id = r.id AND description IS NOT NULL) AS descriptions \
    FROM api_resources r";
const CLIENT_SELECT: &str =
    "SELECT id, uid, secret_hash, previous_secret_hash, previous_secret_expires_at, \
    allowed_scopes, token_format, token_lifetime, enabled FROM clients";

impl Registry for EdgeBackend {
    async fn api_resource(&self, id: &str) -> Result<Option<ApiResource>, StoreError> {
        let sql = format!("{RESOURCE_SELECT} WHERE r.id = ?1");
        let rows: Vec<ResourceRow> = self.rows(&sql, &[s(id)]).await?;
        rows.into_iter()
            .next()
            .map(ResourceRow::into_model)
            .transpose()
    }

    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let sql = format!("{CLIENT_SELECT} WHERE id = ?1");
        let rows: Vec<ClientRow> = self.rows(&sql, &[s(id)]).await?;
        rows.into_iter()
            .next()
            .map(ClientRow::into_model)
            .transpose()
    }
}

fn opt_s(v: Option<&str>) -> JsValue {
    v.map_or(JsValue::NULL, s)
}

fn opt_hash(p: Option<&(SecretHash, i64)>) -> (JsValue, JsValue) {
    p.map_or((JsValue::NULL, JsValue::NULL), |(h, until)| {
        (s(&h.to_hex()), n(*until))
    })
}

fn client_args(c: &Client) -> Vec<JsValue> {
    let (prev, until) = opt_hash(c.secret.as_ref().and_then(|x| x.previous.as_ref()));
    vec![
        s(&c.id),
        c.secret
            .as_ref()
            .map_or(JsValue::NULL, |x| s(&x.current.to_hex())),
        prev,
        until,
        s(&crate::scopes::join(&c.allowed_scopes)),
        s(match c.token_format {
            TokenFormat::Reference => "reference",
            TokenFormat::Jwt => "jwt",
        }),
        n(c.token_lifetime),
        n(i64::from(c.enabled)),
    ]
}

/// The profile of an administrator-made client, as `?9` .. `?15` after [`client_args`] (the
/// source is always `admin` here).
fn profile_args(p: &ClientProfile) -> Result<Vec<JsValue>, StoreError> {
    let mut v = client_profile_values(p)?;
    v.remove(0);
    Ok(super::binds(&v[..6]))
}

impl AdminStore for EdgeBackend {
    async fn create_client(
        &self,
        c: &Client,
        profile: &ClientProfile,
        now: i64,
    ) -> Result<Write, StoreError> {
        let mut args = client_args(c);
        args.extend(profile_args(profile)?);
        args.push(n(now));
        self.batch(vec![(
            "INSERT INTO clients (id, secret_hash, previous_secret_hash, previous_secret_expires_at, \
             allowed_scopes, token_format, token_lifetime, enabled, display_name, logo_uri, \
             redirect_uris, grant_types, refresh_tokens, metadata_expires_at, created_at, source) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 'admin')",
            args,
        )])
        .await
    }

    async fn update_client(
        &self,
        c: &Client,
        profile: &ClientProfile,
        feed: &FeedStamp,
    ) -> Result<Write, StoreError> {
        let mut args = client_args(c);
        args.extend(profile_args(profile)?);
        self.batch(vec![
            admin_client_changed(&c.id, feed),
            (
                "UPDATE clients SET secret_hash = ?2, previous_secret_hash = ?3, previous_secret_expires_at = ?4, \
                 allowed_scopes = ?5, token_format = ?6, token_lifetime = ?7, enabled = ?8, \
                 display_name = ?9, logo_uri = ?10, redirect_uris = ?11, grant_types = ?12, \
                 refresh_tokens = ?13, metadata_expires_at = ?14 WHERE id = ?1 AND source = 'admin'",
                args,
            ),
        ])
        .await
    }

    async fn delete_client(&self, id: &str, feed: &FeedStamp) -> Result<Write, StoreError> {
        self.batch(vec![
            admin_client_changed(id, feed),
            (
                "DELETE FROM clients WHERE id = ?1 AND source = 'admin'",
                vec![s(id)],
            ),
        ])
        .await
    }

    async fn list_resources(&self) -> Result<Vec<ApiResource>, StoreError> {
        let rows: Vec<ResourceRow> = self
            .rows(&format!("{RESOURCE_SELECT} ORDER BY r.id"), &[])
            .await?;
        rows.into_iter().map(ResourceRow::into_model).collect()
    }

    async fn create_resource(&self, r: &ApiResource, now: i64) -> Result<Write, StoreError> {
        let (prev, until) = opt_hash(r.secret.previous.as_ref());
        let mut stmts = vec![(
            "INSERT INTO api_resources (id, secret_hash, previous_secret_hash, previous_secret_expires_at, enabled, created_at, resource_uri) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            vec![s(&r.id), s(&r.secret.current.to_hex()), prev, until, n(i64::from(r.enabled)), n(now), opt_s(r.resource_uri.as_deref())],
        )];
        for scope in &r.scopes {
            stmts.push((
                "INSERT INTO scopes (name, resource_id) VALUES (?1, ?2)",
                vec![s(scope), s(&r.id)],
            ));
        }
        self.batch(stmts).await
    }

    async fn update_resource(&self, r: &ApiResource) -> Result<Write, StoreError> {
        let (prev, until) = opt_hash(r.secret.previous.as_ref());
        let mut stmts = vec![
            (
                "UPDATE api_resources SET secret_hash = ?2, previous_secret_hash = ?3, \
                 previous_secret_expires_at = ?4, enabled = ?5, resource_uri = ?6 WHERE id = ?1",
                vec![
                    s(&r.id),
                    s(&r.secret.current.to_hex()),
                    prev,
                    until,
                    n(i64::from(r.enabled)),
                    opt_s(r.resource_uri.as_deref()),
                ],
            ),
            ("DELETE FROM scopes WHERE resource_id = ?1", vec![s(&r.id)]),
        ];
        for scope in &r.scopes {
            stmts.push((
                "INSERT INTO scopes (name, resource_id) VALUES (?1, ?2)",
                vec![s(scope), s(&r.id)],
            ));
        }
        self.batch(stmts).await
    }

    async fn delete_resource(&self, id: &str) -> Result<Write, StoreError> {
        self.batch(vec![
            ("DELETE FROM scopes WHERE resource_id = ?1", vec![s(id)]),
            ("DELETE FROM api_resources WHERE id = ?1", vec![s(id)]),
        ])
        .await
    }
}

/// The `c` entry of administrator-made client `id` (its uid, if it exists), placed before its
/// update or delete in the same batch: every isolate reads the client again within the
/// revocation bound.
fn admin_client_changed<'a>(id: &str, feed: &FeedStamp) -> (&'a str, Vec<JsValue>) {
    (
        crate::storage::feed::APPEND_ADMIN_CLIENT_CHANGED,
        vec![s(id), n(feed.at_ms), n(feed.until(Kind::Client))],
    )
}
