//! Usage counting over the in-memory backend, with the clock injected: every use of a live
//! reference token noted by introspection and the gate, coalesced per isolate window, applied by
//! the token's object (the Durable Object's own bookkeeping) and written by its alarm; what the
//! usage API and the PAT's view then show; day boundaries, retention, a lost report.

use super::*;
use crate::app::gate::{gate, GateAnswer, GateRequest};

const WINDOW: i64 = 30;

fn route(h: &Harness) {
    let req = Request::new(Method::Put, "/admin/routes/demo")
        .header("authorization", &format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(
            json!({
                "path_prefix": "/gw/demo/",
                "upstream": "http://127.0.0.1:9000/base",
                "resource": "demo_api",
                "rules": [
                    {"methods": ["GET"], "scopes": ["demo_api:read"]},
                    {"methods": ["POST"], "scopes": ["demo_api:write"]}
                ]
            })
            .to_string(),
        );
    assert_eq!(h.call(&req).0, 201);
}

impl Harness {
    /// A gated request from `ip`; its deferred work run. The status it got (200: forwarded).
    fn gated(&self, method: &str, token: &str, ip: &str) -> u16 {
        *self.backend.origin.borrow_mut() =
            crate::origin::ClientOrigin::new(Some(ip), Some("DFW"), Some("US"));
        let ctx = Ctx {
            cfg: &self.cfg,
            backend: &self.backend,
            isolate: &self.isolate,
            now: self.now,
            now_ms: self.now * 1000,
        };
        let bearer = format!("Bearer {token}");
        let req = GateRequest {
            method,
            scheme: "https",
            authority: "api.example.com",
            path: "/gw/demo/x",
            query: None,
            authorization: Some(&bearer),
            cors: crate::gate::cors::CorsRequest::default(),
            client_ip: ip,
        };
        match block_on(gate(&ctx, &req)) {
            GateAnswer::Forward(f) => {
                self.run_work(&f.deferred);
                200
            }
            GateAnswer::Respond(o) => {
                self.run_work(&o.deferred);
                o.response.status
            }
            GateAnswer::NotGate => panic!("not gate traffic"),
        }
    }

    /// Time passes: the isolate's flush timers run, then the objects' alarms.
    fn later(&mut self, secs: i64) {
        self.now += secs;
        self.fire_timers();
        self.backend.flush_usage(self.now);
    }

    fn usage(&self, id: &str, days: u32) -> Value {
        let (s, v) = self.user_call(
            Method::Get,
            &format!("/api/pats/{id}/usage?days={days}"),
            "alice",
        );
        assert_eq!(s, 200, "{v}");
        v
    }
}

fn by_key(v: &Value) -> Vec<(String, u64)> {
    v["per_resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                format!(
                    "{}/{}/{}",
                    c["via"].as_str().unwrap(),
                    c["name"].as_str().unwrap(),
                    c["outcome"].as_str().unwrap()
                ),
                c["uses"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_use_is_counted_per_resource_and_outcome_with_one_report_per_window() {
    let mut h = Harness::new();
    route(&h);
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    let before = h.backend.counts.get().do_call;
    let mut sent = 0;
    for round in 0..4 {
        for _ in 0..5 {
            assert_eq!(h.introspect(&token).1["active"], true);
        }
        for _ in 0..2 {
            let (_, v, _) = h.introspect_as("other_api", "other-api-secret", &token);
            assert_eq!(v, json!({"active": false}));
        }
        for _ in 0..3 {
            assert_eq!(h.gated("GET", &token, "203.0.113.9"), 200);
        }
        assert_eq!(h.gated("POST", &token, "203.0.113.9"), 403);
        assert_eq!(h.gated("DELETE", &token, "203.0.113.9"), 405);
        sent += 12;
        // each round within one window: at most one report per window
        let calls = h.backend.counts.get().do_call - before;
        assert!(
            calls <= round + 1,
            "{calls} reports after {} windows",
            round + 1
        );
        h.now += 10;
        h.fire_timers();
        h.now += WINDOW;
    }
    h.later(1);
    // the first use of a new window: where it came from is sampled (here, the gate's caller)
    h.now += WINDOW;
    assert_eq!(h.gated("GET", &token, "203.0.113.9"), 200);
    sent += 1;
    h.later(1);
    let total: u32 = h.backend.uses.borrow().iter().map(|r| r.uses).sum();
    assert_eq!(u64::from(total), sent, "reports carry every use");
    let v = h.usage(&id, 30);
    assert_eq!(v["total"], sent);
    let mut keys = by_key(&v);
    keys.sort();
    assert_eq!(
        keys,
        [
            ("gate/demo/active".to_owned(), 13),
            ("gate/demo/insufficient_scope".to_owned(), 4),
            ("gate/demo/method_not_allowed".to_owned(), 4),
            ("introspection/demo_api/active".to_owned(), 20),
            ("introspection/other_api/no_scope".to_owned(), 8),
        ]
    );
    let (_, view) = h.user_call(Method::Get, &format!("/api/pats/{id}"), "alice");
    assert_eq!(view["use_count"], sent);
    assert_eq!(view["usage"]["today"], sent);
    assert_eq!(view["usage"]["last_30_days"], sent);
    // where it was used from: the gate's caller, and the API for introspection (no IP)
    let from = view["last_used_from"].as_array().unwrap();
    let gate_from = from.iter().find(|f| f["via"] == "gate").unwrap();
    assert_eq!(gate_from["ip"], "203.0.113.9");
    assert_eq!(gate_from["country"], "US");
    let api = from.iter().find(|f| f["via"] == "introspection").unwrap();
    assert_eq!(api["name"], "demo_api");
    assert!(
        api.get("ip").is_none() && api.get("country").is_none(),
        "{api}"
    );
}

#[test]
fn uses_held_past_the_window_go_with_the_next_use_of_any_token_when_the_timer_never_ran() {
    let mut h = Harness::new();
    let (a, ta) = h.pat("alice", &["demo_api:read"]);
    let (_, tb) = h.pat("alice", &["demo_api:read"]);
    h.introspect(&ta);
    h.introspect(&ta);
    h.introspect(&ta); // held
    h.timers.borrow_mut().clear(); // the platform ended the timer
    h.now += WINDOW + 5;
    h.introspect(&tb); // another token's use finds the overdue window
    h.later(1);
    assert_eq!(h.usage(&a, 1)["total"], 3);
}

#[test]
fn uses_are_counted_on_their_utc_day_and_ninety_days_are_kept() {
    let mut h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    // to one second before midnight
    let midnight = (h.now / 86_400 + 1) * 86_400;
    h.now = midnight - 5;
    h.introspect(&token);
    h.introspect(&token);
    h.now = midnight + 1;
    h.introspect(&token);
    h.later(WINDOW);
    let v = h.usage(&id, 2);
    let days: Vec<u64> = v["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uses"].as_u64().unwrap())
        .collect();
    assert_eq!(days, [2, 1], "the day before midnight and the day after");
    assert_eq!(v["to"], crate::usage::date(midnight / 86_400));
    // 100 days later only the last 90 are kept, in D1 and in the object
    let (_, created) = h.create(
        "alice",
        json!({"name":"long","scopes":["demo_api:read"],"expires_in_days":300}),
    );
    let (id2, t2) = (
        created["id"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    );
    for _ in 0..100 {
        h.introspect(&t2);
        h.later(86_400);
    }
    let rows = h
        .backend
        .usage_rows
        .borrow()
        .iter()
        .filter(|(t, _)| *t == id2)
        .count();
    // the alarm a day after the last use drops the day that turned 90 days old then; the object
    // drops it with its next record
    assert_eq!(rows, 89, "rows past retention deleted");
    assert_eq!(h.backend.objects.borrow()[&id2].days.len(), 90);
    let (_, view) = h.user_call(Method::Get, &format!("/api/pats/{id2}"), "alice");
    assert_eq!(view["use_count"], 100);
    assert_eq!(view["usage"]["last_90_days"], 89, "today has no use yet");
    assert_eq!(h.usage(&id2, 90)["total"], 89);
}

#[test]
fn a_lost_report_loses_only_its_own_uses_and_counts_never_exceed_the_uses() {
    let mut h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    h.introspect(&token); // reported
    h.introspect(&token);
    h.introspect(&token); // held, 2
    h.backend
        .inject(crate::testing::Step::UseRecord, crate::testing::Fault::Lost);
    h.later(WINDOW); // the flush's report is lost
    h.introspect(&token); // held in the next window
    h.later(WINDOW);
    h.introspect(&token);
    h.later(WINDOW);
    let v = h.usage(&id, 1);
    assert_eq!(v["total"], 3, "5 uses, the 2 of the lost report missing");
    // a report that landed but answered an error counts once
    h.backend.inject(
        crate::testing::Step::UseRecord,
        crate::testing::Fault::LandedButFailed,
    );
    h.now += WINDOW;
    h.introspect(&token); // the window passed: reported at once
    h.later(1);
    assert_eq!(h.usage(&id, 1)["total"], 4);
}

#[test]
fn client_reference_tokens_are_counted_per_token() {
    let mut h = Harness::new();
    let auth = base64::engine::general_purpose::STANDARD.encode("demo_client:demo-client-secret");
    let req = Request::new(Method::Post, "/oauth/token")
        .header("authorization", &format!("Basic {auth}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=demo_api:read".to_owned());
    let (s, v, _) = h.call(&req);
    assert_eq!(s, 200, "{v}");
    let token = v["access_token"].as_str().unwrap().to_owned();
    for _ in 0..4 {
        assert_eq!(h.introspect(&token).1["active"], true);
    }
    h.later(WINDOW);
    let id = &h.backend.uses.borrow()[0].token_id.clone();
    let rec = h
        .backend
        .tokens
        .borrow()
        .iter()
        .find(|t| t.id == *id)
        .cloned()
        .unwrap();
    assert_eq!(rec.kind, crate::token::TokenKind::Access);
    assert_eq!(rec.use_count, 4);
    assert_eq!(rec.daily_uses.totals(h.now).today, 4);
}

#[test]
fn garbage_unknown_and_revoked_tokens_count_nothing() {
    let mut h = Harness::new();
    let (id, token) = h.pat("alice", &["demo_api:read"]);
    h.introspect("garbage");
    let forged = crate::token::PlainToken::generate(crate::token::TokenKind::Pat).unwrap();
    h.introspect(forged.expose_secret());
    let (s, _) = h.user_call(Method::Delete, &format!("/api/pats/{id}"), "alice");
    assert_eq!(s, 204);
    h.introspect(&token);
    h.later(WINDOW);
    assert!(h.backend.uses.borrow().is_empty());
    assert_eq!(h.backend.counts.get().do_call, 0);
}

#[test]
fn the_usage_api_refuses_bad_days_and_other_users() {
    let h = Harness::new();
    let (id, _) = h.pat("alice", &["demo_api:read"]);
    for days in ["0", "91", "x", "-3"] {
        let (s, v) = h.user_call(
            Method::Get,
            &format!("/api/pats/{id}/usage?days={days}"),
            "alice",
        );
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{days}"
        );
    }
    let (s, _) = h.user_call(Method::Get, &format!("/api/pats/{id}/usage"), "bob");
    assert_eq!(s, 404);
    let (s, v) = h.user_call(Method::Get, &format!("/api/pats/{id}/usage"), "alice");
    assert_eq!(s, 200);
    assert_eq!(v["days"], 30);
    assert_eq!(v["per_day"].as_array().unwrap().len(), 30);
    let (s, _) = h.user_call(Method::Post, &format!("/api/pats/{id}/usage"), "alice");
    assert_eq!(s, 405);
}

#[test]
fn the_hourly_scan_deletes_usage_rows_past_ninety_days_and_reports_a_failure() {
    use crate::usage::{book::UsageRow, day_of};
    let h = Harness::new();
    let today = day_of(h.now);
    let row = |day: i64| UsageRow {
        day,
        via: "gate".into(),
        name: "demo".into(),
        outcome: "active".into(),
        uses: 1,
    };
    for day in [today - 90, today - 89, today] {
        h.backend
            .usage_rows
            .borrow_mut()
            .push(("t1".into(), row(day)));
    }
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &h.isolate,
        now: h.now,
        now_ms: h.now * 1000,
    };
    block_on(crate::app::tokens::prune_usage(&ctx)).expect("pruned");
    let days: Vec<i64> = h
        .backend
        .usage_rows
        .borrow()
        .iter()
        .map(|(_, r)| r.day)
        .collect();
    assert_eq!(
        days,
        vec![today - 89, today],
        "90 days kept, today included"
    );
    h.backend.break_d1.set(true);
    assert!(block_on(crate::app::tokens::prune_usage(&ctx)).is_err());
}
