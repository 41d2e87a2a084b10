//! Rules for settings that the runtime checks when it loads its configuration
//! (`src/edge/config.rs`, and the `LastUsed` Durable Object): pure, so host tests pin them. A
//! setting that breaks one is a configuration error like any other invalid setting: the Worker
//! answers every request with `500 server_error` and logs the cause, and never runs half
//! configured.

/// `LAST_USED_FLUSH_SECONDS` when unset: the last-used Durable Object writes to D1 this long
/// after a use.
pub const DEFAULT_LAST_USED_FLUSH_SECS: i64 = 10;
/// The longest `LAST_USED_FLUSH_SECONDS` (the lag of `last_used_at` in D1 stays bounded).
pub const MAX_LAST_USED_FLUSH_SECS: i64 = 3600;

/// `LAST_USED_FLUSH_SECONDS` (unset or empty: the default), 0 to [`MAX_LAST_USED_FLUSH_SECS`].
/// The Worker checks it with the rest of its configuration; the Durable Object reads it with this
/// same function and refuses to record (an error, never a silent default) if it is invalid.
pub fn last_used_flush_secs(raw: Option<&str>) -> Result<i64, String> {
    match raw.filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_LAST_USED_FLUSH_SECS),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=MAX_LAST_USED_FLUSH_SECS).contains(n))
            .ok_or_else(|| {
                format!("LAST_USED_FLUSH_SECONDS must be an integer from 0 to {MAX_LAST_USED_FLUSH_SECS}")
            }),
    }
}

/// `DEV_SIGN_IN="true"` turns on the token page's local sign-in form (any user id, no password).
/// It is for a Worker on this machine only: with an issuer that is not a loopback URL (a deployed
/// Worker, or one reachable from the network) it is a configuration error, so the form cannot be
/// switched on in production by a stray variable.
pub fn check_dev_sign_in(issuer: &str, dev_sign_in: bool) -> Result<(), String> {
    if !dev_sign_in || is_loopback_url(issuer) {
        return Ok(());
    }
    Err(format!(
        "DEV_SIGN_IN is for local development only: ISSUER {issuer:?} is not a loopback URL \
         (http://127.0.0.1, http://localhost or http://[::1], any port); unset DEV_SIGN_IN"
    ))
}

/// `CIMD_ALLOW_HTTP_LOOPBACK="true"` lets client ID metadata documents be fetched from
/// `http://127.0.0.1` and `http://[::1]` (local MCP clients and tests). Like `DEV_SIGN_IN`, it is
/// for a Worker on this machine only: with an issuer that is not a loopback URL it is a
/// configuration error.
pub fn check_metadata_http_loopback(issuer: &str, on: bool) -> Result<(), String> {
    if !on || is_loopback_url(issuer) {
        return Ok(());
    }
    Err(format!(
        "CIMD_ALLOW_HTTP_LOOPBACK is for local development only: ISSUER {issuer:?} is not a \
         loopback URL; unset CIMD_ALLOW_HTTP_LOOPBACK"
    ))
}

/// RFC 7591 registration gives out `pgd_` ids tagged with the first `CLIENT_ID_KEYS` key: on
/// without a key, it is a configuration error (no registered client could ever be found).
pub fn check_dynamic_registration(on: bool, keys: usize) -> Result<(), String> {
    if on && keys == 0 {
        return Err(
            "DYNAMIC_REGISTRATION needs CLIENT_ID_KEYS (a JSON array of base64 keys of at least 32 bytes)"
                .into(),
        );
    }
    Ok(())
}

/// Whether `url` is an `http(s)` URL whose host is this machine: `localhost` (or a name under
/// `.localhost`, RFC 6761), an IPv4 address in 127.0.0.0/8, or `[::1]`. Nothing else: no
/// userinfo, no numeric shorthand (`http://2130706433`), no other loopback spelling.
pub fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => return h == "::1",
            Some((h, port)) if port.strip_prefix(':').is_some_and(valid_port) => return h == "::1",
            _ => return false,
        }
    } else {
        match authority.split_once(':') {
            Some((h, port)) if valid_port(port) => h,
            Some(_) => return false,
            None => authority,
        }
    };
    let host = host.to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    // Dotted-quad only: std parses exactly four decimal octets.
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_documents_need_a_loopback_issuer_and_registration_needs_a_key() {
        assert_eq!(
            check_metadata_http_loopback("http://127.0.0.1:8787", true),
            Ok(())
        );
        assert_eq!(
            check_metadata_http_loopback("https://patgate.example.com", false),
            Ok(())
        );
        for issuer in [
            "https://patgate.example.com",
            "http://10.0.0.1:8787",
            "http://2130706433",
        ] {
            let e = check_metadata_http_loopback(issuer, true).expect_err(issuer);
            assert!(
                e.starts_with("CIMD_ALLOW_HTTP_LOOPBACK is for local development only"),
                "{e}"
            );
        }
        assert_eq!(check_dynamic_registration(false, 0), Ok(()));
        assert_eq!(check_dynamic_registration(true, 1), Ok(()));
        assert!(check_dynamic_registration(true, 0).is_err());
    }

    #[test]
    fn dev_sign_in_needs_a_loopback_issuer() {
        for issuer in [
            "http://127.0.0.1:8787",
            "http://127.0.0.1",
            "http://127.1.2.3:9000",
            "http://localhost:8787",
            "http://LOCALHOST:8787",
            "http://patgate.localhost:8787",
            "http://[::1]:8787",
            "http://[::1]",
            "https://localhost",
            "http://127.0.0.1:8787/base",
        ] {
            assert!(is_loopback_url(issuer), "{issuer}");
            assert_eq!(check_dev_sign_in(issuer, true), Ok(()), "{issuer}");
        }
        for issuer in [
            "https://patgate.example.com",
            "https://auth.example.com:443",
            "http://10.0.0.1:8787",
            "http://0.0.0.0:8787",
            "http://2130706433",
            "http://127.0.0.1.example.com",
            "http://localhost.example.com",
            "http://user@127.0.0.1",
            "http://127.0.0.1:x",
            "http://127.0.0.1:",
            "http://[::2]:8787",
            "http://[::1]x",
            "ftp://127.0.0.1",
            "127.0.0.1:8787",
            "",
        ] {
            assert!(!is_loopback_url(issuer), "{issuer}");
            let e = check_dev_sign_in(issuer, true).expect_err(issuer);
            assert!(e.starts_with("DEV_SIGN_IN"), "{e}");
            // without the flag, any issuer is fine
            assert_eq!(check_dev_sign_in(issuer, false), Ok(()), "{issuer}");
        }
    }

    #[test]
    fn last_used_flush_is_checked_not_defaulted() {
        assert_eq!(last_used_flush_secs(None), Ok(10));
        assert_eq!(last_used_flush_secs(Some("")), Ok(10));
        assert_eq!(last_used_flush_secs(Some("0")), Ok(0));
        assert_eq!(last_used_flush_secs(Some("1")), Ok(1));
        assert_eq!(last_used_flush_secs(Some("3600")), Ok(3600));
        for bad in ["ten", "-1", "3601", "1.5", " 5", "99999999999999999999"] {
            let e = last_used_flush_secs(Some(bad)).expect_err(bad);
            assert!(e.starts_with("LAST_USED_FLUSH_SECONDS"), "{e}");
        }
    }
}
