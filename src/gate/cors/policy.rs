//! A route's CORS policy ([`Cors`], stored with the route) and its validation when the route is
//! configured: what is refused (the origin `null`, `*` with credentials, origins no browser
//! sends) and how the lists are normalised.

use crate::error::Error;
use crate::gate::host::normalize_host;
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
    if !host.starts_with('[') && normalize_host(host).is_none() {
        return Err(shape);
    }
    if let Some(p) = port {
        if normalize_host(&format!("h:{p}")).is_none() {
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
}
