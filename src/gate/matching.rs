//! Matching a request to a gate route: on the request's host (never the issuer's), the longest
//! path prefix, host-specific routes first; and the route whose RFC 9728 metadata a path names.

use super::host::{authority, host_name};
use super::route::GateRoute;

/// Whether a route's `host` names this request authority: with a port, exactly; without one,
/// the host name on any port.
fn host_matches(route_host: &str, request_authority: &str) -> bool {
    if route_host.contains(':') {
        route_host.eq_ignore_ascii_case(request_authority)
    } else {
        route_host.eq_ignore_ascii_case(&host_name(request_authority))
    }
}

/// Whether requests to `request_authority` are on the issuer's host (same host name, any port:
/// cookies do not keep ports apart). Gate routes never match there.
pub fn is_issuer_host(issuer: &str, request_authority: &str) -> bool {
    host_name(authority(issuer)) == host_name(request_authority)
}

/// The route for a request: on the request's host, the longest `path_prefix` the path starts
/// with; routes naming the host come before host-less ones; never on the issuer's host.
pub fn find<'a>(
    routes: &'a [GateRoute],
    issuer: &str,
    request_authority: &str,
    path: &str,
) -> Option<&'a GateRoute> {
    if is_issuer_host(issuer, request_authority) {
        return None;
    }
    let longest = |named: bool| {
        routes
            .iter()
            .filter(|r| match &r.host {
                Some(h) => named && host_matches(h, request_authority),
                None => !named,
            })
            .filter(|r| path.starts_with(r.path_prefix.as_str()))
            .max_by_key(|r| r.path_prefix.len())
    };
    longest(true).or_else(|| longest(false))
}

/// The route whose RFC 9728 metadata lives at `/.well-known/oauth-protected-resource{suffix}`:
/// `suffix` is the route's `path_prefix` without its trailing slash (empty for `/`).
pub fn find_by_metadata_suffix<'a>(
    routes: &'a [GateRoute],
    issuer: &str,
    request_authority: &str,
    suffix: &str,
) -> Option<&'a GateRoute> {
    if is_issuer_host(issuer, request_authority) {
        return None;
    }
    let prefix = format!("{suffix}/");
    let pick = |named: bool| {
        routes.iter().find(|r| {
            r.path_prefix == prefix
                && match &r.host {
                    Some(h) => named && host_matches(h, request_authority),
                    None => !named,
                }
        })
    };
    pick(true).or_else(|| pick(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::route::Rule;

    fn route(id: &str, host: Option<&str>, prefix: &str) -> GateRoute {
        GateRoute {
            id: id.into(),
            host: host.map(Into::into),
            path_prefix: prefix.into(),
            upstream: "http://u".into(),
            resource: "demo_api".into(),
            rules: vec![Rule {
                methods: vec!["*".into()],
                scopes: vec![],
            }],
            cors: None,
        }
    }

    const ISSUER: &str = "http://127.0.0.1:8787";

    fn found(routes: &[GateRoute], authority: &str, path: &str) -> Option<String> {
        find(routes, ISSUER, authority, path).map(|r| r.id.clone())
    }

    #[test]
    fn longest_prefix_wins_and_host_routes_come_first() {
        let routes = vec![
            route("any-root", None, "/"),
            route("any-gw", None, "/gw/"),
            route("any-demo-deep", None, "/gw/demo/deep/"),
            route("api-gw-demo", Some("api.example.com"), "/gw/demo/"),
            route("local-port", Some("localhost:8787"), "/gw/"),
        ];
        assert_eq!(
            found(&routes, "other.example", "/gw/demo/x").as_deref(),
            Some("any-gw")
        );
        assert_eq!(
            found(&routes, "other.example", "/gw/demo/deep/x").as_deref(),
            Some("any-demo-deep")
        );
        assert_eq!(
            found(&routes, "other.example", "/x").as_deref(),
            Some("any-root")
        );
        // a route naming the host wins over host-less ones, even a longer host-less prefix
        assert_eq!(
            found(&routes, "api.example.com", "/gw/demo/x").as_deref(),
            Some("api-gw-demo")
        );
        assert_eq!(
            found(&routes, "API.example.com:443", "/gw/demo/deep/x").as_deref(),
            Some("api-gw-demo")
        );
        // on that host, paths outside its routes fall back to host-less routes
        assert_eq!(
            found(&routes, "api.example.com", "/gw/other").as_deref(),
            Some("any-gw")
        );
        // a host with a port matches that port only
        assert_eq!(
            found(&routes, "localhost:8787", "/gw/a").as_deref(),
            Some("local-port")
        );
        assert_eq!(
            found(&routes, "localhost:9999", "/gw/a").as_deref(),
            Some("any-gw")
        );
        // the prefix must match whole: "/gw" is not under "/gw/"
        assert_eq!(
            found(&routes[1..2], "other.example", "/gw").as_deref(),
            None
        );
        assert_eq!(
            found(&routes[1..2], "other.example", "/gwx/").as_deref(),
            None
        );
    }

    #[test]
    fn never_on_the_issuers_host() {
        let routes = vec![
            route("root", None, "/"),
            route("named", Some("127.0.0.1"), "/"),
        ];
        assert_eq!(found(&routes, "127.0.0.1:8787", "/gw/x"), None);
        // another port of the issuer's host is the same host (cookies ignore ports)
        assert_eq!(found(&routes, "127.0.0.1:9999", "/gw/x"), None);
        assert_eq!(
            found(&routes, "localhost:8787", "/gw/x").as_deref(),
            Some("root")
        );
        assert!(is_issuer_host(
            "https://Auth.Example.com",
            "auth.example.com"
        ));
        assert!(!is_issuer_host(
            "https://auth.example.com",
            "api.example.com"
        ));
    }

    #[test]
    fn metadata_lookup_by_prefix() {
        let routes = vec![route("root", None, "/"), route("demo", None, "/gw/demo/")];
        let f = |s: &str| {
            find_by_metadata_suffix(&routes, ISSUER, "localhost:8787", s).map(|r| r.id.as_str())
        };
        assert_eq!(f(""), Some("root"));
        assert_eq!(f("/gw/demo"), Some("demo"));
        assert_eq!(f("/gw"), None);
        assert_eq!(
            routes[1].metadata_path(),
            "/.well-known/oauth-protected-resource/gw/demo"
        );
        assert_eq!(
            routes[0].metadata_path(),
            "/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            find_by_metadata_suffix(&routes, ISSUER, "127.0.0.1:8787", ""),
            None
        );
    }
}
