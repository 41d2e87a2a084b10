//! Redirect URIs: which a client may list (admin API, RFC 7591 registration, client ID metadata
//! documents), and whether the `redirect_uri` of an authorization request is one of them.
//!
//! Matching is simple string comparison (RFC 6749 3.1.2.3, RFC 9700 4.1.3): no case folding, no
//! percent-decoding, no path or query normalization, no prefix matching. The one exception is
//! RFC 8252 section 7.3: for an `http` URI whose host is the loopback IP literal `127.0.0.1` or
//! `[::1]`, any port is accepted (native apps listen on an ephemeral port); scheme, host, path and
//! query must still be identical.
//!
//! `localhost` gets no such exception: RFC 8252 section 8.3 calls it NOT RECOMMENDED (the name
//! may resolve to something else, and a firewall may let a remote host listen there), and the
//! MCP authorization specification asks the consent page to warn about it. A client may list an
//! `http://localhost:PORT/...` URI (MCP clients that register per run do), but it then matches
//! only exactly, port included; the consent page warns about it like about loopback addresses.
//!
//! What may be listed: no fragment (not even a bare `#`), no userinfo, a lowercase scheme, none
//! of the response parameters patgate adds (`code`, `state`, `iss`, `error`, ...) in the query,
//! and never a scheme a browser would run or open locally (`javascript:`, `data:`, `file:`, ...).
//! What a code may be sent to: `https` with a host, `http` on a loopback host, or a private-use
//! scheme (RFC 8252 7.1, e.g. `com.example.app:/cb`) when the policy allows them. A list may hold
//! URIs patgate will not redirect to (Cursor lists a `cursor://` callback beside its loopback
//! one) as long as one of them is usable.

use super::super::uri::{is_loopback_ip_literal, Uri, UriError, MAX_URI_LEN};
use std::fmt;

/// Most redirect URIs one client may list.
pub const MAX_REDIRECT_URIS: usize = 20;

/// Parameters patgate adds to a redirect URI's query: a registered URI carrying one of them
/// would make the response ambiguous.
const RESPONSE_PARAMETERS: [&str; 6] = [
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "error_uri",
];

/// Schemes a browser would execute, render or hand to a local handler: never a redirect target.
const DANGEROUS_SCHEMES: [&str; 12] = [
    "javascript",
    "data",
    "vbscript",
    "file",
    "blob",
    "about",
    "filesystem",
    "view-source",
    "mailto",
    "tel",
    "sms",
    "intent",
];

/// What the server allows beyond `https` and loopback `http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RedirectPolicy {
    /// Private-use URI schemes of native apps (RFC 8252 7.1). Off by default: any app on the
    /// device can claim a scheme (PKCE still binds the code to the app that asked).
    pub private_use_schemes: bool,
}

/// How a usable redirect URI is matched and shown on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    /// `https://host/...`: exact match.
    Https,
    /// `http://127.0.0.1` or `http://[::1]`: any port (RFC 8252 7.3); the page warns.
    LoopbackIp,
    /// `http://localhost`: exact match, port included; the page warns.
    Localhost,
    /// A private-use scheme (RFC 8252 7.1): exact match; the page names the scheme.
    PrivateUse,
}

impl RedirectKind {
    /// Whether the consent page warns that the code goes to this device, not to a web site.
    pub fn is_local(self) -> bool {
        !matches!(self, RedirectKind::Https)
    }
}

/// Why a redirect URI cannot be listed or used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectUriError {
    Malformed(UriError),
    Fragment,
    Userinfo,
    SchemeNotLowercase,
    DangerousScheme,
    /// `http` to a host other than `127.0.0.1`, `[::1]` or `localhost`.
    HttpNotLoopback,
    /// `https` or `http` without a host (`https:/cb`, `https:cb`).
    NoHost,
    PrivateUseNotAllowed,
    /// The query already holds a parameter the response adds.
    ReservedParameter(&'static str),
    NoneListed,
    TooMany,
    /// Every listed URI is one patgate would not redirect to.
    NoneUsable(Box<RedirectUriError>),
}

impl fmt::Display for RedirectUriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectUriError::Malformed(e) => write!(f, "the redirect URI {e}"),
            RedirectUriError::Fragment => f.write_str("a redirect URI must not have a fragment"),
            RedirectUriError::Userinfo => f.write_str("a redirect URI must not contain user@"),
            RedirectUriError::SchemeNotLowercase => {
                f.write_str("a redirect URI's scheme must be lowercase")
            }
            RedirectUriError::DangerousScheme => {
                f.write_str("a redirect URI must not use that scheme")
            }
            RedirectUriError::HttpNotLoopback => f.write_str(
                "a redirect URI must use https, or http on 127.0.0.1, [::1] or localhost",
            ),
            RedirectUriError::NoHost => f.write_str("an http(s) redirect URI must have a host"),
            RedirectUriError::PrivateUseNotAllowed => {
                f.write_str("private-use redirect URI schemes are not allowed here")
            }
            RedirectUriError::ReservedParameter(p) => {
                write!(
                    f,
                    "a redirect URI's query must not contain the parameter {p}"
                )
            }
            RedirectUriError::NoneListed => f.write_str("redirect_uris must not be empty"),
            RedirectUriError::TooMany => write!(f, "at most {MAX_REDIRECT_URIS} redirect_uris"),
            RedirectUriError::NoneUsable(first) => write!(f, "no usable redirect URI: {first}"),
        }
    }
}

/// The checks every listed URI passes, usable or not.
///
/// # Errors
/// The first rule it breaks.
pub fn check_listed(uri: &str) -> Result<Uri<'_>, RedirectUriError> {
    let u = Uri::parse(uri).map_err(RedirectUriError::Malformed)?;
    if u.fragment().is_some() {
        return Err(RedirectUriError::Fragment);
    }
    if u.has_userinfo() {
        return Err(RedirectUriError::Userinfo);
    }
    if u.scheme().bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(RedirectUriError::SchemeNotLowercase);
    }
    if DANGEROUS_SCHEMES.contains(&u.scheme()) {
        return Err(RedirectUriError::DangerousScheme);
    }
    if let Some(q) = u.query() {
        for pair in q.split('&') {
            let name = pair.split('=').next().unwrap_or_default();
            let name = crate::http::percent_decode(name.as_bytes()).unwrap_or_default();
            if let Some(p) = RESPONSE_PARAMETERS.iter().find(|p| **p == name) {
                return Err(RedirectUriError::ReservedParameter(p));
            }
        }
    }
    Ok(u)
}

/// Whether patgate would send a code to `uri` under `policy`, and how it matches.
///
/// # Errors
/// The first rule it breaks.
pub fn check_usable(uri: &str, policy: RedirectPolicy) -> Result<RedirectKind, RedirectUriError> {
    let u = check_listed(uri)?;
    match (u.scheme(), u.host()) {
        ("https", Some(_)) => Ok(RedirectKind::Https),
        ("http", Some(h)) if is_loopback_ip_literal(h) => Ok(RedirectKind::LoopbackIp),
        ("http", Some("localhost")) => Ok(RedirectKind::Localhost),
        ("http", Some(_)) => Err(RedirectUriError::HttpNotLoopback),
        ("https" | "http", None) => Err(RedirectUriError::NoHost),
        _ if policy.private_use_schemes => Ok(RedirectKind::PrivateUse),
        _ => Err(RedirectUriError::PrivateUseNotAllowed),
    }
}

/// The checks of a client's whole list: 1 to [`MAX_REDIRECT_URIS`] URIs, each listable, at least
/// one usable.
///
/// # Errors
/// The first rule the list breaks (for a list with no usable URI: the first URI's reason).
pub fn check_registered<S: AsRef<str>>(
    list: &[S],
    policy: RedirectPolicy,
) -> Result<(), RedirectUriError> {
    if list.is_empty() {
        return Err(RedirectUriError::NoneListed);
    }
    if list.len() > MAX_REDIRECT_URIS {
        return Err(RedirectUriError::TooMany);
    }
    for uri in list {
        check_listed(uri.as_ref())?;
    }
    let mut first = None;
    for uri in list {
        match check_usable(uri.as_ref(), policy) {
            Ok(_) => return Ok(()),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(RedirectUriError::NoneUsable(Box::new(
        first.unwrap_or(RedirectUriError::NoneListed),
    )))
}

/// Whether `presented` (an authorization request's `redirect_uri`) is `registered`: the same
/// string, or the same loopback IP `http` URI with any port.
pub fn matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (Uri::parse(registered), Uri::parse(presented)) else {
        return false;
    };
    r.scheme() == "http"
        && p.scheme() == "http"
        && r.host().is_some_and(is_loopback_ip_literal)
        && r.host() == p.host()
        && !r.has_userinfo()
        && !p.has_userinfo()
        && r.fragment().is_none()
        && p.fragment().is_none()
        && r.path() == p.path()
        && r.query() == p.query()
}

/// The redirect URI of an authorization request, checked against the client's registered ones:
/// the only value the authorization server ever redirects to (it is built by [`select`] alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    uri: String,
    kind: RedirectKind,
    /// Whether the request named it (false: the client's only registered URI was used).
    explicit: bool,
}

/// Why an authorization request's redirect URI is not accepted (shown on a page, never
/// redirected to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    /// Absent, and the client does not have exactly one usable registered URI to default to.
    Required,
    /// Not one of the client's registered URIs.
    NotRegistered,
    /// Registered, but not one patgate sends codes to (see [`check_usable`]).
    NotUsable(RedirectUriError),
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::Required => f.write_str("redirect_uri is required"),
            SelectError::NotRegistered => {
                f.write_str("redirect_uri is not registered for this client")
            }
            SelectError::NotUsable(e) => write!(f, "redirect_uri cannot be used: {e}"),
        }
    }
}

/// Selects the redirect URI of an authorization request: `presented` if it matches one of
/// `registered` (see [`matches`]) and is usable; without one, the client's only registered URI
/// if it has exactly one, usable and not a loopback IP one (whose port the request must give).
///
/// # Errors
/// [`SelectError`]: the caller shows it on a page and never redirects.
pub fn select<S: AsRef<str>>(
    presented: Option<&str>,
    registered: &[S],
    policy: RedirectPolicy,
) -> Result<Redirect, SelectError> {
    let Some(presented) = presented else {
        let [only] = registered else {
            return Err(SelectError::Required);
        };
        let only = only.as_ref();
        return match check_usable(only, policy) {
            Ok(RedirectKind::LoopbackIp) | Err(_) => Err(SelectError::Required),
            Ok(kind) => Ok(Redirect {
                uri: only.to_owned(),
                kind,
                explicit: false,
            }),
        };
    };
    if presented.len() > MAX_URI_LEN || !registered.iter().any(|r| matches(r.as_ref(), presented)) {
        return Err(SelectError::NotRegistered);
    }
    let kind = check_usable(presented, policy).map_err(SelectError::NotUsable)?;
    Ok(Redirect {
        uri: presented.to_owned(),
        kind,
        explicit: true,
    })
}

impl Redirect {
    /// The URI the response goes to (with the request's port for a loopback IP).
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    pub fn kind(&self) -> RedirectKind {
        self.kind
    }

    /// Whether the authorization request named it (then the token request may repeat it).
    pub fn explicit(&self) -> bool {
        self.explicit
    }

    /// What the consent page shows as the destination: the host for http(s) URIs (with the
    /// port, which tells two local apps apart), the scheme for a private-use one.
    pub fn display_target(&self) -> String {
        let Ok(u) = Uri::parse(&self.uri) else {
            return self.uri.clone();
        };
        match (u.host(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => format!("{}:", u.scheme()),
        }
    }

    /// The key remembered approvals and grant replacement use for this destination: the URI,
    /// without the port for a loopback IP (an app picks a new port on every run).
    pub fn approval_key(&self) -> String {
        match (self.kind, Uri::parse(&self.uri)) {
            (RedirectKind::LoopbackIp, Ok(u)) => u.without_port(),
            _ => self.uri.clone(),
        }
    }
}

#[cfg(test)]
#[path = "redirect_uri_tests.rs"]
mod tests;
