//! A gate route's CORS policy (the Fetch standard's CORS protocol), off unless the route has one.
//!
//! The gate answers CORS itself, before any token is looked at: a browser's preflight (`OPTIONS`
//! with `Origin` and `Access-Control-Request-Method`) carries no token, so without this a web app
//! on another origin could never call an API behind the gate. A preflight is answered here and
//! never forwarded; an actual request from an allowed origin gets `Access-Control-Allow-Origin`
//! on whatever answers it: the upstream's response or the gate's own 401/403/405/429/503 (so the
//! web app can read why it was refused). Requests from other origins are processed as always,
//! without CORS headers: the browser then withholds the answer from the calling page.
//!
//! What is refused when the route is configured (`validate`): the origin `null` (sandboxed
//! documents, `file:` pages and redirects all send it: allowing it allows anyone), `*` together
//! with credentials (browsers refuse that answer, and echoing any origin instead would hand every
//! site the user's credentials), and origins that no browser sends (paths, default ports, case).
//!
//! Pure: the route record holds a [`Cors`]; `app::gate` asks it for headers.

use crate::error::Error;
use serde::{Deserialize, Serialize};

const MAX_ORIGINS: usize = 32;
const MAX_METHODS: usize = 16;
const MAX_HEADERS: usize = 32;
const MAX_ORIGIN_LEN: usize = 270;
/// Longest `max_age` accepted (a day; browsers cap it lower: Chromium at 2 hours).
pub const MAX_MAX_AGE: u32 = 86_400;
const DEFAULT_MAX_AGE: u32 = 600;

/// A route's CORS policy.
///
/// **Persisted format**: stored in D1 `gate_routes.cors` as this JSON and read by every later
/// version; add only optional fields (with serde defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Serialized origins (`https://app.example.com`, `http://localhost:5173`), or `["*"]`: any
    /// origin, without credentials.
    pub allowed_origins: Vec<String>,
    /// Methods a preflight may ask for (`Access-Control-Allow-Methods`).
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for, lowercase (`Access-Control-Allow-Headers`).
    #[serde(default = "default_headers")]
    pub allowed_headers: Vec<String>,
    /// Response headers the calling page may read besides the CORS-safelisted ones
    /// (`Access-Control-Expose-Headers`), lowercase.
    #[serde(default)]
    pub exposed_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true` (cookies, HTTP authentication). The gate drops
    /// `Cookie` before forwarding; a bearer token set by the page is not a credential in this sense.
    #[serde(default)]
    pub allow_credentials: bool,
    /// Seconds a browser may cache a preflight's answer (`Access-Control-Max-Age`).
    #[serde(default = "default_max_age")]
    pub max_age: u32,
}

fn default_headers() -> Vec<String> {
    vec!["authorization".into(), "content-type".into()]
}

fn default_max_age() -> u32 {
    DEFAULT_MAX_AGE
}

fn bad(field: &str, why: &str) -> Error {
    Error::InvalidRequest(format!("cors.{field}: {why}"))
}

/// RFC 9110 `tchar`: what a method or header name is made of.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A serialized origin as browsers send it: `http`/`https`, a lowercase host (name, IPv4 or
/// bracketed IPv6) and a port only when it is not the scheme's default.
fn check_origin(o: &str) -> Result<(), &'static str> {
    if o == "null" {
        return Err(
            "\"null\" is not allowed: sandboxed documents, file: pages and redirected \
                    requests all send it, so allowing it allows anyone",
        );
    }
    if o.len() > MAX_ORIGIN_LEN {
        return Err("an origin is too long");
    }
    let shape =
        "an origin is scheme://host[:port] (http or https), without a path or a trailing slash";
    let (scheme, authority) = o.split_once("://").ok_or(shape)?;
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return Err(shape),
    };
    if authority.is_empty() || authority.bytes().any(|b| b"/?#@\\ ".contains(&b)) {
        return Err(shape);
    }
    if authority.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("browsers send origins in lower case: write the origin in lower case");
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(shape)?;
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(shape);
        }
        match after {
            "" => (authority, None),
            p => (authority, Some(p.strip_prefix(':').ok_or(shape)?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(p) = port {
        if p == default_port {
            return Err("browsers leave the scheme's default port out of an origin: remove it");
        }
    }
    if !host.starts_with('[') && super::route::normalize_host(host).is_none() {
        return Err(shape);
    }
    if let Some(p) = port {
        if super::route::normalize_host(&format!("h:{p}")).is_none() {
            return Err(shape);
        }
    }
    Ok(())
}

fn check_list(field: &str, list: &[String], max: usize, lowercase: bool) -> Result<(), Error> {
    if list.len() > max {
        return Err(bad(field, &format!("at most {max} entries")));
    }
    for (i, v) in list.iter().enumerate() {
        if v == "*" {
            return Err(bad(
                field,
                "\"*\" is not accepted here: list the names (a wildcard never covers Authorization)",
            ));
        }
        if !is_token(v) {
            return Err(bad(field, &format!("{v:?} is not a valid name")));
        }
        if lowercase && v.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad(field, &format!("{v:?} must be lower case")));
        }
        if list[..i].contains(v) {
            return Err(bad(field, &format!("{v} is repeated")));
        }
    }
    Ok(())
}

/// Validates a route's CORS policy (the admin API's `cors` object). Header names are taken in
/// any case and stored lowercase.
pub fn validate(mut c: Cors) -> Result<Cors, Error> {
    if c.allowed_origins.is_empty() || c.allowed_origins.len() > MAX_ORIGINS {
        return Err(bad(
            "allowed_origins",
            &format!("must hold 1 to {MAX_ORIGINS} origins, or [\"*\"]"),
        ));
    }
    let wildcard = c.allowed_origins.iter().any(|o| o == "*");
    if wildcard && c.allowed_origins.len() > 1 {
        return Err(bad("allowed_origins", "\"*\" must be the only entry"));
    }
    if wildcard && c.allow_credentials {
        return Err(bad(
            "allow_credentials",
            "cannot be true with allowed_origins [\"*\"]: browsers refuse credentials with a \
             wildcard origin; list the origins instead",
        ));
    }
    for (i, o) in c.allowed_origins.iter().enumerate() {
        if !wildcard {
            check_origin(o).map_err(|why| bad("allowed_origins", &format!("{o:?}: {why}")))?;
        }
        if c.allowed_origins[..i].contains(o) {
            return Err(bad("allowed_origins", &format!("{o} is repeated")));
        }
    }
    if c.allowed_methods.is_empty() {
        return Err(bad("allowed_methods", "must hold at least one method"));
    }
    check_list("allowed_methods", &c.allowed_methods, MAX_METHODS, false)?;
    if let Some(m) = c
        .allowed_methods
        .iter()
        .find(|m| m.bytes().any(|b| !b.is_ascii_uppercase()))
    {
        return Err(bad(
            "allowed_methods",
            &format!("{m:?} is not an upper-case method name"),
        ));
    }
    for h in c
        .allowed_headers
        .iter_mut()
        .chain(c.exposed_headers.iter_mut())
    {
        h.make_ascii_lowercase();
    }
    check_list("allowed_headers", &c.allowed_headers, MAX_HEADERS, true)?;
    check_list("exposed_headers", &c.exposed_headers, MAX_HEADERS, true)?;
    if c.max_age > MAX_MAX_AGE {
        return Err(bad(
            "max_age",
            &format!("must be 0 to {MAX_MAX_AGE} seconds"),
        ));
    }
    Ok(c)
}

/// The CORS request headers of a request (all absent for same-origin and non-browser callers).
#[derive(Debug, Clone, Copy, Default)]
pub struct CorsRequest<'a> {
    /// `Origin`.
    pub origin: Option<&'a str>,
    /// `Access-Control-Request-Method` (preflights).
    pub request_method: Option<&'a str>,
    /// `Access-Control-Request-Headers` (preflights).
    pub request_headers: Option<&'a str>,
}

/// Headers a CORS answer adds.
pub type Headers = Vec<(&'static str, String)>;

/// Why a preflight was refused (the `error_description` of its 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Origin,
    Method(String),
    Header(String),
}

impl Refused {
    pub fn description(&self) -> String {
        match self {
            Refused::Origin => "this origin may not call this API from a browser".into(),
            Refused::Method(m) => format!("the method {m} is not allowed from a browser"),
            Refused::Header(h) => format!("the request header {h} is not allowed from a browser"),
        }
    }
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(method: &str, r: &CorsRequest<'_>) -> bool {
    method == "OPTIONS" && r.origin.is_some() && r.request_method.is_some()
}

impl Cors {
    fn wildcard(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }

    /// Whether this origin may read answers. Origins compare without case (browsers send them
    /// in lower case, as stored); `null` matches only the wildcard.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.wildcard()
            || self
                .allowed_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// `Access-Control-Allow-Origin` (and `-Credentials`) for an allowed origin.
    fn allow_origin(&self, origin: &str, out: &mut Headers) {
        let value = if self.wildcard() { "*" } else { origin };
        out.push(("access-control-allow-origin", value.to_owned()));
        if self.allow_credentials {
            out.push(("access-control-allow-credentials", "true".to_owned()));
        }
    }

    /// The answer to a preflight: the headers of a `204`, or why it is refused.
    pub fn preflight(&self, r: &CorsRequest<'_>) -> Result<Headers, Refused> {
        let origin = r.origin.ok_or(Refused::Origin)?;
        if !self.allows_origin(origin) {
            return Err(Refused::Origin);
        }
        let method = r.request_method.unwrap_or("").trim();
        if !self.allowed_methods.iter().any(|m| m == method) {
            return Err(Refused::Method(method.chars().take(64).collect()));
        }
        for h in r.request_headers.unwrap_or("").split(',') {
            let h = h.trim();
            if !h.is_empty()
                && !self
                    .allowed_headers
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(h))
            {
                return Err(Refused::Header(h.chars().take(64).collect()));
            }
        }
        let mut out = Vec::with_capacity(6);
        self.allow_origin(origin, &mut out);
        out.push((
            "access-control-allow-methods",
            self.allowed_methods.join(", "),
        ));
        if !self.allowed_headers.is_empty() {
            out.push((
                "access-control-allow-headers",
                self.allowed_headers.join(", "),
            ));
        }
        out.push(("access-control-max-age", self.max_age.to_string()));
        out.push((
            "vary",
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers".to_owned(),
        ));
        Ok(out)
    }

    /// Headers for the answer to an actual (not preflight) request: `Vary: Origin` always (the
    /// answer depends on it), and for an allowed origin `Access-Control-Allow-Origin`,
    /// `-Credentials` and `-Expose-Headers`. `gate_answer`: the gate answers itself (401, 403,
    /// ...), so the page may also read its `WWW-Authenticate` challenge and `Retry-After`.
    pub fn actual(&self, origin: Option<&str>, gate_answer: bool) -> Headers {
        let mut out = Vec::with_capacity(4);
        if let Some(origin) = origin.filter(|o| self.allows_origin(o)) {
            self.allow_origin(origin, &mut out);
            let mut exposed = self.exposed_headers.clone();
            if gate_answer {
                for h in ["www-authenticate", "retry-after"] {
                    if !exposed.iter().any(|e| e == h) {
                        exposed.push(h.to_owned());
                    }
                }
            }
            if !exposed.is_empty() {
                out.push(("access-control-expose-headers", exposed.join(", ")));
            }
        }
        out.push(("vary", "Origin".to_owned()));
        out
    }
}

/// Whether an upstream response header is one the gate's CORS answer replaces (a route with a
/// CORS policy owns these: an upstream cannot widen it).
pub fn is_cors_response_header(name: &str) -> bool {
    name.len() > 15
        && name
            .get(..15)
            .is_some_and(|p| p.eq_ignore_ascii_case("access-control-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cors(v: serde_json::Value) -> Result<Cors, Error> {
        let c: Cors = serde_json::from_value(v).map_err(|e| bad("body", &e.to_string()))?;
        validate(c)
    }

    fn app() -> Cors {
        cors(json!({
            "allowed_origins": ["https://app.example.com", "http://localhost:5173"],
            "allowed_methods": ["GET", "POST"],
        }))
        .expect("valid")
    }

    fn msg(e: &Error) -> String {
        match e {
            Error::InvalidRequest(m) => m.clone(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn defaults_and_normalisation() {
        let c = app();
        assert_eq!(c.allowed_headers, ["authorization", "content-type"]);
        assert!(c.exposed_headers.is_empty());
        assert!(!c.allow_credentials);
        assert_eq!(c.max_age, 600);
        let c = cors(json!({"allowed_origins": ["*"], "allowed_methods": ["GET"],
                            "allowed_headers": ["Authorization", "X-Trace"],
                            "exposed_headers": ["ETag"], "max_age": 0}))
        .expect("valid");
        assert_eq!(c.allowed_headers, ["authorization", "x-trace"]);
        assert_eq!(c.exposed_headers, ["etag"]);
        assert!(cors(
            json!({"allowed_origins": ["https://[::1]:8443", "http://127.0.0.1:3000",
                                                "https://a.b.example"],
                            "allowed_methods": ["PUT"], "allow_credentials": true})
        )
        .is_ok());
    }

    /// Golden: `gate_routes.cors` as stored. A change makes stored policies unreadable (every
    /// request to those routes 503) or changes what they allow.
    #[test]
    fn stored_format_unchanged() {
        let c = app();
        let text = serde_json::to_string(&c).expect("json");
        assert_eq!(
            text,
            r#"{"allowed_origins":["https://app.example.com","http://localhost:5173"],"allowed_methods":["GET","POST"],"allowed_headers":["authorization","content-type"],"exposed_headers":[],"allow_credentials":false,"max_age":600}"#
        );
        assert_eq!(serde_json::from_str::<Cors>(&text).expect("reads"), c);
    }

    #[test]
    #[allow(clippy::too_many_lines)] // one table of cases
    fn hostile_policies_are_refused_at_configuration() {
        let cases: &[(serde_json::Value, &str)] = &[
            (
                json!({"allowed_origins": ["null"], "allowed_methods": ["GET"]}),
                "\"null\" is not allowed",
            ),
            (
                json!({"allowed_origins": ["*"], "allowed_methods": ["GET"], "allow_credentials": true}),
                "cors.allow_credentials: cannot be true",
            ),
            (
                json!({"allowed_origins": ["*", "https://a.example"], "allowed_methods": ["GET"]}),
                "only entry",
            ),
            (
                json!({"allowed_origins": [], "allowed_methods": ["GET"]}),
                "1 to 32",
            ),
            (
                json!({"allowed_origins": ["https://a.example/"], "allowed_methods": ["GET"]}),
                "without a path",
            ),
            (
                json!({"allowed_origins": ["https://a.example/app"], "allowed_methods": ["GET"]}),
                "without a path",
            ),
            (
                json!({"allowed_origins": ["a.example"], "allowed_methods": ["GET"]}),
                "scheme://host",
            ),
            (
                json!({"allowed_origins": ["ftp://a.example"], "allowed_methods": ["GET"]}),
                "scheme://host",
            ),
            (
                json!({"allowed_origins": ["https://*.example.com"], "allowed_methods": ["GET"]}),
                "scheme://host",
            ),
            (
                json!({"allowed_origins": ["https://u@a.example"], "allowed_methods": ["GET"]}),
                "scheme://host",
            ),
            (
                json!({"allowed_origins": ["https://a.example:443"], "allowed_methods": ["GET"]}),
                "default port",
            ),
            (
                json!({"allowed_origins": ["http://a.example:80"], "allowed_methods": ["GET"]}),
                "default port",
            ),
            (
                json!({"allowed_origins": ["https://a.example:99999"], "allowed_methods": ["GET"]}),
                "scheme://host",
            ),
            (
                json!({"allowed_origins": ["https://A.example"], "allowed_methods": ["GET"]}),
                "lower case",
            ),
            (
                json!({"allowed_origins": ["https://[zz]"], "allowed_methods": ["GET"]}),
                "scheme://host",
            ),
            (
                json!({"allowed_origins": ["https://a.example", "https://a.example"], "allowed_methods": ["GET"]}),
                "repeated",
            ),
            (
                json!({"allowed_origins": ["https://a.example"], "allowed_methods": []}),
                "at least one",
            ),
            (
                json!({"allowed_origins": ["https://a.example"], "allowed_methods": ["*"]}),
                "\"*\" is not accepted",
            ),
            (
                json!({"allowed_origins": ["https://a.example"], "allowed_methods": ["get"]}),
                "upper-case",
            ),
            (
                json!({"allowed_origins": ["https://a.example"], "allowed_methods": ["GET", "GET"]}),
                "repeated",
            ),
            (
                json!({"allowed_origins": ["https://a.example"], "allowed_methods": ["GET"], "allowed_headers": ["*"]}),
                "\"*\" is not accepted",
            ),
            (
                json!({"allowed_origins": ["https://a.example"], "allowed_methods": ["GET"], "allowed_headers": ["x y"]}),
                "not a valid name",
            ),
            (
                json!({"allowed_origins": ["https://a.example"], "allowed_methods": ["GET"], "exposed_headers": ["a:b"]}),
                "not a valid name",
            ),
            (
                json!({"allowed_origins": ["https://a.example"], "allowed_methods": ["GET"], "max_age": 86401}),
                "cors.max_age",
            ),
        ];
        for (v, want) in cases {
            let e = cors(v.clone()).expect_err(&v.to_string());
            assert!(msg(&e).contains(want), "{v}: {}", msg(&e));
        }
        // unknown fields and wrong types never parse
        assert!(serde_json::from_value::<Cors>(
            json!({"allowed_origins": ["*"], "allowed_methods": ["GET"], "origins": []})
        )
        .is_err());
        assert!(serde_json::from_value::<Cors>(
            json!({"allowed_origins": "*", "allowed_methods": ["GET"]})
        )
        .is_err());
        assert!(serde_json::from_value::<Cors>(
            json!({"allowed_origins": ["*"], "allowed_methods": ["GET"], "max_age": -1})
        )
        .is_err());
    }

    fn pre<'a>(
        origin: Option<&'a str>,
        method: &'a str,
        headers: Option<&'a str>,
    ) -> CorsRequest<'a> {
        CorsRequest {
            origin,
            request_method: Some(method),
            request_headers: headers,
        }
    }

    fn get<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
        h.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn preflights() {
        let c = app();
        let ok = c
            .preflight(&pre(
                Some("https://app.example.com"),
                "POST",
                Some("Authorization, content-type"),
            ))
            .expect("allowed");
        assert_eq!(
            get(&ok, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(get(&ok, "access-control-allow-methods"), Some("GET, POST"));
        assert_eq!(
            get(&ok, "access-control-allow-headers"),
            Some("authorization, content-type")
        );
        assert_eq!(get(&ok, "access-control-max-age"), Some("600"));
        assert_eq!(get(&ok, "access-control-allow-credentials"), None);
        assert!(get(&ok, "vary").is_some_and(|v| v.starts_with("Origin")));
        assert!(c
            .preflight(&pre(Some("http://localhost:5173"), "GET", None))
            .is_ok());
        // what is refused, and why
        assert_eq!(
            c.preflight(&pre(Some("https://evil.example"), "GET", None)),
            Err(Refused::Origin)
        );
        assert_eq!(
            c.preflight(&pre(Some("null"), "GET", None)),
            Err(Refused::Origin)
        );
        assert_eq!(
            c.preflight(&pre(
                Some("https://app.example.com.evil.example"),
                "GET",
                None
            )),
            Err(Refused::Origin)
        );
        assert_eq!(
            c.preflight(&pre(Some("http://app.example.com"), "GET", None)),
            Err(Refused::Origin),
            "scheme"
        );
        assert_eq!(
            c.preflight(&pre(Some("https://app.example.com:8443"), "GET", None)),
            Err(Refused::Origin),
            "port"
        );
        assert_eq!(
            c.preflight(&pre(Some("https://app.example.com"), "DELETE", None)),
            Err(Refused::Method("DELETE".into()))
        );
        assert_eq!(
            c.preflight(&pre(Some("https://app.example.com"), "post", None)),
            Err(Refused::Method("post".into())),
            "methods are case-sensitive"
        );
        assert_eq!(
            c.preflight(&pre(
                Some("https://app.example.com"),
                "GET",
                Some("authorization, x-admin")
            )),
            Err(Refused::Header("x-admin".into()))
        );
        // the wildcard: any origin, `null` included, answered `*`, never with credentials
        let any =
            cors(json!({"allowed_origins": ["*"], "allowed_methods": ["GET"]})).expect("valid");
        let ok = any
            .preflight(&pre(Some("null"), "GET", None))
            .expect("allowed");
        assert_eq!(get(&ok, "access-control-allow-origin"), Some("*"));
        // credentials: the origin echoed, never `*`
        let cred = cors(
            json!({"allowed_origins": ["https://app.example.com"], "allowed_methods": ["GET"],
                               "allow_credentials": true}),
        )
        .expect("valid");
        let ok = cred
            .preflight(&pre(Some("https://app.example.com"), "GET", None))
            .expect("allowed");
        assert_eq!(
            get(&ok, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(get(&ok, "access-control-allow-credentials"), Some("true"));
        assert!(is_preflight(
            "OPTIONS",
            &pre(Some("https://a"), "GET", None)
        ));
        assert!(!is_preflight(
            "OPTIONS",
            &CorsRequest {
                origin: Some("https://a"),
                ..CorsRequest::default()
            }
        ));
        assert!(!is_preflight("GET", &pre(Some("https://a"), "GET", None)));
    }

    #[test]
    fn actual_requests() {
        let c = cors(
            json!({"allowed_origins": ["https://app.example.com"], "allowed_methods": ["GET"],
                            "exposed_headers": ["etag"], "allow_credentials": true}),
        )
        .expect("valid");
        let h = c.actual(Some("https://app.example.com"), false);
        assert_eq!(
            get(&h, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
        assert_eq!(get(&h, "access-control-expose-headers"), Some("etag"));
        assert_eq!(get(&h, "vary"), Some("Origin"));
        let h = c.actual(Some("https://app.example.com"), true);
        assert_eq!(
            get(&h, "access-control-expose-headers"),
            Some("etag, www-authenticate, retry-after")
        );
        for other in [Some("https://evil.example"), Some("null"), None] {
            let h = c.actual(other, true);
            assert_eq!(h, vec![("vary", "Origin".to_owned())], "{other:?}");
        }
        assert!(is_cors_response_header("Access-Control-Allow-Origin"));
        assert!(is_cors_response_header("access-control-expose-headers"));
        assert!(!is_cors_response_header("access-control-"));
        assert!(!is_cors_response_header("vary"));
    }
}
