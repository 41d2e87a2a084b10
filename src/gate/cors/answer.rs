//! The gate's CORS answers from a route's policy: whether a request is a preflight, the headers
//! of an allowed preflight (or why it is refused), and the headers an actual request's answer
//! carries.

use super::policy::Cors;

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
    use crate::error::Error;
    use crate::gate::cors::validate;
    use serde_json::json;

    fn cors(v: serde_json::Value) -> Result<Cors, Error> {
        let c: Cors =
            serde_json::from_value(v).map_err(|e| Error::InvalidRequest(format!("body: {e}")))?;
        validate(c)
    }

    fn app() -> Cors {
        cors(json!({
            "allowed_origins": ["https://app.example.com", "http://localhost:5173"],
            "allowed_methods": ["GET", "POST"],
        }))
        .expect("valid")
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
