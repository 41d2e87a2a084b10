//! State that lives as long as the isolate (a Worker instance): small caches that keep D1 and
//! Durable Objects off the hot path. Nothing here is needed for correctness; losing it (a new
//! isolate) only costs reads.

use crate::gate::route::GateRoute;
use crate::model::{ApiResource, Client};
use crate::token::TokenHash;
use crate::user_auth::Jwks;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Bound on every map below; past it the map is cleared (cheap, and rare).
const MAX_ENTRIES: usize = 10_000;
/// Negative answers (hash unknown to D1, or revoked/expired there) are final: remember them.
const NEGATIVE_TTL_SECS: i64 = 600;
/// How long a fetched JWKS is trusted before it is fetched again.
pub const JWKS_TTL_SECS: i64 = 600;
/// While the identity provider's JWKS URL fails, the last JWKS fetched keeps being used for at
/// most this long (stale-if-error), so a short identity-provider outage does not lock users out.
pub const JWKS_MAX_STALE_SECS: i64 = 86_400;

/// A cached registry read: when it was read, and what D1 said (`None`: no such record).
type Cached<T> = RefCell<HashMap<String, (i64, Option<Rc<T>>)>>;

#[derive(Default)]
pub struct IsolateState {
    resources: Cached<ApiResource>,
    clients: Cached<Client>,
    inactive: RefCell<HashMap<TokenHash, i64>>,
    last_use: RefCell<HashMap<String, UseWindow>>,
    /// (fetched at, last refresh attempt, keys)
    jwks: RefCell<Option<(i64, i64, Rc<Jwks>)>>,
    /// The gate's route table, read whole: (read at, routes).
    routes: RefCell<Option<(i64, Rc<Vec<GateRoute>>)>>,
}

struct UseWindow {
    last_sent: i64,
    pending: u32,
}

/// A registry cache lookup. `None` inside means D1 has no such record (also cached).
#[derive(Debug, PartialEq)]
pub enum Lookup<T> {
    Fresh(Option<Rc<T>>),
    /// Older than the lifetime. The caller refreshes it; this lookup already marked the entry
    /// fresh, so requests arriving while that refresh is in flight keep using the cached record
    /// instead of all reading D1 at once.
    Stale(Option<Rc<T>>),
    Miss,
}

fn lookup<T>(cache: &Cached<T>, id: &str, now: i64, ttl: i64) -> Lookup<T> {
    let mut map = cache.borrow_mut();
    match map.get_mut(id) {
        None => Lookup::Miss,
        Some((at, v)) if now - *at < ttl => Lookup::Fresh(v.clone()),
        Some((at, v)) => {
            *at = now;
            Lookup::Stale(v.clone())
        }
    }
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(k, v);
}

impl IsolateState {
    pub fn lookup_resource(&self, id: &str, now: i64, ttl: i64) -> Lookup<ApiResource> {
        lookup(&self.resources, id, now, ttl)
    }

    pub fn store_resource(&self, id: &str, now: i64, v: Option<Rc<ApiResource>>) {
        bounded_insert(&mut self.resources.borrow_mut(), id.to_owned(), (now, v));
    }

    pub fn lookup_client(&self, id: &str, now: i64, ttl: i64) -> Lookup<Client> {
        lookup(&self.clients, id, now, ttl)
    }

    pub fn store_client(&self, id: &str, now: i64, v: Option<Rc<Client>>) {
        bounded_insert(&mut self.clients.borrow_mut(), id.to_owned(), (now, v));
    }

    pub fn forget_resource(&self, id: &str) {
        self.resources.borrow_mut().remove(id);
    }

    pub fn forget_client(&self, id: &str) {
        self.clients.borrow_mut().remove(id);
    }

    pub fn is_known_inactive(&self, hash: &TokenHash, now: i64) -> bool {
        self.inactive
            .borrow()
            .get(hash)
            .is_some_and(|at| now - at < NEGATIVE_TTL_SECS)
    }

    pub fn mark_inactive(&self, hash: TokenHash, now: i64) {
        bounded_insert(&mut self.inactive.borrow_mut(), hash, now);
    }

    /// Counts a use; returns `Some(uses)` when the isolate should tell the Durable Object now
    /// (first use, or `window` seconds since the last report), carrying the uses since then.
    pub fn note_use(&self, token_id: &str, now: i64, window: i64) -> Option<u32> {
        let mut map = self.last_use.borrow_mut();
        if let Some(w) = map.get_mut(token_id) {
            w.pending = w.pending.saturating_add(1);
            if now - w.last_sent >= window {
                let uses = w.pending;
                w.pending = 0;
                w.last_sent = now;
                return Some(uses);
            }
            return None;
        }
        bounded_insert(
            &mut map,
            token_id.to_owned(),
            UseWindow {
                last_sent: now,
                pending: 0,
            },
        );
        Some(1)
    }

    /// Like the registry lookups: a stale JWKS is refreshed by the one request that finds it
    /// stale; it stays usable (if that refresh fails) until [`JWKS_MAX_STALE_SECS`] after it was
    /// fetched, after which it is a miss.
    pub fn lookup_jwks(&self, now: i64) -> Lookup<Jwks> {
        let mut j = self.jwks.borrow_mut();
        match j.as_mut() {
            Some((_, checked, v)) if now - *checked < JWKS_TTL_SECS => {
                Lookup::Fresh(Some(v.clone()))
            }
            Some((fetched, checked, v)) if now - *fetched < JWKS_MAX_STALE_SECS => {
                *checked = now;
                Lookup::Stale(Some(v.clone()))
            }
            _ => Lookup::Miss,
        }
    }

    pub fn store_jwks(&self, now: i64, jwks: Rc<Jwks>) {
        *self.jwks.borrow_mut() = Some((now, now, jwks));
    }

    /// The route table, like the registry records: fresh for `ttl`, then refreshed by the one
    /// request that finds it stale (the others keep using it meanwhile).
    pub fn lookup_routes(&self, now: i64, ttl: i64) -> Lookup<Vec<GateRoute>> {
        let mut r = self.routes.borrow_mut();
        match r.as_mut() {
            None => Lookup::Miss,
            Some((at, v)) if now - *at < ttl => Lookup::Fresh(Some(v.clone())),
            Some((at, v)) => {
                *at = now;
                Lookup::Stale(Some(v.clone()))
            }
        }
    }

    pub fn store_routes(&self, now: i64, routes: Rc<Vec<GateRoute>>) {
        *self.routes.borrow_mut() = Some((now, routes));
    }

    pub fn forget_routes(&self) {
        *self.routes.borrow_mut() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_use_coalesces_per_window() {
        let s = IsolateState::default();
        assert_eq!(s.note_use("t", 100, 30), Some(1));
        assert_eq!(s.note_use("t", 101, 30), None);
        assert_eq!(s.note_use("t", 129, 30), None);
        assert_eq!(s.note_use("t", 130, 30), Some(3));
        assert_eq!(s.note_use("u", 130, 30), Some(1));
    }

    #[test]
    fn a_stale_entry_is_refreshed_by_one_request_only() {
        let s = IsolateState::default();
        assert_eq!(s.lookup_client("c", 0, 30), Lookup::Miss);
        s.store_client("c", 0, None);
        assert_eq!(s.lookup_client("c", 29, 30), Lookup::Fresh(None));
        assert_eq!(s.lookup_client("c", 30, 30), Lookup::Stale(None));
        // the next request, while that refresh is in flight, uses the cached record
        assert_eq!(s.lookup_client("c", 30, 30), Lookup::Fresh(None));
    }

    #[test]
    fn jwks_is_refreshed_once_and_usable_stale_for_a_bounded_time() {
        let s = IsolateState::default();
        assert!(matches!(s.lookup_jwks(0), Lookup::Miss));
        s.store_jwks(0, Rc::new(Jwks::default()));
        assert!(matches!(
            s.lookup_jwks(JWKS_TTL_SECS - 1),
            Lookup::Fresh(Some(_))
        ));
        assert!(matches!(
            s.lookup_jwks(JWKS_TTL_SECS),
            Lookup::Stale(Some(_))
        ));
        // the refresh is claimed: concurrent requests keep using the cached keys
        assert!(matches!(
            s.lookup_jwks(JWKS_TTL_SECS),
            Lookup::Fresh(Some(_))
        ));
        assert!(matches!(s.lookup_jwks(JWKS_MAX_STALE_SECS), Lookup::Miss));
    }

    #[test]
    fn negative_cache_expires() {
        let s = IsolateState::default();
        let h = TokenHash([1; 32]);
        assert!(!s.is_known_inactive(&h, 0));
        s.mark_inactive(h, 0);
        assert!(s.is_known_inactive(&h, NEGATIVE_TTL_SECS - 1));
        assert!(!s.is_known_inactive(&h, NEGATIVE_TTL_SECS));
    }
}
