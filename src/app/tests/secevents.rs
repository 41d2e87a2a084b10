//! Revocations pushed to Security Event Token receivers through the webhook queue: registration
//! (hostile input refused), one SET per (revocation, receiver) at the fan-out and none for
//! anything else, what a receiver verifies (signature with patgate's keys, `typ`, `iss`, `aud`,
//! `jti` unique, no `exp`), the CAEP events and the token-hash consent, retries that repeat the
//! same SET, and a 400 answer that is final.

use super::*;
use crate::app::webhooks::{deliver, fan_out, Verdict};
use crate::jose::secevent::verify_for_tests;
use crate::webhook::Delivery;

const CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
const SESSION: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

fn admin(method: Method, path: &str, body: Option<Value>) -> Request {
    let mut r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    r
}

fn receiver(h: &Harness, url: &str, audience: &str, token_hash: bool) -> String {
    let (s, v, _) = h.call(&admin(
        Method::Post,
        "/admin/webhooks",
        Some(json!({"url": url, "format": "secevent", "audience": audience, "token_hash": token_hash})),
    ));
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (
            v["format"].as_str(),
            v["audience"].as_str(),
            v["token_hash"].as_bool()
        ),
        (Some("secevent"), Some(audience), Some(token_hash))
    );
    assert!(v.get("secret").is_none(), "receivers verify with the JWKS");
    v["id"].as_str().expect("id").to_owned()
}

/// Fans out what happened since the last call; returns the new queue messages.
fn fanned(h: &Harness) -> Vec<Delivery> {
    let events = h.isolate.take_events();
    let before = h.backend.queue.borrow().len();
    block_on(fan_out(&h.cfg, &h.backend, &h.isolate, h.now, &events));
    h.backend.queue.borrow()[before..].to_vec()
}

/// A clock standing still and the jitter that keeps the schedule's own delays.
const SENDING: crate::app::webhooks::Sending<'static> = crate::app::webhooks::Sending {
    millis: &|| 0.0,
    jitter: 1 << 31,
};

fn deliver_one(h: &Harness, d: &Delivery, attempt: u32) -> Verdict {
    let body = serde_json::to_string(d).expect("json");
    block_on(deliver(&h.cfg, &h.backend, &body, attempt, h.now, &SENDING)).verdict
}

/// What a receiver checks of a SET; returns its claims.
fn verified(h: &Harness, set: &str, audience: &str) -> Value {
    let keys = h.cfg.signing_keys.as_ref().expect("keys");
    let claims = verify_for_tests(keys, set).expect("a valid SET");
    assert_eq!(claims["iss"], h.cfg.issuer);
    assert_eq!(claims["aud"], audience);
    assert!(claims.get("exp").is_none(), "a SET has no exp");
    assert_eq!(claims["iat"], h.now);
    claims
}

fn sha256_hex(token: &str) -> String {
    use sha2::Digest as _;
    crate::encoding::hex(&sha2::Sha256::digest(token.as_bytes()))
}

#[test]
fn each_revocation_reaches_each_receiver_as_one_signed_set() {
    let h = Harness::new();
    let one = receiver(
        &h,
        "https://one.example/set",
        "https://api.one.example",
        true,
    );
    let two = receiver(
        &h,
        "https://two.example/set",
        "https://api.two.example",
        false,
    );
    let standard = {
        let (s, v, _) = h.call(&admin(
            Method::Post,
            "/admin/webhooks",
            Some(json!({"url": "https://hooks.example/h", "event_types": ["*"]})),
        ));
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().expect("id").to_owned()
    };
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    assert!(
        fanned(&h).iter().all(|d| d.endpoint == standard),
        "creating sends no SET"
    );
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    let queued = fanned(&h);
    let to = |ep: &str| -> Vec<&Delivery> { queued.iter().filter(|d| d.endpoint == ep).collect() };
    assert_eq!(
        to(&standard).len(),
        1,
        "the standard endpoint: pat.revoked only"
    );
    assert_eq!(to(&standard)[0].event_type, "pat.revoked");
    let (d1, d2) = (to(&one), to(&two));
    assert_eq!((d1.len(), d2.len()), (1, 1), "one SET per receiver");
    let c1 = verified(&h, &d1[0].payload, "https://api.one.example");
    let c2 = verified(&h, &d2[0].payload, "https://api.two.example");
    assert_eq!(
        c1["jti"], d1[0].msg_id,
        "the SET's jti is the delivery's id"
    );
    assert_ne!(c1["jti"], c2["jti"], "jti unique per SET");
    assert_eq!(c1["txn"], c2["txn"], "one revocation, one txn");
    assert_eq!(c1["sub_id"], json!({"format": "opaque", "id": id}));
    let e1 = &c1["events"][CHANGE];
    assert_eq!(e1["change_type"], "revoke");
    assert_eq!(e1["credential_type"], "bearer-token");
    assert_eq!(e1["initiating_entity"], "user");
    assert_eq!(e1["token_hash"], sha256_hex(&token), "consented");
    assert!(
        c2["events"][CHANGE].get("token_hash").is_none(),
        "no consent, no hash"
    );
    // delivered as RFC 8935 asks
    h.backend.post_answers.borrow_mut().push_back(Ok(202));
    assert_eq!(deliver_one(&h, d1[0], 1), Verdict::Ack);
    let post = h.backend.posts.borrow()[0].clone();
    assert_eq!(post.url, "https://one.example/set");
    assert_eq!(
        post.header("content-type"),
        Some("application/secevent+jwt")
    );
    assert_eq!(post.body, d1[0].payload);
    assert!(post.header("webhook-signature").is_none());
}

#[test]
fn rotations_grace_ends_jwts_and_disabled_clients_are_told_too() {
    let h = Harness::new();
    let ep = receiver(&h, "https://one.example/set", "aud-1", true);
    let (id, first) = h.pat("alice", &["demo_api:read"]);
    let rotate = |grace: i64| {
        let req = Request::new(Method::Post, &format!("/api/pats/{id}/rotate"))
            .header("authorization", &format!("Bearer {}", user_jwt("alice")))
            .header("content-type", "application/json")
            .body(json!({"grace_seconds": grace}).to_string());
        let (s, v, _) = h.call(&req);
        assert_eq!(s, 201, "{v}");
        v["token"].as_str().expect("token").to_owned()
    };
    let second = rotate(0);
    let sets = fanned(&h);
    assert_eq!(sets.len(), 1);
    let c = verified(&h, &sets[0].payload, "aud-1");
    assert_eq!(c["events"][CHANGE]["change_type"], "update");
    assert_eq!(c["events"][CHANGE]["token_hash"], sha256_hex(&first));
    let _third = rotate(3600);
    let c = verified(&h, &fanned(&h)[0].payload, "aud-1");
    assert_eq!(c["events"][CHANGE]["token_hash"], sha256_hex(&second));
    assert!(c["events"][CHANGE]["grace_until"].is_i64());
    // the grace ended by its holder (RFC 7009)
    let end = Request::new(Method::Post, "/oauth/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("client_id=pat_client&token={second}"));
    assert_eq!(h.call(&end).0, 200);
    let sets = fanned(&h);
    assert_eq!(sets.len(), 1, "the end of the grace");
    let c = verified(&h, &sets[0].payload, "aud-1");
    assert_eq!(c["events"][CHANGE]["token_hash"], sha256_hex(&second));
    // a client disabled by an operator: session-revoked for the application
    let (s, _, _) = h.call(&admin(
        Method::Patch,
        "/admin/clients/demo_client",
        Some(json!({"enabled": false})),
    ));
    assert_eq!(s, 200);
    let sets = fanned(&h);
    assert_eq!(sets.len(), 1);
    let c = verified(&h, &sets[0].payload, "aud-1");
    assert_eq!(
        c["sub_id"],
        json!({"format": "complex", "application": {"format": "opaque", "id": "demo_client"}})
    );
    assert_eq!(c["events"][SESSION]["initiating_entity"], "admin");
    // re-enabling it tells nobody
    let (s, _, _) = h.call(&admin(
        Method::Patch,
        "/admin/clients/demo_client",
        Some(json!({"enabled": true})),
    ));
    assert_eq!(s, 200);
    assert!(fanned(&h).is_empty());
    assert_eq!(ep.len(), 19);
}

#[test]
fn a_retry_repeats_the_same_set_and_a_400_is_final() {
    let h = Harness::new();
    receiver(&h, "https://one.example/set", "aud-1", false);
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    fanned(&h);
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice")
            .0,
        204
    );
    let d = fanned(&h).remove(0);
    h.backend.post_answers.borrow_mut().push_back(Ok(500));
    assert!(matches!(deliver_one(&h, &d, 1), Verdict::Retry(_)));
    h.backend.post_answers.borrow_mut().push_back(Ok(202));
    assert_eq!(deliver_one(&h, &d, 2), Verdict::Ack);
    {
        let posts = h.backend.posts.borrow();
        assert_eq!(posts.len(), 2);
        assert_eq!(posts[0].body, posts[1].body, "the same SET, the same jti");
    }
    // refused by the receiver (RFC 8935 2.3): not sent again
    h.backend.post_answers.borrow_mut().push_back(Ok(400));
    let body = serde_json::to_string(&d).expect("json");
    let d = block_on(deliver(&h.cfg, &h.backend, &body, 1, h.now, &SENDING));
    let (verdict, log) = (d.verdict, d.log);
    assert_eq!(verdict, Verdict::Ack);
    assert_eq!(log.event, "webhook.dropped");
}

#[test]
fn without_signing_keys_no_set_is_queued_and_it_is_said() {
    let mut h = Harness::new();
    receiver(&h, "https://one.example/set", "aud-1", false);
    h.cfg.signing_keys = None;
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    fanned(&h);
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice")
            .0,
        204
    );
    let events = h.isolate.take_events();
    let out = block_on(fan_out(&h.cfg, &h.backend, &h.isolate, h.now, &events));
    assert_eq!(out.queued, 0);
    assert!(out
        .warnings
        .iter()
        .any(|w| w.line().contains("JWT_SIGNING_KEYS")));
}

#[test]
fn hostile_receiver_registrations_are_refused() {
    let h = Harness::new();
    for bad in [
        json!({"url": "https://r.example/x", "format": "secevent"}),
        json!({"url": "https://r.example/x", "format": "secevent", "audience": ""}),
        json!({"url": "https://r.example/x", "format": "secevent", "audience": "a\u{0}b"}),
        json!({"url": "https://r.example/x", "format": "secevent", "audience": "a".repeat(513)}),
        json!({"url": "https://r.example/x", "format": "secevent", "audience": "a", "event_types": ["pat.revoked"]}),
        json!({"url": "https://r.example/x", "format": "carrier-pigeon", "audience": "a"}),
        json!({"url": "https://r.example/x", "format": "secevent", "audience": "a", "token_hash": "yes"}),
        json!({"url": "https://r.example/x", "event_types": ["*"], "audience": "a"}),
        json!({"url": "https://r.example/x", "event_types": ["*"], "token_hash": true}),
        json!({"url": "https://10.0.0.1/hook", "format": "secevent", "audience": "a"}),
        json!({"url": "https://r.example/x", "format": 7, "audience": "a"}),
        json!({"url": "https://r.example/x"}),
    ] {
        let (s, v, _) = h.call(&admin(Method::Post, "/admin/webhooks", Some(bad.clone())));
        assert_eq!(s, 400, "{bad} -> {v}");
    }
    assert!(h.backend.webhooks.borrow().is_empty());
}

/// Every way an authorization grant ends tells each receiver once: CAEP `session-revoked` for
/// the grant (`session`), its app (`application`) and its user, and who caused it.
#[test]
fn every_end_of_a_grant_is_one_session_revoked_set() {
    use super::feed_grants::revoke_on_page;
    use super::flow::{query, APP};
    type End = fn(&mut Harness, &str, &str, &str);
    let ends: [(&str, End, &str); 6] = [
        (
            "the token page",
            |h, id, _, _| {
                assert_eq!(revoke_on_page(h, "alice", id), 303);
            },
            "user",
        ),
        (
            "the admin API",
            |h, id, _, _| {
                let req = admin(Method::Delete, &format!("/admin/grants/{id}"), None);
                assert_eq!(h.call(&req).0, 204);
            },
            "admin",
        ),
        (
            "RFC 7009 of its refresh token",
            |h, _, _, rt| {
                let (s, _, _) = h.call(
                    &Request::new(Method::Post, "/oauth/revoke")
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(format!("token={rt}&client_id={APP}")),
                );
                assert_eq!(s, 200);
            },
            "user",
        ),
        (
            "a rotated-away refresh token presented",
            |h, _, _, rt| {
                // a rotation past its retry grace, then the old refresh token again
                let (s, v) = h.refresh(rt);
                assert_eq!(s, 200, "{v}");
                assert!(fanned(h).is_empty(), "a rotation ends no grant");
                h.now += h.cfg.refresh.retry_grace_secs + 1;
                assert_eq!(h.refresh(rt).0, 400);
            },
            "policy",
        ),
        (
            "its authorization code replayed",
            |h, _, code, _| {
                assert_eq!(h.exchange(code).0, 400);
            },
            "policy",
        ),
        (
            "a new grant replacing it",
            |h, _, _, _| {
                let code = h.code("alice", &query(&[]));
                assert_eq!(h.exchange(&code).0, 200);
            },
            "system",
        ),
    ];
    for (name, end, initiator) in ends {
        let mut h = Harness::flow();
        receiver(&h, "https://one.example/set", "aud-1", true);
        let code = h.code("alice", &query(&[]));
        let (s, v) = h.exchange(&code);
        assert_eq!(s, 200, "{v}");
        let rt = v["refresh_token"].as_str().expect("rt").to_owned();
        let id = h.backend.flow.grants.borrow()[0].id.clone();
        assert!(fanned(&h).is_empty(), "{name}: a new grant sends no SET");
        end(&mut h, &id, &code, &rt);
        let sets = fanned(&h);
        assert_eq!(sets.len(), 1, "{name}: one SET");
        let claims = verified(&h, &sets[0].payload, "aud-1");
        assert_eq!(
            claims["sub_id"],
            json!({"format": "complex", "session": {"format": "opaque", "id": id},
                "application": {"format": "opaque", "id": APP},
                "user": {"format": "opaque", "id": "alice"}}),
            "{name}"
        );
        let event = &claims["events"][SESSION];
        assert_eq!(event["initiating_entity"], initiator, "{name}");
        assert_eq!(event["event_timestamp"], h.now, "{name}");
        assert!(event.get("change_type").is_none() && event.get("token_hash").is_none());
        // ending it again tells nobody
        let again = admin(Method::Delete, &format!("/admin/grants/{id}"), None);
        assert_eq!(h.call(&again).0, 204, "{name}");
        assert!(fanned(&h).is_empty(), "{name}: once");
    }
}
