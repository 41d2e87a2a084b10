//! Service-level tests: the whole handler logic over the in-memory backend, including storage
//! operation counts on the hot path and injected storage failures.

#![allow(clippy::needless_pass_by_value)]

use super::*;
use crate::app::config::*;
use crate::events;
use crate::http::{Method, Request};
use crate::jose::UserAuthConfig;
use crate::model::PAT_CLIENT_ID;
use crate::model::{ApiResource, Client, SecretSet, TokenFormat};
use crate::secret::ClientSecret;
use crate::testing::{Counts, MemoryBackend};
use crate::time::rfc3339;
use base64::Engine as _;
use futures::executor::block_on;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

const NOW: i64 = 1_795_000_000; // 2026-11-18
const USER_SECRET: &str = "test-user-secret";

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

/// An HS256 user JWT, signed independently of the verifier under test.
fn user_jwt(sub: &str) -> String {
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"iss":"idp","aud":"patgate","sub":sub,"iat":NOW,"exp":NOW + 400 * 86_400});
    let body = b64(claims.to_string().as_bytes());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(USER_SECRET.as_bytes()).expect("key");
    mac.update(format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", b64(&mac.finalize().into_bytes()))
}

fn config() -> Config {
    Config {
        user_auth: UserAuthConfig::from_parts(
            "idp".into(),
            "patgate".into(),
            Some(USER_SECRET.into()),
            None,
            None,
        )
        .expect("config"),
        admin_token: Some(crate::secret::ClientSecret::new(ADMIN)),
        signing_keys: Some(std::rc::Rc::new(
            crate::jose::SigningKeys::parse(&format!(
                "[{}]",
                crate::jose::SigningKeys::generate_ed25519("k1").expect("key")
            ))
            .expect("keys"),
        )),
        ..Config::for_tools("https://patgate.test")
    }
}

const ADMIN: &str = "test-admin-token";

fn backend() -> MemoryBackend {
    let b = MemoryBackend::default();
    let res = |id: &str, secret: &str, scopes: &[&str]| ApiResource {
        descriptions: Vec::new(),
        resource_uri: None,
        id: id.into(),
        uid: format!("uid-{id}"),
        secret: SecretSet {
            current: ClientSecret::new(secret).hash(),
            previous: None,
        },
        enabled: true,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    };
    b.resources.borrow_mut().extend([
        res(
            "demo_api",
            "demo-api-secret",
            &["demo_api:read", "demo_api:write"],
        ),
        res("other_api", "other-api-secret", &["other_api:read"]),
    ]);
    b.clients.borrow_mut().extend([
        Client {
            id: PAT_CLIENT_ID.into(),
            uid: "uid-pat_client".into(),
            secret: None,
            allowed_scopes: vec![
                "demo_api:read".into(),
                "demo_api:write".into(),
                "other_api:read".into(),
            ],
            token_format: TokenFormat::Reference,
            token_lifetime: 3600,
            enabled: true,
        },
        Client {
            id: "demo_client".into(),
            uid: "uid-demo_client".into(),
            secret: Some(SecretSet {
                current: ClientSecret::new("demo-client-secret").hash(),
                previous: None,
            }),
            allowed_scopes: vec!["demo_api:read".into()],
            token_format: TokenFormat::Reference,
            token_lifetime: 3600,
            enabled: true,
        },
    ]);
    b
}

struct Harness {
    cfg: Config,
    backend: MemoryBackend,
    isolate: IsolateState,
    now: i64,
    /// Usage flushes asked for (`Deferred::FlushUses`): (when, window), run by `fire_timers`.
    timers: std::cell::RefCell<Vec<(i64, i64)>>,
}

mod admin_pats;
mod api_target;
mod clients;
mod confidential;
mod deliveries;
mod ended;
mod fanout;
mod feed;
mod feed_cap;
mod feed_grace;
mod feed_grants;
mod flow;
mod grant_jwt;
mod grant_usage;
mod handlers;
mod integrity;
mod lifecycle;
mod oauth_layer;
mod pat_sort;
mod reuse;
mod rotation;
mod scopes;
mod state;
mod usage;

impl Harness {
    /// The log lines written since the last call (events, warnings, error causes): what the
    /// runtime writes after each request.
    fn logged(&self) -> String {
        self.isolate
            .take_events()
            .iter()
            .map(crate::events::Event::line)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn new() -> Self {
        Harness {
            cfg: config(),
            backend: backend(),
            isolate: IsolateState::default(),
            now: NOW,
            timers: std::cell::RefCell::default(),
        }
    }

    fn send(&self, req: &Request) -> Outcome {
        let ctx = Ctx {
            cfg: &self.cfg,
            backend: &self.backend,
            isolate: &self.isolate,
            now: self.now,
            now_ms: self.now * 1000,
        };
        block_on(handle(&ctx, req))
    }

    /// Sends and runs deferred work, as `wait_until` would.
    fn call(&self, req: &Request) -> (u16, Value, Outcome) {
        let o = self.send(req);
        self.run_deferred(&o);
        (o.response.status, o.response.json_body(), o)
    }

    fn run_deferred(&self, o: &Outcome) {
        self.run_work(&o.deferred);
    }

    /// The usage flushes asked for by `now`, as the runtime's timers would run them.
    fn fire_timers(&self) {
        use crate::store::UsageRecorder;
        let due: Vec<(i64, i64)> = {
            let mut t = self.timers.borrow_mut();
            let (due, later): (Vec<_>, Vec<_>) = t.iter().partition(|(at, _)| *at <= self.now);
            *t = later;
            due
        };
        for (_, window) in due {
            for r in self.isolate.take_due_uses(self.now, window) {
                // A failed report is lost, as in the runtime (which logs a warning).
                let _ = block_on(self.backend.record_use(&r.into_record()));
            }
        }
    }

    fn run_work(&self, work: &[Deferred]) {
        for d in work {
            match d {
                Deferred::RecordUse(rec) => {
                    use crate::store::UsageRecorder;
                    // A failed report is lost, as in the runtime (which logs a warning).
                    let _ = block_on(self.backend.record_use(rec));
                }
                Deferred::FlushUses { after_secs, window } => {
                    self.timers
                        .borrow_mut()
                        .push((self.now + *after_secs as i64, *window));
                }
                Deferred::CacheGrant { hash, grant } => {
                    use crate::store::GrantCache;
                    assert!(
                        grant
                            .fresh_until
                            .is_some_and(|f| f <= self.now + self.cfg.grant_cache_secs),
                        "KV grants are trusted at most GRANT_CACHE_SECONDS"
                    );
                    block_on(self.backend.put_grant(hash, grant)).expect("put");
                }
                Deferred::PurgeGrants { hashes, .. } => {
                    use crate::store::GrantCache;
                    for hash in hashes {
                        block_on(self.backend.delete_grant(hash)).expect("delete");
                    }
                }
                Deferred::PutMarkers { markers, .. } => {
                    use crate::store::GrantCache;
                    for (hash, marker) in markers {
                        assert!(marker.marker && !marker.can_be_active(self.now));
                        block_on(self.backend.put_grant(hash, marker)).expect("put");
                    }
                }
                Deferred::RefreshRevocations => {
                    let refreshed = block_on(crate::app::revocations::refresh(
                        &self.backend,
                        &self.isolate,
                        self.now * 1000,
                    ));
                    drop(refreshed);
                }
            }
        }
    }

    fn create(&self, user: &str, body: Value) -> (u16, Value) {
        let req = Request::new(Method::Post, "/api/pats")
            .header("authorization", &format!("Bearer {}", user_jwt(user)))
            .header("content-type", "application/json")
            .body(body.to_string());
        let (s, v, _) = self.call(&req);
        (s, v)
    }

    fn pat(&self, user: &str, scopes: &[&str]) -> (String, String) {
        let (s, v) = self.create(
            user,
            json!({"name":"ci","scopes":scopes,"expires_in_days":30}),
        );
        assert_eq!(s, 201, "{v}");
        (
            v["id"].as_str().expect("id").into(),
            v["token"].as_str().expect("token").into(),
        )
    }

    fn introspect_as(&self, resource: &str, secret: &str, token: &str) -> (u16, Value, Outcome) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{resource}:{secret}"));
        let req = Request::new(Method::Post, "/oauth/introspect")
            .header("authorization", &format!("Basic {auth}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"));
        self.call(&req)
    }

    fn introspect(&self, token: &str) -> (u16, Value, Outcome) {
        self.introspect_as("demo_api", "demo-api-secret", token)
    }

    /// Introspection at another location: same storage, a fresh isolate (no negative cache, no
    /// registry cache), deferred repairs applied.
    fn introspect_elsewhere(&self, token: &str) -> Value {
        let isolate = IsolateState::default();
        let ctx = Ctx {
            cfg: &self.cfg,
            backend: &self.backend,
            isolate: &isolate,
            now: self.now,
            now_ms: self.now * 1000,
        };
        let o = block_on(handle(&ctx, &introspect_req(token)));
        self.run_deferred(&o);
        o.response.json_body()
    }

    fn user_call(&self, method: Method, path: &str, user: &str) -> (u16, Value) {
        let req = Request::new(method, path)
            .header("authorization", &format!("Bearer {}", user_jwt(user)));
        let (s, v, _) = self.call(&req);
        (s, v)
    }
}

#[test]
fn active_pat_introspection_shape() {
    let h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read", "other_api:read"]);
    let (s, v, o) = h.introspect(&token);
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"active":true,"scope":"demo_api:read","client_id":"pat_client","sub":"alice",
               "exp":NOW + 30 * 86_400,"iat":NOW,"iss":"https://patgate.test","token_type":"Bearer",
               "jti":id,"name":"ci","aud":"demo_api"})
    );
    // a fresh view of the revocation feed vouches for it: cacheable for the rest of the 5 s
    assert_eq!(
        o.response.header("cache-control"),
        Some("private, max-age=4")
    );
    assert_eq!(o.response.header("pragma"), Some("no-cache"));
    // the other resource sees only its own scope
    let (_, v, _) = h.introspect_as("other_api", "other-api-secret", &token);
    assert_eq!(v["scope"], "other_api:read");
}

#[test]
fn token_without_the_resources_scopes_is_inactive_for_it() {
    let h = Harness::new();
    let (_, token) = h.pat("alice", &["other_api:read"]);
    assert_eq!(h.introspect(&token).1, json!({"active":false}));
}

#[test]
fn steady_state_introspection_is_one_kv_read() {
    let h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    h.introspect(&token); // warm the isolate's API resource cache
    h.backend.take_counts();
    let (_, v, o) = h.introspect(&token);
    assert_eq!(v["active"], true);
    // the first use held in the window asks for one flush at its end; the next ones nothing
    assert!(
        matches!(o.deferred.as_slice(), [Deferred::FlushUses { .. }]),
        "{:?}",
        o.deferred
    );
    h.backend.take_counts();
    let (_, v, o) = h.introspect(&token);
    assert_eq!(v["active"], true);
    assert!(o.deferred.is_empty(), "use already reported in this window");
    assert_eq!(
        h.backend.take_counts(),
        Counts {
            kv_get: 1,
            ..Counts::default()
        }
    );
}

#[test]
fn garbage_and_bad_checksums_touch_no_storage() {
    let h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    h.introspect("warm");
    h.backend.take_counts();
    let mut typo = token.clone();
    typo.replace_range(10..11, if &token[10..11] == "a" { "b" } else { "a" });
    for t in ["garbage", typo.as_str(), &"x".repeat(151)] {
        assert_eq!(h.introspect(t).1, json!({"active":false}));
    }
    assert_eq!(h.backend.take_counts(), Counts::default());
}

#[test]
fn a_stale_kv_entry_is_checked_against_d1_and_rewritten() {
    let mut h = Harness::new();
    h.cfg.registry_cache_secs = 1_000_000; // count only the token's reads
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    h.introspect(&token); // warm the registry cache
    h.now += h.cfg.grant_cache_secs; // the entry's trust time is over
    h.backend.take_counts();
    let (_, v, o) = h.introspect(&token);
    assert_eq!(v["active"], true);
    assert!(matches!(
        o.deferred.as_slice(),
        [Deferred::CacheGrant { .. }, ..]
    ));
    let c = h.backend.take_counts();
    assert_eq!((c.kv_get, c.d1_query, c.kv_put), (1, 1, 1), "{c:?}");
    let fresh = h
        .backend
        .kv
        .borrow()
        .values()
        .next()
        .and_then(|g| g.fresh_until);
    assert_eq!(fresh, Some(h.now + h.cfg.grant_cache_secs), "KV rewritten");
    // then one KV read again
    h.introspect(&token);
    assert_eq!(h.backend.take_counts().d1_query, 0);
}

/// Upgrades: a KV entry written by a version before `fresh_until` (and the uid fields) existed is
/// stale, never trusted and never refused: the first use asks D1, the token keeps working, and the
/// entry is rewritten in the current format; a revoked token's old entry is deleted.
#[test]
fn kv_entries_of_older_versions_are_checked_against_d1_and_rewritten() {
    use crate::model::Grant;
    let mut h = Harness::new();
    h.cfg.registry_cache_secs = 1_000_000; // count only the token's reads
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let (_, revoked) = h.pat("alice", &["demo_api:read"]);
    h.introspect(&token); // warm the registry cache
    let old_format = |g: &mut Grant| {
        g.fresh_until = None;
        g.client_uid = None;
        g.scope_owners = None;
    };
    h.backend.kv.borrow_mut().values_mut().for_each(old_format);
    let rows: Vec<(String, String)> = h
        .backend
        .kv
        .borrow()
        .values()
        .map(|g| (g.id.clone(), serde_json::to_string(g).expect("json")))
        .collect();
    assert!(
        rows.iter().all(|(_, j)| !j.contains("fresh_until")),
        "{rows:?}"
    );
    h.backend.take_counts();
    let (_, v, _) = h.call(&introspect_req(&token));
    assert_eq!(v["active"], true, "an old entry keeps its token working");
    let c = h.backend.take_counts();
    assert_eq!((c.kv_get, c.d1_query, c.kv_put), (1, 1, 1), "{c:?}");
    let rewritten = h
        .backend
        .kv
        .borrow()
        .values()
        .find(|g| g.id == id)
        .cloned()
        .expect("entry");
    assert_eq!(rewritten.fresh_until, Some(h.now + h.cfg.grant_cache_secs));
    assert!(rewritten.client_uid.is_some() && rewritten.scope_owners.is_some());
    h.introspect(&token);
    assert_eq!(h.backend.take_counts().d1_query, 0, "fresh again: KV only");
    // a revocation whose KV delete was lost, in the old format: D1 says no, the entry goes
    h.backend.tokens.borrow_mut().iter_mut().for_each(|t| {
        if t.id != id {
            t.revoked_at = Some(h.now);
        }
    });
    assert_eq!(
        h.call(&introspect_req(&revoked)).1,
        json!({"active": false})
    );
    assert_eq!(
        h.backend.kv.borrow().len(),
        1,
        "the revoked token's entry is deleted"
    );
}

#[test]
fn a_token_kv_does_not_know_is_inactive_without_a_d1_read() {
    let h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    h.introspect("warm");
    h.backend.kv.borrow_mut().clear();
    h.backend.take_counts();
    assert_eq!(h.introspect(&token).1, json!({"active": false}));
    let c = h.backend.take_counts();
    assert_eq!((c.kv_get, c.d1_query), (1, 0), "{c:?}");
}

#[test]
fn unknown_tokens_are_remembered_by_the_isolate() {
    let h = Harness::new();
    let unknown = crate::token::PlainToken::generate(crate::token::TokenKind::Pat).expect("rng");
    h.introspect("warm");
    h.backend.take_counts();
    assert_eq!(
        h.introspect(unknown.expose_secret()).1,
        json!({"active":false})
    );
    assert_eq!(
        h.backend.take_counts(),
        Counts {
            kv_get: 1,
            ..Counts::default()
        },
        "a forged, well-formed token costs one KV read and no D1 query"
    );
    assert_eq!(
        h.introspect(unknown.expose_secret()).1,
        json!({"active":false})
    );
    assert_eq!(h.backend.take_counts(), Counts::default());
}

#[test]
fn broken_kv_is_answered_from_d1_and_broken_d1_is_503() {
    let h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    h.introspect(&token);
    h.backend.break_kv.set(true);
    let (s, v, o) = h.introspect(&token);
    assert_eq!((s, v["active"].clone()), (200, json!(true)));
    assert!(o
        .deferred
        .iter()
        .all(|d| !matches!(d, Deferred::CacheGrant { .. })));
    h.backend.break_d1.set(true);
    let (s, v, _) = h.introspect(&token);
    assert_eq!(s, 503);
    assert_eq!(v["error"], "temporarily_unavailable");
}

/// A KV repair that read D1 before a revocation and lands in KV after the revocation's delete
/// must not keep the token alive: the delayed second delete removes it.
#[test]
fn a_repair_racing_a_revocation_does_not_resurrect_the_token() {
    let mut h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    h.now += h.cfg.grant_cache_secs; // the KV entry is stale: the next read asks D1 and repairs
    let repair = h.send(&introspect_req(&token));
    assert!(matches!(
        repair.deferred.as_slice(),
        [Deferred::CacheGrant { .. }, ..]
    ));
    let revocation = h.send(
        &Request::new(Method::Delete, &format!("/api/pats/{id}"))
            .header("authorization", &format!("Bearer {}", user_jwt("alice"))),
    );
    assert_eq!(revocation.response.status, 204);
    h.run_deferred(&repair); // the repair lands late
    assert_eq!(
        h.backend.kv.borrow().len(),
        1,
        "the race: KV has the revoked grant again"
    );
    // another isolate (no negative cache) would still see it now...
    let other = Harness {
        isolate: IsolateState::default(),
        ..Harness::new()
    };
    let kv = h.backend.kv.borrow().clone();
    *other.backend.kv.borrow_mut() = kv;
    assert_eq!(other.introspect(&token).1["active"], true);
    // ...until the delayed second delete runs
    h.run_deferred(&revocation);
    assert!(h.backend.kv.borrow().is_empty());
    *other.backend.kv.borrow_mut() = h.backend.kv.borrow().clone();
    *other.backend.tokens.borrow_mut() = h.backend.tokens.borrow().clone();
    assert_eq!(other.introspect(&token).1, json!({"active":false}));
}

fn introspect_req(token: &str) -> Request {
    let auth = base64::engine::general_purpose::STANDARD.encode("demo_api:demo-api-secret");
    Request::new(Method::Post, "/oauth/introspect")
        .header("authorization", &format!("Basic {auth}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
}

#[test]
fn a_failed_registry_refresh_serves_the_cached_record() {
    let mut h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    h.introspect(&token); // caches the API resource and the client
    h.now += 31; // past REGISTRY_CACHE_SECONDS
    h.backend.break_d1.set(true);
    h.backend.take_counts();
    assert_eq!(h.introspect(&token).1["active"], true);
    // one refresh attempt per record, then the (re-marked) cached records answer; the feed's
    // view is too old (D1 is down) so the token is asked of D1 too, which fails: KV answers
    // (fail open), uncacheable
    assert_eq!(h.backend.take_counts().d1_query, 3);
    let (_, v, o) = h.introspect(&token);
    assert_eq!(v["active"], true);
    assert_eq!(
        o.response.header("cache-control"),
        Some("private, max-age=0")
    );
    let counts = h.backend.take_counts();
    assert_eq!(
        (counts.d1_query, counts.feed_query),
        (1, 0),
        "the token only"
    );
}

/// Users of an identity provider that publishes its keys at a JWKS URL: the keys are fetched and
/// cached per isolate; while the URL fails, the last keys keep working for a bounded time.
#[test]
fn jwks_url_keys_survive_a_short_identity_provider_outage() {
    use base64::Engine as _;
    use jwt_compact::{alg::Ed25519, AlgorithmExt as _, Claims, Header};
    // The identity provider: an Ed25519 key published in a JWKS, signing plain `JWT`s.
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]));
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kp.pk.as_ref());
    let idp_jwks =
        serde_json::json!({"keys":[{"kty":"OKP","crv":"Ed25519","x":x,"kid":"idp-1"}]}).to_string();
    let jwt_at = |now: i64| {
        let mut claims = Claims::new(serde_json::json!({"iss":"idp","sub":"erin","aud":"patgate"}));
        claims.expiration = chrono::DateTime::from_timestamp(now + 3600, 0);
        let header = Header::empty().with_key_id("idp-1").with_token_type("JWT");
        Ed25519.token(&header, &claims, &kp.sk).expect("sign")
    };
    let mut h = Harness::new();
    h.cfg.user_auth.hs256_secret = None;
    h.cfg.user_auth.jwks_url = Some("https://idp.example/jwks".into());
    *h.backend.jwks.borrow_mut() = Some(idp_jwks);
    let list = |h: &Harness| {
        let req = Request::new(Method::Get, "/api/pats")
            .header("authorization", &format!("Bearer {}", jwt_at(h.now)));
        h.call(&req).0
    };
    assert_eq!(list(&h), 200);
    *h.backend.jwks.borrow_mut() = None; // the IdP's JWKS URL goes down
    h.now += isolate::JWKS_TTL_SECS + 1;
    assert_eq!(
        list(&h),
        200,
        "served with the keys fetched before the outage"
    );
    h.now += isolate::JWKS_MAX_STALE_SECS;
    assert_eq!(list(&h), 503, "not beyond the stale bound");
}

#[test]
fn expiry_makes_a_token_inactive() {
    let mut h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    h.now += 30 * 86_400;
    assert_eq!(h.introspect(&token).1, json!({"active":false}));
    let (_, v) = h.user_call(Method::Get, &format!("/api/pats/{id}"), "alice");
    assert_eq!(v["status"], "expired");
}

#[test]
fn last_use_is_reported_once_per_window() {
    let mut h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    for _ in 0..5 {
        h.introspect(&token);
    }
    h.now += 30;
    h.introspect(&token);
    let uses: Vec<(String, i64, u32)> = h
        .backend
        .uses
        .borrow()
        .iter()
        .map(|r| (r.token_id.clone(), r.at, r.uses))
        .collect();
    assert_eq!(uses, vec![(id.clone(), NOW, 1), (id, NOW + 30, 5)]);
}

#[test]
fn revocation_by_rfc7009_and_by_api() {
    let h = Harness::new();
    let (_, t1) = h.pat("alice", &["demo_api:read"]);
    let (id2, t2) = h.pat("alice", &["demo_api:read"]);
    let revoke = |body: &str| {
        Request::new(Method::Post, "/oauth/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
    };
    let (s, _, o) = h.call(&revoke(&format!("client_id=pat_client&token={t1}")));
    assert_eq!(s, 200);
    assert!(o.response.body.is_empty());
    assert_eq!(h.introspect(&t1).1, json!({"active":false}));
    // unknown and garbage tokens: 200 too
    assert_eq!(h.call(&revoke("client_id=pat_client&token=garbage")).0, 200);
    // no client identification
    assert_eq!(h.call(&revoke(&format!("token={t2}"))).0, 401);
    // a confidential client cannot revoke a PAT
    let (s, v, _) = h.call(&revoke(&format!(
        "client_id=demo_client&client_secret=demo-client-secret&token={t2}"
    )));
    assert_eq!((s, v["error"].as_str()), (400, Some("unauthorized_client")));
    // management API
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{id2}"), "bob")
            .0,
        404
    );
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{id2}"), "alice")
            .0,
        204
    );
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{id2}"), "alice")
            .0,
        204
    );
    assert_eq!(h.introspect(&t2).1, json!({"active":false}));
    let (_, v) = h.user_call(Method::Get, &format!("/api/pats/{id2}"), "alice");
    assert_eq!(v["status"], "revoked");
}

#[test]
fn rotation_replaces_the_secret() {
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    let (s, v) = h.user_call(Method::Post, &format!("/api/pats/{id}/rotate"), "alice");
    assert_eq!(s, 201);
    assert_eq!(v["id"], id.as_str());
    let new = v["token"].as_str().expect("token");
    assert_ne!(new, old);
    assert_eq!(h.introspect(&old).1, json!({"active":false}));
    assert_eq!(h.introspect(new).1["active"], true);
    assert_eq!(
        h.user_call(Method::Post, &format!("/api/pats/{id}/rotate"), "bob")
            .0,
        404
    );
    h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(
        h.user_call(Method::Post, &format!("/api/pats/{id}/rotate"), "alice")
            .0,
        409
    );
}

#[test]
fn listing_is_per_user_newest_first_and_paginated() {
    let mut h = Harness::new();
    for i in 0..5 {
        h.now = NOW + i;
        h.pat("alice", &["demo_api:read"]);
    }
    h.pat("bob", &["demo_api:read"]);
    let (s, v) = h.user_call(Method::Get, "/api/pats?limit=2", "alice");
    assert_eq!(s, 200);
    let page = v["pats"].as_array().expect("array");
    assert_eq!(page.len(), 2);
    assert!(page[0]["created_at"].as_str() > page[1]["created_at"].as_str());
    assert!(page[0].get("token").is_none());
    let mut seen = page.len();
    let mut cursor = v["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (_, v) = h.user_call(
            Method::Get,
            &format!("/api/pats?limit=2&cursor={c}"),
            "alice",
        );
        seen += v["pats"].as_array().expect("array").len();
        cursor = v["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 5);
    let (_, v) = h.user_call(Method::Get, "/api/pats", "bob");
    assert_eq!(v["pats"].as_array().expect("array").len(), 1);
    assert_eq!(
        h.user_call(Method::Get, "/api/pats?limit=0", "alice").0,
        400
    );
    assert_eq!(
        h.user_call(Method::Get, "/api/pats?cursor=%%", "alice").0,
        400
    );
}

#[test]
fn creation_validation() {
    let h = Harness::new();
    let bad = [
        (
            json!({"name":"x","scopes":["nope"],"expires_in_days":1}),
            400,
            "invalid_scope",
        ),
        (
            json!({"name":"x","scopes":[],"expires_in_days":1}),
            400,
            "invalid_scope",
        ),
        (
            json!({"name":"x","scopes":["demo_api:read","demo_api:read"],"expires_in_days":1}),
            400,
            "invalid_scope",
        ),
        (
            json!({"name":"","scopes":["demo_api:read"],"expires_in_days":1}),
            400,
            "invalid_request",
        ),
        (
            json!({"name":"x","scopes":["demo_api:read"]}),
            400,
            "invalid_request",
        ),
        (
            json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":367}),
            400,
            "invalid_request",
        ),
        (
            json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":1,"admin":true}),
            400,
            "invalid_request",
        ),
        (json!([1]), 400, "invalid_request"),
    ];
    for (body, status, code) in bad {
        let (s, v) = h.create("alice", body.clone());
        assert_eq!((s, v["error"].as_str()), (status, Some(code)), "{body}");
    }
    assert!(h.backend.tokens.borrow().is_empty());
}

#[test]
fn user_authentication_failures() {
    let h = Harness::new();
    let (s, _, o) = h.call(&Request::new(Method::Get, "/api/pats"));
    assert_eq!(s, 401);
    assert_eq!(
        o.response.header("www-authenticate"),
        Some("Bearer realm=\"patgate\"")
    );
    let req = Request::new(Method::Get, "/api/pats").header("authorization", "Bearer not.a.jwt");
    let (s, v, o) = h.call(&req);
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_token")));
    assert!(o
        .response
        .header("www-authenticate")
        .is_some_and(|w| w.contains("invalid_token")));
    let req = Request::new(Method::Get, "/api/pats")
        .header("cf-access-jwt-assertion", &user_jwt("carol"));
    assert_eq!(h.call(&req).0, 200);
}

#[test]
fn introspection_client_authentication() {
    let h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    let post = Request::new(Method::Post, "/oauth/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id=demo_api&client_secret=demo-api-secret&token={token}"
        ));
    assert_eq!(h.call(&post).1["active"], true);
    for (res, secret) in [("demo_api", "wrong"), ("nobody", "x"), ("pat_client", "")] {
        let (s, v, o) = h.introspect_as(res, secret, &token);
        assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
        assert_eq!(
            o.response.header("www-authenticate"),
            Some("Basic realm=\"patgate\"")
        );
    }
    let no_auth = Request::new(Method::Post, "/oauth/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"));
    assert_eq!(h.call(&no_auth).0, 401);
    let both = Request::new(Method::Post, "/oauth/introspect")
        .header(
            "authorization",
            &format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("demo_api:demo-api-secret")
            ),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id=demo_api&client_secret=demo-api-secret&token={token}"
        ));
    assert_eq!(h.call(&both).1["error"], "invalid_request");
    let (s, v, _) = h.introspect("");
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_request")));
}

#[test]
fn routing_errors() {
    let h = Harness::new();
    assert_eq!(h.call(&Request::new(Method::Get, "/nope")).0, 404);
    assert_eq!(h.call(&Request::new(Method::Get, "/api/pats/x/y")).0, 404);
    let (s, _, o) = h.call(&Request::new(Method::Put, "/api/pats"));
    assert_eq!(s, 405);
    assert_eq!(o.response.header("allow"), Some("GET, POST"));
    let (s, v, _) = h.call(&Request::new(
        Method::Get,
        "/.well-known/oauth-authorization-server",
    ));
    assert_eq!(s, 200);
    assert_eq!(v["issuer"], "https://patgate.test");
    assert_eq!(
        v["introspection_endpoint"],
        "https://patgate.test/oauth/introspect"
    );
}

/// Every path of the router's table answers a method it does not take with 405 and the methods
/// it does take in `Allow`; a path outside the table is a 404 whatever the method.
#[test]
fn every_route_names_its_methods() {
    let h = Harness::new();
    for (method, path, allow) in [
        (
            Method::Post,
            "/.well-known/oauth-authorization-server",
            "GET",
        ),
        (Method::Post, "/.well-known/jwks.json", "GET"),
        (Method::Get, "/oauth/token", "POST"),
        (Method::Get, "/oauth/register", "POST"),
        (Method::Get, "/oauth/introspect", "POST"),
        (Method::Delete, "/oauth/revoke", "POST"),
        (Method::Get, "/secret-scanning/github", "POST"),
        (Method::Delete, "/api/pats", "GET, POST"),
        (Method::Post, "/api/pats/p1", "GET, DELETE"),
        (Method::Get, "/api/pats/p1/rotate", "POST"),
        (Method::Post, "/api/pats/p1/usage", "GET"),
        (Method::Get, "/api/pats/self/rotate", "POST"),
    ] {
        let (s, _, o) = h.call(&Request::new(method, path));
        assert_eq!(s, 405, "{path}");
        assert_eq!(o.response.header("allow"), Some(allow), "{path}");
    }
    for (method, path) in [
        (Method::Get, "/api/pats/"),
        (Method::Post, "/api/pats//rotate"),
        (Method::Delete, "/oauth"),
        (Method::Get, "/tokens"), // the page: only with the issuer's Host
    ] {
        assert_eq!(h.call(&Request::new(method, path)).0, 404, "{path}");
    }
}

#[test]
fn config_debug_shows_no_secret() {
    let cfg = config();
    let dbg = format!("{cfg:?}");
    assert!(dbg.contains("https://patgate.test"), "{dbg}");
    for secret in [ADMIN, USER_SECRET] {
        assert!(!dbg.contains(secret), "a secret in Debug: {dbg}");
    }
    assert!(!dbg.contains("\"d\""), "a private key in Debug: {dbg}");
}

mod gate;
mod gate_cors;

mod hostile;
mod secevents;
mod webhooks;
