//! The uses of an authorization grant's access tokens, summed per grant: what "Authorized
//! applications" and `GET /admin/grants` show. Each access token (`pga_`) is counted like a PAT
//! (its own `LastUsed` object, coalesced per isolate window, written to its `tokens` row and to
//! `token_usage`); a grant is the sum of the tokens issued from it (`tokens.grant_id`), read
//! only when a page or the admin API asks, never on the token's path.
//!
//! Two D1 statements, each over the grants' ids given as one JSON array (`json_each`: one bound
//! value whatever the number of grants), and their in-memory reading ([`from_records`]), kept
//! together so that they mean the same.

use crate::model::TokenRecord;
use crate::store::StoreError;
use crate::store_usage::GrantUses;
use crate::usage::book::UsageRow;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Per grant: the last use of any of its tokens, the uses of all of them, and the places the
/// most recently used one was used from (ties: the newest token, then the greatest id; the same
/// order as [`from_records`]). `?1`: the grants' ids as a JSON array.
pub const TOTALS_SQL: &str = "SELECT grant_id, MAX(last_used_at) AS last_used_at, \
     SUM(use_count) AS use_count, (SELECT l.last_used_from FROM tokens l \
     WHERE l.grant_id = t.grant_id AND l.last_used_at IS NOT NULL \
     ORDER BY l.last_used_at DESC, l.created_at DESC, l.id DESC LIMIT 1) AS last_used_from \
     FROM tokens t WHERE grant_id IN (SELECT value FROM json_each(?1)) GROUP BY grant_id";

/// Per grant: the uses of its tokens on days `?2` and later (`token_usage`).
pub const DAYS_SQL: &str = "SELECT t.grant_id AS grant_id, SUM(u.uses) AS uses \
     FROM tokens t JOIN token_usage u ON u.token_id = t.id \
     WHERE t.grant_id IN (SELECT value FROM json_each(?1)) AND u.day >= ?2 \
     GROUP BY t.grant_id";

/// `?1` of both statements.
pub fn ids_json(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

/// A row of [`TOTALS_SQL`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotalsRow {
    pub grant_id: String,
    pub last_used_at: Option<i64>,
    pub last_used_from: Option<String>,
    pub use_count: Option<i64>,
}

/// A row of [`DAYS_SQL`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaysRow {
    pub grant_id: String,
    pub uses: Option<i64>,
}

fn count(v: Option<i64>, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v.unwrap_or(0)).map_err(|_| StoreError::new(format!("{what} is negative")))
}

/// The two statements' rows as one summary per grant that has tokens (by grant id).
pub fn combine(totals: Vec<TotalsRow>, days: Vec<DaysRow>) -> Result<Vec<GrantUses>, StoreError> {
    let mut recent = BTreeMap::new();
    for d in days {
        recent.insert(d.grant_id, count(d.uses, "token_usage.uses")?);
    }
    totals
        .into_iter()
        .map(|t| {
            let from = crate::usage::summary::parse_from(t.last_used_from.as_deref())
                .map_err(|e| StoreError::new(format!("tokens.last_used_from: {e}")))?;
            Ok(GrantUses {
                recent_uses: recent.get(&t.grant_id).copied().unwrap_or(0),
                grant_id: t.grant_id,
                last_used_at: t.last_used_at,
                use_count: count(t.use_count, "tokens.use_count")?,
                last_used_from: if t.last_used_at.is_some() {
                    from
                } else {
                    Vec::new()
                },
            })
        })
        .collect()
}

/// The same summaries from records and usage rows in memory (`rows`: (token id, row)).
pub fn from_records(
    tokens: &[TokenRecord],
    rows: &[(String, UsageRow)],
    ids: &[String],
    from_day: i64,
) -> Vec<GrantUses> {
    let mut out: BTreeMap<&str, GrantUses> = BTreeMap::new();
    let mut latest: BTreeMap<&str, (i64, i64, &str)> = BTreeMap::new();
    for t in tokens {
        let Some(g) = t.grant_id.as_deref().filter(|g| ids.iter().any(|i| i == g)) else {
            continue;
        };
        let e = out.entry(g).or_insert_with(|| GrantUses {
            grant_id: g.to_owned(),
            last_used_at: None,
            use_count: 0,
            recent_uses: 0,
            last_used_from: Vec::new(),
        });
        e.use_count += u64::try_from(t.use_count).unwrap_or(0);
        if let Some(at) = t.last_used_at {
            let key = (at, t.created_at, t.id.as_str());
            if latest.get(g).is_none_or(|k| key > *k) {
                latest.insert(g, key);
                e.last_used_at = Some(at);
                e.last_used_from.clone_from(&t.last_used_from);
            }
        }
        e.recent_uses += rows
            .iter()
            .filter(|(id, r)| *id == t.id && r.day >= from_day)
            .map(|(_, r)| r.uses)
            .sum::<u64>();
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden: the statements D1 runs (their columns are what [`TotalsRow`] and [`DaysRow`]
    /// read).
    #[test]
    fn grant_usage_sql_unchanged() {
        assert_eq!(
            TOTALS_SQL,
            "SELECT grant_id, MAX(last_used_at) AS last_used_at, SUM(use_count) AS use_count, \
             (SELECT l.last_used_from FROM tokens l WHERE l.grant_id = t.grant_id AND \
             l.last_used_at IS NOT NULL ORDER BY l.last_used_at DESC, l.created_at DESC, l.id \
             DESC LIMIT 1) AS last_used_from FROM tokens t WHERE grant_id IN (SELECT value FROM \
             json_each(?1)) GROUP BY grant_id"
        );
        assert_eq!(
            DAYS_SQL,
            "SELECT t.grant_id AS grant_id, SUM(u.uses) AS uses FROM tokens t JOIN token_usage \
             u ON u.token_id = t.id WHERE t.grant_id IN (SELECT value FROM json_each(?1)) AND \
             u.day >= ?2 GROUP BY t.grant_id"
        );
        assert_eq!(ids_json(&["a".into(), "b\"".into()]), r#"["a","b\""]"#);
    }

    #[test]
    fn in_memory_sums_the_grants_tokens_from_the_day_asked() {
        let tok = |id: &str, grant: Option<&str>, used: Option<i64>, count: i64| {
            let mut r = crate::testing::pat_record(id, "u", crate::token::TokenHash([1; 32]), 0);
            r.grant_id = grant.map(str::to_owned);
            r.last_used_at = used;
            r.use_count = count;
            r
        };
        let tokens = [
            tok("a1", Some("g1"), Some(50), 3),
            tok("a2", Some("g1"), Some(90), 4),
            tok("a3", Some("g1"), None, 0),
            tok("a0", Some("g1"), Some(90), 0),
            tok("b1", Some("g2"), Some(70), 9),
            tok("p1", None, Some(99), 5),
        ];
        let row = |day, uses| UsageRow {
            day,
            via: "gate".into(),
            name: "demo".into(),
            outcome: "active".into(),
            uses,
        };
        let rows = [
            ("a1".to_owned(), row(9, 1)),
            ("a1".to_owned(), row(10, 2)),
            ("a2".to_owned(), row(11, 4)),
            ("b1".to_owned(), row(11, 9)),
            ("p1".to_owned(), row(11, 5)),
        ];
        let mut tokens = tokens;
        tokens[1].created_at = 5; // a2: issued after a0, last used in the same second
        tokens[1].last_used_from = vec![crate::last_use::FromEntry {
            via: "gate".into(),
            name: "demo".into(),
            ip: None,
            country: None,
            colo: None,
            first_at: 90,
            last_at: 90,
        }];
        let got = from_records(&tokens, &rows, &["g1".into()], 10);
        assert_eq!(
            got[0].last_used_from, tokens[1].last_used_from,
            "the newest of a tie"
        );
        assert_eq!(got.len(), 1, "only the grants asked for");
        assert_eq!(
            (got[0].last_used_at, got[0].use_count, got[0].recent_uses),
            (Some(90), 7, 6),
            "day 9 is before the days asked for"
        );
        assert!(from_records(&tokens, &rows, &[], 0).is_empty());
    }

    #[test]
    fn rows_combine_per_grant_and_bad_values_are_errors() {
        let from = r#"[{"via":"gate","name":"demo","ip":"203.0.113.9","first_at":5,"last_at":9}]"#;
        let totals = vec![
            TotalsRow {
                grant_id: "g1".into(),
                last_used_at: Some(9),
                last_used_from: Some(from.into()),
                use_count: Some(7),
            },
            TotalsRow {
                grant_id: "g2".into(),
                last_used_at: None,
                last_used_from: None,
                use_count: Some(0),
            },
        ];
        let days = vec![DaysRow {
            grant_id: "g1".into(),
            uses: Some(4),
        }];
        let got = combine(totals, days).expect("rows");
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].last_used_at, got[0].use_count, got[0].recent_uses),
            (Some(9), 7, 4)
        );
        assert_eq!(got[0].last_used_from[0].ip.as_deref(), Some("203.0.113.9"));
        assert_eq!((got[1].last_used_at, got[1].recent_uses), (None, 0));
        let bad = |use_count, from: Option<&str>| {
            combine(
                vec![TotalsRow {
                    grant_id: "g".into(),
                    last_used_at: Some(1),
                    last_used_from: from.map(str::to_owned),
                    use_count,
                }],
                Vec::new(),
            )
            .is_err()
        };
        assert!(bad(Some(-1), None));
        assert!(bad(Some(1), Some("not json")));
        assert!(combine(
            Vec::new(),
            vec![DaysRow {
                grant_id: "g".into(),
                uses: Some(-3)
            }]
        )
        .is_err());
    }
}
