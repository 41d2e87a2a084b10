//! Where the server may send a request of its own: a guard for URLs that someone else registered
//! (webhook endpoints today; client metadata documents of the authorization server next).
//!
//! [`public_https_url`] accepts an absolute `https` URL whose host is a public DNS name and
//! refuses everything that would make the server reach into its own or a private network:
//!
//! - loopback, private (RFC 1918, CGNAT `100.64.0.0/10`, IPv6 ULA `fc00::/7`), link-local
//!   (`169.254.0.0/16`, `fe80::/10`), unspecified, multicast, broadcast and reserved addresses;
//! - **every numeric host**, in any form a URL parser accepts (WHATWG URL host parsing): dotted
//!   decimal, a single number (`2130706433`), hexadecimal (`0x7f000001`), octal (`0177.0.0.1`),
//!   short forms (`127.1`), bracketed IPv6 including IPv4-mapped (`[::ffff:127.0.0.1]`). A
//!   public address is refused too: a registered endpoint is a name;
//! - `localhost`, `*.localhost` and names reserved for private networks (`*.local`,
//!   `*.internal`, `*.home.arpa`, `*.localdomain`), and single-label names (`intranet`);
//! - credentials, fragments, backslashes, percent-encoded or non-ASCII hosts, spaces or control
//!   characters anywhere, ports outside 1 to 65535, and URLs over [`MAX_URL_LEN`].
//!
//! `allow_local` (a local development flag, never set in production) allows any well-formed
//! host over `https`, and plain `http` to exactly `localhost`, `127.0.0.1` or `[::1]`.
//!
//! The guard reads the URL only: it does not resolve names, so a public name that resolves to
//! a private address is not caught here (the runtime's outbound `fetch` runs on Cloudflare's
//! network, outside the operator's private one).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A URL the guard accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedUrl {
    /// `https`, or `http` (only with `allow_local`, to the local machine).
    pub scheme: &'static str,
    /// The host, lowercase: a DNS name, or (only with `allow_local`) an address, IPv6 bracketed.
    pub host: String,
    pub port: Option<u16>,
    /// The host is the local machine or a private network (only with `allow_local`).
    pub local: bool,
}

/// What kind of special address a numeric host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Loopback,
    Private,
    LinkLocal,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
    /// A public address: refused as a numeric host all the same.
    Public,
}

impl AddressKind {
    fn as_str(self) -> &'static str {
        match self {
            AddressKind::Loopback => "a loopback address",
            AddressKind::Private => "a private address",
            AddressKind::LinkLocal => "a link-local address",
            AddressKind::Unspecified => "the unspecified address",
            AddressKind::Multicast => "a multicast address",
            AddressKind::Broadcast => "the broadcast address",
            AddressKind::Reserved => "a reserved address",
            AddressKind::Public => "a numeric address",
        }
    }
}

/// Why a URL was refused. `Display` is a sentence for an error answer (it never echoes the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLong,
    NotPrintableAscii,
    Fragment,
    NotAbsolute,
    Credentials,
    Backslash,
    BadHost,
    BadPort,
    NotHttps,
    /// Plain `http` with `allow_local`, but not to the local machine.
    HttpNotLocal,
    /// A numeric host (any form), and what address it is (`IPv4` for mapped/embedded forms).
    Numeric(AddressKind, std::net::IpAddr),
    /// `localhost`, `*.localhost` or a name reserved for private networks.
    LocalName,
    /// A name without a dot.
    SingleLabel,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooLong => write!(f, "url must be at most {MAX_URL_LEN} characters"),
            Refusal::NotPrintableAscii => f.write_str("url must be printable ASCII without spaces"),
            Refusal::Fragment => f.write_str("url must not have a fragment"),
            Refusal::NotAbsolute => f.write_str("url must be an absolute URL"),
            Refusal::Credentials => f.write_str("url must not contain credentials"),
            Refusal::Backslash => f.write_str("url must not contain backslashes"),
            Refusal::BadHost => f.write_str("url must have a valid host name"),
            Refusal::BadPort => f.write_str("url must have a valid port (1 to 65535)"),
            Refusal::NotHttps => f.write_str("url must use https"),
            Refusal::HttpNotLocal => f.write_str(
                "url must use https (plain http only to localhost, 127.0.0.1 or [::1] in local development)",
            ),
            Refusal::Numeric(kind, ip) => write!(
                f,
                "url must name a public host, not {} ({ip})",
                kind.as_str()
            ),
            Refusal::LocalName => {
                f.write_str("url must name a public host, not localhost or a private-use name")
            }
            Refusal::SingleLabel => {
                f.write_str("url must name a public host (a fully qualified domain name)")
            }
        }
    }
}

/// Checks `url` (see the module documentation): an absolute `https` URL to a public DNS name,
/// or, with `allow_local`, to any well-formed host (plain `http` to the local machine only).
pub fn public_https_url(url: &str, allow_local: bool) -> Result<GuardedUrl, Refusal> {
    if url.len() > MAX_URL_LEN {
        return Err(Refusal::TooLong);
    }
    if url.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err(Refusal::NotPrintableAscii);
    }
    if url.contains('#') {
        return Err(Refusal::Fragment);
    }
    if url.contains('\\') {
        return Err(Refusal::Backslash);
    }
    let (scheme, rest) = url.split_once("://").ok_or(Refusal::NotAbsolute)?;
    let scheme = match scheme {
        "https" => "https",
        "http" => "http",
        _ if scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            return Err(Refusal::NotHttps)
        }
        _ => return Err(Refusal::NotAbsolute),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err(Refusal::Credentials);
    }
    let (host, port) = split_authority(authority)?;
    let host = host.to_ascii_lowercase();
    let kind = classify(&host)?;
    let local = !matches!(kind, HostKind::Public);
    if scheme == "http" {
        let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
        if !(allow_local && loopback) {
            return Err(if allow_local {
                Refusal::HttpNotLocal
            } else {
                Refusal::NotHttps
            });
        }
    }
    if !allow_local {
        match kind {
            HostKind::Public => {}
            HostKind::Address(k, ip) => return Err(Refusal::Numeric(k, ip)),
            HostKind::LocalName => return Err(Refusal::LocalName),
            HostKind::SingleLabel => return Err(Refusal::SingleLabel),
        }
    }
    Ok(GuardedUrl {
        scheme,
        host,
        port,
        local,
    })
}

/// Splits `host[:port]` (the host may be a bracketed IPv6 address).
fn split_authority(authority: &str) -> Result<(&str, Option<u16>), Refusal> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']').ok_or(Refusal::BadHost)?;
        let (host, after) = authority.split_at(close + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or(Refusal::BadHost)?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Refusal::BadPort);
            }
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(Refusal::BadPort),
            }
        }
    };
    if host.is_empty() {
        return Err(Refusal::BadHost);
    }
    Ok((host, port))
}

/// What a host is.
enum HostKind {
    /// A DNS name with at least two labels, not reserved.
    Public,
    Address(AddressKind, std::net::IpAddr),
    LocalName,
    SingleLabel,
}

/// Names reserved for the local machine or private networks (RFC 6761, RFC 6762, RFC 8375,
/// ICANN's `.internal`, and the common `.localdomain`).
const LOCAL_SUFFIXES: [&str; 5] = [
    ".localhost",
    ".local",
    ".internal",
    ".home.arpa",
    ".localdomain",
];

/// Classifies a lowercase host.
fn classify(host: &str) -> Result<HostKind, Refusal> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(Refusal::BadHost)?;
        // Only hex digits, colons and dots (no zone id: `%` is refused).
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(Refusal::BadHost);
        }
        let ip: Ipv6Addr = inner.parse().map_err(|_| Refusal::BadHost)?;
        let (kind, shown) = classify_v6(ip);
        return Ok(HostKind::Address(kind, shown));
    }
    if host.len() > 253 {
        return Err(Refusal::BadHost);
    }
    let labels_ok = host.split('.').all(|l| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Err(Refusal::BadHost);
    }
    // WHATWG URL parsing: a host whose last label is a number is an IPv4 address (or invalid).
    let last = host.rsplit('.').next().unwrap_or("");
    if is_numeric_label(last) {
        let ip = parse_ipv4(host).ok_or(Refusal::BadHost)?;
        return Ok(HostKind::Address(classify_v4(ip), ip.into()));
    }
    if host == "localhost" || LOCAL_SUFFIXES.iter().any(|s| host.ends_with(s)) {
        return Ok(HostKind::LocalName);
    }
    if !host.contains('.') {
        return Ok(HostKind::SingleLabel);
    }
    Ok(HostKind::Public)
}

/// The WHATWG "ends in a number" test for the last label: decimal digits, or `0x` followed by
/// hex digits (possibly none).
fn is_numeric_label(label: &str) -> bool {
    if let Some(hex) = label.strip_prefix("0x") {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit())
}

/// One part of a WHATWG IPv4 host: `0x..` hexadecimal, `0..` octal, else decimal.
fn parse_ipv4_part(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = part.strip_prefix("0x") {
        (h, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return Some(0);
    }
    // Longer than any address part could be: overflow (refused), not a wrap.
    if digits.len() > 32 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// The WHATWG IPv4 parser (lowercase input, no trailing dot): 1 to 4 parts; every part but
/// the last below 256, the last filling the remaining bytes.
pub fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let nums: Vec<u64> = parts
        .iter()
        .map(|p| parse_ipv4_part(p))
        .collect::<Option<_>>()?;
    let (last, init) = nums.split_last()?;
    if init.iter().any(|n| *n > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - init.len() as u32);
    if *last >= 1u64 << rest_bits {
        return None;
    }
    let mut v: u64 = *last;
    for (i, n) in init.iter().enumerate() {
        v += n << (8 * (3 - i as u32));
    }
    u32::try_from(v).ok().map(Ipv4Addr::from)
}

fn classify_v4(ip: Ipv4Addr) -> AddressKind {
    let o = ip.octets();
    match o {
        [0, ..] => AddressKind::Unspecified,
        [127, ..] => AddressKind::Loopback,
        [10, ..] | [192, 168, ..] => AddressKind::Private,
        [172, b, ..] if (16..32).contains(&b) => AddressKind::Private,
        // CGNAT, RFC 6598
        [100, b, ..] if (64..128).contains(&b) => AddressKind::Private,
        [169, 254, ..] => AddressKind::LinkLocal,
        [255, 255, 255, 255] => AddressKind::Broadcast,
        [a, ..] if (224..240).contains(&a) => AddressKind::Multicast,
        [a, ..] if a >= 240 => AddressKind::Reserved,
        // IETF protocol assignments, documentation, benchmarking
        [192, 0, 0 | 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => AddressKind::Reserved,
        [198, b, ..] if b == 18 || b == 19 => AddressKind::Reserved,
        _ => AddressKind::Public,
    }
}

/// The kind of an IPv6 address, and the address to show: forms that embed an IPv4 address
/// (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`)
/// are classified by that address.
fn classify_v6(ip: Ipv6Addr) -> (AddressKind, std::net::IpAddr) {
    let s = ip.segments();
    if ip.is_unspecified() {
        return (AddressKind::Unspecified, ip.into());
    }
    if ip.is_loopback() {
        return (AddressKind::Loopback, ip.into());
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let v4 = match s {
        [0, 0, 0, 0, 0, 0xffff | 0, hi, lo]
        | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo]
        | [0x2002, hi, lo, ..] => Some(embedded(hi, lo)),
        _ => None,
    };
    if let Some(v4) = v4 {
        return (classify_v4(v4), v4.into());
    }
    let kind = match s[0] {
        x if x & 0xfe00 == 0xfc00 => AddressKind::Private,
        // fec0::/10, deprecated site-local: private all the same
        x if x & 0xffc0 == 0xfec0 => AddressKind::Private,
        x if x & 0xffc0 == 0xfe80 => AddressKind::LinkLocal,
        x if x & 0xff00 == 0xff00 => AddressKind::Multicast,
        0x2001 if s[1] == 0x0db8 => AddressKind::Reserved,
        _ => AddressKind::Public,
    };
    (kind, ip.into())
}

#[cfg(test)]
mod tests;
