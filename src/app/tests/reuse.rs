//! Reuse detection, with the injected clock: a rotated-away token used after it
//! stopped working is recorded, emits `pat.reuse_detected`, and with `revoke_on_reuse` kills the
//! whole PAT; the reuse marker that makes this possible is never active, costs live and forged
//! tokens nothing, and every new storage step survives an injected fault.

use super::*;
use crate::model::Grant;
use crate::origin::ClientOrigin;
use crate::testing::{Fault, Step};
use crate::token::{PlainToken, TokenHash};

const IP: &str = "203.0.113.7";

fn hash(token: &str) -> TokenHash {
    PlainToken::parse(token).expect("token").hash()
}

fn harness() -> Harness {
    let h = Harness::new();
    *h.backend.origin.borrow_mut() = ClientOrigin::new(Some(IP), Some("DFW"), Some("US"));
    h
}

fn create(h: &Harness, revoke_on_reuse: bool) -> (String, String) {
    let (s, v) = h.create(
        "alice",
        json!({"name":"ci","scopes":["demo_api:read"],"expires_in_days":30,
               "revoke_on_reuse": revoke_on_reuse}),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["revoke_on_reuse"], revoke_on_reuse);
    (
        v["id"].as_str().expect("id").into(),
        v["token"].as_str().expect("token").into(),
    )
}

/// Rotates (no body: no grace) and returns the new token.
fn rotate(h: &Harness, id: &str, grace: Option<i64>) -> String {
    let mut req = Request::new(Method::Post, &format!("/api/pats/{id}/rotate"))
        .header("authorization", &format!("Bearer {}", user_jwt("alice")));
    if let Some(g) = grace {
        req = req
            .header("content-type", "application/json")
            .body(json!({ "grace_seconds": g }).to_string());
    }
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().expect("token").to_owned()
}

fn view(h: &Harness, id: &str) -> Value {
    let (s, v) = h.user_call(Method::Get, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 200, "{v}");
    v
}

fn reuse_events(h: &Harness) -> Vec<events::Event> {
    h.isolate
        .take_events()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                events::Event::PatReuseDetected { .. }
                    | events::Event::PatRevoked { via: "reuse", .. }
            )
        })
        .collect()
}

fn inactive() -> Value {
    json!({"active": false})
}

/// Introspection at another location whose events land in the harness's isolate sink. The new
/// isolate's API resource table is loaded first and that read is not counted: the counts say
/// what the token cost.
fn use_elsewhere(h: &Harness, token: &str) -> Value {
    let isolate = IsolateState::default();
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &isolate,
        now: h.now,
    };
    let counts = h.backend.counts.get();
    block_on(handle(&ctx, &introspect_req("warm")));
    h.backend.counts.set(counts);
    let o = block_on(handle(&ctx, &introspect_req(token)));
    h.run_deferred(&o);
    for e in isolate.take_events() {
        h.isolate.emit(e);
    }
    o.response.json_body()
}

#[test]
fn a_token_rotated_away_without_grace_and_used_again_is_recorded_with_its_origin() {
    let mut h = harness();
    let (id, old) = create(&h, false);
    let v = view(&h, &id);
    assert_eq!(
        (&v["revoke_on_reuse"], &v["reuse_count"], &v["last_reuse"]),
        (&json!(false), &json!(0), &Value::Null)
    );
    let new = rotate(&h, &id, None);
    h.isolate.take_events();
    assert_eq!(h.backend.origin_reads.get(), 0, "nobody asked yet");

    h.now += 5;
    assert_eq!(use_elsewhere(&h, &old), inactive());
    let events = reuse_events(&h);
    assert_eq!(
        events,
        vec![events::Event::PatReuseDetected {
            pat_id: id.clone(),
            sub: "alice".into(),
            rotated_at: NOW,
            ip: Some(IP.into()),
            colo: Some("DFW".into()),
            country: Some("US".into()),
            family_revoked: false,
        }]
    );
    let v = view(&h, &id);
    assert_eq!(v["status"], "active");
    assert_eq!(v["reuse_count"], 1);
    assert_eq!(v["first_reuse_at"], rfc3339(NOW + 5));
    assert_eq!(
        v["last_reuse"],
        json!({"at": rfc3339(NOW + 5), "ip": IP, "colo": "DFW", "country": "US",
               "token_rotated_at": rfc3339(NOW)})
    );
    // the owner's current token is untouched
    assert_eq!(use_elsewhere(&h, &new)["active"], true);

    // repeated uses: one KV read each, no D1, nothing recorded again ...
    h.backend.take_counts();
    for _ in 0..5 {
        assert_eq!(use_elsewhere(&h, &old), inactive());
    }
    let c = h.backend.take_counts();
    assert_eq!((c.d1_query, c.kv_put), (0, 0), "{c:?}");
    assert!(reuse_events(&h).is_empty());
    // ... and nothing at all in the isolate that detected it
    h.introspect(&old);
    h.backend.take_counts();
    assert_eq!(h.introspect(&old).1, inactive());
    assert_eq!(h.backend.take_counts(), Counts::default());

    // past GRANT_CACHE_SECONDS the next use is detected (and recorded) again
    h.now += h.cfg.grant_cache_secs;
    *h.backend.origin.borrow_mut() = ClientOrigin::new(Some("2001:db8::9"), None, None);
    assert_eq!(use_elsewhere(&h, &old), inactive());
    assert_eq!(reuse_events(&h).len(), 1);
    let v = view(&h, &id);
    assert_eq!(v["reuse_count"], 2);
    assert_eq!(v["first_reuse_at"], rfc3339(NOW + 5), "the first one kept");
    assert_eq!(
        v["last_reuse"],
        json!({"at": rfc3339(h.now), "ip": "2001:db8::9", "colo": null, "country": null,
               "token_rotated_at": rfc3339(NOW)})
    );
    assert_eq!(use_elsewhere(&h, &new)["active"], true);
}

#[test]
fn a_token_in_its_grace_works_and_is_detected_only_once_the_grace_is_over() {
    let mut h = harness();
    let (id, old) = create(&h, false);
    let new = rotate(&h, &id, Some(600));
    h.isolate.take_events();
    // during the grace: active with the claims, nothing detected (also past KV's trust time)
    for at in [NOW + 1, NOW + 599] {
        h.now = at;
        let v = use_elsewhere(&h, &old);
        assert_eq!(v["active"], true, "{v}");
        assert_eq!(v["grace_until"], NOW + 600);
    }
    assert!(reuse_events(&h).is_empty());
    assert_eq!(view(&h, &id)["reuse_count"], 0);
    assert_eq!(h.backend.origin_reads.get(), 0);
    // the grace is over: inactive, detected
    h.now = NOW + 600;
    assert_eq!(use_elsewhere(&h, &old), inactive());
    assert!(matches!(
        reuse_events(&h).as_slice(),
        [events::Event::PatReuseDetected { rotated_at, family_revoked: false, .. }] if *rotated_at == NOW
    ));
    assert_eq!(view(&h, &id)["reuse_count"], 1);
    assert_eq!(use_elsewhere(&h, &new)["active"], true);
}

#[test]
fn with_revoke_on_reuse_the_whole_pat_dies_and_its_jwts_with_it() {
    let mut h = harness();
    let (id, old) = create(&h, true);
    assert_eq!(view(&h, &id)["revoke_on_reuse"], true);
    let second = rotate(&h, &id, None);
    let current = rotate(&h, &id, Some(3600));
    // a JWT exchanged from the current token
    let (s, v, _) = h.call(
        &Request::new(Method::Post, "/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id=pat_client\
                 &subject_token={current}&subject_token_type=urn:ietf:params:oauth:token-type:access_token"
            )),
    );
    assert_eq!(s, 200, "{v}");
    let jwt = v["access_token"].as_str().expect("jwt").to_owned();
    assert_eq!(h.introspect(&jwt).1["active"], true);
    assert_eq!(use_elsewhere(&h, &second)["active"], true, "in its grace");
    h.isolate.take_events();

    h.now += 10;
    assert_eq!(use_elsewhere(&h, &old), inactive());
    let events = reuse_events(&h);
    assert!(
        events.contains(&events::Event::PatRevoked {
            pat_id: id.clone(),
            newly: true,
            via: "reuse"
        }),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(e,
        events::Event::PatReuseDetected { family_revoked: true, pat_id, .. } if *pat_id == id)));
    // every token of the family is dead, here and elsewhere, and the JWT too
    for t in [&old, &second, &current, &jwt] {
        assert_eq!(use_elsewhere(&h, t), inactive());
        assert_eq!(h.introspect(t).1, inactive());
    }
    let v = view(&h, &id);
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["revoked_reason"], "reuse");
    assert_eq!(v["reuse_count"], 1);
    let (_, list) = h.user_call(Method::Get, "/api/pats", "alice");
    assert_eq!(list["pats"][0]["revoked_reason"], "reuse");
    // the markers left KV with the revocation: later uses cost one KV read, never D1
    assert!(h.backend.kv.borrow().is_empty(), "no entry of the PAT left");
    h.backend.take_counts();
    assert_eq!(use_elsewhere(&h, &old), inactive());
    let c = h.backend.take_counts();
    assert_eq!((c.kv_get, c.d1_query), (1, 0), "{c:?}");
}

#[test]
fn the_marker_is_never_active() {
    let mut h = harness();
    let (id, old) = create(&h, false);
    let new = rotate(&h, &id, None);
    let rec = h.backend.tokens.borrow()[0].clone();
    let marker = h
        .backend
        .kv
        .borrow()
        .get(&hash(&old))
        .cloned()
        .expect("marker");
    assert!(marker.marker);
    assert!(marker.scopes.is_empty());
    assert!(marker.exp <= NOW && !marker.is_fresh(NOW), "{marker:?}");
    assert_eq!(
        h.backend.kv_until.borrow().get(&hash(&old)),
        Some(&rec.expires_at),
        "kept until the PAT expires"
    );
    // even a marker that claims everything (a bug, a tampered entry) answers inactive
    let forged = Grant {
        scopes: vec!["demo_api:read".into()],
        exp: rec.expires_at,
        fresh_until: Some(rec.expires_at),
        ..marker.clone()
    };
    h.backend.kv.borrow_mut().insert(hash(&old), forged);
    assert_eq!(use_elsewhere(&h, &old), inactive());
    assert_eq!(h.introspect(&old).1, inactive());
    // a fresh marker is inactive without D1, all the way to the PAT's expiry
    h.backend
        .kv
        .borrow_mut()
        .insert(hash(&old), rec.marker(NOW, None, NOW, rec.expires_at));
    for at in [NOW, NOW + 86_400, rec.expires_at - 1] {
        h.now = at;
        h.backend.take_counts();
        assert_eq!(use_elsewhere(&h, &old), inactive());
        assert_eq!(h.backend.take_counts().d1_query, 0);
    }
    // the marker is gone with the PAT's expiry
    h.backend.expire_kv(rec.expires_at);
    assert!(!h.backend.kv.borrow().contains_key(&hash(&old)));
    // a stale marker over a token that is still current (an unknown rotation outcome) heals:
    // D1 says it is active and the entry is rewritten as a grant
    h.now = NOW + 60;
    let current = h.backend.tokens.borrow()[0].clone();
    h.backend
        .kv
        .borrow_mut()
        .insert(current.hash, current.marker(NOW, None, NOW, NOW));
    assert_eq!(use_elsewhere(&h, &new)["active"], true);
    assert!(!h.backend.kv.borrow()[&current.hash].marker);
}

#[test]
fn forged_and_live_tokens_pay_nothing_for_detection() {
    let h = harness();
    let (id, token) = create(&h, true);
    h.introspect(&token); // warm the registry cache
    h.backend.take_counts();
    assert_eq!(h.introspect(&token).1["active"], true);
    assert_eq!(
        h.backend.take_counts(),
        Counts {
            kv_get: 1,
            ..Counts::default()
        }
    );
    let forged = PlainToken::generate(crate::token::TokenKind::Pat).expect("rng");
    assert_eq!(use_elsewhere(&h, forged.expose_secret()), inactive());
    let c = h.backend.take_counts();
    assert_eq!((c.kv_get, c.d1_query), (1, 0), "{c:?}");
    assert_eq!(h.backend.origin_reads.get(), 0);
    assert_eq!(view(&h, &id)["status"], "active");
}

#[test]
fn reuse_is_detected_at_token_exchange_and_self_rotation_too() {
    let mut h = harness();
    let (s, v) = h.create(
        "alice",
        json!({"name":"bot","scopes":["demo_api:read"],"expires_in_days":30,
               "allow_self_rotation": true, "revoke_on_reuse": true}),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    let old = v["token"].as_str().expect("token").to_owned();
    let self_rotate = |h: &Harness, t: &str| {
        h.call(
            &Request::new(Method::Post, "/api/pats/self/rotate")
                .header("authorization", &format!("Bearer {t}")),
        )
    };
    let (s, v, _) = self_rotate(&h, &old);
    assert_eq!(s, 201, "{v}");
    let new = v["token"].as_str().expect("token").to_owned();
    h.isolate.take_events();
    // the old token tries to rotate itself again: refused, detected, the PAT revoked
    h.now += 1;
    let (s, v, o) = self_rotate(&h, &old);
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"], "invalid_token");
    assert!(o
        .deferred
        .iter()
        .any(|d| matches!(d, Deferred::PurgeGrants { .. })));
    assert_eq!(reuse_events(&h).len(), 2, "detected and revoked");
    assert_eq!(use_elsewhere(&h, &new), inactive());
    assert_eq!(view(&h, &id)["revoked_reason"], "reuse");

    // token exchange with an old token of a PAT without the option: recorded, refused
    let (id2, old2) = create(&h, false);
    let new2 = rotate(&h, &id2, None);
    let (s, v, _) = h.call(
        &Request::new(Method::Post, "/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id=pat_client\
                 &subject_token={old2}&subject_token_type=urn:ietf:params:oauth:token-type:access_token"
            )),
    );
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    assert_eq!(view(&h, &id2)["reuse_count"], 1);
    assert_eq!(use_elsewhere(&h, &new2)["active"], true);
}

#[test]
fn ending_a_grace_early_keeps_the_marker_so_a_later_use_is_detected() {
    let mut h = harness();
    let (id, old) = create(&h, false);
    let new = rotate(&h, &id, Some(3600));
    // its holder ends the grace (RFC 7009)
    let (s, _, _) = h.call(
        &Request::new(Method::Post, "/oauth/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("client_id=pat_client&token={old}")),
    );
    assert_eq!(s, 200);
    assert!(h.backend.kv.borrow()[&hash(&old)].marker);
    h.isolate.take_events();
    h.now += 30;
    assert_eq!(use_elsewhere(&h, &old), inactive());
    assert_eq!(reuse_events(&h).len(), 1);
    assert_eq!(view(&h, &id)["reuse_count"], 1);
    assert_eq!(use_elsewhere(&h, &new)["active"], true);
}

#[test]
fn a_revocation_purges_every_marker_of_the_pat() {
    let h = harness();
    let (id, t0) = create(&h, false);
    let t1 = rotate(&h, &id, None);
    let t2 = rotate(&h, &id, Some(60));
    let t3 = rotate(&h, &id, None);
    let (_, other) = create(&h, false);
    assert_eq!(h.backend.kv.borrow().len(), 5, "3 old entries, 2 live");
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    assert_eq!(h.backend.kv.borrow().len(), 1, "only the other PAT's grant");
    for t in [&t0, &t1, &t2, &t3] {
        assert_eq!(use_elsewhere(&h, t), inactive());
    }
    assert_eq!(use_elsewhere(&h, &other)["active"], true);
    assert_eq!(
        view(&h, &id)["reuse_count"],
        0,
        "a revoked PAT detects nothing"
    );
}

#[test]
fn a_marker_left_behind_by_a_revocation_costs_one_d1_read_then_goes() {
    let mut h = harness();
    let (id, old) = create(&h, true);
    rotate(&h, &id, None);
    let marker = h.backend.kv.borrow()[&hash(&old)].clone();
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    // a late marker write (a deferred re-write racing the revocation) brings it back
    h.backend.kv.borrow_mut().insert(hash(&old), marker);
    h.now += 20;
    h.isolate.take_events();
    h.backend.take_counts();
    assert_eq!(use_elsewhere(&h, &old), inactive());
    assert!(
        reuse_events(&h).is_empty(),
        "nothing detected on a revoked PAT"
    );
    assert!(!h.backend.kv.borrow().contains_key(&hash(&old)));
    h.backend.take_counts();
    assert_eq!(use_elsewhere(&h, &old), inactive());
    assert_eq!(h.backend.take_counts().d1_query, 0);
}

/// A fault in every storage step of a detection: the request answers the old token inactive (or
/// 503 when D1 cannot be read), never active; one more use finishes the job.
#[test]
fn every_step_of_a_detection_survives_an_injected_fault() {
    let steps = [
        (Step::RetiredRead, Fault::Lost),
        (Step::TokenRead, Fault::Lost),
        (Step::ReuseRecord, Fault::Lost),
        (Step::ReuseRecord, Fault::LandedButFailed),
        (Step::TokenRevoke, Fault::Lost),
        (Step::TokenRevoke, Fault::LandedButFailed),
        (Step::KvPut, Fault::Lost),
        (Step::KvPut, Fault::LandedButFailed),
        (Step::KvDelete, Fault::Lost),
        (Step::KvDelete, Fault::LandedButFailed),
    ];
    for revoke_on_reuse in [false, true] {
        for (step, fault) in steps {
            let what = format!("{step:?} {fault:?} revoke_on_reuse={revoke_on_reuse}");
            let mut h = harness();
            let (id, old) = create(&h, revoke_on_reuse);
            let new = rotate(&h, &id, None);
            h.now += 1;
            h.backend.inject(step, fault);
            let first = use_elsewhere(&h, &old);
            assert_ne!(first["active"], true, "{what}: {first}");
            h.backend.faults.borrow_mut().clear();
            // one more use finishes what failed
            assert_eq!(use_elsewhere(&h, &old), inactive(), "{what}");
            let v = view(&h, &id);
            assert!(v["reuse_count"].as_i64() >= Some(1), "{what}: {v}");
            assert!(v["reuse_count"].as_i64() <= Some(2), "{what}: {v}");
            if revoke_on_reuse {
                assert_eq!(v["status"], "revoked", "{what}");
                assert_eq!(v["revoked_reason"], "reuse", "{what}");
                assert_eq!(use_elsewhere(&h, &new), inactive(), "{what}");
                assert_eq!(h.introspect(&new).1, inactive(), "{what}");
            } else {
                assert_eq!(v["status"], "active", "{what}");
                assert_eq!(use_elsewhere(&h, &new)["active"], true, "{what}");
            }
            // and from then on the old token is quiet
            h.backend.take_counts();
            assert_eq!(use_elsewhere(&h, &old), inactive(), "{what}");
            assert_eq!(h.backend.take_counts().d1_query, 0, "{what}");
        }
    }
}

/// A fault in the rotation's new step (the marker write): never a live old token past its trust
/// time, and once KV works again the next rotation brings the marker back.
#[test]
fn a_lost_marker_write_at_rotation_never_keeps_the_old_token_alive() {
    for fault in [Fault::Lost, Fault::LandedButFailed] {
        let mut h = harness();
        let (id, old) = create(&h, false);
        h.backend.inject(Step::KvPut, fault);
        let new = rotate(&h, &id, None);
        // Lost: the fallback delete removed the old grant; LandedButFailed: the marker is there
        assert_eq!(use_elsewhere(&h, &old), inactive(), "{fault:?}");
        assert_eq!(use_elsewhere(&h, &new)["active"], true, "{fault:?}");
        // both the marker and its fallback delete lost: the old grant lives until its trust time
        let (id2, old2) = create(&h, false);
        h.backend.inject(Step::KvPut, Fault::Lost);
        h.backend.inject(Step::KvDelete, Fault::Lost);
        let req = Request::new(Method::Post, &format!("/api/pats/{id2}/rotate"))
            .header("authorization", &format!("Bearer {}", user_jwt("alice")));
        let o = h.send(&req);
        assert_eq!(o.response.status, 201);
        // the deferred retries (a delete now, the marker again 10 s later) repair it
        h.run_deferred(&o);
        assert_eq!(use_elsewhere(&h, &old2), inactive(), "{fault:?}");
        assert!(h.backend.kv.borrow()[&hash(&old2)].marker, "{fault:?}");
        // and a use after that is detected
        h.now += 1;
        h.isolate.take_events();
        use_elsewhere(&h, &old2);
        assert_eq!(view(&h, &id2)["reuse_count"], 1, "{fault:?}");
    }
}

#[test]
fn the_option_is_strict_and_off_by_default() {
    let h = harness();
    for bad in [json!("yes"), json!(1), Value::Null] {
        let (s, v) = h.create(
            "alice",
            json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":1,"revoke_on_reuse": bad}),
        );
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["error"], "invalid_request");
    }
    let (s, v) = h.create(
        "alice",
        json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":1}),
    );
    assert_eq!(s, 201);
    assert_eq!(v["revoke_on_reuse"], false);
    let id = v["id"].as_str().expect("id");
    assert_eq!(view(&h, id)["revoke_on_reuse"], false);
    assert!(!h.backend.tokens.borrow()[0].revoke_on_reuse);
}

/// The gate shares the decision: a reuse through it is detected the same way (and refused 401).
#[test]
fn a_reuse_through_the_gate_is_detected_and_refused() {
    use crate::app::gate::{gate, GateAnswer, GateRequest};
    let mut h = harness();
    let (s, v, _) = h.call(
        &Request::new(Method::Put, "/admin/routes/demo")
            .header("authorization", &format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(
                json!({"path_prefix": "/gw/demo/", "upstream": "http://127.0.0.1:9000",
                       "resource": "demo_api",
                       "rules": [{"methods": ["GET"], "scopes": ["demo_api:read"]}]})
                .to_string(),
            ),
    );
    assert_eq!(s, 201, "{v}");
    let (id, old) = create(&h, true);
    let new = rotate(&h, &id, None);
    h.now += 1;
    let through_gate = |h: &Harness, token: &str| {
        let ctx = Ctx {
            cfg: &h.cfg,
            backend: &h.backend,
            isolate: &h.isolate,
            now: h.now,
        };
        let bearer = format!("Bearer {token}");
        let req = GateRequest {
            method: "GET",
            scheme: "https",
            authority: "api.example.com",
            path: "/gw/demo/x",
            query: None,
            authorization: Some(&bearer),
            cors: crate::gate::cors::CorsRequest::default(),
            client_ip: "203.0.113.9",
        };
        block_on(gate(&ctx, &req))
    };
    let answer = through_gate(&h, &old);
    let GateAnswer::Respond(outcome) = &answer else {
        panic!("refused, not forwarded: {answer:?}");
    };
    assert_eq!(outcome.response.status, 401);
    h.run_deferred(outcome);
    let v = view(&h, &id);
    assert_eq!(
        (v["status"].as_str(), v["reuse_count"].as_i64()),
        (Some("revoked"), Some(1))
    );
    assert_eq!(v["last_reuse"]["ip"], IP);
    assert!(matches!(
        through_gate(&h, &new),
        GateAnswer::Respond(ref o) if o.response.status == 401
    ));
}
