//! The gate's CORS answers and the rate limit of its refusals, over the in-memory backend:
//! preflights answered before authentication and never forwarded, CORS headers on the gate's own
//! refusals and on forwarded answers, hostile origins and policies; refused tokens counted per IP.

use super::*;
use crate::app::gate::{gate, GateAnswer, GateRequest};
use crate::gate::cors::CorsRequest;
use crate::store::Limit;

const GATE_HOST: &str = "api.example.com";
const APP: &str = "https://app.example.com";

fn admin_put(h: &Harness, id: &str, body: &Value) -> (u16, Value) {
    let req = Request::new(Method::Put, &format!("/admin/routes/{id}"))
        .header("authorization", &format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    let (s, v, _) = h.call(&req);
    (s, v)
}

fn route(cors: Option<Value>) -> Value {
    let mut r = json!({
        "path_prefix": "/gw/demo/",
        "upstream": "http://127.0.0.1:9000/base",
        "resource": "demo_api",
        "rules": [
            {"methods": ["GET", "HEAD"], "scopes": ["demo_api:read"]},
            {"methods": ["POST"], "scopes": ["demo_api:write"]}
        ]
    });
    if let Some(c) = cors {
        r["cors"] = c;
    }
    r
}

fn app_policy() -> Value {
    json!({"allowed_origins": [APP], "allowed_methods": ["GET", "POST"], "max_age": 300})
}

fn with_cors(policy: Option<Value>) -> Harness {
    let h = Harness::new();
    let (s, v) = admin_put(&h, "demo", &route(policy));
    assert_eq!(s, 201, "{v}");
    h
}

/// One gate request with full control of the CORS headers and the client IP.
struct Call<'a> {
    method: &'a str,
    path: &'a str,
    token: Option<&'a str>,
    cors: CorsRequest<'a>,
    ip: &'a str,
}

impl Default for Call<'_> {
    fn default() -> Self {
        Call {
            method: "GET",
            path: "/gw/demo/x",
            token: None,
            cors: CorsRequest::default(),
            ip: "203.0.113.9",
        }
    }
}

impl Harness {
    fn gate_call(&self, c: &Call<'_>) -> GateAnswer {
        let ctx = Ctx {
            cfg: &self.cfg,
            backend: &self.backend,
            isolate: &self.isolate,
            now: self.now,
        };
        let bearer = c.token.map(|t| format!("Bearer {t}"));
        let req = GateRequest {
            method: c.method,
            scheme: "https",
            authority: GATE_HOST,
            path: c.path,
            query: None,
            authorization: bearer.as_deref(),
            cors: c.cors,
            client_ip: c.ip,
        };
        block_on(gate(&ctx, &req))
    }
}

fn origin(o: &str) -> CorsRequest<'_> {
    CorsRequest {
        origin: Some(o),
        ..CorsRequest::default()
    }
}

fn preflight<'a>(o: &'a str, method: &'a str, headers: Option<&'a str>) -> Call<'a> {
    Call {
        method: "OPTIONS",
        cors: CorsRequest {
            origin: Some(o),
            request_method: Some(method),
            request_headers: headers,
        },
        ..Call::default()
    }
}

fn answer(a: &GateAnswer) -> &Response {
    a.response()
        .unwrap_or_else(|| panic!("expected an answer, got {a:?}"))
}

#[test]
fn without_a_policy_a_preflight_is_an_unauthenticated_request_as_before() {
    let h = with_cors(None);
    let a = h.gate_call(&preflight(APP, "GET", Some("authorization")));
    let r = answer(&a);
    assert_eq!(r.status, 401);
    assert!(r.header("access-control-allow-origin").is_none());
    assert!(
        r.header("vary").is_none(),
        "no policy, no CORS headers at all"
    );
    // an actual request from a browser: no CORS headers either, forwarded untouched
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    let a = h.gate_call(&Call {
        token: Some(&pat),
        cors: origin(APP),
        ..Call::default()
    });
    let GateAnswer::Forward(f) = a else {
        panic!("{a:?}")
    };
    assert!(f.cors.is_none());
}

#[test]
fn an_allowed_preflight_is_answered_before_authentication_and_never_forwarded() {
    let h = with_cors(Some(app_policy()));
    let before = h.backend.counts.get();
    let a = h.gate_call(&preflight(APP, "POST", Some("authorization,content-type")));
    let r = answer(&a);
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(r.body.is_empty());
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization, content-type")
    );
    assert_eq!(r.header("access-control-max-age"), Some("300"));
    assert!(r.header("access-control-allow-credentials").is_none());
    assert!(r.header("www-authenticate").is_none(), "no challenge");
    assert_eq!(
        h.backend.counts.get().kv_get,
        before.kv_get,
        "no token, no storage read"
    );
    assert!(
        !h.isolate
            .is_blocked(Limit::FailedAuthPerIp, "203.0.113.9", h.now),
        "a preflight is no failed authentication"
    );
}

#[test]
fn refused_preflights_get_403_without_cors_headers() {
    let h = with_cors(Some(app_policy()));
    for (what, call) in [
        (
            "other origin",
            preflight("https://evil.example", "GET", None),
        ),
        ("null origin", preflight("null", "GET", None)),
        (
            "suffix trick",
            preflight("https://app.example.com.evil.example", "GET", None),
        ),
        (
            "http, not https",
            preflight("http://app.example.com", "GET", None),
        ),
        ("method", preflight(APP, "DELETE", None)),
        (
            "header",
            preflight(APP, "GET", Some("authorization, x-admin")),
        ),
    ] {
        let a = h.gate_call(&call);
        let r = answer(&a);
        assert_eq!(r.status, 403, "{what}");
        assert_eq!(r.json_body()["error"], "cors_refused", "{what}");
        assert!(
            r.headers
                .iter()
                .all(|(k, _)| !k.starts_with("access-control-")),
            "{what}: {:?}",
            r.headers
        );
        assert!(
            r.header("vary").is_some_and(|v| v.contains("Origin")),
            "{what}"
        );
    }
    assert!(h.logged().contains("preflight refused: the method DELETE"));
}

#[test]
fn the_gates_own_refusals_carry_cors_headers_for_allowed_origins() {
    let h = with_cors(Some(app_policy()));
    let (_, read) = h.pat("alice", &["demo_api:read"]);
    let cases = [
        ("no token", None, "GET", 401),
        ("garbage token", Some("pgp_garbage"), "GET", 401),
        ("insufficient scope", Some(read.as_str()), "POST", 403),
        ("method not allowed", Some(read.as_str()), "DELETE", 405),
    ];
    for (what, token, method, status) in cases {
        let a = h.gate_call(&Call {
            method,
            token,
            cors: origin(APP),
            ..Call::default()
        });
        let r = answer(&a);
        assert_eq!(r.status, status, "{what}");
        assert_eq!(r.header("access-control-allow-origin"), Some(APP), "{what}");
        assert_eq!(
            r.header("access-control-expose-headers"),
            Some("www-authenticate, retry-after"),
            "{what}: the page can read the challenge"
        );
        assert_eq!(r.header("vary"), Some("Origin"), "{what}");
        // another origin: the same refusal, no CORS grant
        let a = h.gate_call(&Call {
            method,
            token,
            cors: origin("https://evil.example"),
            ..Call::default()
        });
        let r = answer(&a);
        assert_eq!(r.status, status, "{what}");
        assert!(r.header("access-control-allow-origin").is_none(), "{what}");
        assert_eq!(r.header("vary"), Some("Origin"), "{what}");
    }
    // an OPTIONS that is no preflight (no Access-Control-Request-Method) needs a token
    let a = h.gate_call(&Call {
        method: "OPTIONS",
        cors: origin(APP),
        ..Call::default()
    });
    assert_eq!(answer(&a).status, 401);
}

#[test]
fn forwarded_answers_get_cors_headers_to_set() {
    let h = with_cors(Some(
        json!({"allowed_origins": [APP], "allowed_methods": ["GET"], "exposed_headers": ["ETag"],
               "allow_credentials": true}),
    ));
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    let forward = |o: Option<&str>| {
        let a = h.gate_call(&Call {
            token: Some(&pat),
            cors: CorsRequest {
                origin: o,
                ..CorsRequest::default()
            },
            ..Call::default()
        });
        match a {
            GateAnswer::Forward(f) => f.cors.expect("a route with a policy"),
            other => panic!("{other:?}"),
        }
    };
    let set = forward(Some(APP));
    let get =
        |h: &[(&str, String)], k: &str| h.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    assert_eq!(
        get(&set, "access-control-allow-origin").as_deref(),
        Some(APP)
    );
    assert_eq!(
        get(&set, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        get(&set, "access-control-expose-headers").as_deref(),
        Some("etag")
    );
    assert_eq!(get(&set, "vary").as_deref(), Some("Origin"));
    for o in [Some("https://evil.example"), Some("null"), None] {
        assert_eq!(forward(o), vec![("vary", "Origin".to_owned())], "{o:?}");
    }
}

#[test]
fn the_wildcard_answers_star_and_never_credentials() {
    let h = with_cors(Some(
        json!({"allowed_origins": ["*"], "allowed_methods": ["GET"]}),
    ));
    let a = h.gate_call(&preflight("null", "GET", Some("authorization")));
    let r = answer(&a);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-allow-credentials").is_none());
}

#[test]
fn hostile_policies_are_refused_by_the_admin_api_and_change_nothing() {
    let h = with_cors(None);
    for (policy, field) in [
        (
            json!({"allowed_origins": ["*"], "allowed_methods": ["GET"], "allow_credentials": true}),
            "cors.allow_credentials",
        ),
        (
            json!({"allowed_origins": ["null"], "allowed_methods": ["GET"]}),
            "cors.allowed_origins",
        ),
        (
            json!({"allowed_origins": ["https://app.example.com/"], "allowed_methods": ["GET"]}),
            "cors.allowed_origins",
        ),
        (
            json!({"allowed_origins": [APP], "allowed_methods": ["GET"], "max_age": 100_000}),
            "cors.max_age",
        ),
    ] {
        let (s, v) = admin_put(&h, "demo", &route(Some(policy.clone())));
        assert_eq!(s, 400, "{policy}: {v}");
        assert_eq!(v["error"], "invalid_request");
        let d = v["error_description"].as_str().unwrap_or("");
        assert!(d.starts_with(field), "{policy}: {d}");
    }
    let (s, v) = admin_put(
        &h,
        "demo",
        &route(Some(
            json!({"allowed_origins": [APP], "allowed_methods": ["GET"], "bogus": 1}),
        )),
    );
    assert_eq!(s, 400, "unknown field: {v}");
    // the route is unchanged: still no policy
    let req = Request::new(Method::Get, "/admin/routes/demo")
        .header("authorization", &format!("Bearer {ADMIN}"));
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 200);
    assert!(v.get("cors").is_none(), "{v}");
}

#[test]
fn the_admin_api_stores_and_shows_the_policy_with_its_defaults() {
    let h = with_cors(Some(
        json!({"allowed_origins": [APP], "allowed_methods": ["GET"],
                                  "allowed_headers": ["Authorization"]}),
    ));
    let req = Request::new(Method::Get, "/admin/routes/demo")
        .header("authorization", &format!("Bearer {ADMIN}"));
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 200);
    assert_eq!(
        v["cors"],
        json!({"allowed_origins": [APP], "allowed_methods": ["GET"],
               "allowed_headers": ["authorization"], "exposed_headers": [],
               "allow_credentials": false, "max_age": 600})
    );
    // replacing the route without `cors` switches CORS off
    let (s, _) = admin_put(&h, "demo", &route(None));
    assert_eq!(s, 200);
    let a = h.gate_call(&preflight(APP, "GET", None));
    assert_eq!(
        answer(&a).status,
        401,
        "off again: a preflight needs a token"
    );
}

// --- rate limits of refused gate requests ------------------------------------------------------

fn limited() -> Harness {
    let h = with_cors(Some(app_policy()));
    h.backend
        .limits
        .borrow_mut()
        .insert(Limit::FailedAuthPerIp, 3);
    h
}

#[test]
fn refused_tokens_are_counted_per_ip_then_429() {
    let h = limited();
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    let statuses: Vec<u16> = [None, Some("pgp_garbage"), None, Some("pgp_garbage")]
        .iter()
        .map(|t| {
            answer(&h.gate_call(&Call {
                token: *t,
                ..Call::default()
            }))
            .status
        })
        .collect();
    assert_eq!(
        statuses,
        [401, 401, 401, 429],
        "missing and bad tokens count"
    );
    let a = h.gate_call(&Call {
        token: Some("pgp_garbage"),
        cors: origin(APP),
        ..Call::default()
    });
    let r = answer(&a);
    assert_eq!(r.status, 429);
    assert_eq!(r.json_body()["error"], "rate_limited");
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(APP),
        "the page can read the 429 too"
    );
    // blocked in this isolate for the period: even a valid token from that IP
    let a = h.gate_call(&Call {
        token: Some(&pat),
        ..Call::default()
    });
    assert_eq!(answer(&a).status, 429);
    // another IP is not affected
    let a = h.gate_call(&Call {
        token: Some(&pat),
        ip: "198.51.100.1",
        ..Call::default()
    });
    assert!(matches!(a, GateAnswer::Forward(_)), "{a:?}");
    assert!(h.logged().contains("rate_limited"));
}

#[test]
fn accepted_requests_and_scope_refusals_are_not_counted() {
    let h = limited();
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    for _ in 0..10 {
        let a = h.gate_call(&Call {
            token: Some(&pat),
            ..Call::default()
        });
        assert!(matches!(a, GateAnswer::Forward(_)), "{a:?}");
        let a = h.gate_call(&Call {
            method: "POST",
            token: Some(&pat),
            ..Call::default()
        });
        assert_eq!(answer(&a).status, 403, "a valid token lacking a scope");
        // preflights are never counted
        assert_eq!(
            answer(&h.gate_call(&preflight(APP, "GET", None))).status,
            204
        );
    }
}

#[test]
fn a_failing_limiter_lets_refusals_through_as_401() {
    let h = limited();
    h.backend.break_limiter.set(true);
    for _ in 0..6 {
        assert_eq!(answer(&h.gate_call(&Call::default())).status, 401);
    }
    assert!(h.logged().contains("rate limiter failed"));
}
