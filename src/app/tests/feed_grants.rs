//! The end of an authorization grant in the revocation feed: every way a grant ends appends its
//! `a` entry in the same batch, and another location (its own isolate, KV's grant of the access
//! token kept as its read cache would keep it) refuses the grant's access token within 5 s, at
//! introspection and at the gate; its refresh token is refused everywhere at once (every refresh
//! reads the grant in D1).

use super::feed::{assert_bound, grant_of, keep_in_kv, Location};
use super::flow::{admin, enc, hidden, query, Text, APP, GATE};
use super::*;
use crate::app::gate::{gate, GateAnswer, GateRequest};
use crate::authz::memory::AuthzStep;
use crate::revocation::feed::Key;
use crate::revocation::BOUND_MS;
use crate::testing::Fault;

impl Location {
    /// A GET through the gate's demo route at this location at `now_ms`: the status (200:
    /// forwarded).
    fn through(&self, h: &Harness, token: &str, now_ms: i64) -> u16 {
        let ctx = Ctx {
            cfg: &h.cfg,
            backend: &h.backend,
            isolate: &self.isolate,
            now: now_ms.div_euclid(1000),
            now_ms,
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
            client_ip: "203.0.113.9",
        };
        match block_on(gate(&ctx, &req)) {
            GateAnswer::Forward(_) => 200,
            GateAnswer::Respond(o) => o.response.status,
            GateAnswer::NotGate => 0,
        }
    }
}

fn grant_entries(h: &Harness) -> Vec<String> {
    h.backend
        .feed
        .borrow()
        .since(0, usize::MAX)
        .entries
        .into_iter()
        .filter_map(|e| match e.key {
            Key::Grant(id) => Some(id),
            _ => None,
        })
        .collect()
}

fn only_grant(h: &Harness) -> String {
    let grants = h.backend.flow.grants.borrow();
    assert_eq!(grants.len(), 1);
    grants[0].id.clone()
}

/// The token page's Revoke of grant `id` by `user`: the status of the POST.
pub(super) fn revoke_on_page(h: &Harness, user: &str, id: &str) -> u16 {
    let path = format!("/tokens/apps/{id}/revoke");
    let confirm = h.send(&h.page(Method::Get, &path, Some(user)));
    let csrf = hidden(&confirm.response.text(), "csrf");
    let done = h.send(
        &h.page(Method::Post, &path, Some(user))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(format!("csrf={}", enc(&csrf))),
    );
    h.run_deferred(&done);
    done.response.status
}

/// Locations that saw a token live before the end of its grant: B is asked every 250 ms from
/// the end on, C and D only once their view was refreshed after it (C at the gate, D at
/// introspection).
struct Others {
    b: Location,
    c: Location,
    d: Location,
}

impl Others {
    fn warm(h: &Harness, tokens: &[String], name: &str) -> Others {
        let o = Others {
            b: Location::new(),
            c: Location::new(),
            d: Location::new(),
        };
        for t in tokens {
            for l in [&o.b, &o.c, &o.d] {
                assert!(l.active(h, t, h.now * 1000, true), "{name}: live there");
                assert_eq!(l.through(h, t, h.now * 1000), 200, "{name}: its gate");
            }
        }
        o
    }

    /// After the end of a grant committed at `at_ms`: B (whose KV keeps serving the access
    /// token's grant) refuses it from `at_ms + BOUND_MS` on, at the gate too, and later for good;
    /// C and D, their views refreshed after the end (not too old: those would ask D1), refuse it
    /// by the view alone although KV serves the fresh grant, with no D1 read (`by_view`; a
    /// changed client is read again instead).
    fn refuse(
        &self,
        h: &Harness,
        token: &str,
        grant: &crate::model::Grant,
        at_ms: i64,
        by_view: bool,
    ) {
        let t = at_ms + 2_600;
        for (l, gate) in [(&self.c, true), (&self.d, false)] {
            let refreshed = block_on(crate::app::revocations::refresh(&h.backend, &l.isolate, t));
            assert!(refreshed.is_ok());
            keep_in_kv(h, token, grant);
            h.backend.take_counts();
            if gate {
                assert_eq!(l.through(h, token, t + 100), 401, "gate, fresh view");
            } else {
                assert!(
                    !l.active(h, token, t + 100, false),
                    "introspection, fresh view"
                );
            }
            if by_view {
                assert_eq!(h.backend.take_counts().d1_query, 0, "no D1 read");
            }
        }
        assert_bound(h, &self.b, token, grant, at_ms);
        for t in [at_ms + BOUND_MS, at_ms + BOUND_MS + 2_500, at_ms + 60_000] {
            keep_in_kv(h, token, grant);
            assert_eq!(
                self.b.through(h, token, t),
                401,
                "gate, {} ms after",
                t - at_ms
            );
        }
    }
}

/// A grant of alice's app, as the flow issued it.
struct Start {
    id: String,
    code: String,
    at: String,
    rt: String,
}

fn start(h: &Harness) -> Start {
    let code = h.code("alice", &query(&[]));
    let (s, v) = h.exchange(&code);
    assert_eq!(s, 200, "{v}");
    Start {
        id: only_grant(h),
        code,
        at: v["access_token"].as_str().expect("at").into(),
        rt: v["refresh_token"].as_str().expect("rt").into(),
    }
}

/// What happens before B looks at the tokens (the access tokens it issued beside the first).
type Prep = fn(&mut Harness, &Start) -> Vec<String>;
/// The end of the grant, at A.
type End = fn(&Harness, &Start);

fn nothing(_: &mut Harness, _: &Start) -> Vec<String> {
    Vec::new()
}

fn ends() -> [(&'static str, Prep, End); 8] {
    [
        ("the user's Revoke on the page", nothing, |h, g| {
            assert_eq!(revoke_on_page(h, "alice", &g.id), 303);
        }),
        ("the admin API", nothing, |h, g| {
            let req = admin(Method::Delete, &format!("/admin/grants/{}", g.id), None);
            assert_eq!(h.call(&req).0, 204);
        }),
        ("RFC 7009 of the refresh token", nothing, |h, g| {
            let (s, _, _) = h.call(
                &Request::new(Method::Post, "/oauth/revoke")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("token={}&client_id={APP}", g.rt)),
            );
            assert_eq!(s, 200);
        }),
        (
            "refresh token reuse",
            |h, g| {
                let (s, v) = h.refresh(&g.rt);
                assert_eq!(s, 200, "{v}");
                // past the retry grace of that rotation: the old refresh token is a reuse
                h.now += h.cfg.refresh.retry_grace_secs + 1;
                vec![v["access_token"].as_str().expect("at").to_owned()]
            },
            |h, g| {
                let (s, v) = h.refresh(&g.rt);
                assert_eq!((s, v["error"].clone()), (400, json!("invalid_grant")));
            },
        ),
        ("a replayed authorization code", nothing, |h, g| {
            let (s, v) = h.exchange(&g.code);
            assert_eq!((s, v["error"].clone()), (400, json!("invalid_grant")));
        }),
        ("a new grant replacing it", nothing, |h, _| {
            // the same user, app, redirect and resource approve again
            let code = h.code("alice", &query(&[]));
            assert_eq!(h.exchange(&code).0, 200);
        }),
        ("the client disabled", nothing, |h, _| {
            let req = admin(
                Method::Patch,
                &format!("/admin/clients/{APP}"),
                Some(json!({"enabled": false})),
            );
            let (s, v, _) = h.call(&req);
            assert_eq!(s, 200, "{v}");
        }),
        ("the client deleted", nothing, |h, _| {
            let req = admin(Method::Delete, &format!("/admin/clients/{APP}"), None);
            assert_eq!(h.call(&req).0, 204);
        }),
    ]
}

#[test]
fn every_end_of_a_grant_reaches_the_other_location_within_5_s() {
    for (name, prep, end) in ends() {
        let mut h = Harness::flow();
        let g = start(&h);
        let mut watched = vec![g.at.clone()];
        watched.extend(prep(&mut h, &g));
        let kept: Vec<_> = watched.iter().map(|t| grant_of(&h, t)).collect();
        let others = Others::warm(&h, &watched, name);
        h.now += 1;
        let entries = h.backend.feed.borrow().len();
        end(&h, &g);
        assert!(h.backend.feed.borrow().len() > entries, "{name}: appended");
        let client_change = name.starts_with("the client");
        assert_eq!(
            grant_entries(&h).contains(&g.id),
            !client_change,
            "{name}: the grant's own entry"
        );
        for (t, kept) in watched.iter().zip(&kept) {
            assert!(!h.active(t), "{name}: at once at A");
            others.refuse(&h, t, kept, h.now * 1000, !client_change);
        }
        // the refresh token: every refresh reads D1, so refused at once wherever presented
        let (s, _) = h.refresh(&g.rt);
        assert!(
            s == 400 || (client_change && s == 401),
            "{name}: refresh {s}"
        );
    }
}

#[test]
fn without_its_feed_entry_the_end_of_a_grant_would_wait_for_kv() {
    // The check above can fail: the same schedule with the grant's entry removed from the feed
    // answers active at B long after the bound (KV alone: the access token's row is revoked in
    // D1, but B trusts its fresh KV grant).
    let mut h = Harness::flow();
    let g = start(&h);
    let kept = grant_of(&h, &g.at);
    let b = Location::new();
    assert!(b.active(&h, &g.at, h.now * 1000, true));
    h.now += 1;
    let req = admin(Method::Delete, &format!("/admin/grants/{}", g.id), None);
    assert_eq!(h.call(&req).0, 204);
    *h.backend.feed.borrow_mut() = crate::revocation::feed::FeedLog::new();
    let later = h.now * 1000 + 10_000;
    keep_in_kv(&h, &g.at, &kept);
    assert!(b.active(&h, &g.at, later, true));
    assert_eq!(b.through(&h, &g.at, later), 200);
}

#[test]
fn an_end_of_a_grant_that_landed_but_reported_an_error_is_in_the_feed() {
    for fault in [Fault::LandedButFailed, Fault::Lost] {
        let mut h = Harness::flow();
        let g = start(&h);
        let kept = grant_of(&h, &g.at);
        let others = Others::warm(&h, std::slice::from_ref(&g.at), "landed");
        h.now += 1;
        h.backend.flow.inject(AuthzStep::GrantRevoke, fault);
        let req = admin(Method::Delete, &format!("/admin/grants/{}", g.id), None);
        assert_eq!(h.call(&req).0, 503, "{fault:?}: an error");
        let at_ms = h.now * 1000;
        if fault == Fault::LandedButFailed {
            // the write and its entry are one transaction: B refuses within the bound although
            // A's request failed
            assert_eq!(grant_entries(&h), vec![g.id.clone()]);
            others.refuse(&h, &g.at, &kept, at_ms, true);
            // the repeat appends nothing more (the grant was already ended)
            assert_eq!(h.call(&req).0, 204);
            assert_eq!(grant_entries(&h).len(), 1);
        } else {
            // nothing happened: no entry, the grant lives everywhere
            assert!(grant_entries(&h).is_empty());
            keep_in_kv(&h, &g.at, &kept);
            assert!(others.b.active(&h, &g.at, at_ms + 10_000, true));
            assert!(h.active(&g.at));
            assert_eq!(h.refresh(&g.rt).0, 200);
        }
    }
}

#[test]
fn an_unreadable_feed_asks_d1_about_an_app_token() {
    let mut h = Harness::flow();
    let g = start(&h);
    let kept = grant_of(&h, &g.at);
    let b = Location::new();
    assert!(b.active(&h, &g.at, h.now * 1000, true));
    h.backend.break_feed.set(true);
    h.now += 1;
    let req = admin(Method::Delete, &format!("/admin/grants/{}", g.id), None);
    assert_eq!(h.call(&req).0, 204);
    // B's view ages past 4.5 s and cannot be refreshed: the token is read from D1 (revoked)
    let at_ms = h.now * 1000;
    assert_bound(&h, &b, &g.at, &kept, at_ms);
    keep_in_kv(&h, &g.at, &kept);
    assert_eq!(b.through(&h, &g.at, at_ms + BOUND_MS), 401);
}
