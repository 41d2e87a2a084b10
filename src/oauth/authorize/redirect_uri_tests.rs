use super::*;

const NONE: RedirectPolicy = RedirectPolicy {
    private_use_schemes: false,
};
const NATIVE: RedirectPolicy = RedirectPolicy {
    private_use_schemes: true,
};

fn sel(presented: &str, registered: &[&str]) -> Result<Redirect, SelectError> {
    select(Some(presented), registered, NONE)
}

#[test]
fn exact_match_is_the_rule() {
    let reg = ["https://app.example.com/cb"];
    let r = sel("https://app.example.com/cb", &reg).expect("exact");
    assert_eq!(
        (r.as_str(), r.kind(), r.explicit()),
        (reg[0], RedirectKind::Https, true)
    );
    assert_eq!(r.display_target(), "app.example.com");
    assert_eq!(r.approval_key(), reg[0]);
}

#[test]
fn hostile_variants_of_a_registered_https_uri_are_refused() {
    let reg = ["https://app.example.com/cb?tenant=a"];
    for presented in [
        // prefix and suffix games
        "https://app.example.com/cb",
        "https://app.example.com/cb?tenant=a&x=1",
        "https://app.example.com/cb?tenant=ab",
        "https://app.example.com/cb/?tenant=a",
        "https://app.example.com/cb/x?tenant=a",
        "https://app.example.com/c?tenant=a",
        "https://app.example.com.evil.example/cb?tenant=a",
        // case variants
        "https://App.example.com/cb?tenant=a",
        "HTTPS://app.example.com/cb?tenant=a",
        "https://app.example.com/CB?tenant=a",
        "https://app.example.com/cb?Tenant=a",
        // userinfo
        "https://user@app.example.com/cb?tenant=a",
        "https://app.example.com@evil.example/cb?tenant=a",
        // fragments, even empty
        "https://app.example.com/cb?tenant=a#x",
        "https://app.example.com/cb?tenant=a#",
        // ports on a non-loopback host
        "https://app.example.com:443/cb?tenant=a",
        "https://app.example.com:8443/cb?tenant=a",
        // encodings and normalizations that other parsers undo
        "https://app.example.com/c%62?tenant=a",
        "https://app.example.com/cb?tenant=%61",
        "https://app.example.com/./cb?tenant=a",
        "https://app.example.com/x/../cb?tenant=a",
        "https://app.example.com//cb?tenant=a",
        "https://app.example.com./cb?tenant=a",
        "https://app.example.com\\cb?tenant=a",
        "https://app.example.com/cb?tenant=a ",
        " https://app.example.com/cb?tenant=a",
        "https://app.example.com/cb?tenant=a%0d%0a",
        // another scheme
        "http://app.example.com/cb?tenant=a",
        "",
    ] {
        assert_eq!(
            sel(presented, &reg),
            Err(SelectError::NotRegistered),
            "{presented:?}"
        );
    }
}

#[test]
fn loopback_ip_literals_take_any_port_and_nothing_else() {
    let reg = ["http://127.0.0.1/callback", "http://[::1]:4000/cb?x=1"];
    for presented in [
        "http://127.0.0.1/callback",
        "http://127.0.0.1:1/callback",
        "http://127.0.0.1:53682/callback",
        "http://127.0.0.1:65535/callback",
        "http://[::1]/cb?x=1",
        "http://[::1]:4000/cb?x=1",
        "http://[::1]:9/cb?x=1",
    ] {
        let r = sel(presented, &reg).unwrap_or_else(|e| panic!("{presented}: {e}"));
        assert_eq!(
            (r.as_str(), r.kind()),
            (presented, RedirectKind::LoopbackIp)
        );
        assert!(r.kind().is_local());
    }
    assert_eq!(
        sel("http://127.0.0.1:53682/callback", &reg)
            .expect("ok")
            .display_target(),
        "127.0.0.1:53682"
    );
    assert_eq!(
        sel("http://127.0.0.1:53682/callback", &reg)
            .expect("ok")
            .approval_key(),
        "http://127.0.0.1/callback",
        "remembered approvals ignore the loopback port"
    );
    for presented in [
        "http://127.0.0.1:5000/callback/",
        "http://127.0.0.1:5000/Callback",
        "http://127.0.0.1:5000/callback?x",
        "http://127.0.0.1:5000/callback#",
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:65536/callback",
        "http://127.0.0.1:/callback",
        "http://127.0.0.1:05000/callback",
        "http://127.0.0.1:+5000/callback",
        "http://u@127.0.0.1:5000/callback",
        "https://127.0.0.1:5000/callback",
        "HTTP://127.0.0.1:5000/callback",
        "http://127.0.0.2:5000/callback",
        "http://127.1:5000/callback",
        "http://0x7f.0.0.1:5000/callback",
        "http://2130706433:5000/callback",
        "http://127.0.0.1.evil.example:5000/callback",
        "http://[::ffff:127.0.0.1]:5000/callback",
        "http://[0:0:0:0:0:0:0:1]:5000/cb?x=1",
        "http://[::1]:5000/callback",
        "http://localhost:5000/callback",
        "http://[::1]:9/cb?x=2",
    ] {
        assert_eq!(
            sel(presented, &reg),
            Err(SelectError::NotRegistered),
            "{presented:?}"
        );
    }
}

/// `localhost` is listed by MCP clients that register once per run, so it is allowed, but it
/// matches only exactly: another port is another URI (RFC 8252 8.3 advises against it).
#[test]
fn localhost_matches_only_exactly() {
    let reg = ["http://localhost:33418/callback", "http://localhost/cb"];
    let r = sel("http://localhost:33418/callback", &reg).expect("exact");
    assert_eq!(r.kind(), RedirectKind::Localhost);
    assert!(r.kind().is_local());
    assert_eq!(r.display_target(), "localhost:33418");
    for presented in [
        "http://localhost:33419/callback",
        "http://localhost/callback",
        "http://localhost:5000/cb",
        "http://LOCALHOST:33418/callback",
        "http://localhost.:33418/callback",
        "http://127.0.0.1:33418/callback",
    ] {
        assert_eq!(
            sel(presented, &reg),
            Err(SelectError::NotRegistered),
            "{presented:?}"
        );
    }
}

#[test]
fn listing_rules() {
    for ok in [
        "https://app.example.com/cb",
        "https://app.example.com",
        "https://app.example.com:8443/cb?tenant=a&mode=x",
        "http://127.0.0.1/cb",
        "http://[::1]:8080",
        "http://localhost:3000/oauth/callback",
        "https://10.0.0.1/cb",
    ] {
        assert!(check_usable(ok, NONE).is_ok(), "{ok}");
    }
    for (bad, want) in [
        ("https://app.example.com/cb#x", RedirectUriError::Fragment),
        ("https://app.example.com/cb#", RedirectUriError::Fragment),
        ("https://u:p@app.example.com/cb", RedirectUriError::Userinfo),
        (
            "HTTPS://app.example.com/cb",
            RedirectUriError::SchemeNotLowercase,
        ),
        ("javascript:alert(1)", RedirectUriError::DangerousScheme),
        ("data:text/html,x", RedirectUriError::DangerousScheme),
        ("file://host/etc/passwd", RedirectUriError::DangerousScheme),
        (
            "file:///etc/passwd",
            RedirectUriError::Malformed(UriError::BadHost),
        ),
        ("vbscript:x", RedirectUriError::DangerousScheme),
        (
            "http://app.example.com/cb",
            RedirectUriError::HttpNotLoopback,
        ),
        ("http://127.0.0.2/cb", RedirectUriError::HttpNotLoopback),
        ("https:/cb", RedirectUriError::NoHost),
        ("https:cb", RedirectUriError::NoHost),
        (
            "https://app.example.com/cb?code=x",
            RedirectUriError::ReservedParameter("code"),
        ),
        (
            "https://app.example.com/cb?a=1&state",
            RedirectUriError::ReservedParameter("state"),
        ),
        (
            "https://app.example.com/cb?i%73s=x",
            RedirectUriError::ReservedParameter("iss"),
        ),
        (
            "https://app.example.com/cb?error_description=",
            RedirectUriError::ReservedParameter("error_description"),
        ),
        (
            "com.example.app:/cb",
            RedirectUriError::PrivateUseNotAllowed,
        ),
        ("/cb", RedirectUriError::Malformed(UriError::NoScheme)),
        (
            "https://app.example.com/c b",
            RedirectUriError::Malformed(UriError::ForbiddenCharacter),
        ),
    ] {
        assert_eq!(check_usable(bad, NONE), Err(want), "{bad}");
    }
    assert_eq!(
        check_usable("com.example.app:/cb", NATIVE),
        Ok(RedirectKind::PrivateUse)
    );
    assert_eq!(
        check_usable("cursor://anysphere.cursor-mcp/oauth/callback", NATIVE),
        Ok(RedirectKind::PrivateUse)
    );
    assert_eq!(
        check_usable("javascript:x", NATIVE),
        Err(RedirectUriError::DangerousScheme)
    );
}

#[test]
fn a_list_needs_one_usable_uri_and_every_uri_listable() {
    let cursor = "cursor://anysphere.cursor-mcp/oauth/callback";
    assert_eq!(
        check_registered(&[cursor, "http://127.0.0.1/cb"], NONE),
        Ok(())
    );
    assert_eq!(
        check_registered(&[cursor], NONE),
        Err(RedirectUriError::NoneUsable(Box::new(
            RedirectUriError::PrivateUseNotAllowed
        )))
    );
    assert_eq!(check_registered(&[cursor], NATIVE), Ok(()));
    assert_eq!(
        check_registered(&["https://a.example/cb", "https://a.example/cb#"], NONE),
        Err(RedirectUriError::Fragment)
    );
    assert_eq!(
        check_registered::<&str>(&[], NONE),
        Err(RedirectUriError::NoneListed)
    );
    let many: Vec<String> = (0..=MAX_REDIRECT_URIS)
        .map(|i| format!("https://a.example/{i}"))
        .collect();
    assert_eq!(
        check_registered(&many, NONE),
        Err(RedirectUriError::TooMany)
    );
    // a listed but unusable URI is refused when a request uses it
    assert_eq!(
        select(Some(cursor), &[cursor, "http://127.0.0.1/cb"], NONE),
        Err(SelectError::NotUsable(
            RedirectUriError::PrivateUseNotAllowed
        ))
    );
    let native = select(Some(cursor), &[cursor], NATIVE).expect("allowed");
    assert_eq!(native.display_target(), "anysphere.cursor-mcp");
    let scheme_only = select(
        Some("com.example.app:/cb"),
        &["com.example.app:/cb"],
        NATIVE,
    )
    .expect("ok");
    assert_eq!(scheme_only.display_target(), "com.example.app:");
}

#[test]
fn a_missing_redirect_uri_defaults_only_to_a_single_fixed_one() {
    let one = select(None, &["https://app.example.com/cb"], NONE).expect("the only one");
    assert_eq!(
        (one.as_str(), one.explicit()),
        ("https://app.example.com/cb", false)
    );
    assert_eq!(
        select(None, &["https://a.example/1", "https://a.example/2"], NONE),
        Err(SelectError::Required)
    );
    assert_eq!(select::<&str>(None, &[], NONE), Err(SelectError::Required));
    // a loopback IP URI needs the request's port
    assert_eq!(
        select(None, &["http://127.0.0.1/cb"], NONE),
        Err(SelectError::Required)
    );
    // a listed but unusable one is never a default
    assert_eq!(
        select(None, &["com.example.app:/cb"], NONE),
        Err(SelectError::Required)
    );
}

#[test]
fn an_overlong_presented_uri_is_refused_without_parsing() {
    let long = format!("http://127.0.0.1:5/{}", "a".repeat(MAX_URI_LEN));
    assert_eq!(
        sel(&long, &["http://127.0.0.1/cb"]),
        Err(SelectError::NotRegistered)
    );
}

proptest::proptest! {
    /// Whatever is presented, a match is the registered string itself or a loopback IP URI
    /// that differs only by its port.
    #[test]
    fn a_match_is_exact_or_a_loopback_port(
        presented in "(http|https|HTTP)://(127\\.0\\.0\\.1|\\[::1\\]|localhost|a\\.example)(:[0-9]{1,6})?(/cb|/CB|/cb/|/c%62)?(\\?x=1)?(#)?",
        registered in "(http|https)://(127\\.0\\.0\\.1|\\[::1\\]|localhost|a\\.example)(:[0-9]{1,5})?(/cb)?(\\?x=1)?",
    ) {
        if matches(&registered, &presented) && registered != presented {
            let r = Uri::parse(&registered).expect("matched");
            let p = Uri::parse(&presented).expect("matched");
            proptest::prop_assert_eq!(r.scheme(), "http");
            proptest::prop_assert!(r.host().is_some_and(is_loopback_ip_literal));
            proptest::prop_assert_eq!(r.without_port(), p.without_port());
        }
    }

    #[test]
    fn select_never_panics(presented in "\\PC{0,60}", registered in proptest::collection::vec("\\PC{0,40}", 0..3)) {
        let _ = select(Some(&presented), &registered, NATIVE);
        let _ = select(None, &registered, NONE);
        let _ = check_registered(&registered, NONE);
    }
}
