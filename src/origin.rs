//! Where a request came from, as Cloudflare reports it: the client IP (`CF-Connecting-IP`), the
//! Cloudflare location that received it (`request.cf.colo`, an IATA airport code) and the
//! client's country (`request.cf.country`, ISO 3166-1 alpha-2, or `T1` for Tor, `XX` unknown).
//!
//! Only reuse detection needs it, so the runtime reads it lazily (reading `request.cf` costs CPU
//! on every request otherwise). Every value is checked here, whoever supplied it: anything that
//! does not look like what Cloudflare sends is dropped (`None`), never stored or logged as is.

use serde::Serialize;

/// Longest IP kept (an IPv6 address is at most 45 characters in text).
const MAX_IP_CHARS: usize = 45;
/// Longest colo code kept (IATA codes are 3 letters; some are longer internally).
const MAX_COLO_CHARS: usize = 8;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientOrigin {
    pub ip: Option<String>,
    pub colo: Option<String>,
    pub country: Option<String>,
}

impl ClientOrigin {
    /// Keeps each value only if it has the shape Cloudflare gives it.
    pub fn new(ip: Option<&str>, colo: Option<&str>, country: Option<&str>) -> Self {
        ClientOrigin {
            ip: ip.and_then(checked_ip),
            colo: colo.and_then(|c| code(c, 2..=MAX_COLO_CHARS)),
            country: country.and_then(|c| code(c, 2..=2)),
        }
    }
}

/// An IPv4 or IPv6 address in text form (what `CF-Connecting-IP` carries).
fn checked_ip(ip: &str) -> Option<String> {
    let ip = ip.trim();
    (!ip.is_empty() && ip.len() <= MAX_IP_CHARS && ip.parse::<std::net::IpAddr>().is_ok())
        .then(|| ip.to_owned())
}

/// Uppercase ASCII letters and digits, of a length in `len`.
fn code(c: &str, len: std::ops::RangeInclusive<usize>) -> Option<String> {
    (len.contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
    .then(|| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_cloudflare_sends() {
        let o = ClientOrigin::new(Some("203.0.113.7"), Some("DFW"), Some("US"));
        assert_eq!(o.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(o.colo.as_deref(), Some("DFW"));
        assert_eq!(o.country.as_deref(), Some("US"));
        let o = ClientOrigin::new(Some("2001:db8::1"), Some("FRA"), Some("T1"));
        assert_eq!(o.ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(o.country.as_deref(), Some("T1"));
    }

    #[test]
    fn drops_anything_else() {
        let long_ip = "1".repeat(100);
        for (ip, colo, country) in [
            ("", "", ""),
            ("unknown", "dfw", "us"),
            ("203.0.113.7, 10.0.0.1", "DFW\n", "USA"),
            ("<script>", "D F W", "U"),
            (long_ip.as_str(), "ABCDEFGHIJ", "ÜS"),
            ("1.2.3.4\n{\"event\":\"x\"}", "\"DFW\"", "U\u{0}"),
        ] {
            assert_eq!(
                ClientOrigin::new(Some(ip), Some(colo), Some(country)),
                ClientOrigin::default(),
                "{ip:?} {colo:?} {country:?}"
            );
        }
        assert_eq!(ClientOrigin::new(None, None, None), ClientOrigin::default());
    }
}
