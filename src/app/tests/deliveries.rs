//! Webhook deliveries you can inspect and replay, over the in-memory backend: the delivery log of
//! every attempt, endpoint health (a run of failures disables an endpoint with an event, an
//! operator enables it), redelivery and the test ping, hostile parameters and forged ids, and
//! injected failures of the log's and the health's writes.

#![allow(clippy::many_single_char_names, clippy::too_many_lines)]

use super::*;
use crate::app::webhooks::{deliver, fan_out, prune_deliveries, Delivered, Sending, Verdict};
use crate::store::StoreError;
use crate::testing::{Fault, Step};

const SENDING: Sending<'static> = Sending {
    millis: &|| 0.0,
    jitter: 1 << 31,
};

fn admin(method: Method, path: &str) -> Request {
    Request::new(method, path).header("authorization", &format!("Bearer {ADMIN}"))
}

impl Harness {
    fn endpoint(&self, path: &str, types: &[&str]) -> String {
        let req = admin(Method::Post, "/admin/webhooks")
            .header("content-type", "application/json")
            .body(
                json!({"url": format!("https://hooks.example.com{path}"), "event_types": types})
                    .to_string(),
            );
        let (s, v, _) = self.call(&req);
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().expect("id").to_owned()
    }

    /// Delivers the oldest queued message as attempt `attempt`.
    fn deliver_next(&self, attempt: u32) -> Delivered {
        let d = self.backend.queue.borrow_mut().remove(0);
        let body = serde_json::to_string(&d).expect("json");
        block_on(deliver(
            &self.cfg,
            &self.backend,
            &body,
            attempt,
            self.now,
            &SENDING,
        ))
    }

    fn queue_again(&self, d: &crate::webhook::Delivery) {
        self.backend.queue.borrow_mut().insert(0, d.clone());
    }

    fn health(&self, id: &str) -> crate::webhook::health::Health {
        self.backend
            .webhooks
            .borrow()
            .iter()
            .find(|w| w.id == id)
            .expect("endpoint")
            .health
            .clone()
    }
}

#[test]
fn every_attempt_is_logged_and_a_run_of_failures_disables_the_endpoint_with_an_event() {
    let mut h = Harness::new();
    h.cfg.webhooks.disable_after_secs = 100;
    let ep = h.endpoint("/down", &["pat.created"]);
    let (s, v, _) = h.call(&admin(Method::Post, &format!("/admin/webhooks/{ep}/ping")));
    assert_eq!(s, 202, "{v}");
    let msg = h.backend.queue.borrow()[0].clone();
    assert_eq!(
        (msg.event_type.as_str(), msg.redelivery),
        ("webhook.ping", false)
    );
    // a 500: retried, logged, the run of failures starts
    h.backend.post_answers.borrow_mut().push_back(Ok(500));
    let d = h.deliver_next(1);
    assert_eq!(d.verdict, Verdict::Retry(5));
    assert!(d.disabled.is_none() && d.warnings.is_empty());
    assert_eq!(h.health(&ep).failing_since, Some(h.now));
    // a timeout 100 s later: the run is long enough, the endpoint is disabled, with its event
    h.now += 100;
    h.queue_again(&msg);
    h.backend
        .post_answers
        .borrow_mut()
        .push_back(Err(StoreError("timed out".into())));
    let d = h.deliver_next(2);
    let Some(crate::events::Event::WebhookEndpointDisabled {
        endpoint,
        reason,
        failing_since,
    }) = d.disabled
    else {
        panic!("disabled with an event: {d:?}");
    };
    assert_eq!(
        (endpoint.as_str(), failing_since),
        (ep.as_str(), h.now - 100)
    );
    assert!(reason.contains("failed"), "{reason}");
    let (_, v, _) = h.call(&admin(Method::Get, &format!("/admin/webhooks/{ep}")));
    assert_eq!(v["enabled"], false);
    assert_eq!(v["disabled_at"], h.now);
    // the log, newest first
    let (s, v, _) = h.call(&admin(
        Method::Get,
        &format!("/admin/webhooks/{ep}/deliveries"),
    ));
    assert_eq!(s, 200, "{v}");
    let list = v["deliveries"].as_array().expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(
        (
            list[0]["attempt"].as_u64(),
            list[0]["outcome"].as_str(),
            list[0]["error"].as_str()
        ),
        (Some(2), Some("retrying"), Some("timed out"))
    );
    assert_eq!(
        (
            list[1]["status"].as_u64(),
            list[1]["outcome"].as_str(),
            list[1]["type"].as_str()
        ),
        (Some(500), Some("retrying"), Some("webhook.ping"))
    );
    assert!(
        list[1].get("payload").is_none(),
        "the list leaves payloads out"
    );
    assert_eq!(list[0]["latency_ms"], 0);
    // disabled: nothing more queued for it (once the fan-out's copy of the list is renewed),
    // a message already queued is dropped unsent, and a ping is refused
    h.now += h.cfg.registry_cache_secs + 1;
    h.create(
        "walt",
        json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":30}),
    );
    let events = h.isolate.take_events();
    block_on(fan_out(&h.cfg, &h.backend, &h.isolate, h.now, &events));
    assert!(h.backend.queue.borrow().iter().all(|q| q.endpoint != ep));
    let posts = h.backend.posts.borrow().len();
    h.queue_again(&msg);
    let d = h.deliver_next(3);
    assert_eq!((d.verdict, d.log.event), (Verdict::Ack, "webhook.dropped"));
    assert_eq!(h.backend.posts.borrow().len(), posts, "not sent");
    let (s, _, _) = h.call(&admin(Method::Post, &format!("/admin/webhooks/{ep}/ping")));
    assert_eq!(s, 409);
    // enabled again: a clean health, pings go out and succeed
    let (s, v, _) = h.call(&admin(
        Method::Post,
        &format!("/admin/webhooks/{ep}/enable"),
    ));
    assert_eq!((s, v["enabled"].as_bool()), (200, Some(true)), "{v}");
    assert!(v.get("disabled_at").is_none());
    assert_eq!(h.health(&ep), crate::webhook::health::Health::default());
    let (s, _, _) = h.call(&admin(Method::Post, &format!("/admin/webhooks/{ep}/ping")));
    assert_eq!(s, 202);
    let d = h.deliver_next(1);
    assert_eq!(
        (d.verdict, d.log.event),
        (Verdict::Ack, "webhook.delivered")
    );
}

#[test]
fn a_redelivery_sends_the_logged_payload_again_with_the_same_id() {
    let h = Harness::new();
    let ep = h.endpoint("/a", &["pat.created"]);
    let other = h.endpoint("/b", &["pat.created"]);
    for _ in 0..3 {
        h.create(
            "walt",
            json!({"name":"x","scopes":["demo_api:read"],"expires_in_days":30}),
        );
    }
    let events = h.isolate.take_events();
    block_on(fan_out(&h.cfg, &h.backend, &h.isolate, h.now, &events));
    while !h.backend.queue.borrow().is_empty() {
        h.deliver_next(1);
    }
    // pages of one, newest first, to the end
    let mut ids = Vec::new();
    let mut path = format!("/admin/webhooks/{ep}/deliveries?limit=1");
    loop {
        let (s, v, _) = h.call(&admin(Method::Get, &path));
        assert_eq!(s, 200, "{v}");
        ids.push(v["deliveries"][0]["id"].as_i64().expect("id"));
        match v["next_before"].as_i64() {
            Some(b) => path = format!("/admin/webhooks/{ep}/deliveries?limit=1&before={b}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let first = ids[2];
    let (s, one, _) = h.call(&admin(
        Method::Get,
        &format!("/admin/webhooks/{ep}/deliveries/{first}"),
    ));
    assert_eq!(s, 200);
    let sent = h.backend.posts.borrow()[0].body.clone();
    assert_eq!(one["payload"], sent, "the exact bytes sent");
    // another endpoint's attempt is not this one's
    let (s, _, _) = h.call(&admin(
        Method::Get,
        &format!("/admin/webhooks/{other}/deliveries/{first}"),
    ));
    assert_eq!(s, 404);
    let (s, v, _) = h.call(&admin(
        Method::Post,
        &format!("/admin/webhooks/{ep}/deliveries/{first}/redeliver"),
    ));
    assert_eq!(
        (s, v["msg_id"].clone()),
        (202, one["msg_id"].clone()),
        "{v}"
    );
    let q = h.backend.queue.borrow()[0].clone();
    assert_eq!(
        (q.msg_id.as_str(), q.redelivery),
        (one["msg_id"].as_str().unwrap(), true)
    );
    assert_eq!(q.payload, sent);
    let d = h.deliver_next(1);
    assert_eq!(d.log.event, "webhook.delivered");
    let (_, v, _) = h.call(&admin(
        Method::Get,
        &format!("/admin/webhooks/{ep}/deliveries"),
    ));
    assert_eq!(v["deliveries"][0]["redelivery"], true);
    // the queue failing: 503, nothing logged
    h.backend.queue_faults.borrow_mut().push(Fault::Lost);
    let (s, _, _) = h.call(&admin(
        Method::Post,
        &format!("/admin/webhooks/{ep}/deliveries/{first}/redeliver"),
    ));
    assert_eq!(s, 503);
    // the hourly scan: attempts past retention go
    let later = h.now + h.cfg.webhooks.retention_days * 86_400 + 1;
    block_on(prune_deliveries(&h.cfg, &h.backend, later)).expect("pruned");
    assert!(h.backend.attempts.borrow().is_empty());
}

#[test]
fn bad_delivery_parameters_are_400_and_forged_ids_404() {
    let h = Harness::new();
    let ep = h.endpoint("/a", &["pat.created"]);
    for q in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=99999999999",
        "before=x",
        "before=-1",
        "before=0",
    ] {
        let (s, v, _) = h.call(&admin(
            Method::Get,
            &format!("/admin/webhooks/{ep}/deliveries?{q}"),
        ));
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{q}"
        );
    }
    for id in ["abc", "-1", "0", "1e3", "99999999999999999999", "1", "%31"] {
        let (s, _, _) = h.call(&admin(
            Method::Get,
            &format!("/admin/webhooks/{ep}/deliveries/{id}"),
        ));
        assert_eq!(s, 404, "{id}");
        let (s, _, _) = h.call(&admin(
            Method::Post,
            &format!("/admin/webhooks/{ep}/deliveries/{id}/redeliver"),
        ));
        assert_eq!(s, 404, "{id}");
    }
    for path in ["deliveries", "ping", "enable"] {
        let (s, _, _) = h.call(&admin(
            Method::Get,
            &format!("/admin/webhooks/wh_0000000000000000/{path}"),
        ));
        assert_eq!(s, 404, "{path}");
    }
    let (s, _, _) = h.call(&admin(
        Method::Post,
        &format!("/admin/webhooks/{ep}/deliveries"),
    ));
    assert_eq!(s, 405);
    let (s, _, _) = h.call(&admin(Method::Get, &format!("/admin/webhooks/{ep}/ping")));
    assert_eq!(s, 405);
    let (s, _, _) = h.call(&admin(
        Method::Get,
        &format!("/admin/webhooks/{ep}/deliveries/1/redeliver"),
    ));
    assert_eq!(s, 405);
    let (s, _, _) = h.call(&Request::new(
        Method::Post,
        &format!("/admin/webhooks/{ep}/ping"),
    ));
    assert_eq!(s, 401);
    assert!(
        h.backend.queue.borrow().is_empty(),
        "nothing queued by refused calls"
    );
}

#[test]
fn failed_log_and_health_writes_never_change_the_verdict_and_a_landed_disable_still_says_so() {
    let mut h = Harness::new();
    h.cfg.webhooks.disable_after_secs = 10;
    let ep = h.endpoint("/x", &["pat.created"]);
    h.call(&admin(Method::Post, &format!("/admin/webhooks/{ep}/ping")));
    let msg = h.backend.queue.borrow()[0].clone();
    // the log's insert lost: still delivered and acked, with a warning
    h.backend
        .faults
        .borrow_mut()
        .push((Step::AttemptRecord, Fault::Lost));
    let d = h.deliver_next(1);
    assert_eq!((d.verdict, d.warnings.len()), (Verdict::Ack, 1), "{d:?}");
    assert!(h.backend.attempts.borrow().is_empty());
    // the health write lost at the start of a run: a warning; the run starts at the next failure
    h.queue_again(&msg);
    h.backend.post_answers.borrow_mut().push_back(Ok(502));
    h.backend
        .faults
        .borrow_mut()
        .push((Step::HealthWrite, Fault::Lost));
    let d = h.deliver_next(1);
    assert_eq!((d.verdict, d.warnings.len()), (Verdict::Retry(5), 1));
    assert_eq!(h.health(&ep).failing_since, None);
    h.queue_again(&msg);
    h.backend.post_answers.borrow_mut().push_back(Ok(502));
    h.deliver_next(2);
    assert_eq!(h.health(&ep).failing_since, Some(h.now));
    // the disabling write lost: no event, not disabled; the next failure disables it
    h.now += 10;
    h.queue_again(&msg);
    h.backend.post_answers.borrow_mut().push_back(Ok(502));
    h.backend
        .faults
        .borrow_mut()
        .push((Step::HealthWrite, Fault::Lost));
    let d = h.deliver_next(3);
    assert!(d.disabled.is_none());
    assert!(!h.health(&ep).is_disabled());
    // the disabling write landed but reported an error: disabled, and the event is sent now
    h.queue_again(&msg);
    h.backend.post_answers.borrow_mut().push_back(Ok(502));
    h.backend
        .faults
        .borrow_mut()
        .push((Step::HealthWrite, Fault::LandedButFailed));
    let d = h.deliver_next(4);
    assert!(h.health(&ep).is_disabled());
    assert!(
        matches!(
            d.disabled,
            Some(crate::events::Event::WebhookEndpointDisabled { .. })
        ),
        "{d:?}"
    );
    assert_eq!(d.warnings.len(), 1);
}
