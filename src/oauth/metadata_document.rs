//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document, the MCP
//! authorization specification's preferred registration): a `client_id` that is an `https` URL
//! names a JSON document describing the client, which the authorization server fetches.
//!
//! This module is the pure half: which `client_id`s are such URLs ([`check_client_id_url`]),
//! whether a fetched document is acceptable ([`validate_document`]), and how long to cache it
//! ([`cache_until`]). The fetch itself (https only, public addresses only through the network
//! guard, at most [`MAX_DOCUMENT_BYTES`], a short timeout, redirects not followed) is the
//! runtime's; it hands the body and the caching headers here.
//!
//! A document is accepted only if it is a JSON object of at most [`MAX_DOCUMENT_BYTES`] whose
//! `client_id` equals the URL exactly (simple string comparison, no normalization), with a
//! `client_name` and `redirect_uris` (see [`super::client_metadata`]). The client is public:
//! `token_endpoint_auth_method` absent or `none`. Shared secrets are refused (the document is
//! public: a `client_secret` member, or a `client_secret_*` method), and so is
//! `private_key_jwt`: patgate does not verify client assertions, and treating such a client as
//! public would silently drop the key binding it asked for, so it is told so instead.

use super::authorize::redirect_uri::RedirectPolicy;
use super::client_metadata::{parse_raw, validate, ClientMetadata, MetadataError};
use super::uri::{is_loopback_ip_literal, Uri};
use std::fmt;

/// Largest document accepted (the MCP specification's recommendation: 5 KB).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// Why a `client_id` is not a metadata document URL patgate fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdUrlError {
    Malformed,
    NotHttps,
    Userinfo,
    Fragment,
    NoPath,
    DotSegment,
}

impl fmt::Display for ClientIdUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientIdUrlError::Malformed => "the client_id URL is malformed",
            ClientIdUrlError::NotHttps => "the client_id URL must use https",
            ClientIdUrlError::Userinfo => "the client_id URL must not contain user@",
            ClientIdUrlError::Fragment => "the client_id URL must not have a fragment",
            ClientIdUrlError::NoPath => "the client_id URL must have a path",
            ClientIdUrlError::DotSegment => "the client_id URL must not contain . or .. segments",
        })
    }
}

/// Whether a `client_id` should be resolved as a metadata document: it starts with `https://`
/// (or, with `allow_http_loopback`, `http://`). Client ids of other kinds (administrator-made
/// ids, dynamic registrations' `pgd_` ids) cannot contain `/`, so the shapes never overlap.
pub fn is_metadata_url(client_id: &str, allow_http_loopback: bool) -> bool {
    client_id.starts_with("https://") || (allow_http_loopback && client_id.starts_with("http://"))
}

/// The client identifier URL rules: `https`, a host, a path other than `/`, no userinfo, no
/// fragment, no `.` or `..` segment (also percent-encoded); a port and a query are allowed.
/// `allow_http_loopback` (a development setting, never on in production) also accepts
/// `http://127.0.0.1` and `http://[::1]` URLs, so that local tests can serve documents.
///
/// # Errors
/// The first rule the URL breaks.
pub fn check_client_id_url(
    client_id: &str,
    allow_http_loopback: bool,
) -> Result<Uri<'_>, ClientIdUrlError> {
    let u = Uri::parse(client_id).map_err(|_| ClientIdUrlError::Malformed)?;
    let host = u.host().ok_or(ClientIdUrlError::Malformed)?;
    let scheme_ok = u.scheme() == "https"
        || (allow_http_loopback && u.scheme() == "http" && is_loopback_ip_literal(host));
    if !scheme_ok {
        return Err(ClientIdUrlError::NotHttps);
    }
    if u.has_userinfo() {
        return Err(ClientIdUrlError::Userinfo);
    }
    if u.fragment().is_some() {
        return Err(ClientIdUrlError::Fragment);
    }
    if u.path().len() < 2 {
        return Err(ClientIdUrlError::NoPath);
    }
    if u.has_dot_segment() {
        return Err(ClientIdUrlError::DotSegment);
    }
    Ok(u)
}

/// A metadata document URL patgate may fetch: it follows the client identifier URL rules
/// ([`check_client_id_url`]) and the network guard accepted it
/// ([`crate::net_guard::public_https_url`], strict: public DNS names only, no numeric host, no
/// private-use name). The only way to make one is [`fetchable_url`], and the fetcher takes
/// nothing else, so no code path fetches an unchecked URL.
///
/// The development setting (`allow_http_loopback`) adds exactly one thing: `http` to
/// `127.0.0.1` or `[::1]`. An `https` URL is always held to the strict guard, so a document
/// on `https://10.0.0.1/...` or `https://localhost/...` is refused in every setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchableUrl(String);

impl FetchableUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A URL the caller vouches for, in tests of fetchers only.
    #[cfg(any(test, feature = "tools"))]
    pub fn for_tests(url: &str) -> Self {
        FetchableUrl(url.to_owned())
    }
}

/// Why a `client_id` URL is not fetched. `Display` is a sentence for the page (it never echoes
/// the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnfetchableUrl {
    Rule(ClientIdUrlError),
    Guard(crate::net_guard::Refusal),
}

impl fmt::Display for UnfetchableUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnfetchableUrl::Rule(e) => e.fmt(f),
            UnfetchableUrl::Guard(e) => write!(f, "the client_id URL is refused: {e}"),
        }
    }
}

/// Checks `client_id` for fetching: the client identifier URL rules, then the network guard.
///
/// # Errors
/// The first check that refuses it.
pub fn fetchable_url(
    client_id: &str,
    allow_http_loopback: bool,
) -> Result<FetchableUrl, UnfetchableUrl> {
    let u = check_client_id_url(client_id, allow_http_loopback).map_err(UnfetchableUrl::Rule)?;
    if u.scheme() != "https" {
        // Only the development setting gets here, and only for a loopback IP literal.
        return Ok(FetchableUrl(client_id.to_owned()));
    }
    crate::net_guard::public_https_url(client_id, false).map_err(UnfetchableUrl::Guard)?;
    Ok(FetchableUrl(client_id.to_owned()))
}

/// Why a fetched document was refused (the authorization endpoint shows it on a page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentError {
    TooLarge,
    Metadata(MetadataError),
    ClientIdMismatch,
    Secret,
    AuthMethod(String),
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocumentError::TooLarge => write!(f, "the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"),
            DocumentError::Metadata(e) => write!(f, "the client metadata document is invalid: {e}"),
            DocumentError::ClientIdMismatch => f.write_str(
                "the client metadata document's client_id is not the URL it was fetched from",
            ),
            DocumentError::Secret => {
                f.write_str("a client metadata document must not contain a client secret")
            }
            DocumentError::AuthMethod(m) => write!(
                f,
                "token_endpoint_auth_method {m} is not supported for metadata document clients (only none)"
            ),
        }
    }
}

/// Validates the document fetched from `url` (already checked by [`check_client_id_url`]).
///
/// # Errors
/// [`DocumentError`]: the client is unknown for this request (shown on a page).
pub fn validate_document(
    url: &str,
    body: &[u8],
    policy: RedirectPolicy,
) -> Result<ClientMetadata, DocumentError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge);
    }
    let raw = parse_raw(body).map_err(DocumentError::Metadata)?;
    if raw.client_id.as_deref() != Some(url) {
        return Err(DocumentError::ClientIdMismatch);
    }
    if raw.client_secret.is_some() || raw.client_secret_expires_at.is_some() {
        return Err(DocumentError::Secret);
    }
    match raw.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            let shown: String = other.chars().take(40).filter(|c| !c.is_control()).collect();
            return Err(DocumentError::AuthMethod(shown));
        }
    }
    validate(raw, policy, true).map_err(DocumentError::Metadata)
}

/// The caching headers of a fetched document, as received (absent = `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheHeaders<'a> {
    pub cache_control: Option<&'a str>,
    pub expires: Option<&'a str>,
    pub date: Option<&'a str>,
    pub age: Option<&'a str>,
}

/// How long a document may be cached, in seconds: the server's word within these bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheBounds {
    /// At least this long, whatever the headers say (`no-store` included): the document must
    /// outlive one authorization (consent and code exchange), and a client that forbids caching
    /// must not make patgate fetch it on every request.
    pub min: i64,
    pub max: i64,
    /// Without freshness information.
    pub default: i64,
}

impl Default for CacheBounds {
    fn default() -> Self {
        CacheBounds {
            min: 300,
            max: 86_400,
            default: 3_600,
        }
    }
}

/// Until when a document fetched at `now` may be used without fetching it again (RFC 9111
/// section 4.2, as a shared cache): `s-maxage`, else `max-age`, else `Expires - Date`, minus
/// `Age`; `no-store`, `no-cache` and `private` count as 0; an invalid `Expires` as already
/// expired; all clamped to `bounds`.
pub fn cache_until(headers: &CacheHeaders<'_>, now: i64, bounds: CacheBounds) -> i64 {
    let lifetime = freshness(headers, now).map_or(bounds.default, |f| {
        let age = headers
            .age
            .and_then(|a| a.trim().parse::<i64>().ok())
            .unwrap_or(0)
            .max(0);
        f.saturating_sub(age)
    });
    now.saturating_add(lifetime.clamp(bounds.min, bounds.max.max(bounds.min)))
}

/// The freshness lifetime the headers give, `None` when they give none.
fn freshness(h: &CacheHeaders<'_>, now: i64) -> Option<i64> {
    if let Some(cc) = h.cache_control {
        let mut max_age = None;
        let mut s_maxage = None;
        for directive in cc.split(',') {
            let (name, value) = match directive.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            let seconds = || value.and_then(|v| v.parse::<i64>().ok()).map(|s| s.max(0));
            match name.to_ascii_lowercase().as_str() {
                "no-store" | "no-cache" | "private" => return Some(0),
                "max-age" => max_age = max_age.or_else(seconds),
                "s-maxage" => s_maxage = s_maxage.or_else(seconds),
                _ => {}
            }
        }
        if let Some(s) = s_maxage.or(max_age) {
            return Some(s);
        }
    }
    let expires = h.expires?;
    let Some(expires) = http_date(expires) else {
        return Some(0);
    };
    let date = h.date.and_then(http_date).unwrap_or(now);
    Some((expires - date).max(0))
}

/// An HTTP date in its IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`), as Unix seconds.
fn http_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.timestamp())
}

#[cfg(test)]
#[path = "metadata_document_tests.rs"]
mod tests;
