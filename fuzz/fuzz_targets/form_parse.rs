//! The OAuth form parser (application/x-www-form-urlencoded, borrowing from the body) and the
//! three OAuth requests built on it: never a panic; a parsed form never has a repeated name; the
//! borrowing parser agrees with `http::Form` (query strings) on every body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use patgate::http::{Form, Method, Request};
use patgate::oauth::{form, IntrospectionRequest, RevocationRequest, TokenRequest};

fuzz_target!(|data: &[u8]| {
    let names = ["token", "client_id", "grant_type", "scope"];
    let ours = form::parse(data, names);
    let theirs = Form::parse(data);
    assert_eq!(ours.is_ok(), theirs.is_ok());
    if let (Ok(values), Ok(f)) = (ours, theirs) {
        for (name, v) in names.iter().zip(values) {
            assert_eq!(form::present(v).as_deref(), f.get(name));
        }
    }
    for path in ["/oauth/introspect", "/oauth/revoke", "/oauth/token"] {
        let req = Request::new(Method::Post, path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(data.to_vec());
        let _ = IntrospectionRequest::parse(&req).map(|r| r.token().is_ok());
        let _ = RevocationRequest::parse(&req).map(|r| r.token().is_ok());
        let _ = TokenRequest::parse(&req);
    }
});
