//! What views show of a token's usage, read from the two D1 columns the `LastUsed` object
//! writes: `tokens.daily_uses` ([`DailyUses`]) and `tokens.last_used_from` (a JSON array of
//! [`FromEntry`]). Both are stored formats, pinned by golden tests: add only optional fields.

use super::{day_of, RETENTION_DAYS};
use crate::last_use::FromEntry;
use crate::origin::ClientOrigin;
use serde::{Deserialize, Serialize};

/// `tokens.daily_uses`: uses per UTC day, `[day, uses]` ascending, at most the last 90 days
/// (`{"days":[[20419,5],[20421,3]]}`; days since 1970-01-01).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyUses {
    pub days: Vec<(i64, u64)>,
}

impl DailyUses {
    /// The column's text.
    pub fn column(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"days":[]}"#.into())
    }

    /// The column as stored (`None`: never written). Unreadable text is an error.
    pub fn parse(column: Option<&str>) -> Result<Self, serde_json::Error> {
        match column {
            None => Ok(DailyUses::default()),
            Some(s) => serde_json::from_str(s),
        }
    }

    /// Uses on the `n` days ending today (`n` = 1: today).
    pub fn last_days(&self, now: i64, n: i64) -> u64 {
        let today = day_of(now);
        self.days
            .iter()
            .filter(|(d, _)| *d > today - n && *d <= today)
            .map(|(_, u)| *u)
            .sum()
    }

    /// The `n` days ending today, oldest first, each with its uses (zero included).
    pub fn series(&self, now: i64, n: i64) -> Vec<(i64, u64)> {
        let today = day_of(now);
        (today - n + 1..=today)
            .map(|d| {
                let uses = self
                    .days
                    .binary_search_by_key(&d, |(x, _)| *x)
                    .map_or(0, |i| self.days[i].1);
                (d, uses)
            })
            .collect()
    }

    pub fn totals(&self, now: i64) -> Totals {
        Totals {
            today: self.last_days(now, 1),
            last_7_days: self.last_days(now, 7),
            last_30_days: self.last_days(now, 30),
            last_90_days: self.last_days(now, RETENTION_DAYS),
        }
    }
}

/// A token's uses over the last days (UTC days, today included), as views show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub today: u64,
    pub last_7_days: u64,
    pub last_30_days: u64,
    pub last_90_days: u64,
}

/// `tokens.last_used_from`'s text.
pub fn from_column(list: &[FromEntry]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

/// `tokens.last_used_from` as stored (`None`: never written), each value checked again.
pub fn parse_from(column: Option<&str>) -> Result<Vec<FromEntry>, serde_json::Error> {
    let Some(s) = column else {
        return Ok(Vec::new());
    };
    let mut list: Vec<FromEntry> = serde_json::from_str(s)?;
    list.retain(|e| super::is_label(&e.via) && super::is_label(&e.name));
    for e in &mut list {
        let o = ClientOrigin::new(e.ip.as_deref(), e.colo.as_deref(), e.country.as_deref());
        (e.ip, e.colo, e.country) = (o.ip, o.colo, o.country);
    }
    list.truncate(super::MAX_FROM);
    Ok(list)
}

/// The list's hint: "Used today", "Used yesterday", "Unused for N days", "Never used".
pub fn hint(last_used_at: Option<i64>, now: i64) -> String {
    match last_used_at {
        None => "Never used".into(),
        Some(t) => match day_of(now) - day_of(t) {
            i64::MIN..=0 => "Used today".into(),
            1 => "Used yesterday".into(),
            n => format!("Unused for {n} days"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    /// Golden: `tokens.daily_uses` is written by the object and read by every view; old rows
    /// must stay readable.
    #[test]
    fn daily_uses_column_format_unchanged() {
        let d = DailyUses {
            days: vec![(20_419, 5), (20_421, 3)],
        };
        assert_eq!(d.column(), r#"{"days":[[20419,5],[20421,3]]}"#);
        assert_eq!(DailyUses::parse(Some(&d.column())).unwrap(), d);
        assert_eq!(DailyUses::parse(None).unwrap(), DailyUses::default());
        // a later version may add fields
        let later = r#"{"days":[[1,2]],"by_outcome":{}}"#;
        assert_eq!(DailyUses::parse(Some(later)).unwrap().days, [(1, 2)]);
        assert!(DailyUses::parse(Some("[1,2]")).is_err());
        assert!(DailyUses::parse(Some(r#"{"days":[[1,-2]]}"#)).is_err());
    }

    /// Golden: `tokens.last_used_from`.
    #[test]
    fn last_used_from_column_format_unchanged() {
        let list = vec![
            FromEntry {
                via: "gate".into(),
                name: "demo".into(),
                ip: Some("203.0.113.7".into()),
                country: Some("US".into()),
                colo: Some("DFW".into()),
                first_at: 10,
                last_at: 20,
            },
            FromEntry {
                via: "introspection".into(),
                name: "demo_api".into(),
                ip: None,
                country: None,
                colo: Some("FRA".into()),
                first_at: 5,
                last_at: 6,
            },
        ];
        let col = from_column(&list);
        assert_eq!(
            col,
            r#"[{"via":"gate","name":"demo","ip":"203.0.113.7","country":"US","colo":"DFW","first_at":10,"last_at":20},{"via":"introspection","name":"demo_api","colo":"FRA","first_at":5,"last_at":6}]"#
        );
        assert_eq!(parse_from(Some(&col)).unwrap(), list);
        assert!(parse_from(None).unwrap().is_empty());
        assert!(parse_from(Some("{}")).is_err());
    }

    #[test]
    fn stored_places_are_checked_again_when_read() {
        let col = r#"[{"via":"gate","name":"demo","ip":"<b>","country":"usa","colo":"D F W","first_at":1,"last_at":2},{"via":"x y","name":"demo","first_at":1,"last_at":2}]"#;
        let list = parse_from(Some(col)).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (&list[0].ip, &list[0].country, &list[0].colo),
            (&None, &None, &None)
        );
    }

    #[test]
    fn totals_and_series_count_utc_days_ending_today() {
        let now = 20_421 * DAY + 100;
        let d = DailyUses {
            days: vec![
                (20_300, 100),
                (20_392, 1),
                (20_415, 2),
                (20_420, 4),
                (20_421, 8),
            ],
        };
        assert_eq!(
            d.totals(now),
            Totals {
                today: 8,
                last_7_days: 14,
                last_30_days: 15,
                last_90_days: 15,
            }
        );
        let s = d.series(now, 30);
        assert_eq!(s.len(), 30);
        assert_eq!(s[0], (20_392, 1));
        assert_eq!(s[29], (20_421, 8));
        assert_eq!(s.iter().map(|x| x.1).sum::<u64>(), 15);
        // a day later, today is empty and the oldest day drops out of 30
        assert_eq!(d.totals(now + DAY).today, 0);
        assert_eq!(d.totals(now + DAY).last_30_days, 14);
    }

    #[test]
    fn hints() {
        let now = 20_421 * DAY + 100;
        assert_eq!(hint(None, now), "Never used");
        assert_eq!(hint(Some(now - 50), now), "Used today");
        assert_eq!(hint(Some(now - 200), now), "Used yesterday");
        assert_eq!(hint(Some(now - 60 * DAY), now), "Unused for 60 days");
        assert_eq!(hint(Some(now + 10), now), "Used today");
    }
}
