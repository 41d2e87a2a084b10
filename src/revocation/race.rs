//! Exhaustive check of the small race: a KV refill from a D1 read made just before a revocation,
//! landing after it, against the revocation's KV deletes and a feed fetch.
//!
//! Steps (each actor's in its own order): the refill reads D1 (`R1`: it sees the token alive
//! only if the revocation has not committed) and writes KV (`R2`: the grant, fresh until
//! `R1 + GRANT_CACHE` by its clock, or a delete if D1 said dead); the revocation commits with
//! its feed entry (`V1`), deletes the grant (`V2`) and deletes it again 10 s later (`V3`); a
//! location fetches the feed (`F1`: the query, stamping `as_of`) and applies it (`F2`), or the
//! fetch fails. Every interleaving (210; 10 when the fetch fails), every gap between
//! consecutive steps from {1 ms, 20 s, more than the retention}: 153,900 cases. In each, the location is
//! probed at every time where something changes (each step, the bound, each grant's
//! `fresh_until`, the view's age limit; one millisecond either side) from `V1 + BOUND` on.
//!
//! KV is an adversary: a probe may read any version written before it (KV's propagation has no
//! stated bound), which covers lost deletes and any read-cache state. Clocks take the worst
//! allowed offsets: the refill and the fetch ahead by `skew_ms / 2` (later `fresh_until`,
//! younger-looking view), the revocation and the prober behind by as much (earlier `until`, a
//! grant looks fresh longer), the consistent place's trim ahead (trims earlier).

use super::decide::{decide, Verdict};
use super::feed::{FeedLog, Key, Retention};
use super::snapshot::{Snapshot, Subject, View};
use super::{Millis, Params, BOUND_MS};
use crate::token::TokenHash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    R1,
    R2,
    V1,
    V2,
    V3,
    F1,
    F2,
}

const REFILL: &[Step] = &[Step::R1, Step::R2];
const REVOKE: &[Step] = &[Step::V1, Step::V2, Step::V3];
const FETCH: &[Step] = &[Step::F1, Step::F2];

/// Every order of the actors' steps that keeps each actor's own order.
fn interleavings(actors: &[&[Step]]) -> Vec<Vec<Step>> {
    fn go(
        actors: &[&[Step]],
        next: &mut Vec<usize>,
        acc: &mut Vec<Step>,
        out: &mut Vec<Vec<Step>>,
    ) {
        let mut done = true;
        for a in 0..actors.len() {
            if next[a] < actors[a].len() {
                done = false;
                acc.push(actors[a][next[a]]);
                next[a] += 1;
                go(actors, next, acc, out);
                next[a] -= 1;
                acc.pop();
            }
        }
        if done {
            out.push(acc.clone());
        }
    }
    let mut out = Vec::new();
    go(
        actors,
        &mut vec![0; actors.len()],
        &mut Vec::new(),
        &mut out,
    );
    out
}

#[derive(Debug, Clone, Copy)]
struct Setup {
    params: Params,
    retention: Retention,
    grant_cache_ms: i64,
}

impl Setup {
    fn standard() -> Self {
        let grant_cache_ms = 120_000;
        Setup {
            params: Params::DEFAULT,
            retention: Retention {
                grant_cache_ms,
                exchanged_jwt_ms: 0,
                registry_ms: 0,
                jwt_leeway_ms: 0,
                max_jwt_life_ms: 0,
                margin_ms: 60_000,
            },
            grant_cache_ms,
        }
    }

    fn long_gap(&self) -> i64 {
        self.retention.grant_cache_ms + self.retention.margin_ms + 2 * self.params.skew_ms + 1
    }
}

#[derive(Debug, Default)]
struct Report {
    cases: u64,
    probes: u64,
    /// Cases where the view let a fresh grant through after the bound.
    violations: Vec<String>,
    /// Cases where, with D1 unreachable (fail open), a fresh grant outlived the fallback bound.
    fallback_violations: u64,
    /// Cases where the one-read path alone (KV's current value, every delete landed) would
    /// answer active after the bound: what the feed exists for.
    kv_alone_breaks: u64,
    /// Of those, cases where KV's current value is the refill that landed after the
    /// revocation's deletes (the small race itself).
    late_refill_wins: u64,
}

const RECORD: &str = "rec";

/// The location's view before the fetch (fetched at time 0, empty) and after it (the feed as
/// the query at `f1` finds it, trimmed by the consistent place's clock), and the latter's
/// `as_of`.
fn views(s: &Setup, v1: Millis, f1: Millis, f2: Millis) -> (View, View, Millis) {
    let (half, p) = (s.params.skew_ms / 2, s.params);
    let mut feed = FeedLog::new();
    if v1 < f1 {
        let key = Key::Record(RECORD.into());
        let until = s.retention.until(&key, v1 - half, None);
        feed.append(key, v1 - half, until);
    }
    feed.trim(f1 + half, p.skew_ms);
    let mut before = View::new();
    let first = Snapshot {
        as_of: 0,
        ..Snapshot::empty()
    };
    before.apply(&first, 0, &p);
    let mut after = before.clone();
    let as_of = f1 + half;
    if let Ok(snap) = Snapshot::empty().refreshed(&feed.since(0, 10), as_of, f2 + half, p.skew_ms) {
        after.apply(&snap, f2 + half, &p);
    }
    (before, after, as_of)
}

/// One case: `order` with `gaps` between consecutive steps. Without `F1` and `F2` in `order`,
/// the fetch failed (the location keeps the view it had).
fn check(s: &Setup, order: &[Step], gaps: &[i64], report: &mut Report) {
    let half = s.params.skew_ms / 2;
    let fetched = order.contains(&Step::F1);
    let mut times = [Millis::MAX / 4; 7];
    let mut t = 1_000;
    for (i, step) in order.iter().enumerate() {
        if i > 0 {
            t += gaps[i - 1];
        }
        times[*step as usize] = t;
    }
    let at = |step: Step| times[step as usize];
    let (r1, r2, v1) = (at(Step::R1), at(Step::R2), at(Step::V1));
    let f2 = at(Step::F2);
    // KV versions: (lands at, fresh_until or deleted). The grant written at issue (time 0).
    let refill = (r1 < v1).then_some(r1 + half + s.grant_cache_ms);
    let versions = [
        (0, Some(half + s.grant_cache_ms)),
        (r2, refill),
        (at(Step::V2), None),
        (at(Step::V3), None),
    ];
    let (before, after, as_of) = views(s, v1, at(Step::F1), f2);
    let p = s.params;
    let hash = TokenHash([1; 32]);
    let subject = Subject {
        token: Some(&hash),
        record: Some(RECORD),
        ..Subject::default()
    };

    // What a probe sees is constant between these times: a version lands, a grant stops being
    // fresh by the prober's clock, the fetched view replaces the first, a view passes its age
    // limit. Probing each of them (and the bound itself) covers every moment after the bound.
    let mut probes: Vec<Millis> = order.iter().map(|step| at(*step)).collect();
    probes.push(v1 + BOUND_MS);
    probes.extend(versions.iter().filter_map(|(_, v)| v.map(|fu| fu + half)));
    probes.push(p.max_age_ms - p.skew_ms + half + 1);
    if fetched {
        probes.push(as_of + p.max_age_ms - p.skew_ms + half + 1);
    }
    probes.retain(|t| *t >= v1 + BOUND_MS);
    probes.sort_unstable();
    probes.dedup();

    report.cases += 1;
    let (mut broke, mut fallback_broke, mut kv_alone, mut refill_won) =
        (false, false, false, false);
    for probe in probes {
        report.probes += 1;
        let local = probe - half;
        // the adversary's best read: any version written so far; and KV's current value
        let (mut any_fresh, mut current) = (false, (Millis::MIN, None));
        for (t, v) in versions {
            if t <= probe {
                any_fresh |= v.is_some_and(|fu| local < fu);
                if t >= current.0 {
                    current = (t, v);
                }
            }
        }
        let current_fresh = current.1.is_some_and(|fu| local < fu);
        kv_alone |= current_fresh;
        refill_won |= current_fresh && current.0 == r2 && r2 > at(Step::V3);
        if !any_fresh {
            continue;
        }
        let view = if fetched && probe >= f2 {
            &after
        } else {
            &before
        };
        match decide(true, view, &subject, local, &p) {
            Verdict::Active => {
                if !broke && report.violations.len() < 5 {
                    report.violations.push(format!(
                        "{order:?} gaps {gaps:?}: active at {probe} (revoked at {v1})"
                    ));
                }
                broke = true;
            }
            Verdict::Ask(_) => fallback_broke |= probe - v1 > s.grant_cache_ms + p.skew_ms + 1,
            Verdict::Inactive => {}
        }
    }
    report.fallback_violations += u64::from(fallback_broke);
    report.kv_alone_breaks += u64::from(kv_alone);
    report.late_refill_wins += u64::from(refill_won);
}

/// Every case (`first_only`: stop at the first violation): each interleaving of the three
/// actors, and of refill and revocation alone (the fetch failed), with every choice of gaps.
fn explore(s: &Setup, first_only: bool) -> Report {
    let gap_choices = [1, 20_000, s.long_gap()];
    let mut report = Report::default();
    for order in interleavings(&[REFILL, REVOKE, FETCH])
        .into_iter()
        .chain(interleavings(&[REFILL, REVOKE]))
    {
        let n = order.len() - 1;
        let mut gaps = vec![0i64; n];
        for code in 0..3usize.pow(n as u32) {
            let mut c = code;
            for g in &mut gaps {
                *g = gap_choices[c % 3];
                c /= 3;
            }
            check(s, &order, &gaps, &mut report);
            if first_only && !report.violations.is_empty() {
                return report;
            }
        }
    }
    report
}

#[test]
fn there_are_210_interleavings() {
    assert_eq!(interleavings(&[REFILL, REVOKE]).len(), 10);
    let all = interleavings(&[REFILL, REVOKE, FETCH]);
    assert_eq!(all.len(), 210);
    let mut sorted = all.clone();
    sorted.sort_by_key(|o| format!("{o:?}"));
    sorted.dedup();
    assert_eq!(sorted.len(), 210, "all distinct");
}

#[test]
fn no_interleaving_lets_a_refill_outlive_the_bound() {
    let r = explore(&Setup::standard(), false);
    eprintln!(
        "race: {} cases, {} probes; KV alone wrong in {} cases, {} of them a refill landing after both deletes",
        r.cases, r.probes, r.kv_alone_breaks, r.late_refill_wins
    );
    assert_eq!(r.cases, 210 * 729 + 10 * 81);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(
        r.fallback_violations, 0,
        "fail-open answers past the fallback bound"
    );
    // the race is real: without the feed, the current KV value is a live grant after the bound
    assert!(r.kv_alone_breaks > 10_000, "{}", r.kv_alone_breaks);
    assert!(r.late_refill_wins > 1_000, "{}", r.late_refill_wins);
}

#[test]
fn entries_trimmed_before_the_grants_they_cover_lose_the_race() {
    let mut s = Setup::standard();
    s.retention.grant_cache_ms = 10_000;
    s.retention.margin_ms = 0;
    let r = explore(&s, true);
    assert!(
        !r.violations.is_empty(),
        "a too-short retention must be found"
    );
    eprintln!("short retention found: {}", r.violations[0]);
}

#[test]
fn a_view_trusted_at_any_age_loses_the_race() {
    let mut s = Setup::standard();
    s.params.max_age_ms = i64::MAX / 4;
    let r = explore(&s, true);
    assert!(
        !r.violations.is_empty(),
        "an unchecked view age must be found"
    );
}
