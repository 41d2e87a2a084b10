//! Host-neutral HTTP request and response types, and strict body parsing.
//!
//! The runtime layer (`edge`) converts a Workers request into [`Request`] and a [`Response`]
//! back; everything in between is plain Rust that runs in host tests.
//!
//! Bodies and queries are parsed strictly in `http/body.rs` (JSON objects, forms,
//! percent-decoding); the one mapping from an error to a response is in `http/error_response.rs`.

mod body;
mod error_response;

pub use body::{parse_json_object, percent_decode, Form};

use crate::error::Error;

/// Largest form body accepted on `/oauth/*`.
pub const MAX_FORM_BODY: usize = 8 * 1024;
/// Largest JSON body accepted on `/api/*` and `/admin/*`.
pub const MAX_JSON_BODY: usize = 16 * 1024;
/// Largest secret scanning partner report (`/secret-scanning/*`).
pub const MAX_REPORT_BODY: usize = 64 * 1024;

/// The largest body any request to `path` may have: [`MAX_FORM_BODY`] on the form endpoints
/// (`/oauth/*`), [`MAX_JSON_BODY`] everywhere else. The entry shim (`scripts/worker-shim.js`)
/// stops reading a body at this size and must agree with it (the end-to-end suite checks both
/// limits through the shim).
pub fn body_limit(path: &str) -> usize {
    if path.starts_with("/oauth/") {
        MAX_FORM_BODY
    } else if path.starts_with("/secret-scanning/") {
        MAX_REPORT_BODY
    } else {
        MAX_JSON_BODY
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// An incoming request, with the few headers patgate reads (names lowercase).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A request for `target` (a path, optionally with `?query`).
    pub fn new(method: Method, target: &str) -> Self {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (target, None),
        };
        Request {
            method,
            path: path.to_owned(),
            query,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The value of a header; `Err` if it is repeated (ambiguous credentials are refused).
    pub fn get_header(&self, name: &str) -> Result<Option<&str>, Error> {
        let mut found = None;
        for (k, v) in &self.headers {
            if k == name {
                if found.is_some() {
                    return Err(Error::InvalidRequest(format!("repeated {name} header")));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Media type of the body, lowercased and without parameters.
    fn media_type(&self) -> Option<String> {
        self.media_type_raw().map(str::to_ascii_lowercase)
    }

    /// Whether the body's media type (the first `Content-Type`, parameters ignored) is
    /// `expected` (ASCII case-insensitive; no allocation).
    pub fn has_media_type(&self, expected: &str) -> bool {
        self.media_type_raw()
            .is_some_and(|m| m.eq_ignore_ascii_case(expected))
    }

    /// The first `Content-Type`'s media type as sent: parameters cut, whitespace trimmed.
    fn media_type_raw(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.split(';').next().unwrap_or("").trim())
    }

    fn check_size(&self, limit: usize) -> Result<(), Error> {
        if self.body.len() > limit {
            return Err(Error::PayloadTooLarge(limit));
        }
        Ok(())
    }

    /// Parses a JSON body into `T` (management and admin APIs).
    ///
    /// The body must be a JSON object: serde's derived `Deserialize` also accepts a JSON array
    /// for a struct (its fields in order), which no client means to send.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        self.check_size(MAX_JSON_BODY)?;
        if self.media_type().as_deref() != Some("application/json") {
            return Err(Error::UnsupportedMediaType("application/json"));
        }
        parse_json_object(&self.body)
    }

    /// Query parameters (same strict rules as forms).
    pub fn query_params(&self) -> Result<Form, Error> {
        Form::parse(self.query.as_deref().unwrap_or("").as_bytes())
    }

    /// A bearer token from `Authorization: Bearer ...`.
    pub fn bearer(&self) -> Result<Option<&str>, Error> {
        let Some(auth) = self.get_header("authorization")? else {
            return Ok(None);
        };
        match auth.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(token.trim()))
            }
            _ => Ok(None),
        }
    }
}

/// Path and query of an already-serialized WHATWG URL (`scheme://host[:port]/path?query#frag`),
/// without re-parsing it (the runtime hands us a normalized URL).
pub fn split_url(url: &str) -> (&str, Option<&str>) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let target = rest.find('/').map_or("/", |i| &rest[i..]);
    let target = target.split('#').next().unwrap_or("/");
    match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    }
}

/// An outgoing response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn empty(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Self {
        // Serializing our own response types cannot fail (no maps with non-string keys).
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Response {
            status,
            headers: vec![("content-type", "application/json".into())],
            body,
        }
    }

    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (tests).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_checks_type_size_and_syntax() {
        #[derive(serde::Deserialize)]
        struct T {
            #[allow(dead_code)]
            a: u8,
        }
        let ok = Request::new(Method::Post, "/")
            .header("content-type", "application/json")
            .body(r#"{"a":1}"#);
        assert!(ok.json::<T>().is_ok());
        let wrong = Request::new(Method::Post, "/")
            .header("content-type", "text/plain")
            .body(r#"{"a":1}"#);
        assert!(matches!(
            wrong.json::<T>(),
            Err(Error::UnsupportedMediaType(_))
        ));
        let bad = Request::new(Method::Post, "/")
            .header("content-type", "application/json")
            .body("{");
        assert!(matches!(bad.json::<T>(), Err(Error::InvalidRequest(_))));
        let big = Request::new(Method::Post, "/")
            .header("content-type", "application/json")
            .body(vec![b' '; MAX_JSON_BODY + 1]);
        assert!(matches!(big.json::<T>(), Err(Error::PayloadTooLarge(_))));
    }

    #[test]
    fn split_url_cases() {
        assert_eq!(split_url("http://h:1/a/b?x=1#f"), ("/a/b", Some("x=1")));
        assert_eq!(split_url("https://h/"), ("/", None));
        assert_eq!(split_url("https://h"), ("/", None));
        assert_eq!(split_url("https://h/p#frag?no"), ("/p", None));
        assert_eq!(split_url("https://h/p?"), ("/p", Some("")));
    }

    #[test]
    fn repeated_authorization_header_is_refused() {
        let r = Request::new(Method::Post, "/")
            .header("authorization", "Bearer a")
            .header("authorization", "Bearer b");
        assert!(r.bearer().is_err());
    }

    fn json_req(body: &[u8]) -> Request {
        Request::new(Method::Post, "/api/pats")
            .header("content-type", "application/json")
            .body(body.to_vec())
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Pair {
        name: String,
        n: u8,
    }

    #[test]
    fn json_body_must_be_an_object() {
        assert!(json_req(br#" {"name":"a","n":1}"#).json::<Pair>().is_ok());
        // serde's derived Deserialize would take an array as the fields in order.
        for (body, found) in [
            (&br#"["a", 1]"#[..], "an array"),
            (b"\n\t [\"a\",1]", "an array"),
            (br#""a""#, "a string"),
            (b"1", "a number"),
            (b"-1", "a number"),
            (b"true", "a boolean"),
            (b"null", "null"),
        ] {
            match json_req(body).json::<Pair>() {
                Err(Error::InvalidRequest(m)) => {
                    assert_eq!(m, format!("the JSON body must be an object, not {found}"));
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
        // Not JSON at all, whatever its first byte suggests (a form body, a BOM, a typo).
        for body in [
            &b"\xef\xbb\xbf{}"[..],
            b"name=ci&scopes=a",
            b"nul",
            b"true-ish",
            b"fals",
            b"12 34",
            b"[1,",
            b"\"open",
            b"hello",
        ] {
            match json_req(body).json::<Pair>() {
                Err(Error::InvalidRequest(m)) => {
                    assert_eq!(
                        m, "the body is not JSON: a JSON object is required",
                        "{body:?}"
                    );
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
        for body in [&b""[..], b"  ", b"\r\n"] {
            match json_req(body).json::<Pair>() {
                Err(Error::InvalidRequest(m)) => {
                    assert_eq!(m, "the body is empty: a JSON object is required");
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn body_limits_per_endpoint() {
        assert_eq!(body_limit("/oauth/token"), MAX_FORM_BODY);
        assert_eq!(body_limit("/oauth/introspect"), 8192);
        assert_eq!(body_limit("/api/pats"), MAX_JSON_BODY);
        assert_eq!(body_limit("/secret-scanning/github"), MAX_REPORT_BODY);
        assert_eq!(body_limit("/admin/clients"), 16384);
        assert_eq!(body_limit("/oauthx"), MAX_JSON_BODY);
    }

    proptest::proptest! {
        #[test]
        fn authorization_parsers_never_panic(value in "\\PC{0,200}", scheme in "(Basic|basic|Bearer|BEARER|x)") {
            let r = Request::new(Method::Post, "/").header("authorization", &format!("{scheme} {value}"));
            let _ = r.bearer();
            let raw = Request::new(Method::Post, "/").header("authorization", &value);
            let _ = raw.bearer();
        }
    }
}
