//! The revocation feed in the token decision: two "locations" over one state (each its own
//! isolate; the KV grant kept at the other one as its read cache would keep it), the clock
//! injected. Checked: revoked everywhere within 5 s for every revoking path, the hot path's
//! storage work unchanged, the fallback to D1 when the feed cannot be read, fail-open when D1
//! cannot be read either, a revocation that landed but reported an error, and the
//! `Cache-Control: max-age` of introspection answers.

#![allow(clippy::many_single_char_names)]

use super::*;
use crate::revocation::BOUND_MS;
use crate::testing::{Fault, Step};
use crate::token::{PlainToken, TokenHash};

/// Another location: its own isolate (view, caches) over the same storage.
pub(super) struct Location {
    pub(super) isolate: IsolateState,
}

impl Location {
    pub(super) fn new() -> Self {
        Location {
            isolate: IsolateState::default(),
        }
    }

    /// Introspects at `now_ms`. `run_deferred`: whether the work after the response runs (a
    /// dead isolate's does not).
    pub(super) fn introspect(
        &self,
        h: &Harness,
        token: &str,
        now_ms: i64,
        run_deferred: bool,
    ) -> Outcome {
        let ctx = Ctx {
            cfg: &h.cfg,
            backend: &h.backend,
            isolate: &self.isolate,
            now: now_ms.div_euclid(1000),
            now_ms,
        };
        let o = block_on(handle(&ctx, &introspect_req(token)));
        if run_deferred {
            for d in &o.deferred {
                if *d == Deferred::RefreshRevocations {
                    let refreshed = block_on(crate::app::revocations::refresh(
                        &h.backend,
                        &self.isolate,
                        now_ms,
                    ));
                    assert!(refreshed.is_ok() || h.backend.break_feed.get());
                }
            }
        }
        o
    }

    pub(super) fn active(&self, h: &Harness, token: &str, now_ms: i64, run_deferred: bool) -> bool {
        let o = self.introspect(h, token, now_ms, run_deferred);
        assert_eq!(o.response.status, 200);
        o.response.json_body()["active"] == true
    }
}

pub(super) fn hash_of(token: &str) -> TokenHash {
    PlainToken::parse(token).expect("token").hash()
}

/// Puts KV's grant for `token` back as it was (a location's KV read cache serving it).
pub(super) fn keep_in_kv(h: &Harness, token: &str, grant: &crate::model::Grant) {
    h.backend
        .kv
        .borrow_mut()
        .insert(hash_of(token), grant.clone());
}

pub(super) fn grant_of(h: &Harness, token: &str) -> crate::model::Grant {
    h.backend
        .kv
        .borrow()
        .get(&hash_of(token))
        .expect("grant in KV")
        .clone()
}

fn revoke_req(id: &str) -> Request {
    Request::new(Method::Delete, &format!("/api/pats/{id}"))
        .header("authorization", &format!("Bearer {}", user_jwt("alice")))
}

/// Every moment after a revocation committed at `at_ms` (every 250 ms for 8 s), at a location
/// whose deferred refreshes run (`true`) or are all lost (`false`): active only before
/// `at_ms + BOUND_MS`, and inactive from then on.
pub(super) fn assert_bound(
    h: &Harness,
    b: &Location,
    token: &str,
    grant: &crate::model::Grant,
    at_ms: i64,
) {
    let mut last_active = None;
    for step in 0..=32 {
        let t = at_ms + step * 250;
        keep_in_kv(h, token, grant);
        if b.active(h, token, t, step % 2 == 0) {
            last_active = Some(t);
        }
    }
    if let Some(t) = last_active {
        assert!(t - at_ms < BOUND_MS, "active {} ms after", t - at_ms);
    }
}

#[test]
fn a_pat_revoked_at_one_location_is_inactive_at_another_within_5_s_although_kv_keeps_it() {
    let h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let grant = grant_of(&h, &token);
    let b = Location::new();
    let t0 = NOW * 1000;
    assert!(b.active(&h, &token, t0, true), "B's view is now fresh");
    // revoked at A 300 ms later: D1 and the feed, KV deleted (B's KV read cache keeps it)
    let at = t0 + 300;
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &h.isolate,
        now: at / 1000,
        now_ms: at,
    };
    let o = block_on(handle(&ctx, &revoke_req(&id)));
    assert_eq!(o.response.status, 204);
    assert_eq!(
        h.backend.feed.borrow().len(),
        1,
        "one entry, same transaction"
    );
    assert_bound(&h, &b, &token, &grant, at);
    // and it stays so, deferred work or not
    keep_in_kv(&h, &token, &grant);
    assert!(!b.active(&h, &token, at + 60_000, false));
}

#[test]
fn without_the_feed_the_stale_grant_would_answer_active() {
    // The check above can fail: the same schedule with the feed's entry removed answers active
    // long after the bound (KV alone).
    let h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let grant = grant_of(&h, &token);
    let b = Location::new();
    assert!(b.active(&h, &token, NOW * 1000, true));
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    *h.backend.feed.borrow_mut() = crate::revocation::feed::FeedLog::new();
    keep_in_kv(&h, &token, &grant);
    assert!(b.active(&h, &token, NOW * 1000 + 10_000, true));
}

#[test]
fn every_revoking_path_reaches_the_other_location_within_5_s() {
    // rotation without grace (the old token), the end of a grace (RFC 7009 of the old token),
    // a PAT client disabled, the client deleted
    type Revoke = fn(&Harness, &str) -> String;
    let paths: [(&str, Revoke); 4] = [
        ("rotation without grace", |h, id| {
            let (s, v) = h.user_call(Method::Post, &format!("/api/pats/{id}/rotate"), "alice");
            assert_eq!(s, 201, "{v}");
            String::new()
        }),
        ("end of a grace", |h, id| {
            let req = Request::new(Method::Post, &format!("/api/pats/{id}/rotate"))
                .header("authorization", &format!("Bearer {}", user_jwt("alice")))
                .header("content-type", "application/json")
                .body(json!({"grace_seconds": 3600}).to_string());
            let (s, v, _) = h.call(&req);
            assert_eq!(s, 201, "{v}");
            "end grace".into()
        }),
        ("client disabled", |h, _| {
            let req = Request::new(Method::Patch, "/admin/clients/pat_client")
                .header("authorization", &format!("Bearer {ADMIN}"))
                .header("content-type", "application/json")
                .body(json!({"enabled": false}).to_string());
            assert_eq!(h.call(&req).0, 200);
            String::new()
        }),
        ("client deleted", |h, _| {
            let req = Request::new(Method::Delete, "/admin/clients/pat_client")
                .header("authorization", &format!("Bearer {ADMIN}"));
            assert_eq!(h.call(&req).0, 204);
            String::new()
        }),
    ];
    for (name, revoke) in paths {
        let mut h = Harness::new();
        let (id, token) = h.pat("alice", &["demo_api:read"]);
        let grant = grant_of(&h, &token);
        let b = Location::new();
        assert!(b.active(&h, &token, NOW * 1000, true), "{name}");
        h.now += 1;
        let entries = h.backend.feed.borrow().len();
        if !revoke(&h, &id).is_empty() {
            // the grace runs: the old token still works everywhere
            keep_in_kv(&h, &token, &grant);
            assert!(b.active(&h, &token, h.now * 1000, true), "{name}: in grace");
            let req = Request::new(Method::Post, "/oauth/revoke")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("client_id=pat_client&token={token}"));
            assert_eq!(h.call(&req).0, 200, "{name}");
        }
        assert!(h.backend.feed.borrow().len() > entries, "{name}: appended");
        assert!(
            h.introspect(&token).1["active"] == false,
            "{name}: at once where it happened"
        );
        assert_bound(&h, &b, &token, &grant, h.now * 1000);
    }
}

#[test]
fn the_hot_path_adds_no_storage_work_and_one_refresh_per_2_s() {
    let h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    let b = Location::new();
    let t0 = NOW * 1000;
    assert!(b.active(&h, &token, t0, true)); // warms B: registry, view
    h.backend.take_counts();
    let mut refreshes = 0;
    for i in 1..=30 {
        let o = b.introspect(&h, &token, t0 + i * 100, true);
        refreshes += o
            .deferred
            .iter()
            .filter(|d| **d == Deferred::RefreshRevocations)
            .count();
    }
    let c = h.backend.take_counts();
    // 3 s of requests every 100 ms: one KV read each; a refresh once the view is over 2 s old
    assert_eq!((c.kv_get, c.d1_query), (30, 0));
    assert_eq!(refreshes, 1, "at most one fetch per 2 s");
    assert_eq!(c.cache_read, 1);
    assert_eq!(
        c.feed_query, 1,
        "the location's snapshot was older than 2 s"
    );
}

#[test]
fn an_unreadable_feed_falls_back_to_d1_for_the_token() {
    let h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let (_, live) = h.pat("alice", &["demo_api:read"]);
    let grant = grant_of(&h, &token);
    let b = Location::new();
    let t0 = NOW * 1000;
    assert!(b.active(&h, &token, t0, true));
    h.backend.break_feed.set(true);
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    keep_in_kv(&h, &token, &grant);
    // B's view ages past 4.5 s and cannot be refreshed: D1 answers
    h.backend.take_counts();
    assert!(!b.active(&h, &token, t0 + 4_600, true));
    let c = h.backend.take_counts();
    assert_eq!(
        (c.kv_get, c.cache_read, c.feed_query),
        (1, 1, 1),
        "both failed"
    );
    assert!(c.d1_query >= 1, "the token from D1");
    // a live token is still active, answered from D1 (and its client read from D1 too), and KV's
    // fresh grant is not rewritten
    let o = b.introspect(&h, &live, t0 + 4_700, true);
    assert_eq!(o.response.json_body()["active"], true);
    assert!(
        !o.deferred
            .iter()
            .any(|d| matches!(d, Deferred::CacheGrant { .. })),
        "{:?}",
        o.deferred
    );
    assert_eq!(
        o.response.header("cache-control"),
        Some("private, max-age=5")
    );
    // the feed back: the view takes over again
    h.backend.break_feed.set(false);
    assert!(b.active(&h, &live, t0 + 7_000, true));
    h.backend.take_counts();
    assert!(b.active(&h, &live, t0 + 7_100, true));
    assert_eq!(h.backend.take_counts().d1_query, 0);
}

#[test]
fn a_revocation_that_landed_but_reported_an_error_is_in_the_feed_once() {
    let h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let grant = grant_of(&h, &token);
    let b = Location::new();
    assert!(b.active(&h, &token, NOW * 1000, true));
    h.backend.inject(Step::TokenRevoke, Fault::LandedButFailed);
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 503);
    assert_eq!(
        h.backend.feed.borrow().len(),
        1,
        "landed with the revocation"
    );
    // the retry revokes nothing new: no second entry
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    assert_eq!(h.backend.feed.borrow().len(), 1);
    assert_bound(&h, &b, &token, &grant, NOW * 1000);
    // a lost revocation writes no entry
    let (id2, _) = h.pat("alice", &["demo_api:read"]);
    h.backend.inject(Step::TokenRevoke, Fault::Lost);
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id2}"), "alice");
    assert_eq!(s, 503);
    assert_eq!(h.backend.feed.borrow().len(), 1);
}

#[test]
fn d1_unreachable_too_answers_what_kv_says_uncacheable() {
    let h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    let b = Location::new();
    assert!(b.active(&h, &token, NOW * 1000, true));
    h.backend.break_d1.set(true);
    let o = b.introspect(&h, &token, NOW * 1000 + 10_000, true);
    assert_eq!(o.response.json_body()["active"], true, "fail open");
    assert_eq!(
        o.response.header("cache-control"),
        Some("private, max-age=0")
    );
}

#[test]
fn max_age_follows_the_views_age_and_never_passes_the_tokens_life() {
    let h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    let b = Location::new();
    let t0 = NOW * 1000;
    let cc = |t: i64| {
        let o = b.introspect(&h, &token, t, false);
        o.response.header("cache-control").map(str::to_owned)
    };
    assert_eq!(cc(t0).as_deref(), Some("private, max-age=4")); // 0.5 s allowance
    assert_eq!(cc(t0 + 1_000).as_deref(), Some("private, max-age=3"));
    assert_eq!(cc(t0 + 3_900).as_deref(), Some("private, max-age=0"));
    let exp = grant_of(&h, &token).exp;
    let near_end = exp * 1000 - 2_000;
    assert_eq!(cc(near_end).as_deref(), Some("private, max-age=2"));
    // an inactive answer: the bound
    let o = b.introspect(&h, "pat_garbage", t0, false);
    assert_eq!(
        o.response.header("cache-control"),
        Some("private, max-age=5")
    );
}

#[test]
fn a_client_jwt_revoked_at_one_location_is_refused_at_another_within_5_s() {
    let h = Harness::new();
    h.backend.clients.borrow_mut().push(crate::model::Client {
        id: "jwt_client".into(),
        uid: "uid-jwt_client".into(),
        secret: Some(SecretSet {
            current: ClientSecret::new("jwt-secret").hash(),
            previous: None,
        }),
        allowed_scopes: vec!["demo_api:read".into()],
        token_format: TokenFormat::Jwt,
        token_lifetime: 600,
        enabled: true,
    });
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("jwt_client:jwt-secret")
    );
    let issue = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &auth)
        .body("grant_type=client_credentials".to_owned());
    let (s, v, _) = h.call(&issue);
    assert_eq!(s, 200, "{v}");
    let jwt = v["access_token"].as_str().expect("jwt").to_owned();
    let b = Location::new();
    let t0 = NOW * 1000;
    assert!(b.active(&h, &jwt, t0, true));
    let revoke = Request::new(Method::Post, "/oauth/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &auth)
        .body(format!("token={jwt}"));
    assert_eq!(h.call(&revoke).0, 200);
    assert_eq!(h.backend.feed.borrow().len(), 1, "its j entry");
    assert_eq!(
        h.introspect(&jwt).1["active"],
        false,
        "at once where revoked"
    );
    // B's KV never sees the denylist entry: only the feed can refuse it
    let mut last_active = None;
    for step in 0..=32 {
        let t = t0 + step * 250;
        h.backend.denied.borrow_mut().clear();
        if b.active(&h, &jwt, t, step % 2 == 0) {
            last_active = Some(t);
        }
    }
    assert!(last_active.is_none_or(|t| t - t0 < BOUND_MS));
    // with the feed unreadable and the view too old, D1's feed answers
    let c = Location::new();
    h.backend.break_feed.set(true);
    assert!(!c.active(&h, &jwt, t0 + 60_000, true));
}

#[test]
fn the_hourly_scan_trims_the_feed_past_retention_only() {
    let mut h = Harness::new();
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    let scan = |h: &Harness| {
        let ctx = Ctx {
            cfg: &h.cfg,
            backend: &h.backend,
            isolate: &h.isolate,
            now: h.now,
            now_ms: h.now * 1000,
        };
        block_on(crate::app::tokens::expiry_scan(&ctx)).expect("scan");
    };
    h.now += h.cfg.grant_cache_secs;
    scan(&h);
    assert_eq!(
        h.backend.feed.borrow().len(),
        1,
        "kept past GRANT_CACHE_SECONDS"
    );
    h.now += 61;
    scan(&h);
    assert_eq!(h.backend.feed.borrow().len(), 0, "gone after its retention");
}
