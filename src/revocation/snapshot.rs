//! A location's snapshot of the feed and an isolate's view of it.
//!
//! - [`Snapshot`]: what a location keeps in its Cache API (one object): every entry still kept,
//!   `through` (it knows every entry with a smaller or equal seq, or it expired) and `as_of`, the
//!   time (by the fetching isolate's clock) at which the query that reached the feed's head was
//!   *sent*: every revocation committed before that moment is in it. Refreshing merges a page
//!   "since `through`" into the previous snapshot, so the consistent place only ever sends what
//!   is new.
//! - [`View`]: the parsed set an isolate keeps in memory, with its own `as_of`; its age decides
//!   between trusting it, refreshing it in the background, and asking the source of truth.

use super::feed::{Entry, FormatError, Key, Page, TOKEN_PREFIX_LEN};
use super::{Millis, Params};
use crate::token::TokenHash;
use std::collections::HashMap;
use std::fmt::Write as _;

/// First line of an encoded snapshot: the format and its version. Persisted (a location's Cache
/// API keeps snapshots across deployments): a new format gets a new version.
pub const HEADER: &str = "patgate-revocations 1";

/// A location's copy of the feed (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Every revocation committed before this time (the fetching isolate's clock) is in it.
    /// `Millis::MIN`: never complete (a cold location whose first pages did not reach the head).
    pub as_of: Millis,
    pub through: u64,
    /// In increasing seq order.
    pub entries: Vec<Entry>,
}

/// Why a page cannot refresh a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The page starts after the snapshot's `through`: fetch again since `through`.
    Gap { through: u64 },
    /// The feed's head is below what the snapshot already knows: the feed went back (its store
    /// restored to an earlier point, seqs given out again). Start over from an empty snapshot.
    Rewound { head: u64 },
}

impl Snapshot {
    /// A location's first, empty snapshot: knows nothing, valid as of nothing.
    pub fn empty() -> Self {
        Snapshot {
            as_of: Millis::MIN,
            through: 0,
            entries: Vec::new(),
        }
    }

    /// The snapshot after adding `page` to `self`. `sent_at`: when the query that brought the
    /// page was sent (the fetching isolate's clock; never the time it came back: an answer may
    /// be delayed); `now`: entries more than `skew_ms` past their `until` are dropped.
    pub fn refreshed(
        &self,
        page: &Page,
        sent_at: Millis,
        now: Millis,
        skew_ms: i64,
    ) -> Result<Snapshot, Refused> {
        if page.head < self.through {
            return Err(Refused::Rewound { head: page.head });
        }
        if page.after > self.through {
            return Err(Refused::Gap {
                through: self.through,
            });
        }
        let live = |e: &&Entry| e.until.saturating_add(skew_ms) >= now;
        let mut entries: Vec<Entry> = self.entries.iter().filter(live).cloned().collect();
        entries.extend(
            page.entries
                .iter()
                .filter(|e| e.seq > self.through)
                .filter(live)
                .cloned(),
        );
        let as_of = if page.reaches_head() {
            self.as_of.max(sent_at)
        } else {
            self.as_of
        };
        Ok(Snapshot {
            as_of,
            through: self.through.max(page.through),
            entries,
        })
    }

    /// Age at `now` by the reader's clock, counting the clock difference allowed.
    pub fn age(&self, now: Millis, p: &Params) -> i64 {
        now.saturating_sub(self.as_of).saturating_add(p.skew_ms)
    }

    /// The Cache API body.
    pub fn encode(&self) -> Result<String, FormatError> {
        let mut out = String::with_capacity(48 + self.entries.len() * 64);
        let _ = writeln!(out, "{HEADER} {} {}", self.as_of, self.through);
        for e in &self.entries {
            e.write_line(&mut out)?;
        }
        Ok(out)
    }

    /// Parses a Cache API body. Strict: one bad line refuses the whole snapshot (the isolate
    /// keeps its view, which ages until it refreshes from the consistent place or falls back).
    pub fn parse(text: &str) -> Result<Snapshot, FormatError> {
        Snapshot::parse_after(text, 0)
    }

    /// [`Snapshot::parse`], keeping only the entries after seq `after` (what an isolate that
    /// knows everything up to `after` needs): earlier lines are checked for their order only,
    /// so a refresh costs one scan of the text plus the new entries.
    pub fn parse_after(text: &str, after: u64) -> Result<Snapshot, FormatError> {
        let mut lines = text.split_terminator('\n');
        let header = lines.next().ok_or(FormatError::BadHeader)?;
        let rest = header
            .strip_prefix(HEADER)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(FormatError::BadHeader)?;
        let (as_of, through) = rest.split_once(' ').ok_or(FormatError::BadHeader)?;
        let as_of = as_of.parse::<i64>().map_err(|_| FormatError::BadHeader)?;
        let through = through.parse::<u64>().map_err(|_| FormatError::BadHeader)?;
        let mut entries = Vec::new();
        let mut last = 0;
        for (i, line) in lines.enumerate() {
            let n = i + 2;
            let seq = line
                .split_once(' ')
                .and_then(|(seq, _)| seq.parse::<u64>().ok())
                .ok_or(FormatError::BadLine(n))?;
            if seq <= last || seq > through {
                return Err(FormatError::Inconsistent);
            }
            last = seq;
            if seq > after {
                entries.extend(Entry::parse_line(line, n)?);
            }
        }
        Ok(Snapshot {
            as_of,
            through,
            entries,
        })
    }
}

/// What the decision looks up about one token (`None`: does not apply to this token):
///
/// | token | fields |
/// |---|---|
/// | PAT, client reference token (a KV grant) | `token`, `record` (the grant's id), client |
/// | authorization-server access token | the same, plus `grant` |
/// | JWT exchanged from a PAT | `record` (`pat_id`), `generation` (`pat_gen`), `jti`, client |
/// | client JWT access token | `jti`, client |
///
/// The client is the record this isolate holds for the token's `client_id`: its uid and when
/// it was read from D1 (by this isolate's clock).
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    pub token: Option<&'a TokenHash>,
    pub record: Option<&'a str>,
    pub generation: Option<i64>,
    pub jti: Option<&'a str>,
    pub grant: Option<&'a str>,
    pub client_uid: Option<&'a str>,
    pub client_read_at: Option<Millis>,
}

/// What the view knows about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// Revoked: final, whatever the view's age (a `t` entry from its `at` on: see [`View::hit`]).
    Revoked,
    /// Its client changed after this isolate read the client record: read it again.
    ClientChanged,
}

/// An isolate's parsed copy of its location's snapshot (see the module documentation).
#[derive(Debug, Clone)]
pub struct View {
    as_of: Millis,
    through: u64,
    /// Token prefix -> (dead from, until): `from` is the entry's `at`, the revocation's time
    /// for a revocation, the end of the grace for a rotation with a short grace.
    tokens: HashMap<[u8; TOKEN_PREFIX_LEN], (Millis, Millis)>,
    records: HashMap<String, Millis>,
    jtis: HashMap<String, Millis>,
    grants: HashMap<String, Millis>,
    /// Record id -> (first generation alive, until).
    generations: HashMap<String, (i64, Millis)>,
    /// Client uid -> (changed at, until).
    clients: HashMap<String, (Millis, Millis)>,
    /// The earliest `until` kept: nothing to drop before it.
    next_expiry: Millis,
    fetch_started: Option<Millis>,
}

impl Default for View {
    fn default() -> Self {
        View::new()
    }
}

impl View {
    /// A new isolate's view: knows nothing, so every token it would let through is asked about
    /// until the first snapshot arrives.
    pub fn new() -> Self {
        View {
            as_of: Millis::MIN,
            through: 0,
            tokens: HashMap::new(),
            records: HashMap::new(),
            jtis: HashMap::new(),
            grants: HashMap::new(),
            generations: HashMap::new(),
            clients: HashMap::new(),
            next_expiry: Millis::MAX,
            fetch_started: None,
        }
    }

    pub fn as_of(&self) -> Millis {
        self.as_of
    }

    pub fn through(&self) -> u64 {
        self.through
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.tokens.len()
            + self.records.len()
            + self.jtis.len()
            + self.grants.len()
            + self.generations.len()
            + self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Age at `now` (this isolate's clock), counting the clock difference allowed.
    pub fn age(&self, now: Millis, p: &Params) -> i64 {
        now.saturating_sub(self.as_of).saturating_add(p.skew_ms)
    }

    /// The latest time (writer's clock) a client or API resource record changed, of the `c`
    /// entries held: an isolate drops its copies of the registry tables read before it.
    pub fn latest_client_change(&self) -> Option<Millis> {
        self.clients.values().map(|(at, _)| *at).max()
    }

    /// Too old to trust: a token it would let through must be checked with the source of truth.
    pub fn must_fall_back(&self, now: Millis, p: &Params) -> bool {
        self.age(now, p) > p.max_age_ms
    }

    /// Whether this request should start a refresh (after its answer, in the background): the
    /// view is older than `refresh_after_ms` and no fetch is under way (or the last one is
    /// overdue: counted as lost). A request whose clock reads a little before the fetch's start
    /// (it began before the request that started the fetch: the runtime's clock is the request's)
    /// sees that fetch as under way; only a clock that went back by more than the timeout does not.
    pub fn wants_fetch(&self, now: Millis, p: &Params) -> bool {
        self.age(now, p) > p.refresh_after_ms
            && self.fetch_started.is_none_or(|s| {
                now.saturating_sub(s) >= p.fetch_timeout_ms
                    || s.saturating_sub(now) >= p.fetch_timeout_ms
            })
    }

    pub fn fetch_started(&mut self, now: Millis) {
        self.fetch_started = Some(now);
    }

    /// The fetch failed: the next request may start another.
    pub fn fetch_failed(&mut self) {
        self.fetch_started = None;
    }

    /// Takes in a location's snapshot (ends the fetch under way). Entries it already knows, and
    /// snapshots older than what it has, change nothing: applying in any order is safe. A
    /// snapshot newer (beyond the clock allowance) yet knowing fewer entries comes from a feed
    /// that went back: the view starts over from it. Returns how many entries were new.
    pub fn apply(&mut self, snap: &Snapshot, now: Millis, p: &Params) -> usize {
        if snap.through < self.through && snap.as_of > self.as_of.saturating_add(p.skew_ms) {
            *self = View::new();
        }
        self.fetch_started = None;
        let mut added = 0;
        for e in snap.entries.iter().filter(|e| e.seq > self.through) {
            if e.until.saturating_add(p.skew_ms) < now {
                continue;
            }
            added += 1;
            self.next_expiry = self.next_expiry.min(e.until);
            let until = e.until;
            match &e.key {
                Key::Token(t) => {
                    // the earliest death, the longest keep
                    let slot = self.tokens.entry(*t).or_insert((e.at, until));
                    *slot = (slot.0.min(e.at), slot.1.max(until));
                }
                Key::Record(r) => keep_longest(&mut self.records, r.clone(), until),
                Key::Jti(j) => keep_longest(&mut self.jtis, j.clone(), until),
                Key::Grant(g) => keep_longest(&mut self.grants, g.clone(), until),
                Key::Generation(r, g) => {
                    let slot = self.generations.entry(r.clone()).or_insert((*g, until));
                    *slot = (slot.0.max(*g), slot.1.max(until));
                }
                Key::Client(c) => {
                    let slot = self.clients.entry(c.clone()).or_insert((e.at, until));
                    *slot = (slot.0.max(e.at), slot.1.max(until));
                }
            }
        }
        self.through = self.through.max(snap.through);
        self.as_of = self.as_of.max(snap.as_of);
        if now > self.next_expiry.saturating_add(p.skew_ms) {
            self.drop_expired(now, p.skew_ms);
        }
        added
    }

    fn drop_expired(&mut self, now: Millis, skew_ms: i64) {
        let live = |until: Millis| until.saturating_add(skew_ms) >= now;
        self.tokens.retain(|_, (_, u)| live(*u));
        self.records.retain(|_, u| live(*u));
        self.jtis.retain(|_, u| live(*u));
        self.grants.retain(|_, u| live(*u));
        self.generations.retain(|_, (_, u)| live(*u));
        self.clients.retain(|_, (_, u)| live(*u));
        let mins = [
            self.tokens.values().map(|(_, u)| *u).min(),
            self.records.values().min().copied(),
            self.jtis.values().min().copied(),
            self.grants.values().min().copied(),
            self.generations.values().map(|(_, u)| *u).min(),
            self.clients.values().map(|(_, u)| *u).min(),
        ];
        self.next_expiry = mins.into_iter().flatten().min().unwrap_or(Millis::MAX);
    }

    /// What the view knows about `s` at `now` (this isolate's clock): a revocation (final, even
    /// from an old view), a client changed since this isolate read it, or nothing. A few
    /// hash-map probes, no allocation.
    ///
    /// A `t` entry kills its token from its `at` on: at once for a revocation (written when it
    /// happens), at the end of the grace for a rotation whose grace ends before the old token's
    /// grants from before the rotation stop being trusted (written with the rotation; no write
    /// happens when a grace runs out). "From `at`" compares this isolate's clock with the time
    /// as D1's grace check does.
    pub fn hit(&self, s: &Subject<'_>, now: Millis, p: &Params) -> Option<Hit> {
        let revoked = s.token.is_some_and(|h| {
            let mut prefix = [0u8; TOKEN_PREFIX_LEN];
            prefix.copy_from_slice(&h.0[..TOKEN_PREFIX_LEN]);
            self.tokens
                .get(&prefix)
                .is_some_and(|(from, _)| now >= *from)
        }) || s.record.is_some_and(|r| {
            self.records.contains_key(r)
                || s.generation.is_some_and(|g| {
                    self.generations
                        .get(r)
                        .is_some_and(|(alive_from, _)| g < *alive_from)
                })
        }) || s.jti.is_some_and(|j| self.jtis.contains_key(j))
            || s.grant.is_some_and(|g| self.grants.contains_key(g));
        if revoked {
            return Some(Hit::Revoked);
        }
        // The client changed at `at` (writer's clock): a copy read more than the clock
        // allowance later already reflects it.
        let changed = s
            .client_uid
            .and_then(|c| self.clients.get(c))
            .is_some_and(|(at, _)| {
                s.client_read_at
                    .is_none_or(|read| read <= at.saturating_add(p.skew_ms))
            });
        changed.then_some(Hit::ClientChanged)
    }
}

fn keep_longest<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Millis>, k: K, until: Millis) {
    let slot = map.entry(k).or_insert(until);
    *slot = (*slot).max(until);
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
