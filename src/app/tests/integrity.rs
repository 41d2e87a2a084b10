//! Revocation under storage faults and races: a fault is injected into every storage step of
//! create, revoke, rotate, client and resource changes, in both forms (the write did not happen;
//! the write happened but reported failure). After the fault and one retry, or one KV cache
//! expiry, the invariants hold: no revoked or rotated-away token introspects active anywhere,
//! and nothing created is lost or duplicated.

use super::*;
use crate::testing::{Fault, Step};

const FAULTS: [Fault; 2] = [Fault::Lost, Fault::LandedButFailed];

fn alice(method: Method, path: &str) -> Request {
    Request::new(method, path).header("authorization", &format!("Bearer {}", user_jwt("alice")))
}

fn pat_ids(h: &Harness, user: &str) -> Vec<String> {
    let (s, v) = h.user_call(Method::Get, "/api/pats", user);
    assert_eq!(s, 200);
    v["pats"]
        .as_array()
        .expect("pats")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect()
}

fn inactive() -> Value {
    json!({"active": false})
}

/// Sends, and loses the deferred work (the isolate died before `wait_until` ran it).
fn send_dropping_deferred(h: &Harness, req: &Request) -> u16 {
    h.send(req).response.status
}

#[test]
fn kv_grants_are_trusted_at_most_grant_cache_seconds() {
    let mut h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]); // lives 30 days
    let fresh = |h: &Harness| {
        h.backend
            .kv
            .borrow()
            .values()
            .map(|g| g.fresh_until)
            .collect::<Vec<_>>()
    };
    assert_eq!(fresh(&h), vec![Some(NOW + h.cfg.grant_cache_secs)]);
    // the rewrite after the trust time is bounded the same way
    h.now += h.cfg.grant_cache_secs;
    assert_eq!(h.introspect_elsewhere(&token)["active"], true);
    assert_eq!(fresh(&h), vec![Some(h.now + h.cfg.grant_cache_secs)]);
    // the KV entry itself lives as long as the token: it says which tokens exist
    let until: Vec<i64> = h.backend.kv_until.borrow().values().copied().collect();
    assert_eq!(until, vec![NOW + 30 * 86_400]);
    // a token expiring sooner is trusted only until it expires
    let (s, v) = h.create(
        "alice",
        json!({"name":"soon","scopes":["demo_api:read"],"expires_at":rfc3339(h.now + 120)}),
    );
    assert_eq!(s, 201, "{v}");
    assert!(fresh(&h).contains(&Some(h.now + 120)));
}

#[test]
fn create_survives_every_fault() {
    for step in [Step::TokenInsert, Step::KvPut] {
        for fault in FAULTS {
            let h = Harness::new();
            h.backend.inject(step, fault);
            let body = json!({"name":"ci","scopes":["demo_api:read"],"expires_in_days":30});
            let (s, v) = h.create("alice", body.clone());
            let token = if s == 201 {
                v["token"].as_str().expect("token").to_owned()
            } else {
                assert_eq!(s, 503, "{step:?} {fault:?}: {v}");
                assert!(
                    pat_ids(&h, "alice").is_empty(),
                    "{step:?} {fault:?}: a failed create leaves nothing behind"
                );
                let (s, v) = h.create("alice", body); // the user's one retry
                assert_eq!(s, 201, "{step:?} {fault:?}: {v}");
                v["token"].as_str().expect("token").to_owned()
            };
            assert_eq!(
                pat_ids(&h, "alice").len(),
                1,
                "{step:?} {fault:?}: exactly one PAT"
            );
            assert_eq!(
                h.introspect_elsewhere(&token)["active"],
                true,
                "{step:?} {fault:?}"
            );
        }
    }
}

#[test]
fn revocation_survives_every_fault_after_one_retry() {
    for step in [Step::TokenRevoke, Step::KvDelete, Step::RetiredRead] {
        for fault in FAULTS {
            let h = Harness::new();
            let (id, token) = h.pat("alice", &["demo_api:read"]);
            assert_eq!(h.introspect_elsewhere(&token)["active"], true);
            h.backend.inject(step, fault);
            let s = send_dropping_deferred(&h, &alice(Method::Delete, &format!("/api/pats/{id}")));
            if step == Step::TokenRevoke {
                assert_eq!(s, 503, "{fault:?}: the D1 write failed");
            } else {
                assert_eq!(s, 204, "{step:?} {fault:?}: revoked once D1 records it");
            }
            // the user repeats the DELETE (its deferred work is lost too)
            let s = send_dropping_deferred(&h, &alice(Method::Delete, &format!("/api/pats/{id}")));
            assert_eq!(s, 204, "{step:?} {fault:?}");
            assert_eq!(
                h.introspect_elsewhere(&token),
                inactive(),
                "{step:?} {fault:?}"
            );
            assert_eq!(
                h.user_call(Method::Get, &format!("/api/pats/{id}"), "alice")
                    .1["status"],
                "revoked"
            );
        }
    }
}

#[test]
fn a_failed_kv_delete_is_retried_after_the_response() {
    let h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    h.backend.inject(Step::KvDelete, Fault::Lost);
    let o = h.send(&alice(Method::Delete, &format!("/api/pats/{id}")));
    assert_eq!(o.response.status, 204);
    assert!(h.logged().contains("KV delete"), "the failure is logged");
    assert_eq!(h.backend.kv.borrow().len(), 1, "the grant is still in KV");
    assert!(matches!(
        o.deferred.first(),
        Some(Deferred::PurgeGrants { after_secs: 0, .. })
    ));
    h.run_deferred(&o);
    assert_eq!(h.introspect_elsewhere(&token), inactive());
}

#[test]
fn a_lost_kv_delete_dies_with_the_kv_cache_bound() {
    let mut h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    h.backend.inject(Step::KvDelete, Fault::Lost);
    assert_eq!(
        send_dropping_deferred(&h, &alice(Method::Delete, &format!("/api/pats/{id}"))),
        204
    );
    assert_eq!(
        h.introspect_elsewhere(&token)["active"],
        true,
        "the stale grant is still cached"
    );
    h.now += h.cfg.grant_cache_secs;
    h.backend.expire_kv(h.now);
    assert_eq!(h.introspect_elsewhere(&token), inactive());
}

#[test]
fn rotation_survives_every_fault_after_one_retry() {
    for step in [
        Step::TokenRotate,
        Step::KvDelete,
        Step::KvPut,
        Step::TokenRead,
        Step::RetiredRead,
    ] {
        for fault in FAULTS {
            let h = Harness::new();
            let (id, old) = h.pat("alice", &["demo_api:read"]);
            h.backend.inject(step, fault);
            let o = h.send(&alice(Method::Post, &format!("/api/pats/{id}/rotate")));
            let mut new = None;
            match o.response.status {
                201 => {
                    new = Some(
                        o.response.json_body()["token"]
                            .as_str()
                            .expect("token")
                            .to_owned(),
                    );
                }
                503 => assert_eq!(step, Step::TokenRotate, "{fault:?}"),
                s => panic!("{step:?} {fault:?}: {s}"),
            }
            // one retry, deferred work of both lost: the retry rotates again
            let o = h.send(&alice(Method::Post, &format!("/api/pats/{id}/rotate")));
            assert_eq!(o.response.status, 201, "{step:?} {fault:?}");
            let newest = o.response.json_body()["token"]
                .as_str()
                .expect("token")
                .to_owned();
            assert_eq!(
                h.introspect_elsewhere(&old),
                inactive(),
                "{step:?} {fault:?}: the old token"
            );
            if let Some(new) = new {
                assert_eq!(
                    h.introspect_elsewhere(&new),
                    inactive(),
                    "{step:?} {fault:?}: rotated away"
                );
            }
            assert_eq!(
                h.introspect_elsewhere(&newest)["active"],
                true,
                "{step:?} {fault:?}"
            );
            assert_eq!(
                pat_ids(&h, "alice"),
                vec![id.clone()],
                "{step:?} {fault:?}: one PAT"
            );
        }
    }
}

#[test]
fn a_revocation_landing_inside_a_rotation_leaves_no_live_token() {
    // The revoke's D1 update lands right after the rotation's: the rotation's KV write would
    // bring the new token back. The rotation reads the record back and refuses.
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    let rid = id.clone();
    h.backend.after_step(Step::TokenRotate, move |b| {
        let mut tokens = b.tokens.borrow_mut();
        let t = tokens.iter_mut().find(|t| t.id == rid).expect("token");
        t.revoked_at = Some(NOW);
        b.kv.borrow_mut().remove(&t.hash); // the revoke's own KV delete, done before ours
    });
    let o = h.send(&alice(Method::Post, &format!("/api/pats/{id}/rotate")));
    assert_eq!(o.response.status, 409, "{:?}", o.response.json_body());
    h.run_deferred(&o);
    assert_eq!(h.introspect_elsewhere(&old), inactive());
    assert!(
        h.backend.kv.borrow().is_empty(),
        "no grant of the PAT is left in KV"
    );
    assert_eq!(
        h.user_call(Method::Get, &format!("/api/pats/{id}"), "alice")
            .1["status"],
        "revoked"
    );
}

#[test]
fn a_revocation_that_read_the_record_before_a_rotation_kills_the_new_token() {
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    let stale = h.backend.tokens.borrow()[0].hash;
    let (s, v) = h.user_call(Method::Post, &format!("/api/pats/{id}/rotate"), "alice");
    assert_eq!(s, 201);
    let new = v["token"].as_str().expect("token").to_owned();
    assert_eq!(h.introspect_elsewhere(&new)["active"], true);
    // the revocation read the record (old hash) before the rotation, and updates D1 after it
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &h.isolate,
        now: h.now,
    };
    let done = block_on(tokens::revoke_record(&ctx, &id, &stale))
        .expect("revoke")
        .expect("known");
    h.run_deferred(&Outcome {
        response: crate::http::Response::empty(204),
        deferred: done.deferred,
    });
    assert_eq!(
        h.introspect_elsewhere(&new),
        inactive(),
        "D1 returned the current hash"
    );
    assert_eq!(h.introspect_elsewhere(&old), inactive());
    // a rotation cannot follow: the revoked PAT has no active token
    assert_eq!(
        h.user_call(Method::Post, &format!("/api/pats/{id}/rotate"), "alice")
            .0,
        409
    );
}

#[test]
fn a_repeated_rotate_or_revoke_retries_the_old_hashes_kv_delete() {
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    // the old hash's reuse marker is lost, and so is the delete that replaces it (after D1
    // rotated: the new token's grant was written before)
    h.backend.after_step(Step::TokenRotate, |b| {
        b.inject(Step::KvPut, Fault::Lost);
        b.inject(Step::KvDelete, Fault::Lost);
    });
    assert_eq!(
        send_dropping_deferred(&h, &alice(Method::Post, &format!("/api/pats/{id}/rotate"))),
        201
    );
    assert_eq!(
        h.introspect_elsewhere(&old)["active"],
        true,
        "the old grant survived in KV"
    );
    // the next rotation (or a revocation) of the same PAT replaces it again (a reuse marker)
    assert_eq!(
        send_dropping_deferred(&h, &alice(Method::Post, &format!("/api/pats/{id}/rotate"))),
        201
    );
    assert_eq!(h.introspect_elsewhere(&old), inactive());
}

fn client_json(enabled: bool) -> String {
    json!({ "enabled": enabled }).to_string()
}

fn admin(method: Method, path: &str, body: Option<String>) -> Request {
    let r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    match body {
        Some(b) => r.header("content-type", "application/json").body(b),
        None => r,
    }
}

#[test]
fn disabling_a_client_survives_faults_and_kills_its_tokens_within_the_registry_bound() {
    for fault in FAULTS {
        let mut h = Harness::new();
        let (_, token) = h.pat("alice", &["demo_api:read"]);
        assert_eq!(h.introspect(&token).1["active"], true); // cached client record in this isolate
        h.backend.inject(Step::ClientWrite, fault);
        let req = admin(
            Method::Patch,
            "/admin/clients/pat_client",
            Some(client_json(false)),
        );
        let (s, _, _) = h.call(&req);
        assert_eq!(s, 503, "{fault:?}");
        assert_eq!(h.call(&req).0, 200, "{fault:?}: the retry");
        h.now += h.cfg.registry_cache_secs;
        assert_eq!(h.introspect(&token).1, inactive(), "{fault:?}");
        assert_eq!(h.introspect_elsewhere(&token), inactive(), "{fault:?}");
        // no PAT can be created for a disabled PAT client
        let (s, v) = h.create(
            "alice",
            json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":1}),
        );
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("unauthorized_client")),
            "{v}"
        );
        // re-enabling restores them
        assert_eq!(
            h.call(&admin(
                Method::Patch,
                "/admin/clients/pat_client",
                Some(client_json(true))
            ))
            .0,
            200
        );
        assert_eq!(h.introspect(&token).1["active"], true, "{fault:?}");
    }
}

#[test]
fn deleting_a_resource_survives_faults_and_hides_its_scopes() {
    for fault in FAULTS {
        let mut h = Harness::new();
        let (_, token) = h.pat("alice", &["demo_api:read"]);
        h.backend.inject(Step::ResourceWrite, fault);
        let req = admin(Method::Delete, "/admin/resources/demo_api", None);
        assert_eq!(h.call(&req).0, 503, "{fault:?}");
        let s = h.call(&req).0;
        assert!(s == 204 || s == 404, "{fault:?}: the retry ({s})");
        h.now += h.cfg.registry_cache_secs;
        // the resource cannot authenticate any more, and no other resource sees the scope
        assert_eq!(h.introspect(&token).0, 401, "{fault:?}");
        assert_eq!(
            h.introspect_as("other_api", "other-api-secret", &token).1,
            inactive()
        );
    }
}

#[test]
fn deleting_a_client_survives_faults_and_kills_its_tokens() {
    for fault in FAULTS {
        let mut h = Harness::new();
        let req = Request::new(Method::Post, "/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=demo_client&client_secret=demo-client-secret");
        let (s, v, _) = h.call(&req);
        assert_eq!(s, 200, "{v}");
        let token = v["access_token"].as_str().expect("token").to_owned();
        h.backend.inject(Step::ClientWrite, fault);
        let del = admin(Method::Delete, "/admin/clients/demo_client", None);
        assert_eq!(h.call(&del).0, 503, "{fault:?}");
        let s = h.call(&del).0;
        assert!(s == 204 || s == 404, "{fault:?}: the retry ({s})");
        h.now += h.cfg.registry_cache_secs;
        assert_eq!(h.introspect(&token).1, inactive(), "{fault:?}");
        assert_eq!(h.introspect_elsewhere(&token), inactive(), "{fault:?}");
        assert_eq!(h.call(&req).0, 401, "{fault:?}: no more tokens for it");
    }
}

#[test]
fn removing_a_scope_from_a_resource_survives_faults_and_hides_it() {
    for fault in FAULTS {
        let mut h = Harness::new();
        let (_, token) = h.pat("alice", &["demo_api:read", "demo_api:write"]);
        assert_eq!(
            h.introspect(&token).1["scope"],
            "demo_api:read demo_api:write"
        );
        h.backend.inject(Step::ResourceWrite, fault);
        let patch = admin(
            Method::Patch,
            "/admin/resources/demo_api",
            Some(json!({"scopes": ["demo_api:write"]}).to_string()),
        );
        assert_eq!(h.call(&patch).0, 503, "{fault:?}");
        assert_eq!(h.call(&patch).0, 200, "{fault:?}: the retry");
        h.now += h.cfg.registry_cache_secs;
        assert_eq!(
            h.introspect(&token).1["scope"],
            "demo_api:write",
            "{fault:?}"
        );
        assert_eq!(
            h.introspect_elsewhere(&token)["scope"],
            "demo_api:write",
            "{fault:?}"
        );
    }
}

// --- derived tokens ----------------------------------------------------------------------------

fn exchange(h: &Harness, client: &str, pat: &str) -> (u16, Value) {
    let body = format!(
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id={client}\
         &subject_token={pat}&subject_token_type=urn:ietf:params:oauth:token-type:access_token"
    );
    let req = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    let (s, v, _) = h.call(&req);
    (s, v)
}

fn exchanged_jwt(h: &Harness, pat: &str) -> String {
    let (s, v) = exchange(h, "pat_client", pat);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["expires_in"], DEFAULT_EXCHANGED_JWT_SECS,
        "15 minutes by default"
    );
    v["access_token"].as_str().expect("jwt").to_owned()
}

#[test]
fn a_jwt_exchanged_from_a_pat_dies_when_the_pat_is_revoked() {
    let h = Harness::new();
    let (id, pat) = h.pat("alice", &["demo_api:read"]);
    let jwt = exchanged_jwt(&h, &pat);
    let (_, v, _) = h.introspect(&jwt);
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice")
            .0,
        204
    );
    assert_eq!(h.introspect(&jwt).1, inactive());
    assert_eq!(h.introspect_elsewhere(&jwt), inactive());
}

#[test]
fn a_jwt_exchanged_from_a_pat_dies_when_the_pat_is_rotated_or_expires() {
    let mut h = Harness::new();
    let (id, pat) = h.pat("alice", &["demo_api:read"]);
    let jwt = exchanged_jwt(&h, &pat);
    let (s, v) = h.user_call(Method::Post, &format!("/api/pats/{id}/rotate"), "alice");
    assert_eq!(s, 201);
    assert_eq!(h.introspect(&jwt).1, inactive(), "rotated");
    // a JWT from the new token lives, and dies with its expiry
    let new = v["token"].as_str().expect("token").to_owned();
    let (s, v) = h.create(
        "alice",
        json!({"name":"short","scopes":["demo_api:read"],"expires_at":rfc3339(NOW + 100)}),
    );
    assert_eq!(s, 201);
    let short = v["token"].as_str().expect("token").to_owned();
    let (s, v) = exchange(&h, "pat_client", &short);
    assert_eq!(
        (s, v["expires_in"].as_i64()),
        (200, Some(100)),
        "never past the PAT"
    );
    let jwt2 = exchanged_jwt(&h, &new);
    assert_eq!(h.introspect(&jwt2).1["active"], true);
    h.now += 100;
    assert_eq!(
        h.introspect(v["access_token"].as_str().expect("jwt")).1,
        inactive()
    );
}

#[test]
fn a_disabled_pat_client_stops_exchanges_and_exchanged_jwts() {
    let mut h = Harness::new();
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    let jwt = exchanged_jwt(&h, &pat);
    let (s, _, _) = h.call(&admin(
        Method::Patch,
        "/admin/clients/pat_client",
        Some(client_json(false)),
    ));
    assert_eq!(s, 200);
    h.now += h.cfg.registry_cache_secs;
    assert_eq!(h.introspect(&jwt).1, inactive());
    // no client, demo_client included, can exchange a PAT of the disabled client
    let body = format!(
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange\
         &subject_token={pat}&subject_token_type=urn:ietf:params:oauth:token-type:access_token"
    );
    let req = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            &format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("demo_client:demo-client-secret")
            ),
        )
        .body(body);
    let (s, v, _) = h.call(&req);
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
}

// --- abuse and cost ----------------------------------------------------------------------------

#[test]
fn forged_well_formed_tokens_never_reach_d1_on_any_endpoint() {
    let h = Harness::new();
    let forged = || {
        crate::token::PlainToken::generate(crate::token::TokenKind::Pat)
            .expect("rng")
            .expose_secret()
            .to_owned()
    };
    let revoke = |t: &str| {
        Request::new(Method::Post, "/oauth/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("client_id=pat_client&token={t}"))
    };
    let round = |t: &str| {
        assert_eq!(h.introspect(t).1, inactive());
        assert_eq!(h.call(&revoke(t)).0, 200);
        assert_eq!(exchange(&h, "pat_client", t).1["error"], "invalid_grant");
    };
    round(&forged()); // warms the registry cache
    h.backend.take_counts();
    for _ in 0..3 {
        round(&forged());
        let c = h.backend.take_counts();
        assert_eq!(
            (c.kv_get, c.d1_query),
            (1, 0),
            "one KV read per forged token: {c:?}"
        );
    }
}

#[test]
fn unknown_client_ids_and_resources_never_reach_d1() {
    let h = Harness::new();
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    h.introspect(&pat); // warms both registry tables
    h.backend.take_counts();
    for i in 0..5 {
        let (s, _, _) = h.introspect_as(&format!("nobody{i}"), "x", &pat);
        assert_eq!(s, 401);
        let form = |body: String| {
            Request::new(Method::Post, "/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        };
        let (s, _, _) = h.call(&form(format!(
            "grant_type=client_credentials&client_id=ghost{i}&client_secret=x"
        )));
        assert_eq!(s, 401);
        let (s, _) = exchange(&h, &format!("ghost{i}"), &pat);
        assert_eq!(s, 401);
        let revoke = Request::new(Method::Post, "/oauth/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("client_id=ghost{i}&token={pat}"));
        assert_eq!(h.call(&revoke).0, 401);
    }
    assert_eq!(
        h.backend.take_counts(),
        Counts::default(),
        "no storage at all"
    );
}

#[test]
fn during_a_d1_outage_cached_records_serve_for_a_bounded_time_then_503() {
    let mut h = Harness::new();
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    assert_eq!(h.introspect(&pat).1["active"], true);
    h.backend.break_d1.set(true);
    // past the cache life: the refresh fails, the cached records still answer
    h.now += h.cfg.registry_cache_secs;
    assert_eq!(h.introspect(&pat).1["active"], true);
    h.now += h.cfg.registry_max_stale_secs - 1;
    assert_eq!(
        h.introspect(&pat).1["active"],
        true,
        "still within the stale bound"
    );
    // past the bound: no decision on records that old
    h.now += 1;
    let (s, v, _) = h.introspect(&pat);
    assert_eq!(
        (s, v["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    h.backend.break_d1.set(false);
    assert_eq!(h.introspect(&pat).1["active"], true);
}

// --- rate limits -------------------------------------------------------------------------------

fn with_limits(limits: &[(crate::store::Limit, u32)]) -> Harness {
    let h = Harness::new();
    h.backend.limits.borrow_mut().extend(limits.iter().copied());
    h
}

#[test]
fn failed_client_authentications_are_limited_per_id_and_then_refuse_even_the_right_secret() {
    use crate::store::Limit;
    let h = with_limits(&[(Limit::FailedAuthPerClient, 3)]);
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    for _ in 0..3 {
        assert_eq!(h.introspect_as("demo_api", "wrong", &pat).0, 401);
    }
    let (s, v, o) = h.introspect_as("demo_api", "wrong", &pat);
    assert_eq!((s, v["error"].as_str()), (429, Some("rate_limited")));
    assert_eq!(o.response.header("retry-after"), Some("60"));
    assert_eq!(o.response.header("cache-control"), Some("no-store"));
    // the right secret is refused too while the key is blocked, another id is not
    assert_eq!(h.introspect(&pat).0, 429);
    assert_eq!(
        h.introspect_as("other_api", "other-api-secret", &pat).0,
        200
    );
    // the period passes
    let mut h = h;
    h.now += 60;
    assert_eq!(h.introspect(&pat).0, 200);
}

#[test]
fn failed_authentications_are_limited_per_ip() {
    use crate::store::Limit;
    let h = with_limits(&[(Limit::FailedAuthPerIp, 2)]);
    let revoke = |id: &str, ip: &str| {
        Request::new(Method::Post, "/oauth/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cf-connecting-ip", ip)
            .body(format!("client_id={id}&client_secret=x&token=t"))
    };
    assert_eq!(h.call(&revoke("a", "192.0.2.1")).0, 401);
    assert_eq!(h.call(&revoke("b", "192.0.2.1")).0, 401);
    assert_eq!(h.call(&revoke("c", "192.0.2.1")).0, 429);
    assert_eq!(h.call(&revoke("d", "192.0.2.2")).0, 401, "another IP");
}

#[test]
fn pat_creations_are_limited_per_user_and_token_calls_per_ip() {
    use crate::store::Limit;
    let h = with_limits(&[
        (Limit::PatCreationsPerUser, 2),
        (Limit::TokenEndpointPerIp, 3),
    ]);
    let body = json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":1});
    assert_eq!(h.create("alice", body.clone()).0, 201);
    assert_eq!(h.create("alice", body.clone()).0, 201);
    let (s, v) = h.create("alice", body.clone());
    assert_eq!((s, v["error"].as_str()), (429, Some("rate_limited")));
    assert_eq!(h.create("bob", body).0, 201, "another user");
    assert_eq!(
        pat_ids(&h, "alice").len(),
        2,
        "the refused creation stored nothing"
    );
    let cc = || {
        Request::new(Method::Post, "/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cf-connecting-ip", "198.51.100.7")
            .body("grant_type=client_credentials&client_id=demo_client&client_secret=demo-client-secret")
    };
    for _ in 0..3 {
        assert_eq!(h.call(&cc()).0, 200);
    }
    assert_eq!(h.call(&cc()).0, 429);
}

// --- security events ---------------------------------------------------------------------------

#[test]
fn security_events_are_one_json_line_each_with_ids_and_never_a_secret() {
    let h = with_limits(&[(crate::store::Limit::FailedAuthPerClient, 1)]);
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let (s, v) = h.user_call(Method::Post, &format!("/api/pats/{id}/rotate"), "alice");
    assert_eq!(s, 201);
    let new = v["token"].as_str().expect("token").to_owned();
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice")
            .0,
        204
    );
    h.introspect_as("demo_api", "wrong-secret", &new);
    h.introspect_as("demo_api", "wrong-secret", &new); // over the limit
    let (s, _, _) = h.call(&admin(
        Method::Patch,
        "/admin/clients/demo_client",
        Some(client_json(false)),
    ));
    assert_eq!(s, 200);
    let lines: Vec<String> = h
        .isolate
        .take_events()
        .iter()
        .map(crate::events::Event::line)
        .collect();
    let kinds: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["event"]
                .as_str()
                .expect("event")
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "pat.created",
            "pat.rotated",
            "pat.revoked",
            "client_auth.failed",
            // the cause behind the 401 (the same sink; not a webhook event)
            "error",
            "client_auth.failed",
            "rate_limited",
            "error",
            "admin.change"
        ],
        "{lines:#?}"
    );
    for l in &lines {
        assert!(!l.contains('\n'));
        for secret in [&token, &new, "wrong-secret", "demo-api-secret", ADMIN] {
            assert!(!l.contains(secret), "a secret in {l}");
        }
    }
    assert!(
        lines[2].contains(&format!(r#""pat_id":"{id}""#)),
        "{}",
        lines[2]
    );
    assert!(
        lines[8].contains(r#""target":"clients/demo_client","status":200"#),
        "{}",
        lines[8]
    );
}

// --- clients and resources as they were at issuance ----------------------------------------------

fn client_credentials(h: &Harness) -> (u16, Value) {
    let req = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            "grant_type=client_credentials&client_id=demo_client&client_secret=demo-client-secret",
        );
    let (s, v, _) = h.call(&req);
    (s, v)
}

#[test]
fn a_client_deleted_and_created_again_does_not_revive_its_old_tokens() {
    let h = Harness::new();
    let (s, v) = client_credentials(&h);
    assert_eq!(s, 200, "{v}");
    let old = v["access_token"].as_str().expect("token").to_owned();
    assert_eq!(h.introspect(&old).1["active"], true);
    assert_eq!(
        h.call(&admin(Method::Delete, "/admin/clients/demo_client", None))
            .0,
        204
    );
    let body = json!({"id":"demo_client","allowed_scopes":["demo_api:read"]}).to_string();
    let (s, v, _) = h.call(&admin(Method::Post, "/admin/clients", Some(body)));
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        h.introspect(&old).1,
        inactive(),
        "the old client's token stays dead"
    );
    assert_eq!(h.introspect_elsewhere(&old), inactive());
    // the new client's own tokens work
    let secret = v["client_secret"].as_str().expect("secret").to_owned();
    let req = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id=demo_client&client_secret={secret}"
        ));
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        h.introspect(v["access_token"].as_str().expect("token")).1["active"],
        true
    );
}

#[test]
fn a_scope_moved_to_another_resource_does_not_show_old_pats_to_it() {
    let h = Harness::new();
    let (_, old) = h.pat("alice", &["other_api:read"]);
    assert_eq!(
        h.introspect_as("other_api", "other-api-secret", &old).1["active"],
        true
    );
    assert_eq!(
        h.call(&admin(Method::Delete, "/admin/resources/other_api", None))
            .0,
        204
    );
    let body = json!({"id":"thief_api","scopes":["other_api:read"]}).to_string();
    let (s, v, _) = h.call(&admin(Method::Post, "/admin/resources", Some(body)));
    assert_eq!(s, 201, "{v}");
    let secret = v["secret"].as_str().expect("secret").to_owned();
    assert_eq!(
        h.introspect_as("thief_api", &secret, &old).1,
        inactive(),
        "the new owner sees nothing"
    );
    // a PAT issued now, under the new owner, is visible to it
    let (_, new) = h.pat("alice", &["other_api:read"]);
    assert_eq!(
        h.introspect_as("thief_api", &secret, &new).1["active"],
        true
    );
    // and a resource re-created with the same id is another resource too
    assert_eq!(
        h.call(&admin(Method::Delete, "/admin/resources/thief_api", None))
            .0,
        204
    );
    let body = json!({"id":"thief_api","scopes":["other_api:read"]}).to_string();
    let (_, v, _) = h.call(&admin(Method::Post, "/admin/resources", Some(body)));
    let secret = v["secret"].as_str().expect("secret").to_owned();
    assert_eq!(h.introspect_as("thief_api", &secret, &new).1, inactive());
}

#[test]
fn a_failing_rate_limiter_lets_requests_through_and_says_so() {
    use crate::store::Limit;
    let h = with_limits(&[
        (Limit::PatCreationsPerUser, 1),
        (Limit::FailedAuthPerClient, 1),
    ]);
    h.backend.break_limiter.set(true);
    let body = json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":1});
    assert_eq!(h.create("alice", body.clone()).0, 201);
    assert_eq!(
        h.create("alice", body).0,
        201,
        "a limiter outage locks no one out"
    );
    assert_eq!(h.introspect_as("demo_api", "wrong", "x").0, 401);
    assert_eq!(h.introspect_as("demo_api", "wrong", "x").0, 401);
    let warnings = h
        .isolate
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, crate::events::Event::Warning { .. }))
        .count();
    assert!(warnings >= 2, "each failed limiter call is a warning event");
}

#[test]
fn a_hostile_cf_connecting_ip_is_no_usable_rate_limit_key() {
    use crate::store::Limit;
    let h = with_limits(&[(Limit::FailedAuthPerIp, 1)]);
    let revoke = |id: &str, ip: &str| {
        Request::new(Method::Post, "/oauth/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cf-connecting-ip", ip)
            .body(format!("client_id={id}&client_secret=x&token=t"))
    };
    // oversized or empty values all count as the one key "unknown": rotating junk IPs does not
    // buy fresh budgets
    let long = "9".repeat(10_000);
    assert_eq!(h.call(&revoke("a", &long)).0, 401);
    assert_eq!(h.call(&revoke("b", "")).0, 429);
    assert!(h
        .backend
        .limit_counts
        .borrow()
        .keys()
        .all(|(_, k)| k.len() <= 64));
    // a repeated header is refused, not merged
    let twice = revoke("c", "192.0.2.9").header("cf-connecting-ip", "192.0.2.10");
    assert!(h.call(&twice).0 >= 400);
}

#[test]
fn a_create_whose_undo_also_fails_leaves_no_usable_token() {
    // the insert landed but reported failure, and the compensating delete fails too: the user
    // got a 503 and no token; the row left behind has no KV grant, so it is inactive everywhere
    let h = Harness::new();
    h.backend.inject(Step::TokenInsert, Fault::LandedButFailed);
    h.backend.inject(Step::TokenDelete, Fault::Lost);
    let (s, _) = h.create(
        "alice",
        json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":1}),
    );
    assert_eq!(s, 503);
    assert!(
        h.backend.kv.borrow().is_empty(),
        "no KV grant: the orphan row is never active"
    );
    let (s, v) = h.create(
        "alice",
        json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":1}),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        h.introspect_elsewhere(v["token"].as_str().expect("token"))["active"],
        true
    );
}
