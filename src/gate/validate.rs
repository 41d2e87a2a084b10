//! Validating a gate route from the admin API: every field named when it is refused (host,
//! path prefix, upstream URL, method rules and their scopes), sizes bounded. Pure.

use super::host::{normalize_host, split_absolute};
use super::route::{GateRoute, RouteInput, Rule};
use crate::error::Error;

/// Longest accepted `path_prefix` and `upstream`.
const MAX_PREFIX_LEN: usize = 1024;
const MAX_UPSTREAM_LEN: usize = 2048;
const MAX_RULES: usize = 32;
const MAX_METHODS: usize = 16;
const MAX_SCOPES: usize = 64;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::route::MethodRule;

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
}
