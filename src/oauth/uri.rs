//! A strict reader of absolute URIs (RFC 3986 section 3), for the URIs the authorization server
//! compares: redirect URIs, resource indicators (RFC 8707) and client ID metadata document URLs.
//!
//! It never normalizes: a URI is split into its components exactly as written, so that callers
//! compare what the client sent byte for byte (OAuth's redirect URI rule is simple string
//! comparison, RFC 9700 section 4.1.3). It refuses rather than repairs whatever two URL parsers
//! could read differently: anything but printable ASCII, the backslash, the characters RFC 3986
//! excludes (double quote, `<`, `>`, `^`, backtick, `{`, `|`, `}`), a `%` not followed by two hex digits, an empty or malformed port, and hosts that
//! are neither DNS names, IPv4 dotted quads nor bracketed IPv6 literals (no percent-encoded or
//! sub-delimiter hosts, which WHATWG and RFC 3986 readers decode differently).

use std::fmt;

/// Longest URI accepted anywhere in the authorization server.
pub const MAX_URI_LEN: usize = 2048;

/// Why a string is not an absolute URI this module accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriError {
    Empty,
    TooLong,
    /// A byte outside printable ASCII, a space, a backslash, a double quote, a backtick, or one
    /// of `<`, `>`, `^`, `{`, `|`, `}`.
    ForbiddenCharacter,
    /// `%` not followed by two hex digits.
    MalformedPercent,
    /// No `scheme:` (a relative reference), or a malformed scheme.
    NoScheme,
    /// `//` without a host, or a host that is not a DNS name, IPv4 or `[IPv6]`.
    BadHost,
    /// An empty, non-numeric, zero, too large or zero-padded port.
    BadPort,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriError::Empty => "is empty",
            UriError::TooLong => "is longer than 2048 characters",
            UriError::ForbiddenCharacter => {
                "must be printable ASCII without spaces, backslashes or \"<>^`{|}"
            }
            UriError::MalformedPercent => "has a malformed percent-encoding",
            UriError::NoScheme => "must be an absolute URI (scheme:...)",
            UriError::BadHost => "must have a valid host (a DNS name, IPv4 or [IPv6] address)",
            UriError::BadPort => "has an invalid port",
        })
    }
}

/// The authority of a URI (`//userinfo@host:port`), as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authority<'a> {
    pub userinfo: Option<&'a str>,
    /// The host as written: a DNS name, IPv4, or `[IPv6]` with its brackets.
    pub host: &'a str,
    pub port: Option<u16>,
}

/// An absolute URI split into its components, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    raw: &'a str,
    scheme: &'a str,
    authority: Option<Authority<'a>>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

impl<'a> Uri<'a> {
    /// Splits `raw` (see the module's rules).
    ///
    /// # Errors
    /// The first rule `raw` breaks.
    pub fn parse(raw: &'a str) -> Result<Self, UriError> {
        if raw.is_empty() {
            return Err(UriError::Empty);
        }
        if raw.len() > MAX_URI_LEN {
            return Err(UriError::TooLong);
        }
        let bytes = raw.as_bytes();
        if bytes
            .iter()
            .any(|&b| !(0x21..0x7f).contains(&b) || b"\\\"<>^`{|}".contains(&b))
        {
            return Err(UriError::ForbiddenCharacter);
        }
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'%'
                && !bytes
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            {
                return Err(UriError::MalformedPercent);
            }
        }
        let colon = raw.find(':').ok_or(UriError::NoScheme)?;
        let scheme = &raw[..colon];
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err(UriError::NoScheme);
        }
        let rest = &raw[colon + 1..];
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (rest, None),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.strip_prefix("//") {
            Some(after) => {
                let end = after.find('/').unwrap_or(after.len());
                (Some(authority(&after[..end])?), &after[end..])
            }
            None => (None, rest),
        };
        Ok(Uri {
            raw,
            scheme,
            authority,
            path,
            query,
            fragment,
        })
    }

    /// The whole URI as given.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The scheme as written (case kept).
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }

    pub fn authority(&self) -> Option<Authority<'a>> {
        self.authority
    }

    /// The host as written, if the URI has an authority.
    pub fn host(&self) -> Option<&'a str> {
        self.authority.map(|a| a.host)
    }

    pub fn port(&self) -> Option<u16> {
        self.authority.and_then(|a| a.port)
    }

    pub fn has_userinfo(&self) -> bool {
        self.authority.is_some_and(|a| a.userinfo.is_some())
    }

    pub fn path(&self) -> &'a str {
        self.path
    }

    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// The fragment, `Some("")` for a bare `#` (which counts as a fragment too).
    pub fn fragment(&self) -> Option<&'a str> {
        self.fragment
    }

    /// Whether a path segment is `.` or `..`, also percent-encoded (`%2e`, `%2E%2e`, ...).
    pub fn has_dot_segment(&self) -> bool {
        self.path.split('/').any(|seg| {
            let decoded = seg.replace("%2e", ".").replace("%2E", ".");
            decoded == "." || decoded == ".."
        })
    }

    /// The URI without its port (`scheme://userinfo@host` + path, query, fragment), for
    /// comparisons in which the port does not count (loopback redirect URIs).
    pub fn without_port(&self) -> String {
        let mut out = String::with_capacity(self.raw.len());
        out.push_str(self.scheme);
        out.push(':');
        if let Some(a) = self.authority {
            out.push_str("//");
            if let Some(u) = a.userinfo {
                out.push_str(u);
                out.push('@');
            }
            out.push_str(a.host);
        }
        out.push_str(self.path);
        if let Some(q) = self.query {
            out.push('?');
            out.push_str(q);
        }
        if let Some(f) = self.fragment {
            out.push('#');
            out.push_str(f);
        }
        out
    }
}

fn authority(s: &str) -> Result<Authority<'_>, UriError> {
    let (userinfo, hostport) = match s.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, s),
    };
    let (host, port) = if hostport.starts_with('[') {
        let close = hostport.find(']').ok_or(UriError::BadHost)?;
        let (h, after) = hostport.split_at(close + 1);
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UriError::BadHost)?),
        };
        let inner = &h[1..h.len() - 1];
        if inner.is_empty()
            || !inner.contains(':')
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(UriError::BadHost);
        }
        (h, port)
    } else {
        let (h, p) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if !is_dns_name_or_ipv4(h) {
            return Err(UriError::BadHost);
        }
        (h, p)
    };
    let port = port.map(parse_port).transpose()?;
    Ok(Authority {
        userinfo,
        host,
        port,
    })
}

/// A port in its canonical decimal form: 1 to 65535, no sign, no leading zero.
fn parse_port(p: &str) -> Result<u16, UriError> {
    if p.is_empty() || p.len() > 5 || p.starts_with('0') || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UriError::BadPort);
    }
    p.parse::<u16>().map_err(|_| UriError::BadPort)
}

/// DNS labels of letters, digits and `-` (not at a label's ends), at most 253 characters, no
/// empty label (so no trailing dot). Dotted-quad IPv4 addresses pass as such labels.
fn is_dns_name_or_ipv4(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether `host` (as written) is an IPv4 loopback literal RFC 8252 names (`127.0.0.1`) or
/// the IPv6 one (`[::1]`). Other spellings (`127.1`, `0x7f.0.0.1`, `[0:0:0:0:0:0:0:1]`,
/// `127.0.0.2`) are not: they would be compared exactly like any host.
pub fn is_loopback_ip_literal(host: &str) -> bool {
    host == "127.0.0.1" || host == "[::1]"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_split_as_written() {
        let u = Uri::parse("https://user@App.Example.com:8443/a/b?x=1&y#frag").expect("ok");
        assert_eq!(u.scheme(), "https");
        assert_eq!(
            u.authority(),
            Some(Authority {
                userinfo: Some("user"),
                host: "App.Example.com",
                port: Some(8443)
            })
        );
        assert!(u.has_userinfo());
        assert_eq!(
            (u.path(), u.query(), u.fragment()),
            ("/a/b", Some("x=1&y"), Some("frag"))
        );
        assert_eq!(
            u.without_port(),
            "https://user@App.Example.com/a/b?x=1&y#frag"
        );
        let u = Uri::parse("com.example.app:/oauth/cb").expect("ok");
        assert_eq!(
            (u.scheme(), u.authority(), u.path()),
            ("com.example.app", None, "/oauth/cb")
        );
        let u = Uri::parse("urn:ietf:params:oauth:x").expect("ok");
        assert_eq!(u.path(), "ietf:params:oauth:x");
        let u = Uri::parse("http://[::1]:5000").expect("ok");
        assert_eq!(
            (u.host(), u.port(), u.path()),
            (Some("[::1]"), Some(5000), "")
        );
        let u = Uri::parse("https://a.example/#").expect("ok");
        assert_eq!(u.fragment(), Some(""), "a bare # is a fragment");
        let u = Uri::parse("https://a.example?q").expect("ok");
        assert_eq!((u.path(), u.query()), ("", Some("q")));
    }

    #[test]
    fn hostile_inputs_are_refused() {
        for (s, e) in [
            ("", UriError::Empty),
            ("https://a.example/ x", UriError::ForbiddenCharacter),
            ("https://a.example/\u{e9}", UriError::ForbiddenCharacter),
            (
                "https://a.example\\@evil.example/",
                UriError::ForbiddenCharacter,
            ),
            ("https://a.example/\t", UriError::ForbiddenCharacter),
            ("https://a.example/\"", UriError::ForbiddenCharacter),
            ("https://a.example/{x}", UriError::ForbiddenCharacter),
            ("https://a.example/%zz", UriError::MalformedPercent),
            ("https://a.example/%4", UriError::MalformedPercent),
            ("https://a.example/%", UriError::MalformedPercent),
            ("/relative/path", UriError::NoScheme),
            ("//a.example/cb", UriError::NoScheme),
            ("1http://a.example/", UriError::NoScheme),
            ("ht_tp://a.example/", UriError::NoScheme),
            ("https:///cb", UriError::BadHost),
            ("https://a.example./cb", UriError::BadHost),
            ("https://a..example/cb", UriError::BadHost),
            ("https://-a.example/cb", UriError::BadHost),
            ("https://a%2eexample/cb", UriError::BadHost),
            ("https://a!b.example/cb", UriError::BadHost),
            ("https://[]/cb", UriError::BadHost),
            ("https://[zz::1]/cb", UriError::BadHost),
            ("https://[::1/cb", UriError::BadHost),
            ("https://[::1]x/cb", UriError::BadHost),
            ("https://a.example:/cb", UriError::BadPort),
            ("https://a.example:0/cb", UriError::BadPort),
            ("https://a.example:080/cb", UriError::BadPort),
            ("https://a.example:65536/cb", UriError::BadPort),
            ("https://a.example:+80/cb", UriError::BadPort),
            ("https://a.example:8o/cb", UriError::BadPort),
            ("https://a.example:1:2/cb", UriError::BadHost),
        ] {
            assert_eq!(Uri::parse(s), Err(e), "{s:?}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_URI_LEN));
        assert_eq!(Uri::parse(&long), Err(UriError::TooLong));
    }

    #[test]
    fn dot_segments_are_seen_also_encoded() {
        for s in [
            "https://a.example/./x",
            "https://a.example/a/../b",
            "https://a.example/a/..",
            "https://a.example/%2e/x",
            "https://a.example/%2E%2e/x",
        ] {
            assert!(Uri::parse(s).expect("parses").has_dot_segment(), "{s}");
        }
        for s in [
            "https://a.example/a.b/..c/x.",
            "https://a.example/.well-known/x",
        ] {
            assert!(!Uri::parse(s).expect("parses").has_dot_segment(), "{s}");
        }
    }

    #[test]
    fn loopback_literals_are_exactly_two() {
        assert!(is_loopback_ip_literal("127.0.0.1"));
        assert!(is_loopback_ip_literal("[::1]"));
        for h in [
            "localhost",
            "127.0.0.2",
            "127.1",
            "[0:0:0:0:0:0:0:1]",
            "[::ffff:127.0.0.1]",
            "127.0.0.1.example",
        ] {
            assert!(!is_loopback_ip_literal(h), "{h}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,80}") {
            if let Ok(u) = Uri::parse(&s) {
                proptest::prop_assert_eq!(u.as_str(), s.as_str());
                if u.port().is_none() {
                    // nothing is lost or normalized: the pieces put back give the input
                    proptest::prop_assert_eq!(u.without_port(), s.clone());
                }
            }
        }

        #[test]
        fn uri_shaped_inputs_never_panic(
            scheme in "(https|http|HTTP|x-y)",
            auth in "[a-zA-Z0-9.:@\\[\\]%-]{0,20}",
            rest in "[a-z/?#%.=&0-9]{0,20}",
        ) {
            let s = format!("{scheme}://{auth}{rest}");
            if let Ok(u) = Uri::parse(&s) {
                let host = u.host().unwrap_or_default();
                proptest::prop_assert!(!host.contains('@') && !host.contains('/'));
            }
        }
    }
}
