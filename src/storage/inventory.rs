//! The administrators' token inventory (`GET /admin/pats`) as D1 reads it: the SQL of an
//! [`InventoryQuery`] (its filters, order and keyset page), and the same reading in Rust for the
//! in-memory backend. The two are kept together so that they mean the same; the end-to-end
//! tests run the SQL against a seeded D1.

use crate::model::{SqlValue, Status, TokenRecord};
use crate::store_usage::{InventoryQuery, KindFilter, SortKey, StatusFilter};

const DAY: i64 = 86_400;

/// The sort column's expression.
fn sort_expr(k: SortKey) -> &'static str {
    match k {
        SortKey::Created => "created_at",
        SortKey::Expires => "expires_at",
        SortKey::LastUsed => "COALESCE(last_used_at, 0)",
        SortKey::Uses => "use_count",
    }
}

/// A record's sort value (the same as [`sort_expr`]'s).
pub fn sort_value(rec: &TokenRecord, k: SortKey) -> i64 {
    match k {
        SortKey::Created => rec.created_at,
        SortKey::Expires => rec.expires_at,
        SortKey::LastUsed => rec.last_used_at.unwrap_or(0),
        SortKey::Uses => rec.use_count,
    }
}

/// The `WHERE` clause of `q`'s filters (without the page position), and its values from
/// `?{first}` on.
fn filters(q: &InventoryQuery, args: &mut Vec<SqlValue>) -> Vec<String> {
    let mut arg = |v: SqlValue| {
        args.push(v);
        format!("?{}", args.len())
    };
    let mut w = Vec::new();
    match q.kind {
        KindFilter::Pat => w.push("kind = 'pat'".to_owned()),
        KindFilter::Access => w.push("kind = 'access'".to_owned()),
        KindFilter::Any => {}
    }
    match q.status {
        Some(StatusFilter::Active) => {
            w.push(format!(
                "revoked_at IS NULL AND expires_at > {}",
                arg(SqlValue::Int(q.now))
            ));
        }
        Some(StatusFilter::Expired) => {
            w.push(format!(
                "revoked_at IS NULL AND expires_at <= {}",
                arg(SqlValue::Int(q.now))
            ));
        }
        Some(StatusFilter::Revoked) => w.push("revoked_at IS NOT NULL".to_owned()),
        None => {}
    }
    if let Some(d) = q.expiring_within_days {
        let now = arg(SqlValue::Int(q.now));
        let until = arg(SqlValue::Int(q.now.saturating_add(d.saturating_mul(DAY))));
        w.push(format!(
            "revoked_at IS NULL AND expires_at > {now} AND expires_at <= {until}"
        ));
    }
    if let Some(d) = q.unused_for_days {
        let before = arg(SqlValue::Int(q.now.saturating_sub(d.saturating_mul(DAY))));
        w.push(format!("COALESCE(last_used_at, created_at) <= {before}"));
    }
    match q.leaked {
        Some(true) => w.push("revoked_reason = 'leaked'".to_owned()),
        Some(false) => w.push("(revoked_reason IS NULL OR revoked_reason <> 'leaked')".to_owned()),
        None => {}
    }
    if let Some(c) = &q.client {
        w.push(format!("client_id = {}", arg(SqlValue::Text(c.clone()))));
    }
    if let Some(s) = &q.scope {
        // A whole word of the space-delimited list (instr: no LIKE wildcards in scope names).
        w.push(format!(
            "instr(' ' || scopes || ' ', ' ' || {} || ' ') > 0",
            arg(SqlValue::Text(s.clone()))
        ));
    }
    if let Some(u) = &q.user {
        w.push(format!("subject = {}", arg(SqlValue::Text(u.clone()))));
    }
    w
}

fn where_clause(w: &[String]) -> String {
    if w.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", w.join(" AND "))
    }
}

/// The page query: `SELECT {columns} FROM tokens ...` and its values.
pub fn page_sql(q: &InventoryQuery, columns: &str) -> (String, Vec<SqlValue>) {
    let mut args = Vec::new();
    let mut w = filters(q, &mut args);
    let col = sort_expr(q.sort);
    let (cmp, dir) = if q.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some((v, id)) = &q.after {
        args.push(SqlValue::Int(*v));
        let v = args.len();
        args.push(SqlValue::Text(id.clone()));
        let id = args.len();
        w.push(format!(
            "({col} {cmp} ?{v} OR ({col} = ?{v} AND id {cmp} ?{id}))"
        ));
    }
    args.push(SqlValue::Int(i64::from(q.limit)));
    let sql = format!(
        "SELECT {columns} FROM tokens{} ORDER BY {col} {dir}, id {dir} LIMIT ?{}",
        where_clause(&w),
        args.len()
    );
    (sql, args)
}

/// The count query of `q`'s filters.
pub fn count_sql(q: &InventoryQuery) -> (String, Vec<SqlValue>) {
    let mut args = Vec::new();
    let w = filters(q, &mut args);
    (
        format!("SELECT COUNT(*) AS n FROM tokens{}", where_clause(&w)),
        args,
    )
}

/// Whether `rec` passes `q`'s filters (the in-memory reading of [`page_sql`]'s `WHERE`).
pub fn matches(rec: &TokenRecord, q: &InventoryQuery) -> bool {
    let kind_ok = match q.kind {
        KindFilter::Pat => rec.kind == crate::token::TokenKind::Pat,
        KindFilter::Access => rec.kind != crate::token::TokenKind::Pat,
        KindFilter::Any => true,
    };
    let status_ok = match q.status {
        None => true,
        Some(StatusFilter::Active) => rec.status(q.now) == Status::Active,
        Some(StatusFilter::Expired) => rec.status(q.now) == Status::Expired,
        Some(StatusFilter::Revoked) => rec.status(q.now) == Status::Revoked,
    };
    let expiring_ok = q.expiring_within_days.is_none_or(|d| {
        rec.revoked_at.is_none()
            && rec.expires_at > q.now
            && rec.expires_at <= q.now.saturating_add(d.saturating_mul(DAY))
    });
    let unused_ok = q.unused_for_days.is_none_or(|d| {
        rec.last_used_at.unwrap_or(rec.created_at) <= q.now.saturating_sub(d.saturating_mul(DAY))
    });
    let leaked = rec.revoked_reason.as_deref() == Some("leaked");
    kind_ok
        && status_ok
        && expiring_ok
        && unused_ok
        && q.leaked.is_none_or(|l| l == leaked)
        && q.client.as_ref().is_none_or(|c| *c == rec.client_id)
        && q.scope.as_ref().is_none_or(|s| rec.scopes.contains(s))
        && q.user.as_ref().is_none_or(|u| *u == rec.subject)
}

/// One page of `all` for `q`, in its order (the in-memory reading of [`page_sql`]).
pub fn page(all: &[TokenRecord], q: &InventoryQuery) -> Vec<TokenRecord> {
    let key = |r: &TokenRecord| (sort_value(r, q.sort), r.id.clone());
    let mut v: Vec<&TokenRecord> = all
        .iter()
        .filter(|r| matches(r, q))
        .filter(|r| {
            q.after.as_ref().is_none_or(|a| {
                let k = key(r);
                if q.descending {
                    k < *a
                } else {
                    k > *a
                }
            })
        })
        .collect();
    v.sort_by_key(|r| key(r));
    if q.descending {
        v.reverse();
    }
    v.into_iter().take(q.limit as usize).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{TokenHash, TokenKind};

    fn q() -> InventoryQuery {
        InventoryQuery {
            kind: KindFilter::Pat,
            status: None,
            expiring_within_days: None,
            unused_for_days: None,
            leaked: None,
            client: None,
            scope: None,
            user: None,
            sort: SortKey::Created,
            descending: true,
            after: None,
            limit: 50,
            now: 1_000_000,
        }
    }

    /// Golden: the SQL D1 runs for the inventory, every filter at once, and the plain listing.
    #[test]
    fn inventory_sql_unchanged() {
        let all = InventoryQuery {
            kind: KindFilter::Any,
            status: Some(StatusFilter::Active),
            expiring_within_days: Some(7),
            unused_for_days: Some(60),
            leaked: Some(false),
            client: Some("pat_client".into()),
            scope: Some("demo_api:read".into()),
            user: Some("alice".into()),
            sort: SortKey::LastUsed,
            descending: false,
            after: Some((5, "abc".into())),
            ..q()
        };
        let (sql, args) = page_sql(&all, "id");
        assert_eq!(
            sql,
            "SELECT id FROM tokens WHERE revoked_at IS NULL AND expires_at > ?1 AND \
             revoked_at IS NULL AND expires_at > ?2 AND expires_at <= ?3 AND \
             COALESCE(last_used_at, created_at) <= ?4 AND \
             (revoked_reason IS NULL OR revoked_reason <> 'leaked') AND client_id = ?5 AND \
             instr(' ' || scopes || ' ', ' ' || ?6 || ' ') > 0 AND subject = ?7 AND \
             (COALESCE(last_used_at, 0) > ?8 OR (COALESCE(last_used_at, 0) = ?8 AND id > ?9)) \
             ORDER BY COALESCE(last_used_at, 0) ASC, id ASC LIMIT ?10"
        );
        assert_eq!(
            args,
            [
                SqlValue::Int(1_000_000),
                SqlValue::Int(1_000_000),
                SqlValue::Int(1_000_000 + 7 * DAY),
                SqlValue::Int(1_000_000 - 60 * DAY),
                SqlValue::Text("pat_client".into()),
                SqlValue::Text("demo_api:read".into()),
                SqlValue::Text("alice".into()),
                SqlValue::Int(5),
                SqlValue::Text("abc".into()),
                SqlValue::Int(50),
            ]
        );
        let (sql, args) = count_sql(&all);
        assert!(sql.starts_with("SELECT COUNT(*) AS n FROM tokens WHERE revoked_at IS NULL"));
        assert_eq!(args.len(), 7);
        let (sql, args) = page_sql(&q(), "id");
        assert_eq!(
            sql,
            "SELECT id FROM tokens WHERE kind = 'pat' ORDER BY created_at DESC, id DESC LIMIT ?1"
        );
        assert_eq!(args, [SqlValue::Int(50)]);
        let (sql, _) = count_sql(&InventoryQuery {
            kind: KindFilter::Any,
            ..q()
        });
        assert_eq!(sql, "SELECT COUNT(*) AS n FROM tokens");
    }

    fn rec(id: &str, f: impl FnOnce(&mut TokenRecord)) -> TokenRecord {
        let mut r = crate::testing::pat_record(id, "alice", TokenHash([1; 32]), 990_000);
        r.expires_at = 1_000_000 + 30 * DAY;
        f(&mut r);
        r
    }

    #[test]
    fn filters_read_in_memory_as_in_sql() {
        let now = 1_000_000;
        let recs = [
            rec("active", |_| {}),
            rec("expired", |r| r.expires_at = now - 1),
            rec("revoked", |r| r.revoked_at = Some(now - 5)),
            rec("leaked", |r| {
                r.revoked_at = Some(now - 5);
                r.revoked_reason = Some("leaked".into());
            }),
            rec("soon", |r| r.expires_at = now + 2 * DAY),
            rec("old", |r| {
                r.created_at = now - 100 * DAY;
                r.last_used_at = Some(now - 61 * DAY);
            }),
            rec("client", |r| {
                r.kind = TokenKind::Access;
                r.client_id = "demo_client".into();
                r.subject = "demo_client".into();
            }),
            rec("bob", |r| {
                r.subject = "bob".into();
                r.scopes = vec!["other_api:read".into()];
            }),
        ];
        let ids = |q: &InventoryQuery| -> Vec<String> {
            let mut v: Vec<String> = recs
                .iter()
                .filter(|r| matches(r, q))
                .map(|r| r.id.clone())
                .collect();
            v.sort();
            v
        };
        let active = InventoryQuery {
            status: Some(StatusFilter::Active),
            ..q()
        };
        assert_eq!(ids(&active), ["active", "bob", "old", "soon"]);
        let expiring = InventoryQuery {
            expiring_within_days: Some(7),
            ..q()
        };
        assert_eq!(ids(&expiring), ["soon"]);
        let unused = InventoryQuery {
            unused_for_days: Some(60),
            ..q()
        };
        assert_eq!(ids(&unused), ["old"]);
        let leaked = InventoryQuery {
            leaked: Some(true),
            ..q()
        };
        assert_eq!(ids(&leaked), ["leaked"]);
        let clients = InventoryQuery {
            kind: KindFilter::Access,
            ..q()
        };
        assert_eq!(ids(&clients), ["client"]);
        let scope = InventoryQuery {
            scope: Some("other_api:read".into()),
            ..q()
        };
        assert_eq!(ids(&scope), ["bob"]);
        let user = InventoryQuery {
            user: Some("bob".into()),
            ..q()
        };
        assert_eq!(ids(&user), ["bob"]);
        // "demo_api" is not the scope "demo_api:read": whole words only
        let part = InventoryQuery {
            scope: Some("demo_api".into()),
            ..q()
        };
        assert!(ids(&part).is_empty());
    }

    #[test]
    fn pages_follow_the_sort_and_resume_after_the_cursor() {
        let recs: Vec<TokenRecord> = (0..7)
            .map(|i| {
                rec(&format!("t{i}"), |r| {
                    r.use_count = [5, 1, 5, 9, 0, 5, 2][i];
                })
            })
            .collect();
        let mut query = InventoryQuery {
            sort: SortKey::Uses,
            limit: 3,
            ..q()
        };
        let mut seen = Vec::new();
        loop {
            let p = page(&recs, &query);
            if p.is_empty() {
                break;
            }
            let last = p.last().unwrap();
            query.after = Some((sort_value(last, SortKey::Uses), last.id.clone()));
            seen.extend(p.into_iter().map(|r| r.id));
        }
        assert_eq!(seen, ["t3", "t5", "t2", "t0", "t6", "t1", "t4"]);
    }
}
