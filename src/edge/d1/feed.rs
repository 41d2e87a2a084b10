//! D1 `revocation_feed`: [`RevocationFeed`] (the statements and the row mapping are in
//! `storage::feed`; the appends that ride with a revocation are in the adapters of the tables
//! they revoke in).

use super::super::backend::EdgeBackend;
use super::super::counters::{bump, Op};
use super::super::js::{err, n, s};
use crate::revocation::feed::Page;
use crate::storage::feed::{self as sql, CountRow, FeedRow, HeadRow, PAGE_LIMIT};
use crate::store::{FeedAppend, RevocationFeed, StoreError};
use wasm_bindgen::JsValue;

impl RevocationFeed for EdgeBackend {
    async fn feed_since(&self, after: u64) -> Result<Page, StoreError> {
        super::super::dev_faults::feed_fault()?;
        bump(Op::FeedQuery);
        let db = self.db()?;
        // One batch (one transaction): the page and the head are a consistent cut.
        let stmts = vec![
            db.prepare(sql::PAGE)
                .bind(&[n(after as i64), n((PAGE_LIMIT + 1) as i64)])
                .map_err(err)?,
            db.prepare(sql::HEAD).bind(&[]).map_err(err)?,
        ];
        let results = db.batch(stmts).await.map_err(err)?;
        let [rows, head] = results.as_slice() else {
            return Err(err("D1 batch: expected two results"));
        };
        let rows: Vec<FeedRow> = rows.results().map_err(err)?;
        let head = head
            .results::<HeadRow>()
            .map_err(err)?
            .first()
            .map_or(0, |h| h.head);
        sql::page(rows, head, after, PAGE_LIMIT)
    }

    async fn append_feed(&self, entries: &[FeedAppend]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut stmts: Vec<(&str, Vec<JsValue>)> = Vec::with_capacity(entries.len());
        for e in entries {
            let (kind, value) = e
                .key
                .kind_and_value()
                .map_err(|_| err("a revocation feed entry with an unwritable value"))?;
            stmts.push((
                sql::APPEND,
                vec![
                    s(kind.encode_utf8(&mut [0; 4])),
                    s(&value),
                    n(e.at_ms),
                    n(e.until_ms),
                ],
            ));
        }
        self.batch(stmts).await.map(|_| ())
    }

    async fn jti_in_feed(&self, jti: &str, now_ms: i64) -> Result<bool, StoreError> {
        let rows: Vec<CountRow> = self.rows(sql::JTI_REVOKED, &[s(jti), n(now_ms)]).await?;
        Ok(rows.first().is_some_and(|r| r.n > 0))
    }

    async fn trim_feed(&self, before_ms: i64) -> Result<u64, StoreError> {
        let changed = self.execute(sql::TRIM, &[n(before_ms)]).await?;
        Ok(changed as u64)
    }
}
