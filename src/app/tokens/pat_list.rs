//! One page of a user's PATs in one of three orders ([`PatSort`]): newest first (the default),
//! most recently used first, or least recently used first (never used ones before all others:
//! the tokens to clean up). The JSON API (`GET /api/pats?sort=`) and the token page (`/tokens`)
//! share it.
//!
//! The page position is a keyset cursor that names its order: `{sort}.{value}.{id}` (base64url),
//! the value being the sort column of the page's last row (`created_at`, or `last_used_at` with
//! never used as 0). A cursor is only valid with the order that made it: used with another it is
//! refused (400), never read as a position in a different order, so no row is skipped or shown
//! twice.

use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::model::TokenRecord;
use crate::storage::inventory::sort_value;
use crate::store::Backend;
use crate::store_usage::{InventoryQuery, KindFilter, SortKey};
use base64::Engine as _;

/// The order of a user's PAT list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PatSort {
    /// Newest first (`created_at`, then id, descending).
    #[default]
    Newest,
    /// Most recently used first; never used ones last.
    LastUsed,
    /// Least recently used first; never used ones first.
    LeastRecentlyUsed,
}

impl PatSort {
    pub const ALL: [PatSort; 3] = [
        PatSort::Newest,
        PatSort::LastUsed,
        PatSort::LeastRecentlyUsed,
    ];

    /// The `sort` parameter's value.
    pub fn as_str(self) -> &'static str {
        match self {
            PatSort::Newest => "newest",
            PatSort::LastUsed => "last_used",
            PatSort::LeastRecentlyUsed => "least_recently_used",
        }
    }

    /// The `sort` parameter (absent: newest first); an unknown value is a 400 naming the known.
    pub fn parse(v: Option<&str>) -> Result<Self, Error> {
        let Some(v) = v else {
            return Ok(PatSort::Newest);
        };
        PatSort::ALL
            .into_iter()
            .find(|s| s.as_str() == v)
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "sort must be one of {}",
                    PatSort::ALL.map(PatSort::as_str).join(", ")
                ))
            })
    }

    fn key(self) -> SortKey {
        match self {
            PatSort::Newest => SortKey::Created,
            PatSort::LastUsed | PatSort::LeastRecentlyUsed => SortKey::LastUsed,
        }
    }
}

/// A keyset position in one order: the sort value and id of the last row shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatCursor {
    pub value: i64,
    pub id: String,
}

fn make_cursor(rec: &TokenRecord, sort: PatSort) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}.{}.{}",
        sort.as_str(),
        sort_value(rec, sort.key()),
        rec.id
    ))
}

/// The `cursor` parameter for a list in order `sort`.
pub fn parse_cursor(s: &str, sort: PatSort) -> Result<PatCursor, Error> {
    let bad = || Error::InvalidRequest("cursor is not valid".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '.');
    let (Some(k), Some(v), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !PatSort::ALL.iter().any(|s| s.as_str() == k) || id.is_empty() {
        return Err(bad());
    }
    if k != sort.as_str() {
        return Err(Error::InvalidRequest(format!(
            "cursor belongs to another sort order: repeat sort={k}, or start again without a \
             cursor"
        )));
    }
    Ok(PatCursor {
        value: v.parse().map_err(|_| bad())?,
        id: id.to_owned(),
    })
}

/// The query of a page of `sub`'s PATs by last use (the inventory's reading of `tokens`, which
/// D1 serves from the index on `(subject, kind, COALESCE(last_used_at, 0), id)`).
fn by_last_use(
    sub: &str,
    sort: PatSort,
    after: Option<&PatCursor>,
    limit: u32,
    now: i64,
) -> InventoryQuery {
    InventoryQuery {
        kind: KindFilter::Pat,
        status: None,
        expiring_within_days: None,
        unused_for_days: None,
        leaked: None,
        client: None,
        scope: None,
        user: Some(sub.to_owned()),
        sort: sort.key(),
        descending: sort == PatSort::LastUsed,
        after: after.map(|c| (c.value, c.id.clone())),
        limit,
        now,
    }
}

/// One page of `sub`'s PATs in order `sort`, strictly after `after`, and the cursor of the next
/// page if there is one.
pub async fn list_for<B: Backend>(
    ctx: &Ctx<'_, B>,
    sub: &str,
    sort: PatSort,
    after: Option<&PatCursor>,
    limit: u32,
) -> Result<(Vec<TokenRecord>, Option<String>), Error> {
    let mut recs = match sort {
        PatSort::Newest => {
            let after = after.map(|c| (c.value, c.id.clone()));
            ctx.backend
                .list_pats(sub, after.as_ref(), limit + 1)
                .await?
        }
        PatSort::LastUsed | PatSort::LeastRecentlyUsed => {
            let q = by_last_use(sub, sort, after, limit + 1, ctx.now);
            ctx.backend.inventory(&q).await?
        }
    };
    let next = if recs.len() > limit as usize {
        recs.truncate(limit as usize);
        recs.last().map(|r| make_cursor(r, sort))
    } else {
        None
    };
    Ok((recs, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden: the SQL of both last-use orders, in the expression and column order of the
    /// index `tokens_by_subject_last_use` (migration 0016), so D1 reads no more than the page.
    #[test]
    fn the_last_use_orders_read_the_subjects_index() {
        use crate::storage::inventory::page_sql;
        let after = PatCursor {
            value: 7,
            id: "x".into(),
        };
        let q = by_last_use("alice", PatSort::LastUsed, Some(&after), 21, 0);
        let (sql, args) = page_sql(&q, "id");
        assert_eq!(
            sql,
            "SELECT id FROM tokens WHERE kind = 'pat' AND subject = ?1 AND \
             (COALESCE(last_used_at, 0) < ?2 OR (COALESCE(last_used_at, 0) = ?2 AND id < ?3)) \
             ORDER BY COALESCE(last_used_at, 0) DESC, id DESC LIMIT ?4"
        );
        assert_eq!(args.len(), 4);
        let q = by_last_use("alice", PatSort::LeastRecentlyUsed, None, 21, 0);
        assert_eq!(
            page_sql(&q, "id").0,
            "SELECT id FROM tokens WHERE kind = 'pat' AND subject = ?1 \
             ORDER BY COALESCE(last_used_at, 0) ASC, id ASC LIMIT ?2"
        );
        let index = include_str!("../../../migrations/0016_usage_indexes.sql");
        assert!(index.contains(
            "CREATE INDEX tokens_by_subject_last_use ON tokens(subject, kind, \
             COALESCE(last_used_at, 0), id);"
        ));
    }

    #[test]
    fn sort_values_and_errors() {
        assert_eq!(PatSort::parse(None), Ok(PatSort::Newest));
        for s in PatSort::ALL {
            assert_eq!(PatSort::parse(Some(s.as_str())), Ok(s));
        }
        for bad in [
            "",
            "LAST_USED",
            "last_used ",
            "created",
            "uses",
            "last_used,newest",
        ] {
            let Err(Error::InvalidRequest(m)) = PatSort::parse(Some(bad)) else {
                panic!("{bad:?} accepted");
            };
            assert_eq!(
                m,
                "sort must be one of newest, last_used, least_recently_used"
            );
        }
    }

    #[test]
    fn cursor_round_trip_names_its_order_and_refuses_another() {
        let mut rec = TokenRecord {
            created_at: 42,
            expires_at: 43,
            ..crate::testing::pat_record("a.b", "s", crate::token::TokenHash([0; 32]), 0)
        };
        let c = make_cursor(&rec, PatSort::Newest);
        let want = PatCursor {
            value: 42,
            id: "a.b".into(),
        };
        assert_eq!(parse_cursor(&c, PatSort::Newest), Ok(want));
        let Err(Error::InvalidRequest(m)) = parse_cursor(&c, PatSort::LastUsed) else {
            panic!("a newest-first cursor read as a last-used one");
        };
        assert!(m.starts_with("cursor belongs to another sort order"), "{m}");
        // never used: 0
        let c = make_cursor(&rec, PatSort::LeastRecentlyUsed);
        assert_eq!(
            parse_cursor(&c, PatSort::LeastRecentlyUsed).map(|c| c.value),
            Ok(0)
        );
        rec.last_used_at = Some(77);
        let c = make_cursor(&rec, PatSort::LastUsed);
        assert_eq!(parse_cursor(&c, PatSort::LastUsed).map(|c| c.value), Ok(77));
        assert!(parse_cursor(&c, PatSort::LeastRecentlyUsed).is_err());
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        for garbage in [
            "!!".to_owned(),
            "bm9kb3Q".to_owned(),
            enc("42.abc"),
            enc("newest.x.abc"),
            enc("newest.42."),
            enc("oldest.42.abc"),
            enc("newest.99999999999999999999.abc"),
        ] {
            assert_eq!(
                parse_cursor(&garbage, PatSort::Newest),
                Err(Error::InvalidRequest("cursor is not valid".into())),
                "{garbage}"
            );
        }
    }
}
