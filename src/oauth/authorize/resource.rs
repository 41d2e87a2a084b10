//! Resource indicators (RFC 8707): the one API a grant and its tokens are for.
//!
//! RFC 8707 section 2: "The value of the resource parameter MUST be an absolute URI ... MUST NOT
//! include a fragment component." patgate accepts exactly one per request (a grant, and so every
//! token of it, has one audience; RFC 8707 allows several). Which identifiers exist is the
//! handler's business: a gate route's resource URL (its RFC 9728 `resource`) or an API resource's
//! registered URI; an unknown one is `invalid_target`.
//!
//! Comparison ([`ResourceIndicator::names`]) is exact except where RFC 3986 section 6.2.2-6.2.3
//! says two spellings are the same URI and URL libraries rewrite one into the other: the scheme
//! and host compare without ASCII case, and an empty path equals `/` (`https://api.example`
//! and `https://api.example/`). Port, path, query and trailing slashes after a segment count.

use super::super::uri::{Uri, UriError};
use std::borrow::Cow;
use std::fmt;

/// Why a `resource` value was refused (`invalid_target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceError {
    Missing,
    Malformed(UriError),
    Fragment,
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceError::Missing => {
                f.write_str("resource is required: name the API the token is for (RFC 8707)")
            }
            ResourceError::Malformed(e) => write!(f, "resource {e}"),
            ResourceError::Fragment => f.write_str("resource must not have a fragment"),
        }
    }
}

/// A syntactically valid `resource` value, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceIndicator<'a>(Cow<'a, str>);

impl<'a> ResourceIndicator<'a> {
    /// # Errors
    /// [`ResourceError`] for a relative or malformed URI or one with a fragment.
    pub fn parse(value: Cow<'a, str>) -> Result<Self, ResourceError> {
        let u = Uri::parse(&value).map_err(ResourceError::Malformed)?;
        if u.fragment().is_some() {
            return Err(ResourceError::Fragment);
        }
        Ok(ResourceIndicator(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_owned(self) -> ResourceIndicator<'static> {
        ResourceIndicator(Cow::Owned(self.0.into_owned()))
    }

    /// Whether this indicator names `identifier` (a resource identifier patgate publishes).
    pub fn names(&self, identifier: &str) -> bool {
        match (comparable(&self.0), comparable(identifier)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

/// The longest URI an API resource may register as its `resource_uri`.
pub const MAX_REGISTERED_URI: usize = 512;

/// Whether `uri` may be registered as an API resource's `resource_uri`: an absolute `https` URL
/// (with `http_loopback`, also `http` to `127.0.0.1`, `[::1]` or `localhost`: development only)
/// with a host and a path, without userinfo, query or fragment, its scheme and host in lower
/// case. Written this one way, two registered URIs that differ are never the same resource
/// under [`ResourceIndicator::names`], so the unique index keeps one API per identifier.
///
/// # Errors
/// A sentence for the administrator.
pub fn check_registered_uri(uri: &str, http_loopback: bool) -> Result<(), String> {
    const WANT: &str = "resource_uri must be an absolute https URL with a path, in lower case, \
                        without user@, query or fragment";
    if uri.len() > MAX_REGISTERED_URI {
        return Err(format!(
            "resource_uri is longer than {MAX_REGISTERED_URI} characters"
        ));
    }
    let u = Uri::parse(uri).map_err(|_| WANT.to_owned())?;
    let Some(host) = u.host().filter(|h| !h.is_empty()) else {
        return Err(WANT.into());
    };
    let loopback = super::super::uri::is_loopback_ip_literal(host) || host == "localhost";
    let scheme_ok = match u.scheme() {
        "https" => true,
        "http" => http_loopback && loopback,
        _ => false,
    };
    if !scheme_ok {
        return Err(if u.scheme() == "http" && loopback {
            "resource_uri: http is allowed only in development (CIMD_ALLOW_HTTP_LOOPBACK)".into()
        } else {
            WANT.into()
        });
    }
    let plain = !u.has_userinfo()
        && u.query().is_none()
        && u.fragment().is_none()
        && u.path().starts_with('/')
        && !u.has_dot_segment()
        && host == host.to_ascii_lowercase();
    if plain {
        Ok(())
    } else {
        Err(WANT.into())
    }
}

/// The URI with scheme and host lowercased and an empty path after an authority written as
/// `/`; `None` if it is not a URI.
fn comparable(s: &str) -> Option<String> {
    let u = Uri::parse(s).ok()?;
    let mut out = u.scheme().to_ascii_lowercase();
    out.push(':');
    if let Some(a) = u.authority() {
        out.push_str("//");
        if let Some(ui) = a.userinfo {
            out.push_str(ui);
            out.push('@');
        }
        out.push_str(&a.host.to_ascii_lowercase());
        if let Some(p) = a.port {
            out.push(':');
            out.push_str(&p.to_string());
        }
        out.push_str(if u.path().is_empty() { "/" } else { u.path() });
    } else {
        out.push_str(u.path());
    }
    if let Some(q) = u.query() {
        out.push('?');
        out.push_str(q);
    }
    if u.fragment().is_some() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(s: &str) -> ResourceIndicator<'_> {
        ResourceIndicator::parse(Cow::Borrowed(s)).expect("valid")
    }

    #[test]
    fn absolute_uris_without_fragment() {
        for s in [
            "https://api.example/mcp",
            "http://localhost:8787/gw/demo/",
            "urn:example:api",
        ] {
            assert_eq!(ind(s).as_str(), s);
        }
        for (s, e) in [
            ("https://api.example/mcp#x", ResourceError::Fragment),
            ("https://api.example/#", ResourceError::Fragment),
            ("/mcp", ResourceError::Malformed(UriError::NoScheme)),
            ("demo_api", ResourceError::Malformed(UriError::NoScheme)),
            (
                "https://api.example/a b",
                ResourceError::Malformed(UriError::ForbiddenCharacter),
            ),
            ("", ResourceError::Malformed(UriError::Empty)),
        ] {
            assert_eq!(ResourceIndicator::parse(Cow::Borrowed(s)), Err(e), "{s}");
        }
    }

    #[test]
    fn names_folds_only_scheme_host_and_the_empty_path() {
        let id = "https://api.example/";
        for same in [
            "https://api.example",
            "HTTPS://API.example/",
            "https://Api.Example",
        ] {
            assert!(ind(same).names(id), "{same}");
        }
        let route = "http://localhost:8787/gw/demo/";
        assert!(ind("http://LOCALHOST:8787/gw/demo/").names(route));
        for other in [
            "http://localhost:8787/gw/demo",
            "http://localhost:8787/gw/Demo/",
            "http://localhost:8788/gw/demo/",
            "http://localhost/gw/demo/",
            "https://localhost:8787/gw/demo/",
            "http://localhost:8787/gw/demo/?x",
            "http://localhost:8787/gw/demo/x",
            "http://localhost:8787/gw/",
            "http://user@localhost:8787/gw/demo/",
            "http://localhost:8787/gw/%64emo/",
        ] {
            assert!(!ind(other).names(route), "{other}");
        }
        assert!(!ind(route).names("not a uri"));
    }

    #[test]
    fn registered_uris_are_https_urls_written_one_way() {
        for ok in [
            "https://api.example/",
            "https://api.example/v1",
            "https://api.example:8443/mcp/",
            "https://[2001:db8::1]/x",
        ] {
            assert_eq!(check_registered_uri(ok, false), Ok(()), "{ok}");
        }
        for dev in [
            "http://127.0.0.1:9100/api",
            "http://[::1]:9100/api",
            "http://localhost:9100/",
        ] {
            assert_eq!(check_registered_uri(dev, true), Ok(()), "{dev}");
            let e = check_registered_uri(dev, false).expect_err(dev);
            assert!(e.contains("only in development"), "{e}");
        }
        let long = format!("https://api.example/{}", "a".repeat(MAX_REGISTERED_URI));
        for bad in [
            "",
            "api.example/v1",
            "/v1",
            "urn:example:api",
            "https://api.example",
            "https://API.example/v1",
            "HTTPS://api.example/v1",
            "https://u@api.example/v1",
            "https://api.example/v1?x=1",
            "https://api.example/v1#f",
            "https://api.example/a/../b",
            "https:///v1",
            "http://api.example/v1",
            "http://10.0.0.1/v1",
            "ftp://api.example/v1",
            "https://api.example/a b",
            "https://api.example/\u{202e}",
            long.as_str(),
        ] {
            assert!(check_registered_uri(bad, true).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_names_itself(s in "\\PC{0,60}") {
            if let Ok(r) = ResourceIndicator::parse(Cow::Borrowed(&s)) {
                proptest::prop_assert!(r.names(&s));
            }
        }
    }
}
