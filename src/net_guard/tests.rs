//! Hostile and property tests of the URL guard.

use super::*;
use proptest::prelude::*;
use std::net::IpAddr;

fn refused(url: &str) -> Refusal {
    match public_https_url(url, false) {
        Ok(u) => panic!("{url} accepted: {u:?}"),
        Err(e) => e,
    }
}

fn numeric(url: &str) -> (AddressKind, IpAddr) {
    match refused(url) {
        Refusal::Numeric(k, ip) => (k, ip),
        other => panic!("{url}: {other:?}"),
    }
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().expect("v4"))
}

#[test]
fn public_names_over_https_pass() {
    for ok in [
        "https://hooks.example.com/patgate",
        "https://hooks.example.com",
        "https://HOOKS.Example.COM:8443/a/b?x=1",
        "https://a-b.example/h?q=1&r=%20",
        "https://xn--bcher-kva.example/",
        "https://example.io/",
        "https://1x.example/",
        "https://ex.1a/",
    ] {
        let u = public_https_url(ok, false).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(u.scheme, "https");
        assert!(!u.local);
        assert_eq!(u.host, u.host.to_ascii_lowercase());
    }
    let u = public_https_url("https://HOOKS.Example.COM:8443/a", false).expect("ok");
    assert_eq!((u.host.as_str(), u.port), ("hooks.example.com", Some(8443)));
}

/// The addresses the issue names, and every other special range.
#[test]
fn special_addresses_are_refused_with_their_kind() {
    use AddressKind::*;
    for (url, kind, ip) in [
        ("https://127.0.0.1", Loopback, v4("127.0.0.1")),
        ("https://127.0.0.1:443/h", Loopback, v4("127.0.0.1")),
        (
            "https://169.254.169.254/latest/meta-data",
            LinkLocal,
            v4("169.254.169.254"),
        ),
        ("https://10.0.0.1", Private, v4("10.0.0.1")),
        ("https://2130706433", Loopback, v4("127.0.0.1")),
        ("https://172.16.0.1/", Private, v4("172.16.0.1")),
        ("https://172.31.255.255/", Private, v4("172.31.255.255")),
        ("https://192.168.1.1/", Private, v4("192.168.1.1")),
        ("https://100.64.0.1/", Private, v4("100.64.0.1")),
        ("https://100.127.255.255/", Private, v4("100.127.255.255")),
        ("https://0.0.0.0/", Unspecified, v4("0.0.0.0")),
        ("https://0/", Unspecified, v4("0.0.0.0")),
        ("https://0x/", Unspecified, v4("0.0.0.0")),
        ("https://255.255.255.255/", Broadcast, v4("255.255.255.255")),
        ("https://224.0.0.1/", Multicast, v4("224.0.0.1")),
        ("https://240.0.0.1/", Reserved, v4("240.0.0.1")),
        ("https://192.0.2.7/", Reserved, v4("192.0.2.7")),
        ("https://8.8.8.8/", Public, v4("8.8.8.8")),
        ("https://172.32.0.1/", Public, v4("172.32.0.1")),
        ("https://100.128.0.1/", Public, v4("100.128.0.1")),
    ] {
        assert_eq!(numeric(url), (kind, ip), "{url}");
    }
    let v6 = |s: &str| IpAddr::V6(s.parse().expect("v6"));
    for (url, kind, ip) in [
        ("https://[::1]", Loopback, v6("::1")),
        ("https://[::1]:8443/h", Loopback, v6("::1")),
        ("https://[0:0:0:0:0:0:0:1]/", Loopback, v6("::1")),
        ("https://[::]/", Unspecified, v6("::")),
        ("https://[fe80::1]/", LinkLocal, v6("fe80::1")),
        ("https://[FE80::1]/", LinkLocal, v6("fe80::1")),
        ("https://[fc00::1]/", Private, v6("fc00::1")),
        ("https://[fd12:3456::1]/", Private, v6("fd12:3456::1")),
        ("https://[fec0::1]/", Private, v6("fec0::1")),
        ("https://[ff02::1]/", Multicast, v6("ff02::1")),
        ("https://[2001:db8::1]/", Reserved, v6("2001:db8::1")),
        ("https://[2606:4700::1111]/", Public, v6("2606:4700::1111")),
        // IPv4 inside IPv6: classified by the IPv4 address
        ("https://[::ffff:127.0.0.1]/", Loopback, v4("127.0.0.1")),
        ("https://[::ffff:7f00:1]/", Loopback, v4("127.0.0.1")),
        (
            "https://[0:0:0:0:0:ffff:a9fe:a9fe]/",
            LinkLocal,
            v4("169.254.169.254"),
        ),
        ("https://[::127.0.0.1]/", Loopback, v4("127.0.0.1")),
        ("https://[64:ff9b::a00:1]/", Private, v4("10.0.0.1")),
        ("https://[2002:c0a8:101::1]/", Private, v4("192.168.1.1")),
    ] {
        assert_eq!(numeric(url), (kind, ip), "{url}");
    }
}

/// Every form a WHATWG URL parser reads as 127.0.0.1.
#[test]
fn loopback_in_every_numeric_form_is_refused() {
    for host in [
        "2130706433",
        "0x7f000001",
        "0X7F000001",
        "0x7F000001",
        "017700000001",
        "0177.0.0.1",
        "0177.0.0.01",
        "127.1",
        "127.0.1",
        "0x7f.1",
        "0x7f.0.0.1",
        "127.000.000.001",
        "0x7f.0x0.0x0.0x1",
        "127.0x0.1",
        "0000000177.1",
    ] {
        let url = format!("https://{host}/h");
        assert_eq!(
            numeric(&url),
            (AddressKind::Loopback, v4("127.0.0.1")),
            "{host}"
        );
        // Even with a port and a path.
        assert!(public_https_url(&format!("https://{host}:443/x"), false).is_err());
    }
}

#[test]
fn local_and_private_use_names_are_refused() {
    for url in [
        "https://localhost/h",
        "https://LOCALHOST/h",
        "https://localhost:8443/h",
        "https://foo.localhost/h",
        "https://a.b.localhost/h",
        "https://printer.local/",
        "https://svc.internal/",
        "https://nas.home.arpa/",
        "https://box.localdomain/",
    ] {
        assert_eq!(refused(url), Refusal::LocalName, "{url}");
    }
    for url in [
        "https://intranet/",
        "https://metadata/computeMetadata",
        "https://com/",
    ] {
        assert_eq!(refused(url), Refusal::SingleLabel, "{url}");
    }
    // Only whole labels count: these are public names.
    for ok in [
        "https://localhost.example.com/",
        "https://mylocalhost.com/",
        "https://local.example/",
        "https://internal.example.org/",
    ] {
        assert!(public_https_url(ok, false).is_ok(), "{ok}");
    }
}

#[test]
fn malformed_and_hostile_urls_are_refused() {
    for (bad, why) in [
        ("http://hooks.example.com/h", Refusal::NotHttps),
        ("ftp://hooks.example.com/h", Refusal::NotHttps),
        ("HTTPS://hooks.example.com/h", Refusal::NotHttps),
        ("javascript:alert(1)", Refusal::NotAbsolute),
        ("//hooks.example.com/h", Refusal::NotAbsolute),
        ("https:/hooks.example.com/h", Refusal::NotAbsolute),
        ("hooks.example.com", Refusal::NotAbsolute),
        ("https://user:pw@hooks.example.com/h", Refusal::Credentials),
        ("https://user@hooks.example.com/h", Refusal::Credentials),
        (
            "https://hooks.example.com@127.0.0.1/h",
            Refusal::Credentials,
        ),
        ("https://hooks.example.com/h#frag", Refusal::Fragment),
        ("https://hooks.example.com/a b", Refusal::NotPrintableAscii),
        ("https://hooks.example.com/\n", Refusal::NotPrintableAscii),
        ("https://127.0.0.1\t/", Refusal::NotPrintableAscii),
        ("https://hooks.example.com/ü", Refusal::NotPrintableAscii),
        ("https://ｌｏｃａｌｈｏｓｔ/", Refusal::NotPrintableAscii),
        (
            "https://hooks.example.com\\@evil.example/",
            Refusal::Backslash,
        ),
        ("https:\\\\127.0.0.1/", Refusal::Backslash),
        ("https:///h", Refusal::BadHost),
        ("https://hooks..example.com/", Refusal::BadHost),
        ("https://hooks.example.com./", Refusal::BadHost),
        ("https://.example.com/", Refusal::BadHost),
        ("https://ho_st.example.com/", Refusal::BadHost),
        ("https://%31%32%37.0.0.1/", Refusal::BadHost),
        ("https://127.0.0.1%2f/", Refusal::BadHost),
        ("https://[::1/", Refusal::BadHost),
        ("https://[::1]x/", Refusal::BadHost),
        ("https://[fe80::1%25eth0]/", Refusal::BadHost),
        ("https://[not-an-ip]/", Refusal::BadHost),
        ("https://[]/", Refusal::BadHost),
        ("https://[1::2::3]/", Refusal::BadHost),
        ("https://256.1.1.1/", Refusal::BadHost),
        ("https://1.1.1.256/", Refusal::BadHost),
        ("https://1.2.3.4.5/", Refusal::BadHost),
        ("https://1.2.16777216/", Refusal::BadHost),
        ("https://4294967296/", Refusal::BadHost),
        ("https://0x100000000/", Refusal::BadHost),
        ("https://09.0.0.1/", Refusal::BadHost),
        ("https://0xg.0.0.1/", Refusal::BadHost),
        ("https://example.123/", Refusal::BadHost),
        ("https://example.0x1/", Refusal::BadHost),
        (
            "https://99999999999999999999999999999999999999/",
            Refusal::BadHost,
        ),
        ("https://hooks.example.com:99999/", Refusal::BadPort),
        ("https://hooks.example.com:0/", Refusal::BadPort),
        ("https://hooks.example.com:/", Refusal::BadPort),
        ("https://hooks.example.com:12a/", Refusal::BadPort),
        ("https://hooks.example.com:-1/", Refusal::BadPort),
        ("https://hooks.example.com:+443/", Refusal::BadPort),
    ] {
        assert_eq!(public_https_url(bad, false), Err(why.clone()), "{bad}");
        if !bad.starts_with("http://") {
            assert_eq!(public_https_url(bad, true), Err(why), "{bad} (local)");
        }
    }
    let long = format!("https://h.example/{}", "a".repeat(MAX_URL_LEN));
    assert_eq!(refused(&long), Refusal::TooLong);
    let label = format!("https://{}.example/", "a".repeat(64));
    assert_eq!(refused(&label), Refusal::BadHost);
    // Messages never echo the URL.
    let e = refused("https://127.0.0.1/secret-path").to_string();
    assert!(!e.contains("secret-path"), "{e}");
    assert!(e.contains("loopback"), "{e}");
}

#[test]
fn the_local_flag_allows_the_local_machine_only_over_http() {
    for ok in [
        "http://localhost:8989/h",
        "http://LOCALHOST/h",
        "http://127.0.0.1:8989/h",
        "http://[::1]:8080/h",
        "https://127.0.0.1/h",
        "https://10.0.0.1/h",
        "https://localhost/h",
        "https://2130706433/h",
        "https://intranet/",
    ] {
        let u = public_https_url(ok, true).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert!(u.local, "{ok}");
        assert!(
            public_https_url(ok, false).is_err(),
            "{ok} without the flag"
        );
    }
    assert!(
        !public_https_url("https://hooks.example.com/", true)
            .expect("ok")
            .local
    );
    for bad in [
        "http://127.0.0.2/h",
        "http://2130706433/h",
        "http://0x7f000001/h",
        "http://10.0.0.1/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://localhost.evil.example/h",
        "http://foo.localhost/h",
        "http://hooks.example.com/h",
    ] {
        assert_eq!(
            public_https_url(bad, true),
            Err(Refusal::HttpNotLocal),
            "{bad}"
        );
    }
    assert_eq!(
        public_https_url("http://localhost@evil.example/h", true),
        Err(Refusal::Credentials)
    );
}

/// The ways to write one IPv4 address that WHATWG URL parsers accept.
fn forms(ip: u32) -> Vec<String> {
    let [a, b, c, d] = ip.to_be_bytes();
    let low24 = ip & 0x00ff_ffff;
    let low16 = ip & 0xffff;
    vec![
        format!("{a}.{b}.{c}.{d}"),
        format!("{ip}"),
        format!("0x{ip:x}"),
        format!("0X{ip:X}"),
        format!("0{ip:o}"),
        format!("{a}.{low24}"),
        format!("{a}.{b}.{low16}"),
        format!("0x{a:x}.0{b:o}.{c}.0x{d:02x}"),
        format!("{a}.{b}.{c}.0{d:o}"),
    ]
}

proptest! {
    /// Every form of every address parses back to it, and is refused without the local flag.
    #[test]
    fn every_numeric_form_is_an_address_and_refused(ip: u32) {
        let want = Ipv4Addr::from(ip);
        for host in forms(ip) {
            prop_assert_eq!(parse_ipv4(&host.to_ascii_lowercase()), Some(want), "{}", host);
            let r = public_https_url(&format!("https://{host}/x"), false);
            prop_assert_eq!(r, Err(Refusal::Numeric(classify_v4(want), want.into())), "{}", host);
        }
        // IPv4-mapped IPv6 too.
        let mapped = format!("https://[::ffff:{want}]/");
        prop_assert_eq!(
            public_https_url(&mapped, false),
            Err(Refusal::Numeric(classify_v4(want), want.into()))
        );
    }

    /// No input panics; whatever is accepted without the flag is https to a dotted name whose
    /// last label is not a number, and no reserved name.
    #[test]
    fn accepted_urls_are_https_to_public_names(s in "(https?://)?[a-zA-Z0-9.:\\[\\]@%/?#_-]{0,40}") {
        if let Ok(u) = public_https_url(&s, false) {
            prop_assert_eq!(u.scheme, "https");
            prop_assert!(!u.local);
            prop_assert!(u.host.contains('.'));
            prop_assert!(!u.host.starts_with('['));
            let last = u.host.rsplit('.').next().unwrap_or("");
            prop_assert!(!is_numeric_label(last), "{}", s);
            prop_assert!(u.host != "localhost" && !u.host.ends_with(".localhost"));
            prop_assert!(parse_ipv4(&u.host).is_none(), "{}", s);
        }
        let _ = public_https_url(&s, true);
    }

    #[test]
    fn arbitrary_bytes_never_panic(s in "\\PC{0,80}") {
        let _ = public_https_url(&s, false);
        let _ = public_https_url(&format!("https://{s}"), false);
        let _ = public_https_url(&format!("https://[{s}]/"), true);
    }

    /// Ordinary DNS names are accepted.
    #[test]
    fn dns_names_pass(name in "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9][a-z0-9-]{0,20}){0,3}\\.(com|org|example|io|dev)") {
        prop_assert!(public_https_url(&format!("https://{name}/hook"), false).is_ok(), "{}", name);
    }
}
