//! The user-JWT verifier (identity-provider tokens on the management API): structure, header
//! (`typ`, `crit`, `alg`, `kid`), key selection, signature and claims, with an HS256 secret and
//! an inline JWKS of every supported key type configured.
#![no_main]
use libfuzzer_sys::fuzz_target;
use patgate::user_auth::{verify_user_jwt, UserAuthConfig};
use std::sync::OnceLock;

const JWKS: &str = r#"{"keys":[
 {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"JfsPhXT-i2GWNuXAPsQJPLzzd7PWS7xvd6bkeewFPkg"},
 {"kty":"EC","crv":"P-256","kid":"es","x":"6V-01eyYP_wd_XREx8zCX_O0k8utQ7zftgbYvbxhzts","y":"6Rnod4XTLyVN8dbqIQ1Bin1WXJZhoD2CUGoBCmcGzTo"}
]}"#;

fn cfg() -> &'static UserAuthConfig {
    static CFG: OnceLock<UserAuthConfig> = OnceLock::new();
    CFG.get_or_init(|| {
        UserAuthConfig::from_parts(
            "idp".into(),
            "patgate".into(),
            Some("fuzz-hs256-secret".into()),
            Some(JWKS.into()),
            None,
        )
        .unwrap_or_else(|e| panic!("config: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = verify_user_jwt(cfg(), None, s, 1_795_000_000);
    }
});
