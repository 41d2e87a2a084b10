use super::super::client_metadata::GrantType;
use super::*;

const URL: &str = "https://app.example/oauth/client.json";

fn doc(extra: &str) -> String {
    format!(
        r#"{{"client_id":"{URL}","client_name":"Example Agent","redirect_uris":["http://127.0.0.1/callback","https://app.example/cb"]{extra}}}"#
    )
}

fn check(body: &str) -> Result<ClientMetadata, DocumentError> {
    validate_document(URL, body.as_bytes(), RedirectPolicy::default())
}

#[test]
fn client_id_url_rules() {
    for ok in [
        URL,
        "https://app.example:8443/c",
        "https://app.example/c?v=2",
        "https://10.0.0.1/c.json",
    ] {
        assert!(check_client_id_url(ok, false).is_ok(), "{ok}");
        assert!(is_metadata_url(ok, false));
    }
    for (bad, want) in [
        ("http://app.example/c.json", ClientIdUrlError::NotHttps),
        ("HTTPS://app.example/c.json", ClientIdUrlError::NotHttps),
        ("ftp://app.example/c.json", ClientIdUrlError::NotHttps),
        ("https://u:p@app.example/c.json", ClientIdUrlError::Userinfo),
        (
            "https://app.example@evil.example/c.json",
            ClientIdUrlError::Userinfo,
        ),
        ("https://app.example/c.json#x", ClientIdUrlError::Fragment),
        ("https://app.example/c.json#", ClientIdUrlError::Fragment),
        ("https://app.example", ClientIdUrlError::NoPath),
        ("https://app.example/", ClientIdUrlError::NoPath),
        ("https://app.example/?x", ClientIdUrlError::NoPath),
        (
            "https://app.example/a/../c.json",
            ClientIdUrlError::DotSegment,
        ),
        ("https://app.example/./c.json", ClientIdUrlError::DotSegment),
        (
            "https://app.example/a/%2E%2E/c.json",
            ClientIdUrlError::DotSegment,
        ),
        ("https://app.example/a/..", ClientIdUrlError::DotSegment),
        ("https://app.example/c json", ClientIdUrlError::Malformed),
        ("https://app.example\\@evil/c", ClientIdUrlError::Malformed),
        ("https:///c.json", ClientIdUrlError::Malformed),
        ("https:c.json", ClientIdUrlError::Malformed),
        ("demo_client", ClientIdUrlError::Malformed),
    ] {
        assert_eq!(check_client_id_url(bad, false).err(), Some(want), "{bad}");
    }
    // the development setting: loopback IP literals over http, nothing else
    assert!(check_client_id_url("http://127.0.0.1:9400/client.json", true).is_ok());
    assert!(check_client_id_url("http://[::1]:9400/client.json", true).is_ok());
    for bad in [
        "http://127.0.0.1:9400/client.json",
        "http://localhost:9400/client.json",
        "http://10.0.0.1/client.json",
    ] {
        let allow = !bad.contains("127.0.0.1");
        assert_eq!(
            check_client_id_url(bad, allow).err(),
            Some(ClientIdUrlError::NotHttps),
            "{bad}"
        );
    }
    assert!(!is_metadata_url("http://127.0.0.1/c", false));
    assert!(is_metadata_url("http://127.0.0.1/c", true));
    assert!(!is_metadata_url("demo_client", true));
}

#[test]
fn a_good_document() {
    let m = check(&doc(r#","grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none""#))
        .expect("ok");
    assert_eq!(m.client_name.as_deref(), Some("Example Agent"));
    assert_eq!(
        m.redirect_uris,
        ["http://127.0.0.1/callback", "https://app.example/cb"]
    );
    assert!(m.uses(GrantType::RefreshToken));
    assert!(check(&doc("")).is_ok());
}

#[test]
fn hostile_documents_are_refused() {
    let too_big = doc(&format!(r#","pad":"{}""#, "x".repeat(MAX_DOCUMENT_BYTES)));
    assert_eq!(check(&too_big), Err(DocumentError::TooLarge));
    let exactly = {
        let base = doc(r#","pad":"""#);
        doc(&format!(
            r#","pad":"{}""#,
            "x".repeat(MAX_DOCUMENT_BYTES - base.len())
        ))
    };
    assert_eq!(exactly.len(), MAX_DOCUMENT_BYTES);
    assert!(check(&exactly).is_ok());
    for (body, want) in [
        (
            doc("").replace(URL, "https://app.example/oauth/client.json/"),
            DocumentError::ClientIdMismatch,
        ),
        (
            doc("").replace(URL, "https://APP.example/oauth/client.json"),
            DocumentError::ClientIdMismatch,
        ),
        (
            doc("").replace(URL, "https://evil.example/oauth/client.json"),
            DocumentError::ClientIdMismatch,
        ),
        (
            doc("").replace(&format!(r#""client_id":"{URL}","#), ""),
            DocumentError::ClientIdMismatch,
        ),
        (doc(r#","client_secret":"s""#), DocumentError::Secret),
        (
            doc(r#","client_secret_expires_at":0"#),
            DocumentError::Secret,
        ),
        (
            doc(r#","token_endpoint_auth_method":"client_secret_basic""#),
            DocumentError::AuthMethod("client_secret_basic".into()),
        ),
        (
            doc(
                r#","token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://app.example/jwks""#,
            ),
            DocumentError::AuthMethod("private_key_jwt".into()),
        ),
        (
            doc(r#","token_endpoint_auth_method":"x\u0001y""#),
            DocumentError::AuthMethod("xy".into()),
        ),
    ] {
        assert_eq!(check(&body), Err(want), "{body}");
    }
    for (body, want) in [
        ("[1]".to_owned(), "not an array"),
        ("garbage".to_owned(), "not JSON"),
        (format!("{}x", doc("")), "invalid JSON body"),
        (
            doc("").replace(r#""client_name":"Example Agent","#, ""),
            "client_name is required",
        ),
        (
            doc(r#","redirect_uris":["https://x.example/"]"#),
            "duplicate field",
        ),
        (
            doc("")
                .replace("http://127.0.0.1/callback", "http://evil.example/callback")
                .replace(",\"https://app.example/cb\"", ""),
            "no usable redirect URI",
        ),
    ] {
        let e = check(&body).expect_err(&body).to_string();
        assert!(e.contains(want), "{body}: {e}");
    }
}

fn at(cc: Option<&str>, expires: Option<&str>, date: Option<&str>, age: Option<&str>) -> i64 {
    let h = CacheHeaders {
        cache_control: cc,
        expires,
        date,
        age,
    };
    cache_until(&h, 1_000_000, CacheBounds::default()) - 1_000_000
}

#[test]
fn cache_lifetime_follows_the_headers_within_bounds() {
    let b = CacheBounds::default();
    assert_eq!(at(None, None, None, None), b.default);
    assert_eq!(at(Some("max-age=7200"), None, None, None), 7200);
    assert_eq!(at(Some("public, Max-Age=\"7200\""), None, None, None), 7200);
    assert_eq!(
        at(Some("max-age=7200, s-maxage=1800"), None, None, None),
        1800
    );
    assert_eq!(at(Some("max-age=7200"), None, None, Some("1000")), 6200);
    assert_eq!(at(Some("max-age=7200"), None, None, Some("junk")), 7200);
    // bounds
    assert_eq!(at(Some("max-age=1"), None, None, None), b.min);
    assert_eq!(at(Some("max-age=99999999999"), None, None, None), b.max);
    assert_eq!(at(Some("max-age=7200"), None, None, Some("99999")), b.min);
    for zero in [
        "no-store",
        "no-cache",
        "private, max-age=600",
        "max-age=600, NO-STORE",
        "max-age=-5",
    ] {
        assert_eq!(at(Some(zero), None, None, None), b.min, "{zero}");
    }
    // no usable max-age: Expires - Date, else the default
    let date = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_eq!(at(Some("max-age=abc"), None, None, None), b.default);
    assert_eq!(
        at(
            Some("public"),
            Some("Sun, 06 Nov 1994 10:49:37 GMT"),
            Some(date),
            None
        ),
        7200
    );
    assert_eq!(
        at(
            None,
            Some("Sun, 06 Nov 1994 10:49:37 GMT"),
            Some(date),
            Some("600")
        ),
        6600
    );
    assert_eq!(
        at(None, Some("0"), Some(date), None),
        b.min,
        "invalid Expires: already expired"
    );
    assert_eq!(
        at(
            None,
            Some(date),
            Some("Sun, 06 Nov 1994 10:49:37 GMT"),
            None
        ),
        b.min
    );
    // without Date, Expires counts from now
    let now_plus_2h = chrono::DateTime::from_timestamp(1_000_000 + 7200, 0)
        .expect("date")
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    assert_eq!(at(None, Some(&now_plus_2h), None, None), 7200);
    // max-age wins over Expires
    assert_eq!(at(Some("max-age=900"), Some(date), Some(date), None), 900);
}

proptest::proptest! {
    #[test]
    fn cache_until_stays_within_bounds(
        cc in proptest::option::of("\\PC{0,40}"),
        expires in proptest::option::of("\\PC{0,40}"),
        age in proptest::option::of("-?[0-9]{0,20}"),
        now in 0i64..4_000_000_000,
    ) {
        let h = CacheHeaders { cache_control: cc.as_deref(), expires: expires.as_deref(), date: None, age: age.as_deref() };
        let b = CacheBounds::default();
        let until = cache_until(&h, now, b);
        proptest::prop_assert!(until >= now + b.min && until <= now + b.max);
    }

    #[test]
    fn any_document_is_refused_or_valid_without_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), url in "\\PC{0,40}") {
        let _ = validate_document(&url, &body, RedirectPolicy { private_use_schemes: true });
        let _ = check_client_id_url(&url, true);
    }
}

#[test]
fn only_public_https_urls_are_fetched_and_loopback_http_only_in_development() {
    for ok in [URL, "https://app.example:8443/c.json?v=2"] {
        for dev in [false, true] {
            assert_eq!(
                fetchable_url(ok, dev).map(|u| u.as_str().to_owned()),
                Ok(ok.to_owned()),
                "{ok} dev={dev}"
            );
        }
    }
    for dev_only in ["http://127.0.0.1:9911/c.json", "http://[::1]:80/c.json"] {
        assert!(fetchable_url(dev_only, true).is_ok(), "{dev_only}");
        assert_eq!(
            fetchable_url(dev_only, false),
            Err(UnfetchableUrl::Rule(ClientIdUrlError::NotHttps)),
            "{dev_only}"
        );
    }
    // The development setting never opens https to private or numeric hosts, nor http to
    // anything but a loopback IP literal.
    for never in [
        "https://10.0.0.1/c.json",
        "https://127.0.0.1/c.json",
        "https://[::1]/c.json",
        "https://169.254.169.254/latest/meta-data",
        "https://2130706433/c.json",
        "https://0x7f000001/c.json",
        "https://localhost/c.json",
        "https://metadata.internal/c.json",
        "https://intranet/c.json",
        "http://localhost:9/c.json",
        "http://192.168.1.1/c.json",
        "http://app.example/c.json",
        "https://app.example/",
        "https://user@app.example/c.json",
        "https://app.example/a/../c.json",
    ] {
        for dev in [false, true] {
            let e = fetchable_url(never, dev).expect_err(never);
            assert!(!e.to_string().contains("app.example"), "no echo: {e}");
        }
    }
    assert!(matches!(
        fetchable_url("https://10.0.0.1/c.json", true),
        Err(UnfetchableUrl::Guard(_))
    ));
}
