//! Storage capabilities, named for what they do. The runtime layer implements them over KV, D1,
//! Durable Objects and `fetch`; `crate::testing` implements them in memory (with failure
//! injection) for host tests.
//!
//! Worker futures are `!Send`, so these are plain `async fn` in traits.
#![allow(async_fn_in_trait)]

use crate::gate::route::GateRoute;
use crate::model::{ApiResource, Client, Grant, TokenRecord};
use crate::origin::ClientOrigin;
use crate::revocation::stamp::FeedStamp;
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
    /// call that revokes it. The same transaction appends the token's `r` entry to the
    /// revocation feed, stamped with `feed`, only if this call revoked it.
    async fn revoke_token(
        &self,
        id: &str,
        now: i64,
        why: Option<&RevocationNote>,
        feed: &FeedStamp,
    ) -> Result<Option<Revoked>, StoreError>;
    /// Rotation, atomically: replaces the hash of a token that is still active with hash `old`
    /// (not revoked, not expired at `now`), bumps its generation and records `old` as retired,
    /// working until `grace_until` if given. False if it lost a race (revoked, expired or
    /// rotated meanwhile). The same transaction appends to the revocation feed, only if it
    /// rotated: the new generation (`g`), and without a grace the old hash (`t`).
    async fn rotate_token(
        &self,
        id: &str,
        old: &TokenHash,
        new: &TokenHash,
        now: i64,
        grace_until: Option<i64>,
        feed: &FeedStamp,
    ) -> Result<bool, StoreError>;
    /// Hashes a token had before its rotations, retired at or after `since` or in a grace period
    /// that lasts until at least `since`.
    async fn retired_hashes(&self, id: &str, since: i64) -> Result<Vec<Retired>, StoreError>;
    /// The retired hash `hash`, if it is one.
    async fn retired_by_hash(&self, hash: &TokenHash) -> Result<Option<Retired>, StoreError>;
    /// Ends the grace period of retired hash `hash` at `now` (if it lasts longer); the same
    /// transaction appends its `t` entry to the revocation feed, only if the grace was running.
    async fn end_grace(
        &self,
        hash: &TokenHash,
        now: i64,
        feed: &FeedStamp,
    ) -> Result<(), StoreError>;
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
    /// What an administrator wrote (reason `admin`): shown to the token's owner.
    pub message: Option<String>,
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

/// Records that a token was used: one coalesced report of an isolate's uses (a Durable Object
/// per token, see [`crate::last_use`]).
pub trait UsageRecorder {
    async fn record_use(&self, rec: &crate::last_use::UseRecord) -> Result<(), StoreError>;
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
    /// Updates a client; the same transaction appends its uid (`c`) to the revocation feed, so
    /// every isolate reads the client again within the bound.
    async fn update_client(
        &self,
        c: &Client,
        profile: &crate::authz::records::ClientProfile,
        feed: &FeedStamp,
    ) -> Result<Write, StoreError>;
    /// Deletes a client, appending its uid (`c`) to the revocation feed in the same transaction.
    async fn delete_client(&self, id: &str, feed: &FeedStamp) -> Result<Write, StoreError>;
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
    + DeliveryQueue
    + UsageStore
    + Inventory
    + DeliveryLog
    + RevocationFeed
    + SnapshotCache
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
            + DeliveryQueue
            + UsageStore
            + Inventory
            + DeliveryLog
            + RevocationFeed
            + SnapshotCache
            + crate::authz::store::FlowStore,
    > Backend for T
{
}

/// The recent-revocations feed (D1 `revocation_feed`, docs/REVOCATION.md): read since a cursor,
/// appended to where no revoking statement carries the entry (a JWT id revoked), trimmed. Every
/// other entry is written by the revoking statement's own batch (see `storage::feed`).
pub trait RevocationFeed {
    /// Entries with `seq > after` (at most `storage::feed::PAGE_LIMIT`) and the head, read in one
    /// transaction ([`crate::revocation::feed::FeedLog::since`]'s contract).
    async fn feed_since(&self, after: u64) -> Result<crate::revocation::feed::Page, StoreError>;
    /// Appends entries (kind, value, at, until as in [`crate::revocation::feed::Entry`]) in one
    /// transaction.
    async fn append_feed(&self, entries: &[FeedAppend]) -> Result<(), StoreError>;
    /// Whether a JWT id was revoked (its `j` entry is kept until after `now_ms`): D1 answers when
    /// an isolate's view is too old to vouch for a JWT.
    async fn jti_in_feed(&self, jti: &str, now_ms: i64) -> Result<bool, StoreError>;
    /// Deletes the entries kept until before `before_ms`, except the newest (the head stays
    /// readable). Returns how many went.
    async fn trim_feed(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// An entry to append: what it revokes and until when it is kept (the writer's time is the
/// caller's [`crate::storage::feed::FeedStamp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedAppend {
    pub key: crate::revocation::feed::Key,
    pub at_ms: i64,
    pub until_ms: i64,
}

/// This location's copy of the feed: one object in the Cache API holding an encoded
/// [`crate::revocation::snapshot::Snapshot`]. Absent on hosts without a Cache API (then every
/// refresh reads D1: the same bound, more reads).
pub trait SnapshotCache {
    async fn load_snapshot(&self) -> Result<Option<String>, StoreError>;
    async fn store_snapshot(&self, body: &str) -> Result<(), StoreError>;
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
    /// Its delivery health: failing since, disabled (see [`crate::webhook::health`]).
    pub health: crate::webhook::health::Health,
    pub format: EndpointFormat,
}

/// How deliveries to an endpoint are made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EndpointFormat {
    /// Standard Webhooks: the event types it subscribed to, as signed JSON.
    #[default]
    Standard,
    /// Security Event Tokens (RFC 8417) pushed as RFC 8935 asks, one per revocation, for the
    /// receiver's audience (and with token hashes if it consented).
    SecEvent(crate::revocation::push::Receiver),
}

/// What the fan-out needs of an endpoint (cached per isolate): no URL, no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub id: String,
    pub event_types: Vec<String>,
    /// `Some`: a Security Event Token receiver (it gets revocation notices only).
    pub secevent: Option<crate::revocation::push::Receiver>,
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

/// A token's usage per day and key (D1 `token_usage`).
pub trait UsageStore {
    /// The rows of token `id` on days `from_day` and later, any order.
    async fn token_usage(
        &self,
        id: &str,
        from_day: i64,
    ) -> Result<Vec<crate::usage::book::UsageRow>, StoreError>;
    /// Deletes every token's rows of days before `before_day` (the hourly scan; the objects
    /// delete their own when they write).
    async fn prune_usage(&self, before_day: i64) -> Result<(), StoreError>;
    /// The uses of the access tokens of each grant in `grant_ids` (at most 100), summed per
    /// grant, uses counted from day `from_day` on; grants without tokens are left out.
    async fn grant_uses(
        &self,
        grant_ids: &[String],
        from_day: i64,
    ) -> Result<Vec<crate::store_usage::GrantUses>, StoreError>;
}

/// The administrators' view of reference tokens across users.
pub trait Inventory {
    /// One page of tokens matching `q`, in its order.
    async fn inventory(
        &self,
        q: &crate::store_usage::InventoryQuery,
    ) -> Result<Vec<TokenRecord>, StoreError>;
    /// How many tokens match `q`'s filters, all pages together.
    async fn inventory_count(
        &self,
        q: &crate::store_usage::InventoryQuery,
    ) -> Result<u64, StoreError>;
}

/// The webhook delivery log and endpoint health (D1 `webhook_deliveries`, `webhook_endpoints`).
pub trait DeliveryLog {
    /// Records an attempt; returns its id.
    async fn record_attempt(&self, a: &crate::store_usage::Attempt) -> Result<i64, StoreError>;
    /// Endpoint `endpoint`'s attempts, newest first, with ids below `before` if given.
    async fn attempts(
        &self,
        endpoint: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::store_usage::Attempt>, StoreError>;
    /// One attempt of endpoint `endpoint`.
    async fn attempt(
        &self,
        endpoint: &str,
        id: i64,
    ) -> Result<Option<crate::store_usage::Attempt>, StoreError>;
    /// Replaces endpoint `id`'s health. `NotFound` if there is no such endpoint.
    async fn set_health(
        &self,
        id: &str,
        h: &crate::webhook::health::Health,
    ) -> Result<Write, StoreError>;
    /// Deletes attempts recorded before `before` (the hourly scan).
    async fn prune_attempts(&self, before: i64) -> Result<(), StoreError>;
}
