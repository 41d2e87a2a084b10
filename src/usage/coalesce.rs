//! The isolate's side of usage counting: every use of a token is noted here, and at most one
//! report per token per window (`LAST_USED_COALESCE_SECONDS`) goes to the token's Durable Object,
//! carrying the exact uses since the last one, per day and [`UseKey`].
//!
//! - The first use of a token in this isolate is reported at once.
//! - Later uses within the window are held. The first use held in a window asks the caller to
//!   flush at the window's end ([`Noted::Held`] with a time: the runtime sleeps in `wait_until`
//!   until then and calls [`Coalescer::take_due`]).
//! - A use after the window has passed is reported at once, with everything held.
//! - Should that timer not run (the platform ends `wait_until` work, which it may do 30 s after
//!   the response), the next use of any token in this isolate finds the overdue windows
//!   ([`Coalescer::is_due`], one comparison) and flushes them.
//!
//! So a report is sent at most once per token per isolate per window, and held uses wait at
//! most one window plus the time to the next request of the isolate. They are lost only if the
//! isolate is evicted first.
//!
//! Where a token was used from is sampled: the place of the first use of each window (asked of
//! the caller only then, since reading it costs CPU) travels with that window's report.
//!
//! Noting a use costs a map lookup by the borrowed token id and a short scan of the window's
//! held keys; it allocates only for a key new in the window.

use super::{day_of, UseKey};
use crate::last_use::{DayCount, UsedFrom};
use std::collections::HashMap;

/// Tokens tracked at once. Past it, windows holding nothing are forgotten (their next use is
/// reported at once); if all hold uses, they are all reported with the use that found the map
/// full, then forgotten.
pub const MAX_TOKENS: usize = 10_000;

/// What to send to one token's object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub token_id: String,
    /// The last use reported (unix seconds).
    pub at: i64,
    /// Uses reported (the sum of `counts`).
    pub uses: u32,
    pub counts: Vec<DayCount>,
    /// Where the first use of the window came from.
    pub from: Option<UsedFrom>,
}

impl Report {
    /// The Durable Object's record of this report.
    pub fn into_record(self) -> crate::last_use::UseRecord {
        crate::last_use::UseRecord {
            token_id: self.token_id,
            at: self.at,
            uses: self.uses,
            counts: self.counts,
            from: self.from,
        }
    }
}

/// What noting a use asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Noted {
    /// Send these reports now: this token's first, then any others that had to go (the map was
    /// full).
    Send(Vec<Report>),
    /// Held for the window. `Some(t)`: the first use held in this window; flush at `t`.
    Held(Option<i64>),
}

#[derive(Debug)]
struct Held {
    day: i64,
    key: OwnedKey,
    uses: u32,
}

#[derive(Debug, PartialEq, Eq)]
struct OwnedKey {
    via: super::Via,
    name: String,
    outcome: super::Outcome,
}

impl OwnedKey {
    fn is(&self, k: &UseKey<'_>) -> bool {
        self.via == k.via && self.outcome == k.outcome && self.name == k.name
    }
}

#[derive(Debug)]
struct Window {
    /// When the last report was sent.
    last_sent: i64,
    /// The last use held.
    last_use: i64,
    held: Vec<Held>,
    /// Uses held (the sum of `held`).
    total: u32,
    /// Where the window's first use came from.
    from: Option<UsedFrom>,
}

impl Window {
    fn add(&mut self, day: i64, key: &UseKey<'_>, now: i64) {
        self.total = self.total.saturating_add(1);
        self.last_use = self.last_use.max(now);
        if let Some(h) = self.held.iter_mut().find(|h| h.day == day && h.key.is(key)) {
            h.uses = h.uses.saturating_add(1);
            return;
        }
        self.held.push(Held {
            day,
            key: OwnedKey {
                via: key.via,
                name: key.name.to_owned(),
                outcome: key.outcome,
            },
            uses: 1,
        });
    }

    /// Everything held, as a report; the window starts again at `now`.
    fn take(&mut self, token_id: &str, now: i64) -> Report {
        let counts = self
            .held
            .drain(..)
            .map(|h| DayCount {
                day: h.day,
                via: h.key.via.as_str().to_owned(),
                name: h.key.name,
                outcome: h.key.outcome.as_str().to_owned(),
                uses: h.uses,
            })
            .collect();
        let r = Report {
            token_id: token_id.to_owned(),
            at: self.last_use,
            uses: self.total,
            counts,
            from: self.from.take(),
        };
        self.total = 0;
        self.last_sent = now;
        r
    }
}

/// Per-isolate coalescing of uses (held in `IsolateState`).
#[derive(Debug, Default)]
pub struct Coalescer {
    windows: HashMap<String, Window>,
    /// The earliest time a held window is due (may be early: then a scan finds nothing).
    next_due: Option<i64>,
}

impl Coalescer {
    /// Notes one use of `token_id` at `now` with a window of `window` seconds; `from` (where the
    /// use came from) is called only for the first use of a window.
    pub fn note(
        &mut self,
        token_id: &str,
        key: &UseKey<'_>,
        now: i64,
        window: i64,
        from: impl FnOnce() -> UsedFrom,
    ) -> Noted {
        let day = day_of(now);
        if let Some(w) = self.windows.get_mut(token_id) {
            w.add(day, key, now);
            if w.total == 1 {
                w.from = Some(from());
            }
            if now - w.last_sent >= window {
                return Noted::Send(vec![w.take(token_id, now)]);
            }
            if w.total == 1 {
                let due = w.last_sent.saturating_add(window);
                self.next_due = Some(self.next_due.map_or(due, |d| d.min(due)));
                return Noted::Held(Some(due));
            }
            return Noted::Held(None);
        }
        let mut out = vec![Report {
            token_id: token_id.to_owned(),
            at: now,
            uses: 1,
            counts: vec![DayCount {
                day,
                via: key.via.as_str().to_owned(),
                name: key.name.to_owned(),
                outcome: key.outcome.as_str().to_owned(),
                uses: 1,
            }],
            from: Some(from()),
        }];
        if self.windows.len() >= MAX_TOKENS {
            out.extend(self.make_room(now));
        }
        self.windows.insert(
            token_id.to_owned(),
            Window {
                last_sent: now,
                last_use: now,
                held: Vec::new(),
                total: 0,
                from: None,
            },
        );
        Noted::Send(out)
    }

    /// Whether some held window may be due at `now` (one comparison: cheap on every use).
    pub fn is_due(&self, now: i64) -> bool {
        self.next_due.is_some_and(|d| now >= d)
    }

    /// Takes the reports of every window held for `window` seconds or more at `now`.
    pub fn take_due(&mut self, now: i64, window: i64) -> Vec<Report> {
        let mut out = Vec::new();
        let mut next: Option<i64> = None;
        for (id, w) in &mut self.windows {
            if w.total == 0 {
                continue;
            }
            if now - w.last_sent >= window {
                out.push(w.take(id, now));
            } else {
                let due = w.last_sent.saturating_add(window);
                next = Some(next.map_or(due, |d| d.min(due)));
            }
        }
        self.next_due = next;
        out
    }

    /// Takes everything held, whatever its window (an isolate that knows it is going away).
    pub fn take_all(&mut self, now: i64) -> Vec<Report> {
        self.next_due = None;
        self.windows
            .iter_mut()
            .filter(|(_, w)| w.total > 0)
            .map(|(id, w)| w.take(id, now))
            .collect()
    }

    /// Uses held now, for all tokens (tests and diagnostics).
    pub fn held(&self) -> u64 {
        self.windows.values().map(|w| u64::from(w.total)).sum()
    }

    /// The map is full: forget windows holding nothing; if none, report everything and forget
    /// it all.
    fn make_room(&mut self, now: i64) -> Vec<Report> {
        self.windows.retain(|_, w| w.total > 0);
        if self.windows.len() < MAX_TOKENS {
            return Vec::new();
        }
        let out = self.take_all(now);
        self.windows.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{Outcome, Via};

    const INTRO: UseKey<'static> = UseKey {
        via: Via::Introspection,
        name: "demo_api",
        outcome: Outcome::Active,
    };
    const GATE_403: UseKey<'static> = UseKey {
        via: Via::Gate,
        name: "demo",
        outcome: Outcome::InsufficientScope,
    };

    fn here() -> UsedFrom {
        UsedFrom {
            via: "gate".into(),
            name: "demo".into(),
            ip: Some("203.0.113.7".into()),
            country: None,
            colo: None,
        }
    }

    fn sent(n: Noted) -> Vec<Report> {
        match n {
            Noted::Send(r) => r,
            Noted::Held(_) => panic!("expected a report, got {n:?}"),
        }
    }

    fn total(reports: &[Report]) -> u64 {
        reports
            .iter()
            .flat_map(|r| r.counts.iter())
            .map(|c| u64::from(c.uses))
            .sum()
    }

    #[test]
    fn one_report_per_window_carrying_every_use() {
        let mut c = Coalescer::default();
        let first = sent(c.note("t", &INTRO, 100, 30, here));
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].at, first[0].uses), (100, 1));
        // the first use held in the window asks for a flush at its end
        assert_eq!(c.note("t", &INTRO, 101, 30, here), Noted::Held(Some(130)));
        assert_eq!(c.note("t", &GATE_403, 110, 30, here), Noted::Held(None));
        assert_eq!(c.note("t", &INTRO, 129, 30, here), Noted::Held(None));
        assert_eq!(c.held(), 3);
        // the window has passed: this use goes out with everything held
        let r = sent(c.note("t", &INTRO, 130, 30, here));
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].at, r[0].uses), (130, 4));
        let mut counts: Vec<(&str, &str, u32)> = r[0]
            .counts
            .iter()
            .map(|c| (c.name.as_str(), c.outcome.as_str(), c.uses))
            .collect();
        counts.sort_unstable();
        assert_eq!(
            counts,
            [("demo", "insufficient_scope", 1), ("demo_api", "active", 3)]
        );
        assert_eq!(c.held(), 0);
        // another token has its own window
        assert_eq!(sent(c.note("u", &INTRO, 130, 30, here))[0].uses, 1);
    }

    #[test]
    fn the_flush_at_the_windows_end_takes_what_is_held_and_restarts_the_window() {
        let mut c = Coalescer::default();
        sent(c.note("t", &INTRO, 100, 30, here));
        assert_eq!(c.note("t", &INTRO, 105, 30, here), Noted::Held(Some(130)));
        c.note("t", &INTRO, 120, 30, here);
        assert!(!c.is_due(129));
        assert!(
            c.take_due(129, 30).is_empty(),
            "not before the window's end"
        );
        assert!(c.is_due(130));
        let r = c.take_due(130, 30);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].at, r[0].uses), (120, 2), "at: the last use held");
        assert!(!c.is_due(10_000), "nothing held");
        // the flush was a report: the next window starts at the flush
        assert_eq!(c.note("t", &INTRO, 131, 30, here), Noted::Held(Some(160)));
        assert!(c.take_due(159, 30).is_empty());
        assert_eq!(c.take_due(160, 30)[0].uses, 1);
    }

    #[test]
    fn the_place_is_asked_for_once_per_window_and_travels_with_its_report() {
        let mut c = Coalescer::default();
        let asked = std::cell::Cell::new(0);
        let at = |ip: &'static str| {
            let asked = &asked;
            move || {
                asked.set(asked.get() + 1);
                UsedFrom {
                    ip: Some(ip.into()),
                    ..here()
                }
            }
        };
        let r = sent(c.note("t", &INTRO, 100, 30, at("203.0.113.1")));
        assert_eq!(
            r[0].from.as_ref().unwrap().ip.as_deref(),
            Some("203.0.113.1")
        );
        c.note("t", &INTRO, 101, 30, at("203.0.113.2")); // first of the window: asked
        c.note("t", &INTRO, 102, 30, at("203.0.113.3")); // not asked
        assert_eq!(asked.get(), 2);
        let r = c.take_due(130, 30);
        assert_eq!(
            r[0].from.as_ref().unwrap().ip.as_deref(),
            Some("203.0.113.2")
        );
        // the next window's first use is asked again, held or sent
        c.note("t", &INTRO, 131, 30, at("203.0.113.4"));
        assert_eq!(asked.get(), 3);
        assert_eq!(
            c.take_all(140)[0].from.as_ref().unwrap().ip.as_deref(),
            Some("203.0.113.4")
        );
    }

    #[test]
    fn a_flush_that_never_ran_is_done_by_a_later_use_of_any_token() {
        let mut c = Coalescer::default();
        sent(c.note("a", &INTRO, 100, 30, here));
        c.note("a", &INTRO, 101, 30, here); // held; its timer is lost
        sent(c.note("b", &INTRO, 200, 30, here));
        assert!(c.is_due(200));
        let r = c.take_due(200, 30);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].token_id.as_str(), r[0].uses), ("a", 1));
        assert!(!c.is_due(200));
    }

    #[test]
    fn uses_are_counted_on_the_utc_day_they_happened() {
        let mut c = Coalescer::default();
        let midnight = 20_000 * 86_400;
        sent(c.note("t", &INTRO, midnight - 20, 30, here));
        c.note("t", &INTRO, midnight - 1, 30, here);
        c.note("t", &INTRO, midnight, 30, here);
        c.note("t", &INTRO, midnight + 5, 30, here);
        let r = c.take_due(midnight + 10, 30);
        let mut days: Vec<(i64, u32)> = r[0].counts.iter().map(|c| (c.day, c.uses)).collect();
        days.sort_unstable();
        assert_eq!(days, [(19_999, 1), (20_000, 2)]);
    }

    #[test]
    fn a_full_map_forgets_idle_windows_then_reports_everything_rather_than_lose_it() {
        let mut c = Coalescer::default();
        for i in 0..MAX_TOKENS {
            sent(c.note(&format!("t{i}"), &INTRO, 100, 30, here));
        }
        c.note("t0", &INTRO, 101, 30, here); // one window holds a use
        let r = sent(c.note("new", &INTRO, 102, 30, here));
        assert_eq!(r.len(), 1, "idle windows were dropped, nothing had to go");
        assert_eq!(c.held(), 1);
        // now fill it with windows that all hold uses
        let mut c = Coalescer::default();
        for i in 0..MAX_TOKENS {
            let id = format!("t{i}");
            sent(c.note(&id, &INTRO, 100, 30, here));
            c.note(&id, &INTRO, 101, 30, here);
        }
        let r = sent(c.note("new", &INTRO, 102, 30, here));
        assert_eq!(r.len(), 1 + MAX_TOKENS);
        assert_eq!(total(&r), 1 + MAX_TOKENS as u64, "every held use reported");
        assert_eq!(c.held(), 0);
    }

    /// Whatever the order and timing of uses, the reports add up to the uses noted: nothing is
    /// lost or counted twice while the isolate lives.
    #[test]
    fn reports_add_up_to_the_uses_noted() {
        use proptest::prelude::*;
        proptest!(|(uses in proptest::collection::vec((0u8..4, 0i64..200, any::<bool>()), 1..200))| {
            let mut c = Coalescer::default();
            let mut reported = 0u64;
            let mut now = 1_000;
            let mut per_window: HashMap<String, Vec<i64>> = HashMap::new();
            for (tok, dt, flush) in &uses {
                now += dt;
                let id = format!("t{tok}");
                let key = if *flush { INTRO } else { GATE_403 };
                if let Noted::Send(r) = c.note(&id, &key, now, 30, here) {
                    for x in &r { per_window.entry(x.token_id.clone()).or_default().push(now); }
                    reported += total(&r);
                }
                if *flush && c.is_due(now) {
                    let r = c.take_due(now, 30);
                    for x in &r { per_window.entry(x.token_id.clone()).or_default().push(now); }
                    reported += total(&r);
                }
            }
            reported += total(&c.take_all(now));
            prop_assert_eq!(reported, uses.len() as u64);
            // at most one report per token per window (take_all at the end excepted)
            for sends in per_window.values() {
                for w in sends.windows(2) {
                    prop_assert!(w[1] - w[0] >= 30, "two reports within a window: {:?}", sends);
                }
            }
        });
    }
}
