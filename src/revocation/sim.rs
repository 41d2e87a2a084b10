//! A deterministic simulation of revocation across many locations, run by every `cargo test`:
//! thousands of random schedules of issue, introspection, rotation and revocation. On every
//! answer it checks that no location says "active" for a token more than [`BOUND_MS`] after the
//! token died (its D1 write), that no API caching answers for their `max-age` uses one past that
//! bound either, that the feed never refuses a live token, and that an answer given while D1
//! could not be reached (fail open) stays within the fallback's own bound.
//!
//! The model (the distributions are in the `draw_*` functions):
//! - 2 to 6 locations with 1 to 3 isolates each; every isolate's clock is off by up to ±250 ms.
//!   Two in five isolates are busy (other traffic every 1 to 2 s keeps their view fresh),
//!   the others only see the schedule's introspections (their view is mostly too old: D1).
//! - KV: one central store. Each write or delete becomes visible at each location after its own
//!   delay (70% under 2 s, 20% under 30 s, 8% under 90 s, 2% up to 4 min); a location caches
//!   what it read, "not found" included, for 30 to 60 s. A grant carries `fresh_until` = the
//!   writer's clock + `GRANT_CACHE` (60 s here, its smallest value); a stale one is read from
//!   D1 and rewritten (the refill: lands 0 to 30 s later, or is lost), a dead one deleted.
//! - D1: the truth. A revocation (or a rotation without grace) and its feed entry commit
//!   together; the KV deletes follow (each lost with 3%) and are repeated 10 s later. Half the
//!   rotations give the old token a grace of 1 s to 3 min: nothing is written when it ends, and
//!   every location's KV keeps the old token's grant from before the rotation.
//! - Authorization grants: with 60% a schedule has an app's grant holding some of its records
//!   (the grant's access tokens, never rotated); its end (user, admin, refresh-token reuse, code
//!   replay: all one write) revokes them all in D1 with one `a` entry, looked up by grant id.
//! - The feed: each location's Cache API holds a snapshot (read fails or is evicted now and
//!   then); an isolate whose view is over 2 s old refreshes it from there, or asks the feed
//!   since the snapshot's cursor, in pages of at most 3 entries. Queries and answers take 10 ms
//!   to 6 s (5% over 1 s), 3% are lost; a lost fetch blocks others until its timeout.
//! - Outages: up to two windows in which no location can read the feed, one more per location
//!   with 30%, and with about 25% a D1 outage (feed and token reads both fail) at one location
//!   or at all of them.
//! - APIs: each location's API caches active answers for their `max-age` and uses them again
//!   up to 6 s later.

use super::decide::{
    decide, max_age_secs, when_unreachable, Basis, Unreached, Verdict, WhenUnreachable,
};
use super::feed::{FeedLog, Key, Page, Retention};
use super::snapshot::{Snapshot, Subject, View};
use super::{Millis, Params, BOUND_MS};
use crate::token::TokenHash;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;

/// splitmix64: small, seedable, good enough to draw schedules.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    fn per_mille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
}

fn draw_latency(r: &mut Rng) -> i64 {
    match r.below(100) {
        0..=79 => r.range(10, 150),
        80..=94 => r.range(150, 1_000),
        _ => r.range(1_000, 6_000),
    }
}

fn draw_propagation(r: &mut Rng) -> i64 {
    match r.below(100) {
        0..=69 => r.range(0, 2_000),
        70..=89 => r.range(2_000, 30_000),
        90..=97 => r.range(30_000, 90_000),
        _ => r.range(90_000, 240_000),
    }
}

/// A deliberate defect in how the runtime would use the core: the tests that plant one show
/// that the simulation finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bug {
    None,
    /// Snapshots stamped with the time their answer arrived, not when the query was sent.
    AsOfAtArrival,
    /// `max-age` computed as if every answer came fresh from D1.
    MaxAgeIgnoresViewAge,
    /// No feed: KV's answer is final (the design before the feed).
    NoFeed,
    /// The decision does not look up the token's authorization grant in the view.
    NoGrantLookup,
    /// A rotation with a grace writes no `t` entry dated at the grace's end.
    GraceEndNotInFeed,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Config {
    pub params: Params,
    pub retention: Retention,
    /// How long a grant written to KV is trusted (`GRANT_CACHE_SECONDS`).
    pub grant_cache_ms: i64,
    pub policy: WhenUnreachable,
    pub loss_per_mille: u64,
    pub skew_max_ms: i64,
    pub page_limit: usize,
    pub bug: Bug,
}

impl Config {
    pub(super) fn standard() -> Self {
        let grant_cache_ms = 60_000;
        Config {
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
            policy: WhenUnreachable::FailOpen,
            loss_per_mille: 30,
            skew_max_ms: 250,
            page_limit: 3,
            bug: Bug::None,
        }
    }

    /// The fallback's bound while D1 cannot be read (fail open): a grant read from D1 before
    /// the revocation is trusted until `fresh_until`, writer's clock + `GRANT_CACHE`.
    fn fallback_bound_ms(&self) -> i64 {
        self.grant_cache_ms + 2 * self.skew_max_ms + 1
    }
}

/// A token: (record, generation).
type Tok = (usize, u32);

/// The id of the schedule's authorization grant.
const GRANT_ID: &str = "grant1";

/// Records per schedule and generations per record, at most.
const MAX_RECORDS: usize = 4;
const MAX_GENERATIONS: usize = 3;
const TOKENS: usize = MAX_RECORDS * MAX_GENERATIONS;

/// A token's slot in the per-token tables.
fn slot((rec, g): Tok) -> usize {
    rec * MAX_GENERATIONS + g as usize
}

fn hash_of(t: Tok) -> TokenHash {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&(t.0 as u64).to_le_bytes());
    b[8..12].copy_from_slice(&t.1.to_le_bytes());
    b[31] = 1;
    TokenHash(b)
}

#[derive(Debug, Clone)]
enum Event {
    Issue {
        rec: usize,
    },
    Introspect {
        loc: usize,
        iso: usize,
        tok: Tok,
    },
    /// Other traffic at a busy isolate: may start a refresh.
    Tick {
        loc: usize,
        iso: usize,
    },
    Revoke {
        rec: usize,
    },
    /// The end of the schedule's authorization grant.
    EndGrant,
    Rotate {
        rec: usize,
        /// The old token's grace period, if any.
        grace: Option<Millis>,
    },
    KvLand {
        tok: Tok,
        value: Option<Millis>,
    },
    FeedExec {
        loc: usize,
        iso: usize,
        sent: Millis,
        prev: Rc<Snapshot>,
    },
    FeedReply {
        loc: usize,
        iso: usize,
        sent: Millis,
        prev: Rc<Snapshot>,
        page: Page,
    },
    ApiUse {
        loc: usize,
        tok: Tok,
    },
}

/// A KV write as the central store has it: the value (`fresh_until`, or deleted) and when it
/// becomes visible at each location.
struct Version {
    value: Option<Millis>,
    visible_at: Vec<Millis>,
}

struct Location {
    /// (clock offset, view) per isolate.
    isolates: Vec<(i64, View)>,
    /// Per token slot: the value read and until when it is kept.
    kv_cache: Vec<Option<(Option<Millis>, Millis)>>,
    snapshot: Option<Rc<Snapshot>>,
    /// The API here: token -> cached active answer usable until.
    api: Vec<Option<Millis>>,
    feed_down: Vec<(Millis, Millis)>,
    d1_down: Vec<(Millis, Millis)>,
}

#[derive(Default)]
struct Record {
    id: String,
    /// An access token of the schedule's authorization grant (never rotated).
    in_grant: bool,
    issued: bool,
    generation: u32,
    revoked_at: Option<Millis>,
    /// When generation `i` was rotated away, and when it stopped working (the end of its
    /// grace, or the rotation).
    rotated_at: Vec<Millis>,
    dies_at: Vec<Millis>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stats {
    pub events: u64,
    pub answers: u64,
    pub active: u64,
    pub from_view: u64,
    /// Refused by the view although KV served a fresh grant, past the bound.
    pub saved_by_view: u64,
    pub asked_feed_too_old: u64,
    pub unconfirmed: u64,
    pub unavailable: u64,
    /// KV served a fresh grant of a token dead for longer than the bound: the view was too old
    /// and D1 said inactive.
    pub saved_by_d1: u64,
    /// A refill landed in KV after its token died.
    pub late_refills: u64,
    /// Like `saved_by_view`, for a token whose grant ended (and not itself revoked).
    pub saved_by_grant: u64,
    pub source_fetches: u64,
    pub api_uses: u64,
}

impl Stats {
    pub(super) fn add(&mut self, o: &Stats) {
        self.events += o.events;
        self.answers += o.answers;
        self.active += o.active;
        self.from_view += o.from_view;
        self.saved_by_view += o.saved_by_view;
        self.asked_feed_too_old += o.asked_feed_too_old;
        self.unconfirmed += o.unconfirmed;
        self.unavailable += o.unavailable;
        self.saved_by_d1 += o.saved_by_d1;
        self.late_refills += o.late_refills;
        self.saved_by_grant += o.saved_by_grant;
        self.source_fetches += o.source_fetches;
        self.api_uses += o.api_uses;
    }
}

pub(super) struct Outcome {
    pub violations: Vec<String>,
    pub stats: Stats,
}

struct World<'c> {
    cfg: &'c Config,
    rng: Rng,
    now: Millis,
    /// Keys (time << 32 | event index) of the events planned before the run, latest first
    /// (popped from the end), and of those scheduled while it runs (a small heap).
    planned: Vec<u128>,
    queue: BinaryHeap<Reverse<u128>>,
    planning: bool,
    events: Vec<Option<Event>>,
    locs: Vec<Location>,
    /// Per token slot.
    kv: Vec<Vec<Version>>,
    records: Vec<Record>,
    /// When the schedule's authorization grant ended.
    grant_ended: Option<Millis>,
    feed: FeedLog,
    stats: Stats,
    violations: Vec<String>,
}

/// Runs one schedule.
pub(super) fn run(seed: u64, cfg: &Config) -> Outcome {
    let mut w = World::new(seed, cfg);
    while let Some(key) = w.next_key() {
        let (t, id) = ((key >> 32) as Millis, (key & 0xffff_ffff) as usize);
        w.now = t;
        w.stats.events += 1;
        if let Some(ev) = w.events[id].take() {
            w.handle(ev);
        }
    }
    Outcome {
        violations: w.violations,
        stats: w.stats,
    }
}

fn down(windows: &[(Millis, Millis)], t: Millis) -> bool {
    windows.iter().any(|(a, b)| *a <= t && t < *b)
}

impl<'c> World<'c> {
    fn new(seed: u64, cfg: &'c Config) -> Self {
        let mut rng = Rng::new(seed);
        let n_locs = rng.range(2, 6) as usize;
        let mut locs = Vec::new();
        for _ in 0..n_locs {
            let isolates = (0..rng.range(1, 3))
                .map(|_| (rng.range(-cfg.skew_max_ms, cfg.skew_max_ms), View::new()))
                .collect();
            locs.push(Location {
                isolates,
                kv_cache: vec![None; TOKENS],
                snapshot: None,
                api: vec![None; TOKENS],
                feed_down: Vec::new(),
                d1_down: Vec::new(),
            });
        }
        let mut w = World {
            cfg,
            rng,
            now: 0,
            planned: Vec::new(),
            queue: BinaryHeap::new(),
            planning: true,
            events: Vec::new(),
            locs,
            kv: (0..TOKENS).map(|_| Vec::new()).collect(),
            records: Vec::new(),
            grant_ended: None,
            feed: FeedLog::new(),
            stats: Stats::default(),
            violations: Vec::new(),
        };
        w.plan_outages();
        w.plan_schedule();
        w.planned.sort_unstable_by(|a, b| b.cmp(a));
        w.planning = false;
        w
    }

    fn plan_outages(&mut self) {
        let horizon = self.horizon();
        let r = &mut self.rng;
        let mut global = Vec::new();
        for _ in 0..r.range(0, 2) {
            let a = r.range(0, horizon);
            global.push((a, a + r.range(3_000, 120_000)));
        }
        let d1_everywhere = r.per_mille(100);
        let d1_somewhere = (!d1_everywhere && r.per_mille(170)).then(|| r.below(6) as usize);
        let d1_window = {
            let a = r.range(0, horizon);
            (a, a + r.range(2_000, 60_000))
        };
        for (i, loc) in self.locs.iter_mut().enumerate() {
            loc.feed_down.clone_from(&global);
            if r.per_mille(300) {
                let a = r.range(0, horizon);
                loc.feed_down.push((a, a + r.range(3_000, 120_000)));
            }
            if d1_everywhere || d1_somewhere == Some(i) {
                loc.d1_down.push(d1_window);
            }
        }
    }

    fn horizon(&self) -> Millis {
        3 * self.cfg.grant_cache_ms + 60_000
    }

    fn plan_schedule(&mut self) {
        let horizon = self.horizon();
        let n_records = self.rng.range(2, MAX_RECORDS as i64) as usize;
        // the first 1 to n records are the grant's access tokens
        let in_grant = if self.rng.per_mille(600) {
            self.rng.range(1, n_records as i64) as usize
        } else {
            0
        };
        let mut deaths = Vec::new();
        if in_grant > 0 && self.rng.per_mille(800) {
            let t = self.rng.range(10_000, horizon);
            self.schedule(t, Event::EndGrant);
            deaths.extend((0..in_grant).map(|rec| (t, (rec, 0))));
        }
        for rec in 0..n_records {
            self.records.push(Record {
                id: format!("rec{rec}"),
                in_grant: rec < in_grant,
                ..Record::default()
            });
            let issue = self.rng.range(0, 5_000);
            self.schedule(issue, Event::Issue { rec });
            let rotations_max = if rec < in_grant { 0 } else { 2 };
            let mut rotations: Vec<Millis> = (0..self.rng.range(0, rotations_max))
                .map(|_| self.rng.range(5_000, horizon))
                .collect();
            rotations.sort_unstable();
            for (g, t) in rotations.iter().enumerate() {
                // half with a grace of 1 s to 3 min (longer than the `t` entry's retention too)
                let grace = self
                    .rng
                    .per_mille(500)
                    .then(|| self.rng.range(1_000, 180_000));
                self.schedule(*t, Event::Rotate { rec, grace });
                deaths.push((*t + grace.unwrap_or(0), (rec, g as u32)));
            }
            if self.rng.per_mille(700) {
                let t = self.rng.range(10_000, horizon);
                self.schedule(t, Event::Revoke { rec });
                let current = rotations.iter().filter(|r| **r < t).count() as u32;
                deaths.push((t, (rec, current)));
                if current > 0 {
                    deaths.push((t, (rec, current - 1)));
                }
            }
        }
        for loc in 0..self.locs.len() {
            for iso in 0..self.locs[loc].isolates.len() {
                if self.rng.per_mille(400) {
                    let t = self.rng.range(0, 1_500);
                    self.schedule(t, Event::Tick { loc, iso });
                }
            }
        }
        let max_gen = MAX_GENERATIONS as i64 - 1;
        for _ in 0..80 {
            let t = self.rng.range(0, horizon);
            let tok = (
                self.rng.below(n_records as u64) as usize,
                self.rng.range(0, max_gen) as u32,
            );
            self.introspect_at(t, tok);
        }
        let g = self.cfg.grant_cache_ms;
        for (t, tok) in deaths {
            for (n, lo, hi) in [
                (6, -20_000, 0),
                (6, 0, BOUND_MS),
                (10, BOUND_MS, BOUND_MS + 5_000),
                (10, BOUND_MS, BOUND_MS + g + 90_000),
            ] {
                for _ in 0..n {
                    let at = t + self.rng.range(lo, hi);
                    self.introspect_at(at, tok);
                }
            }
        }
    }

    fn introspect_at(&mut self, t: Millis, tok: Tok) {
        let loc = self.rng.below(self.locs.len() as u64) as usize;
        let iso = self.rng.below(self.locs[loc].isolates.len() as u64) as usize;
        self.schedule(t.max(0), Event::Introspect { loc, iso, tok });
    }

    /// The earliest event's key, from either queue.
    fn next_key(&mut self) -> Option<u128> {
        match (self.planned.last(), self.queue.peek()) {
            (Some(p), Some(Reverse(q))) if q < p => self.queue.pop().map(|Reverse(k)| k),
            (Some(_), _) => self.planned.pop(),
            (None, _) => self.queue.pop().map(|Reverse(k)| k),
        }
    }

    fn schedule(&mut self, t: Millis, ev: Event) {
        // times are never negative here (schedules start at 0)
        let key = (u128::from(t.max(0) as u64) << 32) | self.events.len() as u128;
        if self.planning {
            self.planned.push(key);
        } else {
            self.queue.push(Reverse(key));
        }
        self.events.push(Some(ev));
    }

    fn lost(&mut self) -> bool {
        let p = self.cfg.loss_per_mille;
        self.rng.per_mille(p)
    }

    fn local(&self, loc: usize, iso: usize) -> Millis {
        self.now + self.locs[loc].isolates[iso].0
    }

    /// A random isolate's clock (the writer of a revocation, a rotation or an issue).
    fn some_clock(&mut self) -> Millis {
        let loc = self.rng.below(self.locs.len() as u64) as usize;
        let iso = self.rng.below(self.locs[loc].isolates.len() as u64) as usize;
        self.local(loc, iso)
    }

    /// When the token died, if it has by now (D1's truth).
    fn dead_at(&self, (rec, g): Tok) -> Option<Millis> {
        let r = &self.records[rec];
        let rotated = r
            .dies_at
            .get(g as usize)
            .copied()
            .filter(|d| *d <= self.now);
        match (r.revoked_at, rotated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn alive(&self, tok: Tok) -> bool {
        let r = &self.records[tok.0];
        r.issued && tok.1 <= r.generation && self.dead_at(tok).is_none()
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Issue { rec } => {
                self.records[rec].issued = true;
                let value = Some(self.some_clock() + self.cfg.grant_cache_ms);
                let at = self.now + self.rng.range(5, 200);
                self.schedule(
                    at,
                    Event::KvLand {
                        tok: (rec, 0),
                        value,
                    },
                );
            }
            Event::Introspect { loc, iso, tok } => self.introspect(loc, iso, tok),
            Event::Tick { loc, iso } => {
                let p = self.cfg.params;
                if self.cfg.bug != Bug::NoFeed
                    && self.locs[loc].isolates[iso]
                        .1
                        .wants_fetch(self.local(loc, iso), &p)
                {
                    self.start_fetch(loc, iso);
                }
                if self.now < self.horizon() {
                    let next = self.now + self.rng.range(1_000, 2_000);
                    self.schedule(next, Event::Tick { loc, iso });
                }
            }
            Event::Revoke { rec } => self.revoke(rec),
            Event::EndGrant => self.end_grant(),
            Event::Rotate { rec, grace } => self.rotate(rec, grace),
            Event::KvLand { tok, value } => {
                if value.is_some() && self.dead_at(tok).is_some() {
                    self.stats.late_refills += 1;
                }
                let n = self.locs.len();
                let visible_at = (0..n)
                    .map(|_| self.now + draw_propagation(&mut self.rng))
                    .collect();
                self.kv[slot(tok)].push(Version { value, visible_at });
            }
            Event::FeedExec {
                loc,
                iso,
                sent,
                prev,
            } => {
                self.feed.trim(self.now, self.cfg.params.skew_ms);
                let page = self.feed.since(prev.through, self.cfg.page_limit);
                if !self.lost() {
                    let at = self.now + draw_latency(&mut self.rng);
                    self.schedule(
                        at,
                        Event::FeedReply {
                            loc,
                            iso,
                            sent,
                            prev,
                            page,
                        },
                    );
                }
            }
            Event::FeedReply {
                loc,
                iso,
                sent,
                prev,
                page,
            } => self.feed_reply(loc, iso, sent, &prev, &page),
            Event::ApiUse { loc, tok } => {
                let Some(until) = self.locs[loc].api[slot(tok)] else {
                    return;
                };
                if self.now < until {
                    self.stats.api_uses += 1;
                    if let Some(d) = self.dead_at(tok).filter(|d| self.now - d > BOUND_MS) {
                        let late = self.now - d;
                        self.violate(&format!("the API at location {loc} used a cached active answer for {tok:?} {late} ms after it died"));
                    }
                }
            }
        }
    }

    fn violate(&mut self, what: &str) {
        self.violations.push(format!("t={} ms: {what}", self.now));
    }

    /// Deletes a token's grant from KV, and once more 10 s later (each may be lost).
    fn purge_kv(&mut self, tok: Tok) {
        for delay in [self.rng.range(5, 200), 10_000] {
            if !self.lost() {
                self.schedule(self.now + delay, Event::KvLand { tok, value: None });
            }
        }
    }

    fn revoke(&mut self, rec: usize) {
        let r = &self.records[rec];
        if !r.issued || r.revoked_at.is_some() {
            return;
        }
        let (id, current) = (r.id.clone(), r.generation);
        self.records[rec].revoked_at = Some(self.now);
        let at = self.some_clock();
        let key = Key::Record(id);
        let until = self.cfg.retention.until(&key, at, None);
        self.feed.append(key, at, until);
        for g in 0..=current {
            self.purge_kv((rec, g));
        }
    }

    /// The grant and, in the same transaction, its access tokens' rows and its `a` entry; then
    /// each token's KV purge (the revocation path's).
    fn end_grant(&mut self) {
        if self.grant_ended.is_some() {
            return;
        }
        self.grant_ended = Some(self.now);
        let now = self.now;
        let mut purge = Vec::new();
        for (rec, r) in self.records.iter_mut().enumerate() {
            if r.in_grant && r.revoked_at.is_none() {
                r.revoked_at = Some(now);
                purge.push(rec);
            }
        }
        let at = self.some_clock();
        let key = Key::Grant(GRANT_ID.into());
        let until = self.cfg.retention.until(&key, at, None);
        self.feed.append(key, at, until);
        for rec in purge {
            self.purge_kv((rec, 0));
        }
    }

    /// A rotation. With a grace the old token keeps working until its end and nothing is
    /// written then; its KV grant stays as it was before the rotation (the worst case: a grant
    /// that knows nothing of the grace), and the rotation's `t` entry is dated at the grace's
    /// end when that comes before the entry's `until` (`FeedStamp::old_token_dies_at`).
    fn rotate(&mut self, rec: usize, grace: Option<Millis>) {
        let r = &self.records[rec];
        if !r.issued || r.revoked_at.is_some() {
            return;
        }
        let old = (rec, r.generation);
        let now = self.now;
        let r = &mut self.records[rec];
        r.rotated_at.push(now);
        r.dies_at.push(now + grace.unwrap_or(0));
        r.generation += 1;
        let new = (rec, r.generation);
        let at = self.some_clock();
        let key = Key::token(&hash_of(old));
        let until = self.cfg.retention.until(&key, at, None);
        let dies = at + grace.unwrap_or(0);
        if dies < until && !(grace.is_some() && self.cfg.bug == Bug::GraceEndNotInFeed) {
            self.feed.append(key, dies, until);
        }
        let value = Some(at + self.cfg.grant_cache_ms);
        let land = self.now + self.rng.range(5, 200);
        self.schedule(land, Event::KvLand { tok: new, value });
        if grace.is_none() {
            self.purge_kv(old);
        }
    }

    /// When `tok`'s grace ends, if it is in one now.
    fn grace_ends(&self, (rec, g): Tok) -> Option<Millis> {
        let r = &self.records[rec];
        r.dies_at
            .get(g as usize)
            .copied()
            .filter(|d| *d > self.now && r.revoked_at.is_none())
    }

    /// What this location's KV read returns: its cached copy, else the newest version visible
    /// here (cached 30 to 60 s, "not found" too).
    fn kv_read(&mut self, loc: usize, tok: Tok) -> Option<Millis> {
        let now = self.now;
        if let Some((v, until)) = self.locs[loc].kv_cache[slot(tok)] {
            if now < until {
                return v;
            }
        }
        let value = self.kv[slot(tok)]
            .iter()
            .rev()
            .find(|v| v.visible_at[loc] <= now)
            .and_then(|v| v.value);
        let ttl = self.rng.range(30_000, 60_000);
        self.locs[loc].kv_cache[slot(tok)] = Some((value, now + ttl));
        value
    }

    fn introspect(&mut self, loc: usize, iso: usize, tok: Tok) {
        self.stats.answers += 1;
        let local = self.local(loc, iso);
        let dead = self.dead_at(tok);
        let answer = match self.kv_read(loc, tok) {
            None => None,
            Some(fresh_until) if local < fresh_until => self.cached_active(loc, iso, tok, dead),
            Some(_) => self.ask_d1(loc, tok, local),
        };
        let p = self.cfg.params;
        if self.cfg.bug != Bug::NoFeed && self.locs[loc].isolates[iso].1.wants_fetch(local, &p) {
            self.start_fetch(loc, iso);
        }
        self.check_answer(loc, tok, dead, answer, local);
    }

    /// KV served a fresh grant: the decision combinator with this isolate's view.
    fn cached_active(
        &mut self,
        loc: usize,
        iso: usize,
        tok: Tok,
        dead: Option<Millis>,
    ) -> Option<Basis> {
        if self.cfg.bug == Bug::NoFeed {
            return Some(Basis::View { age_ms: 0 });
        }
        let (local, p, now) = (self.local(loc, iso), self.cfg.params, self.now);
        let late = dead.is_some_and(|d| now - d > BOUND_MS);
        let h = hash_of(tok);
        let view = &self.locs[loc].isolates[iso].1;
        let r = &self.records[tok.0];
        let by_grant = r.in_grant && self.grant_ended.is_some() && dead == self.grant_ended;
        let subject = Subject {
            token: Some(&h),
            record: Some(&r.id),
            grant: (r.in_grant && self.cfg.bug != Bug::NoGrantLookup).then_some(GRANT_ID),
            ..Subject::default()
        };
        match decide(true, view, &subject, local, &p) {
            Verdict::Inactive => {
                // a grace's end is judged by each isolate's clock (as D1's check is)
                let ending = self
                    .grace_ends(tok)
                    .is_some_and(|e| e - now <= 2 * self.cfg.skew_max_ms);
                if dead.is_none() && !ending {
                    self.violate(&format!(
                        "the feed refused the live token {tok:?} at location {loc}"
                    ));
                }
                self.stats.saved_by_view += u64::from(late);
                self.stats.saved_by_grant += u64::from(late && by_grant);
                None
            }
            Verdict::Active => {
                self.stats.from_view += 1;
                Some(Basis::View {
                    age_ms: view.age(local, &p),
                })
            }
            Verdict::Ask(_) => {
                self.stats.asked_feed_too_old += 1;
                if !down(&self.locs[loc].d1_down, now) {
                    self.stats.saved_by_d1 += u64::from(late);
                    return self.alive(tok).then_some(Basis::SourceOfTruth);
                }
                match when_unreachable(self.cfg.policy) {
                    Unreached::ActiveUnconfirmed => {
                        self.stats.unconfirmed += 1;
                        Some(Basis::Unconfirmed)
                    }
                    Unreached::Unavailable => {
                        self.stats.unavailable += 1;
                        None
                    }
                }
            }
        }
    }

    /// A stale grant: D1 answers, and the grant is rewritten (or deleted) after the response.
    fn ask_d1(&mut self, loc: usize, tok: Tok, local: Millis) -> Option<Basis> {
        if down(&self.locs[loc].d1_down, self.now) {
            self.stats.unavailable += 1;
            return None;
        }
        let alive = self.alive(tok);
        // a grace grant: its `exp` (the grace's end) bounds it like `fresh_until` here
        let exp = self.grace_ends(tok).unwrap_or(Millis::MAX);
        let value = alive.then_some((local + self.cfg.grant_cache_ms).min(exp));
        if !self.lost() {
            let at = self.now + self.rng.range(0, 30_000);
            self.schedule(at, Event::KvLand { tok, value });
        }
        alive.then_some(Basis::SourceOfTruth)
    }

    fn check_answer(
        &mut self,
        loc: usize,
        tok: Tok,
        dead: Option<Millis>,
        answer: Option<Basis>,
        local: Millis,
    ) {
        let Some(basis) = answer else {
            self.locs[loc].api[slot(tok)] = None;
            return;
        };
        self.stats.active += 1;
        if let Some(d) = dead {
            let late = self.now - d;
            let limit = if basis == Basis::Unconfirmed {
                self.cfg.fallback_bound_ms()
            } else {
                BOUND_MS
            };
            if late > limit {
                self.violate(&format!("location {loc} answered active for {tok:?} {late} ms after it died ({basis:?})"));
            }
        }
        let basis = if self.cfg.bug == Bug::MaxAgeIgnoresViewAge {
            Basis::SourceOfTruth
        } else {
            basis
        };
        let secs = max_age_secs(true, basis, local.div_euclid(1000), None);
        if secs > 0 {
            self.locs[loc].api[slot(tok)] = Some(self.now + secs * 1000);
            for _ in 0..2 {
                let at = self.now + self.rng.range(0, 6_000);
                self.schedule(at, Event::ApiUse { loc, tok });
            }
        }
    }

    fn start_fetch(&mut self, loc: usize, iso: usize) {
        let (local, p) = (self.local(loc, iso), self.cfg.params);
        self.locs[loc].isolates[iso].1.fetch_started(local);
        if self.rng.per_mille(20) {
            self.locs[loc].snapshot = None; // evicted from the Cache API
        }
        let cached = if self.lost() {
            None
        } else {
            self.locs[loc].snapshot.clone()
        };
        if let Some(s) = &cached {
            if s.age(local, &p) <= p.refresh_after_ms {
                self.locs[loc].isolates[iso].1.apply(s, local, &p);
                return;
            }
        }
        self.send_query(
            loc,
            iso,
            cached.unwrap_or_else(|| Rc::new(Snapshot::empty())),
            local,
        );
    }

    fn send_query(&mut self, loc: usize, iso: usize, prev: Rc<Snapshot>, sent: Millis) {
        self.stats.source_fetches += 1;
        if down(&self.locs[loc].feed_down, self.now)
            || down(&self.locs[loc].d1_down, self.now)
            || self.lost()
        {
            return; // never answered: the view's fetch times out
        }
        let at = self.now + draw_latency(&mut self.rng);
        self.schedule(
            at,
            Event::FeedExec {
                loc,
                iso,
                sent,
                prev,
            },
        );
    }

    fn feed_reply(&mut self, loc: usize, iso: usize, sent: Millis, prev: &Snapshot, page: &Page) {
        let (local, p) = (self.local(loc, iso), self.cfg.params);
        let stamp = if self.cfg.bug == Bug::AsOfAtArrival {
            local
        } else {
            sent
        };
        let Ok(next) = prev.refreshed(page, stamp, local, p.skew_ms) else {
            self.locs[loc].isolates[iso].1.fetch_failed();
            return;
        };
        let next = Rc::new(next);
        if !page.reaches_head() {
            self.send_query(loc, iso, next, local);
            return;
        }
        if !self.lost() {
            self.locs[loc].snapshot = Some(Rc::clone(&next));
        }
        self.locs[loc].isolates[iso].1.apply(&next, local, &p);
    }
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
