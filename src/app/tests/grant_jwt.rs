//! RFC 9068 JWT access tokens of authorization grants, for a client whose `token_format` is
//! `jwt`: issued on code exchange and refresh (`aud` the grant's resource, `sub`, `client_id`,
//! `scope`, `jti`, `grant_id`), accepted at introspection and the gate on that resource only,
//! and dead when their grant ends: at once (D1's grant) and at another location by the feed's
//! `a` entry alone. Other clients keep reference tokens.

use super::feed::Location;
use super::flow::Text;
use super::flow::{admin, APP, RESOURCE};
use super::*;
use crate::jose::AccessTokenClaims;
use crate::token::PlainToken;

/// The flow's app switched to JWT access tokens by an operator.
fn jwt_app() -> Harness {
    let h = Harness::flow();
    let req = admin(
        Method::Patch,
        &format!("/admin/clients/{APP}"),
        Some(json!({"token_format": "jwt"})),
    );
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 200, "{v}");
    h
}

fn claims_of(h: &Harness, jwt: &str) -> AccessTokenClaims {
    let keys = h.cfg.signing_keys.as_ref().expect("keys");
    keys.verify_access_token(jwt, h.now).expect("a valid JWT").0
}

fn grant_ids(h: &Harness) -> Vec<String> {
    h.backend
        .flow
        .grants
        .borrow()
        .iter()
        .map(|g| g.id.clone())
        .collect()
}

#[test]
fn a_jwt_client_gets_rfc9068_access_tokens_of_its_grant_on_exchange_and_refresh() {
    let h = jwt_app();
    let (at, rt) = h.tokens("alice");
    assert!(PlainToken::parse(&at).is_err(), "not a reference token");
    let claims = claims_of(&h, &at);
    let grant = grant_ids(&h).remove(0);
    assert_eq!(claims.iss, h.cfg.issuer);
    assert_eq!(
        claims.aud,
        vec![RESOURCE.to_owned()],
        "the grant's resource"
    );
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.client_id, APP);
    assert_eq!(claims.scope.as_slice(), ["demo_api:read".to_owned()]);
    assert_eq!(claims.grant_id.as_deref(), Some(grant.as_str()));
    assert_eq!(claims.pat_id, None);
    // introspection and the gate accept it, on its resource only
    let (s, v, _) = h.introspect(&at);
    assert_eq!(s, 200);
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(
        (
            v["aud"].as_str(),
            v["sub"].as_str(),
            v["client_id"].as_str()
        ),
        (Some(RESOURCE), Some("alice"), Some(APP))
    );
    assert_eq!(v["jti"].as_str(), Some(claims.jti.as_str()));
    assert_eq!(h.through("GET", "/gw/demo/x", &at), 200);
    assert_eq!(
        h.through("GET", "/gw/other/x", &at),
        401,
        "another resource of the same API"
    );
    // a refresh: another JWT of the same grant
    let (s, v) = h.refresh(&rt);
    assert_eq!(s, 200, "{v}");
    let at2 = v["access_token"].as_str().expect("at").to_owned();
    let second = claims_of(&h, &at2);
    assert_eq!(second.grant_id.as_deref(), Some(grant.as_str()));
    assert_ne!(second.jti, claims.jti);
    assert!(h.active(&at) && h.active(&at2));
    // RFC 7009 of one JWT by its app: that token only, as for a reference access token
    let (s, _, _) = h.call(
        &Request::new(Method::Post, "/oauth/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={at}&client_id={APP}")),
    );
    assert_eq!(s, 200);
    assert!(!h.active(&at));
    assert!(h.active(&at2));
}

#[test]
fn other_clients_keep_reference_tokens() {
    let h = Harness::flow();
    let (at, rt) = h.tokens("alice");
    assert!(PlainToken::parse(&at).is_ok());
    let (s, v) = h.refresh(&rt);
    assert_eq!(s, 200, "{v}");
    assert!(PlainToken::parse(v["access_token"].as_str().expect("at")).is_ok());
}

#[test]
fn the_end_of_its_grant_kills_its_jwts_at_once_and_elsewhere_by_the_feed() {
    let h = jwt_app();
    let (at, rt) = h.tokens("alice");
    let (status, body) = h.refresh(&rt);
    assert_eq!(status, 200, "{body}");
    let at2 = body["access_token"].as_str().expect("at").to_owned();
    let (bob, _) = h.tokens("bob");
    let (loc_b, loc_c) = (Location::new(), Location::new());
    for jwt in [&at, &at2, &bob] {
        assert!(h.active(jwt));
        assert!(loc_b.active(&h, jwt, h.now * 1000, true));
        assert!(loc_c.active(&h, jwt, h.now * 1000, true));
    }
    let grant = claims_of(&h, &at).grant_id.expect("grant");
    let req = admin(Method::Delete, &format!("/admin/grants/{grant}"), None);
    assert_eq!(h.call(&req).0, 204);
    // here and at B (whose view predates the end): refused at once, at the gate too
    for jwt in [&at, &at2] {
        assert!(!h.active(jwt));
        assert_eq!(h.through("GET", "/gw/demo/x", jwt), 401);
        assert!(!loc_b.active(&h, jwt, h.now * 1000, true));
    }
    assert!(h.active(&bob), "another grant lives on");
    // at C, its view refreshed after the end and D1 unreachable: the feed's entry for the grant
    // refuses its JWTs without D1, while a JWT of a live grant cannot be vouched for (503,
    // never active, never a 500)
    let later = h.now * 1000 + 2_000;
    assert!(block_on(crate::app::revocations::refresh(
        &h.backend,
        &loc_c.isolate,
        later
    ))
    .is_ok());
    h.backend.flow.broken.set(true);
    for jwt in [&at, &at2] {
        let answer = loc_c.introspect(&h, jwt, later + 100, true);
        assert_eq!(answer.response.status, 200, "{}", answer.response.text());
        assert_eq!(answer.response.json_body()["active"], false);
    }
    let answer = loc_c.introspect(&h, &bob, later + 100, true);
    assert_eq!(answer.response.status, 503, "{}", answer.response.text());
    h.backend.flow.broken.set(false);
    assert!(loc_c.active(&h, &bob, later + 200, true));
}

#[test]
fn a_grant_jwt_naming_an_unknown_or_another_clients_grant_is_inactive() {
    let h = jwt_app();
    let (at, _) = h.tokens("alice");
    let keys = h.cfg.signing_keys.clone().expect("keys");
    let real = claims_of(&h, &at);
    let demo_uid = h
        .backend
        .clients
        .borrow()
        .iter()
        .find(|c| c.id == "demo_client")
        .map(|c| c.uid.clone());
    let forged = [
        AccessTokenClaims {
            grant_id: Some("no-such-grant".into()),
            jti: "f1".into(),
            ..real.clone()
        },
        // the grant of another client, presented as demo_client's (its own uid)
        AccessTokenClaims {
            client_id: "demo_client".into(),
            client_uid: demo_uid,
            jti: "f2".into(),
            ..real.clone()
        },
    ];
    for claims in forged {
        let jwt = keys.sign_access_token(&claims, h.now + 600).expect("sign");
        assert!(!h.active(&jwt), "{claims:?}");
        assert_eq!(h.through("GET", "/gw/demo/x", &jwt), 401);
    }
    assert!(h.active(&at));
}
