//! The Basic and Bearer header parsers: never a panic, whatever the header holds (the first byte
//! picks the scheme prefix so that the fuzzer reaches both decoders quickly).
#![no_main]
use libfuzzer_sys::fuzz_target;
use patgate::http::{Method, Request};
use patgate::oauth::credentials::BasicCredentials;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    let value = match first % 4 {
        0 => format!("Basic {value}"),
        1 => format!("Bearer {value}"),
        2 => format!("bearer  {value}"),
        _ => value.to_owned(),
    };
    let req = Request::new(Method::Post, "/oauth/token").header("authorization", &value);
    if let Ok(Some(b)) = BasicCredentials::from_request(&req) {
        let _ = b.id();
    }
    let _ = req.bearer();
    // repeated headers are refused, never merged
    let twice = req.clone().header("authorization", &value);
    assert!(twice.bearer().is_err() || BasicCredentials::from_request(&twice).is_err());
});
