//! The usage API's answer (`GET /api/pats/{id}/usage`, `GET /admin/pats/{id}/usage`), built
//! from a token's `token_usage` rows: every day of the window (zeros included), what each day's
//! uses were, and the window's totals per (via, resource or route, outcome).

use super::book::UsageRow;
use super::{date, day_of, RETENTION_DAYS};
use serde::Serialize;
use std::collections::BTreeMap;

/// Default and longest window, in days.
pub const DEFAULT_DAYS: i64 = 30;

/// `days` of the query: 1 to 90 (digits only), 30 when absent.
pub fn parse_days(q: Option<&str>) -> Result<i64, String> {
    let Some(s) = q else {
        return Ok(DEFAULT_DAYS);
    };
    s.parse::<i64>()
        .ok()
        .filter(|d| s.bytes().all(|b| b.is_ascii_digit()) && (1..=RETENTION_DAYS).contains(d))
        .ok_or_else(|| format!("days must be 1 to {RETENTION_DAYS}"))
}

/// Uses of one (via, name, outcome).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyUses {
    pub via: String,
    pub name: String,
    pub outcome: String,
    pub uses: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayUses {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub uses: u64,
    pub resources: Vec<KeyUses>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub id: String,
    pub days: i64,
    /// The window's first and last day (`to` is today, UTC).
    pub from: String,
    pub to: String,
    pub total: u64,
    /// Oldest first.
    pub per_day: Vec<DayUses>,
    /// Most used first.
    pub per_resource: Vec<KeyUses>,
}

fn sorted(m: BTreeMap<(String, String, String), u64>) -> Vec<KeyUses> {
    let mut v: Vec<KeyUses> = m
        .into_iter()
        .map(|((via, name, outcome), uses)| KeyUses {
            via,
            name,
            outcome,
            uses,
        })
        .collect();
    // stable: ties keep the (via, name, outcome) order of the map
    v.sort_by_key(|k| std::cmp::Reverse(k.uses));
    v
}

/// The report of token `id` over the `days` days ending today (at `now`).
pub fn report(id: &str, rows: &[UsageRow], days: i64, now: i64) -> UsageReport {
    let today = day_of(now);
    let first = today - days + 1;
    let mut per_day: BTreeMap<i64, BTreeMap<(String, String, String), u64>> = BTreeMap::new();
    let mut per_key: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for r in rows.iter().filter(|r| (first..=today).contains(&r.day)) {
        let key = (r.via.clone(), r.name.clone(), r.outcome.clone());
        *per_key.entry(key.clone()).or_default() += r.uses;
        *per_day.entry(r.day).or_default().entry(key).or_default() += r.uses;
    }
    let per_day: Vec<DayUses> = (first..=today)
        .map(|d| {
            let resources = per_day.remove(&d).map(sorted).unwrap_or_default();
            DayUses {
                date: date(d),
                uses: resources.iter().map(|k| k.uses).sum(),
                resources,
            }
        })
        .collect();
    UsageReport {
        id: id.to_owned(),
        days,
        from: date(first),
        to: date(today),
        total: per_day.iter().map(|d| d.uses).sum(),
        per_day,
        per_resource: sorted(per_key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn row(day: i64, name: &str, outcome: &str, uses: u64) -> UsageRow {
        UsageRow {
            day,
            via: "introspection".into(),
            name: name.into(),
            outcome: outcome.into(),
            uses,
        }
    }

    #[test]
    fn every_day_of_the_window_with_its_resources_and_the_totals() {
        let now = 20_421 * DAY + 5;
        let rows = [
            row(20_421, "demo_api", "active", 5),
            row(20_421, "other_api", "no_scope", 8),
            row(20_419, "demo_api", "active", 2),
            row(20_400, "demo_api", "active", 100), // outside a 3-day window
        ];
        let r = report("p1", &rows, 3, now);
        assert_eq!(
            (r.from.as_str(), r.to.as_str()),
            ("2025-11-27", "2025-11-29")
        );
        assert_eq!(r.total, 15);
        assert_eq!(r.per_day.len(), 3);
        assert_eq!(r.per_day[0].uses, 2);
        assert_eq!(r.per_day[1].uses, 0);
        assert!(r.per_day[1].resources.is_empty());
        assert_eq!(r.per_day[2].uses, 13);
        assert_eq!(
            r.per_day[2].resources[0].name, "other_api",
            "most used first"
        );
        assert_eq!(r.per_resource.len(), 2);
        assert_eq!(
            (r.per_resource[0].name.as_str(), r.per_resource[0].uses),
            ("other_api", 8)
        );
        assert_eq!(r.per_resource[1].uses, 7, "demo_api: 5 + 2");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["per_day"][2]["resources"][1],
            serde_json::json!({"via":"introspection","name":"demo_api","outcome":"active","uses":5})
        );
    }

    #[test]
    fn days_parameter() {
        assert_eq!(parse_days(None), Ok(30));
        assert_eq!(parse_days(Some("1")), Ok(1));
        assert_eq!(parse_days(Some("90")), Ok(90));
        for bad in [
            "0",
            "91",
            "-1",
            "+5",
            "abc",
            "",
            "1e2",
            " 5",
            "99999999999999999999",
        ] {
            assert!(parse_days(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
