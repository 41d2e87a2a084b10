//! The storage traits over Workers bindings: KV `GRANTS`, D1 `DB`, Durable Object `LAST_USED`,
//! and `fetch` for the identity provider's JWKS.

use super::counters::{bump, Op};
use crate::gate::route::GateRoute;
use crate::model::{
    split_scopes, token_insert_values, ApiResource, Client, Grant, SecretSet, SqlValue,
    TokenFormat, TokenRecord, TOKEN_INSERT_COLUMNS,
};
use crate::secret::SecretHash;
use crate::store::{
    AdminStore, Cursor, ExpiryNotice, ExpiryNotices, GrantCache, JwksFetcher, Limit, RateLimiter,
    Registry, Retired, RevocationNote, Revoked, RouteStore, StoreError, TokenStore, UsageRecorder,
    Write,
};
use crate::token::{TokenHash, TokenKind};
use serde::Deserialize;
use std::cell::OnceCell;
use wasm_bindgen::JsValue;
use worker::{kv::KvStore, D1Database, Env, ObjectNamespace};

/// KV key prefix for grants: `g:{hex sha256}`. Persisted format: never change it.
const GRANT_PREFIX: &str = "g:";
/// KV key prefix for revoked JWT ids: `d:{jti}`, expiring with the JWT. Persisted format.
const DENY_PREFIX: &str = "d:";
/// KV refuses expirations less than 60 s ahead.
const KV_MIN_TTL: i64 = 60;

/// The bindings, each looked up on first use: a garbage token touches none, an active PAT only KV.
pub struct EdgeBackend {
    env: Env,
    kv: OnceCell<KvStore>,
    db: OnceCell<D1Database>,
    last_used: OnceCell<ObjectNamespace>,
}

fn lazy<T>(cell: &OnceCell<T>, make: impl FnOnce() -> worker::Result<T>) -> Result<&T, StoreError> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = make().map_err(err)?;
    Ok(cell.get_or_init(|| v))
}

impl EdgeBackend {
    pub fn new(env: &Env) -> Self {
        EdgeBackend {
            env: env.clone(),
            kv: OnceCell::new(),
            db: OnceCell::new(),
            last_used: OnceCell::new(),
        }
    }

    fn kv(&self) -> Result<&KvStore, StoreError> {
        lazy(&self.kv, || self.env.kv("GRANTS"))
    }

    fn db(&self) -> Result<&D1Database, StoreError> {
        lazy(&self.db, || self.env.d1("DB"))
    }

    fn last_used(&self) -> Result<&ObjectNamespace, StoreError> {
        lazy(&self.last_used, || self.env.durable_object("LAST_USED"))
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
        let text = self.kv()?.get(&grant_key(hash)).text().await.map_err(err)?;
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
        self.kv()?
            .put(&grant_key(hash), value)
            .map_err(err)?
            .expiration(exp as u64)
            .execute()
            .await
            .map_err(err)
    }

    async fn delete_grant(&self, hash: &TokenHash) -> Result<(), StoreError> {
        bump(Op::KvDelete);
        self.kv()?.delete(&grant_key(hash)).await.map_err(err)
    }

    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        bump(Op::KvGet);
        let key = format!("{DENY_PREFIX}{jti}");
        Ok(self.kv()?.get(&key).text().await.map_err(err)?.is_some())
    }

    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StoreError> {
        bump(Op::KvPut);
        let exp = exp.max(super::now_secs() + KV_MIN_TTL);
        self.kv()?
            .put(&format!("{DENY_PREFIX}{jti}"), "1")
            .map_err(err)?
            .expiration(exp as u64)
            .execute()
            .await
            .map_err(err)
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
    generation: i64,
    client_uid: Option<String>,
    scope_owners: Option<String>,
    revoked_reason: Option<String>,
    revoked_url: Option<String>,
    allow_self_rotation: i64,
}

impl TokenRow {
    fn into_record(self) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            kind: TokenKind::from_db(&self.kind).ok_or_else(|| err("bad token kind in D1"))?,
            hash: TokenHash::from_hex(&self.token_hash)
                .ok_or_else(|| err("bad token hash in D1"))?,
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
            generation: self.generation,
            client_uid: self.client_uid,
            scope_owners: self.scope_owners.as_deref().map(split_scopes),
            revoked_reason: self.revoked_reason,
            revoked_url: self.revoked_url,
            allow_self_rotation: self.allow_self_rotation != 0,
        })
    }
}

#[derive(Deserialize)]
struct RetiredRow {
    token_hash: String,
    token_id: String,
    retired_at: i64,
    grace_until: Option<i64>,
}

impl RetiredRow {
    fn into_retired(self) -> Result<Retired, StoreError> {
        Ok(Retired {
            hash: TokenHash::from_hex(&self.token_hash)
                .ok_or_else(|| err("bad retired hash in D1"))?,
            token_id: self.token_id,
            retired_at: self.retired_at,
            grace_until: self.grace_until,
        })
    }
}

const TOKEN_COLUMNS: &str = "id, kind, token_hash, subject, client_id, name, scopes, created_at, \
                             expires_at, revoked_at, last_used_at, use_count, generation, \
                             client_uid, scope_owners, revoked_reason, revoked_url, \
                             allow_self_rotation";

impl EdgeBackend {
    async fn query_tokens(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> Result<Vec<TokenRecord>, StoreError> {
        bump(Op::D1Query);
        let rows: Vec<TokenRow> = self
            .db()?
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
            .db()?
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
        let values = token_insert_values(rec);
        let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO tokens ({TOKEN_INSERT_COLUMNS}) VALUES ({})",
            placeholders.join(", ")
        );
        let args: Vec<JsValue> = values
            .iter()
            .map(|v| match v {
                SqlValue::Text(t) => s(t),
                SqlValue::OptText(t) => t.as_deref().map_or(JsValue::NULL, s),
                SqlValue::Int(i) => n(*i),
            })
            .collect();
        self.execute(&sql, &args).await.map(|_| ())
    }

    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?1");
        Ok(self
            .query_tokens(&sql, &[s(&hash.to_hex())])
            .await?
            .into_iter()
            .next())
    }

    async fn pat_for_subject(
        &self,
        subject: &str,
        id: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1 AND subject = ?2 AND kind = 'pat'"
        );
        Ok(self
            .query_tokens(&sql, &[s(id), s(subject)])
            .await?
            .into_iter()
            .next())
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
                self.query_tokens(&sql, &[s(subject), n(i64::from(limit))])
                    .await
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

    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1");
        Ok(self.query_tokens(&sql, &[s(id)]).await?.into_iter().next())
    }

    async fn revoke_token(
        &self,
        id: &str,
        now: i64,
        why: Option<&RevocationNote>,
    ) -> Result<Option<Revoked>, StoreError> {
        #[derive(Deserialize)]
        struct HashRow {
            token_hash: String,
        }
        let hash = |rows: Vec<HashRow>| -> Result<Option<TokenHash>, StoreError> {
            rows.into_iter()
                .next()
                .map(|r| {
                    TokenHash::from_hex(&r.token_hash).ok_or_else(|| err("bad token hash in D1"))
                })
                .transpose()
        };
        // One conditional statement: the hash it returns is the one current at revocation, even
        // if a rotation changed it since the caller read the record.
        let rows: Vec<HashRow> = self
            .rows(
                "UPDATE tokens SET revoked_at = ?2, revoked_reason = ?3, revoked_url = ?4 \
                 WHERE id = ?1 AND revoked_at IS NULL RETURNING token_hash",
                &[
                    s(id),
                    n(now),
                    why.map_or(JsValue::NULL, |w| s(w.reason)),
                    why.and_then(|w| w.url.as_deref()).map_or(JsValue::NULL, s),
                ],
            )
            .await?;
        if let Some(h) = hash(rows)? {
            return Ok(Some(Revoked {
                hash: h,
                newly: true,
            }));
        }
        // Already revoked (its hash is frozen: rotation needs revoked_at IS NULL) or unknown.
        let rows: Vec<HashRow> = self
            .rows("SELECT token_hash FROM tokens WHERE id = ?1", &[s(id)])
            .await?;
        Ok(hash(rows)?.map(|h| Revoked {
            hash: h,
            newly: false,
        }))
    }

    async fn rotate_token(
        &self,
        id: &str,
        old: &TokenHash,
        new: &TokenHash,
        now: i64,
        grace_until: Option<i64>,
    ) -> Result<bool, StoreError> {
        // One transaction (a D1 batch): the conditional update, then the retired hash, recorded
        // only if the update happened (the row now has the new, unique hash).
        let (old, new) = (old.to_hex(), new.to_hex());
        let grace = grace_until.map_or(JsValue::NULL, n);
        let args = || vec![s(id), s(&old), s(&new), n(now)];
        let w = self
            .batch(vec![
                (
                    "UPDATE tokens SET token_hash = ?3, generation = generation + 1 \
                     WHERE id = ?1 AND token_hash = ?2 AND revoked_at IS NULL AND expires_at > ?4",
                    args(),
                ),
                (
                    "INSERT INTO retired_token_hashes (token_hash, token_id, retired_at, grace_until) \
                     SELECT ?2, id, ?4, ?5 FROM tokens WHERE id = ?1 AND token_hash = ?3",
                    {
                        let mut a = args();
                        a.push(grace);
                        a
                    },
                ),
            ])
            .await?;
        // Both change a row or neither does; a constraint error (a hash collision) is no rotation.
        Ok(w == Write::Done)
    }

    async fn retired_hashes(&self, id: &str, since: i64) -> Result<Vec<Retired>, StoreError> {
        let rows: Vec<RetiredRow> = self
            .rows(
                "SELECT token_hash, token_id, retired_at, grace_until FROM retired_token_hashes \
                 WHERE token_id = ?1 AND (retired_at >= ?2 OR grace_until >= ?2)",
                &[s(id), n(since)],
            )
            .await?;
        rows.into_iter().map(RetiredRow::into_retired).collect()
    }

    async fn retired_by_hash(&self, hash: &TokenHash) -> Result<Option<Retired>, StoreError> {
        let rows: Vec<RetiredRow> = self
            .rows(
                "SELECT token_hash, token_id, retired_at, grace_until FROM retired_token_hashes \
                 WHERE token_hash = ?1",
                &[s(&hash.to_hex())],
            )
            .await?;
        rows.into_iter()
            .next()
            .map(RetiredRow::into_retired)
            .transpose()
    }

    async fn end_grace(&self, hash: &TokenHash, now: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE retired_token_hashes SET grace_until = ?2 WHERE token_hash = ?1 AND grace_until > ?2",
            &[s(&hash.to_hex()), n(now)],
        )
        .await
        .map(|_| ())
    }

    async fn delete_token(&self, id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM tokens WHERE id = ?1", &[s(id)])
            .await
            .map(|_| ())
    }
}

fn secret_set(
    current: &str,
    previous: Option<String>,
    until: Option<i64>,
) -> Result<SecretSet, StoreError> {
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
    uid: Option<String>,
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
    uid: Option<String>,
}

const RESOURCE_SELECT: &str = "SELECT r.id, r.uid, r.secret_hash, r.previous_secret_hash, \
    r.previous_secret_expires_at, r.enabled, \
    (SELECT group_concat(name, ' ') FROM scopes WHERE resource_id = r.id) AS scopes \
    FROM api_resources r";
const CLIENT_SELECT: &str =
    "SELECT id, uid, secret_hash, previous_secret_hash, previous_secret_expires_at, \
    allowed_scopes, token_format, token_lifetime, enabled FROM clients";

impl ResourceRow {
    fn into_model(self) -> Result<ApiResource, StoreError> {
        Ok(ApiResource {
            secret: secret_set(
                &self.secret_hash,
                self.previous_secret_hash,
                self.previous_secret_expires_at,
            )?,
            id: self.id,
            uid: self.uid.unwrap_or_default(),
            enabled: self.enabled != 0,
            scopes: split_scopes(self.scopes.as_deref().unwrap_or("")),
        })
    }
}

impl ClientRow {
    fn into_model(self) -> Result<Client, StoreError> {
        Ok(Client {
            secret: self
                .secret_hash
                .as_deref()
                .map(|h| {
                    secret_set(
                        h,
                        self.previous_secret_hash,
                        self.previous_secret_expires_at,
                    )
                })
                .transpose()?,
            id: self.id,
            uid: self.uid.unwrap_or_default(),
            allowed_scopes: split_scopes(&self.allowed_scopes),
            // An unknown value is an error, never silently a reference token.
            token_format: match self.token_format.as_str() {
                "jwt" => TokenFormat::Jwt,
                "reference" => TokenFormat::Reference,
                other => return Err(err(format!("unknown token_format {other:?} in D1"))),
            },
            token_lifetime: self.token_lifetime,
            enabled: self.enabled != 0,
        })
    }
}

impl EdgeBackend {
    async fn rows<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> Result<Vec<T>, StoreError> {
        bump(Op::D1Query);
        self.db()?
            .prepare(sql)
            .bind(args)
            .map_err(err)?
            .all()
            .await
            .map_err(err)?
            .results()
            .map_err(err)
    }

    /// Runs statements in one D1 batch (a transaction). A constraint violation is a Conflict.
    async fn batch(&self, stmts: Vec<(&str, Vec<JsValue>)>) -> Result<Write, StoreError> {
        bump(Op::D1Query);
        let mut prepared = Vec::with_capacity(stmts.len());
        for (sql, args) in stmts {
            prepared.push(self.db()?.prepare(sql).bind(&args).map_err(err)?);
        }
        match self.db()?.batch(prepared).await {
            Ok(results) => {
                let changed: usize = results
                    .iter()
                    .filter_map(|r| r.meta().ok().flatten().and_then(|m| m.changes))
                    .sum();
                Ok(if changed > 0 {
                    Write::Done
                } else {
                    Write::NotFound
                })
            }
            Err(e) if e.to_string().contains("constraint") => Ok(Write::Conflict),
            Err(e) => Err(err(e)),
        }
    }
}

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
        s(&c.allowed_scopes.join(" ")),
        s(match c.token_format {
            TokenFormat::Reference => "reference",
            TokenFormat::Jwt => "jwt",
        }),
        n(c.token_lifetime),
        n(i64::from(c.enabled)),
    ]
}

impl AdminStore for EdgeBackend {
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows: Vec<ClientRow> = self
            .rows(&format!("{CLIENT_SELECT} ORDER BY id"), &[])
            .await?;
        rows.into_iter().map(ClientRow::into_model).collect()
    }

    async fn create_client(&self, c: &Client, now: i64) -> Result<Write, StoreError> {
        let mut args = client_args(c);
        args.push(n(now));
        self.batch(vec![(
            "INSERT INTO clients (id, secret_hash, previous_secret_hash, previous_secret_expires_at, \
             allowed_scopes, token_format, token_lifetime, enabled, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            args,
        )])
        .await
    }

    async fn update_client(&self, c: &Client) -> Result<Write, StoreError> {
        self.batch(vec![(
            "UPDATE clients SET secret_hash = ?2, previous_secret_hash = ?3, previous_secret_expires_at = ?4, \
             allowed_scopes = ?5, token_format = ?6, token_lifetime = ?7, enabled = ?8 WHERE id = ?1",
            client_args(c),
        )])
        .await
    }

    async fn delete_client(&self, id: &str) -> Result<Write, StoreError> {
        self.batch(vec![("DELETE FROM clients WHERE id = ?1", vec![s(id)])])
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
            "INSERT INTO api_resources (id, secret_hash, previous_secret_hash, previous_secret_expires_at, enabled, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vec![s(&r.id), s(&r.secret.current.to_hex()), prev, until, n(i64::from(r.enabled)), n(now)],
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
                 previous_secret_expires_at = ?4, enabled = ?5 WHERE id = ?1",
                vec![
                    s(&r.id),
                    s(&r.secret.current.to_hex()),
                    prev,
                    until,
                    n(i64::from(r.enabled)),
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

impl JwksFetcher for EdgeBackend {
    /// Also fetches the secret scanning public keys (`SECRET_SCANNING_KEYS_URL`): GitHub's API
    /// refuses requests without a `User-Agent`.
    async fn fetch_jwks(&self, url: &str) -> Result<String, StoreError> {
        let headers = worker::Headers::new();
        headers.set("user-agent", "patgate").map_err(err)?;
        headers.set("accept", "application/json").map_err(err)?;
        let mut init = worker::RequestInit::new();
        init.with_headers(headers);
        let req = worker::Request::new_with_init(url, &init).map_err(err)?;
        let mut resp = worker::Fetch::Request(req).send().await.map_err(err)?;
        if resp.status_code() != 200 {
            return Err(err(format!(
                "JWKS endpoint answered {}",
                resp.status_code()
            )));
        }
        resp.text().await.map_err(err)
    }
}

/// A row of D1 `gate_routes`.
#[derive(Deserialize)]
struct RouteRow {
    id: String,
    host: String,
    path_prefix: String,
    upstream: String,
    resource_id: String,
    rules: String,
}

impl RouteRow {
    fn into_model(self) -> Result<GateRoute, StoreError> {
        Ok(GateRoute {
            id: self.id,
            host: (!self.host.is_empty()).then_some(self.host),
            path_prefix: self.path_prefix,
            upstream: self.upstream,
            resource: self.resource_id,
            rules: serde_json::from_str(&self.rules)
                .map_err(|e| err(format!("gate_routes.rules: {e}")))?,
        })
    }
}

impl RouteStore for EdgeBackend {
    async fn list_routes(&self) -> Result<Vec<GateRoute>, StoreError> {
        let rows: Vec<RouteRow> = self
            .rows(
                "SELECT id, host, path_prefix, upstream, resource_id, rules FROM gate_routes ORDER BY id",
                &[],
            )
            .await?;
        rows.into_iter().map(RouteRow::into_model).collect()
    }

    async fn put_route(&self, r: &GateRoute, now: i64) -> Result<Write, StoreError> {
        let rules = serde_json::to_string(&r.rules).map_err(err)?;
        self.batch(vec![(
            "INSERT INTO gate_routes (id, host, path_prefix, upstream, resource_id, rules, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
             ON CONFLICT(id) DO UPDATE SET host = excluded.host, path_prefix = excluded.path_prefix, \
             upstream = excluded.upstream, resource_id = excluded.resource_id, rules = excluded.rules, \
             updated_at = excluded.updated_at",
            vec![
                s(&r.id),
                s(r.host.as_deref().unwrap_or("")),
                s(&r.path_prefix),
                s(&r.upstream),
                s(&r.resource),
                s(&rules),
                n(now),
            ],
        )])
        .await
    }

    async fn delete_route(&self, id: &str) -> Result<Write, StoreError> {
        self.batch(vec![("DELETE FROM gate_routes WHERE id = ?1", vec![s(id)])])
            .await
    }
}

/// The Rate Limiting binding of each limit (wrangler.toml `[[ratelimits]]`). A binding that is not
/// configured means no limit.
fn limit_binding(limit: Limit) -> &'static str {
    match limit {
        Limit::FailedAuthPerClient => "RL_FAILED_AUTH_CLIENT",
        Limit::FailedAuthPerIp => "RL_FAILED_AUTH_IP",
        Limit::PatCreationsPerUser => "RL_PAT_CREATE",
        Limit::TokenEndpointPerIp => "RL_TOKEN_IP",
    }
}

impl RateLimiter for EdgeBackend {
    async fn over_limit(&self, limit: Limit, key: &str) -> Result<bool, StoreError> {
        let Ok(binding) = self.env.rate_limiter(limit_binding(limit)) else {
            return Ok(false);
        };
        bump(Op::RateLimit);
        let outcome = binding.limit(key.to_owned()).await.map_err(err)?;
        Ok(!outcome.success)
    }
}

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
}
