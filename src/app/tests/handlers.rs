//! Host tests for the handlers that had none: the token endpoint (`client_credentials`, reference
//! and JWT), JWT introspection and RFC 7009 revocation of JWTs, RFC 9701 signed introspection, the
//! JWKS, discovery, and the admin API's create/read/update/delete/rotate-secret cycle.

use super::*;
use crate::model::{Client, SecretSet, TokenFormat};

fn form_req(path: &str, body: &str) -> Request {
    Request::new(Method::Post, path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn admin_req(method: Method, path: &str, body: Option<Value>) -> Request {
    let r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    match body {
        Some(b) => r
            .header("content-type", "application/json")
            .body(b.to_string()),
        None => r,
    }
}

fn with_jwt_client() -> Harness {
    let h = Harness::new();
    h.backend.clients.borrow_mut().push(Client {
        id: "jwt_client".into(),
        uid: "uid-jwt_client".into(),
        secret: Some(SecretSet {
            current: ClientSecret::new("jwt-secret").hash(),
            previous: None,
        }),
        allowed_scopes: vec!["demo_api:read".into(), "other_api:read".into()],
        token_format: TokenFormat::Jwt,
        token_lifetime: 600,
        enabled: true,
    });
    h
}

#[test]
fn client_credentials_reference_token_is_issued_introspected_and_revoked() {
    let h = Harness::new();
    let req = form_req(
        "/oauth/token",
        "grant_type=client_credentials&scope=demo_api:read",
    )
    .header("authorization", &basic("demo_client", "demo-client-secret"));
    let (s, v, o) = h.call(&req);
    assert_eq!(s, 200, "{v}");
    assert_eq!(o.response.header("cache-control"), Some("no-store"));
    assert_eq!(o.response.header("pragma"), Some("no-cache"));
    assert_eq!(
        (v["token_type"].as_str(), v["expires_in"].as_i64()),
        (Some("Bearer"), Some(3600))
    );
    assert_eq!(v["scope"], "demo_api:read");
    let token = v["access_token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("pga_"), "{token}");
    let (_, v, _) = h.introspect(&token);
    assert_eq!(
        (v["active"].as_bool(), v["client_id"].as_str()),
        (Some(true), Some("demo_client"))
    );
    // RFC 7009 by its client; another client may not
    let other = form_req("/oauth/revoke", &format!("token={token}"))
        .header("authorization", &basic("pat_client", "x"));
    assert_eq!(h.call(&other).0, 401, "a public client sending a secret");
    let revoke = form_req("/oauth/revoke", &format!("token={token}"))
        .header("authorization", &basic("demo_client", "demo-client-secret"));
    assert_eq!(h.call(&revoke).0, 200);
    assert_eq!(h.introspect(&token).1, json!({"active": false}));
}

#[test]
fn token_endpoint_errors_are_rfc6749() {
    let h = Harness::new();
    let cases = [
        ("grant_type=client_credentials", None, 401, "invalid_client"),
        (
            "grant_type=password&username=a&password=b",
            Some(("demo_client", "demo-client-secret")),
            400,
            "unsupported_grant_type",
        ),
        (
            "scope=demo_api:read",
            Some(("demo_client", "demo-client-secret")),
            400,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials&scope=other_api:read",
            Some(("demo_client", "demo-client-secret")),
            400,
            "invalid_scope",
        ),
        (
            "grant_type=client_credentials",
            Some(("demo_client", "wrong")),
            401,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials&client_id=pat_client",
            None,
            400,
            "unauthorized_client",
        ),
    ];
    for (body, auth, status, error) in cases {
        let mut req = form_req("/oauth/token", body);
        if let Some((id, secret)) = auth {
            req = req.header("authorization", &basic(id, secret));
        }
        let (s, v, o) = h.call(&req);
        assert_eq!(
            (s, v["error"].as_str()),
            (status, Some(error)),
            "{body}: {v}"
        );
        if s == 401 {
            assert_eq!(
                o.response.header("www-authenticate"),
                Some("Basic realm=\"patgate\"")
            );
        }
    }
}

#[test]
fn jwt_access_tokens_verify_against_the_jwks_introspect_and_revoke() {
    let h = with_jwt_client();
    let req = form_req("/oauth/token", "grant_type=client_credentials")
        .header("authorization", &basic("jwt_client", "jwt-secret"));
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 200, "{v}");
    let jwt = v["access_token"].as_str().expect("jwt").to_owned();
    assert_eq!(jwt.split('.').count(), 3);
    let keys = h.cfg.signing_keys.as_ref().expect("keys");
    let (claims, exp) = keys.verify_access_token(&jwt, NOW).expect("verifies");
    assert_eq!(
        (claims.client_id.as_str(), claims.sub.as_str()),
        ("jwt_client", "jwt_client")
    );
    assert_eq!(exp, NOW + 600);
    assert_eq!(
        claims.aud,
        vec!["demo_api".to_owned(), "other_api".to_owned()]
    );
    // the JWKS publishes the public key only
    let (s, jwks, _) = h.call(&Request::new(Method::Get, "/.well-known/jwks.json"));
    assert_eq!(s, 200);
    assert!(!jwks.to_string().contains("\"d\""));
    // introspection applies the scope rule
    let (_, v, _) = h.introspect(&jwt);
    assert_eq!(
        (v["active"].as_bool(), v["scope"].as_str()),
        (Some(true), Some("demo_api:read"))
    );
    let (_, v, _) = h.introspect_as("other_api", "other-api-secret", &jwt);
    assert_eq!(v["scope"], "other_api:read");
    // RFC 7009: the jti goes on the denylist
    let revoke = form_req("/oauth/revoke", &format!("token={jwt}"))
        .header("authorization", &basic("jwt_client", "jwt-secret"));
    assert_eq!(h.call(&revoke).0, 200);
    assert_eq!(h.introspect(&jwt).1, json!({"active": false}));
    // a tampered JWT is inactive
    let mut t = jwt.clone();
    t.pop();
    t.push(if jwt.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(h.introspect(&t).1, json!({"active": false}));
}

#[test]
fn rfc9701_signed_introspection_signs_the_answer() {
    let h = Harness::new();
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    let req = introspect_req(&token).header("accept", "application/token-introspection+jwt");
    let o = h.send(&req);
    assert_eq!(o.response.status, 200);
    assert_eq!(
        o.response.header("content-type"),
        Some("application/token-introspection+jwt")
    );
    let jwt = String::from_utf8(o.response.body.clone()).expect("utf8");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(payload["aud"], "demo_api");
    assert_eq!(payload["iss"], "https://patgate.test");
    assert_eq!(payload["token_introspection"]["active"], true);
    assert_eq!(payload["token_introspection"]["sub"], "alice");
    // inactive answers are signed too
    let o =
        h.send(&introspect_req("garbage").header("accept", "application/token-introspection+jwt"));
    let body = String::from_utf8(o.response.body).expect("utf8");
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(payload["token_introspection"], json!({"active": false}));
}

#[test]
fn discovery_document_names_the_endpoints() {
    let h = Harness::new();
    let (s, v, _) = h.call(&Request::new(
        Method::Get,
        "/.well-known/oauth-authorization-server",
    ));
    assert_eq!(s, 200);
    assert_eq!(v["issuer"], "https://patgate.test");
    assert_eq!(v["token_endpoint"], "https://patgate.test/oauth/token");
    assert_eq!(
        v["introspection_endpoint"],
        "https://patgate.test/oauth/introspect"
    );
    assert_eq!(
        v["revocation_endpoint"],
        "https://patgate.test/oauth/revoke"
    );
    assert_eq!(v["jwks_uri"], "https://patgate.test/.well-known/jwks.json");
}

#[test]
fn admin_api_create_read_update_rotate_delete() {
    let h = Harness::new();
    // resources
    let (s, v, _) = h.call(&admin_req(
        Method::Post,
        "/admin/resources",
        Some(json!({"id":"new_api","scopes":["new_api:read"]})),
    ));
    assert_eq!(s, 201, "{v}");
    let secret = v["secret"].as_str().expect("secret shown once").to_owned();
    let (s, v, _) = h.call(&admin_req(Method::Get, "/admin/resources/new_api", None));
    assert_eq!(s, 200);
    assert!(!v.to_string().contains(&secret), "never shown again");
    assert_eq!(
        h.call(&admin_req(
            Method::Post,
            "/admin/resources",
            Some(json!({"id":"dup","scopes":["new_api:read"]}))
        ))
        .0,
        409,
        "a scope belongs to one resource"
    );
    // clients
    let (s, v, _) = h.call(&admin_req(
        Method::Post,
        "/admin/clients",
        Some(json!({"id":"svc","allowed_scopes":["new_api:read"],"token_lifetime":120})),
    ));
    assert_eq!(s, 201, "{v}");
    let svc_secret = v["client_secret"].as_str().expect("secret").to_owned();
    let cc = |secret: &str| {
        form_req("/oauth/token", "grant_type=client_credentials")
            .header("authorization", &basic("svc", secret))
    };
    let (s, v, _) = h.call(&cc(&svc_secret));
    assert_eq!((s, v["expires_in"].as_i64()), (200, Some(120)), "{v}");
    let token = v["access_token"].as_str().expect("token").to_owned();
    assert_eq!(
        h.introspect_as("new_api", &secret, &token).1["active"],
        true
    );
    // rotate the client's secret with a grace period: both work, then only the new one
    let (s, v, _) = h.call(&admin_req(
        Method::Post,
        "/admin/clients/svc/rotate-secret",
        Some(json!({"grace_seconds":60})),
    ));
    assert_eq!(s, 200, "{v}");
    let fresh = v["client_secret"].as_str().expect("secret").to_owned();
    assert_eq!(h.call(&cc(&svc_secret)).0, 200, "old secret within grace");
    assert_eq!(h.call(&cc(&fresh)).0, 200);
    let mut h = h;
    h.now += 61;
    assert_eq!(h.call(&cc(&svc_secret)).0, 401, "old secret after grace");
    // disable, list, delete
    assert_eq!(
        h.call(&admin_req(
            Method::Patch,
            "/admin/clients/svc",
            Some(json!({"enabled":false}))
        ))
        .0,
        200
    );
    assert_eq!(h.call(&cc(&fresh)).0, 401);
    let (_, v, _) = h.call(&admin_req(Method::Get, "/admin/clients", None));
    assert!(v["clients"]
        .as_array()
        .expect("list")
        .iter()
        .any(|c| c["id"] == "svc" && c["enabled"] == false));
    assert_eq!(
        h.call(&admin_req(Method::Delete, "/admin/clients/svc", None))
            .0,
        204
    );
    assert_eq!(
        h.call(&admin_req(Method::Get, "/admin/clients/svc", None))
            .0,
        404
    );
    // authentication
    let (s, _, o) = h
        .call(&Request::new(Method::Get, "/admin/clients").header("authorization", "Bearer wrong"));
    assert_eq!(s, 401);
    assert!(o
        .response
        .header("www-authenticate")
        .is_some_and(|w| w.contains("invalid_token")));
}
