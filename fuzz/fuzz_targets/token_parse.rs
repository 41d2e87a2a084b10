//! The token parser: any input is a token or a precise error, never a panic; a parsed token
//! prints back as the input's token part and hashes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use patgate::token::PlainToken;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = PlainToken::parse(s) {
        assert!(s.ends_with(t.expose_secret()));
        let _ = t.hash().to_hex();
        assert!(PlainToken::parse(t.expose_secret()).is_ok());
    }
});
