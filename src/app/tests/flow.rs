//! The authorization code flow through the whole service over the in-memory backend, with an
//! injected clock: `/authorize` (page vs redirect errors, `state` and `iss`), consent (CSRF,
//! origin, one-time handle of one user, expiry, Deny), remembered approvals, the code exchange
//! (single use, bindings, replay revoking what it issued), refresh rotation (retry, reuse,
//! idle and absolute ends), the gate's audience check, and every way a grant ends.

#![allow(
    clippy::many_single_char_names,
    clippy::unused_self,
    clippy::too_many_lines
)]

use super::*;
use crate::app::config::PageConfig;
use crate::app::gate::{gate, GateAnswer, GateRequest};
use crate::authz::memory::AuthzStep;
use crate::authz::records::{ClientProfile, ClientSource};
use crate::oauth::authorize::{CodeChallenge, CodeVerifier};
use crate::oauth::client_metadata::GrantType;
use crate::testing::Fault;

pub(super) const SESSION: &str = "test-session-secret-0123456789abcdef";
pub(super) const APP: &str = "desk_app";
pub(super) const REDIRECT: &str = "http://127.0.0.1:4501/cb";
pub(super) const GATE: &str = "api.patgate.test";
pub(super) const RESOURCE: &str = "https://api.patgate.test/gw/demo/";
pub(super) const OTHER: &str = "https://api.patgate.test/gw/other/";
pub(super) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A response's body as text.
pub(super) trait Text {
    fn text(&self) -> String;
}

impl Text for crate::http::Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(super) fn admin(method: Method, path: &str, body: Option<Value>) -> Request {
    let mut r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    r
}

pub(super) fn challenge() -> String {
    CodeChallenge::of(&CodeVerifier::parse(VERIFIER).expect("verifier")).to_stored()
}

pub(super) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An authorization request's query, `over` replacing (or with `None` dropping) parameters.
pub(super) fn query(over: &[(&str, Option<&str>)]) -> String {
    let ch = challenge();
    let mut q: Vec<(&str, Option<&str>)> = vec![
        ("response_type", Some("code")),
        ("client_id", Some(APP)),
        ("redirect_uri", Some(REDIRECT)),
        ("state", Some("st 1&x")),
        ("code_challenge", Some(&ch)),
        ("code_challenge_method", Some("S256")),
        ("resource", Some(RESOURCE)),
        ("scope", Some("demo_api:read")),
    ];
    for (k, v) in over {
        match q.iter_mut().find(|(n, _)| n == k) {
            Some(e) => e.1 = *v,
            None => q.push((k, *v)),
        }
    }
    q.iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", enc(v))))
        .collect::<Vec<_>>()
        .join("&")
}

/// A value of `name` in `location`'s query (decoded).
pub(super) fn param(location: &str, name: &str) -> Option<String> {
    let q = location.split_once('?')?.1;
    q.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name)
            .then(|| crate::http::percent_decode(v.replace('+', " ").as_bytes()).expect("decodes"))
    })
}

pub(super) fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at..];
    let v = &rest[rest.find("value=\"").expect("value") + 7..];
    v[..v.find('"').expect("end")].to_owned()
}

impl Harness {
    /// A harness with the page configured, the app (public, loopback and https redirect URIs,
    /// both grants) and two gate routes of `demo_api`.
    pub(super) fn flow() -> Self {
        let mut h = Harness::new();
        h.cfg.page = PageConfig {
            session_secret: Some(SESSION.into()),
            dev_sign_in: false,
        };
        h.backend.add_client(
            Client {
                id: APP.into(),
                uid: "uid-app".into(),
                secret: None,
                allowed_scopes: vec!["demo_api:read".into(), "demo_api:write".into()],
                token_format: TokenFormat::Reference,
                token_lifetime: 600,
                enabled: true,
            },
            ClientProfile {
                source: ClientSource::Admin,
                display_name: Some("Desk <App>".into()),
                redirect_uris: vec![
                    "http://127.0.0.1/cb".into(),
                    "https://app.example/cb".into(),
                ],
                grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
                ..ClientProfile::legacy()
            },
        );
        for (id, prefix) in [("demo", "/gw/demo/"), ("other", "/gw/other/")] {
            let (s, v, _) = h.call(&admin(
                Method::Put,
                &format!("/admin/routes/{id}"),
                Some(json!({
                    "path_prefix": prefix,
                    "upstream": "http://127.0.0.1:9000",
                    "resource": "demo_api",
                    "rules": [{"methods": ["GET"], "scopes": ["demo_api:read"]},
                              {"methods": ["POST"], "scopes": ["demo_api:read", "demo_api:write"]}]
                })),
            ));
            assert_eq!(s, 201, "{v}");
        }
        h
    }

    pub(super) fn page(&self, method: Method, target: &str, user: Option<&str>) -> Request {
        let r = Request::new(method, target).header("host", "patgate.test");
        match user {
            Some(u) => r.header("cf-access-jwt-assertion", &user_jwt(u)),
            None => r,
        }
    }

    /// `GET /authorize?query` as `user`.
    pub(super) fn authorize(&self, user: &str, query: &str) -> Outcome {
        let o = self.send(&self.page(Method::Get, &format!("/authorize?{query}"), Some(user)));
        self.run_deferred(&o);
        o
    }

    /// The consent page's handle and CSRF token.
    pub(super) fn form_of(o: &Outcome) -> (String, String) {
        assert_eq!(o.response.status, 200, "{}", o.response.text());
        let html = o.response.text();
        (hidden(&html, "handle"), hidden(&html, "csrf"))
    }

    pub(super) fn answer(&self, user: &str, handle: &str, csrf: &str, decision: &str) -> Outcome {
        let o = self.send(
            &self
                .page(Method::Post, "/authorize/consent", Some(user))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .body(format!(
                    "handle={handle}&csrf={}&decision={decision}",
                    enc(csrf)
                )),
        );
        self.run_deferred(&o);
        o
    }

    /// Authorization with consent approved: the code.
    pub(super) fn code(&self, user: &str, query: &str) -> String {
        let o = self.authorize(user, query);
        let location = if o.response.status == 200 {
            let (handle, csrf) = Self::form_of(&o);
            let a = self.answer(user, &handle, &csrf, "approve");
            assert_eq!(a.response.status, 303, "{}", a.response.text());
            a.response.header("location").expect("location").to_owned()
        } else {
            assert_eq!(o.response.status, 302, "{}", o.response.text());
            o.response.header("location").expect("location").to_owned()
        };
        param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"))
    }

    pub(super) fn token_form(&self, body: &str) -> (u16, Value) {
        let (s, v, _) = self.call(
            &Request::new(Method::Post, "/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_owned()),
        );
        (s, v)
    }

    pub(super) fn exchange(&self, code: &str) -> (u16, Value) {
        self.token_form(&format!(
            "grant_type=authorization_code&client_id={APP}&code={code}&code_verifier={VERIFIER}&redirect_uri={}",
            enc(REDIRECT)
        ))
    }

    pub(super) fn refresh(&self, token: &str) -> (u16, Value) {
        self.token_form(&format!(
            "grant_type=refresh_token&client_id={APP}&refresh_token={token}"
        ))
    }

    /// A fresh grant for `user`: (access token, refresh token).
    pub(super) fn tokens(&self, user: &str) -> (String, String) {
        let code = self.code(user, &query(&[]));
        let (s, v) = self.exchange(&code);
        assert_eq!(s, 200, "{v}");
        (
            v["access_token"].as_str().expect("at").into(),
            v["refresh_token"].as_str().expect("rt").into(),
        )
    }

    pub(super) fn active(&self, token: &str) -> bool {
        self.introspect(token).1["active"] == json!(true)
    }

    /// A request through the gate on `path` with `token`: the status.
    pub(super) fn through(&self, method: &str, path: &str, token: &str) -> u16 {
        let ctx = Ctx {
            cfg: &self.cfg,
            backend: &self.backend,
            isolate: &self.isolate,
            now: self.now,
            now_ms: self.now * 1000,
        };
        let bearer = format!("Bearer {token}");
        let req = GateRequest {
            method,
            scheme: "https",
            authority: GATE,
            path,
            query: None,
            authorization: Some(&bearer),
            cors: crate::gate::cors::CorsRequest::default(),
            client_ip: "203.0.113.9",
        };
        match block_on(gate(&ctx, &req)) {
            GateAnswer::Forward(_) => 200,
            GateAnswer::Respond(o) => o.response.status,
            GateAnswer::NotGate => 0,
        }
    }
}

#[test]
fn the_whole_flow_with_state_iss_audience_and_rotation() {
    let mut h = Harness::flow();
    let o = h.authorize("alice", &query(&[]));
    assert_eq!(o.response.status, 200, "{}", o.response.text());
    let html = o.response.text();
    for must in [
        "Desk &lt;App&gt;",
        "registered by an administrator",
        "127.0.0.1:4501",
        "this device",
        RESOURCE,
        "demo_api:read",
    ] {
        assert!(html.contains(must), "{must}: {html}");
    }
    let csp = o.response.header("content-security-policy").expect("csp");
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:4501;"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(o.response.header("x-frame-options"), Some("DENY"));
    let (handle, csrf) = Harness::form_of(&o);
    let a = h.answer("alice", &handle, &csrf, "approve");
    assert_eq!(a.response.status, 303);
    let to = a.response.header("location").expect("location");
    assert!(to.starts_with("http://127.0.0.1:4501/cb?code=pgc_"), "{to}");
    assert_eq!(param(to, "state").as_deref(), Some("st 1&x"));
    assert_eq!(param(to, "iss").as_deref(), Some("https://patgate.test"));

    let (s, t) = h.exchange(&param(to, "code").expect("code"));
    assert_eq!(s, 200, "{t}");
    let at = t["access_token"].as_str().expect("access").to_owned();
    let rt = t["refresh_token"].as_str().expect("refresh").to_owned();
    assert!(at.starts_with("pga_") && rt.starts_with("pgr_"));
    assert_eq!(
        (t["scope"].clone(), t["expires_in"].clone()),
        (json!("demo_api:read"), json!(600))
    );
    let i = h.introspect(&at).1;
    assert_eq!(
        (i["active"].clone(), i["aud"].clone(), i["sub"].clone()),
        (json!(true), json!(RESOURCE), json!("alice"))
    );
    assert_eq!(h.through("GET", "/gw/demo/x", &at), 200);
    // audience: another route of the same API refuses it; a scope it lacks is a 403
    assert_eq!(h.through("GET", "/gw/other/x", &at), 401);
    assert_eq!(h.through("POST", "/gw/demo/x", &at), 403);
    let log = h.logged();
    assert!(log.contains(r#""event":"grant.created""#), "{log}");
    assert!(
        !log.contains(&at) && !log.contains(&rt),
        "no token in the log"
    );

    // rotation: a new pair; the old access token lives on until it expires
    h.now += 10;
    let (s, r2) = h.refresh(&rt);
    assert_eq!(s, 200, "{r2}");
    let rt2 = r2["refresh_token"].as_str().expect("rt2").to_owned();
    assert_ne!(rt2, rt);
    assert!(h.active(&at) && h.active(r2["access_token"].as_str().expect("at2")));
    // down-scoping and more-than-granted
    let (s, v) = h.token_form(&format!(
        "grant_type=refresh_token&client_id={APP}&refresh_token={rt2}&scope=demo_api:write"
    ));
    assert_eq!((s, v["error"].clone()), (400, json!("invalid_scope")));
    let (s, v) = h.token_form(&format!(
        "grant_type=refresh_token&client_id={APP}&refresh_token={rt2}&resource={}",
        enc(OTHER)
    ));
    assert_eq!(
        (s, v["error"].clone()),
        (400, json!("invalid_target")),
        "{v}"
    );
    // the rotated-away one, past the retry grace: reuse ends the grant and every token
    h.now += 61;
    let (s, v) = h.refresh(&rt);
    assert_eq!((s, v["error"].clone()), (400, json!("invalid_grant")));
    let log = h.logged();
    assert!(log.contains(r#""event":"grant.reuse_detected""#), "{log}");
    assert!(log.contains(r#""via":"refresh_reuse""#), "{log}");
    assert!(!h.active(&at) && !h.active(r2["access_token"].as_str().expect("at2")));
    assert_eq!(h.through("GET", "/gw/demo/x", &at), 401);
    let (s, v) = h.refresh(&rt2);
    assert_eq!(
        (s, v["error"].clone()),
        (400, json!("invalid_grant")),
        "the current one too"
    );
}

#[test]
fn a_retry_of_a_lost_refresh_answer_within_the_grace_and_then_reuse() {
    let mut h = Harness::flow();
    let (_, rt1) = h.tokens("alice");
    let (s, r2) = h.refresh(&rt1);
    assert_eq!(s, 200);
    h.now += 30;
    let (s, retry) = h.refresh(&rt1);
    assert_eq!(s, 200, "a retry within 60 s: {retry}");
    // the successor never received was retired: presenting it is a reuse
    let (s, _) = h.refresh(r2["refresh_token"].as_str().expect("rt2"));
    assert_eq!(s, 400);
    let (s, _) = h.refresh(retry["refresh_token"].as_str().expect("rt3"));
    assert_eq!(s, 400, "the grant is gone");
}

#[test]
fn refresh_tokens_end_when_idle_and_at_the_absolute_limit() {
    let mut h = Harness::flow();
    h.cfg.refresh = crate::authz::refresh::RefreshPolicy {
        idle_secs: 1000,
        absolute_secs: 1500,
        retry_grace_secs: 60,
    };
    let (_, rt) = h.tokens("alice");
    h.now += 999;
    let (s, v) = h.refresh(&rt);
    assert_eq!(s, 200, "{v}");
    h.now += 1000;
    let (s, v) = h.refresh(v["refresh_token"].as_str().expect("rt"));
    assert_eq!(
        (s, v["error"].clone()),
        (400, json!("invalid_grant")),
        "past the absolute end"
    );
    let (_, rt) = h.tokens("bob");
    h.now += 1000;
    let (s, v) = h.refresh(&rt);
    assert_eq!(
        (s, v["error_description"].clone()),
        (400, json!("the refresh token expired"))
    );
}

#[test]
fn a_code_is_single_use_and_its_replay_ends_what_it_issued() {
    let h = Harness::flow();
    let code = h.code("alice", &query(&[]));
    let (s, t) = h.exchange(&code);
    assert_eq!(s, 200);
    let at = t["access_token"].as_str().expect("at");
    let (s, v) = h.exchange(&code);
    assert_eq!((s, v["error"].clone()), (400, json!("invalid_grant")));
    assert!(!h.active(at), "the first exchange's access token died");
    let (s, _) = h.refresh(t["refresh_token"].as_str().expect("rt"));
    assert_eq!(s, 400);
    assert!(h.logged().contains(r#""via":"code_reuse""#));
}

#[test]
fn a_code_lives_sixty_seconds_and_is_bound_to_client_redirect_verifier_and_resource() {
    let mut h = Harness::flow();
    let code = h.code("alice", &query(&[]));
    h.now += 61;
    assert_eq!(
        h.exchange(&code).1["error"],
        json!("invalid_grant"),
        "expired"
    );
    for (what, body, error) in [
        (
            "verifier",
            format!("code_verifier={}", "a".repeat(43)),
            "invalid_grant",
        ),
        (
            "redirect",
            format!(
                "code_verifier={VERIFIER}&redirect_uri={}",
                enc("http://127.0.0.1:4502/cb")
            ),
            "invalid_grant",
        ),
        (
            "resource",
            format!("code_verifier={VERIFIER}&resource={}", enc(OTHER)),
            "invalid_target",
        ),
    ] {
        let code = h.code("alice", &query(&[]));
        let (s, v) = h.token_form(&format!(
            "grant_type=authorization_code&client_id={APP}&code={code}&{body}"
        ));
        assert_eq!((s, v["error"].clone()), (400, json!(error)), "{what}: {v}");
        let (s, _) = h.exchange(&code);
        assert_eq!(s, 400, "{what}: the failed attempt burnt the code");
    }
    let code = h.code("alice", &query(&[]));
    let (s, v) = h.token_form(&format!(
        "grant_type=authorization_code&client_id=nobody&code={code}&code_verifier={VERIFIER}"
    ));
    assert_eq!((s, v["error"].clone()), (401, json!("invalid_client")));
    let (s, v) = h.token_form(&format!(
        "grant_type=authorization_code&client_id={APP}&code=pgc_garbage&code_verifier={VERIFIER}"
    ));
    assert_eq!((s, v["error"].clone()), (400, json!("invalid_grant")));
    // the code was not burnt by another client's attempt
    assert_eq!(h.exchange(&code).0, 200);
}

#[test]
fn errors_before_the_client_and_redirect_are_known_are_pages() {
    let h = Harness::flow();
    for (what, over) in [
        ("unknown client", vec![("client_id", Some("nobody"))]),
        ("no client", vec![("client_id", None)]),
        (
            "prefix",
            vec![("redirect_uri", Some("https://app.example/c"))],
        ),
        (
            "longer",
            vec![("redirect_uri", Some("https://app.example/cb/x"))],
        ),
        (
            "case",
            vec![("redirect_uri", Some("https://APP.example/cb"))],
        ),
        (
            "userinfo",
            vec![("redirect_uri", Some("https://u@app.example/cb"))],
        ),
        (
            "fragment",
            vec![("redirect_uri", Some("https://app.example/cb#x"))],
        ),
        (
            "port",
            vec![("redirect_uri", Some("https://app.example:444/cb"))],
        ),
        (
            "http",
            vec![("redirect_uri", Some("http://app.example/cb"))],
        ),
        (
            "localhost",
            vec![("redirect_uri", Some("http://localhost:4501/cb"))],
        ),
        (
            "no redirect with two registered",
            vec![("redirect_uri", None)],
        ),
    ] {
        let o = h.authorize("alice", &query(&over));
        assert_eq!(o.response.status, 400, "{what}");
        assert_eq!(o.response.header("location"), None, "{what}");
        assert!(o.response.text().contains("cannot be completed"), "{what}");
    }
    for (what, over, error) in [
        (
            "resource of no API",
            vec![("resource", Some("https://elsewhere.example/api"))],
            "invalid_target",
        ),
        ("no resource", vec![("resource", None)], "invalid_target"),
        (
            "plain",
            vec![("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (
            "no PKCE",
            vec![("code_challenge", None), ("code_challenge_method", None)],
            "invalid_request",
        ),
        (
            "token",
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (
            "other API's scope",
            vec![("scope", Some("other_api:read"))],
            "invalid_scope",
        ),
    ] {
        let o = h.authorize("alice", &query(&over));
        assert_eq!(o.response.status, 302, "{what}: {}", o.response.text());
        let to = o.response.header("location").expect("location");
        assert!(
            to.starts_with("http://127.0.0.1:4501/cb?error="),
            "{what}: {to}"
        );
        assert_eq!(param(to, "error").as_deref(), Some(error), "{what}");
        assert_eq!(param(to, "state").as_deref(), Some("st 1&x"), "{what}");
        assert_eq!(
            param(to, "iss").as_deref(),
            Some("https://patgate.test"),
            "{what}"
        );
    }
}

#[test]
fn not_signed_in_is_the_sign_in_never_a_consent() {
    let h = Harness::flow();
    let o = h.send(&h.page(Method::Get, &format!("/authorize?{}", query(&[])), None));
    assert_eq!(o.response.status, 401);
    assert!(h.backend.flow.consents.borrow().is_empty());
}

#[test]
fn consent_needs_csrf_same_origin_the_same_user_and_works_once() {
    let mut h = Harness::flow();
    let (handle, csrf) = Harness::form_of(&h.authorize("alice", &query(&[])));
    let post = |user: &str, body: String, site: &str| {
        h.send(
            &h.page(Method::Post, "/authorize/consent", Some(user))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", site)
                .body(body),
        )
    };
    for (what, body, site) in [
        (
            "no csrf",
            format!("handle={handle}&decision=approve"),
            "same-origin",
        ),
        (
            "forged csrf",
            format!("handle={handle}&csrf={}&decision=approve", "x".repeat(40)),
            "same-origin",
        ),
        (
            "cross-site",
            format!("handle={handle}&csrf={}&decision=approve", enc(&csrf)),
            "cross-site",
        ),
    ] {
        let o = post("alice", body, site);
        assert_eq!(o.response.status, 403, "{what}");
        assert_eq!(o.response.header("location"), None);
    }
    // bob, with his own valid CSRF token, cannot answer alice's request
    let (_, bobs) = Harness::form_of(&h.authorize("bob", &query(&[])));
    let o = h.answer("bob", &handle, &bobs, "approve");
    assert_eq!(o.response.status, 400);
    assert_eq!(o.response.header("location"), None);
    // alice denies: access_denied with state and iss; the handle is spent
    let d = h.answer("alice", &handle, &csrf, "deny");
    assert_eq!(d.response.status, 303);
    let to = d.response.header("location").expect("location");
    assert_eq!(param(to, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(to, "state").as_deref(), Some("st 1&x"));
    assert_eq!(param(to, "iss").as_deref(), Some("https://patgate.test"));
    assert_eq!(
        h.answer("alice", &handle, &csrf, "approve").response.status,
        400
    );
    // a handle expires after 10 minutes
    let (handle, csrf) = Harness::form_of(&h.authorize("alice", &query(&[])));
    h.now += 601;
    assert_eq!(
        h.answer("alice", &handle, &csrf, "approve").response.status,
        400
    );
}

#[test]
fn a_remembered_approval_covers_only_the_exact_four_and_its_scopes() {
    let h = Harness::flow();
    h.code("carol", &query(&[]));
    // another loopback port is the same redirect key: a code at once
    let o = h.authorize(
        "carol",
        &query(&[("redirect_uri", Some("http://127.0.0.1:4999/cb"))]),
    );
    assert_eq!(o.response.status, 302, "{}", o.response.text());
    assert!(param(o.response.header("location").expect("l"), "code").is_some());
    for over in [
        vec![("scope", Some("demo_api:read demo_api:write"))],
        vec![("resource", Some(OTHER))],
        vec![("redirect_uri", Some("https://app.example/cb"))],
    ] {
        assert_eq!(
            h.authorize("carol", &query(&over)).response.status,
            200,
            "{over:?}"
        );
    }
    assert_eq!(
        h.authorize("dave", &query(&[])).response.status,
        200,
        "another user"
    );
}

#[test]
fn every_token_of_a_grant_dies_when_the_grant_ends() {
    // the token page's Revoke
    let h = Harness::flow();
    let (at, rt) = h.tokens("erin");
    let list = h.send(&h.page(Method::Get, "/tokens/apps", Some("erin")));
    let html = list.response.text();
    assert!(
        html.contains("Desk &lt;App&gt;") && html.contains(RESOURCE),
        "{html}"
    );
    let id = h.backend.flow.grants.borrow()[0].id.clone();
    assert!(html.contains(&format!("/tokens/apps/{id}/revoke")));
    let other = h.send(&h.page(
        Method::Get,
        &format!("/tokens/apps/{id}/revoke"),
        Some("frank"),
    ));
    assert_eq!(other.response.status, 404, "not another user's");
    let confirm = h.send(&h.page(
        Method::Get,
        &format!("/tokens/apps/{id}/revoke"),
        Some("erin"),
    ));
    let csrf = hidden(&confirm.response.text(), "csrf");
    let done = h.send(
        &h.page(
            Method::Post,
            &format!("/tokens/apps/{id}/revoke"),
            Some("erin"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(format!("csrf={}", enc(&csrf))),
    );
    assert_eq!(done.response.status, 303);
    h.run_deferred(&done);
    assert!(!h.active(&at));
    assert_eq!(h.through("GET", "/gw/demo/x", &at), 401);
    assert_eq!(h.refresh(&rt).0, 400);
    assert_eq!(
        h.authorize("erin", &query(&[])).response.status,
        200,
        "asks again"
    );
    assert!(h.logged().contains(r#""via":"user""#));

    // the admin API
    let h = Harness::flow();
    let (at, rt) = h.tokens("alice");
    let (s, v, _) = h.call(&admin(
        Method::Get,
        &format!("/admin/grants?subject=alice&client_id={APP}"),
        None,
    ));
    assert_eq!(s, 200, "{v}");
    let id = v["grants"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(v["grants"][0]["resource"], json!(RESOURCE));
    assert_eq!(
        h.call(&admin(Method::Get, "/admin/grants", None)).0,
        400,
        "subject required"
    );
    assert_eq!(
        h.call(&admin(Method::Delete, &format!("/admin/grants/{id}"), None))
            .0,
        204
    );
    assert!(!h.active(&at));
    assert_eq!(h.refresh(&rt).0, 400);
    assert_eq!(
        h.call(&admin(Method::Delete, "/admin/grants/nope", None)).0,
        404
    );

    // RFC 7009 of the refresh token
    let h = Harness::flow();
    let (at, rt) = h.tokens("alice");
    let (s, _, _) = h.call(
        &Request::new(Method::Post, "/oauth/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={rt}&client_id={APP}")),
    );
    assert_eq!(s, 200);
    assert!(!h.active(&at));
    assert_eq!(h.refresh(&rt).0, 400);

    // the client disabled: its tokens are inactive, its refresh tokens refused
    let mut h = Harness::flow();
    let (at, rt) = h.tokens("alice");
    h.backend.clients.borrow_mut().iter_mut().for_each(|c| {
        if c.id == APP {
            c.enabled = false;
        }
    });
    h.isolate.forget_client(APP);
    h.now += h.cfg.registry_cache_secs + 1;
    assert!(!h.active(&at));
    assert_eq!(h.refresh(&rt).0, 401);

    // a new grant of the same app, redirect and resource replaces the old one
    let h = Harness::flow();
    let (at, rt) = h.tokens("alice");
    let (at2, _) = h.tokens("alice");
    assert!(!h.active(&at) && h.active(&at2));
    assert_eq!(h.refresh(&rt).0, 400);
}

#[test]
fn discovery_names_the_authorization_endpoint() {
    let h = Harness::flow();
    let (s, m, _) = h.call(&Request::new(
        Method::Get,
        "/.well-known/oauth-authorization-server",
    ));
    assert_eq!(s, 200);
    assert_eq!(
        m["authorization_endpoint"],
        json!("https://patgate.test/authorize")
    );
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        m["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    for g in ["authorization_code", "refresh_token"] {
        assert!(m["grant_types_supported"]
            .as_array()
            .expect("grants")
            .contains(&json!(g)));
    }
    assert!(m["token_endpoint_auth_methods_supported"]
        .as_array()
        .expect("m")
        .contains(&json!("none")));
}

#[test]
fn every_new_write_failing_lost_or_landed_is_an_error_never_a_panic_or_a_live_leftover() {
    for step in [
        AuthzStep::ConsentInsert,
        AuthzStep::ConsentTake,
        AuthzStep::ApprovalWrite,
        AuthzStep::CodeInsert,
        AuthzStep::CodeConsume,
        AuthzStep::GrantInsert,
        AuthzStep::RefreshRotate,
        AuthzStep::GrantRevoke,
    ] {
        for fault in [Fault::Lost, Fault::LandedButFailed] {
            let h = Harness::flow();
            let (_, rt) = h.tokens("alice");
            h.backend.flow.inject(step, fault);
            // go through every step once more: authorize, consent, exchange, refresh, revoke
            let o = h.authorize("alice", &query(&[("scope", Some("demo_api:write"))]));
            let s = o.response.status;
            assert!(s == 200 || s == 503, "{step:?} {fault:?}: authorize {s}");
            if s == 200 {
                let (handle, csrf) = Harness::form_of(&o);
                let a = h.answer("alice", &handle, &csrf, "approve");
                let s = a.response.status;
                assert!(
                    s == 303 || s == 503 || s == 400,
                    "{step:?} {fault:?}: answer {s}"
                );
                if let Some(code) = a.response.header("location").and_then(|l| param(l, "code")) {
                    let (s, v) = h.exchange(&code);
                    assert!(s == 200 || s == 503, "{step:?} {fault:?}: exchange {s} {v}");
                    if s == 503 {
                        // a retry: nothing landed (the code is still good), or a replay that
                        // ends whatever landed
                        let (s, _) = h.exchange(&code);
                        assert!(s == 200 || s == 400, "{step:?} {fault:?}: retry {s}");
                        for g in h
                            .backend
                            .flow
                            .grants
                            .borrow()
                            .iter()
                            .filter(|g| g.scopes == ["demo_api:write"])
                        {
                            assert!(
                                s == 200 || g.revoked_at.is_some(),
                                "{step:?} {fault:?}: a grant left live"
                            );
                        }
                    }
                }
            }
            let (s, _) = h.refresh(&rt);
            assert!(
                s == 200 || s == 400 || s == 503,
                "{step:?} {fault:?}: refresh {s}"
            );
        }
    }
    // a lost grant revocation is a 503 on the token page, and Revoke again works
    let h = Harness::flow();
    let (at, _) = h.tokens("erin");
    let id = h.backend.flow.grants.borrow()[0].id.clone();
    h.backend
        .flow
        .inject(AuthzStep::GrantRevoke, Fault::LandedButFailed);
    let (s, _, _) = h.call(&admin(Method::Delete, &format!("/admin/grants/{id}"), None));
    assert_eq!(s, 503);
    let (s, _, _) = h.call(&admin(Method::Delete, &format!("/admin/grants/{id}"), None));
    assert_eq!(s, 204, "the repeat purges");
    assert!(!h.active(&at));
}

#[test]
fn hostile_consent_forms_admin_queries_and_sign_in_targets() {
    let h = Harness::flow();
    let (handle, csrf) = Harness::form_of(&h.authorize("alice", &query(&[])));
    for (what, decision, handle) in [
        ("unknown decision", "maybe", handle.as_str()),
        ("garbage handle", "approve", "../../etc"),
        ("empty handle", "approve", ""),
        ("long handle", "approve", &"a".repeat(5000)),
    ] {
        let o = h.answer("alice", handle, &csrf, decision);
        assert_eq!(o.response.status, 400, "{what}");
        assert_eq!(o.response.header("location"), None, "{what}");
    }
    // a repeated field is refused, never read twice
    let o = h.send(
        &h.page(Method::Post, "/authorize/consent", Some("alice"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(format!(
                "handle={handle}&handle={handle}&csrf={}&decision=approve",
                enc(&csrf)
            )),
    );
    assert_eq!(o.response.status, 400);
    // the handle survived the refused posts
    assert_eq!(
        h.answer("alice", &handle, &csrf, "approve").response.status,
        303
    );
    for q in ["subject=a&subject=b", "subject=%ZZ", "client_id=x"] {
        let (s, _, _) = h.call(&admin(Method::Get, &format!("/admin/grants?{q}"), None));
        assert_eq!(s, 400, "{q}");
    }
    assert_eq!(h.call(&admin(Method::Put, "/admin/grants/x", None)).0, 405);
    // an authorization query of garbage bytes is a page
    let o = h.authorize("alice", "client_id=%FF%FE&redirect_uri=%00");
    assert_eq!(o.response.status, 400);
    assert_eq!(o.response.header("location"), None);
}

#[test]
fn the_sign_in_returns_only_to_an_authorization_request() {
    use crate::app::page::return_to_of;
    let req = |q: &str| Request::new(Method::Get, &format!("/tokens/sign-in?{q}"));
    assert_eq!(
        return_to_of(&req("return_to=%2Fauthorize%3Fclient_id%3Dx")).as_deref(),
        Some("/authorize?client_id=x")
    );
    for bad in [
        "return_to=https%3A%2F%2Fevil.example%2F",
        "return_to=%2F%2Fevil.example%2Fauthorize%3Fx",
        "return_to=%2Ftokens%2F..%2Fauthorize%3Fx",
        "return_to=%2Fauthorize",
        "return_to=%2Fauthorize%3Fa%0D%0ALocation%3A%20x",
        "return_to=%2Fauthorize%3F%5C%5Cevil",
        "other=1",
    ] {
        assert_eq!(return_to_of(&req(bad)), None, "{bad}");
    }
}
