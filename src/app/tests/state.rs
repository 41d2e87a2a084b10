//! State that must hold across time and operator changes: one status for a token everywhere
//! (the views say `active` only where introspection does), clients created again revive no token
//! (JWTs included), and every report of a token patgate issued is a true positive.

use super::*;
use crate::secret_scanning::tests::{key_doc, key_pair, sign};
use crate::testing::{Fault, Step};
use p256::ecdsa::SigningKey;

fn admin(method: Method, path: &str, body: Option<Value>) -> Request {
    let r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    match body {
        Some(b) => r
            .header("content-type", "application/json")
            .body(b.to_string()),
        None => r,
    }
}

fn admin_ok(h: &Harness, method: Method, path: &str, body: Option<Value>) -> Value {
    let (s, v, _) = h.call(&admin(method, path, body));
    assert!((200..300).contains(&s), "{path}: {s} {v}");
    v
}

/// Deletes client `id` and creates it again (same id, another uid); returns its new secret.
fn recreate_client(h: &Harness, id: &str, body: Value) -> Option<String> {
    admin_ok(h, Method::Delete, &format!("/admin/clients/{id}"), None);
    let v = admin_ok(h, Method::Post, "/admin/clients", Some(body));
    v["client_secret"].as_str().map(str::to_owned)
}

fn recreate_pat_client(h: &Harness) {
    recreate_client(
        h,
        PAT_CLIENT_ID,
        json!({"id": PAT_CLIENT_ID, "public": true,
               "allowed_scopes": ["demo_api:read", "demo_api:write", "other_api:read"]}),
    );
}

fn view(h: &Harness, id: &str) -> Value {
    let (s, v) = h.user_call(Method::Get, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 200, "{v}");
    v
}

fn listed_status(h: &Harness, id: &str) -> Value {
    let (s, v) = h.user_call(Method::Get, "/api/pats", "alice");
    assert_eq!(s, 200, "{v}");
    v["pats"]
        .as_array()
        .expect("pats")
        .iter()
        .find(|p| p["id"] == id)
        .map(|p| p["status"].clone())
        .expect("listed")
}

/// Whether any API resource introspects `token` active (here and at a fresh location).
fn active_somewhere(h: &Harness, token: &str) -> bool {
    let here = [
        ("demo_api", "demo-api-secret"),
        ("other_api", "other-api-secret"),
    ]
    .iter()
    .any(|(r, s)| h.introspect_as(r, s, token).1["active"] == true);
    let elsewhere = h.introspect_elsewhere(token)["active"] == true;
    assert!(here || !elsewhere, "a fresh isolate agrees");
    here
}

/// The status the API shows (GET one, and the list) and what introspection answers agree.
fn assert_one_status(h: &Harness, id: &str, token: &str, expected: &str) {
    assert_eq!(view(h, id)["status"], expected, "GET /api/pats/{id}");
    assert_eq!(listed_status(h, id), expected, "GET /api/pats");
    assert_eq!(
        active_somewhere(h, token),
        expected == "active",
        "introspection agrees with {expected}"
    );
}

#[test]
fn a_pat_of_a_client_created_again_is_inactive_in_every_view() {
    let h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    assert_one_status(&h, &id, &token, "active");
    recreate_pat_client(&h);
    // the record alone says active (not revoked, not expired): the views must not
    assert_one_status(&h, &id, &token, "inactive");
    let v = view(&h, &id);
    assert_eq!(
        (v["days_left"].as_i64(), v["expiring_soon"].as_bool()),
        (Some(0), Some(false))
    );
    // the owner may still revoke it; then it is revoked
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice")
            .0,
        204
    );
    assert_one_status(&h, &id, &token, "revoked");
    // a PAT of the new client is active
    let (id2, token2) = h.pat("alice", &["demo_api:read"]);
    assert_one_status(&h, &id2, &token2, "active");
}

#[test]
fn disabling_and_re_enabling_the_client_moves_the_status_with_introspection() {
    let mut h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    admin_ok(
        &h,
        Method::Patch,
        "/admin/clients/pat_client",
        Some(json!({"enabled": false})),
    );
    assert_one_status(&h, &id, &token, "inactive");
    admin_ok(
        &h,
        Method::Patch,
        "/admin/clients/pat_client",
        Some(json!({"enabled": true})),
    );
    h.now += 1;
    assert_one_status(&h, &id, &token, "active");
}

#[test]
fn a_pat_no_enabled_resource_sees_is_inactive() {
    let h = Harness::new();
    let (id, token) = h.pat("alice", &["other_api:read"]);
    let (both_id, both) = h.pat("alice", &["demo_api:read", "other_api:read"]);
    admin_ok(
        &h,
        Method::Patch,
        "/admin/resources/other_api",
        Some(json!({"enabled": false})),
    );
    assert_one_status(&h, &id, &token, "inactive");
    assert_one_status(&h, &both_id, &both, "active");
    admin_ok(
        &h,
        Method::Patch,
        "/admin/resources/other_api",
        Some(json!({"enabled": true})),
    );
    assert_one_status(&h, &id, &token, "active");
    // deleted and created again with the same scope: another resource, the PAT stays invisible
    admin_ok(&h, Method::Delete, "/admin/resources/other_api", None);
    assert_one_status(&h, &id, &token, "inactive");
    admin_ok(
        &h,
        Method::Post,
        "/admin/resources",
        Some(json!({"id": "other_api", "scopes": ["other_api:read"]})),
    );
    assert_eq!(view(&h, &id)["status"], "inactive");
    assert_eq!(view(&h, &both_id)["status"], "active");
}

#[test]
fn expired_and_revoked_keep_their_status_whatever_the_client() {
    let mut h = Harness::new();
    let (s, v) = h.create(
        "alice",
        json!({"name":"short","scopes":["demo_api:read"],"expires_at":rfc3339(NOW + 60)}),
    );
    assert_eq!(s, 201, "{v}");
    let (id, token) = (
        v["id"].as_str().expect("id").to_owned(),
        v["token"].as_str().expect("token").to_owned(),
    );
    recreate_pat_client(&h);
    h.now += 60;
    assert_one_status(&h, &id, &token, "expired");
}

// --- JWTs belong to the client as it was at issuance --------------------------------------------

/// A confidential client issuing RFC 9068 JWTs; returns its secret.
fn jwt_client(h: &Harness) -> String {
    let v = admin_ok(
        h,
        Method::Post,
        "/admin/clients",
        Some(json!({"id":"jwt_svc","allowed_scopes":["demo_api:read"],"token_format":"jwt"})),
    );
    v["client_secret"].as_str().expect("secret").to_owned()
}

fn client_credentials_jwt(h: &Harness, id: &str, secret: &str) -> String {
    let req = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={id}&client_secret={secret}"
        ));
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 200, "{v}");
    let t = v["access_token"].as_str().expect("token").to_owned();
    assert!(crate::jose::looks_like_jwt(&t), "a JWT: {t}");
    t
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("payload");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&raw).expect("json")
}

fn client_uid(h: &Harness, id: &str) -> String {
    h.backend
        .clients
        .borrow()
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.uid.clone())
        .expect("client")
}

#[test]
fn a_client_created_again_revives_none_of_its_jwts() {
    let h = Harness::new();
    let secret = jwt_client(&h);
    let old = client_credentials_jwt(&h, "jwt_svc", &secret);
    assert_eq!(claims_of(&old)["client_uid"], client_uid(&h, "jwt_svc"));
    assert_eq!(h.introspect(&old).1["active"], true);
    let body = json!({"id":"jwt_svc","allowed_scopes":["demo_api:read"],"token_format":"jwt"});
    let secret = recreate_client(&h, "jwt_svc", body).expect("secret");
    assert_eq!(h.introspect(&old).1, json!({"active": false}));
    assert_eq!(h.introspect_elsewhere(&old), json!({"active": false}));
    // the new client's JWTs work, and it cannot revoke (nor revive) the old one: nothing to do
    let new = client_credentials_jwt(&h, "jwt_svc", &secret);
    assert_eq!(h.introspect(&new).1["active"], true);
    let revoke = Request::new(Method::Post, "/oauth/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id=jwt_svc&client_secret={secret}&token={old}"
        ));
    assert_eq!(h.call(&revoke).0, 200);
    assert!(h.backend.denied.borrow().is_empty(), "no denylist entry");
    assert_eq!(h.introspect(&new).1["active"], true);
}

#[test]
fn exchanged_jwts_die_with_the_exchanging_client_and_with_the_pats_client() {
    let h = Harness::new();
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    let exchange = |client: &str, secret: Option<&str>| {
        let secret = secret.map_or(String::new(), |s| format!("&client_secret={s}"));
        let req = Request::new(Method::Post, "/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id={client}{secret}\
                 &subject_token={pat}&subject_token_type=urn:ietf:params:oauth:token-type:access_token"
            ));
        let (s, v, _) = h.call(&req);
        assert_eq!(s, 200, "{v}");
        v["access_token"].as_str().expect("jwt").to_owned()
    };
    // exchanged by a confidential client: the JWT names it, with its uid
    let by_demo = exchange("demo_client", Some("demo-client-secret"));
    assert_eq!(
        claims_of(&by_demo)["client_uid"],
        client_uid(&h, "demo_client")
    );
    let by_pat_client = exchange(PAT_CLIENT_ID, None);
    assert_eq!(h.introspect(&by_demo).1["active"], true);
    assert_eq!(h.introspect(&by_pat_client).1["active"], true);
    // demo_client created again: its JWT dies, the PAT and the other JWT live on
    recreate_client(
        &h,
        "demo_client",
        json!({"id":"demo_client","allowed_scopes":["demo_api:read"]}),
    );
    assert_eq!(h.introspect(&by_demo).1, json!({"active": false}));
    assert_eq!(h.introspect_elsewhere(&by_demo), json!({"active": false}));
    assert_eq!(h.introspect(&by_pat_client).1["active"], true);
    assert_eq!(h.introspect(&pat).1["active"], true);
    // the PAT's client created again: the PAT and every JWT exchanged from it die
    recreate_pat_client(&h);
    assert_eq!(h.introspect(&pat).1, json!({"active": false}));
    assert_eq!(h.introspect(&by_pat_client).1, json!({"active": false}));
    assert_eq!(
        h.introspect_elsewhere(&by_pat_client),
        json!({"active": false})
    );
}

#[test]
fn a_jwt_without_the_client_uid_is_refused_everywhere() {
    let h = Harness::new();
    let keys = h.cfg.signing_keys.clone().expect("keys");
    let sign = |uid: Option<String>| {
        let claims = crate::jose::AccessTokenClaims {
            iss: h.cfg.issuer.clone(),
            sub: "svc".into(),
            aud: vec!["demo_api".into()],
            iat: NOW,
            jti: format!("j-{uid:?}"),
            client_id: "demo_client".into(),
            client_uid: uid,
            scope: crate::scopes::Scopes::from_stored("demo_api:read"),
            pat_id: None,
            pat_gen: None,
            grant_id: None,
        };
        keys.sign_access_token(&claims, NOW + 600).expect("sign")
    };
    let current = sign(Some(client_uid(&h, "demo_client")));
    assert_eq!(h.introspect(&current).1["active"], true, "the control");
    // issued before JWTs carried the uid (short-lived: refused rather than matched by id)
    assert_eq!(h.introspect(&sign(None)).1, json!({"active": false}));
    assert_eq!(
        h.introspect(&sign(Some("another".into()))).1,
        json!({"active": false})
    );
}

// --- leak reports: every token patgate issued is a true positive -----------------------------------

fn scanning(h: &mut Harness) -> SigningKey {
    let (sk, pem) = key_pair();
    h.cfg.lifecycle.scanning_keys = Some(std::rc::Rc::new(
        crate::secret_scanning::KeySet::parse(&key_doc(&[("k1", &pem)])).expect("keys"),
    ));
    sk
}

fn report(h: &Harness, sk: &SigningKey, matches: &[(&str, &str)]) -> (u16, Vec<String>) {
    let body = Value::Array(
        matches
            .iter()
            .map(|(t, url)| json!({"token": t, "type": "patgate_pat", "url": url, "source": "commit"}))
            .collect(),
    )
    .to_string();
    let req = Request::new(Method::Post, "/secret-scanning/github")
        .header("content-type", "application/json")
        .header("github-public-key-identifier", "k1")
        .header("github-public-key-signature", &sign(sk, body.as_bytes()))
        .body(body);
    let (s, v, _) = h.call(&req);
    let labels = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["label"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    (s, labels)
}

const URL1: &str = "https://github.com/o/r/blob/a/ci.yml#L1";
const URL2: &str = "https://github.com/fork/r/blob/b/ci.yml#L1";

#[test]
fn every_token_patgate_issued_is_a_true_positive_whatever_its_state() {
    let mut h = Harness::new();
    let sk = scanning(&mut h);
    let (revoked_id, revoked) = h.pat("alice", &["demo_api:read"]);
    assert_eq!(
        h.user_call(Method::Delete, &format!("/api/pats/{revoked_id}"), "alice")
            .0,
        204
    );
    let (s, v) = h.create(
        "alice",
        json!({"name":"short","scopes":["demo_api:read"],"expires_at":rfc3339(NOW + 60)}),
    );
    assert_eq!(s, 201);
    let expired = v["token"].as_str().expect("token").to_owned();
    let (rotated_id, rotated_away) = h.pat("alice", &["demo_api:read"]);
    let (s, v) = h.user_call(
        Method::Post,
        &format!("/api/pats/{rotated_id}/rotate"),
        "alice",
    );
    assert_eq!(s, 201, "{v}");
    let current = v["token"].as_str().expect("token").to_owned();
    let req = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            "grant_type=client_credentials&client_id=demo_client&client_secret=demo-client-secret",
        );
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 200);
    let client_token = v["access_token"].as_str().expect("token").to_owned();
    h.now += 61;
    // KV forgot the expired one (its KV life ended) and the revoked one (revocation deleted it)
    h.backend.expire_kv(h.now);
    let never = crate::token::PlainToken::generate(crate::token::TokenKind::Pat)
        .expect("rng")
        .expose_secret()
        .to_owned();
    let (s, labels) = report(
        &h,
        &sk,
        &[
            (&revoked, URL1),
            (&expired, URL1),
            (&rotated_away, URL1),
            (&client_token, URL1),
            (&never, URL1),
            ("pgp_garbage", URL1),
        ],
    );
    assert_eq!(s, 200);
    assert_eq!(
        labels,
        [
            "true_positive",
            "true_positive",
            "true_positive",
            "true_positive",
            "false_positive",
            "false_positive"
        ]
    );
    // the rotated-away token's report goes to its PAT; the current token is untouched
    assert_eq!(view(&h, &rotated_id)["status"], "active");
    assert_eq!(view(&h, &rotated_id)["leak_urls"], json!([URL1]));
    assert_eq!(h.introspect(&current).1["active"], true);
    // the expired one stays expired (nothing to revoke), its report is kept
    let expired_view = h.user_call(Method::Get, "/api/pats", "alice").1["pats"]
        .as_array()
        .expect("pats")
        .iter()
        .find(|p| p["name"] == "short")
        .cloned()
        .expect("listed");
    assert_eq!(expired_view["status"], "expired");
    assert_eq!(expired_view["leak_urls"], json!([URL1]));
    // the revoked one keeps its reason (its owner revoked it) and gains the URL
    let v = view(&h, &revoked_id);
    assert_eq!(
        (&v["status"], &v["revoked_reason"], &v["leak_urls"]),
        (&json!("revoked"), &Value::Null, &json!([URL1]))
    );
    // the client access token was live: revoked now
    assert_eq!(h.introspect(&client_token).1, json!({"active": false}));
}

#[test]
fn a_token_never_issued_costs_one_d1_read_and_is_a_false_positive() {
    let mut h = Harness::new();
    let sk = scanning(&mut h);
    let never = crate::token::PlainToken::generate(crate::token::TokenKind::Pat)
        .expect("rng")
        .expose_secret()
        .to_owned();
    h.backend.take_counts();
    let (s, labels) = report(&h, &sk, &[(&never, URL1)]);
    assert_eq!((s, labels), (200, vec!["false_positive".to_owned()]));
    let c = h.backend.take_counts();
    assert_eq!((c.d1_query, c.kv_put, c.kv_delete), (1, 0, 0), "{c:?}");
}

#[test]
fn every_reports_url_is_kept_newest_first_distinct_and_bounded() {
    let mut h = Harness::new();
    let sk = scanning(&mut h);
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let (s, labels) = report(&h, &sk, &[(&token, URL1)]);
    assert_eq!((s, labels[0].as_str()), (200, "true_positive"));
    let v = view(&h, &id);
    assert_eq!(
        (&v["revoked_reason"], &v["revoked_source_url"]),
        (&json!("leaked"), &json!(URL1))
    );
    // a second place (a fork): a true positive too, both URLs kept, the newest first
    h.now += 1;
    let (_, labels) = report(&h, &sk, &[(&token, URL2)]);
    assert_eq!(labels, ["true_positive"]);
    assert_eq!(view(&h, &id)["leak_urls"], json!([URL2, URL1]));
    // a retried report: no duplicate, moved to the front
    h.now += 1;
    let (_, labels) = report(&h, &sk, &[(&token, URL1)]);
    assert_eq!(labels, ["true_positive"]);
    assert_eq!(view(&h, &id)["leak_urls"], json!([URL1, URL2]));
    // bounded: the newest MAX_LEAK_URLS distinct URLs
    for i in 0..12 {
        h.now += 1;
        let url = format!("https://github.com/o/r/blob/c{i}/f#L1");
        assert_eq!(report(&h, &sk, &[(&token, &url)]).1, ["true_positive"]);
    }
    let urls = view(&h, &id)["leak_urls"].clone();
    let urls: Vec<&str> = urls
        .as_array()
        .expect("urls")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(urls.len(), crate::model::MAX_LEAK_URLS);
    assert_eq!(urls[0], "https://github.com/o/r/blob/c11/f#L1");
    assert_eq!(urls[9], "https://github.com/o/r/blob/c2/f#L1");
    // the URL of the report that revoked it stays where it was
    assert_eq!(view(&h, &id)["revoked_source_url"], URL1);
    // a URL that is not plain http(s) is not kept
    let (_, labels) = report(&h, &sk, &[(&token, "javascript:alert(1)")]);
    assert_eq!(labels, ["true_positive"]);
    assert_eq!(
        view(&h, &id)["leak_urls"].as_array().map(Vec::len),
        Some(10)
    );
}

#[test]
fn a_failed_url_write_fails_the_report_and_its_retry_keeps_the_url_once() {
    for fault in [Fault::Lost, Fault::LandedButFailed] {
        let mut h = Harness::new();
        let sk = scanning(&mut h);
        let (id, token) = h.pat("alice", &["demo_api:read"]);
        h.backend.inject(Step::LeakRecord, fault);
        let (s, _) = report(&h, &sk, &[(&token, URL1)]);
        assert_eq!(s, 503, "{fault:?}: GitHub sends it again");
        // the revocation before it held
        assert_eq!(
            h.introspect(&token).1,
            json!({"active": false}),
            "{fault:?}"
        );
        let (s, labels) = report(&h, &sk, &[(&token, URL1)]);
        assert_eq!((s, labels[0].as_str()), (200, "true_positive"), "{fault:?}");
        let v = view(&h, &id);
        assert_eq!(v["leak_urls"], json!([URL1]), "{fault:?}");
        assert_eq!(v["revoked_reason"], "leaked", "{fault:?}");
    }
}
