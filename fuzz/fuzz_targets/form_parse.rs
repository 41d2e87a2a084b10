//! The form parser (application/x-www-form-urlencoded): never a panic; a parsed form never has a
//! repeated name.
#![no_main]
use libfuzzer_sys::fuzz_target;
use patgate::http::{Form, Method, Request};

fuzz_target!(|data: &[u8]| {
    let _ = Form::parse(data);
    let req = Request::new(Method::Post, "/oauth/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(data.to_vec());
    if let Ok(f) = req.form() {
        for name in ["token", "client_id", "grant_type", "scope"] {
            let _ = f.get(name);
        }
    }
});
