//! The uses of an app's grant: its access tokens used through introspection and the gate are
//! counted like PATs (one coalesced report per token per window, written by the tokens'
//! objects), and "Authorized applications" and `GET /admin/grants` show their sum per grant
//! after the write: last used, where from, uses in the last 30 days; nothing of other grants;
//! a failed read degrades the page and fails the admin API.

#![allow(clippy::many_single_char_names)]

use super::flow::{Text, APP, GATE};
use super::*;
use crate::app::gate::{gate, GateAnswer, GateRequest};
use crate::testing::{Fault, Step};

impl Harness {
    /// A request through the gate from `ip`, its deferred work run: the status.
    fn gated_from(&self, token: &str, ip: &str) -> u16 {
        *self.backend.origin.borrow_mut() =
            crate::origin::ClientOrigin::new(Some(ip), Some("AMS"), Some("NL"));
        let ctx = Ctx {
            cfg: &self.cfg,
            backend: &self.backend,
            isolate: &self.isolate,
            now: self.now,
            now_ms: self.now * 1000,
        };
        let bearer = format!("Bearer {token}");
        let req = GateRequest {
            method: "GET",
            scheme: "https",
            authority: GATE,
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
            GateAnswer::NotGate => 0,
        }
    }

    fn apps_page(&self, user: &str) -> String {
        let r = self.send(
            &Request::new(Method::Get, "/tokens/apps")
                .header("host", "patgate.test")
                .header("cf-access-jwt-assertion", &user_jwt(user)),
        );
        assert_eq!(r.response.status, 200, "{}", r.response.text());
        r.response.text()
    }

    fn admin_grants(&self, user: &str) -> (u16, Value) {
        let (s, v, _) = self.call(
            &Request::new(Method::Get, &format!("/admin/grants?subject={user}"))
                .header("authorization", &format!("Bearer {ADMIN}")),
        );
        (s, v)
    }

    /// Time passes: the isolate's flush timers, then the objects' alarms.
    fn flushed_after(&mut self, secs: i64) {
        self.now += secs;
        self.fire_timers();
        self.backend.flush_usage(self.now);
    }
}

/// The text of the app row's cells (tags dropped).
fn cells(html: &str) -> String {
    let row = html.split("<tbody>").nth(1).expect("a row");
    let mut out = String::new();
    let mut in_tag = false;
    for c in row.split("</tbody>").next().unwrap_or("").chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn a_grants_token_uses_show_on_the_page_and_the_admin_api_after_the_write() {
    let mut h = Harness::flow();
    let (at, rt) = h.tokens("erin");
    let frank_tokens = h.tokens("frank");
    let page = cells(&h.apps_page("erin"));
    assert!(page.contains("Never used"), "{page}");
    let (s, v) = h.admin_grants("erin");
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["grants"][0]["usage"],
        json!({"last_used_at": null, "use_count": 0, "last_30_days": 0, "last_used_from": []})
    );

    for _ in 0..3 {
        assert!(h.active(&at));
    }
    for _ in 0..2 {
        assert_eq!(h.gated_from(&at, "203.0.113.9"), 200);
    }
    // a refreshed grant: its new access token counts for the same app
    h.now += 40;
    let (s, v) = h.refresh(&rt);
    assert_eq!(s, 200, "{v}");
    let at2 = v["access_token"].as_str().expect("at").to_owned();
    assert_eq!(h.gated_from(&at2, "198.51.100.7"), 200);
    assert_eq!(h.gated_from(&at2, "198.51.100.7"), 200);
    let last = h.now;
    // frank's token: not erin's
    assert!(h.active(&frank_tokens.0));
    // before the objects write: nothing yet
    assert!(cells(&h.apps_page("erin")).contains("Never used"));

    h.flushed_after(120);
    let page = cells(&h.apps_page("erin"));
    assert!(
        page.contains("from Gate route demo · AMS · NL · 198.51.100.7"),
        "the most recently used token's place: {page}"
    );
    assert!(page.contains(" 7 Revoke"), "7 uses in 30 days: {page}");
    let (_, v) = h.admin_grants("erin");
    let u = &v["grants"][0]["usage"];
    assert_eq!(u["last_used_at"], json!(last));
    assert_eq!(
        (u["use_count"].as_u64(), u["last_30_days"].as_u64()),
        (Some(7), Some(7))
    );
    assert_eq!(u["last_used_from"][0]["ip"], "198.51.100.7");
    assert_eq!(u["last_used_from"][0]["via"], "gate");
    let (_, v) = h.admin_grants("frank");
    assert_eq!(v["grants"][0]["usage"]["use_count"], 1, "only frank's own");
    assert_eq!(v["grants"][0]["client_id"], APP);
    // Each access token reports to its own object like a PAT: the first use of a window at
    // once, the window's other uses at its end; nothing per grant on the tokens' path.
    let reports = h.backend.uses.borrow();
    for t in [&at, &at2] {
        let id = h
            .backend
            .tokens
            .borrow()
            .iter()
            .find(|r| r.hash == crate::token::PlainToken::parse(t).expect("token").hash())
            .map(|r| r.id.clone())
            .expect("the token's row");
        let n = reports.iter().filter(|r| r.token_id == id).count();
        assert_eq!(n, 2, "one report now, one at the window's end");
    }
    assert_eq!(reports.len(), 5, "and one for frank's token");
}

#[test]
fn a_failed_read_of_the_uses_degrades_the_page_and_fails_the_admin_list() {
    let mut h = Harness::flow();
    let (at, _) = h.tokens("erin");
    assert!(h.active(&at));
    h.flushed_after(120);
    h.backend.inject(Step::GrantUses, Fault::Lost);
    let html = h.apps_page("erin");
    assert!(html.contains("How the applications were used cannot be shown right now."));
    assert!(html.contains("/revoke"), "Revoke still offered");
    assert!(cells(&html).contains("Unknown"));
    h.backend.inject(Step::GrantUses, Fault::Lost);
    let (s, v) = h.admin_grants("erin");
    assert_eq!(
        (s, v["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    let (s, v) = h.admin_grants("erin");
    assert_eq!(s, 200);
    assert_eq!(v["grants"][0]["usage"]["use_count"], 1);
}
