//! The user-JWT parser and verifier (identity-provider tokens): never a panic; nothing the fuzzer
//! makes without the secret verifies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use patgate::jose::{verify_user_jwt, UserAuthConfig};
use std::sync::OnceLock;

fn config() -> &'static UserAuthConfig {
    static CFG: OnceLock<UserAuthConfig> = OnceLock::new();
    CFG.get_or_init(|| {
        UserAuthConfig::from_parts(
            "idp".into(),
            "patgate".into(),
            Some("a-fuzzing-secret-of-enough-length!".into()),
            Some(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"JfsPhXT-i2GWNuXAPsQJPLzzd7PWS7xvd6bkeewFPkg"}]}"#.into()),
            None,
        )
        .expect("config")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    assert!(verify_user_jwt(config(), None, s, 1_795_000_000).is_err());
});
