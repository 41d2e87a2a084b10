//! The answers of the authorization endpoint: the redirect back to the client (success, RFC 6749
//! 4.1.2, or error, 4.1.2.1), always with `iss` (RFC 9207) and `state` exactly as received, and
//! the errors that must never be redirected (shown on a page instead).
//!
//! Parameters are added to the redirect URI's query in `application/x-www-form-urlencoded` form
//! (RFC 6749 4.1.2), keeping any query it already has (RFC 6749 3.1.2: "MUST be retained").
//! A redirect is only ever built from a [`Redirect`], which only `redirect_uri::select` makes: a
//! URI that matched one the client registered.

use super::redirect_uri::Redirect;
use std::borrow::Cow;
use std::fmt;

/// RFC 6749 4.1.2.1 error codes, plus RFC 8707's `invalid_target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    ServerError,
    TemporarilyUnavailable,
    InvalidTarget,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidTarget => "invalid_target",
        }
    }
}

/// An error sent back to the client's redirect URI (only once the client and its redirect URI
/// are known good).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
}

impl RedirectError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        RedirectError {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }
}

impl fmt::Display for RedirectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

/// An error shown to the user on a page and never redirected (RFC 6749 4.1.2.1: the client or
/// its redirect URI is missing, unknown or does not match), so that the endpoint is no open
/// redirector. The page answers 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    pub description: Cow<'static, str>,
}

impl PageError {
    pub fn new(description: impl Into<Cow<'static, str>>) -> Self {
        PageError {
            description: description.into(),
        }
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

/// Either kind of authorization endpoint error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    Page(PageError),
    Redirect(RedirectError),
}

impl From<PageError> for AuthorizeError {
    fn from(e: PageError) -> Self {
        AuthorizeError::Page(e)
    }
}

impl From<RedirectError> for AuthorizeError {
    fn from(e: RedirectError) -> Self {
        AuthorizeError::Redirect(e)
    }
}

/// The success redirect: `code`, `state` (if the request had one) and `iss`.
pub fn success_location(to: &Redirect, code: &str, state: Option<&str>, iss: &str) -> String {
    let mut pairs = vec![("code", code)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", iss));
    with_query(to.as_str(), &pairs)
}

/// The error redirect: `error`, `error_description`, `state` (if any) and `iss`. The description
/// is limited to the characters RFC 6749 allows there (`%x20-21 / %x23-5B / %x5D-7E`): any
/// other is replaced by `?`.
pub fn error_location(to: &Redirect, e: &RedirectError, state: Option<&str>, iss: &str) -> String {
    let description: String = e
        .description
        .chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect();
    let mut pairs = vec![("error", e.code.as_str())];
    if !description.is_empty() {
        pairs.push(("error_description", description.as_str()));
    }
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", iss));
    with_query(to.as_str(), &pairs)
}

/// `uri` with `pairs` appended to its query (a URI with a fragment is never registered).
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(
        uri.len() + 64 + pairs.iter().map(|(_, v)| v.len() * 3).sum::<usize>(),
    );
    out.push_str(uri);
    let sep = match uri.find('?') {
        None => Some('?'),
        Some(i) if i + 1 == uri.len() || uri.ends_with('&') => None,
        Some(_) => Some('&'),
    };
    if let Some(c) = sep {
        out.push(c);
    }
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        encode_component(v, &mut out);
    }
    out
}

/// Form-urlencoding of a value: unreserved characters kept, every other byte `%XX`.
fn encode_component(v: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::redirect_uri::{select, RedirectPolicy};
    use super::*;

    const ISS: &str = "https://auth.example";

    fn to(uri: &str) -> Redirect {
        select(Some(uri), &[uri], RedirectPolicy::default()).expect("registered")
    }

    fn query_of(location: &str) -> Vec<(String, String)> {
        let q = location.split_once('?').map_or("", |(_, q)| q);
        q.split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (
                    crate::http::percent_decode(k.as_bytes()).expect("k"),
                    crate::http::percent_decode(v.as_bytes()).expect("v"),
                )
            })
            .collect()
    }

    #[test]
    fn success_carries_code_state_and_iss() {
        let loc = success_location(&to("https://app.example/cb"), "pgc_abc", Some("xyz"), ISS);
        assert_eq!(
            loc,
            "https://app.example/cb?code=pgc_abc&state=xyz&iss=https%3A%2F%2Fauth.example"
        );
        let loc = success_location(&to("https://app.example/cb"), "pgc_abc", None, ISS);
        assert_eq!(
            loc,
            "https://app.example/cb?code=pgc_abc&iss=https%3A%2F%2Fauth.example"
        );
    }

    #[test]
    fn an_existing_query_is_kept() {
        for (uri, want) in [
            (
                "https://app.example/cb?tenant=a",
                "https://app.example/cb?tenant=a&code=c&iss=i",
            ),
            (
                "https://app.example/cb?",
                "https://app.example/cb?code=c&iss=i",
            ),
            (
                "https://app.example/cb?a=1&",
                "https://app.example/cb?a=1&code=c&iss=i",
            ),
            (
                "http://127.0.0.1:5000",
                "http://127.0.0.1:5000?code=c&iss=i",
            ),
        ] {
            assert_eq!(success_location(&to(uri), "c", None, "i"), want);
        }
    }

    #[test]
    fn errors_carry_state_and_iss_and_a_safe_description() {
        let e = RedirectError::new(ErrorCode::AccessDenied, "the user said \"no\" \\ é");
        let loc = error_location(&to("https://app.example/cb"), &e, Some("s p+a&c=e"), ISS);
        assert_eq!(
            query_of(&loc),
            [
                ("error".to_owned(), "access_denied".to_owned()),
                (
                    "error_description".to_owned(),
                    "the user said ?no? ? ?".to_owned()
                ),
                ("state".to_owned(), "s p+a&c=e".to_owned()),
                ("iss".to_owned(), ISS.to_owned()),
            ]
        );
        let bare = RedirectError::new(ErrorCode::InvalidTarget, "");
        assert_eq!(
            error_location(&to("https://app.example/cb"), &bare, None, "i"),
            "https://app.example/cb?error=invalid_target&iss=i"
        );
    }

    proptest::proptest! {
        /// `state` comes back exactly as it was sent, whatever it holds.
        #[test]
        fn state_round_trips(state in "\\PC{0,64}", code in "[A-Za-z0-9_]{1,53}") {
            let loc = success_location(&to("https://app.example/cb?x=1"), &code, Some(&state), ISS);
            let q = query_of(&loc);
            proptest::prop_assert_eq!(q.len(), 4);
            proptest::prop_assert_eq!(&q[0], &("x".to_owned(), "1".to_owned()));
            proptest::prop_assert_eq!(&q[2], &("state".to_owned(), state.clone()));
            proptest::prop_assert!(loc.bytes().all(|b| (0x21..0x7f).contains(&b)));
            let e = RedirectError::invalid_request(state.clone());
            let loc = error_location(&to("https://app.example/cb"), &e, Some(&state), ISS);
            proptest::prop_assert!(query_of(&loc).contains(&("state".to_owned(), state)));
        }
    }
}
