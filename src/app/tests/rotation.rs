//! What an owner's rotations cost and how they fail: rate limited per PAT, a bounded number of
//! KV writes per rotation however many came before (no old token ever becomes active), and every
//! failure around the D1 commit answered 503 (or, when the write landed, with the token) with
//! the PAT still rotatable.

use super::*;
use crate::store::Limit;
use crate::testing::{Fault, Step};

fn rotate_req(id: &str) -> Request {
    Request::new(Method::Post, &format!("/api/pats/{id}/rotate"))
        .header("authorization", &format!("Bearer {}", user_jwt("alice")))
}

fn self_rotate_req(token: &str) -> Request {
    Request::new(Method::Post, "/api/pats/self/rotate")
        .header("authorization", &format!("Bearer {token}"))
}

/// Rotates `id` and returns the new token.
fn rotate(h: &Harness, id: &str) -> String {
    let (s, v, _) = h.call(&rotate_req(id));
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().expect("token").to_owned()
}

fn record(h: &Harness, id: &str) -> crate::model::TokenRecord {
    h.backend
        .tokens
        .borrow()
        .iter()
        .find(|t| t.id == id)
        .expect("record")
        .clone()
}

fn inactive() -> Value {
    json!({"active": false})
}

#[test]
fn rotations_are_rate_limited_per_pat() {
    let h = Harness::new();
    h.backend
        .limits
        .borrow_mut()
        .insert(Limit::RotationsPerPat, 3);
    let (s, v) = h.create(
        "alice",
        json!({"name":"ci","scopes":["demo_api:read"],"expires_in_days":30,
               "allow_self_rotation": true}),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    let t1 = rotate(&h, &id);
    // Self-rotation counts against the same budget.
    let (s, v, _) = h.call(&self_rotate_req(&t1));
    assert_eq!(s, 201, "{v}");
    let t2 = v["token"].as_str().expect("token").to_owned();
    assert_eq!(h.introspect(&t2).1["active"], true);
    let token = rotate(&h, &id);
    let generation = record(&h, &id).generation;
    let (s, v, o) = h.call(&rotate_req(&id));
    assert_eq!((s, v["error"].as_str()), (429, Some("rate_limited")), "{v}");
    assert_eq!(o.response.header("retry-after"), Some("60"));
    let (s, _, _) = h.call(&self_rotate_req(&token));
    assert_eq!(s, 429);
    // Nothing changed: the last token works, no rotation happened.
    assert_eq!(record(&h, &id).generation, generation);
    assert_eq!(h.introspect(&token).1["active"], true);
    // Another PAT has its own budget.
    let (other, _) = h.pat("alice", &["demo_api:read"]);
    rotate(&h, &other);
    // The period passes (the in-memory limiter counts forever: its period ends here).
    let mut h = h;
    h.now += 60;
    h.backend.limit_counts.borrow_mut().clear();
    let newest = rotate(&h, &id);
    assert_eq!(h.introspect_elsewhere(&newest)["active"], true);
    assert_eq!(h.introspect_elsewhere(&token), inactive());
}

#[test]
fn each_rotation_writes_a_bounded_number_of_kv_entries_and_no_old_token_comes_back() {
    let max = crate::app::tokens::MAX_MARKED_PER_ROTATION;
    let mut h = Harness::new();
    let (id, first) = h.pat("alice", &["demo_api:read"]);
    let mut tokens = vec![first];
    let mut puts = Vec::new();
    // Many rotations within GRANT_CACHE_SECONDS: without a bound, the n-th would rewrite n
    // markers (n squared KV writes in all).
    for i in 0..(4 * max) {
        h.now = NOW + i64::try_from(i).expect("i") * 10;
        h.backend.take_counts();
        let o = h.send(&rotate_req(&id));
        assert_eq!(o.response.status, 201);
        let immediate = h.backend.take_counts().kv_put;
        h.run_deferred(&o);
        let later = h.backend.take_counts().kv_put;
        puts.push((immediate, later));
        tokens.push(
            o.response.json_body()["token"]
                .as_str()
                .expect("token")
                .to_owned(),
        );
    }
    let bound = u32::try_from(max).expect("max");
    for (i, (now, later)) in puts.iter().enumerate() {
        // the new grant and at most `max` markers now; the markers again after 10 s
        assert!(*now <= 1 + bound, "rotation {i}: {now} KV writes");
        assert!(*later <= bound, "rotation {i}: {later} deferred KV writes");
    }
    assert_eq!(
        puts.last().map(|p| p.0),
        Some(1 + bound),
        "the cap is reached"
    );
    // Every rotated-away token is inactive, at once and after every KV trust time ran out.
    let (newest, old) = tokens.split_last().expect("tokens");
    for t in old {
        assert_eq!(h.introspect_elsewhere(t), inactive());
    }
    assert_eq!(h.introspect_elsewhere(newest)["active"], true);
    h.now += h.cfg.grant_cache_secs + 1;
    h.backend.expire_kv(h.now);
    for t in old {
        assert_eq!(h.introspect_elsewhere(t), inactive());
    }
    // The oldest token, whose marker the last rotations did not rewrite: its use is a detected
    // reuse (its marker sent it to D1), not an active token.
    let _ = h.isolate.take_events();
    assert_eq!(h.introspect_elsewhere(&old[0]), inactive());
    assert_eq!(h.introspect_elsewhere(newest)["active"], true);
    assert!(record(&h, &id).reuse.is_some(), "reuse recorded");
}

/// A marker lost (write and fallback delete) at one rotation is repaired by the next ones while
/// the hash is among the most recent; an older one keeps what its own rotation wrote.
#[test]
fn a_lost_marker_is_rewritten_by_the_next_rotation() {
    let h = Harness::new();
    let (id, first) = h.pat("alice", &["demo_api:read"]);
    h.backend.after_step(Step::TokenRotate, |b| {
        b.inject(Step::KvPut, Fault::Lost);
        b.inject(Step::KvDelete, Fault::Lost);
    });
    // the deferred repair is lost too (the isolate died)
    assert_eq!(h.send(&rotate_req(&id)).response.status, 201);
    assert_eq!(
        h.introspect_elsewhere(&first)["active"],
        true,
        "the old grant survived in KV"
    );
    rotate(&h, &id);
    assert_eq!(h.introspect_elsewhere(&first), inactive());
}

#[test]
fn a_kv_write_failing_before_d1_changes_nothing_and_a_retry_works() {
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    let before = record(&h, &id);
    h.backend.inject(Step::KvPut, Fault::Lost);
    h.backend.inject(Step::KvPut, Fault::LandedButFailed);
    let (s, v, _) = h.call(&rotate_req(&id));
    assert_eq!(
        (s, v["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    let after = record(&h, &id);
    assert_eq!(
        (after.hash, after.generation),
        (before.hash, before.generation)
    );
    assert_eq!(h.introspect_elsewhere(&old)["active"], true);
    let new = rotate(&h, &id);
    assert_eq!(h.introspect_elsewhere(&new)["active"], true);
    assert_eq!(h.introspect_elsewhere(&old), inactive());
}

#[test]
fn a_lost_d1_rotation_changes_nothing_and_leaves_no_grant_behind() {
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    let before = record(&h, &id);
    h.backend.inject(Step::TokenRotate, Fault::Lost);
    let (s, v, _) = h.call(&rotate_req(&id));
    assert_eq!(
        (s, v["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    assert_eq!(record(&h, &id).hash, before.hash);
    assert_eq!(h.introspect_elsewhere(&old)["active"], true);
    assert_eq!(
        h.backend.kv.borrow().len(),
        1,
        "only the current token's grant"
    );
    let new = rotate(&h, &id);
    assert_eq!(h.introspect_elsewhere(&new)["active"], true);
    assert_eq!(h.introspect_elsewhere(&old), inactive());
}

#[test]
fn a_d1_rotation_that_landed_but_reported_an_error_returns_the_token() {
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    h.backend.inject(Step::TokenRotate, Fault::LandedButFailed);
    let (s, v, _) = h.call(&rotate_req(&id));
    assert_eq!(s, 201, "{v}");
    let new = v["token"].as_str().expect("token");
    assert_eq!(record(&h, &id).generation, 1);
    assert_eq!(h.introspect_elsewhere(new)["active"], true);
    assert_eq!(h.introspect_elsewhere(&old), inactive());
}

#[test]
fn an_unknown_d1_outcome_is_a_503_and_the_owner_can_rotate_again() {
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    h.backend.inject(Step::TokenRotate, Fault::LandedButFailed);
    h.backend.inject(Step::TokenRead, Fault::Lost);
    let (s, v, _) = h.call(&rotate_req(&id));
    assert_eq!(
        (s, v["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    // It landed: the old token is dead (never left live in KV), the new one was never shown.
    assert_eq!(h.introspect_elsewhere(&old), inactive());
    assert_eq!(record(&h, &id).generation, 1);
    // The owner rotates again: the PAT works again.
    let new = rotate(&h, &id);
    assert_eq!(h.introspect_elsewhere(&new)["active"], true);
    assert_eq!(h.introspect_elsewhere(&old), inactive());
    assert_eq!(record(&h, &id).generation, 2);
}

#[test]
fn kv_failing_after_the_d1_commit_still_returns_the_token() {
    // KV's per-request limit reached (or KV down) right after D1 rotated: the new token's
    // grant was written before, the rest is retried after the response.
    let h = Harness::new();
    let (id, old) = h.pat("alice", &["demo_api:read"]);
    h.backend
        .after_step(Step::TokenRotate, |b| b.break_kv.set(true));
    let o = h.send(&rotate_req(&id));
    assert_eq!(o.response.status, 201, "{:?}", o.response.json_body());
    let new = o.response.json_body()["token"]
        .as_str()
        .expect("token")
        .to_owned();
    h.backend.break_kv.set(false);
    h.run_deferred(&o);
    assert_eq!(h.introspect_elsewhere(&new)["active"], true);
    assert_eq!(h.introspect_elsewhere(&old), inactive());
    assert_eq!(h.introspect(&old).1, inactive(), "in this isolate too");
}
