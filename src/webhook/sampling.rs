//! Sampling of the webhook event types that anyone can cause without authenticating, before they
//! are fanned out: `client_auth.failed` (any `client_id`, from any IP), `rate_limited` and
//! `warning`, and `client.registered` (RFC 7591 and metadata documents need no authentication).
//! Unsampled, every refused request would queue one delivery per subscribed endpoint
//! (each costing a D1 read, a POST and up to 8 retries), so traffic from rotating IPs would be
//! amplified into outbound requests.
//!
//! Per isolate and per type, time runs in windows of [`WINDOW_SECS`]: the first event of a window
//! is delivered as it is; the later ones are only counted, and delivered once as one summary
//! event of the same type (`{"summary": true, "count": N, "window_start", "window_end"}` as
//! `data`, README "Webhooks") once the window has ended: with the next fan-out of this isolate,
//! or the next request it serves. Every event is still written as its own log line; the
//! sampling only concerns webhooks. An isolate that is evicted before reporting its count loses
//! that count (the log lines remain).

use std::cell::RefCell;

/// The sampled event types.
pub const SAMPLED_TYPES: [&str; 4] = [
    "client_auth.failed",
    "rate_limited",
    "warning",
    "client.registered",
];

/// Length of a sampling window.
pub const WINDOW_SECS: i64 = 60;

/// Whether events of type `ty` are sampled.
pub fn is_sampled(ty: &str) -> bool {
    SAMPLED_TYPES.contains(&ty)
}

/// The window of one sampled type.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Index into [`SAMPLED_TYPES`].
    ty: usize,
    start: i64,
    /// Events counted and not delivered in this window.
    suppressed: u64,
}

/// Events of a type counted (not delivered) in a window that has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub event_type: &'static str,
    pub count: u64,
    pub window_start: i64,
    pub window_end: i64,
}

/// What to do with one sampled event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The first of its window: deliver it.
    Deliver,
    /// Counted for the window's summary.
    Counted,
}

/// The sampling state of an isolate (one window per sampled type).
#[derive(Debug, Default)]
pub struct Sampler {
    windows: RefCell<Vec<Window>>,
}

impl Sampler {
    /// Decides on one event of sampled type `ty` at `now`. A summary of the previous window of
    /// that type, if it counted anything, is returned with the decision.
    pub fn admit(&self, ty: &str, now: i64) -> (Admit, Option<Summary>) {
        let Some(i) = SAMPLED_TYPES.iter().position(|t| *t == ty) else {
            return (Admit::Deliver, None);
        };
        let mut windows = self.windows.borrow_mut();
        match windows.iter_mut().find(|w| w.ty == i) {
            Some(w) if now < w.start + WINDOW_SECS && now >= w.start => {
                w.suppressed = w.suppressed.saturating_add(1);
                (Admit::Counted, None)
            }
            Some(w) => {
                let summary = summary_of(w);
                *w = Window {
                    ty: i,
                    start: now,
                    suppressed: 0,
                };
                (Admit::Deliver, summary)
            }
            None => {
                windows.push(Window {
                    ty: i,
                    start: now,
                    suppressed: 0,
                });
                (Admit::Deliver, None)
            }
        }
    }

    /// Whether a window that counted events has ended by `now` (cheap: checked per request).
    pub fn summary_due(&self, now: i64) -> bool {
        self.windows
            .borrow()
            .iter()
            .any(|w| w.suppressed > 0 && !(now >= w.start && now < w.start + WINDOW_SECS))
    }

    /// Takes the summaries of windows that have ended by `now` (each reported once).
    pub fn take_due(&self, now: i64) -> Vec<Summary> {
        let mut out = Vec::new();
        for w in self.windows.borrow_mut().iter_mut() {
            if w.suppressed > 0 && !(now >= w.start && now < w.start + WINDOW_SECS) {
                out.extend(summary_of(w));
                w.suppressed = 0;
            }
        }
        out
    }
}

fn summary_of(w: &Window) -> Option<Summary> {
    (w.suppressed > 0).then(|| Summary {
        event_type: SAMPLED_TYPES[w.ty],
        count: w.suppressed,
        window_start: w.start,
        window_end: w.start + WINDOW_SECS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_of_a_window_is_delivered_the_rest_summarized_once() {
        let s = Sampler::default();
        assert_eq!(s.admit("client_auth.failed", 100), (Admit::Deliver, None));
        for t in 101..160 {
            assert_eq!(s.admit("client_auth.failed", t).0, Admit::Counted, "{t}");
        }
        // Another type has its own window.
        assert_eq!(s.admit("rate_limited", 120), (Admit::Deliver, None));
        // Not sampled: always delivered, never counted.
        for _ in 0..3 {
            assert_eq!(s.admit("pat.revoked", 121), (Admit::Deliver, None));
        }
        assert!(!s.summary_due(159));
        assert!(s.take_due(159).is_empty());
        assert!(s.summary_due(160));
        let due = s.take_due(160);
        assert_eq!(
            due,
            vec![Summary {
                event_type: "client_auth.failed",
                count: 59,
                window_start: 100,
                window_end: 160,
            }]
        );
        assert!(!s.summary_due(161), "reported once");
        assert!(s.take_due(500).is_empty());
        // The next event starts a new window and is delivered.
        assert_eq!(s.admit("client_auth.failed", 200), (Admit::Deliver, None));
        assert_eq!(s.admit("client_auth.failed", 201).0, Admit::Counted);
        // The event that opens the following window brings the summary along.
        let (a, summary) = s.admit("client_auth.failed", 260);
        assert_eq!(a, Admit::Deliver);
        assert_eq!(summary.map(|s| (s.count, s.window_start)), Some((1, 200)));
    }

    #[test]
    fn a_clock_that_goes_back_opens_a_new_window() {
        let s = Sampler::default();
        assert_eq!(s.admit("warning", 1000).0, Admit::Deliver);
        assert_eq!(s.admit("warning", 1001).0, Admit::Counted);
        let (a, summary) = s.admit("warning", 900);
        assert_eq!(a, Admit::Deliver);
        assert_eq!(summary.map(|s| s.count), Some(1));
    }
}
