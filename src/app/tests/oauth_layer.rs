//! The OAuth layer through the whole service: errors in the order clients always saw them (the
//! form, credentials and grant type before client authentication, the rest after it), the
//! RFC 9701 answer signing exactly the claims of the JSON answer, Basic credentials decoded per
//! RFC 6749 2.3.1 end to end.

use super::*;
use crate::model::{Client, SecretSet, TokenFormat};
use crate::oauth::token::{TOKEN_EXCHANGE, TT_ACCESS_TOKEN};

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

fn error(h: &Harness, req: &Request) -> (u16, String) {
    let (s, v, _) = h.call(req);
    (s, v["error"].as_str().unwrap_or("").to_owned())
}

fn signed_claims(o: &Outcome) -> Value {
    let body = std::str::from_utf8(&o.response.body).expect("utf8");
    let payload = body.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json")
}

#[test]
fn an_unauthenticated_caller_learns_nothing_about_its_parameters() {
    let h = Harness::new();
    // introspection and revocation: a missing token is 400 only to an authenticated caller
    let anon = form_req("/oauth/introspect", "");
    assert_eq!(error(&h, &anon), (401, "invalid_client".into()));
    let wrong = form_req("/oauth/introspect", "").header("authorization", &basic("demo_api", "x"));
    assert_eq!(error(&h, &wrong), (401, "invalid_client".into()));
    let ok = form_req("/oauth/introspect", "")
        .header("authorization", &basic("demo_api", "demo-api-secret"));
    assert_eq!(error(&h, &ok), (400, "invalid_request".into()));
    let anon = form_req("/oauth/revoke", "token=");
    assert_eq!(error(&h, &anon), (401, "invalid_client".into()));
    let public = form_req("/oauth/revoke", "client_id=pat_client");
    assert_eq!(error(&h, &public), (400, "invalid_request".into()));
    // token exchange: parameter errors after client authentication
    let exchange = format!("grant_type={TOKEN_EXCHANGE}&actor_token=x");
    let anon = form_req("/oauth/token", &exchange);
    assert_eq!(error(&h, &anon), (401, "invalid_client".into()));
    let (s, v, _) = h.call(&form_req(
        "/oauth/token",
        &format!("{exchange}&client_id=pat_client"),
    ));
    assert_eq!(
        (s, v["error_description"].as_str()),
        (400, Some("missing parameter subject_token"))
    );
}

#[test]
fn the_form_credentials_and_grant_type_are_checked_before_anyone_is_authenticated() {
    let h = Harness::new();
    let (s, v, _) = h.call(&form_req("/oauth/token", "grant_type=password"));
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    assert_eq!(
        error(&h, &form_req("/oauth/token", "scope=a")),
        (400, "invalid_request".into())
    );
    let both = form_req(
        "/oauth/token",
        "grant_type=client_credentials&client_id=demo_client&client_secret=demo-client-secret",
    )
    .header("authorization", &basic("demo_client", "demo-client-secret"));
    assert_eq!(error(&h, &both), (400, "invalid_request".into()));
    let bad_basic =
        form_req("/oauth/introspect", "token=x").header("authorization", "Basic not*base64");
    assert_eq!(error(&h, &bad_basic), (401, "invalid_client".into()));
    let repeated = form_req("/oauth/revoke", "token=a&token=a&client_id=pat_client");
    assert_eq!(error(&h, &repeated), (400, "invalid_request".into()));
    // none of these counted as a failed client authentication
    assert!(h
        .isolate
        .take_events()
        .iter()
        .all(|e| !matches!(e, events::Event::ClientAuthFailed { .. })));
}

#[test]
fn the_signed_answer_signs_exactly_the_json_claims() {
    let h = Harness::new();
    h.backend.clients.borrow_mut().push(Client {
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
    let (_, pat) = h.pat("alice", &["demo_api:read", "demo_api:write"]);
    let (s, v, _) = h.call(
        &form_req("/oauth/token", "grant_type=client_credentials")
            .header("authorization", &basic("jwt_client", "jwt-secret")),
    );
    assert_eq!(s, 200, "{v}");
    let jwt = v["access_token"].as_str().expect("jwt").to_owned();
    for token in [pat.as_str(), jwt.as_str(), "garbage"] {
        let json = h.send(&introspect_req(token));
        let signed =
            h.send(&introspect_req(token).header("accept", "application/token-introspection+jwt"));
        let claims = signed_claims(&signed);
        assert_eq!(claims["token_introspection"], json.response.json_body());
        assert_eq!(
            (
                claims["iss"].as_str(),
                claims["aud"].as_str(),
                claims["iat"].as_i64()
            ),
            (Some("https://patgate.test"), Some("demo_api"), Some(NOW))
        );
    }
    // the two kinds of active answers have the same fields, a PAT's name aside
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    let pat_answer = h.introspect(&pat).1;
    let jwt_answer = h.introspect(&jwt).1;
    assert_eq!(pat_answer["scope"], "demo_api:read demo_api:write");
    assert_eq!(pat_answer["name"], "ci");
    assert_eq!(jwt_answer.get("name"), None);
    let mut without_name = keys(&pat_answer);
    without_name.retain(|k| k != "name");
    assert_eq!(without_name, keys(&jwt_answer));
    assert_eq!(
        keys(&jwt_answer),
        [
            "active",
            "aud",
            "client_id",
            "exp",
            "iat",
            "iss",
            "jti",
            "scope",
            "sub",
            "token_type"
        ]
    );
}

#[test]
fn basic_and_post_credentials_are_form_urldecoded_secrets() {
    let h = Harness::new();
    h.backend.resources.borrow_mut().push(ApiResource {
        descriptions: Vec::new(),
        resource_uri: None,
        id: "odd api".into(),
        uid: "uid-odd".into(),
        secret: SecretSet {
            current: ClientSecret::new("p:ss w+rd%").hash(),
            previous: None,
        },
        enabled: true,
        scopes: vec!["demo_api:read".into()],
    });
    let (_, token) = h.pat("alice", &["demo_api:read"]);
    let basic = form_req("/oauth/introspect", &format!("token={token}"))
        .header("authorization", &basic("odd%20api", "p%3Ass+w%2Brd%25"));
    // authenticated (the token's scopes are another resource's: inactive for this one)
    assert_eq!(h.call(&basic).0, 200);
    let post = form_req(
        "/oauth/introspect",
        &format!("token={token}&client_id=odd+api&client_secret=p%3Ass%20w%2Brd%25"),
    );
    assert_eq!(h.call(&post).0, 200);
    // the raw (not decoded) secret is not the secret
    let raw = form_req("/oauth/introspect", &format!("token={token}")).header(
        "authorization",
        &format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("odd%20api:p:ss w+rd%")
        ),
    );
    assert_eq!(error(&h, &raw), (401, "invalid_client".into()));
}

#[test]
fn a_pat_exchange_reads_typed_token_types() {
    let h = Harness::new();
    let (_, pat) = h.pat("alice", &["demo_api:read"]);
    let ask = |subject_type: &str, requested: &str| {
        let body = format!(
            "grant_type={TOKEN_EXCHANGE}&client_id=pat_client&subject_token={pat}&subject_token_type={subject_type}{requested}"
        );
        h.call(&form_req("/oauth/token", &body))
    };
    let (s, v, _) = ask(TT_ACCESS_TOKEN, "");
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["issued_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    let (s, v, _) = ask("urn:x", "");
    assert_eq!(
        (s, v["error_description"].as_str()),
        (
            400,
            Some("a PAT has subject_token_type urn:ietf:params:oauth:token-type:access_token")
        )
    );
    let (s, v, _) = ask(
        TT_ACCESS_TOKEN,
        &format!("&requested_token_type={TT_ACCESS_TOKEN}"),
    );
    assert_eq!(s, 400, "{v}");
    // an identity-provider token of an unknown type names it
    let body = format!(
        "grant_type={TOKEN_EXCHANGE}&client_id=pat_client&subject_token=a.b.c&subject_token_type=urn:odd"
    );
    let (s, v, _) = h.call(&form_req("/oauth/token", &body));
    assert_eq!(
        (s, v["error_description"].as_str()),
        (400, Some("unsupported subject_token_type urn:odd"))
    );
}

#[test]
fn a_single_sign_on_exchange_answers_the_new_pats_id() {
    let h = Harness::new();
    let body = format!(
        "grant_type={TOKEN_EXCHANGE}&client_id=pat_client&subject_token={}\
         &subject_token_type=urn:ietf:params:oauth:token-type:jwt&name=laptop\
         &scope=demo_api:read&expires_in_days=30",
        user_jwt("alice")
    );
    let (s, v, _) = h.call(&form_req("/oauth/token", &body));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["issued_token_type"], TT_ACCESS_TOKEN);
    let id = v["pat_id"].as_str().expect("pat_id");
    let pats = h.backend.tokens.borrow().clone();
    assert_eq!(pats.len(), 1);
    assert_eq!(pats[0].id, id, "the id of the PAT just issued");
    assert_eq!(
        pats[0].hash,
        crate::token::PlainToken::parse(v["access_token"].as_str().expect("token"))
            .expect("a PAT")
            .hash()
    );
    // a PAT-to-JWT exchange issues no PAT: no pat_id
    let token = v["access_token"].as_str().expect("token").to_owned();
    let body = format!(
        "grant_type={TOKEN_EXCHANGE}&client_id=pat_client&subject_token={token}&subject_token_type={TT_ACCESS_TOKEN}"
    );
    let (s, v, _) = h.call(&form_req("/oauth/token", &body));
    assert_eq!(s, 200, "{v}");
    assert!(v.get("pat_id").is_none(), "{v}");
}
