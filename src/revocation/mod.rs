//! The recent-revocations feed: revoked everywhere within [`BOUND_MS`], while an active token
//! still costs one KV read (docs/REVOCATION.md has the design, its numbers and the alternatives).
//!
//! KV answers at each Cloudflare location from a read cache that may lag a revocation by a minute
//! or more; a grant it serves is trusted until its `fresh_until` (at most `GRANT_CACHE_SECONDS`
//! after the D1 read that wrote it). Beside it, every revocation is appended, in the same D1
//! transaction that records it, to a small feed kept by one consistent place. Each location keeps
//! a snapshot of that feed (refreshed at most every [`Params::refresh_after_ms`]), each isolate
//! the parsed set; an answer that KV would give as active is checked against that set, and when
//! the set is older than [`Params::max_age_ms`] the source of truth answers instead.
//!
//! The pieces, all pure (time is passed in, in milliseconds):
//! - [`feed`]: the feed entry and its keys, the wire format, the feed as the consistent place
//!   keeps it ([`feed::FeedLog`]: append, trim by age, serve since a cursor) and how long each
//!   entry must stay ([`feed::Retention`]);
//! - [`snapshot`]: a location's snapshot ([`snapshot::Snapshot`]: built from pages, carries the
//!   time it is valid as of) and an isolate's view of it ([`snapshot::View`]: age, lookups,
//!   when to fetch);
//! - [`decide`]: the decision combinator (what KV said + the view -> active, inactive, or ask
//!   the source of truth), the policy when the source cannot be reached, and how long an
//!   introspection answer may be cached;
//! - [`push`]: what a revocation tells the APIs registered to hear of it (the subject and CAEP
//!   events of the Security Event Tokens pushed to them).
//!
//! Tests: unit tests next to each piece; `sim` (a seeded simulation of many locations with KV
//! read caches, clock skew, lost and delayed messages and outages, checking the bound on every
//! answer) and `race` (every interleaving of a KV refill from a stale read, a revocation and a
//! feed fetch).

pub mod decide;
pub mod feed;
pub mod push;
pub mod snapshot;
pub mod stamp;

#[cfg(test)]
mod race;
#[cfg(test)]
mod sim;

/// Milliseconds since the Unix epoch, as some machine's clock reads it.
pub type Millis = i64;

/// The promise: a token revoked (its D1 write committed) at time T is answered inactive by every
/// location from T + 5 s on, while the source of truth can be reached from that location.
pub const BOUND_MS: i64 = 5_000;

/// The knobs of the per-isolate view. [`Params::DEFAULT`] keeps the bound with room to spare:
/// an answer from the view reflects every revocation committed at least `max_age_ms` (4.5 s)
/// earlier, as long as any two clocks differ by at most `skew_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// A view older than this starts a refresh (in the background: requests keep using it), and
    /// a location's snapshot older than this is not taken as fresh: it is refreshed from the
    /// consistent place. So each location asks the consistent place about once per this period.
    pub refresh_after_ms: i64,
    /// A view older than this is not trusted: a token it would let through is checked against
    /// the source of truth instead. At most [`BOUND_MS`].
    pub max_age_ms: i64,
    /// The largest difference between two machines' clocks that the bound tolerates. Every age
    /// is computed as `now - as_of + skew_ms`, and entries are dropped `skew_ms` after their
    /// `until`.
    pub skew_ms: i64,
    /// A fetch that has not answered after this long counts as lost: another may start.
    pub fetch_timeout_ms: i64,
}

impl Params {
    pub const DEFAULT: Params = Params {
        refresh_after_ms: 2_000,
        max_age_ms: 4_500,
        skew_ms: 500,
        fetch_timeout_ms: 2_000,
    };
}

impl Default for Params {
    fn default() -> Self {
        Params::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_params_keep_the_bound() {
        let p = Params::DEFAULT;
        assert!(p.max_age_ms < BOUND_MS, "room for the request's own delay");
        assert!(p.refresh_after_ms + p.skew_ms + p.fetch_timeout_ms <= p.max_age_ms);
        assert!(p.refresh_after_ms > 0 && p.skew_ms >= 0);
    }
}
