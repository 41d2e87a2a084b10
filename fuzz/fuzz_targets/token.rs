//! The token parser (`pgp_`/`pga_` + base62 + CRC32): any string, never a panic; a token that
//! parses round-trips and hashes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use patgate::token::PlainToken;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = PlainToken::parse(s) {
            let _ = t.hash();
            assert!(s.ends_with(t.expose_secret()));
        }
    }
});
