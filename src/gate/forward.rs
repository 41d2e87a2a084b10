//! What the gate sends upstream: the URL (upstream path joined with the rest of the request
//! path, query byte for byte) and the headers (credentials, spoofed identity and hop-by-hop
//! headers removed, the caller's identity added). Pure; the runtime layer does the fetch.

use super::route::GateRoute;
use std::fmt::Write as _;

/// The upstream URL for a request `path` (which starts with the route's prefix) and `query`:
/// the upstream's path and the rest of the request path joined by exactly one `/`.
pub fn upstream_url(route: &GateRoute, path: &str, query: Option<&str>) -> String {
    let rest = path.strip_prefix(route.path_prefix.as_str()).unwrap_or("");
    let base = route.upstream.trim_end_matches('/');
    let mut url = String::with_capacity(base.len() + rest.len() + 2 + query.map_or(0, str::len));
    url.push_str(base);
    url.push('/');
    url.push_str(rest);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1, plus the legacy ones proxies drop).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Whether a header name, lowercased and with `_` read as `-`, starts with `x-patgate-`.
/// (Some upstream servers fold `_` into `-`: `X_Patgate_Subject` must not pass as ours.)
pub fn is_patgate_header(name: &str) -> bool {
    const P: &[u8] = b"x-patgate-";
    let n = name.as_bytes();
    n.len() >= P.len()
        && n[..P.len()]
            .iter()
            .zip(P)
            .all(|(a, b)| a.to_ascii_lowercase() == *b || (*a == b'_' && *b == b'-'))
}

fn normalized(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// The incoming headers that go upstream, in order. Removed: `Authorization`, `Cookie`, every
/// `X-Patgate-*` (any case, `_` for `-`), hop-by-hop headers, `Proxy-*`, `Host` (the runtime
/// derives it from the upstream URL) and every header that `Connection` names.
pub fn forwardable_headers(incoming: &[(String, String)]) -> Vec<(String, String)> {
    let named_by_connection: Vec<String> = incoming
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .map(normalized)
        .filter(|s| !s.is_empty())
        .collect();
    incoming
        .iter()
        .filter(|(k, _)| {
            let n = normalized(k);
            !(n == "authorization"
                || n == "cookie"
                || n.starts_with("proxy-")
                || HOP_BY_HOP.contains(&n.as_str())
                || is_patgate_header(k)
                || named_by_connection.contains(&n))
        })
        .cloned()
        .collect()
}

/// A header value for a string we do not control (`sub`, `client_id`): kept as is when it is
/// printable ASCII without `%`; otherwise every other byte is percent-encoded, so the header is
/// always valid and never ambiguous with a value that needed no encoding.
pub fn header_value(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'%') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if (0x21..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::route::Rule;

    fn route(prefix: &str, upstream: &str) -> GateRoute {
        GateRoute {
            id: "r".into(),
            host: None,
            path_prefix: prefix.into(),
            upstream: upstream.into(),
            resource: "demo_api".into(),
            rules: vec![Rule {
                methods: vec!["*".into()],
                scopes: vec![],
            }],
            cors: None,
        }
    }

    #[test]
    fn path_and_query_joining() {
        let r = route("/gw/demo/", "http://127.0.0.1:9000/base");
        assert_eq!(
            upstream_url(&r, "/gw/demo/x/y.json", Some("b=2&a=1")),
            "http://127.0.0.1:9000/base/x/y.json?b=2&a=1"
        );
        assert_eq!(
            upstream_url(&r, "/gw/demo/", None),
            "http://127.0.0.1:9000/base/"
        );
        // the query byte for byte, even an empty one or odd encodings
        assert_eq!(
            upstream_url(&r, "/gw/demo/a", Some("")),
            "http://127.0.0.1:9000/base/a?"
        );
        assert_eq!(
            upstream_url(&r, "/gw/demo/a%20b", Some("x=%2F&&y")),
            "http://127.0.0.1:9000/base/a%20b?x=%2F&&y"
        );
        let slash = route("/gw/demo/", "http://h/base/");
        assert_eq!(upstream_url(&slash, "/gw/demo/x", None), "http://h/base/x");
        let bare = route("/", "https://h");
        assert_eq!(upstream_url(&bare, "/", None), "https://h/");
        assert_eq!(upstream_url(&bare, "/a/b", Some("q")), "https://h/a/b?q");
    }

    #[test]
    fn patgate_headers_any_case_and_underscores() {
        for n in [
            "x-patgate-subject",
            "X-Patgate-Subject",
            "X_Patgate_Subject",
            "x_patgate-scope",
            "X-PATGATE-ASSERTION",
            "x-patgate-",
            "x-patgate-anything-else",
        ] {
            assert!(is_patgate_header(n), "{n}");
        }
        for n in [
            "x-patgate",
            "x-patgates",
            "patgate-subject",
            "x-pat-gate-subject",
            "xx-patgate-a",
        ] {
            assert!(!is_patgate_header(n), "{n}");
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn strips_credentials_spoofing_and_hop_by_hop() {
        let incoming = h(&[
            ("accept", "application/json"),
            ("authorization", "Bearer pgp_secret"),
            ("cookie", "session=1"),
            ("x-patgate-subject", "mallory"),
            ("x_patgate_subject", "mallory"),
            ("X_PATGATE_SCOPE", "admin"),
            ("connection", "keep-alive, X-Custom-Hop, x_other_hop"),
            ("x-custom-hop", "1"),
            ("x-other-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("host", "evil.example"),
            ("content-type", "text/plain"),
            ("content-length", "5"),
            ("x-request-id", "abc"),
        ]);
        let out = forwardable_headers(&incoming);
        assert_eq!(
            out,
            h(&[
                ("accept", "application/json"),
                ("content-type", "text/plain"),
                ("content-length", "5"),
                ("x-request-id", "abc"),
            ])
        );
    }

    #[test]
    fn connection_can_not_remove_what_the_gate_adds_and_ignores_junk() {
        let incoming = h(&[
            ("connection", " , ,close"),
            ("close", "x"),
            ("accept", "*/*"),
        ]);
        assert_eq!(forwardable_headers(&incoming), h(&[("accept", "*/*")]));
    }

    #[test]
    fn header_values_are_always_valid() {
        assert_eq!(header_value("alice"), "alice");
        assert_eq!(header_value("a b"), "a b");
        assert_eq!(header_value("josé"), "jos%C3%A9");
        assert_eq!(header_value("a\r\nX-Evil: 1"), "a%0D%0AX-Evil:%201");
        assert_eq!(header_value("100%"), "100%25");
    }
}
