//! The decision combinator: what the one-read path says about a token, combined with the
//! isolate's view of the feed.
//!
//! The one-read path answers from caches (a fresh KV grant, a JWT verified locally, the
//! isolate's client record). It can only be wrong one way: it may still say "active" after a
//! revocation. So the feed is consulted only for an "active", and can only take it away:
//! a revocation in the view makes it inactive (final, however old the view); a view too old to
//! vouch for it sends the token to the source of truth (D1), which answers at once.

use super::snapshot::{Hit, Subject, View};
use super::{Millis, Params, BOUND_MS};

/// The combined answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Active,
    Inactive,
    /// Ask the source of truth for this token (D1 by hash or id; for `ClientChanged`, the
    /// client record), and answer what it says.
    Ask(Ask),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// The view is older than [`Params::max_age_ms`] (the feed could not be read lately): ask
    /// about the token and about its client (whose isolate copy the feed vouches for too).
    FeedTooOld,
    /// The token's client was disabled or deleted after this isolate read it.
    ClientChanged,
}

/// Combines the one-read path's answer (`cached_active`) with the view, at `now` (this
/// isolate's clock). One to four hash-map probes; no I/O.
pub fn decide(
    cached_active: bool,
    view: &View,
    subject: &Subject<'_>,
    now: Millis,
    p: &Params,
) -> Verdict {
    if !cached_active {
        return Verdict::Inactive;
    }
    match view.hit(subject, now, p) {
        Some(Hit::Revoked) => Verdict::Inactive,
        _ if view.must_fall_back(now, p) => Verdict::Ask(Ask::FeedTooOld),
        Some(Hit::ClientChanged) => Verdict::Ask(Ask::ClientChanged),
        None => Verdict::Active,
    }
}

/// What to do when the source of truth cannot be reached either (`Verdict::Ask` failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnreachable {
    /// Answer what the one-read path said. Introspection stays up through a D1 outage; a
    /// revocation committed shortly before the outage (or, under a partition, during it) then
    /// takes effect at that location within the one-read path's own bound: the grant's
    /// `fresh_until`, at most `GRANT_CACHE_SECONDS`.
    FailOpen,
    /// Refuse to answer (503): the bound always holds, and introspection depends on D1.
    FailClosed,
}

/// The answer when [`Verdict::Ask`] could not reach the source of truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreached {
    /// Active, unconfirmed: see [`WhenUnreachable::FailOpen`].
    ActiveUnconfirmed,
    Unavailable,
}

pub fn when_unreachable(policy: WhenUnreachable) -> Unreached {
    match policy {
        WhenUnreachable::FailOpen => Unreached::ActiveUnconfirmed,
        WhenUnreachable::FailClosed => Unreached::Unavailable,
    }
}

/// What an active answer was based on, for how long it may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The one-read path and a view of this age ([`View::age`]).
    View { age_ms: i64 },
    /// The source of truth, read for this request.
    SourceOfTruth,
    /// [`Unreached::ActiveUnconfirmed`]: nothing vouched for it.
    Unconfirmed,
}

/// `max-age` (seconds) of an introspection answer: an API that caches it no longer than this
/// still stops accepting a revoked token within [`BOUND_MS`] of the revocation. An active
/// answer reflects every revocation up to its basis's age, so it may be cached for the rest of
/// the bound, never past the token's `exp`; an inactive one for the bound (a token that was
/// merely not yet visible at this location may work a moment later).
pub fn max_age_secs(active: bool, basis: Basis, now_secs: i64, exp_secs: Option<i64>) -> i64 {
    if !active {
        return BOUND_MS / 1000;
    }
    let age_ms = match basis {
        Basis::View { age_ms } => age_ms.max(0),
        Basis::SourceOfTruth => 0,
        Basis::Unconfirmed => return 0,
    };
    let secs = BOUND_MS.saturating_sub(age_ms).max(0) / 1000;
    exp_secs.map_or(secs, |exp| secs.min(exp.saturating_sub(now_secs).max(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::feed::{FeedLog, Key};
    use crate::revocation::snapshot::Snapshot;
    use crate::token::TokenHash;

    const P: Params = Params::DEFAULT;

    fn view_with(keys: &[Key], as_of: Millis) -> View {
        let mut f = FeedLog::new();
        for k in keys {
            f.append(k.clone(), 0, Millis::MAX / 2);
        }
        let s = Snapshot::empty()
            .refreshed(&f.since(0, 100), as_of, as_of, P.skew_ms)
            .expect("ok");
        let mut v = View::new();
        v.apply(&s, as_of, &P);
        v
    }

    #[test]
    fn only_an_active_answer_consults_the_view() {
        let v = View::new(); // too old for anything
        let s = Subject::default();
        assert_eq!(decide(false, &v, &s, 0, &P), Verdict::Inactive);
        assert_eq!(decide(true, &v, &s, 0, &P), Verdict::Ask(Ask::FeedTooOld));
    }

    #[test]
    fn revoked_wins_whatever_the_age() {
        let h = TokenHash([3; 32]);
        let v = view_with(&[Key::token(&h)], 1_000);
        let s = Subject {
            token: Some(&h),
            record: Some("p"),
            ..Subject::default()
        };
        assert_eq!(decide(true, &v, &s, 1_000, &P), Verdict::Inactive);
        assert_eq!(
            decide(true, &v, &s, 1_000_000, &P),
            Verdict::Inactive,
            "no D1 read needed"
        );
        let live = Subject {
            token: Some(&TokenHash([4; 32])),
            ..Subject::default()
        };
        assert_eq!(decide(true, &v, &live, 1_000, &P), Verdict::Active);
        let fresh_until = 1_000 + P.max_age_ms - P.skew_ms;
        assert_eq!(decide(true, &v, &live, fresh_until, &P), Verdict::Active);
        assert_eq!(
            decide(true, &v, &live, fresh_until + 1, &P),
            Verdict::Ask(Ask::FeedTooOld)
        );
    }

    #[test]
    fn a_changed_client_is_asked_about() {
        let v = view_with(&[Key::Client("u1".into())], 1_000);
        let s = Subject {
            client_uid: Some("u1"),
            client_read_at: Some(500),
            ..Subject::default()
        };
        assert_eq!(
            decide(true, &v, &s, 1_000, &P),
            Verdict::Ask(Ask::ClientChanged)
        );
        let reread = Subject {
            client_read_at: Some(2_000),
            ..s
        };
        assert_eq!(decide(true, &v, &reread, 2_000, &P), Verdict::Active);
        // an old view asks about the token and its client at once
        assert_eq!(
            decide(true, &v, &s, 100_000, &P),
            Verdict::Ask(Ask::FeedTooOld)
        );
    }

    #[test]
    fn unreachable_source_follows_the_policy() {
        assert_eq!(
            when_unreachable(WhenUnreachable::FailOpen),
            Unreached::ActiveUnconfirmed
        );
        assert_eq!(
            when_unreachable(WhenUnreachable::FailClosed),
            Unreached::Unavailable
        );
    }

    #[test]
    fn cache_lifetime_fits_the_bound() {
        let now = 1_000;
        assert_eq!(max_age_secs(true, Basis::SourceOfTruth, now, None), 5);
        assert_eq!(
            max_age_secs(true, Basis::View { age_ms: 500 }, now, None),
            4
        );
        assert_eq!(
            max_age_secs(true, Basis::View { age_ms: 2_001 }, now, None),
            2
        );
        assert_eq!(
            max_age_secs(true, Basis::View { age_ms: 4_500 }, now, None),
            0
        );
        assert_eq!(
            max_age_secs(true, Basis::View { age_ms: 9_000 }, now, None),
            0
        );
        assert_eq!(max_age_secs(true, Basis::View { age_ms: -5 }, now, None), 5);
        assert_eq!(max_age_secs(true, Basis::Unconfirmed, now, None), 0);
        // never past the token's life
        assert_eq!(
            max_age_secs(true, Basis::SourceOfTruth, now, Some(now + 2)),
            2
        );
        assert_eq!(
            max_age_secs(true, Basis::SourceOfTruth, now, Some(now - 9)),
            0
        );
        assert_eq!(max_age_secs(false, Basis::Unconfirmed, now, None), 5);
        // an answer cached for max-age from a view of age a ends before revocation + bound
        for age_ms in (0..=P.max_age_ms).step_by(250) {
            let secs = max_age_secs(true, Basis::View { age_ms }, now, None);
            assert!(
                age_ms + secs * 1000 <= BOUND_MS,
                "age {age_ms} max-age {secs}"
            );
        }
    }
}
