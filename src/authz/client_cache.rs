//! Looking clients up one by one: what a `client_id`'s shape says before any read
//! ([`classify`]), and a bounded per-isolate cache of single clients with negative entries
//! ([`ClientCache`]), replacing the whole-table read for self-registered clients (which can
//! number in the tens of thousands).
//!
//! Cost of an unknown id: a malformed id or a `pgd_` id whose tag does not verify costs no
//! storage read at all; an administrator-made id is looked up in the small admin table the
//! isolate already holds (no read); a metadata document URL costs one D1 read and, if unknown,
//! one guarded fetch, after which the isolate remembers the answer (negative entry) for
//! [`CachePolicy::negative_ttl`].

use super::secrets::{is_dynamic_id, verify_dynamic_id, ClientIdKey};
use crate::oauth::metadata_document::is_metadata_url;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// What a presented `client_id` can be, by its shape alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdKind {
    /// An `https` URL: a client ID metadata document (D1, then a fetch).
    MetadataUrl,
    /// A dynamic registration's id whose tag verifies (D1).
    Dynamic,
    /// Anything else: an administrator-made id (the isolate's admin table).
    Admin,
    /// Cannot exist: a `pgd_` id with a wrong tag, or no dynamic keys configured. No read.
    Impossible,
}

/// Classifies `client_id` (`keys`: `CLIENT_ID_KEYS`; `allow_http_loopback`: the development
/// setting for metadata documents on `http://127.0.0.1`).
pub fn classify(client_id: &str, keys: &[ClientIdKey], allow_http_loopback: bool) -> ClientIdKind {
    if is_metadata_url(client_id, allow_http_loopback) {
        ClientIdKind::MetadataUrl
    } else if is_dynamic_id(client_id) {
        if verify_dynamic_id(client_id, keys) {
            ClientIdKind::Dynamic
        } else {
            ClientIdKind::Impossible
        }
    } else {
        ClientIdKind::Admin
    }
}

/// Lifetimes of cached clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// A found client is trusted this long (`REGISTRY_CACHE_SECONDS`), then refreshed by one
    /// request while the others keep using it.
    pub ttl: i64,
    /// While refreshes fail (a D1 outage), a found client is served at most this long past
    /// `ttl` (`REGISTRY_MAX_STALE_SECONDS`); then it is a miss.
    pub max_stale: i64,
    /// A client not found is remembered this long (it may be registered meanwhile elsewhere).
    pub negative_ttl: i64,
}

/// A cache lookup.
#[derive(Debug, PartialEq)]
pub enum Cached<V> {
    /// Found, within its life.
    Found(Rc<V>),
    /// Known not to exist, or refused (a metadata document that could not be fetched or was
    /// invalid), within [`CachePolicy::negative_ttl`]: why, a sentence for the answer.
    Missing(Rc<str>),
    /// Past its life: the caller refreshes it. This lookup marked the entry checked, so that
    /// concurrent requests keep using it instead of all reading D1 at once.
    Stale(Rc<V>),
    Miss,
}

/// Why an id is missing when nothing more precise is known.
pub const UNKNOWN_CLIENT: &str = "unknown client";

struct Entry<V> {
    value: Result<Rc<V>, Rc<str>>,
    fetched_at: i64,
    checked_at: i64,
}

/// At most `capacity` clients (found or not), the oldest inserted evicted first.
pub struct ClientCache<V> {
    map: HashMap<String, Entry<V>>,
    order: VecDeque<String>,
    capacity: usize,
}

/// Default bound: a few thousand clients (a client record is well under a kilobyte).
pub const DEFAULT_CAPACITY: usize = 4096;

impl<V> Default for ClientCache<V> {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl<V> ClientCache<V> {
    pub fn new(capacity: usize) -> Self {
        ClientCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&mut self, id: &str, now: i64, p: &CachePolicy) -> Cached<V> {
        let Some(e) = self.map.get_mut(id) else {
            return Cached::Miss;
        };
        match &e.value {
            Err(why) if now - e.fetched_at < p.negative_ttl => Cached::Missing(why.clone()),
            Err(_) => Cached::Miss,
            Ok(_) if now - e.fetched_at >= p.ttl + p.max_stale => Cached::Miss,
            Ok(v) if now - e.checked_at < p.ttl => Cached::Found(v.clone()),
            Ok(v) => {
                e.checked_at = now;
                Cached::Stale(v.clone())
            }
        }
    }

    /// Stores what D1 (or a fetch) said about `id` at `now` (`None`: no such client).
    pub fn put(&mut self, id: &str, value: Option<V>, now: i64) {
        self.insert(
            id,
            value.map(Rc::new).ok_or_else(|| UNKNOWN_CLIENT.into()),
            now,
        );
    }

    /// Stores a found client as shared elsewhere (without copying it).
    pub fn put_rc(&mut self, id: &str, value: Rc<V>, now: i64) {
        self.insert(id, Ok(value), now);
    }

    /// Remembers that `id` cannot be used, and why, for [`CachePolicy::negative_ttl`].
    pub fn put_missing(&mut self, id: &str, why: &str, now: i64) {
        self.insert(id, Err(why.into()), now);
    }

    fn insert(&mut self, id: &str, value: Result<Rc<V>, Rc<str>>, now: i64) {
        let entry = Entry {
            value,
            fetched_at: now,
            checked_at: now,
        };
        if let Some(e) = self.map.get_mut(id) {
            *e = entry;
            return;
        }
        while self.map.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        self.order.push_back(id.to_owned());
        self.map.insert(id.to_owned(), entry);
    }

    /// After a change of client `id` in this isolate (admin API, registration, a refetched
    /// document): read it again at once.
    pub fn forget(&mut self, id: &str) {
        if self.map.remove(id).is_some() {
            self.order.retain(|k| k != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::secrets::generate_dynamic_id;
    use super::*;

    const P: CachePolicy = CachePolicy {
        ttl: 30,
        max_stale: 300,
        negative_ttl: 60,
    };

    #[test]
    fn the_shape_decides_where_to_look() {
        let k = ClientIdKey::new(&[1u8; 32]).expect("key");
        let other = ClientIdKey::new(&[2u8; 32]).expect("key");
        let dynamic = generate_dynamic_id(&k).expect("rng");
        let keys = [k];
        assert_eq!(
            classify("https://app.example/c.json", &keys, false),
            ClientIdKind::MetadataUrl
        );
        assert_eq!(
            classify("http://127.0.0.1:9/c.json", &keys, true),
            ClientIdKind::MetadataUrl
        );
        assert_eq!(
            classify("http://127.0.0.1:9/c.json", &keys, false),
            ClientIdKind::Admin
        );
        assert_eq!(classify(&dynamic, &keys, false), ClientIdKind::Dynamic);
        assert_eq!(
            classify(&dynamic, &[other], false),
            ClientIdKind::Impossible
        );
        assert_eq!(classify(&dynamic, &[], false), ClientIdKind::Impossible);
        assert_eq!(
            classify("pgd_forged", &keys, false),
            ClientIdKind::Impossible
        );
        assert_eq!(classify("demo_client", &keys, false), ClientIdKind::Admin);
    }

    #[test]
    fn found_clients_go_stale_once_and_negative_ones_expire() {
        let mut c: ClientCache<&str> = ClientCache::new(10);
        assert_eq!(c.get("a", 0, &P), Cached::Miss);
        c.put("a", Some("A"), 0);
        c.put("x", None, 0);
        assert_eq!(c.get("a", 29, &P), Cached::Found(Rc::new("A")));
        assert_eq!(c.get("a", 30, &P), Cached::Stale(Rc::new("A")));
        assert_eq!(
            c.get("a", 30, &P),
            Cached::Found(Rc::new("A")),
            "one refresher"
        );
        assert_eq!(c.get("a", 329, &P), Cached::Stale(Rc::new("A")));
        assert_eq!(
            c.get("a", 330, &P),
            Cached::Miss,
            "never past the stale bound"
        );
        assert_eq!(c.get("x", 59, &P), Cached::Missing(UNKNOWN_CLIENT.into()));
        assert_eq!(c.get("x", 60, &P), Cached::Miss);
        c.put_missing("y", "the document is too large", 100);
        assert_eq!(
            c.get("y", 159, &P),
            Cached::Missing("the document is too large".into())
        );
        assert_eq!(c.get("y", 160, &P), Cached::Miss);
        c.put("a", Some("A2"), 400);
        assert_eq!(c.get("a", 401, &P), Cached::Found(Rc::new("A2")));
        c.forget("a");
        assert_eq!(c.get("a", 401, &P), Cached::Miss);
        assert_eq!(
            c.len(),
            2,
            "x and y are kept (expired entries are replaced, not swept)"
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut c: ClientCache<u32> = ClientCache::new(3);
        for i in 0..10u32 {
            c.put(&format!("k{i}"), Some(i), 0);
            assert!(c.len() <= 3);
        }
        assert_eq!(c.get("k9", 1, &P), Cached::Found(Rc::new(9)));
        assert_eq!(c.get("k6", 1, &P), Cached::Miss, "the oldest went first");
        // updating an entry does not grow the cache or its eviction order
        c.put("k9", Some(99), 2);
        c.put("k9", None, 3);
        assert_eq!(c.len(), 3);
        assert!(!c.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_more_than_capacity(ops in proptest::collection::vec((0u8..20, proptest::bool::ANY, proptest::bool::ANY), 0..200), cap in 1usize..8) {
            let mut c: ClientCache<u8> = ClientCache::new(cap);
            for (i, (k, found, forget)) in ops.into_iter().enumerate() {
                let key = format!("k{k}");
                if forget { c.forget(&key); } else { c.put(&key, found.then_some(k), i as i64); }
                proptest::prop_assert!(c.len() <= cap);
                proptest::prop_assert_eq!(c.order.len(), c.map.len());
            }
        }
    }
}
