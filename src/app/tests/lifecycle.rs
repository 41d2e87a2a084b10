//! Token lifecycle: leak reports (signed with a key generated here), rotation with grace (with
//! the injected clock), self-rotation, and the expiry fields of the PAT views.

use super::*;
use crate::secret_scanning::tests::{key_doc, key_pair, sign};
use crate::testing::{Fault, Step};
use p256::ecdsa::SigningKey;
use std::rc::Rc;

const PATH: &str = "/secret-scanning/github";

fn with_keys(keys: &[(&str, &str)]) -> Harness {
    let mut h = Harness::new();
    h.cfg.lifecycle.scanning_keys = Some(Rc::new(
        crate::secret_scanning::KeySet::parse(&key_doc(keys)).expect("keys"),
    ));
    h
}

fn report_req(body: &str, key_id: Option<&str>, sig: Option<&str>) -> Request {
    let mut r = Request::new(Method::Post, PATH).header("content-type", "application/json");
    if let Some(k) = key_id {
        r = r.header("github-public-key-identifier", k);
    }
    if let Some(s) = sig {
        r = r.header("github-public-key-signature", s);
    }
    r.body(body)
}

fn signed(sk: &SigningKey, key_id: &str, body: &str) -> Request {
    report_req(body, Some(key_id), Some(&sign(sk, body.as_bytes())))
}

fn report(tokens: &[&str]) -> String {
    let list: Vec<Value> = tokens
        .iter()
        .map(|t| json!({"token": t, "type": "patgate_pat", "url": "https://github.com/o/r/blob/abc/ci.yml#L3", "source": "content"}))
        .collect();
    Value::Array(list).to_string()
}

fn pat_view(h: &Harness, id: &str) -> Value {
    let (s, v) = h.user_call(Method::Get, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 200, "{v}");
    v
}

fn rotate(h: &Harness, id: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = Request::new(Method::Post, &format!("/api/pats/{id}/rotate"))
        .header("authorization", &format!("Bearer {}", user_jwt("alice")));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let (s, v, _) = h.call(&req);
    (s, v)
}

#[test]
fn a_signed_report_revokes_live_tokens_through_the_revocation_path() {
    let (sk, pem) = key_pair();
    let h = with_keys(&[("k1", &pem)]);
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let (other_id, other) = h.pat("alice", &["demo_api:read"]);
    // a client access token (pga_) too
    let (s, v, _) = h.call(
        &Request::new(Method::Post, "/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=demo_client&client_secret=demo-client-secret"),
    );
    assert_eq!(s, 200, "{v}");
    let access = v["access_token"].as_str().expect("token").to_owned();
    assert_eq!(h.introspect(&token).1["active"], true);
    h.isolate.take_events();

    let unknown = crate::token::PlainToken::generate(crate::token::TokenKind::Pat)
        .expect("rng")
        .expose_secret()
        .to_owned();
    let body = report(&[&token, &access, "pgp_garbage", &unknown, &token]);
    let (s, v, o) = h.call(&signed(&sk, "k1", &body));
    assert_eq!(s, 200, "{v}");
    let labels: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x["label"].as_str().expect("label"))
        .collect();
    assert_eq!(
        labels,
        [
            "true_positive",
            "true_positive",
            "false_positive",
            "false_positive",
            "true_positive"
        ]
    );
    assert_eq!(
        v[0],
        json!({"token_raw": token, "token_type": "patgate_pat", "label": "true_positive"})
    );
    // the same purge as every revocation: KV deletes now and a recheck later
    assert!(o
        .deferred
        .iter()
        .any(|d| matches!(d, Deferred::PurgeGrants { after_secs, .. } if *after_secs == REVOCATION_RECHECK_SECS)));
    // dead here and at every other location
    assert_eq!(h.introspect(&token).1, json!({"active": false}));
    assert_eq!(h.introspect_elsewhere(&token), json!({"active": false}));
    assert_eq!(h.introspect_elsewhere(&access), json!({"active": false}));
    // the owner sees why and where
    let v = pat_view(&h, &id);
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["revoked_reason"], "leaked");
    assert_eq!(
        v["revoked_source_url"],
        "https://github.com/o/r/blob/abc/ci.yml#L3"
    );
    // an unreported PAT is untouched
    assert_eq!(pat_view(&h, &other_id)["status"], "active");
    assert_eq!(h.introspect(&other).1["active"], true);
    // events: revoked via leaked, and the leak with its URL
    let events = h.isolate.take_events();
    assert!(events.iter().any(|e| matches!(e, events::Event::PatRevoked { pat_id, newly: true, via: "leaked" } if *pat_id == id)));
    assert!(events.iter().any(|e| matches!(e, events::Event::TokenLeaked { token_id, url: Some(_), newly: true, .. } if *token_id == id)));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, events::Event::TokenLeaked { .. }))
            .count(),
        2,
        "one per distinct token: {events:?}"
    );

    // the same report again (GitHub retries): the same labels (a token patgate issued is real,
    // revoked or not), nothing new revoked, the reason kept
    let (s, v, _) = h.call(&signed(&sk, "k1", &body));
    assert_eq!(s, 200);
    let again: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x["label"].as_str().expect("label"))
        .collect();
    assert_eq!(again, labels, "a retried report is judged the same");
    assert!(!h.isolate.take_events().iter().any(|e| matches!(
        e,
        events::Event::PatRevoked { newly: true, .. }
            | events::Event::TokenLeaked { newly: true, .. }
    )));
    assert_eq!(pat_view(&h, &id)["revoked_reason"], "leaked");
}

#[test]
fn a_token_the_owner_revoked_keeps_its_reason() {
    let (sk, pem) = key_pair();
    let h = with_keys(&[("k1", &pem)]);
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    // revoked, but the KV delete was lost and its retries did not run yet: KV still knows it
    h.backend.inject(Step::KvDelete, Fault::Lost);
    let revoke = Request::new(Method::Delete, &format!("/api/pats/{id}"))
        .header("authorization", &format!("Bearer {}", user_jwt("alice")));
    assert_eq!(h.send(&revoke).response.status, 204);
    assert_eq!(h.backend.kv.borrow().len(), 1);
    // the report reaches another location
    let isolate = IsolateState::default();
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &isolate,
        now: h.now,
        now_ms: h.now * 1000,
    };
    let o = block_on(handle(&ctx, &signed(&sk, "k1", &report(&[&token]))));
    let (s, v) = (o.response.status, o.response.json_body());
    assert_eq!(s, 200);
    assert_eq!(v[0]["label"], "true_positive");
    let v = pat_view(&h, &id);
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["revoked_reason"], Value::Null);
    assert_eq!(v["revoked_source_url"], Value::Null);
}

#[test]
fn unsigned_forged_unknown_oversized_and_malformed_reports_change_nothing() {
    let (sk, pem) = key_pair();
    let (forger, _) = key_pair();
    let h = with_keys(&[("k1", &pem)]);
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let body = report(&[&token]);
    let sig = sign(&sk, body.as_bytes());
    let cases: Vec<(&str, Request, u16, &str)> = vec![
        (
            "unsigned",
            report_req(&body, None, None),
            401,
            "invalid_signature",
        ),
        (
            "no signature",
            report_req(&body, Some("k1"), None),
            401,
            "invalid_signature",
        ),
        (
            "forged",
            signed(&forger, "k1", &body),
            401,
            "invalid_signature",
        ),
        (
            "unknown key id",
            report_req(&body, Some("k2"), Some(&sig)),
            401,
            "invalid_signature",
        ),
        (
            "signature of another body",
            report_req(&report(&[&token, &token]), Some("k1"), Some(&sig)),
            401,
            "invalid_signature",
        ),
        (
            "garbage signature",
            report_req(&body, Some("k1"), Some("bm90IGEgc2lnbmF0dXJl")),
            401,
            "invalid_signature",
        ),
        (
            "oversized",
            signed(
                &sk,
                "k1",
                &format!("{}{}", body, " ".repeat(tokens::MAX_LEAK_REPORT_BODY)),
            ),
            413,
            "invalid_request",
        ),
        (
            "signed but not a report",
            signed(&sk, "k1", &json!({"token": token}).to_string()),
            400,
            "invalid_request",
        ),
        (
            "signed but too many matches",
            signed(
                &sk,
                "k1",
                &report(&vec![token.as_str(); tokens::MAX_LEAK_MATCHES + 1]),
            ),
            400,
            "invalid_request",
        ),
    ];
    for (what, req, status, code) in cases {
        let (s, v, o) = h.call(&req);
        assert_eq!(s, status, "{what}: {v}");
        assert_eq!(v["error"], code, "{what}");
        if status == 401 {
            assert!(o.response.header("www-authenticate").is_some(), "{what}");
        }
        assert_eq!(pat_view(&h, &id)["status"], "active", "{what}");
        assert_eq!(h.introspect(&token).1["active"], true, "{what}");
    }
    // a repeated signature header is ambiguous: refused
    let req = report_req(&body, Some("k1"), Some(&sig)).header("github-public-key-signature", &sig);
    assert_eq!(h.call(&req).0, 400);
    assert_eq!(pat_view(&h, &id)["status"], "active");
    // and the genuine report still works
    assert_eq!(h.call(&signed(&sk, "k1", &body)).0, 200);
    assert_eq!(pat_view(&h, &id)["status"], "revoked");
}

#[test]
fn without_keys_the_endpoint_does_not_exist() {
    let h = Harness::new();
    let (sk, _) = key_pair();
    let (s, _, _) = h.call(&signed(&sk, "k1", "[]"));
    assert_eq!(s, 404);
}

#[test]
fn keys_from_a_url_are_cached_refetched_for_a_new_key_and_kept_through_an_outage() {
    let (sk1, pem1) = key_pair();
    let (sk2, pem2) = key_pair();
    let mut h = Harness::new();
    h.cfg.lifecycle.scanning_keys_url = Some("https://keys.test/secret_scanning".into());
    // the URL fails and nothing was fetched before: 503, nothing decided
    let (s, v, _) = h.call(&signed(&sk1, "k1", "[]"));
    assert_eq!(
        (s, v["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    assert_eq!(h.backend.jwks_fetches.get(), 1);
    // a failed fetch is not repeated per request: for a minute, 503 without asking the URL
    *h.backend.jwks.borrow_mut() = Some(key_doc(&[("k1", &pem1)]));
    for _ in 0..5 {
        assert_eq!(h.call(&signed(&sk1, "k1", "[]")).0, 503);
        h.now += 11;
    }
    assert_eq!(
        h.backend.jwks_fetches.get(),
        1,
        "no fetch while backing off"
    );
    h.now = NOW + 60;
    assert_eq!(h.call(&signed(&sk1, "k1", "[]")).0, 200);
    assert_eq!(h.backend.jwks_fetches.get(), 2);
    // cached: the URL failing changes nothing
    *h.backend.jwks.borrow_mut() = None;
    assert_eq!(h.call(&signed(&sk1, "k1", "[]")).0, 200);
    // GitHub rotated: k2 is unknown until a refetch, at most once a minute
    *h.backend.jwks.borrow_mut() = Some(key_doc(&[("k1", &pem1), ("k2", &pem2)]));
    assert_eq!(h.call(&signed(&sk2, "k2", "[]")).0, 401);
    h.now += 60;
    assert_eq!(h.call(&signed(&sk2, "k2", "[]")).0, 200);
    // an outage after that: the keys fetched last are used for up to a day
    *h.backend.jwks.borrow_mut() = None;
    h.now += 3600;
    assert_eq!(h.call(&signed(&sk2, "k2", "[]")).0, 200);
    h.now += 86_400;
    assert_eq!(h.call(&signed(&sk2, "k2", "[]")).0, 503);
    // a document that does not parse is not used either
    *h.backend.jwks.borrow_mut() =
        Some("{\"public_keys\":[{\"key_identifier\":\"k1\",\"key\":\"x\"}]}".into());
    h.now += 60;
    let before = h.backend.jwks_fetches.get();
    assert_eq!(h.call(&signed(&sk1, "k1", "[]")).0, 503);
    assert_eq!(h.backend.jwks_fetches.get(), before + 1);
}

#[test]
fn a_failing_key_url_is_asked_once_a_minute_whatever_the_traffic() {
    let (sk1, pem1) = key_pair();
    let (sk2, _) = key_pair();
    let mut h = Harness::new();
    h.cfg.lifecycle.scanning_keys_url = Some("https://keys.test/secret_scanning".into());
    *h.backend.jwks.borrow_mut() = Some(key_doc(&[("k1", &pem1)]));
    assert_eq!(h.call(&signed(&sk1, "k1", "[]")).0, 200);
    assert_eq!(h.backend.jwks_fetches.get(), 1);
    // The URL goes down (a timeout or an error, as the runtime reports it). Reports signed with
    // an unknown key identifier arrive all the time: at most one fetch a minute, and the known
    // key keeps working from the cache meanwhile.
    *h.backend.jwks.borrow_mut() = None;
    for i in (0..600).step_by(7) {
        h.now = NOW + 60 + i;
        assert_eq!(h.call(&signed(&sk2, &format!("k{i}x"), "[]")).0, 401, "{i}");
        assert_eq!(h.call(&signed(&sk1, "k1", "[]")).0, 200, "{i}");
    }
    assert_eq!(
        h.backend.jwks_fetches.get(),
        1 + 10,
        "one fetch per minute over ten minutes"
    );
}

#[test]
fn rotation_with_grace_keeps_the_old_token_until_the_grace_ends() {
    let mut h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    let grace = 2 * h.cfg.grant_cache_secs; // longer than KV's trust time
    let (s, v) = rotate(&h, &id, Some(json!({"grace_seconds": grace})));
    assert_eq!(s, 201, "{v}");
    let new = v["token"].as_str().expect("token").to_owned();
    let until = NOW + grace;
    assert_eq!(v["previous_token_valid_until"], rfc3339(until));
    // the old token: active, says so, with exp at the end of the grace; one KV read, no D1
    h.backend.take_counts();
    let (_, got, _) = h.introspect(&old);
    assert_eq!(got["active"], true, "{got}");
    assert_eq!(got["rotated_at"], NOW);
    assert_eq!(got["grace_until"], until);
    assert_eq!(got["exp"], until);
    assert_eq!(
        h.backend.take_counts().d1_query,
        0,
        "the hot path reads KV only"
    );
    // the new token has no such claims
    let (_, got, _) = h.introspect(&new);
    assert_eq!(got["active"], true);
    assert!(got.get("grace_until").is_none());
    // past KV's trust time D1 answers (the retired hash) and the old token still works
    h.now = NOW + h.cfg.grant_cache_secs + 1;
    let got = h.introspect_elsewhere(&old);
    assert_eq!(got["active"], true, "{got}");
    assert_eq!(got["grace_until"], until);
    // at the end of the grace it stops, everywhere
    h.now = until;
    assert_eq!(h.introspect(&old).1, json!({"active": false}));
    assert_eq!(h.introspect_elsewhere(&old), json!({"active": false}));
    assert_eq!(h.introspect_elsewhere(&new)["active"], true);
}

#[test]
fn revoking_the_pat_kills_the_old_token_during_its_grace() {
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    let (s, v) = rotate(&h, &id, Some(json!({"grace_seconds": 3600})));
    assert_eq!(s, 201, "{v}");
    assert_eq!(h.introspect_elsewhere(&old)["active"], true);
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    assert_eq!(h.introspect(&old).1, json!({"active": false}));
    assert_eq!(h.introspect_elsewhere(&old), json!({"active": false}));
}

#[test]
fn revocation_during_grace_holds_even_if_every_kv_delete_is_lost() {
    let mut h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    assert_eq!(
        rotate(&h, &id, Some(json!({"grace_seconds": 86_400}))).0,
        201
    );
    h.backend.break_kv.set(true);
    let o = h.send(
        &Request::new(Method::Delete, &format!("/api/pats/{id}"))
            .header("authorization", &format!("Bearer {}", user_jwt("alice"))),
    );
    assert_eq!(o.response.status, 204);
    h.backend.break_kv.set(false);
    // the old grace grant is still in KV, but trusted only for GRANT_CACHE_SECONDS
    h.now += h.cfg.grant_cache_secs;
    assert_eq!(h.introspect_elsewhere(&old), json!({"active": false}));
}

#[test]
fn a_leak_report_of_a_token_in_grace_ends_its_grace_only() {
    let (sk, pem) = key_pair();
    let h = with_keys(&[("k1", &pem)]);
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    let (_, v) = rotate(&h, &id, Some(json!({"grace_seconds": 3600})));
    let new = v["token"].as_str().expect("token").to_owned();
    let (s, v, _) = h.call(&signed(&sk, "k1", &report(&[&old])));
    assert_eq!(s, 200);
    assert_eq!(v[0]["label"], "true_positive");
    assert_eq!(h.introspect(&old).1, json!({"active": false}));
    assert_eq!(h.introspect_elsewhere(&old), json!({"active": false}));
    // the successor, held by the owner, keeps working
    assert_eq!(h.introspect_elsewhere(&new)["active"], true);
    assert_eq!(pat_view(&h, &id)["status"], "active");
}

#[test]
fn grace_is_bounded_and_the_body_is_strict() {
    let mut h = Harness::new();
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    for bad in [
        json!({"grace_seconds": -1}),
        json!({"grace_seconds": 604_801}),
        json!({"grace_seconds": "60"}),
        json!({"grace": 60}),
    ] {
        let (s, v) = rotate(&h, &id, Some(bad.clone()));
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["error"], "invalid_request");
    }
    let req = Request::new(Method::Post, &format!("/api/pats/{id}/rotate"))
        .header("authorization", &format!("Bearer {}", user_jwt("alice")))
        .header("content-type", "text/plain")
        .body("grace_seconds=5");
    assert_eq!(h.call(&req).0, 415);
    // the configured cap
    h.cfg.lifecycle.max_grace_secs = 600;
    assert_eq!(rotate(&h, &id, Some(json!({"grace_seconds": 601}))).0, 400);
    // nothing above rotated anything: the PAT has generation 0
    assert_eq!(h.backend.tokens.borrow()[0].generation, 0);
    let (s, v) = rotate(&h, &id, Some(json!({"grace_seconds": 600})));
    assert_eq!(s, 201, "{v}");
    // without a body or with 0: no grace, the old token dies at once
    let old = v["token"].as_str().expect("token").to_owned();
    let (s, v) = rotate(&h, &id, None);
    assert_eq!(s, 201);
    assert!(v.get("previous_token_valid_until").is_none());
    assert_eq!(h.introspect_elsewhere(&old), json!({"active": false}));
    // grace never outlives the PAT
    let (s, v) = h.create(
        "alice",
        json!({"name":"short","scopes":["demo_api:read"],"expires_at": rfc3339(h.now + 300)}),
    );
    assert_eq!(s, 201);
    let short = v["id"].as_str().expect("id").to_owned();
    let (_, v) = rotate(&h, &short, Some(json!({"grace_seconds": 600})));
    assert_eq!(v["previous_token_valid_until"], rfc3339(h.now + 300));
}

fn self_rotate(h: &Harness, token: &str, body: Option<Value>) -> (u16, Value, Outcome) {
    let mut req = Request::new(Method::Post, "/api/pats/self/rotate")
        .header("authorization", &format!("Bearer {token}"));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    h.call(&req)
}

#[test]
fn self_rotation_needs_the_permission_and_the_current_token() {
    let h = Harness::new();
    let (plain_id, plain) = h.pat("alice", &["demo_api:read"]);
    let (s, v) = h.create(
        "alice",
        json!({"name":"ci","scopes":["demo_api:read"],"expires_in_days":30,"allow_self_rotation":true}),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["allow_self_rotation"], true);
    let id = v["id"].as_str().expect("id").to_owned();
    let token = v["token"].as_str().expect("token").to_owned();
    assert_eq!(pat_view(&h, &id)["allow_self_rotation"], true);
    assert_eq!(pat_view(&h, &plain_id)["allow_self_rotation"], false);

    // without the permission: 403, nothing changes
    let (s, v, o) = self_rotate(&h, &plain, None);
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"], "insufficient_scope");
    assert!(o
        .response
        .header("www-authenticate")
        .is_some_and(|w| w.contains("insufficient_scope")));
    assert_eq!(h.introspect(&plain).1["active"], true);

    // with it: the successor, same id; the old token dies (no grace asked)
    let (s, v, _) = self_rotate(&h, &token, None);
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["id"], id);
    let next = v["token"].as_str().expect("token").to_owned();
    assert_ne!(next, token);
    assert_eq!(h.introspect_elsewhere(&token), json!({"active": false}));
    assert_eq!(h.introspect(&next).1["active"], true);
    assert!(h.isolate.take_events().iter().any(
        |e| matches!(e, events::Event::PatRotated { via: "self", pat_id, .. } if *pat_id == id)
    ));

    // with grace: the old one works until it ends, but cannot rotate again
    let (s, v, _) = self_rotate(&h, &next, Some(json!({"grace_seconds": 120})));
    assert_eq!(s, 201, "{v}");
    let third = v["token"].as_str().expect("token").to_owned();
    assert_eq!(h.introspect(&next).1["grace_until"], NOW + 120);
    let (s, v, _) = self_rotate(&h, &next, None);
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"], "invalid_token");
    assert_eq!(h.introspect(&third).1["active"], true);

    // garbage, a missing bearer, a user JWT, a revoked token: 401
    assert_eq!(self_rotate(&h, "pgp_nope", None).0, 401);
    assert_eq!(self_rotate(&h, &user_jwt("alice"), None).0, 401);
    let (s, _, _) = h.call(&Request::new(Method::Post, "/api/pats/self/rotate"));
    assert_eq!(s, 401);
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    assert_eq!(self_rotate(&h, &third, None).0, 401);
    // GET is not allowed
    let (s, _, _) = h.call(
        &Request::new(Method::Get, "/api/pats/self/rotate")
            .header("authorization", &format!("Bearer {third}")),
    );
    assert_eq!(s, 405);
}

#[test]
fn self_rotation_is_refused_for_a_disabled_pat_client() {
    let h = Harness::new();
    let (s, v) = h.create(
        "alice",
        json!({"name":"ci","scopes":["demo_api:read"],"expires_in_days":30,"allow_self_rotation":true}),
    );
    assert_eq!(s, 201);
    let token = v["token"].as_str().expect("token").to_owned();
    h.backend.clients.borrow_mut()[0].enabled = false;
    let isolate = IsolateState::default();
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &isolate,
        now: h.now,
        now_ms: h.now * 1000,
    };
    let req = Request::new(Method::Post, "/api/pats/self/rotate")
        .header("authorization", &format!("Bearer {token}"));
    assert_eq!(block_on(handle(&ctx, &req)).response.status, 401);
}

#[test]
fn pat_views_say_how_many_days_are_left() {
    let mut h = Harness::new();
    let (id, _) = h.pat("alice", &["demo_api:read"]); // 30 days
    let v = pat_view(&h, &id);
    assert_eq!(v["days_left"], 30);
    assert_eq!(v["expiring_soon"], false);
    h.now = NOW + 23 * 86_400; // 7 days left
    let v = pat_view(&h, &id);
    assert_eq!(
        (v["days_left"].as_i64(), v["expiring_soon"].as_bool()),
        (Some(7), Some(true))
    );
    h.now = NOW + 23 * 86_400 - 1; // 7 days and a second: 8 started days
    assert_eq!(pat_view(&h, &id)["expiring_soon"], false);
    h.now = NOW + 30 * 86_400;
    let v = pat_view(&h, &id);
    assert_eq!(v["status"], "expired");
    assert_eq!(
        (v["days_left"].as_i64(), v["expiring_soon"].as_bool()),
        (Some(0), Some(false))
    );
    // the list carries the same fields
    let (_, list) = h.user_call(Method::Get, "/api/pats", "alice");
    assert_eq!(list["pats"][0]["days_left"], 0);
}

#[test]
fn rfc7009_with_a_token_in_grace_ends_its_grace_only() {
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    let (_, v) = rotate(&h, &id, Some(json!({"grace_seconds": 3600})));
    let new = v["token"].as_str().expect("token").to_owned();
    assert_eq!(h.introspect_elsewhere(&old)["active"], true);
    // a confidential client cannot touch a PAT's retired token
    let other = Request::new(Method::Post, "/oauth/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id=demo_client&client_secret=demo-client-secret&token={old}"
        ));
    assert_eq!(h.call(&other).0, 200);
    assert_eq!(h.introspect_elsewhere(&old)["active"], true);
    let req = Request::new(Method::Post, "/oauth/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("client_id=pat_client&token={old}"));
    assert_eq!(h.call(&req).0, 200);
    assert_eq!(h.introspect(&old).1, json!({"active": false}));
    assert_eq!(h.introspect_elsewhere(&old), json!({"active": false}));
    assert_eq!(h.introspect_elsewhere(&new)["active"], true);
    assert_eq!(pat_view(&h, &id)["status"], "active");
}

fn scan(h: &Harness) -> Vec<events::Event> {
    h.isolate.take_events();
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &h.isolate,
        now: h.now,
        now_ms: h.now * 1000,
    };
    block_on(tokens::expiry_scan(&ctx)).expect("scan");
    h.isolate.take_events()
}

fn notices(events: &[events::Event]) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = events
        .iter()
        .filter_map(|e| match e {
            events::Event::PatExpiring {
                pat_id,
                threshold_days,
                ..
            } => Some((pat_id.clone(), *threshold_days)),
            events::Event::PatExpired { pat_id, .. } => Some((pat_id.clone(), 0)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_expiry_scan_emits_each_threshold_once() {
    let mut h = Harness::new();
    let mk = |h: &Harness, name: &str, days: i64| -> String {
        let (s, v) = h.create(
            "alice",
            json!({"name": name, "scopes": ["demo_api:read"], "expires_in_days": days}),
        );
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().expect("id").to_owned()
    };
    let d40 = mk(&h, "d40", 40);
    let d20 = mk(&h, "d20", 20);
    let d5 = mk(&h, "d5", 5);
    let d1 = mk(&h, "d1", 1);
    let revoked = mk(&h, "revoked", 3);
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{revoked}"), "alice")
            .0,
        204
    );
    let mut want = vec![(d20.clone(), 30), (d5.clone(), 7), (d1.clone(), 1)];
    want.sort();
    assert_eq!(notices(&scan(&h)), want, "the tightest window only");
    // an hour later, nothing new; running twice at once changes nothing either
    h.now += 3600;
    assert!(notices(&scan(&h)).is_empty());
    assert!(notices(&scan(&h)).is_empty());
    // a day later d1 expired, and d5 moves... not yet into the 1-day window (4 days left)
    h.now = NOW + 86_400 + 60;
    assert_eq!(notices(&scan(&h)), vec![(d1.clone(), 0)]);
    // 4 days and a bit later d5 has less than a day left
    h.now = NOW + 4 * 86_400 + 60;
    assert_eq!(notices(&scan(&h)), vec![(d5.clone(), 1)]);
    // d5 expires on day 5; d40 enters the 30-day window after 10 days, d20 the 7-day one after 13
    h.now = NOW + 5 * 86_400 + 60;
    assert_eq!(notices(&scan(&h)), vec![(d5.clone(), 0)]);
    h.now = NOW + 10 * 86_400 + 60;
    assert_eq!(notices(&scan(&h)), vec![(d40.clone(), 30)]);
    h.now = NOW + 13 * 86_400 + 60;
    assert_eq!(notices(&scan(&h)), vec![(d20.clone(), 7)]);
    // the revoked PAT never got one
    assert!(h
        .backend
        .notices
        .borrow()
        .iter()
        .all(|(id, _)| *id != revoked));
    // and a D1 failure is an error, not a half-sent set of events
    h.backend.break_d1.set(true);
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &h.isolate,
        now: h.now,
        now_ms: h.now * 1000,
    };
    assert!(block_on(tokens::expiry_scan(&ctx)).is_err());
}

#[test]
fn a_reported_refresh_token_of_an_app_ends_its_grant() {
    let (sk, pem) = key_pair();
    let mut h = Harness::flow();
    h.cfg.lifecycle.scanning_keys = Some(Rc::new(
        crate::secret_scanning::KeySet::parse(&key_doc(&[("k1", &pem)])).expect("keys"),
    ));
    let (access, refresh) = h.tokens("alice");
    let unknown =
        crate::authz::secrets::GrantSecret::generate(crate::authz::secrets::SecretKind::Refresh)
            .expect("rng");
    let body = report(&[&refresh, unknown.expose_secret()]);
    let (s, v, o) = h.call(&signed(&sk, "k1", &body));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["label"], "true_positive");
    assert_eq!(v[1]["label"], "false_positive");
    assert!(
        !o.deferred.is_empty(),
        "the access token's purge retried later"
    );
    assert_eq!(h.introspect(&access).1["active"], false);
    assert_eq!(h.refresh(&refresh).0, 400);
    let log = h.logged();
    assert!(log.contains(r#""via":"token_revoked""#), "{log}");
    assert!(log.contains(r#""kind":"refresh""#), "{log}");
    // reported again: still a true positive, nothing more to end
    let (_, v, _) = h.call(&signed(&sk, "k1", &report(&[&refresh])));
    assert_eq!(v[0]["label"], "true_positive");
}
