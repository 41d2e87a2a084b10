//! The webhook fan-out under load and failure: unauthenticated events are sampled per window
//! (no amplification of failed authentications), batches stay within the Queues limits,
//! expiry notices whose deliveries could not be queued are released for the next scan, and a
//! dead-lettered message ends as a `webhook.failed` line.

use super::*;
use crate::app::webhooks::{dead_lettered, fan_out, FanOut};
use crate::events::Event;
use crate::testing::{Fault, Step};
use crate::webhook::Delivery;

fn register(h: &Harness, url: &str, types: &[&str]) -> String {
    let req = Request::new(Method::Post, "/admin/webhooks")
        .header("authorization", &format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(json!({"url": url, "event_types": types}).to_string());
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 201, "{v}");
    let _ = h.isolate.take_events();
    v["id"].as_str().expect("id").to_owned()
}

/// What the runtime does after each request: log the events, then fan them out.
fn after_request(h: &Harness) -> (Vec<Event>, FanOut) {
    let events = h.isolate.take_events();
    let out = block_on(fan_out(&h.cfg, &h.backend, &h.isolate, h.now, &events));
    (events, out)
}

fn failed_auth(h: &Harness, i: u32) -> u16 {
    let req = Request::new(Method::Post, "/oauth/introspect")
        .header(
            "authorization",
            &format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("client{i}:wrong"))
            ),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cf-connecting-ip", &format!("198.51.100.{}", i % 250))
        .body("token=x");
    h.send(&req).response.status
}

fn queued_types(h: &Harness) -> Vec<(String, Value)> {
    h.backend
        .queue
        .borrow()
        .iter()
        .map(|d| {
            (
                d.event_type.clone(),
                serde_json::from_str::<Value>(&d.payload).expect("json"),
            )
        })
        .collect()
}

#[test]
fn failed_authentications_from_anywhere_are_sampled_not_amplified() {
    let mut h = Harness::new();
    let endpoints = crate::app::webhooks::MAX_ENDPOINTS;
    for i in 0..endpoints {
        register(&h, &format!("https://h{i}.example/"), &["*"]);
    }
    // Warm the endpoint cache, then count what a burst costs.
    let _ = failed_auth(&h, 0);
    let _ = after_request(&h);
    h.backend.queue.borrow_mut().clear();
    h.backend.take_counts();
    let mut logged = 0;
    for i in 1..=1000 {
        assert_eq!(failed_auth(&h, i), 401);
        let (events, out) = after_request(&h);
        logged += events
            .iter()
            .filter(|e| matches!(e, Event::ClientAuthFailed { .. }))
            .count();
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }
    // Every failure is still a log line; none was queued (the first of this window was, before).
    assert_eq!(logged, 1000);
    assert!(h.backend.queue.borrow().is_empty());
    assert_eq!(
        h.backend.take_counts().d1_query,
        0,
        "no endpoint read either"
    );
    // The window ends: the next failure is delivered, with the summary of the last window.
    h.now += crate::webhook::sampling::WINDOW_SECS;
    assert_eq!(failed_auth(&h, 1001), 401);
    let (_, out) = after_request(&h);
    assert_eq!(out.queued, 2 * endpoints);
    let q = queued_types(&h);
    let summaries: Vec<&Value> = q
        .iter()
        .filter(|(_, p)| p["data"]["summary"] == true)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(summaries.len(), endpoints);
    let s = summaries[0];
    assert_eq!(s["type"], "client_auth.failed");
    assert_eq!(s["data"]["count"], 1000);
    assert_eq!(s["data"]["window_start"], NOW);
    assert_eq!(
        s["data"]["window_end"],
        NOW + crate::webhook::sampling::WINDOW_SECS
    );
    let single = q
        .iter()
        .find(|(_, p)| p["data"]["summary"].is_null())
        .expect("the first of the new window");
    assert_eq!(single.1["data"]["client_id"], "client1001");
}

#[test]
fn a_summary_is_sent_after_its_window_even_without_another_event_of_its_type() {
    let mut h = Harness::new();
    register(&h, "https://a.example/", &["rate_limited", "pat.created"]);
    for i in 0..5 {
        h.isolate.emit(Event::RateLimited {
            limit: "failed client authentications per IP",
            key: format!("192.0.2.{i}"),
        });
    }
    let (_, out) = after_request(&h);
    assert_eq!(out.queued, 1);
    // Quiet, then any request of this isolate (here: one with no event at all).
    h.now += 61;
    let (_, out) = after_request(&h);
    assert_eq!(out.queued, 1);
    let q = queued_types(&h);
    assert_eq!(q[1].0, "rate_limited");
    assert_eq!(q[1].1["data"]["count"], 4);
    // Reported once.
    h.now += 61;
    assert_eq!(after_request(&h).1.queued, 0);
    // Other types are never sampled.
    for _ in 0..3 {
        let _ = h.pat("alice", &["demo_api:read"]);
    }
    assert_eq!(after_request(&h).1.queued, 3);
}

fn big_event(i: usize, bytes: usize) -> Event {
    Event::TokenRevoked {
        token_id: format!("{i}-{}", "x".repeat(bytes)),
        client_id: "c".into(),
    }
}

#[test]
fn batches_stay_within_the_queues_limits() {
    let h = Harness::new();
    for i in 0..crate::app::webhooks::MAX_ENDPOINTS {
        register(&h, &format!("https://h{i}.example/"), &["token.revoked"]);
    }
    // Three events of about 30 KB to 20 endpoints: 60 messages, 1.8 MB. Cut by count only
    // (100), they were one batch, refused by the queue twice, and all lost.
    for i in 0..3 {
        h.isolate.emit(big_event(i, 30_000));
    }
    let (_, out) = after_request(&h);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(out.queued, 60);
    assert_eq!(h.backend.queue.borrow().len(), 60);
    // Many small ones: cut at 100 messages.
    for i in 0..12 {
        h.isolate.emit(big_event(i, 10));
    }
    let (_, out) = after_request(&h);
    assert_eq!(out.queued, 240);
    // Non-ASCII text counts double: still within the limits.
    h.isolate.emit(Event::TokenRevoked {
        token_id: "é".repeat(15_000),
        client_id: "c".into(),
    });
    let (_, out) = after_request(&h);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(out.queued, 20);
}

#[test]
fn the_batch_cutter_respects_count_and_bytes() {
    use crate::webhook::{queue_batches, QUEUE_MAX_BATCH_BYTES, QUEUE_MAX_BATCH_MESSAGES};
    assert!(queue_batches(&[]).is_empty());
    assert_eq!(queue_batches(&[10; 250]), vec![0..100, 100..200, 200..250]);
    assert_eq!(
        queue_batches(&[100_000, 100_000, 100_000, 56_000, 1]),
        vec![0..2, 2..5]
    );
    assert_eq!(
        queue_batches(&[100_000, 100_000, 100_000, 100_000, 56_001]),
        vec![0..2, 2..4, 4..5]
    );
    // Deterministic pseudo-random sizes: every batch within the limits, all covered, in order.
    let mut x: u64 = 7;
    let sizes: Vec<usize> = (0..5000)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            usize::try_from(x >> 47).expect("small") % 128_000 + 1
        })
        .collect();
    let batches = queue_batches(&sizes);
    let mut next = 0;
    for b in &batches {
        assert_eq!(b.start, next);
        next = b.end;
        assert!(b.len() <= QUEUE_MAX_BATCH_MESSAGES && !b.is_empty());
        assert!(sizes[b.clone()].iter().sum::<usize>() <= QUEUE_MAX_BATCH_BYTES);
    }
    assert_eq!(next, sizes.len());
}

#[test]
fn expiry_notices_that_could_not_be_queued_are_sent_by_the_next_scan() {
    let mut h = Harness::new();
    register(&h, "https://a.example/", &["pat.expiring"]);
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    let _ = h.isolate.take_events();
    h.now += 24 * 86_400; // 6 days left: the 7-day notice
    let scan = |h: &Harness| {
        let ctx = Ctx {
            cfg: &h.cfg,
            backend: &h.backend,
            isolate: &h.isolate,
            now: h.now,
        };
        let n = block_on(crate::app::tokens::expiry_scan(&ctx)).expect("scan");
        let (events, out) = after_request(h);
        let released = block_on(crate::app::tokens::release_unqueued_notices(
            &ctx,
            &events,
            &out.not_queued,
        ));
        (n, out, released)
    };
    // The queue refuses the send and its retry: the notice is released, not lost.
    h.backend
        .queue_faults
        .borrow_mut()
        .extend([Fault::Lost, Fault::Lost]);
    let (n, out, released) = scan(&h);
    assert_eq!((n, out.queued, released), (1, 0, 1));
    assert_eq!(out.not_queued, vec![0]);
    assert!(h.backend.notices.borrow().is_empty());
    // The next scan sends it.
    h.now += 3600;
    let (n, out, released) = scan(&h);
    assert_eq!((n, out.queued, released), (1, 1, 0));
    let q = queued_types(&h);
    assert_eq!(q[0].1["data"]["pat_id"], id.as_str());
    // Once sent, never again.
    h.now += 3600;
    assert_eq!(scan(&h).0, 0);
}

#[test]
fn an_expiry_notice_whose_send_landed_but_failed_is_kept_claimed() {
    let mut h = Harness::new();
    register(&h, "https://a.example/", &["pat.expiring"]);
    let _ = h.pat("alice", &["demo_api:read"]);
    let _ = h.isolate.take_events();
    h.now += 24 * 86_400;
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &h.isolate,
        now: h.now,
    };
    h.backend
        .queue_faults
        .borrow_mut()
        .push(Fault::LandedButFailed);
    assert_eq!(
        block_on(crate::app::tokens::expiry_scan(&ctx)).expect("scan"),
        1
    );
    let (events, out) = after_request(&h);
    assert_eq!(out.queued, 1);
    assert!(out.not_queued.is_empty());
    assert_eq!(
        block_on(crate::app::tokens::release_unqueued_notices(
            &ctx,
            &events,
            &out.not_queued
        )),
        0
    );
    assert_eq!(h.backend.notices.borrow().len(), 1);
    // At least once: the send landed and was repeated (one webhook-id, receivers dedupe).
    let q = h.backend.queue.borrow();
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].msg_id, q[1].msg_id);
}

#[test]
fn a_release_that_fails_is_a_warning() {
    let mut h = Harness::new();
    register(&h, "https://a.example/", &["pat.expiring"]);
    let _ = h.pat("alice", &["demo_api:read"]);
    let _ = h.isolate.take_events();
    h.now += 24 * 86_400;
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &h.isolate,
        now: h.now,
    };
    h.backend
        .queue_faults
        .borrow_mut()
        .extend([Fault::Lost, Fault::Lost]);
    h.backend.inject(Step::NoticeRelease, Fault::Lost);
    assert_eq!(
        block_on(crate::app::tokens::expiry_scan(&ctx)).expect("scan"),
        1
    );
    let (events, out) = after_request(&h);
    let released = block_on(crate::app::tokens::release_unqueued_notices(
        &ctx,
        &events,
        &out.not_queued,
    ));
    assert_eq!(released, 0);
    let warnings = h.logged();
    assert!(
        warnings.contains("neither queued nor released"),
        "{warnings}"
    );
}

#[test]
fn a_dead_lettered_message_ends_as_a_failed_delivery_line() {
    let d = Delivery {
        endpoint: "wh_1".into(),
        msg_id: "msg_dead".into(),
        event_type: "pat.revoked".into(),
        payload: "{}".into(),
    };
    let log = dead_lettered(&serde_json::to_string(&d).expect("json"), 11);
    assert_eq!(log.event, "webhook.failed");
    assert_eq!(
        (log.endpoint.as_str(), log.msg_id.as_str(), log.attempt),
        ("wh_1", "msg_dead", 11)
    );
    let line: Value = serde_json::from_str(&log.line()).expect("json");
    assert_eq!(line["event"], "webhook.failed");
    assert_eq!(line["type"], "pat.revoked");
    assert!(line["error"]
        .as_str()
        .expect("error")
        .contains("dead-letter"));
    let log = dead_lettered("not a delivery", 3);
    assert_eq!(log.event, "webhook.dropped");
}
