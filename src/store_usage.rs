//! Storage contracts of what operators and owners look at: a token's per-day usage (D1
//! `token_usage`, written by the `LastUsed` objects), the administrators' token inventory (D1
//! `tokens` across users) and the webhook delivery log (D1 `webhook_deliveries`).
#![allow(async_fn_in_trait)]

use crate::model::TokenRecord;
use crate::store::StoreError;
use crate::usage::book::UsageRow;

/// A token's usage per day and key (D1 `token_usage`).
pub trait UsageStore {
    /// The rows of token `id` on days `from_day` and later, any order.
    async fn token_usage(&self, id: &str, from_day: i64) -> Result<Vec<UsageRow>, StoreError>;
    /// Deletes every token's rows of days before `before_day` (the hourly scan; the objects
    /// delete their own when they write).
    async fn prune_usage(&self, before_day: i64) -> Result<(), StoreError>;
}

/// Which tokens `GET /admin/pats` lists ([`crate::storage::inventory`] builds its SQL and is
/// the one reading of these filters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryQuery {
    pub kind: KindFilter,
    pub status: Option<StatusFilter>,
    /// Active and expiring within this many days.
    pub expiring_within_days: Option<i64>,
    /// Not used (or, never used, not created) in this many days.
    pub unused_for_days: Option<i64>,
    /// Revoked by a leak report (`true`), or not (`false`).
    pub leaked: Option<bool>,
    pub client: Option<String>,
    /// Carries this scope.
    pub scope: Option<String>,
    /// Owned by this user (the subject).
    pub user: Option<String>,
    pub sort: SortKey,
    pub descending: bool,
    /// Keyset position: the sort value and id of the last row of the previous page.
    pub after: Option<(i64, String)>,
    pub limit: u32,
    /// The time the filters are relative to.
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindFilter {
    Pat,
    /// Client reference tokens (`pga_`).
    Access,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Active,
    Expired,
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Created,
    Expires,
    /// Never used counts as used at time 0.
    LastUsed,
    Uses,
}

/// The administrators' view of reference tokens across users.
pub trait Inventory {
    /// One page of tokens matching `q`, in its order.
    async fn inventory(&self, q: &InventoryQuery) -> Result<Vec<TokenRecord>, StoreError>;
    /// How many tokens match `q`'s filters, all pages together.
    async fn inventory_count(&self, q: &InventoryQuery) -> Result<u64, StoreError>;
}

/// One delivery attempt of a webhook message, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Assigned by the store (`None` before it is recorded).
    pub id: Option<i64>,
    pub endpoint: String,
    pub msg_id: String,
    pub event_type: String,
    /// 1-based, counted by the queue (a redelivery starts again at 1).
    pub attempt: u32,
    pub at: i64,
    /// `delivered`, `retrying`, `failed` (the last attempt failed), `dropped` (not sent: the
    /// endpoint is gone, disabled or unusable).
    pub outcome: String,
    pub status: Option<u16>,
    pub latency_ms: Option<u32>,
    pub error: Option<String>,
    /// The exact bytes sent (and signed): what a redelivery sends again.
    pub payload: String,
    /// Sent again by an operator (`POST .../redeliver`).
    pub redelivery: bool,
}

/// An endpoint's delivery health (columns of D1 `webhook_endpoints`).
pub use crate::webhook::health::Health as EndpointHealth;

/// The webhook delivery log and endpoint health (D1 `webhook_deliveries`, `webhook_endpoints`).
pub trait DeliveryLog {
    /// Records an attempt; returns its id.
    async fn record_attempt(&self, a: &Attempt) -> Result<i64, StoreError>;
    /// Endpoint `endpoint`'s attempts, newest first, with ids below `before` if given.
    async fn attempts(
        &self,
        endpoint: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Attempt>, StoreError>;
    /// One attempt of endpoint `endpoint`.
    async fn attempt(&self, endpoint: &str, id: i64) -> Result<Option<Attempt>, StoreError>;
    /// Replaces endpoint `id`'s health. `NotFound` if there is no such endpoint.
    async fn set_health(
        &self,
        id: &str,
        h: &EndpointHealth,
    ) -> Result<crate::store::Write, StoreError>;
    /// Deletes attempts recorded before `before` (the hourly scan).
    async fn prune_attempts(&self, before: i64) -> Result<(), StoreError>;
}
