//! Hostile input at the service level: bodies that are not JSON objects, ids a URL
//! cannot address, tokens of the wrong type acting as users, missing keys or clients, `Accept`
//! weights, the discovery cache, and `If-Match` on admin writes.

#![allow(clippy::many_single_char_names)]

use super::*;

fn admin(method: Method, path: &str, body: Option<Value>) -> Request {
    let mut r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    r
}

fn raw_json(method: Method, path: &str, auth: &str, body: &str) -> Request {
    Request::new(method, path)
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(body.to_owned())
}

fn error_of(v: &Value) -> (&str, &str) {
    (
        v["error"].as_str().unwrap_or(""),
        v["error_description"].as_str().unwrap_or(""),
    )
}

#[test]
fn json_arrays_do_not_create_pats_or_registry_records() {
    let h = Harness::new();
    let user = format!("Bearer {}", user_jwt("alice"));
    let req = raw_json(
        Method::Post,
        "/api/pats",
        &user,
        r#"["name", ["demo_api:read"], null, 1]"#,
    );
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        error_of(&v),
        (
            "invalid_request",
            "the JSON body must be an object, not an array"
        )
    );
    assert!(h.backend.tokens.borrow().is_empty());

    let admin_auth = format!("Bearer {ADMIN}");
    let before = h.backend.resources.borrow().len();
    let (s, v, _) = h.call(&raw_json(
        Method::Post,
        "/admin/resources",
        &admin_auth,
        r#"["evil", ["evil:read"]]"#,
    ));
    assert_eq!((s, error_of(&v).0), (400, "invalid_request"), "{v}");
    assert_eq!(h.backend.resources.borrow().len(), before);
    let (s, _, _) = h.call(&raw_json(
        Method::Post,
        "/admin/clients",
        &admin_auth,
        r#"["evil", false, ["demo_api:read"]]"#,
    ));
    assert_eq!(s, 400);
    assert!(!h.backend.clients.borrow().iter().any(|c| c.id == "evil"));
    for body in ["[null, null]", "null", "\"x\"", "7"] {
        let (s, v, _) = h.call(&raw_json(
            Method::Patch,
            "/admin/clients/demo_client",
            &admin_auth,
            body,
        ));
        assert_eq!((s, error_of(&v).0), (400, "invalid_request"), "{body}");
    }
    // An object still works.
    let (s, v, _) = h.call(&admin(
        Method::Post,
        "/admin/resources",
        Some(json!({"id":"fine","scopes":["fine:read"]})),
    ));
    assert_eq!(s, 201, "{v}");
}

#[test]
fn dot_ids_are_refused() {
    let h = Harness::new();
    for id in [".", ".."] {
        let (s, v, _) = h.call(&admin(
            Method::Post,
            "/admin/resources",
            Some(json!({"id": id, "scopes": []})),
        ));
        assert_eq!((s, error_of(&v).0), (400, "invalid_request"), "{id}: {v}");
        let (s, _, _) = h.call(&admin(
            Method::Post,
            "/admin/clients",
            Some(json!({"id": id, "allowed_scopes": []})),
        ));
        assert_eq!(s, 400, "{id}");
    }
    assert!(!h
        .backend
        .resources
        .borrow()
        .iter()
        .any(|r| r.id.starts_with('.')));
    // Dots inside an id are fine ("..." is no dot-segment).
    for id in ["a.b", "...", ".x"] {
        let (s, v, _) = h.call(&admin(
            Method::Post,
            "/admin/resources",
            Some(json!({"id": id, "scopes": []})),
        ));
        assert_eq!(s, 201, "{id}: {v}");
    }
}

fn hs256(claims: &Value, typ: Option<&str>) -> String {
    let mut head = json!({"alg":"HS256"});
    if let Some(t) = typ {
        head["typ"] = json!(t);
    }
    let head = b64(head.to_string().as_bytes());
    let body = b64(claims.to_string().as_bytes());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(USER_SECRET.as_bytes()).expect("key");
    mac.update(format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", b64(&mac.finalize().into_bytes()))
}

#[test]
fn user_jwts_with_unusable_sub_or_foreign_typ_are_refused() {
    let h = Harness::new();
    let list = |jwt: &str| {
        let (s, v, o) = h.call(
            &Request::new(Method::Get, "/api/pats")
                .header("authorization", &format!("Bearer {jwt}")),
        );
        let _ = o;
        (s, v, h.logged())
    };
    for sub in ["", " ", "\t", "alice\n", "a\u{0}b", "\u{1b}[2J"] {
        let jwt = hs256(
            &json!({"iss":"idp","aud":"patgate","sub":sub,"exp":NOW + 60}),
            Some("JWT"),
        );
        let (s, v, log) = list(&jwt);
        assert_eq!((s, error_of(&v).0), (401, "invalid_token"), "{sub:?}");
        assert!(
            log.contains(r#""event":"error""#) && log.contains("sub"),
            "{sub:?}"
        );
    }
    for typ in [
        "at+jwt",
        "application/AT+JWT",
        "token-introspection+jwt",
        "patgate-assertion+jwt",
    ] {
        let jwt = hs256(
            &json!({"iss":"idp","aud":"patgate","sub":"alice","exp":NOW + 60}),
            Some(typ),
        );
        let (s, _, log) = list(&jwt);
        assert_eq!(s, 401, "{typ}");
        assert!(
            log.contains(r#""event":"error""#) && log.contains("typ"),
            "{typ}"
        );
    }
}

/// Even an operator who points the user keys at patgate's own JWKS (same issuer, an audience
/// patgate puts in its tokens) does not let a patgate access token act as the user.
#[test]
fn a_patgate_access_token_is_never_a_user_identity() {
    let mut h = Harness::new();
    let keys = h.cfg.signing_keys.clone().expect("keys");
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    let req = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id=pat_client&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={pat}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
        ));
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 200, "{v}");
    let at = v["access_token"].as_str().expect("jwt").to_owned();
    h.cfg.user_auth = crate::jose::UserAuthConfig::from_parts(
        h.cfg.issuer.clone(),
        "demo_api".into(),
        None,
        Some(keys.jwks_json()),
        None,
    )
    .expect("config");
    let (s, v, o) = h.call(
        &Request::new(Method::Get, "/api/pats").header("authorization", &format!("Bearer {at}")),
    );
    assert_eq!((s, error_of(&v).0), (401, "invalid_token"), "{v}");
    let _ = o;
    assert!(h.logged().contains("typ"));
}

fn exchange_pat(pat: &str, client: &str) -> Request {
    Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={client}&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={pat}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
        ))
}

#[test]
fn without_signing_keys_nothing_is_a_500_and_discovery_does_not_promise_jwts() {
    let mut h = Harness::new();
    h.cfg.signing_keys = None;
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    let (s, v, o) = h.call(&exchange_pat(&pat, "pat_client"));
    assert_eq!((s, error_of(&v).0), (400, "invalid_request"), "{v}");
    assert_eq!(o.response.header("pragma"), Some("no-cache"));
    // A JWT client left over from a configuration with keys.
    h.backend.clients.borrow_mut().push(Client {
        id: "jwt_client".into(),
        uid: "uid-test".into(),
        secret: Some(SecretSet {
            current: ClientSecret::new("s3cret").hash(),
            previous: None,
        }),
        allowed_scopes: vec!["demo_api:read".into()],
        token_format: TokenFormat::Jwt,
        token_lifetime: 600,
        enabled: true,
    });
    h.isolate.forget_client("jwt_client"); // the client table was read before the push
    let cc = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=jwt_client&client_secret=s3cret");
    let (s, v, _) = h.call(&cc);
    assert_eq!((s, error_of(&v).0), (400, "invalid_request"), "{v}");
    // The admin API does not create such clients.
    let (s, v, _) = h.call(&admin(
        Method::Post,
        "/admin/clients",
        Some(json!({"id":"j2","allowed_scopes":["demo_api:read"],"token_format":"jwt"})),
    ));
    assert_eq!((s, error_of(&v).0), (400, "invalid_request"), "{v}");
    let (s, _, _) = h.call(&admin(
        Method::Patch,
        "/admin/clients/demo_client",
        Some(json!({"token_format":"jwt"})),
    ));
    assert_eq!(s, 400);
    // Signed introspection cannot be had either: a 400, not a 500.
    let req = introspect_req(&pat).header("accept", "application/token-introspection+jwt");
    let (s, v, _) = h.call(&req);
    assert_eq!((s, error_of(&v).0), (400, "invalid_request"), "{v}");

    let (s, m, _) = h.call(&Request::new(
        Method::Get,
        "/.well-known/oauth-authorization-server",
    ));
    assert_eq!(s, 200);
    for k in [
        "jwks_uri",
        "introspection_signing_alg_values_supported",
        "access_token_signing_alg_values_supported",
    ] {
        assert!(m.get(k).is_none(), "{k} advertised without keys: {m}");
    }
    // Single sign-on to PAT still works, so token exchange is still offered.
    assert!(m["grant_types_supported"]
        .as_array()
        .expect("grants")
        .contains(&json!("urn:ietf:params:oauth:grant-type:token-exchange")));
}

#[test]
fn without_the_pat_client_pats_are_a_400_and_discovery_offers_no_exchange() {
    let mut h = Harness::new();
    h.cfg.signing_keys = None;
    h.backend
        .clients
        .borrow_mut()
        .retain(|c| c.id != PAT_CLIENT_ID);
    let (s, v) = h.create(
        "alice",
        json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":1}),
    );
    // one meaning, missing or disabled: PATs cannot be created here now (docs/API.md)
    assert_eq!((s, error_of(&v).0), (400, "unauthorized_client"), "{v}");
    let (s, m, _) = h.call(&Request::new(
        Method::Get,
        "/.well-known/oauth-authorization-server",
    ));
    assert_eq!(s, 200);
    assert_eq!(
        m["grant_types_supported"],
        json!(["client_credentials", "authorization_code", "refresh_token"])
    );
    assert!(m
        .get("token_exchange_subject_token_types_supported")
        .is_none());
    // Public clients still exist (client ID metadata documents).
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(m["client_id_metadata_document_supported"], json!(true));
    assert!(
        m.get("registration_endpoint").is_none(),
        "off unless configured"
    );
    h.cfg.clients.dynamic_registration = true;
    h.now += h.cfg.registry_cache_secs;
    let (_, m, _) = h.call(&Request::new(
        Method::Get,
        "/.well-known/oauth-authorization-server",
    ));
    assert_eq!(
        m["registration_endpoint"],
        json!(format!("{}/oauth/register", h.cfg.issuer))
    );
}

#[test]
fn discovery_is_served_from_the_isolate_cache() {
    let h = Harness::new();
    let get = || {
        h.call(&Request::new(
            Method::Get,
            "/.well-known/oauth-authorization-server",
        ))
    };
    let (s, first, _) = get();
    assert_eq!(s, 200);
    h.backend.take_counts();
    for _ in 0..5 {
        let (s, again, o) = get();
        assert_eq!((s, &again), (200, &first));
        assert_eq!(o.response.header("cache-control"), Some("no-store"));
    }
    assert_eq!(
        h.backend.take_counts(),
        Counts::default(),
        "no storage read"
    );
    // An admin change in this isolate shows at once.
    let (s, _, _) = h.call(&admin(
        Method::Post,
        "/admin/resources",
        Some(json!({"id":"billing","scopes":["billing:read"]})),
    ));
    assert_eq!(s, 201);
    let (_, after, _) = get();
    assert!(after["scopes_supported"]
        .as_array()
        .expect("scopes")
        .contains(&json!("billing:read")));
    // A change made elsewhere shows within REGISTRY_CACHE_SECONDS.
    h.backend
        .resources
        .borrow_mut()
        .retain(|r| r.id != "billing");
    let (_, cached, _) = get();
    assert_eq!(cached, after);
    let mut h = h;
    h.now += h.cfg.registry_cache_secs;
    let (_, fresh, _) = h.call(&Request::new(
        Method::Get,
        "/.well-known/oauth-authorization-server",
    ));
    assert!(!fresh["scopes_supported"]
        .as_array()
        .expect("scopes")
        .contains(&json!("billing:read")));
}

#[test]
fn openid_configuration_is_not_served() {
    let h = Harness::new();
    let (s, v, _) = h.call(&Request::new(
        Method::Get,
        "/.well-known/openid-configuration",
    ));
    assert_eq!((s, error_of(&v).0), (404, "not_found"));
}

#[test]
fn accept_with_q_zero_gets_plain_json() {
    let h = Harness::new();
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    let plain = introspect_req(&pat).header(
        "accept",
        "application/token-introspection+jwt;q=0, application/json",
    );
    let (s, v, o) = h.call(&plain);
    assert_eq!((s, v["active"].as_bool()), (200, Some(true)));
    assert_eq!(o.response.header("content-type"), Some("application/json"));
    let signed = introspect_req(&pat).header("accept", "application/token-introspection+jwt;q=0.5");
    let (_, _, o) = h.call(&signed);
    assert_eq!(
        o.response.header("content-type"),
        Some("application/token-introspection+jwt")
    );
}

#[test]
fn refused_bodies_carry_the_endpoint_limit_and_cache_headers() {
    let isolate = crate::app::IsolateState::default();
    let r = refuse(
        &isolate,
        "/oauth/token",
        crate::error::Error::PayloadTooLarge(crate::http::body_limit("/oauth/token")),
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert_eq!(
        error_of(&r.json_body()),
        ("invalid_request", "the body is larger than 8192 bytes")
    );
    let r = refuse(
        &isolate,
        "/api/pats",
        crate::error::Error::PayloadTooLarge(crate::http::body_limit("/api/pats")),
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), None);
    assert_eq!(
        error_of(&r.json_body()).1,
        "the body is larger than 16384 bytes"
    );
    // An unreadable body is a client error with no cause to log; an internal one is logged.
    let _ = refuse(
        &isolate,
        "/api/pats",
        crate::error::Error::Internal("stream broke".into()),
    );
    let lines: Vec<String> = isolate
        .take_events()
        .iter()
        .map(crate::events::Event::line)
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(r#""event":"error""#) && lines[0].contains("stream broke"));
}

fn etag_of(o: &Outcome) -> String {
    o.response.header("etag").expect("etag").to_owned()
}

#[test]
fn admin_writes_honour_if_match() {
    let h = Harness::new();
    for (path, patch) in [
        ("/admin/clients/demo_client", json!({"token_lifetime": 600})),
        (
            "/admin/resources/demo_api",
            json!({"scopes": ["demo_api:read", "demo_api:write", "demo_api:x"]}),
        ),
    ] {
        let (s, _, got) = h.call(&admin(Method::Get, path, None));
        assert_eq!(s, 200);
        let tag = etag_of(&got);
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() == 34,
            "{tag}"
        );
        // Operator A writes with the tag; its answer carries the new tag.
        let (s, _, a) =
            h.call(&admin(Method::Patch, path, Some(patch.clone())).header("if-match", &tag));
        assert_eq!(s, 200);
        let new_tag = etag_of(&a);
        assert_ne!(new_tag, tag);
        assert_eq!(etag_of(&h.call(&admin(Method::Get, path, None)).2), new_tag);
        // Operator B, still holding the old tag, is refused and changes nothing.
        let (s, v, b) = h.call(
            &admin(Method::Patch, path, Some(json!({"enabled": false}))).header("if-match", &tag),
        );
        assert_eq!((s, error_of(&v).0), (412, "precondition_failed"), "{v}");
        assert_eq!(b.response.header("cache-control"), Some("no-store"));
        assert_eq!(h.call(&admin(Method::Get, path, None)).1["enabled"], true);
        // Weak tags never match (strong comparison); a list or `*` may.
        let weak = format!("W/{new_tag}");
        assert_eq!(
            h.call(&admin(Method::Patch, path, Some(json!({}))).header("if-match", &weak))
                .0,
            412
        );
        let list = format!("\"nope\", {new_tag}");
        assert_eq!(
            h.call(&admin(Method::Patch, path, Some(json!({}))).header("if-match", &list))
                .0,
            200
        );
        assert_eq!(
            h.call(&admin(Method::Patch, path, Some(json!({}))).header("if-match", "*"))
                .0,
            200
        );
        // Rotating the secret is a change too, and is conditional as well.
        let rotate = format!("{path}/rotate-secret");
        assert_eq!(
            h.call(&admin(Method::Post, &rotate, None).header("if-match", &tag))
                .0,
            412
        );
        let (s, _, r) = h.call(
            &admin(Method::Post, &rotate, Some(json!({"grace_seconds": 0})))
                .header("if-match", &new_tag),
        );
        assert_eq!(s, 200);
        let rotated = etag_of(&r);
        assert_ne!(rotated, new_tag);
        let (s, _, r2) = h.call(&admin(
            Method::Post,
            &rotate,
            Some(json!({"grace_seconds": 0})),
        ));
        assert_eq!(s, 200, "without If-Match a write is unconditional");
        assert_ne!(etag_of(&r2), rotated, "every rotation changes the tag");
        // Delete: stale tag refused, current tag accepted.
        assert_eq!(
            h.call(&admin(Method::Delete, path, None).header("if-match", &rotated))
                .0,
            412
        );
        let current = etag_of(&h.call(&admin(Method::Get, path, None)).2);
        assert_eq!(
            h.call(&admin(Method::Delete, path, None).header("if-match", &current))
                .0,
            204
        );
        assert_eq!(
            h.call(&admin(Method::Delete, path, None).header("if-match", "*"))
                .0,
            404
        );
    }
    // Creation answers carry the tag of the new record.
    let (s, _, c) = h.call(&admin(
        Method::Post,
        "/admin/resources",
        Some(json!({"id":"r2","scopes":[]})),
    ));
    assert_eq!(s, 201);
    assert_eq!(
        etag_of(&c),
        etag_of(&h.call(&admin(Method::Get, "/admin/resources/r2", None)).2)
    );
}

proptest::proptest! {
    #[test]
    fn json_request_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        parse_all_json_bodies(&body);
    }

    #[test]
    fn json_like_request_bodies_never_panic(body in "[{}\\[\\]\":,a-z0-9 .eE+-]{0,200}") {
        parse_all_json_bodies(body.as_bytes());
    }
}
