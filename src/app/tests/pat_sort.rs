//! A user's PAT list in its three orders (`GET /api/pats?sort=` and the token page): last uses
//! counted through introspection and written by the tokens' objects, every page walked to the
//! end with ties on the sort value, a cursor of one order refused by another, bad values.

use super::*;

/// Every id of `sub`'s list in order `sort` (empty: the default), `limit` a page.
fn walk(h: &Harness, sort: &str, limit: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sort_q = if sort.is_empty() {
            String::new()
        } else {
            format!("&sort={sort}")
        };
        let cursor_q = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let path = format!("/api/pats?limit={limit}{sort_q}{cursor_q}");
        let (s, v) = h.user_call(Method::Get, &path, "alice");
        assert_eq!(s, 200, "{path}: {v}");
        let page = v["pats"].as_array().expect("pats");
        assert!(page.len() <= limit as usize);
        seen.extend(
            page.iter()
                .map(|p| p["id"].as_str().expect("id").to_owned()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
}

/// Five PATs of alice made one second apart (t0 oldest) and one of bob; t2 used at +100, t0
/// and t3 at +200 (a tie), t1 and t4 never; the uses written to D1 by the objects' alarms.
fn used_tokens() -> (Harness, Vec<String>) {
    let mut h = Harness::new();
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..5 {
        h.now = NOW + i;
        let (id, token) = h.pat("alice", &["demo_api:read"]);
        ids.push(id);
        tokens.push(token);
    }
    h.pat("bob", &["demo_api:read"]);
    h.now = NOW + 100;
    assert_eq!(h.introspect(&tokens[2]).1["active"], true);
    h.now = NOW + 200;
    for t in [&tokens[0], &tokens[3], &tokens[0]] {
        assert_eq!(h.introspect(t).1["active"], true);
    }
    h.now += 120;
    h.fire_timers();
    h.backend.flush_usage(h.now);
    (h, ids)
}

fn at(ids: &[String], order: &[usize]) -> Vec<String> {
    order.iter().map(|&i| ids[i].clone()).collect()
}

/// Ties on the sort value go by id, descending with the order (as the keyset does).
fn tie(ids: &[String], a: usize, b: usize, descending: bool) -> [usize; 2] {
    let first_a = (ids[a] > ids[b]) == descending;
    if first_a {
        [a, b]
    } else {
        [b, a]
    }
}

#[test]
fn every_order_lists_each_pat_once_across_pages_and_ties_go_by_id() {
    let (h, ids) = used_tokens();
    let recs = h.backend.tokens.borrow().clone();
    let used = |i: usize| {
        recs.iter()
            .find(|r| r.id == ids[i])
            .and_then(|r| r.last_used_at)
    };
    assert_eq!(
        (0..5).map(used).collect::<Vec<_>>(),
        [
            Some(NOW + 200),
            None,
            Some(NOW + 100),
            Some(NOW + 200),
            None
        ],
        "the objects wrote the last uses"
    );
    let newest = at(&ids, &[4, 3, 2, 1, 0]);
    let [x, y] = tie(&ids, 0, 3, true);
    let [n1, n2] = tie(&ids, 1, 4, true);
    let last_used = at(&ids, &[x, y, 2, n1, n2]);
    let [x, y] = tie(&ids, 0, 3, false);
    let [n1, n2] = tie(&ids, 1, 4, false);
    let least = at(&ids, &[n1, n2, 2, x, y]);
    for limit in [1, 2, 3, 5, 100] {
        assert_eq!(walk(&h, "", limit), newest, "default, limit {limit}");
        assert_eq!(walk(&h, "newest", limit), newest, "newest, limit {limit}");
        assert_eq!(walk(&h, "last_used", limit), last_used, "limit {limit}");
        assert_eq!(
            walk(&h, "least_recently_used", limit),
            least,
            "limit {limit}"
        );
    }
    // the view says what the order is by
    let (_, v) = h.user_call(Method::Get, "/api/pats?sort=last_used&limit=1", "alice");
    assert_eq!(
        v["pats"][0]["last_used_at"],
        crate::time::rfc3339(NOW + 200)
    );
    let (_, v) = h.user_call(Method::Get, "/api/pats?sort=least_recently_used", "bob");
    assert_eq!(
        v["pats"].as_array().map(Vec::len),
        Some(1),
        "only the caller's"
    );
}

#[test]
fn a_cursor_works_only_with_the_order_that_made_it_and_bad_sorts_are_refused() {
    let (h, _) = used_tokens();
    let sorts = ["newest", "last_used", "least_recently_used"];
    for made in sorts {
        let (_, first) = h.user_call(
            Method::Get,
            &format!("/api/pats?limit=2&sort={made}"),
            "alice",
        );
        let cursor = first["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_owned();
        for used in sorts {
            let (status, body) = h.user_call(
                Method::Get,
                &format!("/api/pats?limit=2&sort={used}&cursor={cursor}"),
                "alice",
            );
            if used == made {
                assert_eq!(status, 200, "{body}");
            } else {
                assert_eq!(status, 400, "{made} cursor with {used}: {body}");
                assert_eq!(body["error"], "invalid_request");
                let m = body["error_description"].as_str().expect("description");
                assert!(
                    m.starts_with(&format!(
                        "cursor belongs to another sort order: repeat sort={made}"
                    )),
                    "{m}"
                );
            }
        }
        // no sort given is newest first
        let (status, _) = h.user_call(
            Method::Get,
            &format!("/api/pats?limit=2&cursor={cursor}"),
            "alice",
        );
        assert_eq!(status, if made == "newest" { 200 } else { 400 });
    }
    for bad in [
        "LAST_USED",
        "uses",
        "last_used%20",
        "%00",
        "created",
        "last_used,newest",
    ] {
        let (s, v) = h.user_call(Method::Get, &format!("/api/pats?sort={bad}"), "alice");
        assert_eq!(s, 400, "{bad:?}: {v}");
        assert_eq!(
            v["error_description"],
            "sort must be one of newest, last_used, least_recently_used"
        );
    }
    let (s, _) = h.user_call(
        Method::Get,
        &format!("/api/pats?sort={}", "x".repeat(5000)),
        "alice",
    );
    assert_eq!(s, 400);
    // repeated: refused; empty: absent (newest first)
    let (s, v) = h.user_call(Method::Get, "/api/pats?sort=last_used&sort=newest", "alice");
    assert_eq!(
        (s, v["error_description"].as_str()),
        (400, Some("parameter sort is repeated"))
    );
    let (s, _) = h.user_call(Method::Get, "/api/pats?sort=", "alice");
    assert_eq!(s, 200);
}

#[test]
fn a_failed_read_is_a_503_not_an_empty_list() {
    let (h, _) = used_tokens();
    h.backend.break_d1.set(true);
    for sort in ["newest", "last_used", "least_recently_used"] {
        let (s, _) = h.user_call(Method::Get, &format!("/api/pats?sort={sort}"), "alice");
        assert_eq!(s, 503, "{sort}");
    }
}
