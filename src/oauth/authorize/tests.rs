use super::*;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn good() -> String {
    format!(
        "response_type=code&client_id=https%3A%2F%2Fapp.example%2Fclient.json\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcb&state=xyz%20%2B1\
         &code_challenge={CHALLENGE}&code_challenge_method=S256\
         &resource=http%3A%2F%2Flocalhost%3A8787%2Fgw%2Fdemo%2F&scope=demo_api%3Aread+demo_api%3Awrite"
    )
}

fn parse(q: &str) -> Result<AuthorizationRequest<'_>, PageError> {
    AuthorizationRequest::parse(q.as_bytes())
}

fn redirect_error(q: &str) -> RedirectError {
    match parse(q).expect("the client is identified").params {
        Err(e) => e,
        Ok(p) => panic!("{q}: accepted {p:?}"),
    }
}

fn page_error(q: &str) -> String {
    match parse(q) {
        Err(e) => e.description.into_owned(),
        Ok(r) => panic!("{q}: identified {r:?}"),
    }
}

/// `good()` with parameter `name` replaced by `value` (`None`: removed).
fn with(name: &str, value: Option<&str>) -> String {
    let mut parts: Vec<String> = good()
        .split('&')
        .filter(|p| !p.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .collect();
    if let Some(v) = value {
        parts.push(format!("{name}={v}"));
    }
    parts.join("&")
}

#[test]
fn a_good_request_is_typed() {
    let q = good();
    let r = parse(&q).expect("ok");
    assert_eq!(r.client_id, "https://app.example/client.json");
    assert_eq!(r.redirect_uri.as_deref(), Some("http://127.0.0.1:5000/cb"));
    assert_eq!(r.state.as_deref(), Some("xyz +1"));
    let p = r.params.expect("params");
    assert_eq!(p.code_challenge.to_stored(), CHALLENGE);
    assert_eq!(p.resource.as_str(), "http://localhost:8787/gw/demo/");
    assert_eq!(
        p.scope.expect("scope").to_string(),
        "demo_api:read demo_api:write"
    );
    // unknown parameters are ignored; a missing scope and state are absent
    let q = format!("{}&prompt=consent&nonce=1", with("scope", None));
    let r = parse(&q).expect("ok");
    assert!(r.params.expect("params").scope.is_none());
    let q = with("state", None);
    assert_eq!(parse(&q).expect("ok").state, None);
    let q = with("state", Some(""));
    assert_eq!(
        parse(&q).expect("ok").state,
        None,
        "an empty value is absent"
    );
}

#[test]
fn the_client_must_be_identified_or_a_page_is_shown() {
    assert_eq!(
        page_error(&with("client_id", None)),
        "client_id is required"
    );
    assert_eq!(
        page_error(&with("client_id", Some(""))),
        "client_id is required"
    );
    assert_eq!(
        page_error(&with("client_id", Some("a%20b"))),
        "client_id is malformed"
    );
    assert_eq!(
        page_error(&with("client_id", Some("%C3%A9"))),
        "client_id is malformed"
    );
    let long = "a".repeat(MAX_URI_LEN + 1);
    assert_eq!(
        page_error(&with("client_id", Some(&long))),
        "client_id is malformed"
    );
    // ambiguous identity: never redirected
    assert_eq!(
        page_error(&format!("{}&client_id=other", good())),
        "client_id is repeated or malformed"
    );
    assert_eq!(
        page_error(&format!(
            "{}&redirect_uri=https%3A%2F%2Fevil.example%2F",
            good()
        )),
        "redirect_uri is repeated or malformed"
    );
    assert_eq!(
        page_error(&format!("{}&redirect_uri=%ZZ", with("redirect_uri", None))),
        "redirect_uri is repeated or malformed"
    );
    assert_eq!(
        page_error("client_id=%ZZ&response_type=code"),
        "client_id is repeated or malformed"
    );
    assert_eq!(page_error(""), "client_id is required");
}

#[test]
fn other_errors_wait_for_the_client_check_and_are_redirected() {
    let cases: [(String, ErrorCode, &str); 16] = [
        (
            with("response_type", None),
            ErrorCode::InvalidRequest,
            "response_type is required",
        ),
        (
            with("response_type", Some("token")),
            ErrorCode::UnsupportedResponseType,
            "only response_type=code is supported",
        ),
        (
            with("response_type", Some("code+id_token")),
            ErrorCode::UnsupportedResponseType,
            "only response_type=code is supported",
        ),
        (
            format!("{}&response_mode=fragment", good()),
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ),
        (
            format!("{}&request=eyJ", good()),
            ErrorCode::InvalidRequest,
            "request objects (request, request_uri) are not supported",
        ),
        (
            format!("{}&request_uri=urn%3Ax", good()),
            ErrorCode::InvalidRequest,
            "request objects (request, request_uri) are not supported",
        ),
        (
            with("code_challenge", None),
            ErrorCode::InvalidRequest,
            "code_challenge is required (PKCE with S256)",
        ),
        (
            with("code_challenge_method", None),
            ErrorCode::InvalidRequest,
            "code_challenge_method is required and must be S256",
        ),
        (
            with("code_challenge_method", Some("plain")),
            ErrorCode::InvalidRequest,
            "code_challenge_method plain is not supported: use S256",
        ),
        (
            with("code_challenge", Some("short")),
            ErrorCode::InvalidRequest,
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        ),
        (
            with("resource", None),
            ErrorCode::InvalidTarget,
            "resource is required: name the API the token is for (RFC 8707)",
        ),
        (
            with("resource", Some("demo_api")),
            ErrorCode::InvalidTarget,
            "resource must be an absolute URI (scheme:...)",
        ),
        (
            with("resource", Some("https%3A%2F%2Fapi.example%2F%23x")),
            ErrorCode::InvalidTarget,
            "resource must not have a fragment",
        ),
        (
            with("scope", Some("a%01")),
            ErrorCode::InvalidScope,
            "scope \"a\\u{1}\" is malformed",
        ),
        (
            with("scope", Some("+++")),
            ErrorCode::InvalidScope,
            "scope is empty",
        ),
        (
            format!("{}&resource=https%3A%2F%2Fother.example%2F", good()),
            ErrorCode::InvalidTarget,
            "resource is repeated: name exactly one API per request",
        ),
    ];
    for (q, code, description) in cases {
        let e = redirect_error(&q);
        assert_eq!((e.code, e.description.as_ref()), (code, description), "{q}");
        // the identity (and state) are still known, for the redirect
        let r = parse(&q).expect("identified");
        assert_eq!(r.client_id, "https://app.example/client.json");
        assert_eq!(r.state.as_deref(), Some("xyz +1"), "{q}");
    }
}

#[test]
fn a_query_the_strict_parser_refuses_is_redirected_when_the_identity_is_clear() {
    let q = format!("{}&scope=again", good());
    let e = redirect_error(&q);
    assert_eq!(
        (e.code, e.description.as_ref()),
        (ErrorCode::InvalidRequest, "parameter scope is repeated")
    );
    let r = parse(&q).expect("identified");
    assert_eq!(r.redirect_uri.as_deref(), Some("http://127.0.0.1:5000/cb"));
    assert_eq!(r.state.as_deref(), Some("xyz +1"));
    let q = format!("{}&junk=%G0", good());
    assert_eq!(redirect_error(&q).description, "malformed percent-encoding");
    // a repeated state is dropped, not echoed
    let q = format!("{}&state=other", good());
    assert_eq!(parse(&q).expect("identified").state, None);
}

#[test]
fn an_unechoable_state_is_dropped_and_reported() {
    let long = "s".repeat(MAX_STATE_LEN + 1);
    for (state, why) in [
        (long.as_str(), "state is longer than 1024 characters"),
        ("a%0Ab", "state must be printable ASCII"),
        ("%C3%A9", "state must be printable ASCII"),
    ] {
        let q = with("state", Some(state));
        let r = parse(&q).expect("identified");
        assert_eq!(r.state, None, "{state}");
        assert_eq!(r.params.expect_err("refused").description, why);
    }
    let max = "s".repeat(MAX_STATE_LEN);
    let q = with("state", Some(&max));
    assert_eq!(parse(&q).expect("ok").state.as_deref(), Some(max.as_str()));
}

proptest::proptest! {
    #[test]
    fn any_query_parses_without_panic(q in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = AuthorizationRequest::parse(&q);
    }

    #[test]
    fn shuffled_parameters_parse_the_same(seed in proptest::prelude::any::<u64>()) {
        let q = good();
        let mut parts: Vec<&str> = q.split('&').collect();
        let n = parts.len();
        for i in 0..n {
            let j = (seed.rotate_left(i as u32) as usize) % n;
            parts.swap(i, j);
        }
        let shuffled = parts.join("&");
        let r = parse(&shuffled).expect("ok");
        proptest::prop_assert_eq!(r.state.as_deref(), Some("xyz +1"));
        proptest::prop_assert!(r.params.is_ok());
    }

    #[test]
    fn parameter_soup_never_panics(
        pairs in proptest::collection::vec(("(client_id|redirect_uri|state|scope|resource|response_type|code_challenge|x)", "[a-z%0-9+:/.]{0,12}"), 0..12)
    ) {
        let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let q = q.join("&");
        if let Ok(r) = parse(&q) {
            proptest::prop_assert!(!r.client_id.is_empty());
        }
    }
}
