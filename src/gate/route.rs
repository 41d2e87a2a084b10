//! Gate routes: the record (D1 `gate_routes`, admin API JSON), its validation, and matching a
//! request (host, path, method) to a route and a rule. Pure: no storage, no `worker`.

use crate::error::Error;
use serde::{Deserialize, Serialize};

/// Longest accepted `path_prefix` and `upstream`.
const MAX_PREFIX_LEN: usize = 1024;
const MAX_UPSTREAM_LEN: usize = 2048;
const MAX_HOST_LEN: usize = 253 + 6;
const MAX_RULES: usize = 32;
const MAX_METHODS: usize = 16;
const MAX_SCOPES: usize = 64;

/// One method rule: the first rule whose `methods` holds the request method (or `*`) applies,
/// and the token must carry every one of its `scopes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub methods: Vec<String>,
    pub scopes: Vec<String>,
}

/// A gate route.
///
/// **Persisted format**: `rules` is stored in D1 as this JSON (`[{"methods":[..],"scopes":[..]}]`)
/// and read by every later version; add only optional fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateRoute {
    pub id: String,
    /// Host name with an optional port, lowercase; `None`: every host but the issuer's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub path_prefix: String,
    /// Absolute http(s) URL without query or fragment.
    pub upstream: String,
    /// The API resource whose token rules apply (`aud` of the assertion).
    pub resource: String,
    pub rules: Vec<Rule>,
    /// The route's CORS policy (D1 `gate_routes.cors`); `None`: no CORS answers (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<super::cors::Cors>,
}

/// The body of `PUT /admin/routes/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteInput {
    #[serde(default)]
    pub host: Option<String>,
    pub path_prefix: String,
    pub upstream: String,
    pub resource: String,
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub cors: Option<super::cors::Cors>,
}

fn bad(field: &str, why: &str) -> Error {
    Error::InvalidRequest(format!("{field}: {why}"))
}

/// Validates everything that does not need storage; `resource_scopes` is checked by
/// [`check_rule_scopes`] once the resource is read.
pub fn validate(id: &str, input: RouteInput) -> Result<GateRoute, Error> {
    let host = match input.host {
        None => None,
        Some(h) => Some(normalize_host(&h).ok_or_else(|| {
            bad(
                "host",
                "must be a host name (letters, digits, '-', '.') with an optional :port",
            )
        })?),
    };
    check_prefix(&input.path_prefix)?;
    check_upstream(&input.upstream)?;
    if input.resource.is_empty() || input.resource.len() > 64 {
        return Err(bad("resource", "must name an existing API resource"));
    }
    check_rules(&input.rules)?;
    let cors = input.cors.map(super::cors::validate).transpose()?;
    Ok(GateRoute {
        id: id.to_owned(),
        host,
        path_prefix: input.path_prefix,
        upstream: input.upstream,
        resource: input.resource,
        rules: input.rules,
        cors,
    })
}

/// A host name (RFC 1123 labels) with an optional port, lowercased. `None` if invalid.
pub fn normalize_host(h: &str) -> Option<String> {
    if h.is_empty() || h.len() > MAX_HOST_LEN {
        return None;
    }
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !p.parse::<u32>().is_ok_and(|n| (1..=65_535).contains(&n)) {
            return None;
        }
    }
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let labels_ok = name.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    labels_ok.then(|| h.to_ascii_lowercase())
}

fn check_prefix(p: &str) -> Result<(), Error> {
    let field = "path_prefix";
    if !p.starts_with('/') || !p.ends_with('/') {
        return Err(bad(field, "must start and end with '/'"));
    }
    if p.len() > MAX_PREFIX_LEN {
        return Err(bad(field, "is too long"));
    }
    if p.starts_with("/.well-known/") {
        return Err(bad(field, "must not start with /.well-known/"));
    }
    // The runtime hands us normalized paths: these could never match.
    if p.contains("//") || p.contains("/./") || p.contains("/../") {
        return Err(bad(field, "must not contain empty, '.' or '..' segments"));
    }
    let ok = p
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b));
    if !ok {
        return Err(bad(
            field,
            "may contain only URL path characters (no query, fragment or spaces)",
        ));
    }
    Ok(())
}

/// The parts of an absolute http(s) URL: (scheme, authority, path).
fn split_absolute(u: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = u.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some((scheme, authority, path))
}

fn check_upstream(u: &str) -> Result<(), Error> {
    let field = "upstream";
    let invalid = || {
        bad(
            field,
            "must be an absolute http(s) URL without query or fragment",
        )
    };
    if u.len() > MAX_UPSTREAM_LEN || u.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err(invalid());
    }
    if u.contains('?') || u.contains('#') {
        return Err(bad(field, "must not have a query or fragment"));
    }
    let (scheme, authority, path) = split_absolute(u).ok_or_else(invalid)?;
    if scheme != "http" && scheme != "https" {
        return Err(bad(field, "must be an http or https URL"));
    }
    if authority.contains('@') {
        return Err(bad(field, "must not contain credentials"));
    }
    let host_ok = normalize_host(authority).is_some()
        || (authority.starts_with('[') && authority.contains(']'));
    if !host_ok {
        return Err(invalid());
    }
    if path.contains("//") || path.split('/').any(|s| s == "." || s == "..") {
        return Err(bad(
            field,
            "must not contain empty, '.' or '..' path segments",
        ));
    }
    Ok(())
}

/// A method token (RFC 9110 section 9: case-sensitive), or `*`.
fn valid_method(m: &str) -> bool {
    m == "*" || (!m.is_empty() && m.len() <= 32 && m.bytes().all(|b| b.is_ascii_uppercase()))
}

fn check_rules(rules: &[Rule]) -> Result<(), Error> {
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(bad("rules", &format!("must hold 1 to {MAX_RULES} rules")));
    }
    for (i, r) in rules.iter().enumerate() {
        if r.methods.is_empty() || r.methods.len() > MAX_METHODS {
            return Err(bad(
                &format!("rules[{i}].methods"),
                &format!("must hold 1 to {MAX_METHODS} methods"),
            ));
        }
        for (j, m) in r.methods.iter().enumerate() {
            if !valid_method(m) {
                return Err(bad(
                    &format!("rules[{i}].methods"),
                    &format!("{m:?} is not an upper-case method name or \"*\""),
                ));
            }
            if r.methods[..j].contains(m) {
                return Err(bad(
                    &format!("rules[{i}].methods"),
                    &format!("{m} is repeated"),
                ));
            }
        }
        if r.scopes.len() > MAX_SCOPES {
            return Err(bad(&format!("rules[{i}].scopes"), "too many scopes"));
        }
        for (j, s) in r.scopes.iter().enumerate() {
            if r.scopes[..j].contains(s) {
                return Err(bad(
                    &format!("rules[{i}].scopes"),
                    &format!("{s} is repeated"),
                ));
            }
        }
    }
    Ok(())
}

/// Every scope of every rule must belong to the route's resource.
pub fn check_rule_scopes(route: &GateRoute, resource_scopes: &[String]) -> Result<(), Error> {
    for (i, r) in route.rules.iter().enumerate() {
        for s in &r.scopes {
            if !resource_scopes.contains(s) {
                return Err(bad(
                    &format!("rules[{i}].scopes"),
                    &format!("{s} is not a scope of resource {}", route.resource),
                ));
            }
        }
    }
    Ok(())
}

/// The host name of an authority (`host[:port]`), without the port, lowercase.
pub fn host_name(authority: &str) -> String {
    let name = if authority.starts_with('[') {
        authority.find(']').map_or(authority, |i| &authority[..=i])
    } else {
        authority.rsplit_once(':').map_or(authority, |(n, _)| n)
    };
    name.to_ascii_lowercase()
}

/// The authority (`host[:port]`) of an absolute URL such as `ISSUER` or a request URL.
pub fn authority(url: &str) -> &str {
    split_absolute(url).map_or("", |(_, a, _)| a)
}

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

/// What the route says about a method.
#[derive(Debug, PartialEq, Eq)]
pub enum MethodRule<'a> {
    /// The rule that applies: these scopes are required.
    Scopes(&'a [String]),
    /// No rule holds the method: 405 with `Allow` listing these.
    NotAllowed(String),
}

impl GateRoute {
    /// The first rule whose methods hold `method` (or `*`).
    pub fn rule_for(&self, method: &str) -> MethodRule<'_> {
        for r in &self.rules {
            if r.methods.iter().any(|m| m == "*" || m == method) {
                return MethodRule::Scopes(&r.scopes);
            }
        }
        let mut allow: Vec<&str> = Vec::new();
        for m in self.rules.iter().flat_map(|r| r.methods.iter()) {
            if !allow.contains(&m.as_str()) {
                allow.push(m);
            }
        }
        MethodRule::NotAllowed(allow.join(", "))
    }

    /// RFC 9728 metadata path of this route.
    pub fn metadata_path(&self) -> String {
        format!(
            "/.well-known/oauth-protected-resource{}",
            self.path_prefix.trim_end_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: serde_json::Value) -> Result<GateRoute, Error> {
        let i: RouteInput = serde_json::from_value(v).map_err(|e| bad("body", &e.to_string()))?;
        validate("r1", i)
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "host": "api.example.com",
            "path_prefix": "/gw/demo/",
            "upstream": "http://127.0.0.1:9000/base",
            "resource": "demo_api",
            "rules": [
                {"methods": ["GET", "HEAD"], "scopes": ["demo_api:read"]},
                {"methods": ["*"], "scopes": ["demo_api:write"]}
            ]
        })
    }

    fn with(key: &str, v: serde_json::Value) -> serde_json::Value {
        let mut b = base();
        b[key] = v;
        b
    }

    fn field_of(e: &Error) -> String {
        match e {
            Error::InvalidRequest(m) => m.split(':').next().unwrap_or("").to_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn the_issue_example_is_valid() {
        let r = input(base()).expect("valid");
        assert_eq!(r.host.as_deref(), Some("api.example.com"));
        assert_eq!(r.rules.len(), 2);
        let mut b = base();
        b.as_object_mut().expect("object").remove("host");
        assert_eq!(input(b).expect("valid").host, None);
        // the whole host
        assert!(input(with("path_prefix", "/".into())).is_ok());
        // host with port, upper case folded
        let r = input(with("host", "LocalHost:8787".into())).expect("valid");
        assert_eq!(r.host.as_deref(), Some("localhost:8787"));
        assert!(input(with("upstream", "https://api.internal".into())).is_ok());
        assert!(input(with("upstream", "http://[::1]:9000/x/".into())).is_ok());
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases = [
            ("path_prefix", serde_json::json!("gw/")),
            ("path_prefix", serde_json::json!("/gw")),
            ("path_prefix", serde_json::json!("")),
            ("path_prefix", serde_json::json!("/.well-known/")),
            ("path_prefix", serde_json::json!("/.well-known/x/")),
            ("path_prefix", serde_json::json!("/a//b/")),
            ("path_prefix", serde_json::json!("/a/../b/")),
            ("path_prefix", serde_json::json!("/a b/")),
            ("path_prefix", serde_json::json!("/a?b/")),
            ("path_prefix", serde_json::json!("/a#b/")),
            (
                "path_prefix",
                serde_json::json!(format!("/{}/", "a".repeat(2000))),
            ),
            ("upstream", serde_json::json!("ftp://x/")),
            ("upstream", serde_json::json!("/relative")),
            ("upstream", serde_json::json!("http://h/x?q=1")),
            ("upstream", serde_json::json!("http://h/x#f")),
            ("upstream", serde_json::json!("http://user:pw@h/x")),
            ("upstream", serde_json::json!("http:///x")),
            ("upstream", serde_json::json!("http://h /x")),
            ("upstream", serde_json::json!("http://h/a/../b")),
            ("upstream", serde_json::json!("javascript:alert(1)")),
            ("host", serde_json::json!("")),
            ("host", serde_json::json!("api.example.com/x")),
            ("host", serde_json::json!("-bad.example")),
            ("host", serde_json::json!("a..b")),
            ("host", serde_json::json!("h:0")),
            ("host", serde_json::json!("h:70000")),
            ("host", serde_json::json!("h:")),
            ("host", serde_json::json!("exa mple.com")),
            ("host", serde_json::json!("bücher.example")),
            ("resource", serde_json::json!("")),
            ("rules", serde_json::json!([])),
            (
                "rules[0].methods",
                serde_json::json!([{"methods": [], "scopes": []}]),
            ),
            (
                "rules[0].methods",
                serde_json::json!([{"methods": ["get"], "scopes": []}]),
            ),
            (
                "rules[0].methods",
                serde_json::json!([{"methods": ["GET", "GET"], "scopes": []}]),
            ),
            (
                "rules[0].methods",
                serde_json::json!([{"methods": ["G T"], "scopes": []}]),
            ),
            (
                "rules[0].scopes",
                serde_json::json!([{"methods": ["GET"], "scopes": ["a", "a"]}]),
            ),
        ];
        for (field, v) in cases {
            let e = input(with(field.split('[').next().unwrap_or(field), v.clone()))
                .expect_err(&format!("{field} {v}"));
            assert_eq!(field_of(&e), field, "{v}: {e:?}");
        }
        let too_many =
            serde_json::json!(vec![serde_json::json!({"methods":["GET"],"scopes":[]}); 33]);
        assert_eq!(
            field_of(&input(with("rules", too_many)).expect_err("33")),
            "rules"
        );
        // unknown fields and wrong types are refused by the parser
        assert!(serde_json::from_value::<RouteInput>(with("extra", 1.into())).is_err());
        assert!(serde_json::from_value::<RouteInput>(with("rules", "x".into())).is_err());
    }

    #[test]
    fn rule_scopes_must_belong_to_the_resource() {
        let r = input(base()).expect("valid");
        let own = vec!["demo_api:read".to_owned(), "demo_api:write".to_owned()];
        assert!(check_rule_scopes(&r, &own).is_ok());
        let e = check_rule_scopes(&r, &own[..1]).expect_err("write missing");
        assert_eq!(field_of(&e), "rules[1].scopes");
    }

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
    fn method_rules_in_order_with_star() {
        let r = input(base()).expect("valid");
        assert_eq!(
            r.rule_for("GET"),
            MethodRule::Scopes(&["demo_api:read".to_owned()][..])
        );
        assert_eq!(
            r.rule_for("HEAD"),
            MethodRule::Scopes(&["demo_api:read".to_owned()][..])
        );
        assert_eq!(
            r.rule_for("DELETE"),
            MethodRule::Scopes(&["demo_api:write".to_owned()][..])
        );
        let mut only_get = r.clone();
        only_get.rules.truncate(1);
        assert_eq!(
            only_get.rule_for("POST"),
            MethodRule::NotAllowed("GET, HEAD".into())
        );
        // methods are case-sensitive (RFC 9110)
        assert_eq!(
            only_get.rule_for("get"),
            MethodRule::NotAllowed("GET, HEAD".into())
        );
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

    #[test]
    fn host_parts() {
        assert_eq!(authority("http://127.0.0.1:8787/x"), "127.0.0.1:8787");
        assert_eq!(authority("https://h"), "h");
        assert_eq!(host_name("H:1"), "h");
        assert_eq!(host_name("[::1]:80"), "[::1]");
    }
}
