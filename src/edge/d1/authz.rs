//! D1 `consent_requests`, `remembered_approvals`, `authorization_codes`, `app_grants`,
//! `refresh_tokens` (and `tokens.grant_id`): the authorization server's flow storage
//! ([`ConsentRequests`], [`RememberedApprovals`], [`AuthorizationCodes`], [`AppGrants`]) over the
//! rows and conditional statements of `crate::storage::authz_rows`. Every write that must not
//! happen twice is one conditional statement or one batch (a D1 batch is a transaction).

use super::super::backend::EdgeBackend;
use super::super::counters::{bump, Op};
use super::super::js::{err, n, s};
use crate::authz::code::CodeUse;
use crate::authz::records::{
    AppGrant, AuthorizationCode, GrantEnd, PendingConsent, RefreshTokenRecord, RememberedApproval,
};
use crate::authz::store::{
    AppGrants, AuthorizationCodes, ConsentRequests, GrantRevoked, RememberedApprovals,
};
use crate::storage::authz_rows::{
    approval_values, code_columns, code_values, consent_columns, consent_values, grant_values,
    refresh_values, sql, ApprovalRow, Bind, CodeRow, ConsentRow, GrantRow, RefreshRow,
    APPROVAL_COLUMNS, GRANT_COLUMNS, REFRESH_COLUMNS,
};
use crate::storage::feed::{self as feed_sql, FeedStamp, Kind};
use crate::store::StoreError;
use crate::token::TokenHash;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::D1Result;

fn js(b: &Bind) -> JsValue {
    match b {
        Bind::Text(t) => s(t),
        Bind::OptText(t) => t.as_deref().map_or(JsValue::NULL, s),
        Bind::Int(i) => n(*i),
        Bind::OptInt(i) => i.map_or(JsValue::NULL, n),
    }
}

fn args(values: &[Bind]) -> Vec<JsValue> {
    values.iter().map(js).collect()
}

/// `INSERT INTO {table} ({columns}) VALUES (?1, ..., ?N)`.
fn insert(table: &str, columns: &str, count: usize) -> String {
    let placeholders: Vec<String> = (1..=count).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {table} ({columns}) VALUES ({})",
        placeholders.join(", ")
    )
}

fn changes(r: &D1Result) -> usize {
    r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0)
}

#[derive(Deserialize)]
struct HashRow {
    token_hash: String,
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

impl EdgeBackend {
    /// Runs statements in one D1 batch (a transaction) and returns each statement's result.
    async fn batch_results(
        &self,
        stmts: Vec<(&str, Vec<JsValue>)>,
    ) -> Result<Vec<D1Result>, StoreError> {
        bump(Op::D1Query);
        let db = self.db()?;
        let mut prepared = Vec::with_capacity(stmts.len());
        for (q, a) in stmts {
            prepared.push(db.prepare(q).bind(&a).map_err(err)?);
        }
        db.batch(prepared).await.map_err(err)
    }

    async fn one<T: serde::de::DeserializeOwned>(
        &self,
        q: &str,
        a: &[JsValue],
    ) -> Result<Option<T>, StoreError> {
        Ok(self.rows::<T>(q, a).await?.into_iter().next())
    }
}

impl ConsentRequests for EdgeBackend {
    async fn insert_consent(&self, c: &PendingConsent) -> Result<(), StoreError> {
        let v = consent_values(c);
        let q = insert("consent_requests", &consent_columns(), v.len());
        self.execute(&q, &args(&v)).await.map(|_| ())
    }

    async fn consent(
        &self,
        handle: &TokenHash,
        subject: &str,
        now: i64,
    ) -> Result<Option<PendingConsent>, StoreError> {
        let q = format!(
            "SELECT {} FROM consent_requests WHERE handle_hash = ?1 AND subject = ?2 \
             AND used_at IS NULL AND expires_at > ?3",
            consent_columns()
        );
        self.one::<ConsentRow>(&q, &[s(&handle.to_hex()), s(subject), n(now)])
            .await?
            .map(ConsentRow::into_record)
            .transpose()
    }

    async fn take_consent(
        &self,
        handle: &TokenHash,
        subject: &str,
        now: i64,
    ) -> Result<Option<PendingConsent>, StoreError> {
        self.one::<ConsentRow>(
            sql::TAKE_CONSENT,
            &[s(&handle.to_hex()), s(subject), n(now)],
        )
        .await?
        .map(ConsentRow::into_record)
        .transpose()
    }
}

impl RememberedApprovals for EdgeBackend {
    async fn remembered_approval(
        &self,
        subject: &str,
        client_uid: &str,
        redirect_key: &str,
        resource: &str,
    ) -> Result<Option<RememberedApproval>, StoreError> {
        let q = format!(
            "SELECT {APPROVAL_COLUMNS} FROM remembered_approvals WHERE subject = ?1 \
             AND client_uid = ?2 AND redirect_key = ?3 AND resource = ?4"
        );
        Ok(self
            .one::<ApprovalRow>(
                &q,
                &[s(subject), s(client_uid), s(redirect_key), s(resource)],
            )
            .await?
            .map(ApprovalRow::into_record))
    }

    /// Read, merge, upsert: two approvals of the same four keys at the same moment may keep
    /// only one's scopes, and the other's are then asked for again (never granted unasked).
    async fn remember_approval(&self, a: &RememberedApproval) -> Result<(), StoreError> {
        let mut merged = a.clone();
        if let Some(old) = self
            .remembered_approval(&a.subject, &a.client_uid, &a.redirect_key, &a.resource)
            .await?
        {
            for s in old.scopes {
                if !merged.scopes.contains(&s) {
                    merged.scopes.push(s);
                }
            }
        }
        let v = approval_values(&merged);
        let q = format!(
            "{} ON CONFLICT(subject, client_uid, redirect_key, resource) DO UPDATE SET \
             scopes = excluded.scopes, approved_at = excluded.approved_at",
            insert("remembered_approvals", APPROVAL_COLUMNS, v.len())
        );
        self.execute(&q, &args(&v)).await.map(|_| ())
    }

    async fn forget_approvals(&self, subject: &str, client_uid: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM remembered_approvals WHERE subject = ?1 AND client_uid = ?2",
            &[s(subject), s(client_uid)],
        )
        .await
        .map(|_| ())
    }
}

impl AuthorizationCodes for EdgeBackend {
    async fn insert_code(&self, c: &AuthorizationCode) -> Result<(), StoreError> {
        let v = code_values(c);
        let q = insert("authorization_codes", &code_columns(), v.len());
        self.execute(&q, &args(&v)).await.map(|_| ())
    }

    async fn consume_code(&self, hash: &TokenHash, now: i64) -> Result<CodeUse, StoreError> {
        let h = s(&hash.to_hex());
        if let Some(row) = self
            .one::<CodeRow>(sql::CONSUME_CODE, &[h.clone(), n(now)])
            .await?
        {
            return Ok(CodeUse::First(row.into_record()?));
        }
        let q = format!(
            "SELECT {} FROM authorization_codes WHERE code_hash = ?1",
            code_columns()
        );
        Ok(match self.one::<CodeRow>(&q, &[h]).await? {
            None => CodeUse::Unknown,
            Some(row) => {
                let c = row.into_record()?;
                if c.used_at.is_some() {
                    CodeUse::Replayed(c)
                } else {
                    CodeUse::Expired
                }
            }
        })
    }
}

impl AppGrants for EdgeBackend {
    async fn insert_grant(
        &self,
        g: &AppGrant,
        first_refresh: Option<&RefreshTokenRecord>,
    ) -> Result<(), StoreError> {
        let gv = grant_values(g);
        let gq = insert("app_grants", GRANT_COLUMNS, gv.len());
        let mut stmts = vec![(gq.as_str(), args(&gv))];
        let rq;
        if let Some(r) = first_refresh {
            let rv = refresh_values(r);
            rq = insert("refresh_tokens", REFRESH_COLUMNS, rv.len());
            stmts.push((rq.as_str(), args(&rv)));
        }
        self.batch_results(stmts).await.map(|_| ())
    }

    async fn grant(&self, id: &str) -> Result<Option<AppGrant>, StoreError> {
        let q = format!("SELECT {GRANT_COLUMNS} FROM app_grants WHERE id = ?1");
        self.one::<GrantRow>(&q, &[s(id)])
            .await?
            .map(GrantRow::into_record)
            .transpose()
    }

    async fn grants_of(
        &self,
        subject: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<AppGrant>, StoreError> {
        let q = format!(
            "SELECT {GRANT_COLUMNS} FROM app_grants WHERE subject = ?1 AND revoked_at IS NULL \
             AND expires_at > ?2 ORDER BY created_at DESC, id DESC LIMIT ?3"
        );
        self.rows::<GrantRow>(&q, &[s(subject), n(now), n(i64::from(limit))])
            .await?
            .into_iter()
            .map(GrantRow::into_record)
            .collect()
    }

    async fn grants_replaced_by(&self, g: &AppGrant, now: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<IdRow> = self
            .rows(
                "SELECT id FROM app_grants WHERE subject = ?1 AND client_uid = ?2 \
                 AND redirect_key = ?3 AND resource = ?4 AND id != ?5 \
                 AND revoked_at IS NULL AND expires_at > ?6",
                &[
                    s(&g.subject),
                    s(&g.client_uid),
                    s(&g.redirect_key),
                    s(&g.audience.resource),
                    s(&g.id),
                    n(now),
                ],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    async fn revoke_grant(
        &self,
        id: &str,
        now: i64,
        why: GrantEnd,
        feed: &FeedStamp,
    ) -> Result<Option<GrantRevoked>, StoreError> {
        let results = self
            .batch_results(vec![
                (sql::REVOKE_GRANT, vec![s(id), n(now), s(why.as_db())]),
                // its feed entry, only if the statement above revoked it (same transaction)
                (
                    feed_sql::APPEND_REVOKED_GRANT,
                    vec![s(id), n(now), n(feed.at_ms), n(feed.until(Kind::Grant))],
                ),
                (sql::REVOKE_GRANT_TOKENS, vec![s(id), n(now)]),
                ("SELECT id FROM app_grants WHERE id = ?1", vec![s(id)]),
                (
                    "SELECT token_hash FROM tokens WHERE grant_id = ?1",
                    vec![s(id)],
                ),
            ])
            .await?;
        let [revoked, _, _, found, tokens] = results.as_slice() else {
            return Err(StoreError::new("D1 batch: expected five results"));
        };
        if found.results::<IdRow>().map_err(err)?.is_empty() {
            return Ok(None);
        }
        let access_tokens = tokens
            .results::<HashRow>()
            .map_err(err)?
            .into_iter()
            .map(|r| {
                TokenHash::from_hex(&r.token_hash)
                    .ok_or_else(|| StoreError::new("bad token_hash in D1"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(GrantRevoked {
            newly: changes(revoked) > 0,
            access_tokens,
        }))
    }

    async fn touch_grant(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE app_grants SET last_used_at = ?2 WHERE id = ?1 \
             AND (last_used_at IS NULL OR last_used_at < ?2)",
            &[s(id), n(now)],
        )
        .await
        .map(|_| ())
    }

    async fn refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let q = format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = ?1");
        self.one::<RefreshRow>(&q, &[s(&hash.to_hex())])
            .await?
            .map(RefreshRow::into_record)
            .transpose()
    }

    async fn rotate_refresh(
        &self,
        next: &RefreshTokenRecord,
        presented: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let grant = s(&next.grant_id);
        let generation = n(next.generation);
        let results = self
            .batch_results(vec![
                (
                    sql::ROTATE_GRANT,
                    vec![grant.clone(), generation.clone(), n(presented), n(now)],
                ),
                (
                    sql::RETIRE_OLDER,
                    vec![grant.clone(), generation.clone(), n(now)],
                ),
                (
                    sql::INSERT_NEXT,
                    vec![
                        s(&next.hash.to_hex()),
                        grant,
                        generation,
                        n(next.created_at),
                        n(next.idle_expires_at),
                    ],
                ),
            ])
            .await?;
        Ok(results.first().is_some_and(|r| changes(r) > 0))
    }
}
