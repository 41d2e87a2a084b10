//! "Registered clients are public unless an administrator says otherwise": an administrator
//! makes a self-registered client (RFC 7591, a metadata document) or a public administrator-made
//! one confidential (`POST /admin/clients/{id}/confidential`); its secret is shown once and
//! stored as a hash, `none` authentication of it then fails, the secret rotates, and a later
//! fetch of its metadata document keeps it. Hostile requests and each storage failure.

#![allow(clippy::too_many_lines, clippy::many_single_char_names)]

use super::flow::{query, APP, REDIRECT, VERIFIER};
use super::*;
use crate::authz::secrets::ClientIdKey;
use crate::authz::store::{ClientDirectory, Fetched};
use crate::testing::{Fault, Step};

const DOC: &str = "https://app.example/oauth/client.json";
const DOC_SEGMENT: &str = "https%3A%2F%2Fapp.example%2Foauth%2Fclient.json";

fn admin(method: Method, path: &str, body: Option<&str>) -> Request {
    let mut r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    r
}

fn form_enc(s: &str) -> String {
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

fn harness() -> Harness {
    let mut h = Harness::flow();
    h.cfg.clients.id_keys = vec![ClientIdKey::new(&[9; 32]).expect("key")];
    h.cfg.clients.dynamic_registration = true;
    h
}

impl Harness {
    /// An RFC 7591 registration: its client id.
    fn registration(&self) -> String {
        let (s, v, _) = self.call(
            &Request::new(Method::Post, "/oauth/register")
                .header("content-type", "application/json")
                .body(r#"{"client_name":"CLI","redirect_uris":["http://127.0.0.1/cb"],"grant_types":["authorization_code","refresh_token"]}"#),
        );
        assert_eq!(s, 201, "{v}");
        v["client_id"].as_str().expect("id").to_owned()
    }

    fn confidential(&self, segment: &str) -> (u16, Value) {
        let (s, v, _) = self.call(&admin(
            Method::Post,
            &format!("/admin/clients/{segment}/confidential"),
            None,
        ));
        (s, v)
    }

    /// The code exchange as client `id`, with `secret` in the form (`client_secret_post`) or
    /// without (`none`).
    fn exchange_as(&self, id: &str, secret: Option<&str>, code: &str) -> (u16, Value) {
        let auth = secret.map_or(String::new(), |s| format!("&client_secret={}", form_enc(s)));
        self.token_form(&format!(
            "grant_type=authorization_code&client_id={}{auth}&code={code}&code_verifier={VERIFIER}&redirect_uri={}",
            form_enc(id),
            form_enc(REDIRECT)
        ))
    }

    fn refresh_as(&self, id: &str, secret: Option<&str>, rt: &str) -> (u16, Value) {
        let auth = secret.map_or(String::new(), |s| format!("&client_secret={}", form_enc(s)));
        self.token_form(&format!(
            "grant_type=refresh_token&client_id={}{auth}&refresh_token={rt}",
            form_enc(id)
        ))
    }

    fn code_for(&self, id: &str) -> String {
        self.code("alice", &query(&[("client_id", Some(id))]))
    }

    fn stored_secret(&self, id: &str) -> Option<crate::secret::SecretHash> {
        block_on(self.backend.client_profile(id))
            .expect("read")
            .and_then(|(c, _)| c.secret.map(|s| s.current))
    }
}

#[test]
fn a_self_registered_client_made_confidential_needs_its_secret_from_then_on() {
    let mut h = harness();
    let id = h.registration();
    let (uid, profile) = block_on(h.backend.client_profile(&id))
        .expect("read")
        .map(|(c, p)| (c.uid, p))
        .expect("stored");
    // A grant while it is public.
    let (s, t) = h.exchange_as(&id, None, &h.code_for(&id));
    assert_eq!(s, 200, "{t}");
    let at = t["access_token"].as_str().expect("at").to_owned();
    let rt = t["refresh_token"].as_str().expect("rt").to_owned();
    h.logged();

    let (s, v) = h.confidential(&id);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["client_id"], json!(id));
    assert_eq!(v["source"], json!("dynamic"));
    assert_eq!(
        v["token_endpoint_auth_method"],
        json!("client_secret_basic")
    );
    let secret = v["client_secret"].as_str().expect("secret").to_owned();
    // Stored as its hash only; never logged.
    assert_eq!(
        h.stored_secret(&id),
        Some(ClientSecret::new(&secret).hash())
    );
    let log = h.logged();
    assert!(log.contains(r#""event":"admin.change""#), "{log}");
    assert!(!log.contains(&secret), "{log}");
    // Only the secret changed: same uid, source and profile; still not in the admin API.
    let (c, p) = block_on(h.backend.client_profile(&id))
        .expect("read")
        .expect("stored");
    assert_eq!((c.uid, p), (uid, profile));
    assert_eq!(
        h.call(&admin(Method::Get, &format!("/admin/clients/{id}"), None))
            .0,
        404
    );
    assert!(!h
        .call(&admin(Method::Get, "/admin/clients", None))
        .1
        .to_string()
        .contains(&id));

    // `none` fails everywhere the client authenticates; the secret works.
    h.now += 5;
    let (s, v) = h.refresh_as(&id, None, &rt);
    assert_eq!(
        (s, v["error"].clone()),
        (401, json!("invalid_client")),
        "{v}"
    );
    let revoke = |secret: Option<&str>| {
        let auth = secret.map_or(String::new(), |s| format!("&client_secret={}", form_enc(s)));
        h.call(
            &Request::new(Method::Post, "/oauth/revoke")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("client_id={id}{auth}&token=garbage")),
        )
        .0
    };
    assert_eq!(revoke(None), 401);
    assert_eq!(revoke(Some("wrong")), 401);
    assert_eq!(revoke(Some(&secret)), 200);
    // The refusal did not burn the refresh token; its access token lives on.
    let (s, v) = h.refresh_as(&id, Some(&secret), &rt);
    assert_eq!(s, 200, "{v}");
    assert!(h.active(&at));
    let code = h.code_for(&id);
    let (s, v) = h.exchange_as(&id, None, &code);
    assert_eq!(
        (s, v["error"].clone()),
        (401, json!("invalid_client")),
        "{v}"
    );
    let (s, v) = h.exchange_as(&id, Some(&secret), &code);
    assert_eq!(s, 200, "{v}");

    // Once: a second time is a conflict; rotate-secret makes a new one.
    let (s, v) = h.confidential(&id);
    assert_eq!((s, v["error"].clone()), (409, json!("conflict")), "{v}");
    let (s, v, _) = h.call(&admin(
        Method::Post,
        &format!("/admin/clients/{id}/rotate-secret"),
        Some(r#"{"grace_seconds":0}"#),
    ));
    assert_eq!(s, 200, "{v}");
    let fresh = v["client_secret"].as_str().expect("secret").to_owned();
    assert_ne!(fresh, secret);
    assert_eq!(revoke(Some(&secret)), 401, "no grace asked");
    assert_eq!(revoke(Some(&fresh)), 200);
    let (_, p) = block_on(h.backend.client_profile(&id))
        .expect("read")
        .expect("stored");
    assert_eq!(p.source, crate::authz::records::ClientSource::Dynamic);
}

#[test]
fn a_metadata_document_client_is_named_by_its_escaped_url_and_a_refetch_keeps_its_secret() {
    let mut h = harness();
    h.backend.documents.borrow_mut().insert(
        DOC.to_owned(),
        Ok(Fetched {
            status: 200,
            body: format!(
                r#"{{"client_id":"{DOC}","client_name":"Agent","redirect_uris":["http://127.0.0.1/cb"],"grant_types":["authorization_code","refresh_token"]}}"#
            )
            .into_bytes(),
            cache_control: Some("max-age=600".into()),
            ..Fetched::default()
        }),
    );
    let code = h.code_for(DOC);
    let (s, v) = h.confidential(DOC_SEGMENT);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["client_id"].clone(), v["source"].clone()),
        (json!(DOC), json!("metadata"))
    );
    let secret = v["client_secret"].as_str().expect("secret").to_owned();
    let (s, v) = h.exchange_as(DOC, None, &code);
    assert_eq!(
        (s, v["error"].clone()),
        (401, json!("invalid_client")),
        "{v}"
    );
    // The document is fetched again past its cache life: its members, never the secret.
    h.now += 601;
    let code = h.code_for(DOC);
    assert_eq!(h.backend.fetched.borrow().len(), 2, "fetched again");
    assert_eq!(
        h.stored_secret(DOC),
        Some(ClientSecret::new(&secret).hash())
    );
    let (s, v) = h.exchange_as(DOC, Some(&secret), &code);
    assert_eq!(s, 200, "{v}");
}

#[test]
fn hostile_or_impossible_requests_change_nothing() {
    let h = harness();
    let id = h.registration();
    let post = |path: &str, body: Option<&str>, if_match: Option<&str>| {
        let mut r = admin(Method::Post, path, body);
        if let Some(m) = if_match {
            r = r.header("if-match", m);
        }
        let (s, v, _) = h.call(&r);
        (s, v["error"].as_str().unwrap_or_default().to_owned())
    };
    let at = |segment: &str| format!("/admin/clients/{segment}/confidential");
    // another last character (the real one may be an `x`)
    let last = if id.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{last}", &id[..id.len() - 1]);
    for (what, path, body, status, error) in [
        ("unknown", at("nobody"), None, 404, "not_found"),
        ("forged pgd_ id", at(&forged), None, 404, "not_found"),
        (
            "an unknown document",
            at("https%3A%2F%2Fx.example%2Fc.json"),
            None,
            404,
            "not_found",
        ),
        (
            "a malformed escape",
            at("https%3A%2F%ZZx"),
            None,
            400,
            "invalid_request",
        ),
        (
            "escaped non-UTF-8",
            at("%FF%FE"),
            None,
            400,
            "invalid_request",
        ),
        ("the PAT client", at("pat_client"), None, 409, "conflict"),
        (
            "already confidential",
            at("demo_client"),
            None,
            409,
            "conflict",
        ),
        (
            "options it does not have",
            at(&id),
            Some(r#"{"token_endpoint_auth_method":"none"}"#),
            400,
            "invalid_request",
        ),
        (
            "not JSON",
            at(&id),
            Some("client_secret_basic"),
            400,
            "invalid_request",
        ),
        (
            "a public client without a secret to rotate",
            format!("/admin/clients/{id}/rotate-secret"),
            None,
            409,
            "conflict",
        ),
    ] {
        assert_eq!(
            post(&path, body, None),
            (status, error.to_owned()),
            "{what}"
        );
    }
    assert_eq!(
        post(&at(&id), None, Some("\"0000\"")).0,
        412,
        "a stale If-Match"
    );
    let (s, _, _) = h.call(&admin(Method::Get, &at(&id), None));
    assert_eq!(s, 405);
    let unauthenticated = Request::new(Method::Post, &at(&id));
    assert_eq!(h.call(&unauthenticated).0, 401);
    assert_eq!(h.stored_secret(&id), None, "still public");
    assert_eq!(h.stored_secret("pat_client"), None);
    // An administrator-made public client may be made confidential too.
    let (s, v) = h.confidential(APP);
    assert_eq!((s, v["source"].clone()), (200, json!("admin")), "{v}");
    let (s, v, _) = h.call(&admin(Method::Get, &format!("/admin/clients/{APP}"), None));
    assert_eq!((s, v["public"].clone()), (200, json!(false)));
}

#[test]
fn a_lost_write_changes_nothing_and_a_landed_but_failed_one_is_recovered_by_rotation() {
    let h = harness();
    let id = h.registration();
    h.backend.inject(Step::ClientWrite, Fault::Lost);
    let (s, v) = h.confidential(&id);
    assert_eq!(
        (s, v["error"].clone()),
        (503, json!("temporarily_unavailable")),
        "{v}"
    );
    assert_eq!(h.stored_secret(&id), None);
    assert!(!v.to_string().contains("client_secret"));

    // Landed, reported failed: the client is confidential with a secret nobody saw. Asking
    // again says so; rotate-secret gives it one to use.
    h.backend.inject(Step::ClientWrite, Fault::LandedButFailed);
    let (s, v) = h.confidential(&id);
    assert_eq!(s, 503, "{v}");
    assert!(h.stored_secret(&id).is_some());
    assert_eq!(h.confidential(&id).0, 409);
    let (s, v, _) = h.call(&admin(
        Method::Post,
        &format!("/admin/clients/{id}/rotate-secret"),
        Some(r#"{"grace_seconds":0}"#),
    ));
    assert_eq!(s, 200, "{v}");
    let secret = v["client_secret"].as_str().expect("secret");
    assert_eq!(h.stored_secret(&id), Some(ClientSecret::new(secret).hash()));

    // Another change first (here: the secret set by a concurrent request): the conditional
    // statement refuses, and the answer says to read again.
    let (c, _) = block_on(h.backend.client_profile(&id))
        .expect("read")
        .expect("stored");
    let other = crate::model::SecretSet {
        current: ClientSecret::new("other").hash(),
        previous: None,
    };
    assert_eq!(
        block_on(h.backend.set_client_secret(&id, &c.uid, None, &other)).expect("ok"),
        crate::store::Write::NotFound,
        "expected public, found confidential"
    );
    assert_eq!(
        block_on(h.backend.set_client_secret(
            &id,
            "another-uid",
            c.secret.as_ref().map(|s| &s.current),
            &other
        ))
        .expect("ok"),
        crate::store::Write::NotFound,
        "another client under the same id"
    );
    assert_eq!(h.stored_secret(&id), Some(ClientSecret::new(secret).hash()));
    // D1 down: 503, nothing shown.
    h.backend.break_d1.set(true);
    assert_eq!(h.confidential(&id).0, 503);
}
