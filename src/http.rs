//! Host-neutral HTTP request and response types, and strict body parsing.
//!
//! The runtime layer (`edge`) converts a Workers request into [`Request`] and a [`Response`]
//! back; everything in between is plain Rust that runs in host tests.

use crate::error::{Error, REALM};
use serde::Serialize;

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

/// Parses `body` as one JSON object into `T`; anything else (an array, a string, a number,
/// `null`, nothing) is a 400 naming what was found.
pub fn parse_json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    // JSON allows only these four whitespace bytes before a value; the first byte after them
    // decides the value's kind, so `{` here means the value is an object (or malformed).
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    let found = match first {
        Some(b'{') => None,
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        Some(_) => Some(""),
        None => {
            return Err(Error::InvalidRequest(
                "the body is empty: a JSON object is required".into(),
            ))
        }
    };
    if let Some(found) = found {
        // The first byte only suggests a kind (`name=x` starts like `null`): say "not JSON"
        // unless the whole body is JSON of that kind.
        if found.is_empty() || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
            return Err(Error::InvalidRequest(
                "the body is not JSON: a JSON object is required".into(),
            ));
        }
        return Err(Error::InvalidRequest(format!(
            "the JSON body must be an object, not {found}"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::InvalidRequest(format!("invalid JSON body: {e}")))
}

/// A parsed form: every parameter at most once (RFC 6749 section 3.1: "Request and response
/// parameters MUST NOT be included more than once"), values strictly UTF-8.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Linear in the body's size: duplicates are found with a hash set, not by rescanning.
    pub fn parse(body: &[u8]) -> Result<Form, Error> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut seen: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
        for part in body.split(|&b| b == b'&') {
            if part.is_empty() {
                continue;
            }
            let (k, v) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            let k = percent_decode(k).map_err(Error::InvalidRequest)?;
            let v = percent_decode(v).map_err(Error::InvalidRequest)?;
            if !seen.insert(k.as_bytes().to_vec()) {
                return Err(Error::InvalidRequest(format!("parameter {k} is repeated")));
            }
            pairs.push((k, v));
        }
        Ok(Form(pairs))
    }

    /// A parameter; an empty value counts as absent (RFC 6749 section 3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::InvalidRequest(format!("missing parameter {name}")))
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; the result must
/// be UTF-8.
pub fn percent_decode(input: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "malformed percent-encoding".to_owned())?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the body is not valid UTF-8".to_owned())
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

// ---------------------------------------------------------------------------------------------
// The one mapping from an error to a response (here, with `Response`, so that `error` does not
// depend on `http`).

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

impl Error {
    /// The single mapping from an error to (status, headers, body).
    /// What an operator needs to know about this error and the client must not see (which
    /// check failed, the storage error): logged as the `error` event
    /// ([`crate::app::events::Event::ErrorCause`]), never sent. Never contains a secret.
    pub fn cause(&self) -> Option<String> {
        match self {
            Error::InvalidSignature(cause) => Some(format!("invalid_signature: {cause}")),
            Error::InvalidClient(cause) => Some(format!("invalid_client: {cause}")),
            Error::InvalidToken { cause, .. } => Some(format!("invalid_token: {cause}")),
            Error::Unavailable(cause) => Some(format!("storage unavailable: {cause}")),
            Error::Internal(cause) => Some(format!("internal error: {cause}")),
            Error::RateLimited(what, _) => Some(format!("rate limited: {what}")),
            _ => None,
        }
    }

    /// The response: status, RFC 6749 5.2 JSON body, challenge headers. The cause, if any, is
    /// [`Error::cause`], logged by the caller.
    pub fn into_response(self) -> Response {
        let owned_description;
        let description: Option<&str> = match &self {
            Error::InvalidRequest(m)
            | Error::InvalidGrant(m)
            | Error::InvalidScope(m)
            | Error::UnauthorizedClient(m)
            | Error::UnsupportedGrantType(m)
            | Error::InvalidTarget(m)
            | Error::Conflict(m)
            | Error::Forbidden(m) => Some(m.as_str()),
            Error::InvalidSignature(_) => Some("the request signature is missing or not valid"),
            Error::InvalidClient(_) => Some("client authentication failed"),
            Error::MissingBearer => Some("a bearer token is required"),
            Error::InvalidToken { description, .. } => Some(*description),
            Error::NotFound | Error::Internal(_) => None,
            Error::PreconditionFailed => Some(
                "the record changed since it was read (If-Match does not match its ETag): read it again",
            ),
            Error::MethodNotAllowed(_) => Some("method not allowed"),
            Error::PayloadTooLarge(limit) => {
                owned_description = format!("the body is larger than {limit} bytes");
                Some(owned_description.as_str())
            }
            Error::UnsupportedMediaType(expected) => {
                owned_description = format!("the body must be {expected}");
                Some(owned_description.as_str())
            }
            Error::Unavailable(_) => Some("storage is temporarily unavailable, retry later"),
            Error::RateLimited(..) => Some("too many requests, retry later"),
        };
        let mut resp = Response::json(
            self.status(),
            &ErrorBody {
                error: self.code(),
                error_description: description,
            },
        );
        match &self {
            Error::RateLimited(_, secs) => {
                resp = resp.with_header("retry-after", secs.to_string());
            }
            Error::InvalidClient(_) => {
                resp = resp.with_header("www-authenticate", format!("Basic realm=\"{REALM}\""));
            }
            Error::MissingBearer => {
                resp = resp.with_header("www-authenticate", format!("Bearer realm=\"{REALM}\""));
            }
            Error::InvalidToken { description, .. } => {
                resp = resp.with_header(
                    "www-authenticate",
                    format!(
                        "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
                    ),
                );
            }
            Error::Forbidden(_) => {
                resp = resp.with_header(
                    "www-authenticate",
                    format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\""),
                );
            }
            Error::InvalidSignature(_) => {
                resp = resp.with_header("www-authenticate", format!("Signature realm=\"{REALM}\""));
            }
            Error::MethodNotAllowed(allow) => resp = resp.with_header("allow", *allow),
            Error::Unavailable(_) => resp = resp.with_header("retry-after", "1"),
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parses_and_decodes() {
        let f = Form::parse(b"token=a%2Bb+c&hint=&x").expect("ok");
        assert_eq!(f.get("token"), Some("a+b c"));
        assert_eq!(f.get("hint"), None);
        assert_eq!(f.get("x"), None);
        assert!(f.require("missing").is_err());
    }

    #[test]
    fn form_rejects_duplicates() {
        let e = Form::parse(b"token=a&token=b").expect_err("dup");
        assert!(matches!(e, Error::InvalidRequest(ref m) if m.contains("repeated")));
    }

    #[test]
    fn form_rejects_non_utf8_and_bad_escapes() {
        assert!(matches!(
            Form::parse(b"token=%FF"),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            Form::parse(b"token=%F"),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            Form::parse(b"token=%zz"),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            Form::parse(&[b't', b'=', 0xff]),
            Err(Error::InvalidRequest(_))
        ));
    }

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

    #[test]
    fn form_with_thousands_of_parameters() {
        let body: Vec<String> = (0..4000).map(|i| format!("k{i}=v")).collect();
        let f = Form::parse(body.join("&").as_bytes()).expect("distinct keys");
        assert_eq!(f.get("k3999"), Some("v"));
        let dup = format!("{}&k17=w", body.join("&"));
        assert!(matches!(
            Form::parse(dup.as_bytes()),
            Err(Error::InvalidRequest(m)) if m == "parameter k17 is repeated"
        ));
    }

    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() {
                out.push(b as char);
            } else {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{b:02X}"));
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn form_parse_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = Form::parse(&body);
        }

        #[test]
        fn form_round_trips(pairs in proptest::collection::btree_map("\\PC{1,12}", "\\PC{0,12}", 0..12)) {
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
            let f = Form::parse(body.join("&").as_bytes()).expect("parses");
            for (k, v) in &pairs {
                let want = (!v.is_empty()).then_some(v.as_str());
                proptest::prop_assert_eq!(f.get(k), want);
            }
        }

        #[test]
        fn json_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse_json_object::<serde_json::Value>(&body);
        }

        #[test]
        fn json_arrays_are_always_refused(items in proptest::collection::vec("\\PC{0,8}", 0..5), ws in "[ \t\r\n]{0,3}") {
            let body = format!("{ws}{}", serde_json::to_string(&items).expect("json"));
            proptest::prop_assert!(matches!(
                parse_json_object::<serde_json::Value>(body.as_bytes()),
                Err(Error::InvalidRequest(_))
            ));
        }

        #[test]
        fn authorization_parsers_never_panic(value in "\\PC{0,200}", scheme in "(Basic|basic|Bearer|BEARER|x)") {
            let r = Request::new(Method::Post, "/").header("authorization", &format!("{scheme} {value}"));
            let _ = r.bearer();
            let raw = Request::new(Method::Post, "/").header("authorization", &value);
            let _ = raw.bearer();
        }
    }
}
