//! Configuration: every setting of the service as the runtime read it from Worker vars and
//! secrets (README "Configuration"), with its defaults and bounds. Shared by every capability;
//! uses nothing of the service.

use crate::jose::{SigningKeys, UserAuthConfig};
use crate::secret::ClientSecret;
use crate::secret_scanning::KeySet;
use std::rc::Rc;

/// Configuration from Worker vars and secrets (see README "Configuration").
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's base URL, without a trailing slash.
    pub issuer: String,
    pub pat_max_days: i64,
    /// Per isolate, at most one last-use write per token per this many seconds.
    pub last_used_coalesce_secs: i64,
    /// How long an isolate trusts a cached API resource or client record.
    pub registry_cache_secs: i64,
    /// During a D1 outage, cached client and resource records are used for at most this long past
    /// `registry_cache_secs` (`REGISTRY_MAX_STALE_SECONDS`); after that the answer is 503.
    pub registry_max_stale_secs: i64,
    /// Longest life of a grant in KV (`GRANT_CACHE_SECONDS`), whatever the token's expiry: the
    /// bound after which a lost KV delete can no longer keep a revoked token alive.
    pub grant_cache_secs: i64,
    /// Lifetime of a JWT exchanged for a PAT (`EXCHANGED_JWT_SECONDS`, at most one hour).
    pub exchanged_jwt_secs: i64,
    pub user_auth: UserAuthConfig,
    /// The admin API's bearer secret; `None` switches the admin API off.
    pub admin_token: Option<ClientSecret>,
    /// Keys for JWT access tokens and signed introspection responses; `None`: no JWTs issued.
    pub signing_keys: Option<Rc<SigningKeys>>,
    /// The token page (`SESSION_SECRET`, `DEV_SIGN_IN`).
    pub page: PageConfig,
    /// Leak reports, rotation with grace, reuse detection (README "Token lifecycle").
    pub lifecycle: LifecycleConfig,
    /// Signed webhooks (README "Webhooks").
    pub webhooks: WebhookConfig,
    /// Self-registering clients of the authorization server (README "Clients of the
    /// authorization server").
    pub clients: ClientsConfig,
    /// `REFRESH_IDLE_SECONDS`, `REFRESH_ABSOLUTE_SECONDS`, `REFRESH_RETRY_GRACE_SECONDS`: the
    /// lifetimes of the authorization code grant's refresh tokens.
    pub refresh: crate::authz::refresh::RefreshPolicy,
}

impl Config {
    /// What redirect URIs may be registered and used beyond `https` and loopback `http`.
    pub fn redirect_policy(&self) -> crate::oauth::authorize::RedirectPolicy {
        crate::oauth::authorize::RedirectPolicy {
            private_use_schemes: self.clients.private_use_redirects,
        }
    }
}

/// Token lifecycle settings (see README "Configuration").
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    /// `SECRET_SCANNING_KEYS`: inline public keys of the secret scanning partner (GitHub's key
    /// document). Checked before the fetched ones.
    pub scanning_keys: Option<Rc<KeySet>>,
    /// `SECRET_SCANNING_KEYS_URL`: where the partner publishes its keys, fetched and cached per
    /// isolate like the user JWKS.
    pub scanning_keys_url: Option<String>,
    /// `ROTATION_MAX_GRACE_SECONDS`: the longest grace a rotation may give the old token (at most
    /// [`MAX_ROTATION_GRACE_SECS`]).
    pub max_grace_secs: i64,
}

/// The longest rotation grace, whatever the configuration: 7 days.
pub const MAX_ROTATION_GRACE_SECS: i64 = 7 * 86_400;

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            scanning_keys: None,
            scanning_keys_url: None,
            max_grace_secs: MAX_ROTATION_GRACE_SECS,
        }
    }
}

impl Config {
    /// The defaults of every setting (README "Configuration"), for host tools and benchmarks: no
    /// user JWT verification keys, no admin API, no signing keys.
    pub fn for_tools(issuer: &str) -> Self {
        Config {
            issuer: issuer.to_owned(),
            pat_max_days: 366,
            last_used_coalesce_secs: 30,
            registry_cache_secs: 30,
            registry_max_stale_secs: DEFAULT_REGISTRY_MAX_STALE_SECS,
            grant_cache_secs: DEFAULT_GRANT_CACHE_SECS,
            exchanged_jwt_secs: DEFAULT_EXCHANGED_JWT_SECS,
            user_auth: UserAuthConfig {
                issuer: String::new(),
                audience: String::new(),
                hs256_secret: None,
                jwks: None,
                jwks_url: None,
            },
            admin_token: None,
            signing_keys: None,
            page: PageConfig::default(),
            lifecycle: LifecycleConfig::default(),
            webhooks: WebhookConfig::default(),
            clients: ClientsConfig::default(),
            refresh: crate::authz::refresh::RefreshPolicy::default(),
        }
    }
}

impl Config {
    /// How long revocation feed entries stay (docs/REVOCATION.md): longer than any answer that
    /// can still say "active" without asking D1 (a KV grant, an exchanged JWT, a client record).
    pub fn retention(&self) -> crate::revocation::feed::Retention {
        use crate::revocation::feed::Retention;
        Retention {
            grant_cache_ms: self.grant_cache_secs.saturating_mul(1000),
            exchanged_jwt_ms: self.exchanged_jwt_secs.saturating_mul(1000),
            registry_ms: (self.registry_cache_secs + self.registry_max_stale_secs)
                .saturating_mul(1000),
            ..Retention::DEFAULT
        }
    }
}

/// Default of [`Config::registry_max_stale_secs`].
pub const DEFAULT_REGISTRY_MAX_STALE_SECS: i64 = 300;
/// Default of [`Config::grant_cache_secs`].
pub const DEFAULT_GRANT_CACHE_SECS: i64 = 3600;
/// Default and longest [`Config::exchanged_jwt_secs`].
pub const DEFAULT_EXCHANGED_JWT_SECS: i64 = 900;
pub const MAX_EXCHANGED_JWT_SECS: i64 = 3600;
/// Delay of the second KV delete after a revocation or rotation.
pub const REVOCATION_RECHECK_SECS: u64 = 10;

/// The page's configuration (see README "Configuration").
#[derive(Clone, Default)]
pub struct PageConfig {
    /// `SESSION_SECRET`: the HMAC key of sessions and CSRF tokens (at least 32 bytes). Without it
    /// the page answers 503 "not configured".
    pub session_secret: Option<String>,
    /// `DEV_SIGN_IN="true"`: the local sign-in form. Only the local dev config sets it.
    pub dev_sign_in: bool,
}

impl std::fmt::Debug for PageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageConfig")
            .field(
                "session_secret",
                &self.session_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("dev_sign_in", &self.dev_sign_in)
            .finish()
    }
}

/// Webhook settings (README "Webhooks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `WEBHOOK_ALLOW_HTTP_LOCALHOST=true`: endpoints may be `http://localhost` or
    /// `http://127.0.0.1` (local development and tests only).
    pub allow_http_localhost: bool,
    /// `WEBHOOK_TIMEOUT_SECONDS` (1 to 30): how long one delivery attempt may take.
    pub timeout_secs: u32,
    /// `WEBHOOK_DISABLE_AFTER_SECONDS` (1 to 30 days): an endpoint failing every attempt this
    /// long is disabled (see [`crate::webhook::health`]).
    pub disable_after_secs: i64,
    /// `WEBHOOK_DELIVERY_RETENTION_DAYS` (1 to 90): how long the delivery log keeps attempts.
    pub retention_days: i64,
}

/// Default of [`WebhookConfig::retention_days`].
pub const DEFAULT_DELIVERY_RETENTION_DAYS: i64 = 14;

pub const DEFAULT_TIMEOUT_SECS: u32 = 10;
pub const MAX_TIMEOUT_SECS: u32 = 30;

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_http_localhost: false,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            disable_after_secs: crate::webhook::health::DEFAULT_DISABLE_AFTER_SECS,
            retention_days: DEFAULT_DELIVERY_RETENTION_DAYS,
        }
    }
}

/// Self-registering clients (README "Clients of the authorization server").
#[derive(Debug, Clone)]
pub struct ClientsConfig {
    /// `DYNAMIC_REGISTRATION=true`: `POST /oauth/register` (RFC 7591). Needs `CLIENT_ID_KEYS`.
    pub dynamic_registration: bool,
    /// `CLIENT_ID_KEYS`: the keys that tag dynamic client ids (the first tags new ones). Without
    /// them no `pgd_` id can exist.
    pub id_keys: Vec<crate::authz::secrets::ClientIdKey>,
    /// `CIMD_ALLOW_HTTP_LOOPBACK=true`: metadata documents on `http://127.0.0.1` and
    /// `http://[::1]` (local development and tests; refused with a non-loopback issuer).
    pub metadata_http_loopback: bool,
    /// `ALLOW_PRIVATE_USE_REDIRECTS=true`: RFC 8252 private-use scheme redirect URIs.
    pub private_use_redirects: bool,
    /// `CLIENT_NEGATIVE_CACHE_SECONDS`: an unknown client id is remembered this long per
    /// isolate.
    pub negative_cache_secs: i64,
    /// `DYNAMIC_CLIENT_UNUSED_DAYS`: dynamic registrations unused this long (and without a live
    /// grant) are deleted by the cron.
    pub unused_days: i64,
    /// `SELF_REGISTERED_TOKEN_SECONDS`: the access token lifetime of self-registered clients.
    pub token_secs: i64,
}

pub const DEFAULT_CLIENT_NEGATIVE_CACHE_SECS: i64 = 60;
pub const DEFAULT_DYNAMIC_CLIENT_UNUSED_DAYS: i64 = 30;
pub const DEFAULT_SELF_REGISTERED_TOKEN_SECS: i64 = 3600;

impl Default for ClientsConfig {
    fn default() -> Self {
        ClientsConfig {
            dynamic_registration: false,
            id_keys: Vec::new(),
            metadata_http_loopback: false,
            private_use_redirects: false,
            negative_cache_secs: DEFAULT_CLIENT_NEGATIVE_CACHE_SECS,
            unused_days: DEFAULT_DYNAMIC_CLIENT_UNUSED_DAYS,
            token_secs: DEFAULT_SELF_REGISTERED_TOKEN_SECS,
        }
    }
}
