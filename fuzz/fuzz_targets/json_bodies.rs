//! Every JSON request body of the management (`POST /api/pats`) and admin APIs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    patgate::app::parse_all_json_bodies(data);
});
