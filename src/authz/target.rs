//! What an authorization request asks for: the API its `resource` names (RFC 8707) and the
//! scopes it may get there.
//!
//! A resource indicator names either a gate route, by the `resource` its RFC 9728 metadata
//! publishes (`{scheme}://{host}{path_prefix}` on a gate host: the route is found exactly as the
//! metadata endpoint finds it, so a route limited to one host is named only on that host), or an
//! API resource by its registered `resource_uri` (APIs that introspect tokens themselves).
//! Anything else is `invalid_target`. The audience of every token of the grant is then that
//! API resource: its scopes are the only ones it can carry, so every other resource sees the
//! token as inactive.

use crate::gate::matching::find_by_metadata_suffix;
use crate::gate::route::GateRoute;
use crate::oauth::authorize::{ErrorCode, RedirectError, ResourceIndicator};
use crate::oauth::uri::Uri;
use crate::scopes::Scopes;

/// The API a resource indicator names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'r> {
    /// A gate route (its `resource` is the API resource id).
    Route(&'r GateRoute),
    /// An API resource by id, named by its registered `resource_uri`.
    Api(&'r str),
}

impl Target<'_> {
    /// The API resource id.
    pub fn api_id(&self) -> &str {
        match self {
            Target::Route(r) => &r.resource,
            Target::Api(id) => id,
        }
    }
}

/// Resolves `indicator` against the gate's routes (on hosts other than `issuer`'s) and the API
/// resources' registered URIs (`(resource_uri, api id)`).
///
/// # Errors
/// `invalid_target` when it names nothing.
pub fn resolve<'r>(
    indicator: &ResourceIndicator<'_>,
    issuer: &str,
    routes: &'r [GateRoute],
    api_uris: &'r [(String, String)],
) -> Result<Target<'r>, RedirectError> {
    if let Some((_, id)) = api_uris.iter().find(|(uri, _)| indicator.names(uri)) {
        return Ok(Target::Api(id));
    }
    route_of(indicator, issuer, routes)
        .map(Target::Route)
        .ok_or_else(|| {
            RedirectError::new(
                ErrorCode::InvalidTarget,
                "resource names no API this server issues tokens for",
            )
        })
}

fn route_of<'r>(
    indicator: &ResourceIndicator<'_>,
    issuer: &str,
    routes: &'r [GateRoute],
) -> Option<&'r GateRoute> {
    let u = Uri::parse(indicator.as_str()).ok()?;
    let scheme = u.scheme().to_ascii_lowercase();
    if !(scheme == "http" || scheme == "https") || u.query().is_some() || u.has_userinfo() {
        return None;
    }
    let a = u.authority()?;
    let authority = match a.port {
        Some(p) => format!("{}:{p}", a.host),
        None => a.host.to_owned(),
    };
    let path = if u.path().is_empty() { "/" } else { u.path() };
    let suffix = path.strip_suffix('/')?;
    find_by_metadata_suffix(routes, issuer, &authority, suffix)
}

/// The scopes an authorization request asks for: the requested ones, each a scope of the target
/// API (`api_scopes`) that the client may be given (`allowed`); without a `scope` parameter,
/// every such scope (RFC 6749 3.3's "pre-defined default value").
///
/// # Errors
/// `invalid_scope` for a scope outside both lists, or when none is left.
pub fn requested_scopes(
    requested: Option<&Scopes>,
    api_scopes: &[String],
    allowed: &[String],
) -> Result<Vec<String>, RedirectError> {
    let offered: Vec<String> = api_scopes
        .iter()
        .filter(|s| allowed.contains(s))
        .cloned()
        .collect();
    let scopes = match requested {
        None => offered,
        Some(r) => {
            if let Some(s) = r.first_outside(&offered) {
                return Err(RedirectError::new(
                    ErrorCode::InvalidScope,
                    format!("scope {s} is not available for this resource and client"),
                ));
            }
            r.clone().into_vec()
        }
    };
    if scopes.is_empty() {
        return Err(RedirectError::new(
            ErrorCode::InvalidScope,
            "no scope of this resource is available to this client",
        ));
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::route::Rule;
    use std::borrow::Cow;

    const ISSUER: &str = "http://127.0.0.1:8787";

    fn route(id: &str, host: Option<&str>, prefix: &str, resource: &str) -> GateRoute {
        GateRoute {
            id: id.into(),
            host: host.map(str::to_owned),
            path_prefix: prefix.into(),
            upstream: "http://127.0.0.1:9000".into(),
            resource: resource.into(),
            rules: vec![Rule {
                methods: vec!["*".into()],
                scopes: vec![],
            }],
            cors: None,
        }
    }

    fn ind(s: &str) -> ResourceIndicator<'_> {
        ResourceIndicator::parse(Cow::Borrowed(s)).expect("uri")
    }

    #[test]
    fn routes_are_named_by_their_published_resource() {
        let routes = [
            route("demo", None, "/gw/demo/", "demo_api"),
            route("mcp", Some("mcp.example.com"), "/mcp/", "mcp_api"),
            route("root", Some("api.example.com"), "/", "root_api"),
        ];
        let apis = [(
            "https://other.example/api".to_owned(),
            "other_api".to_owned(),
        )];
        let r = |s: &str| resolve(&ind(s), ISSUER, &routes, &apis).map(|t| t.api_id().to_owned());
        assert_eq!(r("http://localhost:8787/gw/demo/"), Ok("demo_api".into()));
        assert_eq!(r("https://any.example/gw/demo/"), Ok("demo_api".into()));
        assert_eq!(r("https://MCP.example.com/mcp/"), Ok("mcp_api".into()));
        assert_eq!(r("https://api.example.com/"), Ok("root_api".into()));
        assert_eq!(r("https://api.example.com"), Ok("root_api".into()));
        assert_eq!(r("https://other.example/api"), Ok("other_api".into()));
        for unknown in [
            "http://localhost:8787/gw/demo",
            "http://localhost:8787/gw/demo/x",
            "http://localhost:8787/gw/",
            "http://localhost:8787/gw/demo/?q",
            "http://u@localhost:8787/gw/demo/",
            "http://127.0.0.1:8787/gw/demo/",
            "https://other.example.com/mcp/",
            "https://other.example/api/",
            "ftp://localhost/gw/demo/",
            "urn:example:demo",
        ] {
            let e = r(unknown).expect_err(unknown);
            assert_eq!(e.code, ErrorCode::InvalidTarget, "{unknown}");
        }
    }

    #[test]
    fn scopes_default_to_what_the_client_may_get_of_the_api() {
        let api = [
            "a:read".to_owned(),
            "a:write".to_owned(),
            "a:admin".to_owned(),
        ];
        let allowed = [
            "a:read".to_owned(),
            "a:write".to_owned(),
            "b:read".to_owned(),
        ];
        assert_eq!(
            requested_scopes(None, &api, &allowed),
            Ok(vec!["a:read".into(), "a:write".into()])
        );
        let ask =
            |s: &str| requested_scopes(Some(&Scopes::parse(s).expect("scopes")), &api, &allowed);
        assert_eq!(ask("a:write"), Ok(vec!["a:write".into()]));
        for bad in ["a:admin", "b:read", "a:read c"] {
            assert_eq!(
                ask(bad).expect_err(bad).code,
                ErrorCode::InvalidScope,
                "{bad}"
            );
        }
        let none = requested_scopes(None, &api, &[]).expect_err("nothing offered");
        assert_eq!(
            none.description,
            "no scope of this resource is available to this client"
        );
    }
}
