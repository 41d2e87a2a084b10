//! Gate routes: the record (D1 `gate_routes`, admin API JSON) and what a route says about a
//! method. Its validation is [`super::validate`], matching a request to a route
//! [`super::matching`]. Pure: no storage, no `worker`.

use serde::{Deserialize, Serialize};

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
