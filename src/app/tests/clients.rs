//! Clients one by one: RFC 7591 registration, client ID metadata documents, what an unknown or
//! forged id costs, the admin table of administrator-made clients only (also with 100,000
//! self-registered clients stored), unused registrations expiring, and storage failures in each
//! new write.

use super::*;
use crate::app::clients::{self, ClientLookup, Freshness};
use crate::authz::records::{AppGrant, Audience, ClientProfile, ClientSource};
use crate::authz::secrets::{generate_dynamic_id, ClientIdKey};
use crate::authz::store::{ClientDirectory, Fetched};
use crate::oauth::client_metadata::GrantType;
use crate::store::Limit;
use crate::testing::{Fault, Step};

const KEY: [u8; 32] = [7; 32];
const CB: &str = "http://127.0.0.1/callback";
const DOC: &str = "https://app.example/oauth/client.json";

fn harness() -> Harness {
    let mut h = Harness::new();
    h.cfg.clients.id_keys = vec![ClientIdKey::new(&KEY).expect("key")];
    h.cfg.clients.dynamic_registration = true;
    h
}

fn ctx(h: &Harness) -> Ctx<'_, MemoryBackend> {
    Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &h.isolate,
        now: h.now,
    }
}

fn register(h: &Harness, body: &str) -> (u16, Value) {
    let req = Request::new(Method::Post, "/oauth/register")
        .header("content-type", "application/json")
        .header("cf-connecting-ip", "198.51.100.7")
        .body(body.to_owned());
    let (s, v, o) = h.call(&req);
    assert_eq!(o.response.header("cache-control"), Some("no-store"));
    (s, v)
}

fn registered(h: &Harness) -> String {
    let (s, v) = register(
        h,
        &format!(
            r#"{{"client_name":"CLI","redirect_uris":["{CB}"],"grant_types":["authorization_code","refresh_token"]}}"#
        ),
    );
    assert_eq!(s, 201, "{v}");
    v["client_id"].as_str().expect("id").to_owned()
}

/// RFC 7009 of a garbage token: the client's authentication and nothing else.
fn authenticate(h: &Harness, id: &str) -> u16 {
    let req = Request::new(Method::Post, "/oauth/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("client_id={id}&token=garbage"));
    h.call(&req).0
}

fn d1(h: &Harness) -> u32 {
    h.backend.counts.get().d1_query
}

fn lookup(h: &Harness, id: &str) -> ClientLookup {
    block_on(clients::client_for(&ctx(h), id)).expect("no storage failure")
}

fn why(l: &ClientLookup) -> String {
    match l {
        ClientLookup::Unknown(w) => w.to_string(),
        ClientLookup::Found(c) => panic!("found {}", c.client.id),
    }
}

#[test]
fn registration_is_off_unless_configured() {
    let mut h = harness();
    h.cfg.clients.dynamic_registration = false;
    let (s, v) = register(&h, &format!(r#"{{"redirect_uris":["{CB}"]}}"#));
    assert_eq!(s, 404, "{v}");
    assert!(h.backend.profiles.borrow().is_empty());
}

#[test]
fn a_registered_client_is_public_found_one_by_one_and_its_use_is_noted_hourly() {
    let h = harness();
    let (s, v) = register(
        &h,
        &format!(
            r#"{{"client_name":"CLI","redirect_uris":["{CB}"],"token_endpoint_auth_method":"client_secret_basic","scope":"demo_api:read"}}"#
        ),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["client_id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("pgd_") && id.len() == 48, "{id}");
    assert_eq!(v["token_endpoint_auth_method"], "none");
    assert!(v.get("client_secret").is_none());
    assert_eq!(v["client_id_issued_at"], NOW);
    assert!(h.logged().contains(&format!(
        r#"{{"event":"client.registered","client_id":"{id}","source":"dynamic"}}"#
    )));
    let (client, profile) = block_on(h.backend.client_profile(&id))
        .expect("read")
        .expect("stored");
    assert!(client.secret.is_none() && client.enabled && client.allowed_scopes.is_empty());
    assert_eq!(client.token_lifetime, h.cfg.clients.token_secs);
    assert_eq!(
        (
            profile.source,
            profile.last_used_at,
            profile.redirect_uris.clone()
        ),
        (ClientSource::Dynamic, Some(NOW), vec![CB.to_owned()])
    );
    assert_eq!(
        profile.grant_types,
        Some(vec![GrantType::AuthorizationCode])
    );
    assert!(!profile.refresh_tokens);

    // One D1 read the first time (the admin table once, the client once), none after.
    assert_eq!(authenticate(&h, &id), 200);
    let before = d1(&h);
    assert_eq!(authenticate(&h, &id), 200);
    assert_eq!(d1(&h), before, "cached");
    // A secret sent by a public client is refused; client_credentials is not for it.
    let req = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&client_id={id}"));
    let (s, v, _) = h.call(&req);
    assert_eq!((s, v["error"].as_str()), (400, Some("unauthorized_client")));

    // Its use is written at most once an hour per isolate, and only when older than that.
    // (The cached copy is past its life by then: one read, one write, then nothing.)
    let mut h = h;
    h.now = NOW + 7200;
    let before = d1(&h);
    assert_eq!(authenticate(&h, &id), 200);
    assert_eq!(
        h.backend.profile_of(&id).last_used_at,
        Some(NOW + 7200),
        "noted"
    );
    assert_eq!(d1(&h) - before, 2, "the read again and one write");
    let before = d1(&h);
    assert_eq!(authenticate(&h, &id), 200);
    assert_eq!(
        d1(&h),
        before,
        "claimed for the hour in this isolate: no second write"
    );
}

#[test]
fn a_forged_dynamic_id_costs_no_read_and_an_unknown_one_is_remembered() {
    let mut h = harness();
    let id = registered(&h);
    let forged = format!("{}{}", &id[..47], if id.ends_with('0') { '1' } else { '0' });
    assert_eq!(
        authenticate(&h, "demo_client"),
        401,
        "loads the admin table"
    );
    let before = d1(&h);
    assert_eq!(authenticate(&h, &forged), 401);
    assert_eq!(authenticate(&h, "no_such_admin_client"), 401);
    assert!(matches!(lookup(&h, &forged), ClientLookup::Unknown(_)));
    assert_eq!(
        d1(&h),
        before,
        "no read for a forged pgd_ id or an unknown admin id"
    );
    // A well-tagged id nobody registered: one read, then remembered for the negative TTL.
    let unknown = generate_dynamic_id(&ClientIdKey::new(&KEY).expect("key")).expect("rng");
    assert_eq!(authenticate(&h, &unknown), 401);
    assert_eq!(d1(&h), before + 1);
    assert_eq!(authenticate(&h, &unknown), 401);
    assert_eq!(d1(&h), before + 1, "negative entry");
    h.now += h.cfg.clients.negative_cache_secs;
    assert_eq!(authenticate(&h, &unknown), 401);
    assert!(d1(&h) > before + 1, "read again after the negative TTL");
    // Without keys no pgd_ id exists at all.
    h.cfg.clients.id_keys.clear();
    assert_eq!(authenticate(&h, &id), 401);
}

#[test]
fn hostile_registrations_get_rfc7591_errors_and_a_rate_limit() {
    let h = harness();
    for (body, code) in [
        (
            r#"{"redirect_uris":["http://evil.example/cb"]}"#,
            "invalid_redirect_uri",
        ),
        (r#"{"redirect_uris":[]}"#, "invalid_redirect_uri"),
        (
            r#"{"redirect_uris":["https://a.example/cb#f"]}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"software_statement":"x"}"#,
            "invalid_software_statement",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"client_id":"demo_client"}"#,
            "invalid_client_metadata",
        ),
        ("[]", "invalid_client_metadata"),
        ("not json", "invalid_client_metadata"),
    ] {
        let (s, v) = register(&h, body);
        assert_eq!((s, v["error"].as_str()), (400, Some(code)), "{body}: {v}");
        assert!(v["error_description"].is_string());
    }
    let req = Request::new(Method::Post, "/oauth/register")
        .header("content-type", "text/plain")
        .body(format!(r#"{{"redirect_uris":["{CB}"]}}"#));
    assert_eq!(h.call(&req).0, 415);
    assert!(h.backend.profiles.borrow().is_empty(), "nothing stored");
    h.backend
        .limits
        .borrow_mut()
        .insert(Limit::RegistrationsPerIp, 2);
    let body = format!(r#"{{"redirect_uris":["{CB}"]}}"#);
    assert_eq!(register(&h, &body).0, 201);
    assert_eq!(register(&h, &body).0, 201);
    let (s, v) = register(&h, &body);
    assert_eq!((s, v["error"].as_str()), (429, Some("rate_limited")));
}

#[test]
fn a_registration_write_that_fails_answers_503_and_one_that_landed_expires_unused() {
    let mut h = harness();
    let body = format!(r#"{{"redirect_uris":["{CB}"]}}"#);
    h.backend.inject(Step::ClientRegister, Fault::Lost);
    assert_eq!(register(&h, &body).0, 503);
    assert!(h.backend.profiles.borrow().is_empty());
    h.backend
        .inject(Step::ClientRegister, Fault::LandedButFailed);
    assert_eq!(register(&h, &body).0, 503, "the caller never learns the id");
    assert_eq!(h.backend.profiles.borrow().len(), 1);
    h.now += 31 * 86_400;
    assert_eq!(block_on(clients::expire_unused(&ctx(&h))).expect("run"), 1);
    assert!(h.backend.profiles.borrow().is_empty(), "the orphan is gone");
}

#[test]
fn unused_registrations_expire_unless_used_or_granted() {
    let mut h = harness();
    let old = registered(&h);
    let granted = registered(&h);
    h.now += 20 * 86_400;
    let used = registered(&h);
    let uid = h
        .backend
        .clients
        .borrow()
        .iter()
        .find(|c| c.id == granted)
        .expect("c")
        .uid
        .clone();
    h.backend.app_grants.borrow_mut().push(AppGrant {
        id: "g1".into(),
        subject: "alice".into(),
        client_id: granted.clone(),
        client_uid: uid,
        redirect_key: CB.into(),
        audience: Audience {
            resource: "https://api.example/".into(),
            api_id: "demo_api".into(),
            api_uid: "uid-demo_api".into(),
        },
        scopes: vec!["demo_api:read".into()],
        created_at: NOW,
        last_used_at: None,
        refresh_generation: 1,
        rotated_generation: 0,
        expires_at: NOW + 180 * 86_400,
        revoked_at: None,
        revoked_reason: None,
    });
    h.now += 11 * 86_400;
    // Cached in this isolate (a read as stored notes no use).
    assert!(block_on(clients::stored(&ctx(&h), &old, Freshness::Cached))
        .expect("ok")
        .is_some());
    h.logged();
    let n = block_on(clients::expire_unused(&ctx(&h))).expect("run");
    assert_eq!(n, 1);
    assert!(h.logged().contains(&format!(
        r#"{{"event":"client.expired","client_id":"{old}"}}"#
    )));
    let ids: Vec<String> = h
        .backend
        .clients
        .borrow()
        .iter()
        .map(|c| c.id.clone())
        .collect();
    assert!(!ids.contains(&old));
    assert!(
        ids.contains(&granted) && ids.contains(&used) && ids.contains(&"demo_client".to_owned())
    );
    assert_eq!(
        authenticate(&h, &old),
        401,
        "forgotten by this isolate at once"
    );
    // A storage failure fails the run (the cron logs it); nothing half done.
    h.backend.break_d1.set(true);
    assert!(block_on(clients::expire_unused(&ctx(&h))).is_err());
}

fn doc(url: &str, extra: &str) -> Fetched {
    Fetched {
        status: 200,
        body: format!(
            r#"{{"client_id":"{url}","client_name":"Agent","redirect_uris":["{CB}"],"grant_types":["authorization_code","refresh_token"]{extra}}}"#
        )
        .into_bytes(),
        cache_control: Some("max-age=600".into()),
        ..Fetched::default()
    }
}

fn serve(h: &Harness, url: &str, f: Result<Fetched, &str>) {
    h.backend
        .documents
        .borrow_mut()
        .insert(url.to_owned(), f.map_err(str::to_owned));
}

#[test]
fn a_metadata_document_is_fetched_once_stored_and_refetched_when_its_cache_ends() {
    let mut h = harness();
    serve(&h, DOC, Ok(doc(DOC, "")));
    let ClientLookup::Found(c) = lookup(&h, DOC) else {
        panic!("not found")
    };
    assert_eq!(c.profile.source, ClientSource::MetadataDocument);
    assert_eq!(c.profile.display_name.as_deref(), Some("Agent"));
    assert!(c.profile.refresh_tokens);
    assert_eq!(c.profile.metadata_expires_at, Some(NOW + 600));
    assert!(c.client.secret.is_none() && !c.client.uid.is_empty());
    assert!(h.logged().contains(r#""event":"client.registered""#));
    let uid = c.client.uid.clone();
    assert!(matches!(lookup(&h, DOC), ClientLookup::Found(_)));
    assert_eq!(h.backend.fetched.borrow().len(), 1, "cached");
    // Another isolate reads D1, not the network, while the document is fresh.
    let elsewhere = IsolateState::default();
    let c2 = Ctx {
        isolate: &elsewhere,
        ..ctx(&h)
    };
    assert!(matches!(
        block_on(clients::client_for(&c2, DOC)).expect("ok"),
        ClientLookup::Found(_)
    ));
    assert_eq!(h.backend.fetched.borrow().len(), 1);
    // Its tokens' checks never fetch: the stored client answers.
    assert!(block_on(clients::stored(&ctx(&h), DOC, Freshness::Cached))
        .expect("ok")
        .is_some());
    // Past its cache life it is fetched again: new members, same uid, no second event.
    h.now += 601;
    serve(
        &h,
        DOC,
        Ok(doc(DOC, r#","client_uri":"https://app.example/""#)),
    );
    let ClientLookup::Found(c) = lookup(&h, DOC) else {
        panic!("not found")
    };
    assert_eq!(h.backend.fetched.borrow().len(), 2);
    assert_eq!(c.client.uid, uid);
    assert!(!h.logged().contains("client.registered"));
    // The admin API never lists it.
    let req = Request::new(Method::Get, "/admin/clients")
        .header("authorization", &format!("Bearer {ADMIN}"));
    let (_, v, _) = h.call(&req);
    assert!(!v.to_string().contains(DOC));
}

#[test]
fn hostile_metadata_documents_never_become_clients_and_are_remembered_with_why() {
    let large = doc(DOC, &format!(r#","padding":"{}""#, "x".repeat(6000)));
    let mut moved = doc(DOC, "");
    moved.status = 302;
    for (answer, want) in [
        (Ok(large), "larger than 5120 bytes"),
        (
            Ok(doc("https://evil.example/c.json", "")),
            "client_id is not the URL it was fetched from",
        ),
        (Ok(moved), "redirect (302); redirects are not followed"),
        (
            Ok(Fetched {
                status: 404,
                ..Fetched::default()
            }),
            "HTTP 404",
        ),
        (Ok(doc(DOC, r#","client_secret":"s""#)), "secret"),
        (
            Ok(Fetched {
                status: 200,
                body: br#"{"client_id":"https://app.example/oauth/client.json","redirect_uris":["#
                    .to_vec(),
                ..Fetched::default()
            }),
            "JSON",
        ),
        (Err("no answer within 3000 ms"), "did not answer within 3 s"),
        (Err("connection refused"), "could not be fetched"),
    ] {
        let mut h = harness();
        serve(&h, DOC, answer);
        let w = why(&lookup(&h, DOC));
        assert!(w.starts_with("this app could not be identified: "), "{w}");
        assert!(w.contains(want), "{w} should say {want}");
        assert!(block_on(h.backend.client_profile(DOC))
            .expect("read")
            .is_none());
        // remembered (with why) for the negative TTL: no second fetch
        assert_eq!(why(&lookup(&h, DOC)), w);
        assert_eq!(h.backend.fetched.borrow().len(), 1);
        h.now += h.cfg.clients.negative_cache_secs;
        let _ = lookup(&h, DOC);
        assert_eq!(h.backend.fetched.borrow().len(), 2, "tried again later");
    }
}

#[test]
fn documents_on_private_hosts_are_never_fetched_and_loopback_http_only_in_development() {
    let mut h = harness();
    for url in [
        "https://10.0.0.1/client.json",
        "https://169.254.169.254/latest/meta-data/c.json",
        "https://localhost/c.json",
        "https://metadata.internal/c.json",
        "https://app.example/",
    ] {
        serve(&h, url, Ok(doc(url, "")));
        let w = why(&lookup(&h, url));
        assert!(
            w.starts_with("this app could not be identified"),
            "{url}: {w}"
        );
    }
    // http://127.0.0.1 is not even a metadata URL without the development setting.
    let local = "http://127.0.0.1:9/c.json";
    serve(&h, local, Ok(doc(local, "")));
    assert_eq!(why(&lookup(&h, local)), "unknown client");
    assert!(h.backend.fetched.borrow().is_empty(), "nothing fetched");
    h.cfg.clients.metadata_http_loopback = true;
    assert!(matches!(lookup(&h, local), ClientLookup::Found(_)));
    assert_eq!(h.backend.fetched.borrow().len(), 1);
}

#[test]
fn metadata_fetches_are_rate_limited_and_storage_failures_are_503() {
    let h = harness();
    h.backend
        .limits
        .borrow_mut()
        .insert(Limit::MetadataFetches, 1);
    let other = "https://other.example/c.json";
    serve(&h, DOC, Ok(doc(DOC, "")));
    serve(&h, other, Ok(doc(other, "")));
    assert!(matches!(lookup(&h, DOC), ClientLookup::Found(_)));
    // The IP's budget is spent: another document from the same IP is refused with 429.
    let e = block_on(clients::client_for(&ctx(&h), other)).expect_err("limited");
    assert_eq!(e.status(), 429);
    assert_eq!(h.backend.fetched.borrow().len(), 1);

    let h = harness();
    serve(&h, DOC, Ok(doc(DOC, "")));
    h.backend.inject(Step::ClientRegister, Fault::Lost);
    let e = block_on(clients::client_for(&ctx(&h), DOC)).expect_err("lost");
    assert_eq!(e.status(), 503);
    assert!(block_on(h.backend.client_profile(DOC))
        .expect("read")
        .is_none());
    let l = lookup(&h, DOC);
    assert!(matches!(l, ClientLookup::Found(_)), "retried: {l:?}");
    let h = harness();
    serve(&h, DOC, Ok(doc(DOC, "")));
    h.backend
        .inject(Step::ClientRegister, Fault::LandedButFailed);
    assert_eq!(
        block_on(clients::client_for(&ctx(&h), DOC))
            .map(|_| ())
            .map_err(|e| e.status()),
        Err(503)
    );
    // It landed: the next lookup finds the fresh copy in D1 without fetching again.
    assert!(matches!(lookup(&h, DOC), ClientLookup::Found(_)));
    assert_eq!(h.backend.fetched.borrow().len(), 1);
}

#[test]
fn self_registered_clients_may_ask_for_what_the_pat_client_allows() {
    let h = harness();
    let id = registered(&h);
    let c = block_on(clients::stored(&ctx(&h), &id, Freshness::Cached))
        .expect("ok")
        .expect("found");
    assert_eq!(
        block_on(clients::allowed_scopes(&ctx(&h), &c)).expect("ok"),
        ["demo_api:read", "demo_api:write", "other_api:read"]
    );
    let admin = block_on(clients::stored(&ctx(&h), "demo_client", Freshness::Cached))
        .expect("ok")
        .expect("found");
    assert_eq!(
        block_on(clients::allowed_scopes(&ctx(&h), &admin)).expect("ok"),
        ["demo_api:read"]
    );
    // Token exchange is for administrator-made clients only.
    let req = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id={id}\
             &subject_token={}&subject_token_type=urn:ietf:params:oauth:token-type:jwt",
            user_jwt("alice")
        ));
    let (s, v, _) = h.call(&req);
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{v}"
    );
}

/// The growth the issue asks about: 100,000 self-registered clients stored. The isolate's
/// admin table holds the administrator-made clients only, and authenticating one reads nothing
/// more than before.
#[test]
fn one_hundred_thousand_self_registered_clients_stay_out_of_the_admin_table() {
    let h = harness();
    let key = ClientIdKey::new(&KEY).expect("key");
    let mut sample = String::new();
    for i in 0..100_000 {
        let id = generate_dynamic_id(&key).expect("rng");
        if i == 0 {
            sample.clone_from(&id);
        }
        h.backend.add_client(
            clients::self_registered(&h.cfg, &id),
            ClientProfile {
                source: ClientSource::Dynamic,
                redirect_uris: vec![CB.into()],
                grant_types: Some(vec![GrantType::AuthorizationCode]),
                last_used_at: Some(NOW),
                ..ClientProfile::legacy()
            },
        );
    }
    let table = block_on(clients::admin_table(&ctx(&h))).expect("table");
    assert_eq!(table.len(), 2, "pat_client and demo_client only");
    let before = d1(&h);
    for _ in 0..100 {
        let req = Request::new(Method::Post, "/oauth/revoke")
            .header(
                "authorization",
                "Basic ZGVtb19jbGllbnQ6ZGVtby1jbGllbnQtc2VjcmV0",
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=garbage");
        assert_eq!(h.call(&req).0, 200);
    }
    assert_eq!(d1(&h), before, "no read per authentication");
    assert_eq!(authenticate(&h, &sample), 200);
    assert_eq!(authenticate(&h, &sample), 200);
    assert_eq!(
        d1(&h),
        before + 1,
        "a self-registered client: one read, then cached"
    );
}

fn admin_req(method: Method, path: &str, body: Option<&Value>) -> Request {
    let r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    match body {
        Some(b) => r
            .header("content-type", "application/json")
            .body(b.to_string()),
        None => r,
    }
}

/// An administrator-made public client with the authorization code side: created and changed
/// through the admin API under both write faults, identified by `client_id` alone, and its
/// profile as the authorization endpoint sees it.
#[test]
fn admin_clients_with_a_profile_survive_write_faults() {
    for fault in [Fault::Lost, Fault::LandedButFailed] {
        let h = harness();
        let body = serde_json::json!({
            "id": "desk_app", "public": true, "allowed_scopes": ["demo_api:read"],
            "redirect_uris": [CB, "https://desk.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "display_name": "Desk", "logo_uri": "https://desk.example/logo.png",
        });
        h.backend.inject(Step::ClientWrite, fault);
        let create = admin_req(Method::Post, "/admin/clients", Some(&body));
        assert_eq!(h.call(&create).0, 503, "{fault:?}");
        let (status, answer, _) = h.call(&create);
        let want = if fault == Fault::Lost { 201 } else { 409 };
        assert_eq!(status, want, "{fault:?}: the retry: {answer}");
        let ClientLookup::Found(c) = lookup(&h, "desk_app") else {
            panic!("{fault:?}: not found")
        };
        assert_eq!(c.profile.source, ClientSource::Admin);
        assert_eq!(c.profile.display_name.as_deref(), Some("Desk"));
        assert_eq!(c.profile.redirect_uris, [CB, "https://desk.example/cb"]);
        assert!(c.profile.refresh_tokens && c.client.secret.is_none());
        assert_eq!(authenticate(&h, "desk_app"), 200, "public: client_id alone");

        // A change that fails leaves the old profile or the new one, never a mix; the retry
        // lands, and this isolate sees it at once.
        let (_, got, o) = h.call(&admin_req(Method::Get, "/admin/clients/desk_app", None));
        assert_eq!(got["display_name"], "Desk");
        let tag = o.response.header("etag").expect("etag").to_owned();
        let change = serde_json::json!({"redirect_uris": ["https://desk.example/other"], "display_name": null});
        h.backend.inject(Step::ClientWrite, fault);
        let patch = admin_req(Method::Patch, "/admin/clients/desk_app", Some(&change));
        assert_eq!(
            h.call(&patch.clone().header("if-match", &tag)).0,
            503,
            "{fault:?}"
        );
        let (_, now, o) = h.call(&admin_req(Method::Get, "/admin/clients/desk_app", None));
        let landed = now["redirect_uris"] == serde_json::json!(["https://desk.example/other"]);
        assert_eq!(landed, fault == Fault::LandedButFailed, "{fault:?}: {now}");
        assert_eq!(
            landed,
            now["display_name"].is_null(),
            "{fault:?}: all or nothing: {now}"
        );
        let tag = o.response.header("etag").expect("etag").to_owned();
        let (status, answer, _) = h.call(&patch.header("if-match", &tag));
        assert_eq!(status, 200, "{fault:?}: {answer}");
        let ClientLookup::Found(c) = lookup(&h, "desk_app") else {
            panic!("gone")
        };
        assert_eq!(c.profile.redirect_uris, ["https://desk.example/other"]);
        assert_eq!(c.profile.display_name, None);
    }
}

/// Noting a registration's use is best effort: a failed write warns and the request succeeds;
/// the next hour tries again. An expiry run whose delete landed but reported an error leaves
/// nothing behind for the next run to trip on.
#[test]
fn failed_use_notes_and_expiry_runs_lose_nothing() {
    for fault in [Fault::Lost, Fault::LandedButFailed] {
        let mut h = harness();
        let id = registered(&h);
        h.now += 7200;
        h.logged();
        h.backend.inject(Step::ClientTouch, fault);
        assert_eq!(
            authenticate(&h, &id),
            200,
            "{fault:?}: the request still succeeds"
        );
        let noted = h.backend.profile_of(&id).last_used_at == Some(h.now);
        assert_eq!(noted, fault == Fault::LandedButFailed, "{fault:?}");
        assert!(
            h.logged().contains("last use not recorded"),
            "{fault:?}: warned"
        );

        h.now += 31 * 86_400;
        h.backend.inject(Step::ClientWrite, fault);
        assert!(
            block_on(clients::expire_unused(&ctx(&h))).is_err(),
            "{fault:?}"
        );
        let left = usize::from(fault == Fault::Lost);
        assert_eq!(h.backend.profiles.borrow().len(), left, "{fault:?}");
        // The next run finishes the job (or finds nothing left).
        assert_eq!(
            block_on(clients::expire_unused(&ctx(&h))).expect("run"),
            left,
            "{fault:?}"
        );
        assert_eq!(authenticate(&h, &id), 401, "{fault:?}: gone");
    }
}

/// A document that fails on a refetch (its server down, or now refused) stops new
/// authorizations with why, but the copy stored earlier still identifies the client at the
/// token endpoint: its refresh tokens keep working.
#[test]
fn a_failed_refetch_refuses_new_authorizations_but_not_the_stored_client() {
    let mut h = harness();
    serve(&h, DOC, Ok(doc(DOC, "")));
    assert!(matches!(lookup(&h, DOC), ClientLookup::Found(_)));
    h.now += 601;
    serve(&h, DOC, Err("connection refused"));
    let w = why(&lookup(&h, DOC));
    assert!(w.contains("could not be fetched"), "{w}");
    assert_eq!(h.backend.fetched.borrow().len(), 2);
    assert!(
        block_on(clients::stored(&ctx(&h), DOC, Freshness::Cached))
            .expect("ok")
            .is_some(),
        "the stored copy"
    );
    assert_eq!(
        authenticate(&h, &DOC.replace(':', "%3A").replace('/', "%2F")),
        200,
        "the token endpoint knows it"
    );
    // A document nobody ever stored stays unknown at the token endpoint, with no fetch.
    let never = "https://never.example/c.json";
    serve(&h, never, Err("connection refused"));
    assert!(matches!(lookup(&h, never), ClientLookup::Unknown(_)));
    assert!(
        block_on(clients::stored(&ctx(&h), never, Freshness::Cached))
            .expect("ok")
            .is_none()
    );
    assert_eq!(h.backend.fetched.borrow().len(), 3);
}
