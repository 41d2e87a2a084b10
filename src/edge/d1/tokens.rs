//! D1 `tokens` and `retired_token_hashes`: [`TokenStore`].

use super::super::backend::EdgeBackend;
use super::super::counters::{bump, Op};
use super::super::js::{err, n, s};
use crate::model::{token_insert_values, SqlValue, TokenRecord, TOKEN_INSERT_COLUMNS};
use crate::origin::ClientOrigin;
use crate::storage::feed::{self as feed_sql, FeedStamp, Kind};
use crate::storage::rows::{RetiredRow, TokenRow, LEAK_URLS_COLUMN, TOKEN_COLUMNS};
use crate::store::{Cursor, Retired, RevocationNote, Revoked, StoreError, TokenStore, Write};
use crate::token::TokenHash;
use serde::Deserialize;
use wasm_bindgen::JsValue;

impl EdgeBackend {
    pub(super) async fn query_tokens(
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

    pub(super) async fn execute(&self, sql: &str, args: &[JsValue]) -> Result<usize, StoreError> {
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
        let sql =
            format!("SELECT {TOKEN_COLUMNS}, {LEAK_URLS_COLUMN} FROM tokens WHERE token_hash = ?1");
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
            "SELECT {TOKEN_COLUMNS}, {LEAK_URLS_COLUMN} FROM tokens WHERE id = ?1 AND subject = ?2 AND kind = 'pat'"
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
                    "SELECT {TOKEN_COLUMNS}, {LEAK_URLS_COLUMN} FROM tokens WHERE subject = ?1 AND kind = 'pat' \
                     ORDER BY created_at DESC, id DESC LIMIT ?2"
                );
                self.query_tokens(&sql, &[s(subject), n(i64::from(limit))])
                    .await
            }
            Some((ts, id)) => {
                let sql = format!(
                    "SELECT {TOKEN_COLUMNS}, {LEAK_URLS_COLUMN} FROM tokens WHERE subject = ?1 AND kind = 'pat' \
                     AND (created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
                     ORDER BY created_at DESC, id DESC LIMIT ?4"
                );
                self.query_tokens(&sql, &[s(subject), n(*ts), s(id), n(i64::from(limit))])
                    .await
            }
        }
    }

    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS}, {LEAK_URLS_COLUMN} FROM tokens WHERE id = ?1");
        Ok(self.query_tokens(&sql, &[s(id)]).await?.into_iter().next())
    }

    async fn revoke_token(
        &self,
        id: &str,
        now: i64,
        why: Option<&RevocationNote>,
        feed: &FeedStamp,
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
        // if a rotation changed it since the caller read the record. Its feed entry rides in the
        // same batch (one transaction), written only if this statement revoked the token.
        let rows: Vec<HashRow> = self
            .batch_first_rows(vec![
                (
                    "UPDATE tokens SET revoked_at = ?2, revoked_reason = ?3, revoked_url = ?4, \
                     revoked_message = ?5 WHERE id = ?1 AND revoked_at IS NULL RETURNING token_hash",
                    vec![
                        s(id),
                        n(now),
                        why.map_or(JsValue::NULL, |w| s(w.reason)),
                        why.and_then(|w| w.url.as_deref()).map_or(JsValue::NULL, s),
                        why.and_then(|w| w.message.as_deref())
                            .map_or(JsValue::NULL, s),
                    ],
                ),
                (
                    feed_sql::APPEND_REVOKED_RECORD,
                    vec![s(id), n(now), n(feed.at_ms), n(feed.until(Kind::Record))],
                ),
            ])
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
        feed: &FeedStamp,
    ) -> Result<bool, StoreError> {
        // One transaction (a D1 batch): the conditional update, then the retired hash and the
        // feed entries, written only if the update happened (the row now has the new, unique
        // hash): the new generation, and the old token itself (see `old_token_dies_at`).
        let prefix = feed_sql::token_prefix(old);
        let (old, new) = (old.to_hex(), new.to_hex());
        let grace = grace_until.map_or(JsValue::NULL, n);
        let args = || vec![s(id), s(&old), s(&new), n(now)];
        let appended = |kind: Kind, at_ms: i64| {
            let mut a = vec![s(id), s(&new), n(at_ms), n(feed.until(kind))];
            if kind == Kind::Token {
                a.push(s(&prefix));
            }
            a
        };
        let mut stmts = vec![
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
            (
                feed_sql::APPEND_ROTATED_GENERATION,
                appended(Kind::Generation, feed.at_ms),
            ),
        ];
        // the old token dies now, or at the end of a grace that ends while a grant of it read
        // before the rotation may still be trusted somewhere
        if let Some(dies_at) = feed.old_token_dies_at(grace_until) {
            stmts.push((
                feed_sql::APPEND_ROTATED_TOKEN,
                appended(Kind::Token, dies_at),
            ));
        }
        let w = self.batch(stmts).await?;
        // All change a row or none does; a constraint error (a hash collision) is no rotation.
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

    async fn end_grace(
        &self,
        hash: &TokenHash,
        now: i64,
        feed: &FeedStamp,
    ) -> Result<(), StoreError> {
        // The feed entry first, under the update's own condition, in the same transaction.
        let hex = hash.to_hex();
        self.batch(vec![
            (
                feed_sql::APPEND_GRACE_ENDED,
                vec![
                    s(&hex),
                    n(now),
                    n(feed.at_ms),
                    n(feed.until(Kind::Token)),
                    s(&feed_sql::token_prefix(hash)),
                ],
            ),
            (
                "UPDATE retired_token_hashes SET grace_until = ?2 WHERE token_hash = ?1 AND grace_until > ?2",
                vec![s(&hex), n(now)],
            ),
        ])
        .await
        .map(|_| ())
    }

    async fn record_reuse(
        &self,
        id: &str,
        at: i64,
        origin: &ClientOrigin,
        rotated_at: i64,
    ) -> Result<(), StoreError> {
        let opt = |v: &Option<String>| v.as_deref().map_or(JsValue::NULL, s);
        self.execute(
            "UPDATE tokens SET reuse_count = reuse_count + 1, \
             first_reuse_at = COALESCE(first_reuse_at, ?2), last_reuse_at = ?2, \
             last_reuse_ip = ?3, last_reuse_colo = ?4, last_reuse_country = ?5, \
             last_reuse_rotated_at = ?6 WHERE id = ?1",
            &[
                s(id),
                n(at),
                opt(&origin.ip),
                opt(&origin.colo),
                opt(&origin.country),
                n(rotated_at),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn token_by_any_hash(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(TokenRecord, Option<Retired>)>, StoreError> {
        #[derive(Deserialize)]
        struct RetiredColumns {
            retired_at: Option<i64>,
            grace_until: Option<i64>,
        }
        // One statement: the row whose current hash it is, or the row it was rotated away from
        // (both lookups by unique index), with the retired hash's times.
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, {LEAK_URLS_COLUMN}, \
             (SELECT retired_at FROM retired_token_hashes WHERE token_hash = ?1) AS retired_at, \
             (SELECT grace_until FROM retired_token_hashes WHERE token_hash = ?1) AS grace_until \
             FROM tokens WHERE token_hash = ?1 \
             OR id = (SELECT token_id FROM retired_token_hashes WHERE token_hash = ?1) LIMIT 1"
        );
        bump(Op::D1Query);
        let result = self
            .db()?
            .prepare(&sql)
            .bind(&[s(&hash.to_hex())])
            .map_err(err)?
            .all()
            .await
            .map_err(err)?;
        let rows: Vec<TokenRow> = result.results().map_err(err)?;
        let times: Vec<RetiredColumns> = result.results().map_err(err)?;
        let Some((row, times)) = rows.into_iter().zip(times).next() else {
            return Ok(None);
        };
        let rec = row.into_record()?;
        if rec.hash == *hash {
            return Ok(Some((rec, None)));
        }
        let retired = Retired {
            hash: *hash,
            token_id: rec.id.clone(),
            retired_at: times
                .retired_at
                .ok_or_else(|| err("a retired hash without retired_at in D1"))?,
            grace_until: times.grace_until,
        };
        Ok(Some((rec, Some(retired))))
    }

    async fn record_leak_url(&self, id: &str, url: &str, at: i64) -> Result<(), StoreError> {
        // One transaction: the URL (again: moved to the front), then all but the newest
        // MAX_LEAK_URLS of the token's URLs dropped (ties: the later insert is newer).
        let keep = crate::model::MAX_LEAK_URLS as i64;
        self.batch(vec![
            (
                "INSERT INTO leak_reports (token_id, url, reported_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (token_id, url) DO UPDATE \
                 SET reported_at = MAX(reported_at, excluded.reported_at)",
                vec![s(id), s(url), n(at)],
            ),
            (
                "DELETE FROM leak_reports WHERE token_id = ?1 AND rowid NOT IN \
                 (SELECT rowid FROM leak_reports WHERE token_id = ?1 \
                  ORDER BY reported_at DESC, rowid DESC LIMIT ?2)",
                vec![s(id), n(keep)],
            ),
        ])
        .await
        .map(|_| ())
    }

    async fn delete_token(&self, id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM tokens WHERE id = ?1", &[s(id)])
            .await
            .map(|_| ())
    }
}
