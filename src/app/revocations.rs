//! The revocation feed in the token decision (docs/REVOCATION.md): this isolate's view of the
//! location's snapshot, consulted only when the one-read path would answer "active", and kept
//! fresh from the location's Cache API object or, when that is older than 2 s, from D1.
//!
//! - [`check`]: one in-memory lookup on the hot path. A revocation in the view is final; a view
//!   over 2 s old asks for a refresh after the response ([`Deferred::RefreshRevocations`]); a
//!   view over 4.5 s old (counting the clock allowance) is refreshed before answering if no
//!   fetch is under way, and if it is still too old the caller asks D1 for the token.
//! - [`fallback`]: the cap on concurrent D1 reads for tokens while the view is too old.
//! - [`refresh`]: the location's snapshot if it is fresh enough, else one page query "since my
//!   cursor" to D1 merged into it and put back; the view takes the result, and the registry
//!   tables read before a client change it names are read again.

use super::ctx::{Ctx, Deferred};
use super::isolate::IsolateState;
use crate::revocation::decide::{decide, Verdict};
use crate::revocation::snapshot::{Refused, Snapshot, Subject};
use crate::revocation::{Millis, Params};
use crate::store::{Backend, RevocationFeed, SnapshotCache, StoreError};
use std::rc::Rc;

const P: Params = Params::DEFAULT;

/// Page queries one refresh may make (1,000 entries each): a cold location reads the whole feed
/// once; past this the refresh fails and the view stays old (the caller asks D1).
const MAX_PAGES: usize = 64;

/// What the view says about a token the one-read path would let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The view vouches for it; its age (ms, with the clock allowance) bounds how long the
    /// answer may be cached.
    Active { age_ms: i64 },
    /// Revoked (final, whatever the view's age).
    Revoked,
    /// The view is too old to vouch: ask D1 for the token and its client.
    AskSource,
}

/// D1 reads for tokens an isolate makes at once because its view is too old to vouch (the feed
/// cannot be read): past this, a request does not pile onto D1 (a database answers about
/// 1/(query time) queries a second) but is answered as when D1 cannot be reached
/// ([`crate::revocation::decide::WhenUnreachable`]: fail open, `max-age=0`).
pub const MAX_FALLBACKS: usize = 20;

/// A D1 fallback under way: holds one of the isolate's [`MAX_FALLBACKS`] places until dropped.
#[must_use]
pub struct Fallback<'a>(&'a IsolateState);

impl Drop for Fallback<'_> {
    fn drop(&mut self) {
        let n = self.0.fallbacks();
        n.set(n.get().saturating_sub(1));
    }
}

/// A place for one D1 fallback, or `None` when [`MAX_FALLBACKS`] are under way in this isolate.
pub fn fallback(isolate: &IsolateState) -> Option<Fallback<'_>> {
    let n = isolate.fallbacks();
    if n.get() >= MAX_FALLBACKS {
        return None;
    }
    n.set(n.get() + 1);
    Some(Fallback(isolate))
}

/// Consults the view for `subject`, refreshing it first when it is too old (see the module).
pub async fn check<B: Backend>(
    ctx: &Ctx<'_, B>,
    subject: &Subject<'_>,
    deferred: &mut Vec<Deferred>,
) -> Check {
    let now = ctx.now_ms;
    match verdict(ctx.isolate, subject, now) {
        Some(c) => {
            if matches!(c, Check::Active { .. }) && start_fetch(ctx.isolate, now) {
                deferred.push(Deferred::RefreshRevocations);
            }
            c
        }
        None if start_fetch(ctx.isolate, now) => {
            if let Err(e) = refresh(ctx.backend, ctx.isolate, now).await {
                ctx.isolate
                    .warn(format!("revocation feed unreadable, D1 answers: {}", e.0));
            }
            verdict(ctx.isolate, subject, now).unwrap_or(Check::AskSource)
        }
        None => Check::AskSource,
    }
}

/// The view's age now (ms, with the clock allowance), refreshing it first if it is too old and
/// no fetch is under way: for answers decided by D1 whose client record comes from this
/// isolate's cache, which the view vouches for. `None`: still too old.
pub async fn fresh_age<B: Backend>(ctx: &Ctx<'_, B>) -> Option<i64> {
    let now = ctx.now_ms;
    let too_old = ctx.isolate.revocations().must_fall_back(now, &P);
    if too_old && start_fetch(ctx.isolate, now) {
        if let Err(e) = refresh(ctx.backend, ctx.isolate, now).await {
            ctx.isolate
                .warn(format!("revocation feed unreadable, D1 answers: {}", e.0));
        }
    }
    let view = ctx.isolate.revocations();
    (!view.must_fall_back(now, &P)).then(|| view.age(now, &P))
}

/// `None`: the view is too old to vouch.
fn verdict(isolate: &IsolateState, subject: &Subject<'_>, now: Millis) -> Option<Check> {
    let view = isolate.revocations();
    match decide(true, &view, subject, now, &P) {
        Verdict::Inactive => Some(Check::Revoked),
        Verdict::Active => Some(Check::Active {
            age_ms: view.age(now, &P),
        }),
        Verdict::Ask(_) => None,
    }
}

/// Marks a fetch as under way if the view wants one (older than 2 s, none in flight).
fn start_fetch(isolate: &IsolateState, now: Millis) -> bool {
    let mut view = isolate.revocations_mut();
    let wants = view.wants_fetch(now, &P);
    if wants {
        view.fetch_started(now);
    }
    wants
}

/// Refreshes the view (the fetch was marked as started): the location's snapshot if it is at
/// most 2 s old, else D1 since the newest snapshot known here, merged, put back for the
/// location's other isolates. Returns how many entries were new to the view.
pub async fn refresh<B: RevocationFeed + SnapshotCache>(
    backend: &B,
    isolate: &IsolateState,
    now: Millis,
) -> Result<usize, StoreError> {
    match fetch(backend, isolate, now).await {
        Ok(snap) => {
            let added = isolate.revocations_mut().apply(&snap, now, &P);
            if let Some(changed) = isolate.revocations().latest_client_change() {
                isolate.forget_registry_read_before(changed.saturating_add(P.skew_ms));
            }
            isolate.set_feed_base(Rc::new(snap));
            Ok(added)
        }
        // The fetch stays marked as under way: the next one starts when it counts as lost
        // (2 s), so an unreachable feed costs one attempt per isolate per 2 s.
        Err(e) => Err(e),
    }
}

async fn fetch<B: RevocationFeed + SnapshotCache>(
    backend: &B,
    isolate: &IsolateState,
    now: Millis,
) -> Result<Snapshot, StoreError> {
    let local = isolate.feed_base();
    let cached = match backend.load_snapshot().await {
        Ok(Some(text)) => Snapshot::parse(&text).ok(),
        Ok(None) => None,
        // A Cache API failure alone: D1 still answers (the same bound, one more query).
        Err(e) => {
            isolate.warn(format!("revocation snapshot unreadable: {}", e.0));
            None
        }
    };
    if let Some(s) = cached
        .as_ref()
        .filter(|s| s.age(now, &P) <= P.refresh_after_ms)
    {
        return Ok(s.clone());
    }
    // The base of the merge: the newest of the location's and this isolate's own.
    let mut base = match (cached, local) {
        (Some(c), Some(l)) if l.through > c.through => (*l).clone(),
        (Some(c), _) => c,
        (None, Some(l)) => (*l).clone(),
        (None, None) => Snapshot::empty(),
    };
    let mut reached = false;
    for _ in 0..MAX_PAGES {
        let page = backend.feed_since(base.through).await?;
        base = match base.refreshed(&page, now, now, P.skew_ms) {
            Ok(s) => s,
            // The feed went back (a restore): start over from nothing.
            Err(Refused::Rewound { .. }) => {
                base = Snapshot::empty();
                continue;
            }
            Err(Refused::Gap { .. }) => return Err(StoreError::new("revocation feed page gap")),
        };
        if page.reaches_head() {
            reached = true;
            break;
        }
    }
    if !reached {
        return Err(StoreError::new("revocation feed: head not reached"));
    }
    let body = base
        .encode()
        .map_err(|e| StoreError::new(format!("revocation snapshot: {e:?}")))?;
    if let Err(e) = backend.store_snapshot(&body).await {
        isolate.warn(format!("revocation snapshot not stored: {}", e.0));
    }
    Ok(base)
}
