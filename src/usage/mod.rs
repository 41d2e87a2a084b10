//! Token usage, the pure part: what a use is counted against, the isolate's coalescing of uses
//! into at most one Durable Object report per token per window ([`coalesce`]), the object's
//! bookkeeping of exact daily counts and of where the token was last used from ([`book`]), and
//! what views show of it ([`summary`]).
//!
//! Counts are kept per UTC day ([`day_of`]: days since 1970-01-01), for the last
//! [`RETENTION_DAYS`] days, per (how the use came in, the API resource or gate route, the
//! outcome). The stored and wire formats live in [`crate::last_use`] (pinned by golden tests).
//!
//! The bound (README "Usage"): a use is counted in D1 at most `LAST_USED_COALESCE_SECONDS` plus
//! `LAST_USED_FLUSH_SECONDS` after it happened. Counts can only be lost, never invented: the uses
//! an isolate holds for a window are lost if the isolate is evicted before it reports them.

pub mod book;
pub mod chart;
pub mod coalesce;
pub mod report;
pub mod summary;

use serde::Serialize;

pub const SECS_PER_DAY: i64 = 86_400;
/// Days of counts kept: today and the 89 before it.
pub const RETENTION_DAYS: i64 = 90;
/// Distinct places a token was last used from, kept per token (the most recent).
pub const MAX_FROM: usize = 5;
/// Distinct (via, name, outcome) keys counted per token per day; uses of more keys on one day
/// are counted under [`OTHER`] (the day's total stays exact).
pub const MAX_KEYS_PER_DAY: usize = 32;
/// The name under which uses past [`MAX_KEYS_PER_DAY`] are counted, and the `via`, `name` and
/// `outcome` of uses reported by a version that did not say what they were.
pub const OTHER: &str = "other";
pub const UNKNOWN: &str = "unknown";

/// The UTC day of a Unix time: days since 1970-01-01.
pub fn day_of(ts: i64) -> i64 {
    ts.div_euclid(SECS_PER_DAY)
}

/// `YYYY-MM-DD` of a day number.
pub fn date(day: i64) -> String {
    chrono::DateTime::from_timestamp(day.saturating_mul(SECS_PER_DAY), 0)
        .map_or_else(|| day.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// How a use came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// An API resource asked `/oauth/introspect` (the caller is the API, not the token's holder).
    Introspection,
    /// A request through a gate route (the caller is the token's holder).
    Gate,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Introspection => "introspection",
            Via::Gate => "gate",
        }
    }
}

/// What patgate answered to a use of a live token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Accepted: introspection answered `active`, the gate forwarded the request.
    Active,
    /// The token carries none of the resource's scopes (introspection `inactive`, gate 401).
    NoScope,
    /// The gate refused it: the route's rule needs a scope it lacks (403).
    InsufficientScope,
    /// The gate refused it: no rule of the route allows the method (405).
    MethodNotAllowed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Active => "active",
            Outcome::NoScope => "no_scope",
            Outcome::InsufficientScope => "insufficient_scope",
            Outcome::MethodNotAllowed => "method_not_allowed",
        }
    }
}

/// What one use is counted against: how it came in, the API resource (introspection) or gate
/// route id, and the outcome. Borrowed: noting a use allocates nothing unless the key is new in
/// its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UseKey<'a> {
    pub via: Via,
    /// The API resource id (introspection) or the gate route id.
    pub name: &'a str,
    pub outcome: Outcome,
}

/// Longest `via`, `name` or `outcome` kept.
const MAX_LABEL: usize = 64;

/// Whether a stored or received label (`via`, `name`, `outcome`) has the shape of an id:
/// 1 to 64 characters of `A-Z a-z 0-9 _ - . :` (the ids of resources, routes and these names).
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_and_count_from_the_epoch() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(day_of(-1), -1);
        // 2026-11-29T23:59:59Z and the second after it
        assert_eq!(date(day_of(1_795_996_799)), "2026-11-29");
        assert_eq!(date(day_of(1_795_996_800)), "2026-11-30");
        assert_eq!(date(0), "1970-01-01");
    }

    #[test]
    fn labels_are_id_shaped() {
        for ok in ["demo_api", "a", "route-1.x:y", &"a".repeat(64)] {
            assert!(is_label(ok), "{ok}");
        }
        for bad in ["", " ", "a b", "<x>", "é", &"a".repeat(65), "a\n"] {
            assert!(!is_label(bad), "{bad:?}");
        }
    }
}
