//! What the storage contracts of usage, the administrators' token inventory (D1 `tokens` across
//! users) and the webhook delivery log (D1 `webhook_deliveries`) exchange; the traits are in
//! [`crate::store`] (`UsageStore`, `Inventory`, `DeliveryLog`).

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

/// The uses of one authorization grant's access tokens, summed ([`crate::storage::grant_usage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantUses {
    pub grant_id: String,
    /// The last use of any of its tokens (`None`: never used).
    pub last_used_at: Option<i64>,
    /// Every use of its tokens.
    pub use_count: u64,
    /// The uses of its tokens on the days asked for (from a UTC day on).
    pub recent_uses: u64,
    /// Where its most recently used token was last used from, most recent first.
    pub last_used_from: Vec<crate::last_use::FromEntry>,
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
