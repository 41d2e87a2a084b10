//! The natural end of a rotation's grace in the revocation feed: no write happens when a grace
//! runs out, and a location whose KV still serves the old token's grant as it was before the
//! rotation (its read cache, or a refill from a read made before it: trusted until its
//! `fresh_until`) must refuse the old token within 5 s of the grace's end all the same.

use super::feed::{assert_bound, grant_of, keep_in_kv, Location};
use super::*;
use crate::revocation::BOUND_MS;

/// Rotates `id` at `h.now` with a grace of `secs`: the new token.
fn rotate_with_grace(h: &Harness, id: &str, secs: i64) -> String {
    let req = Request::new(Method::Post, &format!("/api/pats/{id}/rotate"))
        .header("authorization", &format!("Bearer {}", user_jwt("alice")))
        .header("content-type", "application/json")
        .body(json!({ "grace_seconds": secs }).to_string());
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().expect("token").to_owned()
}

#[test]
fn the_end_of_a_short_grace_reaches_a_location_serving_the_grant_from_before_the_rotation() {
    for grace in [1, 3, 30, 600] {
        let mut h = Harness::new();
        let (id, token) = h.pat("alice", &["demo_api:read"]);
        // the grant as every location read it before the rotation (no grace end in it)
        let before = grant_of(&h, &token);
        let (b, c) = (Location::new(), Location::new());
        for l in [&b, &c] {
            assert!(l.active(&h, &token, h.now * 1000, true));
        }
        h.now += 1;
        let next = rotate_with_grace(&h, &id, grace);
        let end_ms = (h.now + grace) * 1000;
        // during the grace the old token works everywhere, B's stale grant or not
        keep_in_kv(&h, &token, &before);
        assert!(
            c.active(&h, &token, end_ms - 1_000, true),
            "grace {grace}: in grace"
        );
        // C's view refreshed after the grace's end (not too old, which would ask D1): refused
        // by the view alone although KV serves the grant from before the rotation
        let t = end_ms + 2_600;
        let refreshed = block_on(crate::app::revocations::refresh(&h.backend, &c.isolate, t));
        assert!(refreshed.is_ok());
        keep_in_kv(&h, &token, &before);
        h.backend.take_counts();
        assert!(
            !c.active(&h, &token, t + 100, false),
            "grace {grace}: refused at C"
        );
        assert_eq!(
            h.backend.take_counts().d1_query,
            0,
            "grace {grace}: by the view"
        );
        // B asked every 250 ms from the end on: inactive within the bound
        if grace < 5 {
            assert_bound(&h, &b, &token, &before, end_ms);
        }
        keep_in_kv(&h, &token, &before);
        assert!(
            !b.active(&h, &token, end_ms + BOUND_MS, true),
            "grace {grace}"
        );
        // the new token is not touched
        h.now = end_ms / 1000 + 10;
        assert_eq!(h.introspect(&next).1["active"], true, "grace {grace}");
    }
}
