//! The cap on an isolate's concurrent D1 fallbacks while its view of the revocation feed is too
//! old (the feed unreadable): past [`MAX_FALLBACKS`] under way, a request is answered as when D1
//! cannot be reached (fail open: what KV says, `max-age=0`) instead of adding to D1's load.

#![allow(clippy::many_single_char_names)]

use super::feed::{grant_of, keep_in_kv, Location};
use super::*;
use crate::app::revocations::{fallback, MAX_FALLBACKS};

#[test]
fn past_the_cap_of_d1_fallbacks_a_request_is_answered_as_if_d1_were_unreachable() {
    let h = Harness::new();
    let (_, live) = h.pat("alice", &["demo_api:read"]);
    let (id, doomed) = h.pat("alice", &["demo_api:read"]);
    let kept = grant_of(&h, &doomed);
    let b = Location::new();
    let t0 = NOW * 1000;
    for t in [&live, &doomed] {
        assert!(b.active(&h, t, t0, true));
    }
    h.backend.break_feed.set(true);
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    let t = t0 + 10_000; // B's view is too old and cannot be refreshed
                         // the other requests under way in this isolate hold every place
    let held: Vec<_> = (0..MAX_FALLBACKS)
        .map(|_| fallback(&b.isolate).expect("a place"))
        .collect();
    assert!(fallback(&b.isolate).is_none(), "at the cap");
    h.backend.take_counts();
    keep_in_kv(&h, &doomed, &kept);
    let o = b.introspect(&h, &doomed, t, false);
    assert_eq!(
        o.response.json_body()["active"],
        true,
        "fail open: what KV says"
    );
    assert_eq!(
        o.response.header("cache-control"),
        Some("private, max-age=0")
    );
    let o = b.introspect(&h, &live, t, false);
    assert_eq!(o.response.json_body()["active"], true);
    assert_eq!(
        h.backend.take_counts().d1_query,
        0,
        "no D1 read past the cap"
    );
    // a place frees: D1 answers again, exactly
    drop(held);
    keep_in_kv(&h, &doomed, &kept);
    let o = b.introspect(&h, &doomed, t + 100, false);
    assert_eq!(o.response.json_body()["active"], false, "read from D1");
    let o = b.introspect(&h, &live, t + 100, false);
    assert_eq!(
        o.response.header("cache-control"),
        Some("private, max-age=5")
    );
    assert!(h.backend.take_counts().d1_query > 0);
    assert_eq!(b.isolate.fallbacks().get(), 0, "every place given back");
}

#[test]
fn a_client_jwt_past_the_cap_is_answered_as_if_d1_were_unreachable() {
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
    let loc = Location::new();
    let t0 = NOW * 1000;
    assert!(loc.active(&h, &jwt, t0, true));
    h.backend.break_feed.set(true);
    let revoke = Request::new(Method::Post, "/oauth/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &auth)
        .body(format!("token={jwt}"));
    assert_eq!(h.call(&revoke).0, 200);
    h.backend.denied.borrow_mut().clear(); // this location's KV never saw the denylist entry
    let held: Vec<_> = (0..MAX_FALLBACKS)
        .map(|_| fallback(&loc.isolate).expect("a place"))
        .collect();
    h.backend.take_counts();
    let o = loc.introspect(&h, &jwt, t0 + 10_000, false);
    assert_eq!(o.response.json_body()["active"], true, "fail open");
    assert_eq!(
        o.response.header("cache-control"),
        Some("private, max-age=0")
    );
    assert_eq!(
        h.backend.take_counts().d1_query,
        0,
        "no D1 read past the cap"
    );
    drop(held);
    assert!(
        !loc.active(&h, &jwt, t0 + 10_100, false),
        "D1's feed answers"
    );
}
