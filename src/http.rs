//! Host-neutral HTTP request and response types, and strict body parsing.
//!
//! The runtime layer (`edge`) converts a Workers request into [`Request`] and a [`Response`]
//! back; everything in between is plain Rust that runs in host tests.

use crate::error::Error;
use base64::Engine as _;

/// Largest form body accepted on `/oauth/*`.
pub const MAX_FORM_BODY: usize = 8 * 1024;
/// Largest JSON body accepted on `/api/*` and `/admin/*`.
pub const MAX_JSON_BODY: usize = 16 * 1024;

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
        self.headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
    }

    fn check_size(&self, limit: usize) -> Result<(), Error> {
        if self.body.len() > limit {
            return Err(Error::PayloadTooLarge(limit));
        }
        Ok(())
    }

    /// Parses an `application/x-www-form-urlencoded` body (OAuth endpoints).
    pub fn form(&self) -> Result<Form, Error> {
        self.check_size(MAX_FORM_BODY)?;
        if self.media_type().as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(Error::InvalidRequest(
                "the body must be application/x-www-form-urlencoded".into(),
            ));
        }
        Form::parse(&self.body)
    }

    /// Parses a JSON body into `T` (management and admin APIs).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        self.check_size(MAX_JSON_BODY)?;
        if self.media_type().as_deref() != Some("application/json") {
            return Err(Error::UnsupportedMediaType("application/json"));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::InvalidRequest(format!("invalid JSON body: {e}")))
    }

    /// Query parameters (same strict rules as forms).
    pub fn query_params(&self) -> Result<Form, Error> {
        Form::parse(self.query.as_deref().unwrap_or("").as_bytes())
    }

    /// `Authorization: Basic` credentials, decoded per RFC 6749 section 2.3.1 (each part
    /// form-urlencoded before base64).
    pub fn basic_credentials(&self) -> Result<Option<(String, String)>, Error> {
        let Some(auth) = self.get_header("authorization")? else {
            return Ok(None);
        };
        let Some((scheme, rest)) = auth.split_once(' ') else {
            return Ok(None);
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return Ok(None);
        }
        let bad = || Error::InvalidClient("malformed Basic credentials".into());
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        let id = percent_decode(id.as_bytes()).map_err(|_| bad())?;
        let secret = percent_decode(secret.as_bytes()).map_err(|_| bad())?;
        Ok(Some((id, secret)))
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

/// A parsed form: every parameter at most once (RFC 6749 section 3.1: "Request and response
/// parameters MUST NOT be included more than once"), values strictly UTF-8.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, Error> {
        let mut pairs: Vec<(String, String)> = Vec::new();
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
            if pairs.iter().any(|(existing, _)| *existing == k) {
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
    /// A cause to log (never sent to the client, never contains a secret).
    pub log: Option<String>,
}

impl Response {
    pub fn empty(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            log: None,
        }
    }

    pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Self {
        // Serializing our own response types cannot fail (no maps with non-string keys).
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Response {
            status,
            headers: vec![("content-type", "application/json".into())],
            body,
            log: None,
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

    fn form_req(body: &str) -> Request {
        Request::new(Method::Post, "/oauth/introspect")
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(body)
    }

    #[test]
    fn form_parses_and_decodes() {
        let f = form_req("token=a%2Bb+c&hint=&x").form().expect("ok");
        assert_eq!(f.get("token"), Some("a+b c"));
        assert_eq!(f.get("hint"), None);
        assert_eq!(f.get("x"), None);
        assert!(f.require("missing").is_err());
    }

    #[test]
    fn form_rejects_duplicates() {
        let e = form_req("token=a&token=b").form().expect_err("dup");
        assert!(matches!(e, Error::InvalidRequest(ref m) if m.contains("repeated")));
    }

    #[test]
    fn form_rejects_non_utf8_and_bad_escapes() {
        assert!(matches!(
            form_req("token=%FF").form(),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            form_req("token=%F").form(),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            form_req("token=%zz").form(),
            Err(Error::InvalidRequest(_))
        ));
        let raw = Request::new(Method::Post, "/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b't', b'=', 0xff]);
        assert!(matches!(raw.form(), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn form_requires_content_type_and_size() {
        let r = Request::new(Method::Post, "/").body("token=x");
        assert!(matches!(r.form(), Err(Error::InvalidRequest(_))));
        let r = form_req(&"a".repeat(MAX_FORM_BODY + 1));
        assert!(matches!(r.form(), Err(Error::PayloadTooLarge(_))));
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
    fn basic_credentials_are_urldecoded() {
        let enc = base64::engine::general_purpose::STANDARD.encode("my%20client:p%3Ass");
        let r = Request::new(Method::Post, "/").header("authorization", &format!("Basic {enc}"));
        assert_eq!(
            r.basic_credentials().expect("ok"),
            Some(("my client".into(), "p:ss".into()))
        );
        let r = Request::new(Method::Post, "/").header("authorization", "Basic !!!");
        assert!(matches!(
            r.basic_credentials(),
            Err(Error::InvalidClient(_))
        ));
        let r = Request::new(Method::Post, "/").header("authorization", "Bearer x");
        assert_eq!(r.basic_credentials().expect("ok"), None);
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
}
