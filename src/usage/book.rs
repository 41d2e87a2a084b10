//! The `LastUsed` Durable Object's bookkeeping, pure: applying a [`UseRecord`] to the stored
//! [`UseState`] and day buckets, the 90-day retention, and what the alarm writes to D1.
//!
//! The object is the only writer of a token's counts, so they add up without races; the runtime
//! (`src/edge/last_used.rs`) only loads and stores what these functions name.

use super::{
    day_of, is_label, summary, MAX_FROM, MAX_KEYS_PER_DAY, OTHER, RETENTION_DAYS, UNKNOWN,
};
use crate::last_use::{Count, DayBucket, DayCount, FromEntry, UseRecord, UseState, UsedFrom};
use crate::origin::ClientOrigin;
use std::collections::BTreeMap;

/// Most counts one record may carry (an isolate's window holds a few).
pub const MAX_COUNTS_PER_RECORD: usize = 1024;

/// Why a record was refused (the object answers 400 and changes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord(pub &'static str);

/// The oldest day kept at `now`.
pub fn first_kept_day(now: i64) -> i64 {
    day_of(now) - (RETENTION_DAYS - 1)
}

/// Whether a day's counts are kept at `now`: the retention window, and at most one day ahead
/// (a caller's clock a little ahead around midnight).
fn kept(day: i64, now: i64) -> bool {
    (first_kept_day(now)..=day_of(now) + 1).contains(&day)
}

/// Checks a record from a caller: a token id, known-shaped labels, counts that add up to
/// `uses`. A place (`from`) with values that do not look like Cloudflare's is kept without them.
pub fn check(r: &UseRecord) -> Result<(), BadRecord> {
    if r.token_id.is_empty() || r.token_id.len() > 128 {
        return Err(BadRecord("token_id"));
    }
    if r.counts.len() > MAX_COUNTS_PER_RECORD {
        return Err(BadRecord("too many counts"));
    }
    if r.counts
        .iter()
        .any(|c| !(is_label(&c.via) && is_label(&c.name) && is_label(&c.outcome)))
    {
        return Err(BadRecord("a count's via, name or outcome"));
    }
    if !r.counts.is_empty() {
        let sum: u64 = r.counts.iter().map(|c| u64::from(c.uses)).sum();
        if sum != u64::from(r.uses) {
            return Err(BadRecord("counts do not add up to uses"));
        }
    }
    if let Some(f) = &r.from {
        if !(is_label(&f.via) && is_label(&f.name)) {
            return Err(BadRecord("from"));
        }
    }
    Ok(())
}

/// The days whose buckets [`apply`] needs loaded for `r` at `now`.
pub fn days_needed(r: &UseRecord, now: i64) -> Vec<i64> {
    let mut days: Vec<i64> = if r.counts.is_empty() {
        vec![day_of(r.at)]
    } else {
        r.counts.iter().map(|c| c.day).collect()
    };
    days.retain(|d| kept(*d, now));
    days.sort_unstable();
    days.dedup();
    days
}

/// What [`apply`] changed: buckets to store, and day buckets to delete (past retention).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub write: Vec<DayBucket>,
    pub delete: Vec<i64>,
}

/// Applies a checked record at `now` to `state` and to `buckets` (holding at least the buckets
/// of [`days_needed`] that exist). Uses on days outside retention count in `use_count` only.
pub fn apply(
    state: &mut UseState,
    buckets: &mut BTreeMap<i64, DayBucket>,
    r: &UseRecord,
    now: i64,
) -> Applied {
    state.apply(r);
    let unknown;
    let counts: &[DayCount] = if r.counts.is_empty() {
        // A record of a version that did not say what its uses were.
        unknown = [DayCount {
            day: day_of(r.at),
            via: UNKNOWN.into(),
            name: UNKNOWN.into(),
            outcome: UNKNOWN.into(),
            uses: r.uses,
        }];
        if r.uses == 0 {
            &[]
        } else {
            &unknown
        }
    } else {
        &r.counts
    };
    let mut touched = Vec::new();
    for c in counts.iter().filter(|c| kept(c.day, now) && c.uses > 0) {
        let b = buckets.entry(c.day).or_insert_with(|| DayBucket {
            day: c.day,
            counts: Vec::new(),
        });
        add(b, c);
        add_daily(&mut state.daily, c.day, u64::from(c.uses));
        touched.push(c.day);
    }
    touched.sort_unstable();
    touched.dedup();
    for d in &touched {
        if let Err(i) = state.dirty.binary_search(d) {
            state.dirty.insert(i, *d);
        }
    }
    if let Some(f) = &r.from {
        note_from(&mut state.from, f, r.at);
    }
    let delete = expire(state, now);
    state.seq = state.seq.wrapping_add(1);
    Applied {
        write: touched
            .iter()
            .filter_map(|d| buckets.get(d).cloned())
            .collect(),
        delete,
    }
}

/// Adds a count to its day's bucket; a key past [`MAX_KEYS_PER_DAY`] counts under `other`.
fn add(b: &mut DayBucket, c: &DayCount) {
    let n = u64::from(c.uses);
    if let Some(x) = b
        .counts
        .iter_mut()
        .find(|x| x.via == c.via && x.name == c.name && x.outcome == c.outcome)
    {
        x.uses = x.uses.saturating_add(n);
        return;
    }
    if b.counts.len() < MAX_KEYS_PER_DAY {
        b.counts.push(Count {
            via: c.via.clone(),
            name: c.name.clone(),
            outcome: c.outcome.clone(),
            uses: n,
        });
        return;
    }
    if let Some(x) = b
        .counts
        .iter_mut()
        .find(|x| x.name == OTHER && x.via == OTHER)
    {
        x.uses = x.uses.saturating_add(n);
    } else {
        b.counts.push(Count {
            via: OTHER.into(),
            name: OTHER.into(),
            outcome: OTHER.into(),
            uses: n,
        });
    }
}

fn add_daily(daily: &mut Vec<(i64, u64)>, day: i64, n: u64) {
    match daily.binary_search_by_key(&day, |(d, _)| *d) {
        Ok(i) => daily[i].1 = daily[i].1.saturating_add(n),
        Err(i) => daily.insert(i, (day, n)),
    }
}

/// Keeps the place `f` in the most recent distinct places (at most [`MAX_FROM`]), its values
/// checked again here.
fn note_from(list: &mut Vec<FromEntry>, f: &UsedFrom, at: i64) {
    let o = ClientOrigin::new(f.ip.as_deref(), f.colo.as_deref(), f.country.as_deref());
    let f = UsedFrom {
        via: f.via.clone(),
        name: f.name.clone(),
        ip: o.ip,
        country: o.country,
        colo: o.colo,
    };
    if let Some(e) = list.iter_mut().find(|e| e.is(&f)) {
        e.first_at = e.first_at.min(at);
        e.last_at = e.last_at.max(at);
    } else {
        list.push(FromEntry {
            via: f.via,
            name: f.name,
            ip: f.ip,
            country: f.country,
            colo: f.colo,
            first_at: at,
            last_at: at,
        });
    }
    list.sort_by_key(|e| std::cmp::Reverse(e.last_at));
    list.truncate(MAX_FROM);
}

/// Drops days past retention from the state; their buckets are to be deleted.
fn expire(state: &mut UseState, now: i64) -> Vec<i64> {
    let first = first_kept_day(now);
    let gone: Vec<i64> = state
        .daily
        .iter()
        .map(|(d, _)| *d)
        .filter(|d| *d < first)
        .collect();
    state.daily.retain(|(d, _)| *d >= first);
    state.dirty.retain(|d| *d >= first);
    gone
}

/// One row of D1 `token_usage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub day: i64,
    pub via: String,
    pub name: String,
    pub outcome: String,
    pub uses: u64,
}

/// What the alarm writes to D1 for one token: the `tokens` row's usage columns, the rows of the
/// days changed since the last write (absolute values: a retried write is harmless), and the
/// first day kept (older `token_usage` rows are deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flush {
    pub token_id: String,
    pub last_used_at: i64,
    pub use_count: i64,
    /// `tokens.daily_uses` ([`summary::DailyUses`]).
    pub daily_uses: String,
    /// `tokens.last_used_from` (a JSON array of [`FromEntry`]).
    pub last_used_from: String,
    pub rows: Vec<UsageRow>,
    pub first_kept_day: i64,
}

/// The flush of `state` at `now`, with the buckets of its `dirty` days (missing ones are
/// skipped).
pub fn flush(state: &UseState, dirty: &[DayBucket], now: i64) -> Flush {
    let first = first_kept_day(now);
    let rows = dirty
        .iter()
        .filter(|b| b.day >= first && state.dirty.contains(&b.day))
        .flat_map(|b| {
            b.counts.iter().map(|c| UsageRow {
                day: b.day,
                via: c.via.clone(),
                name: c.name.clone(),
                outcome: c.outcome.clone(),
                uses: c.uses,
            })
        })
        .collect();
    let daily: Vec<(i64, u64)> = state
        .daily
        .iter()
        .copied()
        .filter(|(d, _)| *d >= first)
        .collect();
    Flush {
        token_id: state.token_id.clone(),
        last_used_at: state.last_used_at,
        use_count: state.use_count,
        daily_uses: summary::DailyUses { days: daily }.column(),
        last_used_from: summary::from_column(&state.from),
        rows,
        first_kept_day: first,
    }
}

/// After the alarm's D1 write of a state read at `seq`: the days still to write (none, unless
/// records came in meanwhile, which the next alarm writes with the rest).
pub fn flushed(state: &mut UseState, seq: u64) {
    if state.seq == seq {
        state.dirty.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const T0: i64 = 20_000 * DAY + 3600;

    fn count(day: i64, name: &str, outcome: &str, uses: u32) -> DayCount {
        DayCount {
            day,
            via: "introspection".into(),
            name: name.into(),
            outcome: outcome.into(),
            uses,
        }
    }

    fn rec(at: i64, counts: Vec<DayCount>) -> UseRecord {
        UseRecord {
            token_id: "t".into(),
            at,
            uses: counts.iter().map(|c| c.uses).sum(),
            counts,
            from: None,
        }
    }

    /// The object's whole cycle over its storage: load what [`days_needed`] names, apply, store.
    #[derive(Default)]
    struct Object {
        state: UseState,
        stored: BTreeMap<i64, DayBucket>,
    }

    impl Object {
        fn record(&mut self, r: &UseRecord, now: i64) {
            check(r).expect("a good record");
            let mut loaded: BTreeMap<i64, DayBucket> = days_needed(r, now)
                .into_iter()
                .filter_map(|d| self.stored.get(&d).map(|b| (d, b.clone())))
                .collect();
            let a = apply(&mut self.state, &mut loaded, r, now);
            for b in a.write {
                self.stored.insert(b.day, b);
            }
            for d in a.delete {
                self.stored.remove(&d);
            }
        }
        fn uses(&self, day: i64) -> u64 {
            self.stored
                .get(&day)
                .map_or(0, |b| b.counts.iter().map(|c| c.uses).sum())
        }
    }

    #[test]
    fn counts_add_up_per_day_and_key() {
        let mut o = Object::default();
        let d = day_of(T0);
        o.record(&rec(T0, vec![count(d, "demo_api", "active", 3)]), T0);
        o.record(
            &rec(
                T0 + 40,
                vec![
                    count(d, "demo_api", "active", 2),
                    count(d, "other_api", "no_scope", 1),
                ],
            ),
            T0 + 40,
        );
        assert_eq!(o.state.use_count, 6);
        assert_eq!(o.state.last_used_at, T0 + 40);
        assert_eq!(o.state.daily, [(d, 6)]);
        assert_eq!(o.state.dirty, [d]);
        let b = &o.stored[&d];
        assert_eq!(b.counts.len(), 2);
        assert_eq!(b.counts[0].uses, 5);
        assert_eq!(o.state.seq, 2);
    }

    #[test]
    fn a_record_of_the_previous_version_counts_on_the_day_of_its_last_use() {
        let mut o = Object::default();
        let old = UseRecord {
            token_id: "t".into(),
            at: T0,
            uses: 4,
            counts: Vec::new(),
            from: None,
        };
        o.record(&old, T0 + 5);
        assert_eq!(o.state.use_count, 4);
        let b = &o.stored[&day_of(T0)];
        assert_eq!(
            (
                b.counts[0].via.as_str(),
                b.counts[0].outcome.as_str(),
                b.counts[0].uses
            ),
            (UNKNOWN, UNKNOWN, 4)
        );
    }

    #[test]
    fn ninety_days_are_kept_and_older_ones_deleted() {
        let mut o = Object::default();
        let d0 = day_of(T0);
        for i in 0..100 {
            let at = T0 + i * DAY;
            o.record(&rec(at, vec![count(d0 + i, "demo_api", "active", 1)]), at);
        }
        let today = d0 + 99;
        assert_eq!(o.state.daily.len(), 90);
        assert_eq!(o.state.daily[0].0, today - 89);
        assert_eq!(o.stored.len(), 90, "older buckets deleted");
        assert_eq!(*o.stored.keys().next().unwrap(), today - 89);
        assert_eq!(o.state.use_count, 100, "the total keeps every use");
        // a late report of a day past retention counts in the total only
        o.record(
            &rec(T0, vec![count(d0, "demo_api", "active", 7)]),
            T0 + 99 * DAY,
        );
        assert_eq!(o.state.use_count, 107);
        assert_eq!(o.uses(d0), 0);
        assert!(!o.state.dirty.contains(&d0));
    }

    #[test]
    fn the_day_boundary_is_utc_midnight() {
        let mut o = Object::default();
        let midnight = day_of(T0) * DAY + DAY;
        o.record(
            &rec(
                midnight + 1,
                vec![
                    count(day_of(midnight - 1), "a", "active", 2),
                    count(day_of(midnight), "a", "active", 1),
                ],
            ),
            midnight + 1,
        );
        assert_eq!(o.uses(day_of(midnight) - 1), 2);
        assert_eq!(o.uses(day_of(midnight)), 1);
        // a day ahead (the caller's clock) is kept; two are not
        let ahead = rec(
            midnight,
            vec![count(day_of(midnight) + 1, "a", "active", 1)],
        );
        o.record(&ahead, midnight);
        assert_eq!(o.uses(day_of(midnight) + 1), 1);
        let far = rec(
            midnight,
            vec![count(day_of(midnight) + 2, "a", "active", 1)],
        );
        o.record(&far, midnight);
        assert_eq!(o.uses(day_of(midnight) + 2), 0);
    }

    #[test]
    fn keys_past_the_daily_bound_count_under_other_and_the_total_stays_exact() {
        let mut o = Object::default();
        let d = day_of(T0);
        let counts: Vec<DayCount> = (0..MAX_KEYS_PER_DAY + 10)
            .map(|i| count(d, &format!("r{i}"), "active", 1))
            .collect();
        o.record(&rec(T0, counts), T0);
        let b = &o.stored[&d];
        assert_eq!(b.counts.len(), MAX_KEYS_PER_DAY + 1);
        let other = b.counts.iter().find(|c| c.name == OTHER).unwrap();
        assert_eq!(other.uses, 10);
        assert_eq!(o.uses(d), (MAX_KEYS_PER_DAY + 10) as u64);
    }

    #[test]
    fn hostile_records_are_refused() {
        let good = rec(T0, vec![count(day_of(T0), "demo_api", "active", 2)]);
        assert_eq!(check(&good), Ok(()));
        let mut r = good.clone();
        r.uses = 3;
        assert!(check(&r).is_err(), "counts must add up");
        let mut r = good.clone();
        r.counts[0].name = "<script>".into();
        assert!(check(&r).is_err());
        let mut r = good.clone();
        r.token_id = String::new();
        assert!(check(&r).is_err());
        let mut r = good.clone();
        r.counts = (0..=MAX_COUNTS_PER_RECORD)
            .map(|_| count(0, "a", "b", 0))
            .collect();
        r.uses = 0;
        assert!(check(&r).is_err());
        let mut r = good;
        r.from = Some(UsedFrom {
            via: "gate\n".into(),
            name: "x".into(),
            ip: None,
            country: None,
            colo: None,
        });
        assert!(check(&r).is_err());
    }

    fn from(ip: &str, country: &str) -> UsedFrom {
        UsedFrom {
            via: "gate".into(),
            name: "demo".into(),
            ip: Some(ip.into()),
            country: Some(country.into()),
            colo: Some("DFW".into()),
        }
    }

    #[test]
    fn the_last_few_distinct_places_are_kept_with_first_and_last_time() {
        let mut o = Object::default();
        let d = day_of(T0);
        let mut at = T0;
        for i in 0..8 {
            let mut r = rec(at, vec![count(d, "demo", "active", 1)]);
            r.from = Some(from(&format!("203.0.113.{i}"), "US"));
            o.record(&r, at);
            at += 10;
        }
        // the first place again, later
        let mut r = rec(at, vec![count(d, "demo", "active", 1)]);
        r.from = Some(from("203.0.113.0", "US"));
        o.record(&r, at);
        assert_eq!(o.state.from.len(), MAX_FROM);
        assert_eq!(o.state.from[0].ip.as_deref(), Some("203.0.113.0"));
        assert_eq!(o.state.from[0].last_at, at);
        assert_eq!(
            o.state.from[0].first_at, at,
            "it had been dropped: seen anew"
        );
        assert_eq!(o.state.from[1].ip.as_deref(), Some("203.0.113.7"));
        // a place seen twice keeps its first time
        let mut r = rec(at + 5, vec![count(d, "demo", "active", 1)]);
        r.from = Some(from("203.0.113.7", "US"));
        o.record(&r, at + 5);
        assert_eq!(o.state.from[0].ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(
            (o.state.from[0].first_at, o.state.from[0].last_at),
            (T0 + 70, at + 5)
        );
        // values that do not look like Cloudflare's are dropped, the place is kept
        let mut r = rec(at + 6, vec![count(d, "demo", "active", 1)]);
        r.from = Some(from("not an ip", "USA"));
        o.record(&r, at + 6);
        assert_eq!(
            (
                o.state.from[0].ip.as_ref(),
                o.state.from[0].country.as_ref()
            ),
            (None, None)
        );
    }

    #[test]
    fn the_flush_writes_dirty_days_and_a_record_during_it_keeps_them_dirty() {
        let mut o = Object::default();
        let d = day_of(T0);
        o.record(&rec(T0, vec![count(d, "demo_api", "active", 3)]), T0);
        let seq = o.state.seq;
        let dirty: Vec<DayBucket> = o.state.dirty.iter().map(|d| o.stored[d].clone()).collect();
        let f = flush(&o.state, &dirty, T0 + 10);
        assert_eq!(f.use_count, 3);
        assert_eq!(f.rows.len(), 1);
        assert_eq!(f.rows[0].uses, 3);
        assert_eq!(f.daily_uses, format!(r#"{{"days":[[{d},3]]}}"#));
        assert_eq!(f.first_kept_day, d - 89);
        // a record lands while D1 is written: the days stay dirty for the next alarm
        o.record(
            &rec(T0 + 11, vec![count(d, "demo_api", "active", 1)]),
            T0 + 11,
        );
        flushed(&mut o.state, seq);
        assert_eq!(o.state.dirty, [d]);
        let seq = o.state.seq;
        flushed(&mut o.state, seq);
        assert!(o.state.dirty.is_empty());
        let f = flush(&o.state, &[], T0 + 20);
        assert!(f.rows.is_empty());
    }
}
