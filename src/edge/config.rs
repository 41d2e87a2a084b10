//! Configuration from Worker vars and secrets, parsed once per isolate.

use crate::app::config::{self as app, Config, PageConfig};
use crate::app::settings;
use crate::jose::SigningKeys;
use crate::jose::UserAuthConfig;
use std::cell::OnceCell;
use std::rc::Rc;
use worker::Env;

thread_local! {
    static CONFIG: OnceCell<Rc<Config>> = const { OnceCell::new() };
}

fn text(env: &Env, name: &str) -> Option<String> {
    // Secrets and plain vars are both string properties of `env`.
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.is_empty())
}

fn number(env: &Env, name: &str, default: i64) -> Result<i64, String> {
    match text(env, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{name} must be a non-negative integer")),
    }
}

/// The isolate's configuration (vars cannot change within an isolate).
pub fn load(env: &Env) -> Result<Rc<Config>, String> {
    if let Some(c) = CONFIG.with(|c| c.get().cloned()) {
        return Ok(c);
    }
    let cfg = Rc::new(parse(env)?);
    CONFIG.with(|c| {
        let _ = c.set(cfg.clone());
    });
    Ok(cfg)
}

fn parse(env: &Env) -> Result<Config, String> {
    let issuer = text(env, "ISSUER")
        .ok_or("ISSUER is required")?
        .trim_end_matches('/')
        .to_owned();
    let user_auth = UserAuthConfig::from_parts(
        text(env, "USER_JWT_ISSUER").ok_or("USER_JWT_ISSUER is required")?,
        text(env, "USER_JWT_AUDIENCE").ok_or("USER_JWT_AUDIENCE is required")?,
        text(env, "USER_JWT_HS256_SECRET"),
        text(env, "USER_JWKS"),
        text(env, "USER_JWKS_URL"),
    )?;
    let dev_sign_in = text(env, "DEV_SIGN_IN").as_deref() == Some("true");
    settings::check_dev_sign_in(&issuer, dev_sign_in)?;
    super::dev_faults::check(env, &issuer)?;
    // Read by the LastUsed Durable Object; checked here with everything else.
    settings::last_used_flush_secs(text(env, "LAST_USED_FLUSH_SECONDS").as_deref())?;
    let clients = clients(env, &issuer)?;
    Ok(Config {
        issuer,
        pat_max_days: number(env, "PAT_MAX_DAYS", 366)?.max(1),
        last_used_coalesce_secs: number(env, "LAST_USED_COALESCE_SECONDS", 30)?,
        registry_cache_secs: number(env, "REGISTRY_CACHE_SECONDS", 30)?,
        registry_max_stale_secs: number(
            env,
            "REGISTRY_MAX_STALE_SECONDS",
            app::DEFAULT_REGISTRY_MAX_STALE_SECS,
        )?,
        // KV refuses expirations under 60 s.
        grant_cache_secs: number(env, "GRANT_CACHE_SECONDS", app::DEFAULT_GRANT_CACHE_SECS)?
            .max(60),
        exchanged_jwt_secs: match number(
            env,
            "EXCHANGED_JWT_SECONDS",
            app::DEFAULT_EXCHANGED_JWT_SECS,
        )? {
            n @ 1..=app::MAX_EXCHANGED_JWT_SECS => n,
            _ => return Err("EXCHANGED_JWT_SECONDS must be 1 to 3600".into()),
        },
        user_auth,
        admin_token: text(env, "ADMIN_TOKEN").map(crate::secret::ClientSecret::new),
        signing_keys: text(env, "JWT_SIGNING_KEYS")
            .map(|k| SigningKeys::parse(&k).map(Rc::new))
            .transpose()
            .map_err(|e| format!("JWT_SIGNING_KEYS: {e}"))?,
        page: PageConfig {
            session_secret: text(env, "SESSION_SECRET"),
            // Only the local dev config sets it (scripts/devserver.mjs); never wrangler.toml.
            // With an issuer that is not a loopback URL it is refused above.
            dev_sign_in,
        },
        lifecycle: app::LifecycleConfig {
            scanning_keys: text(env, "SECRET_SCANNING_KEYS")
                .map(|k| crate::secret_scanning::KeySet::parse(&k).map(Rc::new))
                .transpose()
                .map_err(|e| format!("SECRET_SCANNING_KEYS: {e}"))?,
            scanning_keys_url: text(env, "SECRET_SCANNING_KEYS_URL"),
            max_grace_secs: match number(
                env,
                "ROTATION_MAX_GRACE_SECONDS",
                app::MAX_ROTATION_GRACE_SECS,
            )? {
                n @ 0..=app::MAX_ROTATION_GRACE_SECS => n,
                _ => return Err("ROTATION_MAX_GRACE_SECONDS must be 0 to 604800".into()),
            },
        },
        webhooks: app::WebhookConfig {
            allow_http_localhost: text(env, "WEBHOOK_ALLOW_HTTP_LOCALHOST").as_deref()
                == Some("true"),
            timeout_secs: match number(
                env,
                "WEBHOOK_TIMEOUT_SECONDS",
                i64::from(app::DEFAULT_TIMEOUT_SECS),
            )? {
                n @ 1..=30 => n as u32,
                _ => return Err("WEBHOOK_TIMEOUT_SECONDS must be 1 to 30".into()),
            },
            disable_after_secs: match number(
                env,
                "WEBHOOK_DISABLE_AFTER_SECONDS",
                crate::webhook::health::DEFAULT_DISABLE_AFTER_SECS,
            )? {
                n @ 1..=2_592_000 => n,
                _ => {
                    return Err(
                        "WEBHOOK_DISABLE_AFTER_SECONDS must be 1 to 2592000 (30 days)".into(),
                    )
                }
            },
            retention_days: match number(
                env,
                "WEBHOOK_DELIVERY_RETENTION_DAYS",
                app::DEFAULT_DELIVERY_RETENTION_DAYS,
            )? {
                n @ 1..=90 => n,
                _ => return Err("WEBHOOK_DELIVERY_RETENTION_DAYS must be 1 to 90".into()),
            },
        },
        clients,
        refresh: refresh_policy(env)?,
    })
}

/// The refresh tokens' lifetimes (README "Configuration").
fn refresh_policy(env: &Env) -> Result<crate::authz::refresh::RefreshPolicy, String> {
    let d = crate::authz::refresh::RefreshPolicy::default();
    let p = crate::authz::refresh::RefreshPolicy {
        idle_secs: number(env, "REFRESH_IDLE_SECONDS", d.idle_secs)?,
        absolute_secs: number(env, "REFRESH_ABSOLUTE_SECONDS", d.absolute_secs)?,
        retry_grace_secs: number(env, "REFRESH_RETRY_GRACE_SECONDS", d.retry_grace_secs)?,
    };
    if p.idle_secs < 60 || p.absolute_secs < p.idle_secs || !(0..=300).contains(&p.retry_grace_secs)
    {
        return Err(
            "REFRESH_IDLE_SECONDS must be at least 60 and at most REFRESH_ABSOLUTE_SECONDS; \
             REFRESH_RETRY_GRACE_SECONDS 0 to 300"
                .into(),
        );
    }
    Ok(p)
}

/// The self-registering clients' settings (README "Clients of the authorization server").
fn clients(env: &Env, issuer: &str) -> Result<app::ClientsConfig, String> {
    let flag = |name: &str| text(env, name).as_deref() == Some("true");
    let metadata_http_loopback = flag("CIMD_ALLOW_HTTP_LOOPBACK");
    // Only the local dev config sets it (scripts/devserver.mjs); refused with a public issuer.
    settings::check_metadata_http_loopback(issuer, metadata_http_loopback)?;
    let id_keys = text(env, "CLIENT_ID_KEYS")
        .map(|k| crate::authz::secrets::ClientIdKey::parse_list(&k))
        .transpose()?
        .unwrap_or_default();
    let dynamic_registration = flag("DYNAMIC_REGISTRATION");
    settings::check_dynamic_registration(dynamic_registration, id_keys.len())?;
    Ok(app::ClientsConfig {
        dynamic_registration,
        id_keys,
        metadata_http_loopback,
        private_use_redirects: flag("ALLOW_PRIVATE_USE_REDIRECTS"),
        negative_cache_secs: number(
            env,
            "CLIENT_NEGATIVE_CACHE_SECONDS",
            app::DEFAULT_CLIENT_NEGATIVE_CACHE_SECS,
        )?,
        unused_days: match number(
            env,
            "DYNAMIC_CLIENT_UNUSED_DAYS",
            app::DEFAULT_DYNAMIC_CLIENT_UNUSED_DAYS,
        )? {
            n @ 0..=3650 => n,
            _ => return Err("DYNAMIC_CLIENT_UNUSED_DAYS must be 0 to 3650".into()),
        },
        token_secs: match number(
            env,
            "SELF_REGISTERED_TOKEN_SECONDS",
            app::DEFAULT_SELF_REGISTERED_TOKEN_SECS,
        )? {
            n @ 1..=86_400 => n,
            _ => return Err("SELF_REGISTERED_TOKEN_SECONDS must be 1 to 86400".into()),
        },
    })
}
