//! Scopes through the handlers: the token endpoint's `scope` parameter (RFC 6749 3.3 grammar,
//! repeats collapsed, hostile values refused with `invalid_scope`), and a JWT's `scope` claim
//! (space-separated, intersected with the introspecting resource's scopes).

use super::*;
use crate::model::{Client, SecretSet, TokenFormat};

fn token_req(scope: &str, id: &str, secret: &str) -> Request {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &format!("Basic {auth}"))
        .body(format!("grant_type=client_credentials&scope={scope}"))
}

#[test]
fn token_endpoint_scope_parameter() {
    let h = Harness::new();
    for (scope, want) in [
        ("demo_api:read", "demo_api:read"),
        ("demo_api:read%20demo_api:read", "demo_api:read"),
        ("%20%20demo_api:read%20", "demo_api:read"),
        ("demo_api:read+demo_api:read", "demo_api:read"),
        // An empty parameter counts as absent (the form parser drops empty values): every
        // allowed scope.
        ("", "demo_api:read"),
    ] {
        let (s, v, _) = h.call(&token_req(scope, "demo_client", "demo-client-secret"));
        assert_eq!((s, v["scope"].as_str()), (200, Some(want)), "{scope}: {v}");
    }
    let long = "a".repeat(crate::scopes::MAX_SCOPE_LEN + 1);
    for scope in [
        "%20",
        "demo_api:write",
        "demo_api:read%20other_api:read",
        "demo_api:read%22",
        "demo_api%5Cread",
        "demo_api:read%09x",
        "demo_api:r%C3%A9ad",
        "demo_api:read%00",
        &long,
    ] {
        let (s, v, _) = h.call(&token_req(scope, "demo_client", "demo-client-secret"));
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_scope")),
            "{scope}: {v}"
        );
        let description = v["error_description"].as_str().unwrap_or("");
        assert!(!description.is_empty() && description.len() < 300, "{v}");
    }
}

#[test]
fn jwt_scope_claim_is_space_separated_and_intersected_on_introspection() {
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
    let (s, v, _) = h.call(&token_req(
        "other_api:read%20demo_api:read%20other_api:read",
        "jwt_client",
        "jwt-secret",
    ));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["scope"], "other_api:read demo_api:read");
    let jwt = v["access_token"].as_str().expect("jwt").to_owned();
    let payload = jwt.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("json");
    assert_eq!(claims["scope"], "other_api:read demo_api:read");
    assert_eq!(claims["aud"], json!(["demo_api", "other_api"]));
    for (resource, secret, visible) in [
        ("demo_api", "demo-api-secret", "demo_api:read"),
        ("other_api", "other-api-secret", "other_api:read"),
    ] {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{resource}:{secret}"));
        let req = Request::new(Method::Post, "/oauth/introspect")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", &format!("Basic {auth}"))
            .body(format!("token={jwt}"));
        let (s, v, _) = h.call(&req);
        assert_eq!(
            (s, v["active"].as_bool(), v["scope"].as_str()),
            (200, Some(true), Some(visible)),
            "{resource}: {v}"
        );
    }
}
