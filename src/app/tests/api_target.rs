//! RFC 8707 `resource` naming an API resource by its registered `resource_uri` (an API that
//! introspects tokens itself): the admin API's checks of the URI, the flow through `/authorize`,
//! the code exchange and refresh, and who sees the token: the API resource it was issued for,
//! never another API resource nor a gate route.

#![allow(clippy::too_many_lines, clippy::many_single_char_names)]

use super::flow::{param, query, Text, APP, REDIRECT, RESOURCE, VERIFIER};
use super::*;

const LEDGER_URI: &str = "https://ledger.example/api";
const AUDIT_URI: &str = "https://audit.example/api";

fn admin(method: Method, path: &str, body: Option<Value>) -> Request {
    let mut r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    r
}

fn enc(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}

impl Harness {
    /// Registers API resource `id` owning `scope` at `uri`: its secret.
    fn api(&self, id: &str, scope: &str, uri: &str) -> String {
        let (s, v, _) = self.call(&admin(
            Method::Post,
            "/admin/resources",
            Some(json!({"id": id, "scopes": [scope], "resource_uri": uri})),
        ));
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["resource_uri"], json!(uri));
        v["secret"].as_str().expect("secret").to_owned()
    }

    /// The app may also ask for `scopes`.
    fn allow(&self, scopes: &[&str]) {
        let mut all = vec!["demo_api:read", "demo_api:write"];
        all.extend_from_slice(scopes);
        let (s, v, _) = self.call(&admin(
            Method::Patch,
            &format!("/admin/clients/{APP}"),
            Some(json!({ "allowed_scopes": all })),
        ));
        assert_eq!(s, 200, "{v}");
    }

    fn exchange_for(&self, code: &str, resource: &str) -> (u16, Value) {
        self.token_form(&format!(
            "grant_type=authorization_code&client_id={APP}&code={code}&code_verifier={VERIFIER}&redirect_uri={}&resource={}",
            enc(REDIRECT),
            enc(resource)
        ))
    }

    /// `GET /authorize` for `resource`: where the browser goes next (a redirect), or `None` for
    /// the consent page.
    fn asks(&self, resource: &str, scope: &str) -> Option<String> {
        let o = self.authorize(
            "alice",
            &query(&[("resource", Some(resource)), ("scope", Some(scope))]),
        );
        match o.response.status {
            200 => None,
            302 => o.response.header("location").map(str::to_owned),
            s => panic!("{s}: {}", o.response.text()),
        }
    }
}

#[test]
fn a_registered_api_resource_is_a_target_and_only_it_sees_its_tokens() {
    let mut h = Harness::flow();
    let ledger = h.api("ledger", "ledger:read", LEDGER_URI);
    let audit = h.api("audit", "audit:read", AUDIT_URI);
    h.allow(&["ledger:read", "audit:read"]);

    // The consent page names the registered URI and the API resource.
    let o = h.authorize(
        "alice",
        &query(&[
            ("resource", Some(LEDGER_URI)),
            ("scope", Some("ledger:read")),
        ]),
    );
    assert_eq!(o.response.status, 200, "{}", o.response.text());
    let html = o.response.text();
    assert!(
        html.contains(LEDGER_URI) && html.contains("ledger:read"),
        "{html}"
    );

    let code = h.code(
        "alice",
        &query(&[
            ("resource", Some(LEDGER_URI)),
            ("scope", Some("ledger:read")),
        ]),
    );
    let (s, t) = h.exchange_for(&code, LEDGER_URI);
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["scope"], json!("ledger:read"));
    let at = t["access_token"].as_str().expect("at").to_owned();
    let rt = t["refresh_token"].as_str().expect("rt").to_owned();

    // Its own API resource sees it, with the audience exactly the registered URI.
    let (s, i, _) = h.introspect_as("ledger", &ledger, &at);
    assert_eq!(s, 200);
    assert_eq!(
        (
            i["active"].clone(),
            i["aud"].clone(),
            i["scope"].clone(),
            i["sub"].clone()
        ),
        (
            json!(true),
            json!(LEDGER_URI),
            json!("ledger:read"),
            json!("alice")
        )
    );
    // Hostile: the same token shown to another API resource, to the gate's API resource, and
    // through the gate: inactive everywhere else.
    assert_eq!(
        h.introspect_as("audit", &audit, &at).1,
        json!({"active": false})
    );
    assert_eq!(h.introspect(&at).1, json!({"active": false}));
    assert_eq!(h.through("GET", "/gw/demo/x", &at), 401);

    // A token for the gate route is not the ledger's either.
    let (gate_at, _) = h.tokens("alice");
    assert_eq!(h.introspect(&gate_at).1["aud"], json!(RESOURCE));
    assert_eq!(
        h.introspect_as("ledger", &ledger, &gate_at).1,
        json!({"active": false})
    );

    // Refresh keeps the audience; another resource on refresh is invalid_target.
    h.now += 5;
    let (s, v) = h.token_form(&format!(
        "grant_type=refresh_token&client_id={APP}&refresh_token={rt}&resource={}",
        enc(AUDIT_URI)
    ));
    assert_eq!(
        (s, v["error"].clone()),
        (400, json!("invalid_target")),
        "{v}"
    );
    let (s, v) = h.token_form(&format!(
        "grant_type=refresh_token&client_id={APP}&refresh_token={rt}&resource={}",
        enc(LEDGER_URI)
    ));
    assert_eq!(s, 200, "{v}");
    let at2 = v["access_token"].as_str().expect("at2");
    assert_eq!(
        h.introspect_as("ledger", &ledger, at2).1["aud"],
        json!(LEDGER_URI)
    );
    assert_eq!(
        h.introspect_as("audit", &audit, at2).1,
        json!({"active": false})
    );

    // A code for the ledger cannot be exchanged naming the audit API.
    let code = h.code(
        "alice",
        &query(&[
            ("resource", Some(LEDGER_URI)),
            ("scope", Some("ledger:read")),
        ]),
    );
    let (s, v) = h.exchange_for(&code, AUDIT_URI);
    assert_eq!(
        (s, v["error"].clone()),
        (400, json!("invalid_target")),
        "{v}"
    );
}

#[test]
fn unknown_disabled_or_unregistered_uris_are_invalid_target() {
    let h = Harness::flow();
    h.api("ledger", "ledger:read", LEDGER_URI);
    h.allow(&["ledger:read"]);
    let target_error = |to: Option<String>| {
        let to = to.expect("a redirect");
        assert!(to.starts_with("http://127.0.0.1:4501/cb?"), "{to}");
        assert_eq!(param(&to, "iss").as_deref(), Some("https://patgate.test"));
        param(&to, "error")
    };
    for near in [
        "https://ledger.example/api/",
        "https://ledger.example/api/x",
        "https://ledger.example/ap",
        "https://ledger.example:8443/api",
        "http://ledger.example/api",
        "https://ledger.example/api?x=1",
        "https://u@ledger.example/api",
        "https://ledger.example.evil/api",
    ] {
        assert_eq!(
            target_error(h.asks(near, "ledger:read")).as_deref(),
            Some("invalid_target"),
            "{near}"
        );
    }
    // Scheme and host case and nothing else fold (RFC 3986 6.2.2).
    assert_eq!(h.asks("HTTPS://LEDGER.example/api", "ledger:read"), None);
    // Another API's scope on this resource: invalid_scope.
    assert_eq!(
        target_error(h.asks(LEDGER_URI, "demo_api:read")).as_deref(),
        Some("invalid_scope")
    );

    // Disabled: invalid_target; enabled again: a target again.
    let patch = |body: Value| h.call(&admin(Method::Patch, "/admin/resources/ledger", Some(body)));
    assert_eq!(patch(json!({"enabled": false})).0, 200);
    assert_eq!(
        target_error(h.asks(LEDGER_URI, "ledger:read")).as_deref(),
        Some("invalid_target")
    );
    assert_eq!(patch(json!({"enabled": true})).0, 200);
    assert_eq!(h.asks(LEDGER_URI, "ledger:read"), None);
    // Moved to another URI: the old one names nothing; cleared: neither does the new one.
    let (s, v, _) = patch(json!({"resource_uri": "https://ledger.example/v2"}));
    assert_eq!(
        (s, v["resource_uri"].clone()),
        (200, json!("https://ledger.example/v2"))
    );
    assert_eq!(
        target_error(h.asks(LEDGER_URI, "ledger:read")).as_deref(),
        Some("invalid_target")
    );
    assert_eq!(h.asks("https://ledger.example/v2", "ledger:read"), None);
    let (s, v, _) = patch(json!({"resource_uri": null}));
    assert_eq!((s, v["resource_uri"].clone()), (200, Value::Null), "{v}");
    assert_eq!(
        target_error(h.asks("https://ledger.example/v2", "ledger:read")).as_deref(),
        Some("invalid_target")
    );
}

#[test]
fn the_admin_api_checks_resource_uris() {
    let mut h = Harness::flow();
    h.api("ledger", "ledger:read", LEDGER_URI);
    let create = |id: &str, uri: Value| {
        h.call(&admin(
            Method::Post,
            "/admin/resources",
            Some(json!({"id": id, "scopes": [format!("{id}:read")], "resource_uri": uri})),
        ))
    };
    for bad in [
        json!("ledger.example/api"),
        json!("https://LEDGER.example/x"),
        json!("https://ledger.example"),
        json!("https://ledger.example/x?y"),
        json!("https://ledger.example/x#y"),
        json!("https://u:p@ledger.example/x"),
        json!("http://ledger.example/x"),
        json!("http://127.0.0.1:9/x"),
        json!("javascript:alert(1)"),
        json!(format!("https://ledger.example/{}", "a".repeat(600))),
        json!(42),
        json!(["https://ledger.example/x"]),
    ] {
        let (s, v, _) = create("bad", bad.clone());
        assert_eq!(
            (s, v["error"].clone()),
            (400, json!("invalid_request")),
            "{bad}: {v}"
        );
    }
    assert_eq!(
        h.call(&admin(Method::Get, "/admin/resources/bad", None)).0,
        404
    );
    // One API per identifier: taken on create and on change.
    assert_eq!(create("twin", json!(LEDGER_URI)).0, 409);
    assert_eq!(
        h.call(&admin(Method::Get, "/admin/resources/twin", None)).0,
        404
    );
    assert_eq!(create("audit", json!(AUDIT_URI)).0, 201);
    let (s, _, _) = h.call(&admin(
        Method::Patch,
        "/admin/resources/audit",
        Some(json!({"resource_uri": LEDGER_URI})),
    ));
    assert_eq!(s, 409);
    let (s, v, _) = h.call(&admin(Method::Get, "/admin/resources/audit", None));
    assert_eq!((s, v["resource_uri"].clone()), (200, json!(AUDIT_URI)));
    // Without one: null, and no resource names it.
    assert_eq!(create("plain", Value::Null).0, 201);
    let (_, v, _) = h.call(&admin(Method::Get, "/admin/resources/plain", None));
    assert_eq!(v["resource_uri"], Value::Null);
    // http loopback only where development allows loopback documents.
    h.cfg.clients.metadata_http_loopback = true;
    let (s, v, _) = h.call(&admin(
        Method::Post,
        "/admin/resources",
        Some(json!({"id": "local", "scopes": [], "resource_uri": "http://127.0.0.1:9100/api"})),
    ));
    assert_eq!(s, 201, "{v}");
}
