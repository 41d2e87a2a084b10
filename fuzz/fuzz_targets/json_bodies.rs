//! The JSON bodies of the management and admin APIs, through the whole service (routing, user
//! and admin authentication, strict JSON parsing, validation, storage) over the in-memory backend:
//! no input is a panic or a 5xx.
#![no_main]
use libfuzzer_sys::fuzz_target;
use patgate::app::{self, Config, Ctx, IsolateState};
use patgate::http::{Method, Request};
use patgate::testing::MemoryBackend;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use patgate::model::{ApiResource, Client, SecretSet, TokenFormat};
use patgate::secret::ClientSecret;
use std::sync::OnceLock;

const ADMIN: &str = "fuzz-admin-token";
const USER_SECRET: &str = "a-fuzzing-secret-of-enough-length!";

/// An HS256 user JWT for `fuzz` (iss idp, aud patgate), signed with the config's secret.
fn user_jwt() -> &'static str {
    static JWT: OnceLock<String> = OnceLock::new();
    JWT.get_or_init(|| {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = b64(br#"{"iss":"idp","aud":"patgate","sub":"fuzz","iat":1795000000,"exp":4102444800}"#);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(USER_SECRET.as_bytes()).expect("key");
        mac.update(format!("{head}.{claims}").as_bytes());
        format!("{head}.{claims}.{}", b64(&mac.finalize().into_bytes()))
    })
}

fn seeded() -> MemoryBackend {
    let b = MemoryBackend::default();
    let secret = |s: &str| SecretSet { current: ClientSecret::new(s).hash(), previous: None };
    b.resources.borrow_mut().push(ApiResource {
        id: "r".into(),
        uid: "ur".into(),
        secret: secret("rs"),
        enabled: true,
        scopes: vec!["r:read".into(), "r:write".into()],
    });
    for (id, s) in [("pat_client", None), ("c", Some(secret("cs")))] {
        b.clients.borrow_mut().push(Client {
            id: id.into(),
            uid: format!("u{id}"),
            secret: s,
            allowed_scopes: vec!["r:read".into(), "r:write".into()],
            token_format: TokenFormat::Reference,
            token_lifetime: 3600,
            enabled: true,
        });
    }
    b
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((which, body)) = data.split_first() else {
        return;
    };
    let mut cfg = Config::for_tools("https://patgate.example");
    cfg.admin_token = Some(ClientSecret::new(ADMIN));
    cfg.user_auth = patgate::jose::UserAuthConfig::from_parts(
        "idp".into(),
        "patgate".into(),
        Some(USER_SECRET.into()),
        None,
        None,
    )
    .expect("config");
    let backend = seeded();
    let isolate = IsolateState::default();
    let ctx = Ctx { cfg: &cfg, backend: &backend, isolate: &isolate, now: 1_795_000_000 };
    let (method, path, admin) = match which % 8 {
        0 => (Method::Post, "/api/pats", false),
        1 => (Method::Post, "/api/pats/x/rotate", false),
        2 => (Method::Post, "/admin/clients", true),
        3 => (Method::Patch, "/admin/clients/c", true),
        4 => (Method::Post, "/admin/resources", true),
        5 => (Method::Patch, "/admin/resources/r", true),
        6 => (Method::Post, "/admin/clients/c/rotate-secret", true),
        _ => (Method::Put, "/admin/routes/r", true),
    };
    let auth = if admin { format!("Bearer {ADMIN}") } else { format!("Bearer {}", user_jwt()) };
    let req = Request::new(method, path)
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(body.to_vec());
    let o = block_on(app::handle(&ctx, &req));
    assert!(o.response.status < 500, "{} for {:?}", o.response.status, String::from_utf8_lossy(body));
});
