//! The administrators' token inventory (`GET /admin/pats`) and their revocation with a reason
//! (`POST /admin/pats/{id}/revoke`): filters, paging, hostile parameters, forged ids, and
//! injected failures of the revocation's D1 write.

use super::*;
use crate::testing::{Fault, Step};

fn admin(method: Method, path: &str, body: Option<&str>) -> Request {
    let r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    match body {
        Some(b) => r
            .header("content-type", "application/json")
            .body(b.to_owned()),
        None => r,
    }
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["pats"]
        .as_array()
        .expect("pats")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn the_inventory_filters_by_user_status_and_scope_and_pages_to_the_end() {
    let mut h = Harness::new();
    let (a1, _) = h.pat("alice", &["demo_api:read"]);
    let (a2, _) = h.pat("alice", &["demo_api:read", "demo_api:write"]);
    let (b1, _) = h.pat("bob", &["demo_api:read"]);
    h.now += 1;
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{b1}"), "bob");
    assert_eq!(s, 204);
    let (s, v, _) = h.call(&admin(Method::Get, "/admin/pats", None));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["total"], 3);
    assert_eq!(ids(&v), sorted(vec![a1.clone(), a2.clone(), b1.clone()]));
    let (_, v, _) = h.call(&admin(Method::Get, "/admin/pats?user=alice", None));
    assert_eq!(ids(&v), sorted(vec![a1.clone(), a2.clone()]));
    let (_, v, _) = h.call(&admin(Method::Get, "/admin/pats?status=revoked", None));
    assert_eq!(ids(&v), vec![b1.clone()]);
    assert_eq!(v["pats"][0]["status"], "revoked");
    assert_eq!(v["pats"][0]["user"], "bob");
    let (_, v, _) = h.call(&admin(
        Method::Get,
        "/admin/pats?scope=demo_api%3Awrite",
        None,
    ));
    assert_eq!(ids(&v), vec![a2.clone()]);
    let (_, v, _) = h.call(&admin(Method::Get, "/admin/pats?user=nobody", None));
    assert_eq!((v["total"].as_u64(), ids(&v).len()), (Some(0), 0));
    // one a page, newest first, to the end; the total stays the count of every page
    let mut seen = Vec::new();
    let mut path = "/admin/pats?limit=1".to_owned();
    loop {
        let (s, v, _) = h.call(&admin(Method::Get, &path, None));
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["total"], 3);
        seen.extend(ids(&v));
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/admin/pats?limit=1&cursor={c}"),
            None => break,
        }
        assert!(seen.len() <= 3, "pages end");
    }
    assert_eq!(sorted(seen), sorted(vec![a1, a2, b1]));
    // a view never holds the token or its hash
    let (_, v, _) = h.call(&admin(Method::Get, "/admin/pats", None));
    let text = v.to_string();
    assert!(!text.contains("hash") && !text.contains("pgp_"), "{text}");
}

#[test]
fn bad_inventory_parameters_are_400_and_forged_ids_404() {
    let h = Harness::new();
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    let long = "u".repeat(256);
    for q in [
        "limit=0",
        "limit=101",
        "limit=99999999999999999999",
        "limit=-1",
        "limit=1.5",
        "status=deleted",
        "kind=everything",
        "leaked=yes",
        "sort=name",
        "order=sideways",
        "expiring_within_days=-1",
        "expiring_within_days=abc",
        "expiring_within_days=36601",
        "unused_for_days=%2B5",
        "unused_for_days=1e3",
        "user=a%0Ab",
        "client=%00",
        &format!("scope={long}"),
        "cursor=not-base64!",
        "cursor=Zm9v",
        "statuss=active",
        "user=a&user=b",
        "user=%FF",
    ] {
        let (s, v, _) = h.call(&admin(Method::Get, &format!("/admin/pats?{q}"), None));
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{q}: {v}"
        );
    }
    // a cursor of another sort order
    let (_, v, _) = h.call(&admin(Method::Get, "/admin/pats?limit=1", None));
    let _ = v;
    h.pat("alice", &["demo_api:read"]);
    let (_, v, _) = h.call(&admin(Method::Get, "/admin/pats?limit=1", None));
    let c = v["next_cursor"].as_str().expect("cursor").to_owned();
    let (s, _, _) = h.call(&admin(
        Method::Get,
        &format!("/admin/pats?sort=uses&cursor={c}"),
        None,
    ));
    assert_eq!(s, 400);
    for path in [
        "/admin/pats/nope".to_owned(),
        "/admin/pats/nope/usage".to_owned(),
        format!("/admin/pats/{id}x"),
        "/admin/pats/%2E%2E".to_owned(),
    ] {
        let (s, _, _) = h.call(&admin(Method::Get, &path, None));
        assert_eq!(s, 404, "{path}");
    }
    let (s, _, _) = h.call(&admin(
        Method::Post,
        "/admin/pats/nope/revoke",
        Some(r#"{"reason":"x"}"#),
    ));
    assert_eq!(s, 404);
    for days in ["0", "91", "x"] {
        let (s, _, _) = h.call(&admin(
            Method::Get,
            &format!("/admin/pats/{id}/usage?days={days}"),
            None,
        ));
        assert_eq!(s, 400, "{days}");
    }
    // without the admin token, or with a user's token: nothing
    let (s, _, _) = h.call(&Request::new(Method::Get, "/admin/pats"));
    assert_eq!(s, 401);
    let (s, _) = h.user_call(Method::Get, "/admin/pats", "alice");
    assert_eq!(s, 401);
    let (s, _, _) = h.call(&admin(Method::Delete, "/admin/pats", None));
    assert_eq!(s, 405);
    let (s, _, _) = h.call(&admin(
        Method::Get,
        &format!("/admin/pats/{id}/revoke"),
        None,
    ));
    assert_eq!(s, 405);
}

#[test]
fn an_admin_revocation_kills_the_token_at_once_and_its_owner_sees_the_reason() {
    let h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    assert_eq!(h.introspect(&token).1["active"], true);
    h.logged();
    let path = format!("/admin/pats/{id}/revoke");
    for bad in [
        r#"{"reason":""}"#.to_owned(),
        r#"{"reason":"   "}"#.to_owned(),
        format!(r#"{{"reason":"{}"}}"#, "r".repeat(501)),
        r#"{"reason":"a\u0000b"}"#.to_owned(),
        r#"{"reason":"x","extra":1}"#.to_owned(),
        r#"{"reason":5}"#.to_owned(),
        r#"["x"]"#.to_owned(),
        "{".to_owned(),
    ] {
        let (s, v, _) = h.call(&admin(Method::Post, &path, Some(&bad)));
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
    assert_eq!(
        h.introspect(&token).1["active"],
        true,
        "refused input revokes nothing"
    );
    let (s, v, _) = h.call(&admin(
        Method::Post,
        &path,
        Some(r#"{"reason":"left the company"}"#),
    ));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["revoked_reason"], "admin");
    assert_eq!(v["revoked_message"], "left the company");
    assert_eq!(h.introspect(&token).1, json!({"active": false}));
    let log = h.logged();
    assert!(
        log.contains(r#""event":"pat.revoked""#) && log.contains(r#""via":"admin""#),
        "{log}"
    );
    assert!(log.contains(r#""event":"admin.change""#), "{log}");
    let (_, mine) = h.user_call(Method::Get, &format!("/api/pats/{id}"), "alice");
    assert_eq!(mine["revoked_reason"], "admin");
    assert_eq!(mine["revoked_message"], "left the company");
    // a second revocation keeps the first reason
    let (s, v, _) = h.call(&admin(Method::Post, &path, Some(r#"{"reason":"other"}"#)));
    assert_eq!(
        (s, v["revoked_message"].as_str()),
        (200, Some("left the company"))
    );
}

#[test]
fn a_failed_revocation_write_is_503_and_a_retry_finishes_it() {
    let h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let (other, other_token) = h.pat("alice", &["demo_api:read"]);
    let body = Some(r#"{"reason":"compromised laptop"}"#);
    // lost: nothing changed in D1; the answer says so
    h.backend
        .faults
        .borrow_mut()
        .push((Step::TokenRevoke, Fault::Lost));
    let (s, v, _) = h.call(&admin(
        Method::Post,
        &format!("/admin/pats/{id}/revoke"),
        body,
    ));
    assert_eq!(s, 503, "{v}");
    assert!(h
        .backend
        .tokens
        .borrow()
        .iter()
        .any(|t| t.id == id && t.revoked_at.is_none()));
    let (s, v, _) = h.call(&admin(
        Method::Post,
        &format!("/admin/pats/{id}/revoke"),
        body,
    ));
    assert_eq!(
        (s, v["revoked_message"].as_str()),
        (200, Some("compromised laptop"))
    );
    assert_eq!(h.introspect(&token).1, json!({"active": false}));
    // landed but reported an error: the token is dead anyway (its KV entry went), the retry
    // answers with the recorded reason
    h.backend
        .faults
        .borrow_mut()
        .push((Step::TokenRevoke, Fault::LandedButFailed));
    let path = format!("/admin/pats/{other}/revoke");
    let (s, _, _) = h.call(&admin(Method::Post, &path, body));
    assert_eq!(s, 503);
    assert_eq!(h.introspect(&other_token).1, json!({"active": false}));
    let (s, v, _) = h.call(&admin(Method::Post, &path, body));
    assert_eq!((s, v["status"].as_str()), (200, Some("revoked")));
    assert_eq!(v["revoked_message"], "compromised laptop");
}
