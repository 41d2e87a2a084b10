//! The storage traits over Workers bindings: KV `GRANTS`, D1 `DB`, Durable Object `LAST_USED`,
//! and `fetch` for the identity provider's JWKS.

use super::counters::{bump, Op};
use crate::model::{split_scopes, ApiResource, Client, Grant, SecretSet, TokenFormat, TokenRecord};
use crate::secret::SecretHash;
use crate::store::{Cursor, GrantCache, JwksFetcher, Registry, StoreError, TokenStore, UsageRecorder};
use crate::token::{TokenHash, TokenKind};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, Env, kv::KvStore, ObjectNamespace};

/// KV key prefix for grants: `g:{hex sha256}`. Persisted format: never change it.
const GRANT_PREFIX: &str = "g:";
/// KV refuses expirations less than 60 s ahead.
const KV_MIN_TTL: i64 = 60;

pub struct EdgeBackend {
    kv: KvStore,
    db: D1Database,
    last_used: ObjectNamespace,
}

impl EdgeBackend {
    pub fn new(env: &Env) -> worker::Result<Self> {
        Ok(EdgeBackend {
            kv: env.kv("GRANTS")?,
            db: env.d1("DB")?,
            last_used: env.durable_object("LAST_USED")?,
        })
    }
}

fn grant_key(hash: &TokenHash) -> String {
    let mut k = String::with_capacity(66);
    k.push_str(GRANT_PREFIX);
    k.push_str(&hash.to_hex());
    k
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(e)
}

impl GrantCache for EdgeBackend {
    async fn get_grant(&self, hash: &TokenHash) -> Result<Option<Grant>, StoreError> {
        bump(Op::KvGet);
        let text = self.kv.get(&grant_key(hash)).text().await.map_err(err)?;
        match text {
            None => Ok(None),
            // An unreadable record is treated as a miss: D1 answers and the record is rewritten.
            Some(t) => Ok(serde_json::from_str(&t).ok()),
        }
    }

    async fn put_grant(&self, hash: &TokenHash, grant: &Grant) -> Result<(), StoreError> {
        bump(Op::KvPut);
        let now = super::now_secs();
        let value = serde_json::to_string(grant).map_err(err)?;
        let exp = grant.exp.max(now + KV_MIN_TTL);
        self.kv
            .put(&grant_key(hash), value)
            .map_err(err)?
            .expiration(exp as u64)
            .execute()
            .await
            .map_err(err)
    }

    async fn delete_grant(&self, hash: &TokenHash) -> Result<(), StoreError> {
        bump(Op::KvDelete);
        self.kv.delete(&grant_key(hash)).await.map_err(err)
    }
}

#[derive(Deserialize)]
struct TokenRow {
    id: String,
    kind: String,
    token_hash: String,
    subject: String,
    client_id: String,
    name: Option<String>,
    scopes: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    use_count: i64,
}

impl TokenRow {
    fn into_record(self) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            kind: TokenKind::from_db(&self.kind).ok_or_else(|| err("bad token kind in D1"))?,
            hash: TokenHash::from_hex(&self.token_hash).ok_or_else(|| err("bad token hash in D1"))?,
            id: self.id,
            subject: self.subject,
            client_id: self.client_id,
            name: self.name,
            scopes: split_scopes(&self.scopes),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            use_count: self.use_count,
        })
    }
}

const TOKEN_COLUMNS: &str = "id, kind, token_hash, subject, client_id, name, scopes, created_at, \
                             expires_at, revoked_at, last_used_at, use_count";

impl EdgeBackend {
    async fn query_tokens(&self, sql: &str, args: &[JsValue]) -> Result<Vec<TokenRecord>, StoreError> {
        bump(Op::D1Query);
        let rows: Vec<TokenRow> = self
            .db
            .prepare(sql)
            .bind(args)
            .map_err(err)?
            .all()
            .await
            .map_err(err)?
            .results()
            .map_err(err)?;
        rows.into_iter().map(TokenRow::into_record).collect()
    }

    async fn execute(&self, sql: &str, args: &[JsValue]) -> Result<usize, StoreError> {
        bump(Op::D1Query);
        let r = self
            .db
            .prepare(sql)
            .bind(args)
            .map_err(err)?
            .run()
            .await
            .map_err(err)?;
        Ok(r.meta().map_err(err)?.and_then(|m| m.changes).unwrap_or(0))
    }
}

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn n(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

impl TokenStore for EdgeBackend {
    async fn insert_token(&self, rec: &TokenRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO tokens (id, kind, token_hash, subject, client_id, name, scopes, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                s(&rec.id),
                s(rec.kind.as_str()),
                s(&rec.hash.to_hex()),
                s(&rec.subject),
                s(&rec.client_id),
                rec.name.as_deref().map_or(JsValue::NULL, s),
                s(&rec.scopes.join(" ")),
                n(rec.created_at),
                n(rec.expires_at),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?1");
        Ok(self.query_tokens(&sql, &[s(&hash.to_hex())]).await?.into_iter().next())
    }

    async fn pat_for_subject(&self, subject: &str, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1 AND subject = ?2 AND kind = 'pat'"
        );
        Ok(self.query_tokens(&sql, &[s(id), s(subject)]).await?.into_iter().next())
    }

    async fn list_pats(
        &self,
        subject: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        match after {
            None => {
                let sql = format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE subject = ?1 AND kind = 'pat' \
                     ORDER BY created_at DESC, id DESC LIMIT ?2"
                );
                self.query_tokens(&sql, &[s(subject), n(i64::from(limit))]).await
            }
            Some((ts, id)) => {
                let sql = format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE subject = ?1 AND kind = 'pat' \
                     AND (created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
                     ORDER BY created_at DESC, id DESC LIMIT ?4"
                );
                self.query_tokens(&sql, &[s(subject), n(*ts), s(id), n(i64::from(limit))])
                    .await
            }
        }
    }

    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                &[s(id), n(now)],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn replace_token_hash(&self, id: &str, old: &TokenHash, new: &TokenHash) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE tokens SET token_hash = ?3 WHERE id = ?1 AND token_hash = ?2 AND revoked_at IS NULL",
                &[s(id), s(&old.to_hex()), s(&new.to_hex())],
            )
            .await?;
        Ok(changed > 0)
    }
}

fn secret_set(current: &str, previous: Option<String>, until: Option<i64>) -> Result<SecretSet, StoreError> {
    Ok(SecretSet {
        current: SecretHash::from_hex(current).ok_or_else(|| err("bad secret hash in D1"))?,
        previous: match (previous, until) {
            (Some(p), Some(u)) => Some((
                SecretHash::from_hex(&p).ok_or_else(|| err("bad previous secret hash in D1"))?,
                u,
            )),
            _ => None,
        },
    })
}

#[derive(Deserialize)]
struct ResourceRow {
    id: String,
    secret_hash: String,
    previous_secret_hash: Option<String>,
    previous_secret_expires_at: Option<i64>,
    enabled: i64,
    scopes: Option<String>,
}

#[derive(Deserialize)]
struct ClientRow {
    id: String,
    secret_hash: Option<String>,
    previous_secret_hash: Option<String>,
    previous_secret_expires_at: Option<i64>,
    allowed_scopes: String,
    token_format: String,
    token_lifetime: i64,
    enabled: i64,
}

impl Registry for EdgeBackend {
    async fn api_resource(&self, id: &str) -> Result<Option<ApiResource>, StoreError> {
        bump(Op::D1Query);
        let row: Option<ResourceRow> = self
            .db
            .prepare(
                "SELECT r.id, r.secret_hash, r.previous_secret_hash, r.previous_secret_expires_at, r.enabled, \
                 (SELECT group_concat(name, ' ') FROM scopes WHERE resource_id = r.id) AS scopes \
                 FROM api_resources r WHERE r.id = ?1",
            )
            .bind(&[s(id)])
            .map_err(err)?
            .first(None)
            .await
            .map_err(err)?;
        row.map(|r| {
            Ok(ApiResource {
                secret: secret_set(&r.secret_hash, r.previous_secret_hash, r.previous_secret_expires_at)?,
                id: r.id,
                enabled: r.enabled != 0,
                scopes: split_scopes(r.scopes.as_deref().unwrap_or("")),
            })
        })
        .transpose()
    }

    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        bump(Op::D1Query);
        let row: Option<ClientRow> = self
            .db
            .prepare(
                "SELECT id, secret_hash, previous_secret_hash, previous_secret_expires_at, allowed_scopes, \
                 token_format, token_lifetime, enabled FROM clients WHERE id = ?1",
            )
            .bind(&[s(id)])
            .map_err(err)?
            .first(None)
            .await
            .map_err(err)?;
        row.map(|r| {
            Ok(Client {
                secret: r
                    .secret_hash
                    .as_deref()
                    .map(|h| secret_set(h, r.previous_secret_hash, r.previous_secret_expires_at))
                    .transpose()?,
                id: r.id,
                allowed_scopes: split_scopes(&r.allowed_scopes),
                token_format: if r.token_format == "jwt" { TokenFormat::Jwt } else { TokenFormat::Reference },
                token_lifetime: r.token_lifetime,
                enabled: r.enabled != 0,
            })
        })
        .transpose()
    }
}

impl UsageRecorder for EdgeBackend {
    async fn record_use(&self, token_id: &str, at: i64, uses: u32) -> Result<(), StoreError> {
        bump(Op::DoCall);
        let stub = self
            .last_used
            .id_from_name(token_id)
            .and_then(|id| id.get_stub())
            .map_err(err)?;
        let body = serde_json::json!({ "token_id": token_id, "at": at, "uses": uses }).to_string();
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::Post).with_body(Some(JsValue::from_str(&body)));
        let req = worker::Request::new_with_init("https://last-used/record", &init).map_err(err)?;
        let resp = stub.fetch_with_request(req).await.map_err(err)?;
        if resp.status_code() != 204 {
            return Err(err(format!("last-used object answered {}", resp.status_code())));
        }
        Ok(())
    }
}

impl JwksFetcher for EdgeBackend {
    async fn fetch_jwks(&self, url: &str) -> Result<String, StoreError> {
        let url = worker::Url::parse(url).map_err(err)?;
        let mut resp = worker::Fetch::Url(url).send().await.map_err(err)?;
        if resp.status_code() != 200 {
            return Err(err(format!("JWKS endpoint answered {}", resp.status_code())));
        }
        resp.text().await.map_err(err)
    }
}
