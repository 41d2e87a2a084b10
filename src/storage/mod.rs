//! Storage contracts: every format patgate writes to KV, D1 or Durable Object storage, in one
//! place, typed, and pinned by golden tests.
//!
//! Stored data outlives the code that wrote it: a deployment reads KV entries and D1 rows written
//! by the previous one (and, during a rollout, both versions run at once). Changing one of these
//! formats without a migration path turns live tokens into unknown ones (KV), or makes rows
//! unreadable (D1). The golden tests below fail on any such change; update them only together
//! with a migration and a note in the README.
//!
//! - [`kv`]: the KV keys (`g:{hex sha256}` for token grants, `d:{jti}` for the JWT denylist), each
//!   as a type naming its value type; the grant JSON is [`crate::model::Grant`].
//! - [`rows`]: D1 rows as the runtime reads them (`tokens`, `retired_token_hashes`,
//!   `api_resources`, `clients`, `gate_routes`) and their mapping to the core's records; unknown
//!   enum values and malformed hashes are errors, never a default.
//! - [`webhooks`]: D1 `webhook_endpoints` (secrets stored as is: HMAC signing needs them).
//! - [`deliveries`]: D1 `webhook_deliveries` (the delivery log) and `token_usage` rows.
//! - [`inventory`]: the SQL of the administrators' token inventory.
//! - [`grant_usage`]: the SQL of an authorization grant's uses (its access tokens' summed).
//! - [`feed`]: D1 `revocation_feed` (the recent-revocations feed): its page query and the
//!   conditional appends that ride in the batch of every statement that revokes.
//! - [`authz_rows`]: the authorization server's D1 rows (client profiles, consent requests,
//!   codes, grants, refresh tokens, remembered approvals) and the conditional statements its
//!   storage contracts rest on; [`authz_ended`]: the clean-up's bounded deletes of ended state.
//! - The Durable Object's request body and stored state: [`crate::last_use`].
//!
//! The runtime adapters (`src/edge/kv.rs`, `src/edge/d1/`) only move these values to and from the
//! bindings.

pub mod authz_ended;
pub mod authz_rows;
pub mod client_rows;
pub mod deliveries;
pub mod feed;
pub mod grant_usage;
pub mod inventory;
pub mod kv;
pub mod rows;
pub mod webhooks;
