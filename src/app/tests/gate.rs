//! The gate and `/admin/routes` over the in-memory backend: every check in order, the shared
//! decision, the identity it forwards, the route-table cache and storage failures.

#![allow(clippy::many_single_char_names, clippy::map_unwrap_or)]

use super::*;
use crate::app::gate::{gate, GateAnswer, GateRequest};
use crate::jose::{AccessTokenClaims, VerifyError};

const GATE_HOST: &str = "api.example.com";

fn admin(method: Method, path: &str, body: Option<Value>) -> Request {
    let mut r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    r
}

fn demo_route() -> Value {
    json!({
        "path_prefix": "/gw/demo/",
        "upstream": "http://127.0.0.1:9000/base",
        "resource": "demo_api",
        "rules": [
            {"methods": ["GET", "HEAD"], "scopes": ["demo_api:read"]},
            {"methods": ["POST"], "scopes": ["demo_api:write"]}
        ]
    })
}

impl Harness {
    fn with_route() -> Self {
        let h = Harness::new();
        let (s, v, _) = h.call(&admin(
            Method::Put,
            "/admin/routes/demo",
            Some(demo_route()),
        ));
        assert_eq!(s, 201, "{v}");
        h
    }

    fn gate_req(&self, method: &str, target: &str, auth: Option<&str>) -> GateAnswer {
        self.gate_at(GATE_HOST, method, target, auth)
    }

    fn gate_at(&self, host: &str, method: &str, target: &str, auth: Option<&str>) -> GateAnswer {
        let ctx = Ctx {
            cfg: &self.cfg,
            backend: &self.backend,
            isolate: &self.isolate,
            now: self.now,
            now_ms: self.now * 1000,
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let bearer = auth.map(|t| format!("Bearer {t}"));
        let req = GateRequest {
            method,
            scheme: "https",
            authority: host,
            path,
            query,
            authorization: bearer.as_deref(),
            cors: crate::gate::cors::CorsRequest::default(),
            client_ip: "203.0.113.9",
        };
        block_on(gate(&ctx, &req))
    }
}

fn respond(a: &GateAnswer) -> (u16, Value, &Response) {
    let r = a
        .response()
        .unwrap_or_else(|| panic!("expected an answer, got {a:?}"));
    (r.status, r.json_body(), r)
}

const METADATA: &str = "https://api.example.com/.well-known/oauth-protected-resource/gw/demo";

#[test]
fn no_token_is_a_401_challenge_without_error() {
    let h = Harness::with_route();
    for auth in [None, Some("")] {
        let a = h.gate_req("GET", "/gw/demo/x", auth);
        let (s, v, r) = respond(&a);
        assert_eq!(s, 401);
        assert_eq!(v["error"], "invalid_request");
        assert_eq!(
            r.header("www-authenticate"),
            Some(format!("Bearer realm=\"patgate\", scope=\"demo_api:read\", resource_metadata=\"{METADATA}\"").as_str())
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    // a token in the query string is not looked at
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    let a = h.gate_req("GET", &format!("/gw/demo/x?access_token={token}"), None);
    assert_eq!(respond(&a).0, 401);
    assert_eq!(respond(&a).1["error"], "invalid_request");
}

#[test]
fn invalid_expired_revoked_or_foreign_tokens_are_401_invalid_token() {
    let h = Harness::with_route();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let (_, foreign) = h.pat("alice", &["other_api:read"]);
    let expect_invalid = |h: &Harness, t: &str, method: &str| {
        let a = h.gate_req(method, "/gw/demo/x", Some(t));
        let (s, v, r) = respond(&a);
        assert_eq!(
            (s, v["error"].as_str()),
            (401, Some("invalid_token")),
            "{t}"
        );
        // the scopes the method needs, if any rule allows it
        let scope = if method == "GET" {
            ", scope=\"demo_api:read\""
        } else {
            ""
        };
        assert_eq!(
            r.header("www-authenticate"),
            Some(format!("Bearer realm=\"patgate\", error=\"invalid_token\"{scope}, resource_metadata=\"{METADATA}\"").as_str())
        );
    };
    expect_invalid(&h, "garbage", "GET");
    expect_invalid(&h, &format!("{token}x"), "GET");
    // the resource may not see it: inactive by the introspection scope rule
    expect_invalid(&h, &foreign, "GET");
    // token before method: an invalid token with a method no rule allows is still 401
    expect_invalid(&h, "garbage", "DELETE");
    // revoked: refused at once
    assert!(matches!(
        h.gate_req("GET", "/gw/demo/x", Some(&token)),
        GateAnswer::Forward(_)
    ));
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice")
            .0,
        204
    );
    expect_invalid(&h, &token, "GET");
    // expired
    let (_, token2) = h.pat("bob", &["demo_api:read"]);
    let mut h2 = h;
    h2.now += 31 * 86_400;
    expect_invalid(&h2, &token2, "GET");
}

#[test]
fn garbage_tokens_cost_no_storage_read() {
    let h = Harness::with_route();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    h.gate_req("GET", "/gw/demo/x", Some(&token)); // warm routes, resource, client
    h.backend.take_counts();
    for t in ["garbage", "pgp_short", &"x".repeat(200)] {
        assert_eq!(respond(&h.gate_req("GET", "/gw/demo/x", Some(t))).0, 401);
    }
    assert_eq!(h.backend.take_counts(), Counts::default());
}

#[test]
fn method_then_scope_checks() {
    let h = Harness::with_route();
    let (_, reader) = h.pat("alice", &["demo_api:read"]);
    let a = h.gate_req("DELETE", "/gw/demo/x", Some(&reader));
    let (s, v, r) = respond(&a);
    assert_eq!((s, v["error"].as_str()), (405, Some("method_not_allowed")));
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
    let a = h.gate_req("POST", "/gw/demo/x", Some(&reader));
    let (s, v, r) = respond(&a);
    assert_eq!((s, v["error"].as_str()), (403, Some("insufficient_scope")));
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!("Bearer realm=\"patgate\", error=\"insufficient_scope\", scope=\"demo_api:write\", resource_metadata=\"{METADATA}\"").as_str())
    );
    assert!(matches!(
        h.gate_req("HEAD", "/gw/demo/x", Some(&reader)),
        GateAnswer::Forward(_)
    ));
}

fn forward(a: GateAnswer) -> crate::app::gate::Forward {
    match a {
        GateAnswer::Forward(f) => f,
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn b64_json(part: &str) -> Value {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

#[test]
fn an_accepted_request_is_forwarded_with_the_callers_identity() {
    let h = Harness::with_route();
    let (id, token) = h.pat(
        "alice",
        &["demo_api:read", "demo_api:write", "other_api:read"],
    );
    let f = forward(h.gate_req("GET", "/gw/demo/x/y.json?b=2&a=1", Some(&token)));
    assert_eq!(f.url, "http://127.0.0.1:9000/base/x/y.json?b=2&a=1");
    let header = |n: &str| {
        f.identity
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {n}"))
    };
    assert_eq!(header("x-patgate-subject"), "alice");
    assert_eq!(header("x-patgate-client-id"), "pat_client");
    // the resource-visible scopes only
    assert_eq!(header("x-patgate-scope"), "demo_api:read demo_api:write");
    assert_eq!(header("x-patgate-token-id"), id);
    // last use recorded as for introspection
    assert!(f
        .deferred
        .iter()
        .any(|d| matches!(d, Deferred::RecordUse(r) if r.token_id == id)));

    let jwt = header("x-patgate-assertion");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let head = b64_json(parts[0]);
    assert_eq!(head["typ"], "patgate-assertion+jwt");
    assert_eq!(head["kid"], "k1");
    let claims = b64_json(parts[1]);
    assert_eq!(claims["iss"], "https://patgate.test");
    assert_eq!(claims["aud"], "demo_api");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "pat_client");
    assert_eq!(claims["scope"], "demo_api:read demo_api:write");
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["exp"], NOW + 60);
    assert!(claims["jti"]
        .as_str()
        .is_some_and(|j| j.len() >= 16 && j != id));
    // an assertion is never an access token
    let keys = h.cfg.signing_keys.as_ref().expect("keys");
    assert_eq!(
        keys.verify_access_token(&jwt, NOW).map(|_| ()),
        Err(VerifyError::WrongType)
    );
    // each assertion has its own jti
    let f2 = forward(h.gate_req("GET", "/gw/demo/x", Some(&token)));
    let jwt2 = f2
        .identity
        .iter()
        .find(|(k, _)| *k == "x-patgate-assertion")
        .expect("assertion");
    assert_ne!(
        b64_json(jwt2.1.split('.').nth(1).expect("claims"))["jti"],
        claims["jti"]
    );
}

#[test]
fn without_signing_keys_the_assertion_is_left_out() {
    let mut h = Harness::with_route();
    h.cfg.signing_keys = None;
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    let f = forward(h.gate_req("GET", "/gw/demo/", Some(&token)));
    assert!(f.identity.iter().all(|(k, _)| *k != "x-patgate-assertion"));
    assert_eq!(f.identity.len(), 4);
    assert_eq!(f.url, "http://127.0.0.1:9000/base/");
}

#[test]
fn jwt_access_tokens_follow_the_same_rules() {
    let h = Harness::with_route();
    let keys = h.cfg.signing_keys.clone().expect("keys");
    let uid = h
        .backend
        .clients
        .borrow()
        .iter()
        .find(|c| c.id == "demo_client")
        .map(|c| c.uid.clone());
    let sign_as = |scope: &str, jti: &str, client_uid: Option<&str>| {
        let claims = AccessTokenClaims {
            iss: h.cfg.issuer.clone(),
            sub: "svc".into(),
            aud: vec!["demo_api".into()],
            iat: NOW,
            jti: jti.into(),
            client_id: "demo_client".into(),
            client_uid: client_uid.map(str::to_owned),
            scope: crate::scopes::Scopes::from_stored(scope),
            pat_id: None,
            pat_gen: None,
            grant_id: None,
        };
        keys.sign_access_token(&claims, NOW + 3600).expect("sign")
    };
    let sign = |scope: &str, jti: &str| sign_as(scope, jti, uid.as_deref());
    let f = forward(h.gate_req("GET", "/gw/demo/a", Some(&sign("demo_api:read", "j1"))));
    assert!(f.identity.contains(&("x-patgate-token-id", "j1".into())));
    let a = h.gate_req("POST", "/gw/demo/a", Some(&sign("demo_api:read", "j2")));
    assert_eq!(respond(&a).0, 403);
    let a = h.gate_req("GET", "/gw/demo/a", Some(&sign("other_api:read", "j3")));
    assert_eq!(respond(&a).0, 401);
    // revoked jti
    h.backend
        .denied
        .borrow_mut()
        .push(("j1".into(), NOW + 3600));
    let a = h.gate_req("GET", "/gw/demo/a", Some(&sign("demo_api:read", "j1")));
    assert_eq!(respond(&a).0, 401);
    // the client it names, as it was at issuance: another uid (the client created again), or
    // none (a JWT from before the uid was carried), is refused
    let a = h.gate_req(
        "GET",
        "/gw/demo/a",
        Some(&sign_as("demo_api:read", "j4", Some("x"))),
    );
    assert_eq!(respond(&a).0, 401);
    let a = h.gate_req(
        "GET",
        "/gw/demo/a",
        Some(&sign_as("demo_api:read", "j5", None)),
    );
    assert_eq!(respond(&a).0, 401);
    let f = forward(h.gate_req("GET", "/gw/demo/a", Some(&sign("demo_api:read", "j6"))));
    assert!(f.identity.contains(&("x-patgate-token-id", "j6".into())));
}

#[test]
fn a_disabled_client_or_resource_refuses_everything() {
    let h = Harness::with_route();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    h.backend.resources.borrow_mut()[0].enabled = false;
    h.isolate.forget_resource("demo_api");
    assert_eq!(
        respond(&h.gate_req("GET", "/gw/demo/a", Some(&token))).0,
        401
    );
    h.backend.resources.borrow_mut()[0].enabled = true;
    h.isolate.forget_resource("demo_api");
    h.backend.clients.borrow_mut()[0].enabled = false;
    h.isolate.forget_client(PAT_CLIENT_ID);
    assert_eq!(
        respond(&h.gate_req("GET", "/gw/demo/a", Some(&token))).0,
        401
    );
}

#[test]
fn routes_never_match_the_issuers_host_or_outside_their_prefix() {
    let h = Harness::with_route();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    for host in ["patgate.test", "PATGATE.test:8443"] {
        assert!(matches!(
            h.gate_at(host, "GET", "/gw/demo/x", Some(&token)),
            GateAnswer::NotGate
        ));
    }
    for path in ["/gw/demo", "/gw/", "/oauth/introspect", "/gw/demox/"] {
        assert!(
            matches!(h.gate_req("GET", path, Some(&token)), GateAnswer::NotGate),
            "{path}"
        );
    }
}

#[test]
fn steady_state_is_one_kv_read_and_the_route_table_is_cached() {
    let h = Harness::with_route();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    forward(h.gate_req("GET", "/gw/demo/x", Some(&token)));
    h.backend.take_counts();
    forward(h.gate_req("GET", "/gw/demo/x", Some(&token)));
    assert_eq!(
        h.backend.take_counts(),
        Counts {
            kv_get: 1,
            ..Counts::default()
        }
    );
    // D1 down: cached routes and records keep serving
    h.backend.break_d1.set(true);
    forward(h.gate_req("GET", "/gw/demo/x", Some(&token)));
}

#[test]
fn storage_failures_are_503_never_forwarded() {
    let h = Harness::with_route();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    let fresh = Harness {
        cfg: h.cfg.clone(),
        backend: MemoryBackend::default(),
        isolate: IsolateState::default(),
        now: NOW,
        timers: std::cell::RefCell::default(),
    };
    // no route table cached and D1 down
    *fresh.backend.routes.borrow_mut() = h.backend.routes.borrow().clone();
    fresh.backend.break_d1.set(true);
    let a = fresh.gate_req("GET", "/gw/demo/x", Some(&token));
    let (s, v, r) = respond(&a);
    assert_eq!(
        (s, v["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    // routes cached, KV and D1 down: the token cannot be checked
    forward(h.gate_req("GET", "/gw/demo/x", Some(&token)));
    h.backend.break_kv.set(true);
    h.backend.break_d1.set(true);
    assert_eq!(
        respond(&h.gate_req("GET", "/gw/demo/x", Some(&token))).0,
        503
    );
}

#[test]
fn protected_resource_metadata() {
    let h = Harness::with_route();
    let a = h.gate_req("GET", "/.well-known/oauth-protected-resource/gw/demo", None);
    let (s, v, _) = respond(&a);
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({
            "resource": "https://api.example.com/gw/demo/",
            "authorization_servers": ["https://patgate.test"],
            "scopes_supported": ["demo_api:read", "demo_api:write"],
            "bearer_methods_supported": ["header"],
        })
    );
    assert!(matches!(
        h.gate_req("GET", "/.well-known/oauth-protected-resource/gw", None),
        GateAnswer::NotGate
    ));
    assert!(matches!(
        h.gate_at(
            "patgate.test",
            "GET",
            "/.well-known/oauth-protected-resource/gw/demo",
            None
        ),
        GateAnswer::NotGate
    ));
    assert_eq!(
        respond(&h.gate_req(
            "POST",
            "/.well-known/oauth-protected-resource/gw/demo",
            None
        ))
        .0,
        405
    );
}

#[test]
fn admin_routes_lifecycle() {
    let h = Harness::new();
    let put = |id: &str, body: Value| {
        h.call(&admin(
            Method::Put,
            &format!("/admin/routes/{id}"),
            Some(body),
        ))
    };
    let (s, v, o) = put("demo", demo_route());
    assert_eq!(s, 201, "{v}");
    assert_eq!(o.response.header("location"), Some("/admin/routes/demo"));
    assert_eq!(v["id"], "demo");
    assert_eq!(v["rules"][1]["methods"], json!(["POST"]));
    assert!(v.get("host").is_none());
    // replace: 200
    let mut b = demo_route();
    b["upstream"] = json!("https://other.internal/v2");
    let (s, v, _) = put("demo", b.clone());
    assert_eq!(
        (s, v["upstream"].as_str()),
        (200, Some("https://other.internal/v2"))
    );
    // same host and prefix under another id: 409; with a host it is another place
    let (s, v, _) = put("dup", demo_route());
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")));
    b["host"] = json!("api.example.com");
    assert_eq!(put("named", b).0, 201);
    // nested prefixes are fine
    let mut nested = demo_route();
    nested["path_prefix"] = json!("/gw/demo/deep/");
    assert_eq!(put("deep", nested).0, 201);
    let (s, v, _) = h.call(&admin(Method::Get, "/admin/routes", None));
    assert_eq!(s, 200);
    let ids: Vec<&str> = v["routes"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["deep", "demo", "named"]);
    let (s, v, _) = h.call(&admin(Method::Get, "/admin/routes/named", None));
    assert_eq!((s, v["host"].as_str()), (200, Some("api.example.com")));
    assert_eq!(
        h.call(&admin(Method::Delete, "/admin/routes/named", None))
            .0,
        204
    );
    assert_eq!(
        h.call(&admin(Method::Delete, "/admin/routes/named", None))
            .0,
        404
    );
    assert_eq!(
        h.call(&admin(Method::Get, "/admin/routes/named", None)).0,
        404
    );
    assert_eq!(h.call(&admin(Method::Post, "/admin/routes", None)).0, 405);
    assert_eq!(
        h.call(&admin(Method::Patch, "/admin/routes/demo", None)).0,
        405
    );
    // without the admin token
    let anon = Request::new(Method::Get, "/admin/routes");
    assert_eq!(h.call(&anon).0, 401);
}

#[test]
fn admin_routes_validation_names_the_field() {
    let h = Harness::new();
    let put = |id: &str, body: Value| {
        h.call(&admin(
            Method::Put,
            &format!("/admin/routes/{id}"),
            Some(body),
        ))
    };
    let field_case = |key: &str, value: Value, field: &str| {
        let mut b = demo_route();
        b[key] = value;
        let (s, v, _) = put("r", b);
        assert_eq!(s, 400, "{key}: {v}");
        assert_eq!(v["error"], "invalid_request");
        assert!(
            v["error_description"]
                .as_str()
                .is_some_and(|d| d.starts_with(field)),
            "{field}: {v}"
        );
    };
    field_case("resource", json!("no_such_api"), "resource");
    field_case(
        "rules",
        json!([{"methods":["GET"],"scopes":["other_api:read"]}]),
        "rules[0].scopes",
    );
    field_case("path_prefix", json!("/.well-known/x/"), "path_prefix");
    field_case("upstream", json!("http://h/?q"), "upstream");
    field_case("host", json!("a b"), "host");
    assert_eq!(put("bad id!", demo_route()).0, 400);
    let (s, _, _) = put("r", json!({"path_prefix": "/a/"}));
    assert_eq!(s, 400);
    let wrong_type = admin(Method::Put, "/admin/routes/r", None)
        .header("content-type", "text/plain")
        .body("{}");
    assert_eq!(h.call(&wrong_type).0, 415);
    let big = admin(Method::Put, "/admin/routes/r", None)
        .header("content-type", "application/json")
        .body(vec![b' '; crate::http::MAX_JSON_BODY + 1]);
    assert_eq!(h.call(&big).0, 413);
    assert!(h.backend.routes.borrow().is_empty());
}

#[test]
fn route_changes_reach_this_isolate_at_once() {
    let h = Harness::with_route();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    forward(h.gate_req("GET", "/gw/demo/x", Some(&token)));
    assert_eq!(
        h.call(&admin(Method::Delete, "/admin/routes/demo", None)).0,
        204
    );
    assert!(matches!(
        h.gate_req("GET", "/gw/demo/x", Some(&token)),
        GateAnswer::NotGate
    ));
}

#[test]
fn a_d1_outage_serves_cached_routes_for_a_bounded_time_then_503() {
    let mut h = Harness::with_route();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    forward(h.gate_req("GET", "/gw/demo/x", Some(&token)));
    h.backend.break_d1.set(true);
    // past the cache life: one failed refresh, then the cached table keeps answering
    h.now += h.cfg.registry_cache_secs + 1;
    forward(h.gate_req("GET", "/gw/demo/x", Some(&token)));
    forward(h.gate_req("GET", "/gw/demo/x", Some(&token)));
    // past the longest staleness: no decision on records that old
    h.now += h.cfg.registry_max_stale_secs;
    let a = h.gate_req("GET", "/gw/demo/x", Some(&token));
    assert_eq!(respond(&a).0, 503);
    // D1 back: the table is read again
    h.backend.break_d1.set(false);
    forward(h.gate_req("GET", "/gw/demo/x", Some(&token)));
}
