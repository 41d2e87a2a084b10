//! Webhooks over the in-memory backend: `/admin/webhooks` (secret shown once, hostile input,
//! forged admin authentication), the fan-out of events into the queue (filters, cache, injected
//! enqueue failures) and the consumer's delivery decision (signature, retries, final failure).

#![allow(clippy::many_single_char_names, clippy::too_many_lines)]

use super::*;
use crate::app::webhooks::{deliver, fan_out, none_registered, FanOut, Verdict};
use crate::testing::Fault;
use crate::webhook::Delivery;

fn admin(method: Method, path: &str, body: Option<Value>) -> Request {
    let mut r = Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"));
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    r
}

impl Harness {
    fn register(&self, url: &str, types: &[&str]) -> (String, String) {
        let (s, v, _) = self.call(&admin(
            Method::Post,
            "/admin/webhooks",
            Some(json!({"url": url, "event_types": types})),
        ));
        assert_eq!(s, 201, "{v}");
        (
            v["id"].as_str().expect("id").to_owned(),
            v["secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// What the runtime does after the response: take the events and fan them out.
    fn fan_out_now(&self) -> crate::app::webhooks::FanOut {
        let events = self.isolate.take_events();
        block_on(fan_out(
            &self.cfg,
            &self.backend,
            &self.isolate,
            self.now,
            &events,
        ))
    }

    fn deliver(&self, d: &Delivery, attempt: u32) -> (Verdict, crate::app::webhooks::DeliveryLog) {
        let body = serde_json::to_string(d).expect("json");
        block_on(deliver(&self.cfg, &self.backend, &body, attempt, self.now))
    }
}

/// Verifies a delivery the way a receiver would, with HMAC computed here (not `webhook::sign`).
fn verify_independently(secret: &str, post: &crate::testing::WebhookPost) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("prefix"))
        .expect("base64");
    let content = format!(
        "{}.{}.{}",
        post.header("webhook-id").expect("id"),
        post.header("webhook-timestamp").expect("ts"),
        post.body
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(content.as_bytes());
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    post.header("webhook-signature")
        .expect("signature")
        .split(' ')
        .any(|s| s == want)
}

#[test]
fn the_secret_is_shown_once_and_never_again() {
    let h = Harness::new();
    let (s, v, _) = h.call(&admin(
        Method::Post,
        "/admin/webhooks",
        Some(json!({"url": "https://hooks.example.com/p", "event_types": ["pat.revoked"]})),
    ));
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    let secret = v["secret"].as_str().expect("secret").to_owned();
    assert!(id.starts_with("wh_") && id.len() == 19, "{id}");
    assert!(secret.starts_with("whsec_"));
    assert_eq!(v["url"], "https://hooks.example.com/p");
    assert_eq!(v["event_types"], json!(["pat.revoked"]));
    let events: Vec<String> = h
        .isolate
        .take_events()
        .iter()
        .map(crate::events::Event::line)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains(r#""target":"webhooks""#), "{events:?}");
    assert!(!events[0].contains(&secret));

    // Reads never show it again.
    for path in [
        "/admin/webhooks".to_owned(),
        format!("/admin/webhooks/{id}"),
    ] {
        let o = h.send(&admin(Method::Get, &path, None));
        assert_eq!(o.response.status, 200);
        let text = String::from_utf8(o.response.body.clone()).expect("utf8");
        assert!(!text.contains(&secret[6..]), "{path}: {text}");
        assert!(!text.contains("secret\""), "{path}: {text}");
        assert!(text.contains(&id));
    }
    // Nor Debug (logs).
    let stored = h.backend.webhooks.borrow()[0].clone();
    assert_eq!(stored.secret.expose_secret(), secret);
    let dbg = format!("{stored:?}");
    assert!(!dbg.contains(&secret[6..]), "{dbg}");

    // Deleted: gone, and a second delete is 404.
    let (s, _, _) = h.call(&admin(
        Method::Delete,
        &format!("/admin/webhooks/{id}"),
        None,
    ));
    assert_eq!(s, 204);
    let (s, _, _) = h.call(&admin(
        Method::Delete,
        &format!("/admin/webhooks/{id}"),
        None,
    ));
    assert_eq!(s, 404);
    let (s, _, _) = h.call(&admin(Method::Get, &format!("/admin/webhooks/{id}"), None));
    assert_eq!(s, 404);
}

#[test]
fn forged_admin_authentication_registers_nothing() {
    let h = Harness::new();
    let body = json!({"url": "https://evil.example/h", "event_types": ["*"]}).to_string();
    let with = |auth: Option<&str>| {
        let mut r = Request::new(Method::Post, "/admin/webhooks")
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r
    };
    for (auth, status) in [
        (None, 401),
        (Some("Bearer wrong-admin-token".to_owned()), 401),
        (Some(format!("Bearer {ADMIN}x")), 401),
        (Some(format!("Bearer {}", &ADMIN[..ADMIN.len() - 1])), 401),
        (Some(format!("Basic {ADMIN}")), 401),
        (Some(format!("Bearer {}", user_jwt("alice"))), 401),
    ] {
        let (s, v, _) = h.call(&with(auth.as_deref()));
        assert_eq!(s, status, "{auth:?}: {v}");
    }
    // Listing needs the admin token too.
    let (s, _, _) = h.call(&Request::new(Method::Get, "/admin/webhooks"));
    assert_eq!(s, 401);
    assert!(h.backend.webhooks.borrow().is_empty());

    // Without ADMIN_TOKEN there is no admin API at all.
    let mut h = Harness::new();
    h.cfg.admin_token = None;
    let (s, _, _) = h.call(&with(Some(&format!("Bearer {ADMIN}"))));
    assert_eq!(s, 404);
    assert!(h.backend.webhooks.borrow().is_empty());
}

#[test]
fn hostile_registrations_are_refused() {
    let h = Harness::new();
    let post = |body: Value| {
        h.call(&admin(Method::Post, "/admin/webhooks", Some(body)))
            .0
    };
    let url = |u: &str| json!({"url": u, "event_types": ["pat.revoked"]});
    for bad in [
        "http://hooks.example.com/h",
        "http://127.0.0.1:9/h",
        "https://user:pass@hooks.example.com/h",
        "https://hooks.example.com/h#x",
        "file:///etc/passwd",
        "https://hooks.example.com/\r\nx-injected: 1",
        "",
        // The server's own or a private network, by number or by name.
        "https://127.0.0.1",
        "https://[::1]",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1",
        "https://2130706433",
        "https://0x7f000001/h",
        "https://[::ffff:127.0.0.1]/h",
        "https://localhost/h",
        "https://metadata.internal/h",
    ] {
        let (s, v, _) = h.call(&admin(Method::Post, "/admin/webhooks", Some(url(bad))));
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["error"], "invalid_request", "{bad}");
    }
    assert_eq!(
        post(url(&format!("https://h.example/{}", "a".repeat(3000)))),
        400
    );
    for types in [
        json!([]),
        json!(["pat.nope"]),
        json!(["pat.revoked", "pat.revoked"]),
        json!(["webhook.failed"]),
        json!("pat.revoked"),
        json!([1]),
        json!(null),
    ] {
        assert_eq!(
            post(json!({"url": "https://h.example/", "event_types": types})),
            400,
            "{types}"
        );
    }
    assert_eq!(
        post(json!({"url": "https://h.example/", "event_types": ["*"], "secret": "whsec_mine"})),
        400,
        "operators cannot choose the secret"
    );
    assert_eq!(post(json!({"url": "https://h.example/"})), 400);
    // Not a JSON object, not JSON, not declared JSON, too large.
    let raw = |ct: &str, body: &str| {
        h.call(
            &Request::new(Method::Post, "/admin/webhooks")
                .header("authorization", &format!("Bearer {ADMIN}"))
                .header("content-type", ct)
                .body(body.to_owned()),
        )
        .0
    };
    assert_eq!(
        raw("application/json", r#"["https://h.example/",["*"]]"#),
        400
    );
    assert_eq!(raw("application/json", "{"), 400);
    assert_eq!(
        raw(
            "text/plain",
            r#"{"url":"https://h.example/","event_types":["*"]}"#
        ),
        415
    );
    let huge = json!({"url": "https://h.example/", "event_types": ["*"], "x": "a".repeat(20_000)});
    assert_eq!(raw("application/json", &huge.to_string()), 413);
    assert!(h.backend.webhooks.borrow().is_empty());
    // Methods and paths.
    assert_eq!(h.call(&admin(Method::Put, "/admin/webhooks", None)).0, 405);
    assert_eq!(
        h.call(&admin(Method::Patch, "/admin/webhooks/wh_1", None))
            .0,
        405
    );
    assert_eq!(
        h.call(&admin(
            Method::Get,
            "/admin/webhooks/wh_1/rotate-secret",
            None
        ))
        .0,
        405
    );
    assert_eq!(
        h.call(&admin(Method::Get, "/admin/webhooks/wh_1/x/y", None))
            .0,
        404
    );
    assert_eq!(
        h.call(&admin(
            Method::Post,
            "/admin/webhooks/nope/rotate-secret",
            None
        ))
        .0,
        404
    );

    // Plain http to the local machine only with the dev flag.
    let mut h = Harness::new();
    h.cfg.webhooks.allow_http_localhost = true;
    h.register("http://127.0.0.1:8999/h", &["*"]);
    let s = h
        .call(&admin(
            Method::Post,
            "/admin/webhooks",
            Some(url("http://192.0.2.1/h")),
        ))
        .0;
    assert_eq!(s, 400);
}

#[test]
fn endpoints_are_bounded() {
    let h = Harness::new();
    for i in 0..crate::app::webhooks::MAX_ENDPOINTS {
        h.register(&format!("https://h{i}.example/"), &["*"]);
    }
    let (s, v, _) = h.call(&admin(
        Method::Post,
        "/admin/webhooks",
        Some(json!({"url": "https://one-more.example/", "event_types": ["*"]})),
    ));
    assert_eq!(s, 409, "{v}");
}

#[test]
fn fan_out_follows_each_endpoints_filter() {
    let h = Harness::new();
    let (only_revoked, _) = h.register("https://a.example/", &["pat.revoked"]);
    let (all, _) = h.register("https://b.example/", &["*"]);
    let (rotations, _) = h.register("https://c.example/", &["pat.rotated", "pat.expiring"]);
    let _ = h.isolate.take_events(); // the registrations' admin.change
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    let f = h.fan_out_now();
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    let q = h.backend.queue.borrow().clone();
    let of = |ep: &str| -> Vec<String> {
        q.iter()
            .filter(|d| d.endpoint == ep)
            .map(|d| d.event_type.clone())
            .collect()
    };
    assert_eq!(of(&only_revoked), ["pat.revoked"]);
    assert_eq!(of(&all), ["pat.created", "pat.revoked"]);
    assert!(of(&rotations).is_empty());
    assert_eq!(f.queued, 3);
    // One message id per delivery; the same event's payload to both endpoints.
    let ids: std::collections::HashSet<&str> = q.iter().map(|d| d.msg_id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    let revoked: Vec<&Delivery> = q.iter().filter(|d| d.event_type == "pat.revoked").collect();
    assert_eq!(revoked[0].payload, revoked[1].payload);
    let p: Value = serde_json::from_str(&revoked[0].payload).expect("json");
    assert_eq!(p["type"], "pat.revoked");
    assert_eq!(p["data"]["pat_id"], id.as_str());
    assert_eq!(p["data"]["reason"], "user");
    assert_eq!(p["timestamp"], rfc3339(NOW));
    // No secret or token in any payload.
    assert!(q.iter().all(|d| !d.payload.contains("pgt_")));
}

#[test]
fn the_expiry_scan_and_rotation_events_reach_subscribers() {
    let mut h = Harness::new();
    let (ep, _) = h.register("https://c.example/", &["pat.rotated", "pat.expiring"]);
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    let _ = h.isolate.take_events();
    let req = Request::new(Method::Post, &format!("/api/pats/{id}/rotate"))
        .header("authorization", &format!("Bearer {}", user_jwt("alice")));
    assert_eq!(h.call(&req).0, 201);
    h.now += 24 * 86_400; // 6 days left: the 7-day notice
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &h.isolate,
        now: h.now,
    };
    assert_eq!(
        block_on(crate::app::tokens::expiry_scan(&ctx)).expect("scan"),
        1
    );
    h.fan_out_now();
    let q = h.backend.queue.borrow();
    let types: Vec<&str> = q.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(types, ["pat.rotated", "pat.expiring"]);
    assert!(q.iter().all(|d| d.endpoint == ep));
    let p: Value = serde_json::from_str(&q[1].payload).expect("json");
    assert_eq!(p["data"]["threshold_days"], 7);
}

#[test]
fn nothing_registered_means_no_reads_after_the_first() {
    let h = Harness::new();
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    let _ = id;
    assert!(!none_registered(&h.cfg, &h.isolate, h.now));
    let f = h.fan_out_now();
    assert_eq!(f, FanOut::default());
    assert!(none_registered(&h.cfg, &h.isolate, h.now));
    // The cached (empty) list is used without D1 while fresh...
    h.backend.break_d1.set(true);
    h.isolate.emit(crate::events::Event::Warning {
        message: "x".into(),
    });
    let before = h.backend.counts.get().d1_query;
    assert_eq!(h.fan_out_now(), FanOut::default());
    assert_eq!(h.backend.counts.get().d1_query, before);
    // ... and past its life, a failed read falls back to it.
    assert!(!none_registered(
        &h.cfg,
        &h.isolate,
        h.now + h.cfg.registry_cache_secs
    ));
}

#[test]
fn a_registration_reaches_this_isolates_fan_out_at_once() {
    let h = Harness::new();
    let _ = h.fan_out_now(); // caches "no endpoints"
    let revoked = || crate::events::Event::TokenRevoked {
        token_id: "t".into(),
        client_id: "c".into(),
    };
    h.isolate.emit(revoked());
    let _ = h.fan_out_now();
    assert!(none_registered(&h.cfg, &h.isolate, h.now));
    h.register("https://a.example/", &["token.revoked"]);
    assert!(!none_registered(&h.cfg, &h.isolate, h.now));
    let _ = h.isolate.take_events();
    h.isolate.emit(revoked());
    assert_eq!(h.fan_out_now().queued, 1);
}

#[test]
fn unreadable_endpoints_lose_the_deliveries_not_the_request() {
    let h = Harness::new();
    h.register("https://a.example/", &["*"]);
    let _ = h.isolate.take_events();
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    h.backend.break_d1.set(true);
    let f = h.fan_out_now();
    // The registration made this isolate forget its list: the read fails, nothing is cached to
    // fall back to: a warning, nothing queued.
    assert_eq!(f.queued, 0);
    assert_eq!(f.warnings.len(), 1);
    assert!(
        f.warnings[0].line().contains("not delivered"),
        "{:?}",
        f.warnings
    );
    h.backend.break_d1.set(false);
    // The PAT exists and works.
    let (s, v) = h.user_call(Method::Get, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 200, "{v}");
}

#[test]
fn enqueue_failures_never_change_the_requests_outcome() {
    // Lost once: sent again, queued once.
    let h = Harness::new();
    h.register("https://a.example/", &["pat.revoked"]);
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let _ = h.isolate.take_events();
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    h.backend.queue_faults.borrow_mut().push(Fault::Lost);
    let f = h.fan_out_now();
    assert_eq!((f.queued, f.warnings.len()), (1, 0));
    assert_eq!(h.backend.queue.borrow().len(), 1);

    // Landed but reported an error: sent again with the same message id (a duplicate the
    // receiver dedupes by `webhook-id`).
    let h = Harness::new();
    h.register("https://a.example/", &["pat.revoked"]);
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    let _ = h.isolate.take_events();
    h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    h.backend
        .queue_faults
        .borrow_mut()
        .push(Fault::LandedButFailed);
    let f = h.fan_out_now();
    assert_eq!(f.queued, 1);
    let q = h.backend.queue.borrow().clone();
    assert_eq!(q.len(), 2);
    assert_eq!(q[0], q[1]);

    // Lost twice: a warning naming the message; the revocation stands.
    let h = Harness::new();
    h.register("https://a.example/", &["pat.revoked"]);
    let (id, token2) = h.pat("alice", &["demo_api:read"]);
    let _ = h.isolate.take_events();
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    h.backend
        .queue_faults
        .borrow_mut()
        .extend([Fault::Lost, Fault::Lost]);
    let f = h.fan_out_now();
    assert_eq!(f.queued, 0);
    assert_eq!(f.warnings.len(), 1);
    assert!(f.warnings[0].line().contains("msg_"), "{:?}", f.warnings);
    assert!(h.backend.queue.borrow().is_empty());
    let (_, v, _) = h.introspect(&token2);
    assert_eq!(v["active"], false);
    let _ = token;
}

fn delivery(endpoint: &str) -> Delivery {
    Delivery {
        endpoint: endpoint.into(),
        msg_id: "msg_test1".into(),
        event_type: "pat.revoked".into(),
        payload: r#"{"type":"pat.revoked","timestamp":"2026-11-18T00:00:00Z","data":{}}"#.into(),
    }
}

#[test]
fn deliveries_are_signed_per_standard_webhooks() {
    let h = Harness::new();
    let (ep, secret) = h.register("https://a.example/hook", &["*"]);
    let d = delivery(&ep);
    let (verdict, log) = h.deliver(&d, 1);
    assert_eq!(verdict, Verdict::Ack);
    assert_eq!(log.event, "webhook.delivered");
    assert_eq!(log.status, Some(200));
    let posts = h.backend.posts.borrow();
    assert_eq!(posts.len(), 1);
    let p = &posts[0];
    assert_eq!(p.url, "https://a.example/hook");
    assert_eq!(p.body, d.payload);
    assert_eq!(p.header("webhook-id"), Some("msg_test1"));
    assert_eq!(
        p.header("webhook-timestamp"),
        Some(NOW.to_string().as_str())
    );
    assert_eq!(p.header("content-type"), Some("application/json"));
    assert_eq!(p.timeout_secs, h.cfg.webhooks.timeout_secs);
    assert!(verify_independently(&secret, p));
    assert!(!log.line().contains(&secret[6..]));
}

#[test]
fn failures_are_retried_with_backoff_then_given_up() {
    let mut h = Harness::new();
    let (ep, secret) = h.register("https://a.example/hook", &["*"]);
    let d = delivery(&ep);
    h.backend.post_answers.borrow_mut().extend([
        Ok(500),
        Err(crate::store::StoreError("timed out".into())),
        Ok(302),
        Ok(204),
    ]);
    assert_eq!(h.deliver(&d, 1).0, Verdict::Retry(5));
    h.now += 5;
    let (v, log) = h.deliver(&d, 2);
    assert_eq!(v, Verdict::Retry(30));
    assert_eq!(log.event, "webhook.retrying");
    assert_eq!(log.error.as_deref(), Some("timed out"));
    h.now += 30;
    assert_eq!(
        h.deliver(&d, 3).0,
        Verdict::Retry(120),
        "no redirects followed"
    );
    h.now += 120;
    let (v, log) = h.deliver(&d, 4);
    assert_eq!(
        (v, log.event, log.status),
        (Verdict::Ack, "webhook.delivered", Some(204))
    );
    // Same id on every attempt, each signed at its own time.
    let posts = h.backend.posts.borrow();
    assert_eq!(posts.len(), 4);
    assert!(posts
        .iter()
        .all(|p| p.header("webhook-id") == Some("msg_test1")));
    assert!(posts.iter().all(|p| verify_independently(&secret, p)));
    assert_ne!(
        posts[0].header("webhook-timestamp"),
        posts[3].header("webhook-timestamp")
    );
    drop(posts);

    // The last attempt failing is final: acked, logged as webhook.failed.
    let last = u32::try_from(crate::webhook::RETRY_DELAYS.len()).expect("len") + 1;
    h.backend.post_answers.borrow_mut().push_back(Ok(503));
    let (v, log) = h.deliver(&d, last);
    assert_eq!(v, Verdict::Ack);
    assert_eq!(log.event, "webhook.failed");
    assert_eq!(log.status, Some(503));
}

#[test]
fn deleted_endpoints_and_bad_messages_are_dropped() {
    let h = Harness::new();
    let (v, log) = h.deliver(&delivery("wh_gone"), 1);
    assert_eq!((v, log.event), (Verdict::Ack, "webhook.dropped"));
    let body = "not json";
    let (v, log) = block_on(deliver(&h.cfg, &h.backend, body, 1, h.now));
    assert_eq!((v, log.event), (Verdict::Ack, "webhook.dropped"));
    assert!(h.backend.posts.borrow().is_empty());
    // D1 down: retried, not dropped.
    let (ep, _) = h.register("https://a.example/", &["*"]);
    h.backend.break_d1.set(true);
    let (v, log) = h.deliver(&delivery(&ep), 1);
    assert_eq!((v, log.event), (Verdict::Retry(5), "webhook.retrying"));
    h.backend.break_d1.set(false);
    // An http endpoint registered under the dev flag is not called once the flag is off.
    let mut h = Harness::new();
    h.cfg.webhooks.allow_http_localhost = true;
    let (ep, _) = h.register("http://127.0.0.1:9/h", &["*"]);
    h.cfg.webhooks.allow_http_localhost = false;
    let (v, log) = h.deliver(&delivery(&ep), 1);
    assert_eq!((v, log.event), (Verdict::Ack, "webhook.dropped"));
    assert!(h.backend.posts.borrow().is_empty());
    // An endpoint stored before numeric and private hosts were refused gets nothing either.
    let (ep, _) = h.register("https://a.example/", &["*"]);
    h.backend.webhooks.borrow_mut()[1].url = "https://169.254.169.254/latest".into();
    assert_eq!(h.backend.webhooks.borrow()[1].id, ep);
    let (v, log) = h.deliver(&delivery(&ep), 1);
    assert_eq!((v, log.event), (Verdict::Ack, "webhook.dropped"));
    assert!(h.backend.posts.borrow().is_empty());
}

#[test]
fn a_rotated_secret_keeps_signing_during_its_grace() {
    let mut h = Harness::new();
    let (ep, old) = h.register("https://a.example/", &["*"]);
    let (s, v, _) = h.call(&admin(
        Method::Post,
        &format!("/admin/webhooks/{ep}/rotate-secret"),
        Some(json!({"grace_seconds": 3600})),
    ));
    assert_eq!(s, 200, "{v}");
    let new = v["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new, old);
    assert_eq!(v["previous_secret_valid_until"], NOW + 3600);
    let (_, view, _) = h.call(&admin(Method::Get, &format!("/admin/webhooks/{ep}"), None));
    assert_eq!(view["previous_secret_valid_until"], NOW + 3600);
    assert!(!view.to_string().contains(&new[6..]));
    h.deliver(&delivery(&ep), 1);
    h.now += 3600;
    h.deliver(&delivery(&ep), 1);
    let posts = h.backend.posts.borrow();
    assert!(verify_independently(&old, &posts[0]));
    assert!(verify_independently(&new, &posts[0]));
    assert!(!verify_independently(&old, &posts[1]), "the grace ended");
    assert!(verify_independently(&new, &posts[1]));
    drop(posts);
    for g in [json!(-1), json!(8 * 86_400), json!("1")] {
        let (s, _, _) = h.call(&admin(
            Method::Post,
            &format!("/admin/webhooks/{ep}/rotate-secret"),
            Some(json!({"grace_seconds": g})),
        ));
        assert_eq!(s, 400, "{g}");
    }
}

#[test]
fn oversized_payloads_are_not_queued() {
    let h = Harness::new();
    h.register("https://a.example/", &["token.revoked"]);
    let _ = h.isolate.take_events();
    h.isolate.emit(crate::events::Event::TokenRevoked {
        token_id: "x".repeat(crate::webhook::MAX_PAYLOAD_BYTES),
        client_id: "c".into(),
    });
    h.isolate.emit(crate::events::Event::TokenRevoked {
        token_id: "small".into(),
        client_id: "c".into(),
    });
    let f = h.fan_out_now();
    assert_eq!(f.queued, 1);
    assert_eq!(f.warnings.len(), 1);
    assert!(f.warnings[0].line().contains("too large"));
    assert!(h.backend.queue.borrow()[0].payload.contains("small"));
}

/// Reuse detection (its own event, and a revocation with reason `reuse`) reaches subscribers
/// with nothing webhook-specific in the reuse code.
#[test]
fn reuse_detection_is_delivered() {
    let h = Harness::new();
    let (ep, _) = h.register("https://a.example/", &["pat.reuse_detected", "pat.revoked"]);
    let (s, v) = h.create(
        "alice",
        json!({"name":"ci","scopes":["demo_api:read"],"expires_in_days":30,"revoke_on_reuse":true}),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    let old = v["token"].as_str().expect("token").to_owned();
    let req = Request::new(Method::Post, &format!("/api/pats/{id}/rotate"))
        .header("authorization", &format!("Bearer {}", user_jwt("alice")));
    assert_eq!(h.call(&req).0, 201);
    let _ = h.isolate.take_events();
    // The old token used again, at another location.
    let elsewhere = IsolateState::default();
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &elsewhere,
        now: h.now + 60,
    };
    let o = block_on(handle(&ctx, &introspect_req(&old)));
    h.run_deferred(&o);
    assert_eq!(o.response.json_body()["active"], false);
    let events = elsewhere.take_events();
    let f = block_on(fan_out(&h.cfg, &h.backend, &h.isolate, h.now, &events));
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    let q = h.backend.queue.borrow();
    let types: Vec<&str> = q.iter().map(|d| d.event_type.as_str()).collect();
    assert!(types.contains(&"pat.reuse_detected"), "{types:?}");
    assert!(q.iter().all(|d| d.endpoint == ep));
    let revoked = q
        .iter()
        .find(|d| d.event_type == "pat.revoked")
        .expect("pat.revoked");
    let p: Value = serde_json::from_str(&revoked.payload).expect("json");
    assert_eq!(p["data"]["reason"], "reuse");
    assert_eq!(p["data"]["pat_id"], id.as_str());
    let detected = q
        .iter()
        .find(|d| d.event_type == "pat.reuse_detected")
        .expect("detected");
    let p: Value = serde_json::from_str(&detected.payload).expect("json");
    assert_eq!(p["data"]["family_revoked"], true);
    assert!(!detected.payload.contains(&old));
}

/// A refused request emits only an `error` event (its cause): never delivered, so the fan-out
/// reads nothing, not even the endpoint list (the gate's garbage-token 401 stays storage-free).
#[test]
fn error_causes_alone_cost_no_read() {
    let h = Harness::new();
    let (s, _, _) = h.call(
        &Request::new(Method::Post, "/oauth/introspect")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", "Basic ZGVtb19hcGk6d3Jvbmc=")
            .body("token=x"),
    );
    assert_eq!(s, 401);
    let events = h.isolate.take_events();
    assert!(events
        .iter()
        .any(|e| matches!(e, crate::events::Event::ErrorCause { .. })));
    let only_causes: Vec<_> = events
        .into_iter()
        .filter(|e| matches!(e, crate::events::Event::ErrorCause { .. }))
        .collect();
    assert!(!crate::app::webhooks::any_deliverable(&only_causes));
    let before = h.backend.counts.get().d1_query;
    let f = block_on(fan_out(&h.cfg, &h.backend, &h.isolate, h.now, &only_causes));
    assert_eq!(f, FanOut::default());
    assert_eq!(h.backend.counts.get().d1_query, before, "no endpoint read");
}
