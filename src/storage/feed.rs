//! D1 `revocation_feed` (migration 0013) as the runtime reads and writes it: the page query, the
//! conditional appends that ride in the batch of every statement that revokes, the trim, and the
//! mapping of a row to a [`feed::Entry`](crate::revocation::feed::Entry).
//!
//! Every append is an `INSERT ... SELECT ... WHERE <the revoking statement's own condition>`, placed
//! in the same `db.batch()` (one transaction) as that statement: the entry exists exactly when the
//! revocation does. Reads and the head come from one batch too, so a page is a consistent cut of
//! the feed.
//!
//! Numbered parameters below are the order the adapter binds them in; each statement's comment
//! says which is which. Times are Unix milliseconds except where said.

use crate::revocation::feed::{Entry, Key, Page};
pub use crate::revocation::stamp::{FeedStamp, Kind};
use crate::store::StoreError;
use serde::Deserialize;

/// Rows read per page query (one more is asked to tell whether the page reaches the head).
pub const PAGE_LIMIT: usize = 1000;

/// `?1` after (seq), `?2` how many rows at most. In commit order.
pub const PAGE: &str = "SELECT seq, kind, value, at_ms, until_ms FROM revocation_feed \
     WHERE seq > ?1 ORDER BY seq LIMIT ?2";

/// The last seq given out. The trim never deletes the newest row, so `MAX(seq)` is the head even
/// when every entry has expired (a head that went down would read as a feed restored to an
/// earlier point: every reader would start over).
pub const HEAD: &str = "SELECT COALESCE(MAX(seq), 0) AS head FROM revocation_feed";

/// `?1` now (ms) minus the clock allowance: rows kept until before then go, except the newest.
pub const TRIM: &str = "DELETE FROM revocation_feed WHERE until_ms < ?1 \
     AND seq < (SELECT MAX(seq) FROM revocation_feed)";

/// A plain append (a JWT id revoked: the feed row is D1's only record of it). `?1` kind, `?2`
/// value, `?3` at, `?4` until.
pub const APPEND: &str =
    "INSERT INTO revocation_feed (kind, value, at_ms, until_ms) VALUES (?1, ?2, ?3, ?4)";

/// After `UPDATE tokens SET revoked_at = ?2 ... WHERE id = ?1 AND revoked_at IS NULL`: an `r`
/// entry only if that update revoked the token. `?1` token id, `?2` `revoked_at` (seconds), `?3`
/// at, `?4` until. (Another revocation of the same token in the same second would add a second
/// entry for it: harmless.)
pub const APPEND_REVOKED_RECORD: &str =
    "INSERT INTO revocation_feed (kind, value, at_ms, until_ms) \
     SELECT 'r', id, ?3, ?4 FROM tokens WHERE id = ?1 AND revoked_at = ?2";

/// After a rotation's update (`SET token_hash = <new>, generation = generation + 1 WHERE ... AND
/// token_hash = <old>`), only if it happened (the row holds the new hash, which is unique): a `g`
/// entry with the new generation. `?1` token id, `?2` new hash (hex), `?3` at, `?4` until.
pub const APPEND_ROTATED_GENERATION: &str =
    "INSERT INTO revocation_feed (kind, value, at_ms, until_ms) \
     SELECT 'g', CAST(generation AS TEXT) || ' ' || id, ?3, ?4 FROM tokens \
     WHERE id = ?1 AND token_hash = ?2";

/// The same condition: the old token's `t` entry, for a rotation without grace (`?3` now) or
/// with a grace that ends before the entry's `until` (`?3` the end of the grace: the token dies
/// then; see `FeedStamp::old_token_dies_at`). `?1` token id, `?2` new hash (hex), `?3` at, `?4`
/// until, `?5` the old hash's prefix ([`token_prefix`]).
pub const APPEND_ROTATED_TOKEN: &str =
    "INSERT INTO revocation_feed (kind, value, at_ms, until_ms) \
     SELECT 't', ?5, ?3, ?4 FROM tokens WHERE id = ?1 AND token_hash = ?2";

/// Before `UPDATE retired_token_hashes SET grace_until = ?2 WHERE token_hash = ?1 AND
/// grace_until > ?2` (the end of a grace), with the same condition: a `t` entry only if the grace was still
/// running. `?1` retired hash (hex), `?2` now (seconds), `?3` at, `?4` until, `?5` its prefix.
pub const APPEND_GRACE_ENDED: &str = "INSERT INTO revocation_feed (kind, value, at_ms, until_ms) \
     SELECT 't', ?5, ?3, ?4 FROM retired_token_hashes WHERE token_hash = ?1 AND grace_until > ?2";

/// Before an update or delete of client `?1` (same batch): a `c` entry with its uid, if the
/// client exists. `?2` at, `?3` until.
pub const APPEND_CLIENT_CHANGED: &str =
    "INSERT INTO revocation_feed (kind, value, at_ms, until_ms) \
     SELECT 'c', uid, ?2, ?3 FROM clients WHERE id = ?1";

/// The same for an administrator-made client only (the admin API changes no self-registered
/// client, and a statement that changes nothing must append nothing: the batch's change count
/// says whether the client was found).
pub const APPEND_ADMIN_CLIENT_CHANGED: &str =
    "INSERT INTO revocation_feed (kind, value, at_ms, until_ms) \
     SELECT 'c', uid, ?2, ?3 FROM clients WHERE id = ?1 AND source = 'admin'";

/// Before an update or delete of API resource `?1` (same batch): a `c` entry with its uid. `?2`
/// at, `?3` until.
pub const APPEND_RESOURCE_CHANGED: &str =
    "INSERT INTO revocation_feed (kind, value, at_ms, until_ms) \
     SELECT 'c', uid, ?2, ?3 FROM api_resources WHERE id = ?1";

/// For the authorization server: after `UPDATE app_grants SET revoked_at = ?2 ... WHERE id = ?1
/// AND revoked_at IS NULL` in the same batch, an `a` entry only if that update revoked the grant.
/// `?1` grant id, `?2` `revoked_at` (seconds), `?3` at, `?4` until.
pub const APPEND_REVOKED_GRANT: &str =
    "INSERT INTO revocation_feed (kind, value, at_ms, until_ms) \
     SELECT 'a', id, ?3, ?4 FROM app_grants WHERE id = ?1 AND revoked_at = ?2";

/// Whether the feed holds a `j` entry for `?1` (a client JWT's id) kept until after `?2` (now,
/// ms): the source of truth for a JWT's revocation when an isolate's view is too old.
pub const JTI_REVOKED: &str = "SELECT COUNT(*) AS n FROM revocation_feed \
     WHERE value = ?1 AND kind = 'j' AND until_ms >= ?2";

/// The value of a `t` entry: the first 16 bytes of the token's SHA-256, lowercase hex.
pub fn token_prefix(hash: &crate::token::TokenHash) -> String {
    let mut out = String::with_capacity(32);
    if let Key::Token(p) = Key::token(hash) {
        out.push_str(&crate::encoding::hex(&p));
    }
    out
}

/// A row of [`PAGE`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedRow {
    pub seq: i64,
    pub kind: String,
    pub value: String,
    pub at_ms: i64,
    pub until_ms: i64,
}

/// The row of [`JTI_REVOKED`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountRow {
    pub n: i64,
}

/// The row of [`HEAD`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadRow {
    pub head: i64,
}

impl FeedRow {
    /// The entry, read through the one line parser (`feed::Entry::parse_line`): a row the
    /// parser refuses is an error; one of a kind this version does not know is `None`.
    pub fn into_entry(self) -> Result<Option<Entry>, StoreError> {
        let line = format!(
            "{} {} {} {} {}",
            self.seq, self.kind, self.at_ms, self.until_ms, self.value
        );
        Entry::parse_line(&line, 1).map_err(|e| {
            StoreError::new(format!(
                "revocation_feed row {} is unreadable: {e:?}",
                self.seq
            ))
        })
    }
}

/// The page of `rows` (read with a limit of `limit + 1`) since `after`, the feed's head being
/// `head` in the same transaction: [`crate::revocation::feed::FeedLog::since`]'s contract.
pub fn page(rows: Vec<FeedRow>, head: i64, after: u64, limit: usize) -> Result<Page, StoreError> {
    let more = rows.len() > limit;
    let mut entries = Vec::with_capacity(rows.len().min(limit));
    let mut last = after;
    for row in rows.into_iter().take(limit) {
        let seq = u64::try_from(row.seq).map_err(|_| StoreError::new("negative feed seq"))?;
        if seq <= last {
            return Err(StoreError::new("revocation_feed rows out of order"));
        }
        last = seq;
        entries.extend(row.into_entry()?);
    }
    let head = u64::try_from(head).map_err(|_| StoreError::new("negative feed head"))?;
    let through = if more { last } else { head.max(after) };
    Ok(Page {
        after,
        through,
        head,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::feed::{FeedLog, Retention};
    use crate::token::TokenHash;

    fn row(seq: i64, kind: &str, value: &str) -> FeedRow {
        FeedRow {
            seq,
            kind: kind.into(),
            value: value.into(),
            at_ms: 1_000,
            until_ms: 9_000,
        }
    }

    /// The pages of the D1 adapter follow the contract of the model (`FeedLog::since`): same
    /// entries, same `through`, whatever the limit and the cursor.
    #[test]
    fn pages_follow_the_model() {
        let mut log = FeedLog::new();
        let mut rows = Vec::new();
        for i in 1..=7i64 {
            let key = Key::Record(format!("p{i}"));
            log.append(key, 1_000, 9_000);
            rows.push(i);
        }
        for after in 0..=8u64 {
            for limit in 1..=8usize {
                let want = log.since(after, limit);
                let got_rows: Vec<FeedRow> = rows
                    .iter()
                    .filter(|s| u64::try_from(**s).is_ok_and(|s| s > after))
                    .take(limit + 1)
                    .map(|s| row(*s, "r", &format!("p{s}")))
                    .collect();
                let got = page(got_rows, 7, after, limit).unwrap();
                assert_eq!(got, want, "after {after} limit {limit}");
            }
        }
    }

    #[test]
    fn rows_become_entries_through_the_line_parser() {
        let hash = TokenHash([0xab; 32]);
        let prefix = token_prefix(&hash);
        assert_eq!(prefix, "ab".repeat(16));
        let e = row(3, "t", &prefix).into_entry().unwrap().unwrap();
        assert_eq!(e.key, Key::token(&hash));
        let g = row(4, "g", "2 pat1").into_entry().unwrap().unwrap();
        assert_eq!(g.key, Key::Generation("pat1".into(), 2));
        assert!(row(5, "z", "whatever").into_entry().unwrap().is_none());
        for bad in [("t", "ab"), ("g", "x pat"), ("r", "two words"), ("r", "")] {
            assert!(row(6, bad.0, bad.1).into_entry().is_err(), "{bad:?}");
        }
        let out_of_order = vec![row(5, "r", "a"), row(5, "r", "b")];
        assert!(page(out_of_order, 5, 0, 10).is_err());
    }

    #[test]
    fn stamps_follow_the_retention() {
        let s = FeedStamp {
            at_ms: 1_000_000,
            retention: Retention::DEFAULT,
        };
        let r = Retention::DEFAULT;
        assert_eq!(
            s.until(Kind::Token),
            1_000_000 + r.grant_cache_ms + r.margin_ms
        );
        assert_eq!(
            s.until(Kind::Generation),
            1_000_000 + r.exchanged_jwt_ms + r.margin_ms
        );
        assert_eq!(
            s.until(Kind::Client),
            1_000_000 + r.registry_ms + r.margin_ms
        );
        assert_eq!(
            s.until_jti(2_000),
            2_000_000 + r.jwt_leeway_ms + r.margin_ms
        );
        // a rotation's old token: now, at the end of a grace the entry outlives, or no entry
        let until = s.until(Kind::Token);
        assert_eq!(s.old_token_dies_at(None), Some(1_000_000));
        assert_eq!(s.old_token_dies_at(Some(1_005)), Some(1_005_000));
        assert_eq!(
            s.old_token_dies_at(Some(999)),
            Some(1_000_000),
            "never before now"
        );
        let last = (until - 1) / 1000;
        assert_eq!(s.old_token_dies_at(Some(last)), Some(last * 1000));
        assert_eq!(s.old_token_dies_at(Some(until / 1000 + 1)), None);
    }

    /// Every append names the columns of the migration and inserts its own kind.
    #[test]
    fn appends_insert_their_kind() {
        for (sql, kind) in [
            (APPEND_REVOKED_RECORD, "'r'"),
            (APPEND_ROTATED_GENERATION, "'g'"),
            (APPEND_ROTATED_TOKEN, "'t'"),
            (APPEND_GRACE_ENDED, "'t'"),
            (APPEND_CLIENT_CHANGED, "'c'"),
            (APPEND_ADMIN_CLIENT_CHANGED, "'c'"),
            (APPEND_RESOURCE_CHANGED, "'c'"),
            (APPEND_REVOKED_GRANT, "'a'"),
        ] {
            assert!(sql
                .starts_with("INSERT INTO revocation_feed (kind, value, at_ms, until_ms) SELECT "));
            assert!(sql.contains(kind), "{sql}");
        }
    }
}
