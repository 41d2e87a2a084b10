//! Hosts and authorities as gate routes and requests name them: the syntax of a host name with
//! an optional port, the parts of an absolute URL, the host name of an authority.

/// Longest accepted `host[:port]`.
const MAX_HOST_LEN: usize = 253 + 6;

/// A host name (RFC 1123 labels) with an optional port, lowercased. `None` if invalid.
pub fn normalize_host(h: &str) -> Option<String> {
    if h.is_empty() || h.len() > MAX_HOST_LEN {
        return None;
    }
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !p.parse::<u32>().is_ok_and(|n| (1..=65_535).contains(&n)) {
            return None;
        }
    }
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let labels_ok = name.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    labels_ok.then(|| h.to_ascii_lowercase())
}

/// The parts of an absolute http(s) URL: (scheme, authority, path).
pub fn split_absolute(u: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = u.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some((scheme, authority, path))
}

/// The host name of an authority (`host[:port]`), without the port, lowercase.
pub fn host_name(authority: &str) -> String {
    let name = if authority.starts_with('[') {
        authority.find(']').map_or(authority, |i| &authority[..=i])
    } else {
        authority.rsplit_once(':').map_or(authority, |(n, _)| n)
    };
    name.to_ascii_lowercase()
}

/// The authority (`host[:port]`) of an absolute URL such as `ISSUER` or a request URL.
pub fn authority(url: &str) -> &str {
    split_absolute(url).map_or("", |(_, a, _)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parts() {
        assert_eq!(authority("http://127.0.0.1:8787/x"), "127.0.0.1:8787");
        assert_eq!(authority("https://h"), "h");
        assert_eq!(host_name("H:1"), "h");
        assert_eq!(host_name("[::1]:80"), "[::1]");
    }
}
