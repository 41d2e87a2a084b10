//! State that lives as long as the isolate (a Worker instance): small caches that keep D1 and
//! Durable Objects off the hot path. Nothing here is needed for correctness; losing it (a new
//! isolate) only costs reads.

use crate::authz::client_cache::ClientCache;
use crate::gate::route::GateRoute;
use crate::jose::Jwks;
use crate::model::{ApiResource, AuthzClient};
use crate::token::TokenHash;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Bound on every map below; past it the map is cleared (cheap, and rare).
const MAX_ENTRIES: usize = 10_000;
/// Negative answers (hash unknown to D1, or revoked/expired there) are final: remember them.
const NEGATIVE_TTL_SECS: i64 = 600;
/// A dead source PAT could come back only by re-enabling its client: forget such answers after
/// about the registry cache's lifetime.
const DEAD_SOURCE_TTL_SECS: i64 = 30;
/// How long a fetched JWKS is trusted before it is fetched again.
pub const JWKS_TTL_SECS: i64 = 600;
/// While the identity provider's JWKS URL fails, the last JWKS fetched keeps being used for at
/// most this long (stale-if-error), so a short identity-provider outage does not lock users out.
pub const JWKS_MAX_STALE_SECS: i64 = 86_400;

/// A whole registry table (every administrator-made client, or every API resource) by id.
pub type Table<T> = HashMap<String, Rc<T>>;

/// A cached registry table: (fetched at, last refresh attempt, records). The table is read
/// whole, so an id it lacks is unknown without any D1 read.
type Snapshot<T> = RefCell<Option<(i64, i64, Rc<Table<T>>)>>;

/// The gate's route table.
type Routes = Rc<Vec<GateRoute>>;

#[derive(Default)]
pub struct IsolateState {
    resources: Snapshot<ApiResource>,
    /// The administrator-made clients, read whole (`source = 'admin'`).
    clients: Snapshot<AuthzClient>,
    /// Self-registered clients (metadata documents, RFC 7591), one by one, bounded, with
    /// negative entries (see `super::clients`).
    one_by_one: RefCell<ClientCache<AuthzClient>>,
    /// When this isolate last wrote a dynamic client's use, by client id.
    touched: RefCell<HashMap<String, i64>>,
    inactive: RefCell<HashMap<TokenHash, i64>>,
    /// Security events not yet written (see [`crate::events`]).
    events: RefCell<Vec<crate::events::Event>>,
    /// Rate-limited keys and until when they are refused.
    blocked: RefCell<HashMap<(crate::store::Limit, String), i64>>,
    /// Sources (PAT id, generation) of exchanged JWTs known to be dead, and ended authorization
    /// grants of JWT access tokens (`a:{grant id}`, no generation).
    dead_sources: RefCell<HashMap<(String, Option<i64>), i64>>,
    /// Uses held per token until their report (see [`crate::usage::coalesce`]).
    usage: RefCell<crate::usage::coalesce::Coalescer>,
    /// (fetched at, last refresh attempt, keys)
    jwks: RefCell<Option<(i64, i64, Rc<Jwks>)>>,
    /// The gate's route table, read whole: (fetched at, last refresh attempt, routes).
    routes: RefCell<Option<(i64, i64, Routes)>>,
    /// The secret scanning partner's fetched public keys: (fetched at, keys).
    scanning_keys: RefCell<Option<(i64, Rc<crate::secret_scanning::KeySet>)>>,
    /// When the secret scanning keys were last fetched or tried (success or not).
    scanning_keys_tried: std::cell::Cell<Option<i64>>,
    /// Sampling of the webhook event types anyone can cause (see [`super::sampling`]).
    sampler: crate::webhook::sampling::Sampler,
    /// Webhook endpoints' subscriptions, read whole: (fetched at, subscriptions).
    webhooks: RefCell<Option<(i64, Webhooks)>>,
    /// This isolate's view of the revocation feed (see [`super::revocations`]), and the last
    /// snapshot it built or took: the base of its next merge when the location has none.
    revocations: RefCell<crate::revocation::snapshot::View>,
    feed_base: RefCell<Option<Rc<crate::revocation::snapshot::Snapshot>>>,
    /// D1 reads under way because the view was too old to vouch (see
    /// [`super::revocations::fallback`]).
    fallbacks: std::cell::Cell<usize>,
}

/// The webhook fan-out's view of the endpoints (see [`super::webhooks`]).
type Webhooks = Rc<Vec<crate::store::WebhookSubscription>>;

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

/// Fresh for `ttl` after the last refresh attempt; past that, one request refreshes it while the
/// others keep using it; if refreshes keep failing (a D1 outage), it is served for at most
/// `max_stale` past its normal life (`ttl` after it was fetched), then it is a miss (503 if D1
/// still fails): no decision is made on records older than `ttl + max_stale`.
fn lookup<T>(cache: &Snapshot<T>, now: i64, ttl: i64, max_stale: i64) -> Lookup<Table<T>> {
    let mut c = cache.borrow_mut();
    match c.as_mut() {
        Some((fetched, _, _)) if now - *fetched >= ttl + max_stale => Lookup::Miss,
        Some((_, checked, v)) if now - *checked < ttl => Lookup::Fresh(Some(v.clone())),
        Some((_, checked, v)) => {
            *checked = now;
            Lookup::Stale(Some(v.clone()))
        }
        _ => Lookup::Miss,
    }
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(k, v);
}

/// A registry table through the isolate cache: read whole from D1, so an unknown id costs no D1
/// query. A stale table is refreshed by the one request that found it stale; if that D1 read
/// fails, the stale table is served (within `registry_max_stale_secs` past its life, see
/// this module); a miss whose D1 read fails is a 503.
pub async fn table<T>(
    lookup: Lookup<Table<T>>,
    fetch: impl std::future::Future<Output = Result<Vec<T>, crate::store::StoreError>>,
    id_of: fn(&T) -> &str,
    store: impl FnOnce(Rc<Table<T>>),
) -> Result<Rc<Table<T>>, crate::error::Error> {
    let build = |rows: Vec<T>| -> Rc<Table<T>> {
        Rc::new(
            rows.into_iter()
                .map(|r| (id_of(&r).to_owned(), Rc::new(r)))
                .collect(),
        )
    };
    match lookup {
        Lookup::Fresh(Some(t)) => Ok(t),
        Lookup::Stale(Some(old)) => match fetch.await {
            Ok(rows) => {
                let t = build(rows);
                store(t.clone());
                Ok(t)
            }
            Err(_) => Ok(old),
        },
        _ => {
            let t = build(fetch.await?);
            store(t.clone());
            Ok(t)
        }
    }
}

impl IsolateState {
    pub fn lookup_resources(
        &self,
        now: i64,
        ttl: i64,
        max_stale: i64,
    ) -> Lookup<Table<ApiResource>> {
        lookup(&self.resources, now, ttl, max_stale)
    }

    pub fn store_resources(&self, now: i64, v: Rc<Table<ApiResource>>) {
        *self.resources.borrow_mut() = Some((now, now, v));
    }

    pub fn lookup_clients(&self, now: i64, ttl: i64, max_stale: i64) -> Lookup<Table<AuthzClient>> {
        lookup(&self.clients, now, ttl, max_stale)
    }

    pub fn store_clients(&self, now: i64, v: Rc<Table<AuthzClient>>) {
        *self.clients.borrow_mut() = Some((now, now, v));
    }

    /// The cache of self-registered clients, for one operation.
    pub fn clients_one_by_one<R>(&self, f: impl FnOnce(&mut ClientCache<AuthzClient>) -> R) -> R {
        f(&mut self.one_by_one.borrow_mut())
    }

    /// Claims the write of client `id`'s use at `now`: false if this isolate wrote it less than
    /// `interval` seconds ago.
    pub fn claim_client_touch(&self, id: &str, now: i64, interval: i64) -> bool {
        let mut t = self.touched.borrow_mut();
        if t.get(id).is_some_and(|at| now - at < interval) {
            return false;
        }
        bounded_insert(&mut t, id.to_owned(), now);
        true
    }

    /// After an admin change of resource `_id`: this isolate reads the table again at once.
    pub fn forget_resource(&self, _id: &str) {
        *self.resources.borrow_mut() = None;
    }

    /// After an admin change of client `_id`: this isolate reads the table again at once.
    pub fn forget_client(&self, id: &str) {
        *self.clients.borrow_mut() = None;
        self.one_by_one.borrow_mut().forget(id);
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

    /// A PAT generation that exchanged JWTs came from, known dead (revoked, rotated, expired,
    /// disabled client). Only a client re-enable could revive it: remembered for the registry
    /// bound's order of time like other negative answers.
    pub fn is_dead_source(&self, pat_id: &str, generation: Option<i64>, now: i64) -> bool {
        self.dead_sources
            .borrow()
            .get(&(pat_id.to_owned(), generation))
            .is_some_and(|at| now - at < DEAD_SOURCE_TTL_SECS)
    }

    pub fn mark_dead_source(&self, pat_id: &str, generation: Option<i64>, now: i64) {
        bounded_insert(
            &mut self.dead_sources.borrow_mut(),
            (pat_id.to_owned(), generation),
            now,
        );
    }

    /// The webhook subscriptions if read less than `ttl` seconds ago.
    pub fn cached_webhooks(&self, now: i64, ttl: i64) -> Option<Webhooks> {
        match &*self.webhooks.borrow() {
            Some((at, w)) if now - at < ttl => Some(w.clone()),
            _ => None,
        }
    }

    /// The last webhook subscriptions read, however old (when D1 fails).
    pub fn stale_webhooks(&self) -> Option<Webhooks> {
        self.webhooks.borrow().as_ref().map(|(_, w)| w.clone())
    }

    pub fn store_webhooks(&self, now: i64, w: Webhooks) {
        *self.webhooks.borrow_mut() = Some((now, w));
    }

    /// After an admin change of a webhook endpoint: read them again at once.
    pub fn forget_webhooks(&self) {
        *self.webhooks.borrow_mut() = None;
    }

    /// This isolate's view of the revocation feed.
    pub fn revocations(&self) -> std::cell::Ref<'_, crate::revocation::snapshot::View> {
        self.revocations.borrow()
    }

    pub fn revocations_mut(&self) -> std::cell::RefMut<'_, crate::revocation::snapshot::View> {
        self.revocations.borrow_mut()
    }

    pub fn feed_base(&self) -> Option<Rc<crate::revocation::snapshot::Snapshot>> {
        self.feed_base.borrow().clone()
    }

    pub fn set_feed_base(&self, snapshot: Rc<crate::revocation::snapshot::Snapshot>) {
        *self.feed_base.borrow_mut() = Some(snapshot);
    }

    pub fn fallbacks(&self) -> &std::cell::Cell<usize> {
        &self.fallbacks
    }

    /// A client or API resource changed at `changed_ms` (the feed's `c` entry, counting the
    /// clock allowance): the registry tables read in or before that second are read again.
    pub fn forget_registry_read_before(&self, changed_ms: i64) {
        let read_before = |fetched_secs: i64| fetched_secs.saturating_mul(1000) <= changed_ms;
        if self
            .clients
            .borrow()
            .as_ref()
            .is_some_and(|(f, _, _)| read_before(*f))
        {
            *self.clients.borrow_mut() = None;
        }
        if self
            .resources
            .borrow()
            .as_ref()
            .is_some_and(|(f, _, _)| read_before(*f))
        {
            *self.resources.borrow_mut() = None;
        }
    }

    /// A `warning` event: something went wrong that did not change the answer.
    pub fn warn(&self, message: String) {
        self.emit(crate::events::Event::Warning { message });
    }

    /// The `error` event of an error answer (its cause), if it has one.
    pub fn error(&self, e: &crate::error::Error) {
        if let Some(ev) = crate::events::Event::error_cause(e) {
            self.emit(ev);
        }
    }

    /// Records an event (security event, warning, error cause): the one sink. The runtime writes
    /// each as one log line after the request (and queues webhook deliveries of the deliverable
    /// ones).
    pub fn emit(&self, e: crate::events::Event) {
        let mut ev = self.events.borrow_mut();
        if ev.len() < MAX_ENTRIES {
            ev.push(e);
        }
    }

    /// The events emitted since the last call, oldest first.
    pub fn take_events(&self) -> Vec<crate::events::Event> {
        std::mem::take(&mut self.events.borrow_mut())
    }

    pub fn is_blocked(&self, limit: crate::store::Limit, key: &str, now: i64) -> bool {
        let blocked = self.blocked.borrow();
        // The usual case, on every authentication: nothing blocked, no key to build.
        if blocked.is_empty() {
            return false;
        }
        blocked
            .get(&(limit, key.to_owned()))
            .is_some_and(|until| now < *until)
    }

    pub fn block(&self, limit: crate::store::Limit, key: &str, until: i64) {
        bounded_insert(
            &mut self.blocked.borrow_mut(),
            (limit, key.to_owned()),
            until,
        );
    }

    /// Notes a use of token `token_id` (see [`crate::usage::coalesce::Coalescer::note`]).
    pub fn note_use(
        &self,
        token_id: &str,
        key: &crate::usage::UseKey<'_>,
        now: i64,
        window: i64,
        from: impl FnOnce() -> crate::last_use::UsedFrom,
    ) -> crate::usage::coalesce::Noted {
        self.usage
            .borrow_mut()
            .note(token_id, key, now, window, from)
    }

    /// Whether some held uses may be due (one comparison).
    pub fn uses_due(&self, now: i64) -> bool {
        self.usage.borrow().is_due(now)
    }

    /// The reports of every window held `window` seconds or more.
    pub fn take_due_uses(&self, now: i64, window: i64) -> Vec<crate::usage::coalesce::Report> {
        self.usage.borrow_mut().take_due(now, window)
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

    /// The route table, with the registry tables' policy: fresh for `ttl`, then refreshed by
    /// the one request that finds it stale (the others keep using it meanwhile); during a D1
    /// outage served at most `max_stale` past its life, then a miss.
    pub fn lookup_routes(&self, now: i64, ttl: i64, max_stale: i64) -> Lookup<Vec<GateRoute>> {
        let mut r = self.routes.borrow_mut();
        match r.as_mut() {
            Some((fetched, _, _)) if now - *fetched >= ttl + max_stale => Lookup::Miss,
            Some((_, checked, v)) if now - *checked < ttl => Lookup::Fresh(Some(v.clone())),
            Some((_, checked, v)) => {
                *checked = now;
                Lookup::Stale(Some(v.clone()))
            }
            None => Lookup::Miss,
        }
    }

    pub fn store_routes(&self, now: i64, routes: Rc<Vec<GateRoute>>) {
        *self.routes.borrow_mut() = Some((now, now, routes));
    }

    pub fn forget_routes(&self) {
        *self.routes.borrow_mut() = None;
    }

    /// The secret scanning keys fetched last and when, if any.
    pub fn scanning_keys(&self) -> Option<(i64, Rc<crate::secret_scanning::KeySet>)> {
        self.scanning_keys.borrow().clone()
    }

    pub fn store_scanning_keys(&self, now: i64, keys: Rc<crate::secret_scanning::KeySet>) {
        *self.scanning_keys.borrow_mut() = Some((now, keys));
    }

    /// Claims a fetch of the secret scanning keys at `now`: false if one was made or tried less
    /// than `min_interval` seconds ago (success or failure), so that a failing key URL is not
    /// asked again per request, and concurrent requests do not fetch at once.
    pub fn claim_scanning_keys_fetch(&self, now: i64, min_interval: i64) -> bool {
        match self.scanning_keys_tried.get() {
            Some(t) if now >= t && now - t < min_interval => false,
            _ => {
                self.scanning_keys_tried.set(Some(now));
                true
            }
        }
    }

    /// The webhook fan-out's sampling of unauthenticated event types.
    pub fn sampler(&self) -> &crate::webhook::sampling::Sampler {
        &self.sampler
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_table_is_refreshed_by_one_request_only_and_served_stale_for_a_bounded_time() {
        let s = IsolateState::default();
        let fresh = |l: Lookup<Table<AuthzClient>>| matches!(l, Lookup::Fresh(Some(_)));
        let stale = |l: Lookup<Table<AuthzClient>>| matches!(l, Lookup::Stale(Some(_)));
        assert_eq!(s.lookup_clients(0, 30, 300), Lookup::Miss);
        s.store_clients(0, Rc::new(Table::new()));
        assert!(fresh(s.lookup_clients(29, 30, 300)));
        assert!(stale(s.lookup_clients(30, 30, 300)));
        // the next request, while that refresh is in flight, uses the cached table
        assert!(fresh(s.lookup_clients(30, 30, 300)));
        // the refresh failed: the next one is tried a lifetime later, up to the stale bound
        assert!(stale(s.lookup_clients(60, 30, 300)));
        assert!(stale(s.lookup_clients(329, 30, 300)));
        assert_eq!(s.lookup_clients(330, 30, 300), Lookup::Miss);
        s.forget_client("x");
        assert_eq!(s.lookup_clients(331, 30, 300), Lookup::Miss);
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
    fn the_route_table_is_refreshed_once_and_served_stale_for_a_bounded_time() {
        let s = IsolateState::default();
        assert_eq!(s.lookup_routes(0, 30, 300), Lookup::Miss);
        s.store_routes(0, Rc::new(Vec::new()));
        assert!(matches!(
            s.lookup_routes(29, 30, 300),
            Lookup::Fresh(Some(_))
        ));
        assert!(matches!(
            s.lookup_routes(30, 30, 300),
            Lookup::Stale(Some(_))
        ));
        // that request refreshes it; the others keep using it meanwhile
        assert!(matches!(
            s.lookup_routes(30, 30, 300),
            Lookup::Fresh(Some(_))
        ));
        assert_eq!(s.lookup_routes(330, 30, 300), Lookup::Miss);
        s.forget_routes();
        assert_eq!(s.lookup_routes(1, 30, 300), Lookup::Miss);
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
