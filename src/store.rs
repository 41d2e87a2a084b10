//! Storage capabilities, named for what they do. The runtime layer implements them over KV, D1,
//! Durable Objects and `fetch`; `crate::testing` implements them in memory (with failure
//! injection) for host tests.
//!
//! Worker futures are `!Send`, so these are plain `async fn` in traits.
#![allow(async_fn_in_trait)]

use crate::gate::route::GateRoute;
use crate::model::{ApiResource, Client, Grant, TokenRecord};
use crate::origin::ClientOrigin;
use crate::token::TokenHash;

pub mod error;

pub use error::{StoreError, Write};

/// The global read path: grants keyed by token hash (KV), kept until the token expires
/// (`grant.exp`) and trusted until `grant.fresh_until` (see [`Grant`]).
pub trait GrantCache {
    async fn get_grant(&self, hash: &TokenHash) -> Result<Option<Grant>, StoreError>;
    /// Stores the grant until `grant.exp`.
    async fn put_grant(&self, hash: &TokenHash, grant: &Grant) -> Result<(), StoreError>;
    async fn delete_grant(&self, hash: &TokenHash) -> Result<(), StoreError>;
    /// Whether a JWT access token's `jti` was revoked.
    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Puts a `jti` on the denylist until the token's `exp`.
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StoreError>;
    /// Keeps a token the page is about to show, sealed (encrypted, see `app::page::replay`),
    /// under its hash until `expires_at` (a minute): a second submission of the same form can
    /// show it again. Never a plain token.
    async fn put_sealed(
        &self,
        hash: &TokenHash,
        sealed: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// The sealed token kept under this hash, if it has not expired.
    async fn get_sealed(&self, hash: &TokenHash) -> Result<Option<String>, StoreError>;
}

/// Keyset page position for listing (`created_at`, `id`), newest first.
pub type Cursor = (i64, String);

/// The source of truth for reference tokens (D1).
pub trait TokenStore {
    async fn insert_token(&self, rec: &TokenRecord) -> Result<(), StoreError>;
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError>;
    /// A PAT by id, only if it belongs to `subject`.
    async fn pat_for_subject(
        &self,
        subject: &str,
        id: &str,
    ) -> Result<Option<TokenRecord>, StoreError>;
    /// A subject's PATs, newest first, strictly after `after`, at most `limit`.
    async fn list_pats(
        &self,
        subject: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<TokenRecord>, StoreError>;
    /// A token by id (any kind, any status).
    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Marks a token revoked with one conditional statement (`... WHERE revoked_at IS NULL
    /// RETURNING token_hash`) and returns the hash that is current in D1 at that moment (after a
    /// concurrent rotation: the new one), or, if it was already revoked, its frozen hash.
    /// `None`: no such token. `why` is recorded with the revocation (same statement), only by the
    /// call that revokes it.
    async fn revoke_token(
        &self,
        id: &str,
        now: i64,
        why: Option<&RevocationNote>,
    ) -> Result<Option<Revoked>, StoreError>;
    /// Rotation, atomically: replaces the hash of a token that is still active with hash `old`
    /// (not revoked, not expired at `now`), bumps its generation and records `old` as retired,
    /// working until `grace_until` if given. False if it lost a race (revoked, expired or
    /// rotated meanwhile).
    async fn rotate_token(
        &self,
        id: &str,
        old: &TokenHash,
        new: &TokenHash,
        now: i64,
        grace_until: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// Hashes a token had before its rotations, retired at or after `since` or in a grace period
    /// that lasts until at least `since`.
    async fn retired_hashes(&self, id: &str, since: i64) -> Result<Vec<Retired>, StoreError>;
    /// The retired hash `hash`, if it is one.
    async fn retired_by_hash(&self, hash: &TokenHash) -> Result<Option<Retired>, StoreError>;
    /// Ends the grace period of retired hash `hash` at `now` (if it lasts longer).
    async fn end_grace(&self, hash: &TokenHash, now: i64) -> Result<(), StoreError>;
    /// Records a detected reuse of a token rotated away from PAT `id` (see
    /// [`crate::model::ReuseInfo`]): one more detection, the first time kept, the last one's
    /// time, origin and the reused token's rotation time replaced. One row per PAT: bounded.
    async fn record_reuse(
        &self,
        id: &str,
        at: i64,
        origin: &ClientOrigin,
        rotated_at: i64,
    ) -> Result<(), StoreError>;
    /// The token that has `hash` now or had it before a rotation: its record, and the retired
    /// hash when `hash` is one of its rotated-away hashes. One read (both are unique keys). Any
    /// status: revoked and expired tokens are found too.
    async fn token_by_any_hash(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(TokenRecord, Option<Retired>)>, StoreError>;
    /// Keeps `url` among the places token `id` was reported leaked, at `at`: the newest
    /// [`crate::model::MAX_LEAK_URLS`] distinct URLs are kept, by the time of their latest report
    /// (ties: the URL first reported later), older ones are dropped in the same transaction.
    async fn record_leak_url(&self, id: &str, url: &str, at: i64) -> Result<(), StoreError>;
    /// Removes a token record. Only used to undo an insert whose outcome is unknown (the insert
    /// reported an error but may have landed): the token was never shown to anyone.
    async fn delete_token(&self, id: &str) -> Result<(), StoreError>;
}

/// Why a token was revoked, recorded with the revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationNote {
    /// `leaked` (a leak report) or `reuse` (a detected reuse of a rotated-away token).
    pub reason: &'static str,
    /// Where it was found (a leak report's URL).
    pub url: Option<String>,
}

/// A hash a token had before a rotation (D1 `retired_token_hashes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    pub hash: TokenHash,
    pub token_id: String,
    pub retired_at: i64,
    /// The old token works until then (rotation with grace); `None`: it stopped at rotation.
    pub grace_until: Option<i64>,
}

impl Retired {
    pub fn in_grace(&self, now: i64) -> bool {
        self.grace_until.is_some_and(|g| now < g)
    }
}

/// The result of [`TokenStore::revoke_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    /// The hash D1 holds for the token (what KV may still cache).
    pub hash: TokenHash,
    /// This call revoked it (false: it was revoked before).
    pub newly: bool,
}

/// API resources and clients (D1), read through a short isolate cache.
pub trait Registry {
    async fn api_resource(&self, id: &str) -> Result<Option<ApiResource>, StoreError>;
    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError>;
}

/// Records that a token was used (a Durable Object per token).
pub trait UsageRecorder {
    async fn record_use(&self, token_id: &str, at: i64, uses: u32) -> Result<(), StoreError>;
}

/// Fetches a JWKS document from the identity provider.
pub trait JwksFetcher {
    async fn fetch_jwks(&self, url: &str) -> Result<String, StoreError>;
}

/// What is rate limited, each with its own budget (a Cloudflare Rate Limiting binding in
/// production, see wrangler.toml; an in-memory double in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Failed client or API-resource authentications, per client id.
    FailedAuthPerClient,
    /// Failed client or API-resource authentications, per IP.
    FailedAuthPerIp,
    /// PAT creations (API, page and token exchange), per user.
    PatCreationsPerUser,
    /// Calls of the token endpoint, per IP.
    TokenEndpointPerIp,
    /// Rotations of one PAT (owner, page and self-rotation), per PAT id.
    RotationsPerPat,
    /// RFC 7591 registrations, per IP.
    RegistrationsPerIp,
    /// Client ID metadata document fetches, per client id and per IP (two keys, one budget
    /// each).
    MetadataFetches,
}

impl Limit {
    /// The period of every limit, in seconds (Cloudflare allows 10 or 60): `Retry-After`.
    pub const PERIOD_SECS: u64 = 60;
}

/// Counts an event against a rate limit.
pub trait RateLimiter {
    /// Counts one event for `key`; `Ok(true)` when it is over the limit.
    async fn over_limit(&self, limit: Limit, key: &str) -> Result<bool, StoreError>;
}

/// Operator changes to clients and API resources (D1). Reads go through [`Registry`] and
/// `authz::store::ClientDirectory`. Client writes touch administrator-made clients only
/// (`source = 'admin'`): a self-registered client's id is `NotFound` here.
pub trait AdminStore {
    async fn create_client(
        &self,
        c: &Client,
        profile: &crate::authz::records::ClientProfile,
        now: i64,
    ) -> Result<Write, StoreError>;
    async fn update_client(
        &self,
        c: &Client,
        profile: &crate::authz::records::ClientProfile,
    ) -> Result<Write, StoreError>;
    async fn delete_client(&self, id: &str) -> Result<Write, StoreError>;
    async fn list_resources(&self) -> Result<Vec<ApiResource>, StoreError>;
    /// Creates the resource and its scopes (a scope name is global: Conflict if taken).
    async fn create_resource(&self, r: &ApiResource, now: i64) -> Result<Write, StoreError>;
    /// Updates secrets, `enabled` and replaces the scope set.
    async fn update_resource(&self, r: &ApiResource) -> Result<Write, StoreError>;
    async fn delete_resource(&self, id: &str) -> Result<Write, StoreError>;
}

/// Gate routes (D1 `gate_routes`). Readers go through the isolate's route-table cache.
pub trait RouteStore {
    /// Every route, ordered by id.
    async fn list_routes(&self) -> Result<Vec<GateRoute>, StoreError>;
    /// Creates or replaces the route with this id. `Conflict`: another route has the same host
    /// and path prefix.
    async fn put_route(&self, r: &GateRoute, now: i64) -> Result<Write, StoreError>;
    async fn delete_route(&self, id: &str) -> Result<Write, StoreError>;
}

/// A PAT the expiry scan claimed a notice for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryNotice {
    pub token_id: String,
    pub subject: String,
    pub expires_at: i64,
}

/// The expiry scan's storage (D1 `expiry_notices`).
pub trait ExpiryNotices {
    /// Atomically records, and returns, at most `limit` PATs not revoked whose expiry is in
    /// `(from, to]` and that have no notice for `threshold_days` yet: each (PAT, threshold) is
    /// returned once, ever, whatever scans run concurrently.
    async fn claim_expiry_notices(
        &self,
        threshold_days: i64,
        from: i64,
        to: i64,
        now: i64,
        limit: u32,
    ) -> Result<Vec<ExpiryNotice>, StoreError>;
    /// Forgets claimed notices, each (token id, threshold days), so that a later scan claims them
    /// again: their events could not be queued.
    async fn release_expiry_notices(&self, notices: &[(String, i64)]) -> Result<(), StoreError>;
}

/// Where the request being served came from, as the runtime reports it (see
/// [`crate::origin`]). Asked only when needed (reuse detection): the runtime reads it lazily.
pub trait RequestOrigin {
    fn request_origin(&self) -> ClientOrigin;
}

/// Everything the service needs from its runtime.
pub trait Backend:
    GrantCache
    + TokenStore
    + Registry
    + UsageRecorder
    + JwksFetcher
    + AdminStore
    + RateLimiter
    + RouteStore
    + ExpiryNotices
    + WebhookStore
    + RequestOrigin
    + crate::authz::store::ClientDirectory
    + crate::authz::store::MetadataFetcher
    + crate::authz::store::FlowStore
{
}
impl<
        T: GrantCache
            + TokenStore
            + Registry
            + UsageRecorder
            + JwksFetcher
            + AdminStore
            + RateLimiter
            + RouteStore
            + ExpiryNotices
            + WebhookStore
            + RequestOrigin
            + crate::authz::store::ClientDirectory
            + crate::authz::store::MetadataFetcher
            + crate::authz::store::FlowStore,
    > Backend for T
{
}

/// A registered webhook endpoint (D1 `webhook_endpoints`). `Debug` redacts the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// `wh_` and 16 hex digits, assigned at registration.
    pub id: String,
    pub url: String,
    /// Event types delivered (`*`: all), see [`crate::webhook::EVENT_TYPES`].
    pub event_types: Vec<String>,
    /// Signs every delivery. Stored as is: HMAC needs the key, not a hash of it.
    pub secret: crate::webhook::WebhookSecret,
    /// A rotated-away secret that still signs (alongside `secret`) until the given time, so
    /// receivers can switch without dropping deliveries.
    pub previous_secret: Option<(crate::webhook::WebhookSecret, i64)>,
    pub created_at: i64,
}

/// What the fan-out needs of an endpoint (cached per isolate): no URL, no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub id: String,
    pub event_types: Vec<String>,
}

/// Webhook endpoints (D1 `webhook_endpoints`), managed through `/admin/webhooks`.
pub trait WebhookStore {
    /// Every endpoint, ordered by id.
    async fn list_webhooks(&self) -> Result<Vec<WebhookEndpoint>, StoreError>;
    async fn webhook(&self, id: &str) -> Result<Option<WebhookEndpoint>, StoreError>;
    /// Conflict: the id exists.
    async fn create_webhook(&self, w: &WebhookEndpoint) -> Result<Write, StoreError>;
    /// Replaces the secrets of endpoint `w.id`.
    async fn update_webhook_secrets(&self, w: &WebhookEndpoint) -> Result<Write, StoreError>;
    async fn delete_webhook(&self, id: &str) -> Result<Write, StoreError>;
}

/// The webhook delivery queue (a Cloudflare Queue producer binding).
pub trait DeliveryQueue {
    /// Sends the messages (at most 100 at a time). An error may come after the messages were
    /// queued (a timeout): a caller that sends again may deliver twice, with the same
    /// `webhook-id`, which receivers dedupe by.
    async fn enqueue(&self, msgs: &[crate::webhook::Delivery]) -> Result<(), StoreError>;
}

/// Outbound HTTP for webhook deliveries.
pub trait WebhookSender {
    /// POSTs `body` to `url` with `headers`, giving up after `timeout_secs`; no redirects are
    /// followed. The response status, or an error (network, timeout).
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &str,
        timeout_secs: u32,
    ) -> Result<u16, StoreError>;
}
