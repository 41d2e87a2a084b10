//! Host tests of the token page over the in-memory backend: sign-in, identity, every action,
//! the cross-site checks, escaping, and the headers on every answer.

use super::super::{handle, Config, Ctx, IsolateState, Outcome};
use super::session::{SESSION_COOKIE, SIGNIN_COOKIE};
use crate::app::config::PageConfig;
use crate::http::{Method, Request, Response};
use crate::jose::UserAuthConfig;
use crate::model::PAT_CLIENT_ID;
use crate::model::{ApiResource, Client, SecretSet, Status, TokenFormat};
use crate::secret::ClientSecret;
use crate::testing::MemoryBackend;
use base64::Engine as _;
use futures::executor::block_on;
use hmac::{Hmac, Mac};

const NOW: i64 = 1_795_000_000; // 2026-11-18
const USER_SECRET: &str = "test-user-secret";
const ISSUER: &str = "https://patgate.test";
const HOST: &str = "patgate.test";
const SECRET: &str = "test-session-secret-0123456789abcdef";

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

fn user_jwt(sub: &str, exp: i64) -> String {
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({"iss":"idp","aud":"patgate","sub":sub,"iat":NOW,"exp":exp});
    let body = b64(claims.to_string().as_bytes());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(USER_SECRET.as_bytes()).expect("key");
    mac.update(format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", b64(&mac.finalize().into_bytes()))
}

fn config(dev: bool, secret: Option<&str>) -> Config {
    Config {
        user_auth: UserAuthConfig::from_parts(
            "idp".into(),
            "patgate".into(),
            Some(USER_SECRET.into()),
            None,
            None,
        )
        .expect("config"),
        page: PageConfig {
            session_secret: secret.map(str::to_owned),
            dev_sign_in: dev,
        },
        ..Config::for_tools(ISSUER)
    }
}

fn backend() -> MemoryBackend {
    let b = MemoryBackend::default();
    let res = |id: &str, scopes: &[&str]| ApiResource {
        descriptions: Vec::new(),
        resource_uri: None,
        id: id.into(),
        uid: format!("uid-{id}"),
        secret: SecretSet {
            current: ClientSecret::new("s").hash(),
            previous: None,
        },
        enabled: true,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    };
    b.resources.borrow_mut().extend([
        res("demo_api", &["demo_api:write", "demo_api:read"]),
        res("other_api", &["other_api:read", "other_api:admin"]),
    ]);
    b.clients.borrow_mut().push(Client {
        id: PAT_CLIENT_ID.into(),
        uid: "uid-pat_client".into(),
        secret: None,
        allowed_scopes: vec![
            "demo_api:read".into(),
            "demo_api:write".into(),
            "other_api:read".into(),
            "loose:scope".into(),
        ],
        token_format: TokenFormat::Reference,
        token_lifetime: 3600,
        enabled: true,
    });
    b
}

struct H {
    cfg: Config,
    backend: MemoryBackend,
    isolate: IsolateState,
    now: i64,
}

fn h() -> H {
    H {
        cfg: config(true, Some(SECRET)),
        backend: backend(),
        isolate: IsolateState::default(),
        now: NOW,
    }
}

fn text(r: &Response) -> String {
    String::from_utf8(r.body.clone()).expect("utf-8")
}

/// The value of the first `name="{name}" value="..."` in the page.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).map(|i| i + marker.len()).expect(name);
    html[start..].split('"').next().expect("value").to_owned()
}

/// `name=value` of a response's `Set-Cookie` for `name`.
fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| *k == "set-cookie")
        .map(|(_, v)| v)
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}

impl H {
    /// The log lines written since the last call (events, warnings, error causes).
    fn logged(&self) -> String {
        self.isolate
            .take_events()
            .iter()
            .map(crate::events::Event::line)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn send(&self, req: &Request) -> Outcome {
        let ctx = Ctx {
            cfg: &self.cfg,
            backend: &self.backend,
            isolate: &self.isolate,
            now: self.now,
            now_ms: self.now * 1000,
        };
        let o = block_on(handle(&ctx, req));
        let r = &o.response;
        if r.header("content-type") == Some("text/html; charset=utf-8") {
            assert_security_headers(r);
        }
        o
    }

    fn get(&self, path: &str, cookie: Option<&str>) -> Response {
        let mut req = Request::new(Method::Get, path).header("host", HOST);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.send(&req).response
    }

    /// A same-origin browser form POST (as Chromium sends it with `no-referrer`).
    fn post(&self, path: &str, body: &str, cookie: Option<&str>) -> Outcome {
        self.post_with(
            path,
            body,
            cookie,
            &[("sec-fetch-site", "same-origin"), ("origin", "null")],
        )
    }

    fn post_with(
        &self,
        path: &str,
        body: &str,
        cookie: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Outcome {
        let mut req = Request::new(Method::Post, path)
            .header("host", HOST)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        for (k, v) in extra {
            req = req.header(k, v);
        }
        self.send(&req)
    }

    /// Signs in through the dev form; returns the session cookie (`name=value`).
    fn sign_in(&self, user: &str) -> String {
        let form = self.get("/tokens/sign-in", None);
        assert_eq!(form.status, 200, "{}", text(&form));
        let pre = set_cookie(&form, SIGNIN_COOKIE).expect("sign-in cookie");
        let csrf = field(&text(&form), "csrf");
        let r = self
            .post(
                "/tokens/sign-in",
                &format!("csrf={csrf}&user={user}"),
                Some(&pre),
            )
            .response;
        assert_eq!(r.status, 303, "{}", text(&r));
        assert_eq!(r.header("location"), Some("/tokens"));
        set_cookie(&r, SESSION_COOKIE).expect("session cookie")
    }

    fn pats(&self, user: &str) -> Vec<crate::model::TokenRecord> {
        self.backend
            .tokens
            .borrow()
            .iter()
            .filter(|t| t.subject == user)
            .cloned()
            .collect()
    }

    /// Creates a token through the form; returns the answer.
    fn create(&self, cookie: &str, body: &str) -> Response {
        let form = self.get("/tokens/new", Some(cookie));
        assert_eq!(form.status, 200);
        let html = text(&form);
        let (csrf, id) = (field(&html, "csrf"), field(&html, "form_id"));
        self.post(
            "/tokens/new",
            &format!("csrf={csrf}&form_id={id}&{body}"),
            Some(cookie),
        )
        .response
    }
}

fn assert_security_headers(r: &Response) {
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"));
    assert!(!csp.contains("unsafe"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

fn token_in(html: &str) -> String {
    let start = html.find("value=\"pgp_").expect("token shown") + 7;
    html[start..].split('"').next().expect("token").to_owned()
}

#[test]
fn root_and_icon() {
    let h = h();
    let r = h.get("/", None);
    assert_eq!((r.status, r.header("location")), (303, Some("/tokens")));
    let r = h.get("/favicon.ico", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
}

#[test]
fn only_on_the_issuers_host() {
    let h = h();
    for host in [
        "evil.test",
        "patgate.test.evil.test",
        "upstream.patgate.test",
    ] {
        let r = h
            .send(&Request::new(Method::Get, "/tokens").header("host", host))
            .response;
        assert_eq!(r.status, 404, "{host}");
        assert_eq!(
            r.json_body()["error"],
            "not_found",
            "the JSON API's 404: {host}"
        );
    }
    let r = h.send(&Request::new(Method::Get, "/tokens")).response;
    assert_eq!(r.status, 404, "no Host header");
}

#[test]
fn dev_sign_in_sets_a_host_cookie_and_shows_the_user() {
    let h = h();
    let r = h.get("/tokens", None);
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/tokens/sign-in"))
    );
    let form = h.get("/tokens/sign-in", None);
    let set = form
        .headers
        .iter()
        .find(|(k, _)| *k == "set-cookie")
        .map(|(_, v)| v.clone())
        .expect("cookie");
    assert!(
        set.ends_with("; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax"),
        "{set}"
    );
    let cookie = h.sign_in("alice");
    let page = h.get("/tokens", Some(&cookie));
    assert_eq!(page.status, 200);
    let html = text(&page);
    assert!(
        html.contains("Signed in as <strong id=\"signed-in-user\">alice</strong>"),
        "{html}"
    );
    assert!(html.contains("/tokens/sign-out"));
    // A signed-in user visiting the form goes to the list.
    assert_eq!(h.get("/tokens/sign-in", Some(&cookie)).status, 303);
}

#[test]
fn dev_sign_in_refuses_bad_input_and_forgery() {
    let h = h();
    let form = h.get("/tokens/sign-in", None);
    let pre = set_cookie(&form, SIGNIN_COOKIE).expect("cookie");
    let csrf = field(&text(&form), "csrf");
    // Bad user id: the form again, input kept (escaped), 400.
    let r = h
        .post(
            "/tokens/sign-in",
            &format!("csrf={csrf}&user=%3Cb%3E"),
            Some(&pre),
        )
        .response;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("value=\"&lt;b&gt;\""));
    assert!(set_cookie(&r, SESSION_COOKIE).is_none());
    // No CSRF token, a token for another pre-session, no cookie: 403.
    let other = h.get("/tokens/sign-in", None);
    let other_csrf = field(&text(&other), "csrf");
    for (body, cookie) in [
        ("user=alice".to_owned(), Some(pre.as_str())),
        (format!("csrf={other_csrf}&user=alice"), Some(pre.as_str())),
        (format!("csrf={csrf}&user=alice"), None),
    ] {
        let r = h.post("/tokens/sign-in", &body, cookie).response;
        assert_eq!(r.status, 403, "{body}");
        assert!(set_cookie(&r, SESSION_COOKIE).is_none());
    }
    // Cross-site: 403 even with a valid token.
    let r = h
        .post_with(
            "/tokens/sign-in",
            &format!("csrf={csrf}&user=alice"),
            Some(&pre),
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.test"),
            ],
        )
        .response;
    assert_eq!(r.status, 403);
    // A forged session cookie is no session.
    let cookie = h.sign_in("alice");
    let forged = cookie.replace(&b64(b"alice"), &b64(b"bob"));
    assert_eq!(h.get("/tokens", Some(&forged)).status, 303);
    let mut later = h.get("/tokens", Some(&cookie));
    assert_eq!(later.status, 200);
    // Expired after a day.
    let h2 = H {
        now: NOW + 86_401,
        ..h
    };
    later = h2.get("/tokens", Some(&cookie));
    assert_eq!(later.status, 303);
}

#[test]
fn without_dev_sign_in_only_access_identifies() {
    let h = H {
        cfg: config(false, Some(SECRET)),
        ..h()
    };
    let r = h.get("/tokens", None);
    assert_eq!(r.status, 401);
    assert!(text(&r).contains("Sign-in required"));
    assert!(r.header("www-authenticate").is_some());
    assert_eq!(h.get("/tokens/sign-in", None).status, 404);
    // A session cookie (signed with the right key) means nothing when dev sign-in is off.
    let dev = H {
        cfg: config(true, Some(SECRET)),
        ..self::h()
    };
    let cookie = dev.sign_in("alice");
    assert_eq!(h.get("/tokens", Some(&cookie)).status, 401);
    // Cloudflare Access assertion.
    let ok = Request::new(Method::Get, "/tokens")
        .header("host", HOST)
        .header("cf-access-jwt-assertion", &user_jwt("carol", NOW + 600));
    let r = h.send(&ok).response;
    assert_eq!(r.status, 200);
    let html = text(&r);
    assert!(html.contains(">carol</strong>"));
    assert!(html.contains("href=\"/cdn-cgi/access/logout\""));
    for bad in [
        user_jwt("carol", NOW - 3600),
        "garbage".into(),
        format!("{}x", user_jwt("carol", NOW + 600)),
    ] {
        let req = Request::new(Method::Get, "/tokens")
            .header("host", HOST)
            .header("cf-access-jwt-assertion", &bad);
        let r = h.send(&req).response;
        assert_eq!(r.status, 401, "{bad}");
        assert!(
            h.logged().contains(r#""event":"error""#),
            "the cause is logged"
        );
    }
}

#[test]
fn not_configured_without_a_long_session_secret() {
    for secret in [None, Some("too short")] {
        let h = H {
            cfg: config(true, secret),
            ..h()
        };
        let r = h.get("/tokens", None);
        assert_eq!(r.status, 503, "{secret:?}");
        assert_eq!(h.get("/tokens/sign-in", None).status, 503);
        assert!(
            !text(&r).contains("SESSION_SECRET"),
            "config details only in the log"
        );
    }
}

#[test]
fn create_shows_the_token_once_and_a_repost_creates_nothing() {
    let h = h();
    let cookie = h.sign_in("alice");
    let form = h.get("/tokens/new", Some(&cookie));
    let html = text(&form);
    // Scopes grouped by resource, only those allowed to PATs; loose ones under "Other scopes".
    let demo = html
        .find("API resource <code>demo_api</code>")
        .expect("demo group");
    let other = html
        .find("API resource <code>other_api</code>")
        .expect("other group");
    let loose = html.find("Other scopes").expect("loose group");
    assert!(demo < other && other < loose);
    assert!(html.contains("value=\"demo_api:read\"") && html.contains("value=\"loose:scope\""));
    assert!(!html.contains("other_api:admin"), "not allowed to PATs");
    assert!(html.contains("<label for=\"name\">Name</label>"));
    assert!(html.contains("<label for=\"expiration\">Expiration</label>"));
    let (csrf, id) = (field(&html, "csrf"), field(&html, "form_id"));
    let body = format!(
        "csrf={csrf}&form_id={id}&name=ci+deploy&expiration=30&custom_date=&scope=demo_api%3Aread&scope=other_api%3Aread"
    );
    let r = h.post("/tokens/new", &body, Some(&cookie));
    assert_eq!(r.response.status, 200, "{}", text(&r.response));
    let token = token_in(&text(&r.response));
    assert!(crate::token::PlainToken::parse(&token).is_ok());
    assert!(text(&r.response).contains("will not be shown again"));
    let pats = h.pats("alice");
    assert_eq!(pats.len(), 1);
    assert_eq!(pats[0].scopes, vec!["demo_api:read", "other_api:read"]);
    assert_eq!(pats[0].expires_at, NOW + 30 * 86_400);
    assert_eq!(pats[0].name.as_deref(), Some("ci deploy"));
    // The same form again within the minute (a double submit, or a reload of the answer): the
    // same token, nothing new.
    let again = h.post("/tokens/new", &body, Some(&cookie)).response;
    assert_eq!(again.status, 200, "{}", text(&again));
    assert_eq!(token_in(&text(&again)), token);
    assert_eq!(h.pats("alice").len(), 1);
    // The list shows it, newest first, with "Never used" and "Expires in 30 days".
    let list = text(&h.get("/tokens", Some(&cookie)));
    assert!(list.contains("ci deploy") && list.contains("Never used"));
    assert!(list.contains("Expires in 30 days"));
    assert!(!list.contains("pgp_"), "the list never shows a token");
}

#[test]
fn validation_errors_keep_the_input() {
    let h = h();
    let cookie = h.sign_in("alice");
    let cases = [
        ("name=&expiration=30&scope=demo_api%3Aread", "name-error"),
        ("name=x&expiration=30", "scopes-error"),
        (
            "name=x&expiration=31&scope=demo_api%3Aread",
            "expiration-error",
        ),
        (
            "name=x&expiration=custom&custom_date=2020-01-01&scope=demo_api%3Aread",
            "expiration-error",
        ),
        (
            "name=x&expiration=custom&custom_date=2030-01-01&scope=demo_api%3Aread",
            "expiration-error",
        ),
        (
            "name=x&expiration=custom&custom_date=tomorrow&scope=demo_api%3Aread",
            "expiration-error",
        ),
        (
            "name=x&expiration=30&scope=other_api%3Aadmin",
            "scopes-error",
        ),
        (
            "name=x&expiration=30&scope=demo_api%3Aread&scope=demo_api%3Aread",
            "scopes-error",
        ),
        (
            &format!(
                "name={}&expiration=30&scope=demo_api%3Aread",
                "a".repeat(101)
            ),
            "name-error",
        ),
    ];
    for (body, err) in cases {
        let r = h.create(&cookie, body);
        assert_eq!(r.status, 400, "{body}");
        let html = text(&r);
        assert!(html.contains(&format!("id=\"{err}\"")), "{body}: {html}");
    }
    let r = h.create(
        &cookie,
        "name=%3Ckeep%3E&expiration=60&scope=demo_api%3Awrite&scope=other_api%3Aadmin",
    );
    assert_eq!(r.status, 400);
    let html = text(&r);
    assert!(
        html.contains("value=\"&lt;keep&gt;\""),
        "name kept, escaped"
    );
    assert!(html.contains("<option value=\"60\" selected>"), "{html}");
    assert!(
        html.contains("value=\"demo_api:write\" checked"),
        "scope kept"
    );
    assert!(h.pats("alice").is_empty());
    // A valid custom date: midnight UTC of that day.
    let r = h.create(
        &cookie,
        "name=c&expiration=custom&custom_date=2026-12-25&scope=demo_api%3Aread",
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(h.pats("alice")[0].expires_at, 1_798_156_800);
}

#[test]
fn names_are_escaped() {
    let h = h();
    let cookie = h.sign_in("alice");
    let r = h.create(
        &cookie,
        "name=%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%27&expiration=7&scope=demo_api%3Aread",
    );
    assert_eq!(r.status, 200);
    for html in [text(&r), text(&h.get("/tokens", Some(&cookie)))] {
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
    let id = h.pats("alice")[0].id.clone();
    let confirm = text(&h.get(&format!("/tokens/{id}/revoke"), Some(&cookie)));
    assert!(!confirm.contains("<script>alert"));
    // 7 days left: a warning.
    assert!(text(&h.get("/tokens", Some(&cookie))).contains("class=\"warn expiry\""));
}

#[test]
fn cross_site_posts_change_nothing() {
    let h = h();
    let cookie = h.sign_in("alice");
    let bob = h.sign_in("bob");
    let form = text(&h.get("/tokens/new", Some(&cookie)));
    let (csrf, id) = (field(&form, "csrf"), field(&form, "form_id"));
    let bob_csrf = field(&text(&h.get("/tokens/new", Some(&bob))), "csrf");
    let ok = format!("form_id={id}&name=x&expiration=30&scope=demo_api%3Aread");
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        (ok.clone(), vec![("sec-fetch-site", "same-origin")]),
        (
            format!("csrf={bob_csrf}&{ok}"),
            vec![("sec-fetch-site", "same-origin")],
        ),
        (
            // one character changed (not "x" for "x": a token starting with it stays valid)
            format!(
                "csrf={}{}&{ok}",
                if csrf.starts_with('x') { "y" } else { "x" },
                &csrf[1..]
            ),
            vec![("sec-fetch-site", "same-origin")],
        ),
        (
            format!("csrf={csrf}&{ok}"),
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.test"),
            ],
        ),
        (
            format!("csrf={csrf}&{ok}"),
            vec![
                ("sec-fetch-site", "same-site"),
                ("origin", "https://x.patgate.test"),
            ],
        ),
        (format!("csrf={csrf}&{ok}"), vec![("origin", "null")]),
        (
            format!("csrf={csrf}&{ok}"),
            vec![("origin", "https://evil.test")],
        ),
    ];
    for (body, headers) in &cases {
        let r = h
            .post_with("/tokens/new", body, Some(&cookie), headers)
            .response;
        assert_eq!(r.status, 403, "{headers:?} {body}");
        assert!(h.logged().contains("token page: refused"));
    }
    assert!(h.pats("alice").is_empty());
    // The same token from the same origin (Origin matching, no fetch metadata) works.
    let r = h
        .post_with(
            "/tokens/new",
            &format!("csrf={csrf}&{ok}"),
            Some(&cookie),
            &[("origin", ISSUER)],
        )
        .response;
    assert_eq!(r.status, 200, "{}", text(&r));
    // Revoke and regenerate are guarded the same way.
    let pat = h.pats("alice")[0].id.clone();
    for action in ["revoke", "regenerate"] {
        let r = h
            .post_with(
                &format!("/tokens/{pat}/{action}"),
                &format!("csrf={csrf}"),
                Some(&cookie),
                &[("sec-fetch-site", "cross-site")],
            )
            .response;
        assert_eq!(r.status, 403, "{action}");
    }
    let rec = &h.pats("alice")[0];
    assert_eq!(rec.status(NOW), Status::Active);
}

#[test]
fn revoke_with_confirmation_and_only_own_tokens() {
    let h = h();
    let cookie = h.sign_in("alice");
    let bob = h.sign_in("bob");
    h.create(&cookie, "name=x&expiration=30&scope=demo_api%3Aread");
    let rec = h.pats("alice")[0].clone();
    // Bob cannot see or act on it.
    assert_eq!(
        h.get(&format!("/tokens/{}/revoke", rec.id), Some(&bob))
            .status,
        404
    );
    let bob_csrf = field(&text(&h.get("/tokens/new", Some(&bob))), "csrf");
    let r = h.post(
        &format!("/tokens/{}/revoke", rec.id),
        &format!("csrf={bob_csrf}"),
        Some(&bob),
    );
    assert_eq!(r.response.status, 404);
    assert!(!text(&h.get("/tokens", Some(&bob))).contains(&rec.id));
    // Alice confirms.
    let confirm = h.get(&format!("/tokens/{}/revoke", rec.id), Some(&cookie));
    assert_eq!(confirm.status, 200);
    let csrf = field(&text(&confirm), "csrf");
    let r = h.post(
        &format!("/tokens/{}/revoke", rec.id),
        &format!("csrf={csrf}"),
        Some(&cookie),
    );
    assert_eq!(
        (r.response.status, r.response.header("location")),
        (303, Some("/tokens"))
    );
    assert_eq!(r.deferred.len(), 1, "the second KV delete");
    assert_eq!(h.pats("alice")[0].status(NOW), Status::Revoked);
    assert!(h.backend.kv.borrow().get(&rec.hash).is_none());
    // Again: harmless.
    let r = h.post(
        &format!("/tokens/{}/revoke", rec.id),
        &format!("csrf={csrf}"),
        Some(&cookie),
    );
    assert_eq!(r.response.status, 303);
    assert!(text(&h.get("/tokens", Some(&cookie))).contains("Revoked"));
}

#[test]
fn regenerate_once_per_confirmation() {
    let h = h();
    let cookie = h.sign_in("alice");
    let first = token_in(&text(
        &h.create(&cookie, "name=x&expiration=30&scope=demo_api%3Aread"),
    ));
    let rec = h.pats("alice")[0].clone();
    let confirm = text(&h.get(&format!("/tokens/{}/regenerate", rec.id), Some(&cookie)));
    let body = format!(
        "csrf={}&version={}",
        field(&confirm, "csrf"),
        field(&confirm, "version")
    );
    let r = h.post(
        &format!("/tokens/{}/regenerate", rec.id),
        &body,
        Some(&cookie),
    );
    assert_eq!(r.response.status, 200, "{}", text(&r.response));
    let second = token_in(&text(&r.response));
    assert_ne!(first, second);
    assert!(text(&r.response).contains("Token regenerated"));
    let after = h.pats("alice")[0].clone();
    assert_eq!(
        (after.id.as_str(), after.expires_at),
        (rec.id.as_str(), rec.expires_at)
    );
    assert_ne!(after.hash, rec.hash);
    // The reload re-posts: refused, nothing rotated.
    let again = h.post(
        &format!("/tokens/{}/regenerate", rec.id),
        &body,
        Some(&cookie),
    );
    assert_eq!(again.response.status, 409);
    assert!(!text(&again.response).contains("pgp_"));
    assert_eq!(h.pats("alice")[0].hash, after.hash);
}

/// Two posts of the same confirmation at once (a double click, two tabs): the version the form
/// carried is checked against one read, and exactly that version is rotated. The second post,
/// whose read came before the first one's rotation, rotates nothing.
#[test]
fn concurrent_posts_of_one_confirmation_rotate_once() {
    let h = h();
    let cookie = h.sign_in("alice");
    let _ = h.create(&cookie, "name=x&expiration=30&scope=demo_api%3Aread");
    let rec = h.pats("alice")[0].clone();
    let confirm = text(&h.get(&format!("/tokens/{}/regenerate", rec.id), Some(&cookie)));
    let body = format!(
        "csrf={}&version={}",
        field(&confirm, "csrf"),
        field(&confirm, "version")
    );
    // The other post rotates right after this one read the record.
    let other = crate::token::TokenHash([7; 32]);
    let id = rec.id.clone();
    h.backend
        .after_step(crate::testing::Step::PatRead, move |b| {
            let mut tokens = b.tokens.borrow_mut();
            let t = tokens.iter_mut().find(|t| t.id == id).expect("token");
            b.retired
                .borrow_mut()
                .push((t.hash, t.id.clone(), NOW, None));
            t.hash = other;
            t.generation += 1;
        });
    let r = h.post(
        &format!("/tokens/{}/regenerate", rec.id),
        &body,
        Some(&cookie),
    );
    assert_eq!(r.response.status, 409, "{}", text(&r.response));
    assert!(text(&r.response).contains("Already regenerated"));
    assert!(!text(&r.response).contains("pgp_"));
    let after = h.pats("alice")[0].clone();
    assert_eq!((after.hash, after.generation), (other, 1), "rotated once");
}

/// A regenerate that failed before anything changed (storage down: 503) works when the same
/// form is posted again.
#[test]
fn a_failed_regenerate_can_be_posted_again() {
    let h = h();
    let cookie = h.sign_in("alice");
    let _ = h.create(&cookie, "name=x&expiration=30&scope=demo_api%3Aread");
    let rec = h.pats("alice")[0].clone();
    let confirm = text(&h.get(&format!("/tokens/{}/regenerate", rec.id), Some(&cookie)));
    let body = format!(
        "csrf={}&version={}",
        field(&confirm, "csrf"),
        field(&confirm, "version")
    );
    let path = format!("/tokens/{}/regenerate", rec.id);
    h.backend
        .inject(crate::testing::Step::KvPut, crate::testing::Fault::Lost);
    h.backend
        .inject(crate::testing::Step::KvPut, crate::testing::Fault::Lost);
    let r = h.post(&path, &body, Some(&cookie));
    assert_eq!(r.response.status, 503, "{}", text(&r.response));
    assert!(text(&r.response).contains("Temporarily unavailable"));
    assert_eq!(h.pats("alice")[0].hash, rec.hash);
    let r = h.post(&path, &body, Some(&cookie));
    assert_eq!(r.response.status, 200, "{}", text(&r.response));
    assert!(text(&r.response).contains("pgp_"));
    assert_ne!(h.pats("alice")[0].hash, rec.hash);
}

#[test]
fn list_is_paginated_newest_first() {
    let mut h = h();
    let cookie = h.sign_in("alice");
    for i in 0..23 {
        h.now = NOW + i;
        let r = h.create(
            &cookie,
            &format!("name=t{i}&expiration=30&scope=demo_api%3Aread"),
        );
        assert_eq!(r.status, 200);
    }
    let first = text(&h.get("/tokens", Some(&cookie)));
    assert!(first.find(">t22<").expect("t22") < first.find(">t21<").expect("t21"));
    assert!(!first.contains(">t2<"), "only 20 on the first page");
    let start = first.find("/tokens?cursor=").expect("next link") + 15;
    let cursor = first[start..].split('"').next().expect("cursor");
    let second = text(&h.get(&format!("/tokens?cursor={cursor}"), Some(&cookie)));
    assert!(second.contains(">t2<") && second.contains(">t0<") && !second.contains(">t3<"));
    assert!(second.contains("Newest tokens"));
    assert_eq!(h.get("/tokens?cursor=!!", Some(&cookie)).status, 400);
}

#[test]
fn the_list_sorts_by_last_use_with_links_that_keep_the_order_across_pages() {
    let mut h = h();
    let cookie = h.sign_in("alice");
    for i in 0..23 {
        h.now = NOW + i;
        let r = h.create(
            &cookie,
            &format!("name=t{i}&expiration=30&scope=demo_api%3Aread"),
        );
        assert_eq!(r.status, 200);
    }
    // t{i} last used at NOW + 1000 + i for even i; odd ones never used
    for t in h.backend.tokens.borrow_mut().iter_mut() {
        let i: i64 = t.name.as_deref().unwrap_or("")[1..].parse().expect("t{i}");
        if i % 2 == 0 {
            t.last_used_at = Some(NOW + 1000 + i);
        }
    }
    let names = |page: &str| -> Vec<String> {
        page.split(r#"<span class="name">"#)
            .skip(1)
            .map(|p| p.split('<').next().unwrap_or("").to_owned())
            .collect()
    };
    let next_link = |page: &str| -> Option<String> {
        let start = page.find(r#"rel="next""#)?;
        let a = page[..start].rfind("href=\"")? + 6;
        Some(page[a..].split('"').next()?.replace("&amp;", "&"))
    };
    let walk = |first: &str| -> Vec<String> {
        let mut seen = Vec::new();
        let mut path = Some(first.to_owned());
        while let Some(p) = path {
            let r = h.get(&p, Some(&cookie));
            assert_eq!(r.status, 200, "{p}");
            let page = text(&r);
            seen.extend(names(&page));
            path = next_link(&page);
            if let Some(n) = &path {
                assert!(n.starts_with(first), "{n} keeps {first}");
            }
        }
        seen
    };
    let t = |v: &[i64]| -> Vec<String> { v.iter().map(|i| format!("t{i}")).collect() };
    let even_desc: Vec<i64> = (0..23).rev().filter(|i| i % 2 == 0).collect();
    let odd_desc: Vec<i64> = (0..23).rev().filter(|i| i % 2 == 1).collect();
    let first_page = text(&h.get("/tokens?sort=last_used", Some(&cookie)));
    assert_eq!(names(&first_page).len(), 20);
    // Never used tokens tie at 0: by id, which the test does not choose, so only the used
    // ones' order is pinned, and every token is listed exactly once.
    let all = walk("/tokens?sort=last_used");
    assert_eq!(all[..12], t(&even_desc)[..], "most recently used first");
    let mut rest = all[12..].to_vec();
    rest.sort();
    let mut want = t(&odd_desc);
    want.sort();
    assert_eq!(rest, want, "then the never used ones, each once");
    let all = walk("/tokens?sort=least_recently_used");
    let mut never = all[..11].to_vec();
    never.sort();
    assert_eq!(never, want, "never used first");
    let even_asc: Vec<i64> = even_desc.iter().rev().copied().collect();
    assert_eq!(all[11..], t(&even_asc)[..], "then the least recently used");
    // the sort links: each order's first page, the current one marked for assistive technology
    assert!(first_page.contains(r#"<nav class="sort" aria-label="Sort tokens">"#));
    assert!(first_page
        .contains(r#"<a href="/tokens?sort=last_used" aria-current="true">Recently used</a>"#));
    assert!(first_page.contains(r#"<a href="/tokens">Newest</a>"#));
    let nav = first_page
        .split(r#"<nav class="sort""#)
        .nth(1)
        .expect("nav");
    let nav = nav.split("</nav>").next().expect("nav end");
    assert_eq!(nav.matches("aria-current").count(), 1);
    assert!(first_page.contains(r#"<th scope="col" aria-sort="descending">Last used</th>"#));
    let default = text(&h.get("/tokens", Some(&cookie)));
    assert!(!default.contains("aria-sort"));
    assert!(default.contains(r#"<a href="/tokens" aria-current="true">Newest</a>"#));
    let second = h.get(&next_link(&first_page).expect("next"), Some(&cookie));
    assert!(text(&second).contains(r#"<a href="/tokens?sort=last_used">Most recently used</a>"#));
    // a bad order, or a cursor of another order: refused, not a list in some other order
    assert_eq!(h.get("/tokens?sort=uses", Some(&cookie)).status, 400);
    let cursor = next_link(&default).expect("next");
    let cursor = cursor.split("cursor=").nth(1).expect("cursor");
    let r = h.get(
        &format!("/tokens?sort=last_used&cursor={cursor}"),
        Some(&cookie),
    );
    assert_eq!(r.status, 400);
    assert!(
        text(&r).contains("Cursor belongs to another sort order"),
        "{}",
        text(&r)
    );
}

#[test]
fn methods_routes_and_bodies() {
    let h = h();
    let cookie = h.sign_in("alice");
    let r = h
        .send(&Request::new(Method::Delete, "/tokens").header("host", HOST))
        .response;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    assert_eq!(h.get("/tokens/nope", Some(&cookie)).status, 404);
    assert_eq!(h.get("/tokens/a/b", Some(&cookie)).status, 404);
    assert_eq!(h.get("/tokens/%2e%2e/revoke", Some(&cookie)).status, 404);
    let csrf = field(&text(&h.get("/tokens/new", Some(&cookie))), "csrf");
    // Oversized, non-form, repeated csrf: refused before anything happens.
    let big = format!("csrf={csrf}&name={}", "a".repeat(9000));
    assert_eq!(
        h.post("/tokens/new", &big, Some(&cookie)).response.status,
        413
    );
    let r = h.post(
        "/tokens/new",
        &format!("csrf={csrf}&csrf={csrf}&form_id=AAAAAAAAAAAAAAAAAAAAAA"),
        Some(&cookie),
    );
    assert_eq!(r.response.status, 400);
    let r = h.post(
        "/tokens/new",
        &format!("csrf={csrf}&form_id=short"),
        Some(&cookie),
    );
    assert_eq!(r.response.status, 400);
    assert!(h.pats("alice").is_empty());
    // Storage down: 503 page, cause logged.
    h.backend.break_d1.set(true);
    let r = h.get("/tokens", Some(&cookie));
    assert_eq!(r.status, 503);
    let logged = h.logged();
    assert!(
        logged.contains(r#""status":503"#) && logged.contains("token page:"),
        "{logged}"
    );
}

#[test]
fn sign_out_clears_the_session() {
    let h = h();
    let cookie = h.sign_in("alice");
    let csrf = field(&text(&h.get("/tokens", Some(&cookie))), "csrf");
    let r = h
        .post("/tokens/sign-out", &format!("csrf={csrf}"), Some(&cookie))
        .response;
    assert_eq!(r.status, 303);
    assert_eq!(
        set_cookie(&r, SESSION_COOKIE).as_deref(),
        Some("__Host-patgate_session=")
    );
}

#[test]
fn a_form_posted_twice_at_once_keeps_the_first_token() {
    // Both requests passed the "already created?" check; the second insert hits the same id.
    let h = h();
    let ctx = Ctx {
        cfg: &h.cfg,
        backend: &h.backend,
        isolate: &h.isolate,
        now: h.now,
        now_ms: h.now * 1000,
    };
    let body = || crate::app::tokens::CreatePat {
        name: "twice".into(),
        scopes: vec!["demo_api:read".into()],
        expires_at: None,
        expires_in_days: Some(30),
        allow_self_rotation: false,
        revoke_on_reuse: false,
    };
    let id = "AAAAAAAAAAAAAAAAAAAAAA".to_owned();
    let fresh = || crate::token::PlainToken::generate(crate::token::TokenKind::Pat).expect("rng");
    let (first, token) = block_on(crate::app::tokens::issue_pat_with_id(
        &ctx,
        "alice".into(),
        body(),
        Some((id.clone(), fresh())),
    ))
    .expect("first");
    let second = block_on(crate::app::tokens::issue_pat_with_id(
        &ctx,
        "alice".into(),
        body(),
        Some((id, fresh())),
    ));
    assert!(second.is_err(), "the duplicate fails");
    let pats = h.pats("alice");
    assert_eq!(pats.len(), 1);
    assert_eq!(
        pats[0].hash, first.hash,
        "the first token's record is untouched"
    );
    assert_eq!(pats[0].hash, token.hash());
    assert!(
        h.backend.kv.borrow().contains_key(&first.hash),
        "and its grant"
    );
}

#[test]
fn a_disabled_pat_client_offers_and_creates_nothing() {
    let h = h();
    let cookie = h.sign_in("alice");
    h.backend.clients.borrow_mut()[0].enabled = false;
    let h = H {
        isolate: IsolateState::default(), // forget the cached client
        ..h
    };
    let form = text(&h.get("/tokens/new", Some(&cookie)));
    assert!(form.contains("No scopes are available"), "{form}");
    assert!(!form.contains("name=\"scope\""));
    let r = h.create(&cookie, "name=x&expiration=30&scope=demo_api%3Aread");
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("cannot be created at the moment"));
    assert!(h.pats("alice").is_empty());
}

#[test]
fn creation_rate_limit_is_a_429_page() {
    let h = h();
    let cookie = h.sign_in("alice");
    h.backend
        .limits
        .borrow_mut()
        .insert(crate::store::Limit::PatCreationsPerUser, 1);
    let ok = h.create(&cookie, "name=a&expiration=30&scope=demo_api%3Aread");
    assert_eq!(ok.status, 200);
    let r = h.create(&cookie, "name=b&expiration=30&scope=demo_api%3Aread");
    assert_eq!(r.status, 429, "{}", text(&r));
    assert!(r.header("retry-after").is_some());
    assert!(text(&r).contains("Too many PAT creations per user"));
    assert_eq!(h.pats("alice").len(), 1);
}

#[test]
fn lifecycle_options_unchecked_by_default_and_labelled() {
    let h = h();
    let cookie = h.sign_in("alice");
    let html = text(&h.get("/tokens/new", Some(&cookie)));
    for (name, label) in [
        ("allow_self_rotation", "Allow this token to rotate itself"),
        (
            "revoke_on_reuse",
            "Revoke this token if a replaced token is used again",
        ),
    ] {
        let input = format!(
            "<input id=\"{name}\" type=\"checkbox\" name=\"{name}\" aria-describedby=\"{name}-hint\">"
        );
        assert!(html.contains(&input), "unchecked, described: {html}");
        assert!(html.contains(&format!("<label for=\"{name}\">{label}</label>")));
        assert!(html.contains(&format!("id=\"{name}-hint\"")));
    }
    // Unchecked (absent): both off, shown as such.
    let r = h.create(&cookie, "name=plain&expiration=30&scope=demo_api%3Aread");
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(text(&r).contains("<dd class=\"options\">none</dd>"));
    let p = &h.pats("alice")[0];
    assert!(!p.allow_self_rotation && !p.revoke_on_reuse);
    let list = text(&h.get("/tokens", Some(&cookie)));
    assert!(!list.contains("self-rotation allowed") && !list.contains("revoke on reuse"));
}

#[test]
fn lifecycle_options_checked_reach_the_record_and_the_views() {
    for (body, self_rot, reuse) in [
        ("allow_self_rotation=on", true, false),
        ("revoke_on_reuse=on", false, true),
        ("allow_self_rotation=on&revoke_on_reuse=on", true, true),
    ] {
        let h = h();
        let cookie = h.sign_in("alice");
        let r = h.create(
            &cookie,
            &format!("name=ci&expiration=30&scope=demo_api%3Aread&{body}"),
        );
        assert_eq!(r.status, 200, "{body}: {}", text(&r));
        let p = &h.pats("alice")[0];
        assert_eq!(
            (p.allow_self_rotation, p.revoke_on_reuse),
            (self_rot, reuse),
            "{body}"
        );
        let shown = text(&r);
        let list = text(&h.get("/tokens", Some(&cookie)));
        for html in [&shown, &list] {
            assert_eq!(html.contains("self-rotation allowed"), self_rot, "{body}");
            assert_eq!(html.contains("revoke on reuse"), reuse, "{body}");
        }
        // The API sees the same record.
        let view: serde_json::Value = serde_json::from_slice(
            &h.send(
                &Request::new(Method::Get, &format!("/api/pats/{}", p.id)).header(
                    "authorization",
                    &format!("Bearer {}", user_jwt("alice", NOW + 600)),
                ),
            )
            .response
            .body,
        )
        .expect("json");
        assert_eq!(view["allow_self_rotation"], self_rot, "{view}");
        assert_eq!(view["revoke_on_reuse"], reuse, "{view}");
    }
}

#[test]
fn lifecycle_options_refuse_anything_but_on() {
    let h = h();
    let cookie = h.sign_in("alice");
    let base = "name=x&expiration=30&scope=demo_api%3Awrite";
    for bad in [
        "allow_self_rotation=true",
        "allow_self_rotation=1",
        "allow_self_rotation=ON",
        "allow_self_rotation=",
        "allow_self_rotation",
        "allow_self_rotation=on%20",
        "allow_self_rotation=on%00",
        "allow_self_rotation=on&allow_self_rotation=on",
        "revoke_on_reuse=false",
        "revoke_on_reuse=%3Cscript%3E",
        "revoke_on_reuse=on&revoke_on_reuse=off",
        &format!("revoke_on_reuse={}", "on".repeat(2000)),
        "allow_self_rotation=on&revoke_on_reuse=yes",
    ] {
        let r = h.create(&cookie, &format!("{base}&{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", text(&r));
        let html = text(&r);
        assert!(html.contains("id=\"options-error\""), "{bad}: {html}");
        assert!(html.contains("can only be checked or unchecked"), "{bad}");
        assert_eq!(
            html.matches("<script").count(),
            1,
            "only the page's own: {bad}"
        );
        // The other input is kept, the options are not: both unchecked.
        assert!(html.contains("value=\"x\""), "{bad}");
        assert!(html.contains("value=\"demo_api:write\" checked"), "{bad}");
        assert!(
            !html.contains("name=\"allow_self_rotation\" checked"),
            "{bad}"
        );
        assert!(!html.contains("name=\"revoke_on_reuse\" checked"), "{bad}");
    }
    assert!(h.pats("alice").is_empty(), "nothing was created");
    // A checked box is kept when another field fails.
    let r = h.create(
        &cookie,
        "name=&expiration=30&scope=demo_api%3Aread&revoke_on_reuse=on",
    );
    assert_eq!(r.status, 400);
    let html = text(&r);
    assert!(html.contains("id=\"name-error\"") && !html.contains("options-error"));
    assert!(html.contains("name=\"revoke_on_reuse\" checked"), "{html}");
    assert!(!html.contains("name=\"allow_self_rotation\" checked"));
    assert!(h.pats("alice").is_empty());
}

#[test]
fn lifecycle_options_still_need_the_csrf_token_and_same_origin() {
    let h = h();
    let cookie = h.sign_in("alice");
    let form = text(&h.get("/tokens/new", Some(&cookie)));
    let (csrf, id) = (field(&form, "csrf"), field(&form, "form_id"));
    let ok = format!(
        "form_id={id}&name=x&expiration=30&scope=demo_api%3Aread&allow_self_rotation=on&revoke_on_reuse=on"
    );
    for (body, headers) in [
        (ok.clone(), vec![("sec-fetch-site", "same-origin")]),
        (
            format!("csrf=forged&{ok}"),
            vec![("sec-fetch-site", "same-origin")],
        ),
        (
            format!("csrf={csrf}&{ok}"),
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.test"),
            ],
        ),
    ] {
        let r = h
            .post_with("/tokens/new", &body, Some(&cookie), &headers)
            .response;
        assert_eq!(r.status, 403, "{headers:?}");
    }
    assert!(h.pats("alice").is_empty());
    let r = h.post("/tokens/new", &format!("csrf={csrf}&{ok}"), Some(&cookie));
    assert_eq!(r.response.status, 200, "{}", text(&r.response));
    let p = &h.pats("alice")[0];
    assert!(p.allow_self_rotation && p.revoke_on_reuse);
}

#[test]
fn the_list_shows_the_one_status_introspection_uses() {
    let mut h = h();
    let cookie = h.sign_in("alice");
    h.create(&cookie, "name=ci&expiration=30&scope=demo_api%3Aread");
    let row_of = |html: &str| {
        let start = html.find("<tbody>").expect("a table");
        html[start..].to_owned()
    };
    let html = row_of(&text(&h.get("/tokens", Some(&cookie))));
    assert!(
        html.contains("s-active") && !html.contains("s-inactive"),
        "{html}"
    );
    // the PAT client is disabled (at another location: this isolate learns it on its next read)
    h.backend.clients.borrow_mut()[0].enabled = false;
    h.isolate = IsolateState::default();
    let cookie = h.sign_in("alice");
    let html = row_of(&text(&h.get("/tokens", Some(&cookie))));
    assert!(
        html.contains(">Inactive<") && !html.contains("s-active"),
        "{html}"
    );
    // it can be revoked, not regenerated
    assert!(
        html.contains("/revoke\"") && !html.contains("/regenerate\""),
        "{html}"
    );
    // enabled again: active again
    h.backend.clients.borrow_mut()[0].enabled = true;
    h.isolate = IsolateState::default();
    let cookie = h.sign_in("alice");
    let html = row_of(&text(&h.get("/tokens", Some(&cookie))));
    assert!(html.contains(">Active<"), "{html}");
}

#[test]
fn every_leak_report_url_is_linked() {
    let h = h();
    let cookie = h.sign_in("alice");
    h.create(&cookie, "name=ci&expiration=30&scope=demo_api%3Aread");
    {
        let mut tokens = h.backend.tokens.borrow_mut();
        let t = &mut tokens[0];
        t.revoked_at = Some(NOW);
        t.revoked_reason = Some("leaked".into());
        t.revoked_url = Some("https://github.com/o/r/blob/a/f".into());
        t.leak_urls = vec![
            "https://github.com/fork/r/blob/b/f".into(),
            "https://github.com/o/r/blob/a/f".into(),
        ];
    }
    let html = text(&h.get("/tokens", Some(&cookie)));
    assert!(
        html.contains(r#"href="https://github.com/fork/r/blob/b/f" rel="noopener noreferrer nofollow">(where)</a>"#),
        "{html}"
    );
    assert!(
        html.contains(
            r#"href="https://github.com/o/r/blob/a/f" rel="noopener noreferrer nofollow">(2)</a>"#
        ),
        "{html}"
    );
}

// --- a double submit never loses the token ----------------------------------------------------

/// A session and a filled form: (cookie, body).
fn filled_form(h: &H, user: &str) -> (String, String) {
    let cookie = h.sign_in(user);
    let html = text(&h.get("/tokens/new", Some(&cookie)));
    let (csrf, id) = (field(&html, "csrf"), field(&html, "form_id"));
    let body = format!(
        "csrf={csrf}&form_id={id}&name=twice&expiration=30&custom_date=&scope=demo_api%3Aread"
    );
    (cookie, body)
}

#[test]
fn a_second_post_of_the_form_shows_the_same_token_for_a_minute_then_never() {
    let mut h = h();
    let (cookie, body) = filled_form(&h, "alice");
    let first = h.post("/tokens/new", &body, Some(&cookie)).response;
    assert_eq!(first.status, 200);
    let token = token_in(&text(&first));
    // KV holds it sealed: never the token itself, never a grant
    let sealed = h
        .backend
        .sealed
        .borrow()
        .values()
        .next()
        .cloned()
        .expect("kept");
    assert!(!sealed.0.contains(&token) && !sealed.0.contains("pgp_"));
    assert_eq!(sealed.1, NOW + super::replay::REPLAY_SECS);
    h.now = NOW + super::replay::REPLAY_SECS - 1;
    let second = h.post("/tokens/new", &body, Some(&cookie)).response;
    assert_eq!(second.status, 200, "{}", text(&second));
    assert_eq!(token_in(&text(&second)), token, "the same token");
    h.now = NOW + super::replay::REPLAY_SECS;
    let late = h.post("/tokens/new", &body, Some(&cookie)).response;
    assert_eq!(late.status, 409);
    assert!(text(&late).contains("already created"));
    assert!(
        !text(&late).contains("pgp_"),
        "after the minute: never again"
    );
    assert_eq!(h.pats("alice").len(), 1, "one PAT in all");
}

#[test]
fn only_the_same_session_sees_it_again_and_only_while_it_is_unchanged() {
    let h = h();
    let (cookie, body) = filled_form(&h, "alice");
    let token = token_in(&text(&h.post("/tokens/new", &body, Some(&cookie)).response));
    // Another session of the same user cannot post this form (CSRF bound to the session)...
    let other = h.sign_in("alice");
    let r = h.post("/tokens/new", &body, Some(&other)).response;
    assert_eq!(r.status, 403);
    // ...and a sealed token opens only with the key of its own session and form: forge the
    // other session's CSRF token on the same form id, and nothing is shown.
    let html = text(&h.get("/tokens/new", Some(&other)));
    let forged = body.replacen(
        &format!("csrf={}", field_value(&body, "csrf")),
        &format!("csrf={}", field(&html, "csrf")),
        1,
    );
    let r = h.post("/tokens/new", &forged, Some(&other)).response;
    assert_eq!(r.status, 409, "{}", text(&r));
    assert!(!text(&r).contains("pgp_"));
    // Regenerated since: the old token is dead and the new one was shown on its own page.
    let id = h.pats("alice")[0].id.clone();
    let confirm = text(&h.get(&format!("/tokens/{id}/regenerate"), Some(&cookie)));
    let regen = h.post(
        &format!("/tokens/{id}/regenerate"),
        &format!(
            "csrf={}&version={}",
            field(&confirm, "csrf"),
            field(&confirm, "version")
        ),
        Some(&cookie),
    );
    assert_eq!(regen.response.status, 200);
    let r = h.post("/tokens/new", &body, Some(&cookie)).response;
    assert_eq!(r.status, 409);
    assert!(!text(&r).contains(&token) && !text(&r).contains("pgp_"));
}

#[test]
fn a_revoked_token_is_not_shown_again() {
    let h = h();
    let (cookie, body) = filled_form(&h, "alice");
    assert_eq!(
        h.post("/tokens/new", &body, Some(&cookie)).response.status,
        200
    );
    let id = h.pats("alice")[0].id.clone();
    let confirm = text(&h.get(&format!("/tokens/{id}/revoke"), Some(&cookie)));
    let r = h.post(
        &format!("/tokens/{id}/revoke"),
        &format!("csrf={}", field(&confirm, "csrf")),
        Some(&cookie),
    );
    assert_eq!(r.response.status, 303);
    let again = h.post("/tokens/new", &body, Some(&cookie)).response;
    assert_eq!(again.status, 409);
    assert!(!text(&again).contains("pgp_"));
}

#[test]
fn twin_posts_racing_to_create_both_show_the_one_token_that_exists() {
    // The second POST passes the "already created?" check while the first is still running,
    // and its insert lands first: the first one's insert of the same id then fails.
    let h = h();
    let (cookie, body) = filled_form(&h, "alice");
    let (cfg, twin_body, twin_cookie) = (h.cfg.clone(), body.clone(), cookie.clone());
    let twin_answer = std::rc::Rc::new(std::cell::RefCell::new(None));
    let answer_slot = twin_answer.clone();
    // Right after the first POST kept its sealed token (its first KV write), the twin runs whole.
    h.backend
        .after_step(crate::testing::Step::KvPut, move |b: &MemoryBackend| {
            use futures::FutureExt as _;
            let isolate = IsolateState::default();
            let ctx = Ctx {
                cfg: &cfg,
                backend: b,
                isolate: &isolate,
                now: NOW,
                now_ms: NOW * 1000,
            };
            let req = Request::new(Method::Post, "/tokens/new")
                .header("host", HOST)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .header("cookie", &twin_cookie)
                .body(twin_body.as_str());
            let o = handle(&ctx, &req)
                .now_or_never()
                .expect("the in-memory backend never waits");
            *answer_slot.borrow_mut() = Some(o.response);
        });
    let first = h.post("/tokens/new", &body, Some(&cookie)).response;
    let twin = twin_answer.borrow_mut().take().expect("the twin ran");
    assert_eq!(twin.status, 200, "{}", text(&twin));
    assert_eq!(first.status, 200, "{}", text(&first));
    let token = token_in(&text(&twin));
    assert_eq!(token_in(&text(&first)), token, "both show the twin's token");
    let pats = h.pats("alice");
    assert_eq!(pats.len(), 1);
    assert_eq!(
        pats[0].hash,
        crate::token::PlainToken::parse(&token)
            .expect("token")
            .hash(),
        "the token shown is the PAT's"
    );
}

#[test]
fn a_failed_seal_still_creates_the_token_and_a_repeat_is_409_as_before() {
    let h = h();
    let (cookie, body) = filled_form(&h, "alice");
    h.backend
        .inject(crate::testing::Step::KvPut, crate::testing::Fault::Lost);
    let first = h.post("/tokens/new", &body, Some(&cookie)).response;
    assert_eq!(first.status, 200, "{}", text(&first));
    assert!(h.logged().contains("token not kept for a resubmission"));
    let again = h.post("/tokens/new", &body, Some(&cookie)).response;
    assert_eq!(again.status, 409);
    assert!(!text(&again).contains("pgp_"));
    assert_eq!(h.pats("alice").len(), 1);
}

/// The value of `name=` in a urlencoded body.
fn field_value(body: &str, name: &str) -> String {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .expect(name)
        .to_owned()
}

#[test]
fn other_hosts_never_serve_the_page_and_a_local_one_says_where_it_is() {
    let mut h = h();
    let get = |h: &H, host: &str, path: &str| {
        h.send(&Request::new(Method::Get, path).header("host", host))
            .response
    };
    // production issuer: a bare 404 on other hosts, nothing about the page
    for path in ["/", "/tokens", "/tokens/new"] {
        let r = get(&h, "api.example.com", path);
        assert_eq!(r.status, 404);
        assert_eq!(r.json_body(), serde_json::json!({"error": "not_found"}));
    }
    // a loopback issuer (npm start): the gate's host says where the page is
    h.cfg.issuer = "http://127.0.0.1:8787".into();
    for path in ["/", "/tokens", "/favicon.ico"] {
        let r = get(&h, "localhost:8787", path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            r.json_body()["error_description"],
            "this host serves the gate; the token page is on http://127.0.0.1:8787/"
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    // and the page itself is still served on the issuer's host
    assert_eq!(get(&h, "127.0.0.1:8787", "/").status, 303);
    // other paths on the gate host are patgate's endpoints as before
    assert_eq!(
        get(&h, "localhost:8787", "/nope").json_body(),
        serde_json::json!({"error": "not_found"})
    );
}

#[test]
fn a_creation_cut_off_before_its_kv_write_is_completed_by_the_resubmission() {
    // The runtime cancels a request whose client went away (the first POST of a double submit):
    // it may end after the D1 insert and before the KV grant, whose absence makes a token dead.
    let h = h();
    let (cookie, body) = filled_form(&h, "alice");
    let token = token_in(&text(&h.post("/tokens/new", &body, Some(&cookie)).response));
    let hash = crate::token::PlainToken::parse(&token)
        .expect("token")
        .hash();
    h.backend.kv.borrow_mut().remove(&hash);
    let again = h.post("/tokens/new", &body, Some(&cookie)).response;
    assert_eq!(again.status, 200, "{}", text(&again));
    assert_eq!(token_in(&text(&again)), token);
    assert!(
        h.backend.kv.borrow().get(&hash).is_some_and(|g| !g.marker),
        "the grant is back: the token shown works"
    );
    // KV unreadable: nothing is written blind, nothing shown
    h.backend.kv.borrow_mut().remove(&hash);
    h.backend.break_kv.set(true);
    let r = h.post("/tokens/new", &body, Some(&cookie)).response;
    h.backend.break_kv.set(false);
    assert_ne!(r.status, 200);
    assert!(!text(&r).contains("pgp_"));
}

#[test]
fn a_revocation_landing_during_the_repair_is_not_undone() {
    let h = h();
    let (cookie, body) = filled_form(&h, "alice");
    let token = token_in(&text(&h.post("/tokens/new", &body, Some(&cookie)).response));
    let hash = crate::token::PlainToken::parse(&token)
        .expect("token")
        .hash();
    h.backend.kv.borrow_mut().remove(&hash);
    // right after the repair's KV write, the PAT is revoked (its own KV delete came before ours)
    h.backend
        .after_step(crate::testing::Step::KvPut, move |b: &MemoryBackend| {
            let mut tokens = b.tokens.borrow_mut();
            let t = tokens.iter_mut().find(|t| t.hash == hash).expect("token");
            t.revoked_at = Some(NOW);
        });
    let r = h.post("/tokens/new", &body, Some(&cookie)).response;
    assert_eq!(r.status, 409, "{}", text(&r));
    assert!(!text(&r).contains("pgp_"));
    assert!(
        !h.backend.kv.borrow().contains_key(&hash),
        "the revoked token's grant is gone again"
    );
}

/// The list's hints and link, and a token's usage page: the chart of its last 30 days (numbers
/// as text too), totals, where it was used from, an administrator's reason; only for the owner.
#[test]
#[allow(clippy::too_many_lines)]
fn usage_page_shows_the_chart_totals_and_places_to_the_owner_only() {
    use crate::last_use::FromEntry;
    use crate::usage::{day_of, summary::DailyUses};
    let h = h();
    let cookie = h.sign_in("alice");
    let bob = h.sign_in("bob");
    h.create(&cookie, "name=ci&expiration=30&scope=demo_api%3Aread");
    h.create(&cookie, "name=old&expiration=30&scope=demo_api%3Aread");
    let today = day_of(NOW);
    let (used, old) = {
        let mut tokens = h.backend.tokens.borrow_mut();
        let t = tokens
            .iter_mut()
            .find(|t| t.name.as_deref() == Some("ci"))
            .expect("ci");
        t.daily_uses = DailyUses {
            days: vec![(today - 40, 9), (today - 2, 3), (today, 12)],
        };
        t.use_count = 24;
        t.last_used_at = Some(NOW - 60);
        t.last_used_from = vec![
            FromEntry {
                via: "gate".into(),
                name: "demo".into(),
                ip: Some("203.0.113.7".into()),
                country: Some("DE".into()),
                colo: Some("FRA".into()),
                first_at: NOW - 3 * 86_400,
                last_at: NOW - 60,
            },
            FromEntry {
                via: "introspection".into(),
                name: "demo_api".into(),
                ip: None,
                country: None,
                colo: None,
                first_at: NOW - 86_400,
                last_at: NOW - 120,
            },
        ];
        let used = t.id.clone();
        let o = tokens
            .iter_mut()
            .find(|t| t.name.as_deref() == Some("old"))
            .expect("old");
        o.last_used_at = Some(NOW - 61 * 86_400);
        (used, o.id.clone())
    };
    let list = text(&h.get("/tokens", Some(&cookie)));
    assert!(list.contains("Used today"), "{list}");
    assert!(list.contains("Unused for 61 days"), "{list}");
    assert!(list.contains(&format!(r#"href="/tokens/{used}/usage""#)));
    assert!(list.contains(&format!(r#"href="/tokens/{old}/usage""#)));
    let r = h.get(&format!("/tokens/{used}/usage"), Some(&cookie));
    assert_eq!(r.status, 200);
    let page = text(&r);
    // the chart: 30 days, the two recent days as focusable bars, the 40-day-old use outside it
    assert!(page.contains(r#"viewBox="0 0 300 93""#), "{page}");
    assert_eq!(page.matches(r#"tabindex="0""#).count(), 2, "{page}");
    assert!(page.contains("<strong>15</strong> in all"), "{page}");
    assert!(page.contains("Uses per day as a table"));
    // totals: today, 7, 30, 90 days, since created
    for (label, n) in [
        ("Today", 12),
        ("Last 7 days", 15),
        ("Last 30 days", 15),
        ("Last 90 days", 24),
        ("Since created", 24),
    ] {
        assert!(
            page.contains(&format!("<dt>{label}</dt><dd>{n}</dd>")),
            "{label}: {page}"
        );
    }
    assert!(
        page.contains("Gate route demo") && page.contains("203.0.113.7") && page.contains("FRA")
    );
    assert!(
        page.contains("API demo_api (it asked patgate; the caller's address is not seen)"),
        "{page}"
    );
    assert!(
        !page.contains("<script src"),
        "no script beyond the page's one inline script"
    );
    // never used: a flat chart that says so
    let page = text(&h.get(&format!("/tokens/{old}/usage"), Some(&cookie)));
    assert!(page.contains("No uses in these days.") && page.contains("No use recorded yet."));
    // only the owner; forged and malformed ids; GET only
    assert_eq!(
        h.get(&format!("/tokens/{used}/usage"), Some(&bob)).status,
        404
    );
    assert_eq!(h.get("/tokens/nope/usage", Some(&cookie)).status, 404);
    assert_eq!(h.get("/tokens/a%2Fb/usage", Some(&cookie)).status, 404);
    assert_eq!(
        h.get(&format!("/tokens/{}/usage", "a".repeat(65)), Some(&cookie))
            .status,
        404
    );
    assert_eq!(
        h.get(&format!("/tokens/{used}/usage/x"), Some(&cookie))
            .status,
        404
    );
    let csrf = field(&text(&h.get("/tokens/new", Some(&cookie))), "csrf");
    let r = h.post(
        &format!("/tokens/{used}/usage"),
        &format!("csrf={csrf}"),
        Some(&cookie),
    );
    assert_eq!(r.response.status, 405);
    assert_ne!(
        h.get(&format!("/tokens/{used}/usage"), None).status,
        200,
        "signed in only"
    );
    // an administrator's revocation: its reason in the list and on the page
    {
        let mut tokens = h.backend.tokens.borrow_mut();
        let t = tokens.iter_mut().find(|t| t.id == used).expect("used");
        t.revoked_at = Some(NOW);
        t.revoked_reason = Some("admin".into());
        t.revoked_message = Some("rotate <your> keys".into());
    }
    let list = text(&h.get("/tokens", Some(&cookie)));
    assert!(
        list.contains("Revoked by an administrator") && list.contains("rotate &lt;your&gt; keys"),
        "{list}"
    );
    let page = text(&h.get(&format!("/tokens/{used}/usage"), Some(&cookie)));
    assert!(page.contains("rotate &lt;your&gt; keys"), "{page}");
}
