//! Host-side tools built from the project's own code (`cargo run --release --features tools
//! --bin patgate-tools -- ...`), used by the benchmark:
//!
//! - `seed-growth N DIR NOW`: writes `DIR/growth-K.sql` and `DIR/growth-K.json` (D1 rows and KV
//!   grants for N PATs of other users, in files of 25,000), made with the same record types, grant
//!   format and D1 columns as the Worker, so the stored formats are written in one place.
//! - `seed-flow N DIR NOW CLIENT_ID CLIENT_UID API_UID RESOURCE REDIRECT_URI`: writes the
//!   authorization server's rows for the benchmark's code exchange and refresh scenarios:
//!   `DIR/codes.sql` (N authorization codes of one user for the client, each valid for an hour:
//!   a code is single use, and wrk needs them for longer than a code's 60 s),
//!   `DIR/refresh.sql` (N grants, each with its first refresh token), and the matching request
//!   bodies, one per line: `DIR/codes.txt`, `DIR/refresh.txt`.
//! - `seed-clients N DIR NOW KEY`: writes `DIR/clients-K.sql` (D1 rows of N self-registered
//!   clients, RFC 7591 style: public, `pgd_` ids tagged with the base64 key KEY as
//!   `CLIENT_ID_KEYS` would, in files of 25,000), with the clients' D1 columns of
//!   `storage::authz_rows`, so that the benchmark measures client authentication among them.
//! - `introspect N`: runs N introspections of one active PAT through the whole core (parse the
//!   form, authenticate the API resource, hash, decide, serialize) over the in-memory backend. The
//!   benchmark runs it under `valgrind --tool=callgrind` for a noise-free instructions-per-decision
//!   figure.

use patgate::app::{self, Config, Ctx, IsolateState};
use patgate::authz::code::{grant_from_code, new_code};
use patgate::authz::records::{Approved, Audience};
use patgate::authz::records::{ClientProfile, ClientSource};
use patgate::authz::refresh::{first, RefreshPolicy};
use patgate::authz::secrets::{generate_dynamic_id, ClientIdKey};
use patgate::authz::secrets::{GrantSecret, SecretKind};
use patgate::http::{Method, Request};
use patgate::model::{ApiResource, Client, SecretSet, TokenFormat, TokenRecord};
use patgate::oauth::authorize::{CodeChallenge, CodeVerifier};
use patgate::oauth::client_metadata::GrantType;
use patgate::secret::ClientSecret;
use patgate::storage::authz_rows::{client_profile_values, Bind, CLIENT_PROFILE_COLUMNS};
use patgate::storage::authz_rows::{
    code_columns, code_values, grant_values, refresh_values, GRANT_COLUMNS, REFRESH_COLUMNS,
};
use patgate::testing::MemoryBackend;
use patgate::token::{random_id, PlainToken, TokenKind};
use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;

/// Drives a future of the in-memory backend (it never waits on anything) to completion.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("patgate-tools: {msg}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["seed-growth", n, dir, now] => seed_growth(
            n.parse().unwrap_or_else(|_| fail("N must be a number")),
            dir,
            now.parse()
                .unwrap_or_else(|_| fail("NOW must be unix seconds")),
        ),
        ["seed-flow", n, dir, now, client_id, uid, api_uid, resource, redirect] => {
            seed_flow(
                n.parse().unwrap_or_else(|_| fail("N must be a number")),
                dir,
                now.parse()
                    .unwrap_or_else(|_| fail("NOW must be unix seconds")),
                &FlowClient {
                    client_id,
                    client_uid: uid,
                    api_uid,
                    resource,
                    redirect,
                },
            );
        }
        ["seed-clients", n, dir, now, key] => seed_clients(
            n.parse().unwrap_or_else(|_| fail("N must be a number")),
            dir,
            now.parse()
                .unwrap_or_else(|_| fail("NOW must be unix seconds")),
            key,
        ),
        ["introspect", n] => introspect(n.parse().unwrap_or_else(|_| fail("N must be a number"))),
        _ => fail(
            "usage: seed-growth N DIR NOW | seed-flow N DIR NOW CLIENT_ID CLIENT_UID API_UID \
             RESOURCE REDIRECT_URI | seed-clients N DIR NOW KEY | introspect N",
        ),
    }
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn sql_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "NULL".to_owned(), sql_text)
}

fn seed_growth(n: usize, dir: &str, now: i64) {
    const PER_FILE: usize = 25_000;
    const PER_STATEMENT: usize = 500;
    let exp = now + 30 * 86_400;
    for (file, start) in (0..n).step_by(PER_FILE).enumerate() {
        let end = n.min(start + PER_FILE);
        let mut sql = String::new();
        let mut kv = Vec::with_capacity(end - start);
        for chunk in (start..end).step_by(PER_STATEMENT) {
            let mut rows = Vec::new();
            for j in chunk..end.min(chunk + PER_STATEMENT) {
                let token =
                    PlainToken::generate(TokenKind::Pat).unwrap_or_else(|_| fail("no randomness"));
                let rec = TokenRecord {
                    name: Some(format!("bulk {j}")),
                    created_at: now - 86_400 - j as i64,
                    expires_at: exp,
                    ..patgate::testing::pat_record(
                        &format!("bulk{j:07}"),
                        &format!("bulk-user-{}", j % 10_000),
                        token.hash(),
                        now,
                    )
                };
                let values = patgate::model::token_insert_values(&rec);
                rows.push(format!(
                    "({})",
                    values
                        .iter()
                        .map(|v| match v {
                            patgate::model::SqlValue::Text(t) => sql_text(t),
                            patgate::model::SqlValue::OptText(t) => sql_opt(t.as_deref()),
                            patgate::model::SqlValue::Int(i) => i.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                ));
                let grant = rec.grant(now + app::config::DEFAULT_GRANT_CACHE_SECS);
                kv.push(serde_json::json!({
                    "key": format!("g:{}", rec.hash.to_hex()),
                    "value": serde_json::to_string(&grant).unwrap_or_else(|_| fail("json")),
                    "expiration": exp,
                }));
            }
            let _ = writeln!(
                sql,
                "INSERT INTO tokens ({}) VALUES\n{};",
                patgate::model::TOKEN_INSERT_COLUMNS,
                rows.join(",\n")
            );
        }
        let write = |name: String, body: &[u8]| {
            std::fs::File::create(format!("{dir}/{name}"))
                .and_then(|mut f| f.write_all(body))
                .unwrap_or_else(|e| fail(&format!("writing {name}: {e}")));
        };
        write(format!("growth-{file}.sql"), sql.as_bytes());
        let json = serde_json::to_vec(&kv).unwrap_or_else(|_| fail("json"));
        write(format!("growth-{file}.json"), &json);
    }
}

/// The client, API and redirect URI the flow rows are for.
struct FlowClient<'a> {
    client_id: &'a str,
    client_uid: &'a str,
    api_uid: &'a str,
    resource: &'a str,
    redirect: &'a str,
}

fn sql_values(values: &[Bind]) -> String {
    let v: Vec<String> = values.iter().map(sql_bind).collect();
    format!("({})", v.join(","))
}

fn form_value(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn no_rng<T>(_: getrandom::Error) -> T {
    fail("no randomness")
}

fn seed_flow(n: usize, dir: &str, now: i64, c: &FlowClient<'_>) {
    const PER_STATEMENT: usize = 250;
    const VERIFIER: &str = "bench-verifier-0123456789-0123456789-0123456789";
    let verifier = CodeVerifier::parse(VERIFIER).unwrap_or_else(|_| fail("verifier"));
    let approved = Approved {
        subject: "bench-user".into(),
        client_id: c.client_id.into(),
        client_uid: c.client_uid.into(),
        redirect_uri: c.redirect.into(),
        redirect_key: c.redirect.into(),
        code_challenge: CodeChallenge::of(&verifier),
        audience: Audience {
            resource: c.resource.into(),
            api_id: "demo_api".into(),
            api_uid: c.api_uid.into(),
        },
        scopes: vec!["demo_api:read".into()],
    };
    let policy = RefreshPolicy::default();
    let (mut codes_sql, mut refresh_sql) = (String::new(), String::new());
    let (mut codes_txt, mut refresh_txt) = (String::new(), String::new());
    let client = form_value(c.client_id);
    for chunk in (0..n).step_by(PER_STATEMENT) {
        let (mut codes, mut grants, mut tokens) = (Vec::new(), Vec::new(), Vec::new());
        for i in chunk..n.min(chunk + PER_STATEMENT) {
            // Each code and each grant is another user's: a code exchange ends the live grants
            // of the same user, client, redirect URI and resource (replacement), so codes and
            // grants of one user would revoke each other's grants in the measured runs.
            let of = |subject: String| Approved {
                subject,
                ..approved.clone()
            };
            let code = GrantSecret::generate(SecretKind::Code).unwrap_or_else(no_rng);
            let mut row = new_code(
                of(format!("bench-code-user-{i}")),
                code.hash(),
                random_id().unwrap_or_else(no_rng),
                now,
            );
            row.expires_at = now + 3600;
            codes.push(sql_values(&code_values(&row)));
            let _ = writeln!(
                codes_txt,
                "grant_type=authorization_code&code={}&code_verifier={VERIFIER}&client_id={client}",
                code.expose_secret()
            );
            let grant = grant_from_code(
                &new_code(
                    of(format!("bench-refresh-user-{i}")),
                    code.hash(),
                    random_id().unwrap_or_else(no_rng),
                    now,
                ),
                now,
                &policy,
                true,
            );
            let refresh = GrantSecret::generate(SecretKind::Refresh).unwrap_or_else(no_rng);
            grants.push(sql_values(&grant_values(&grant)));
            tokens.push(sql_values(&refresh_values(&first(
                &grant,
                refresh.hash(),
                now,
                &policy,
            ))));
            let _ = writeln!(
                refresh_txt,
                "grant_type=refresh_token&refresh_token={}&client_id={client}",
                refresh.expose_secret()
            );
        }
        let _ = writeln!(
            codes_sql,
            "INSERT INTO authorization_codes ({}) VALUES\n{};",
            code_columns(),
            codes.join(",\n")
        );
        let _ = writeln!(
            refresh_sql,
            "INSERT INTO app_grants ({GRANT_COLUMNS}) VALUES\n{};\n\
             INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) VALUES\n{};",
            grants.join(",\n"),
            tokens.join(",\n")
        );
    }
    for (name, body) in [
        ("codes.sql", codes_sql),
        ("refresh.sql", refresh_sql),
        ("codes.txt", codes_txt),
        ("refresh.txt", refresh_txt),
    ] {
        std::fs::write(format!("{dir}/{name}"), body)
            .unwrap_or_else(|e| fail(&format!("writing {name}: {e}")));
    }
}

fn sql_bind(v: &Bind) -> String {
    match v {
        Bind::Text(t) => sql_text(t),
        Bind::OptText(t) => sql_opt(t.as_deref()),
        Bind::Int(i) => i.to_string(),
        Bind::OptInt(i) => i.map_or_else(|| "NULL".to_owned(), |i| i.to_string()),
    }
}

fn seed_clients(n: usize, dir: &str, now: i64, key: &str) {
    const PER_FILE: usize = 25_000;
    // D1's local SQLite refuses statements over 100 KB: 100 client rows each.
    const PER_STATEMENT: usize = 100;
    let key = ClientIdKey::from_base64(key)
        .unwrap_or_else(|| fail("KEY must be a base64 key of at least 32 bytes"));
    for (file, start) in (0..n).step_by(PER_FILE).enumerate() {
        let end = n.min(start + PER_FILE);
        let mut sql = String::new();
        for chunk in (start..end).step_by(PER_STATEMENT) {
            let mut rows = Vec::new();
            for j in chunk..end.min(chunk + PER_STATEMENT) {
                let id = generate_dynamic_id(&key).unwrap_or_else(|_| fail("no randomness"));
                let profile = ClientProfile {
                    source: ClientSource::Dynamic,
                    display_name: Some(format!("bulk client {j}")),
                    redirect_uris: vec![format!("http://127.0.0.1/callback/{j}")],
                    grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
                    last_used_at: Some(now - (j as i64 % 86_400)),
                    ..ClientProfile::legacy()
                };
                let values = client_profile_values(&profile)
                    .unwrap_or_else(|e| fail(&format!("profile: {}", e.0)));
                let created = now - 86_400 - j as i64;
                rows.push(format!(
                    "({}, NULL, '', 'reference', 3600, 1, {created}, {})",
                    sql_text(&id),
                    values.iter().map(sql_bind).collect::<Vec<_>>().join(", ")
                ));
            }
            let _ = writeln!(
                sql,
                "INSERT INTO clients (id, secret_hash, allowed_scopes, token_format, \
                 token_lifetime, enabled, created_at, {CLIENT_PROFILE_COLUMNS}) VALUES\n{};",
                rows.join(",\n")
            );
        }
        std::fs::File::create(format!("{dir}/clients-{file}.sql"))
            .and_then(|mut f| f.write_all(sql.as_bytes()))
            .unwrap_or_else(|e| fail(&format!("writing clients-{file}.sql: {e}")));
    }
}

fn introspect(n: usize) {
    let now = 1_795_000_000;
    let backend = MemoryBackend::default();
    backend.resources.borrow_mut().push(ApiResource {
        descriptions: Vec::new(),
        resource_uri: None,
        id: "demo_api".into(),
        uid: "r1".into(),
        secret: SecretSet {
            current: ClientSecret::new("demo-api-secret").hash(),
            previous: None,
        },
        enabled: true,
        scopes: vec!["demo_api:read".into()],
    });
    backend.clients.borrow_mut().push(Client {
        id: patgate::model::PAT_CLIENT_ID.into(),
        uid: "c1".into(),
        secret: None,
        allowed_scopes: vec!["demo_api:read".into()],
        token_format: TokenFormat::Reference,
        token_lifetime: 3600,
        enabled: true,
    });
    let cfg = Config::for_tools("https://patgate.example");
    let isolate = IsolateState::default();
    let ctx = Ctx {
        cfg: &cfg,
        backend: &backend,
        isolate: &isolate,
        now,
        now_ms: now * 1000,
    };
    let token = PlainToken::generate(TokenKind::Pat).unwrap_or_else(|_| fail("no randomness"));
    let rec = TokenRecord {
        name: Some("bench".into()),
        client_uid: Some("c1".into()),
        scope_owners: Some(vec!["r1".into()]),
        ..patgate::testing::pat_record("t1", "alice", token.hash(), now)
    };
    backend.tokens.borrow_mut().push(rec.clone());
    backend.kv.borrow_mut().insert(
        rec.hash,
        rec.grant(now + app::config::DEFAULT_GRANT_CACHE_SECS),
    );
    let req = Request::new(Method::Post, "/oauth/introspect")
        .header("authorization", "Basic ZGVtb19hcGk6ZGVtby1hcGktc2VjcmV0")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", token.expose_secret()));
    let mut active = 0usize;
    for _ in 0..n {
        let o = block_on(app::handle(&ctx, &req));
        if o.response.body.starts_with(br#"{"active":true"#) {
            active += 1;
        }
    }
    if active != n {
        fail(&format!("{active} of {n} introspections were active"));
    }
    println!("{n} active introspections");
}
