//! The `Authorization` header parsers: Basic (RFC 6749 2.3.1, form-encoded parts) and Bearer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use patgate::http::{Method, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    for v in [value.to_owned(), format!("Basic {value}"), format!("Bearer {value}")] {
        let req = Request::new(Method::Post, "/oauth/introspect").header("authorization", &v);
        let _ = req.basic_credentials();
        let _ = req.bearer();
    }
});
