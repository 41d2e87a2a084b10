//! The strict `application/x-www-form-urlencoded` parser (OAuth endpoints and query strings).
#![no_main]
use libfuzzer_sys::fuzz_target;
use patgate::http::{Form, Method, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Form::parse(data) {
        let _ = f.get("token");
        let _ = f.require("grant_type");
    }
    let req = Request::new(Method::Post, "/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(data.to_vec());
    let _ = req.form();
});
