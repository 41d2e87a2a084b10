//! The authorization server's storage capabilities (D1), named for what they do. The runtime
//! implements them over D1 (`src/edge/d1/authz.rs`, with the wiring); `super::memory` in memory
//! with failure injection. Each write that must not happen twice is one conditional statement
//! (or one D1 batch, which is a transaction), as its contract says.
#![allow(async_fn_in_trait)]

use super::code::CodeUse;
use super::records::{
    AppGrant, AuthorizationCode, ClientProfile, GrantEnd, PendingConsent, RefreshTokenRecord,
    RememberedApproval,
};
use crate::model::{Client, SecretSet};
use crate::oauth::metadata_document::FetchableUrl;
use crate::revocation::stamp::FeedStamp;
use crate::secret::SecretHash;
use crate::store::error::{StoreError, Write};
use crate::token::TokenHash;

/// Clients one by one (self-registered clients can number in the tens of thousands: never read
/// the whole table), with their authorization-code side.
pub trait ClientDirectory {
    /// The client with this id and its profile (`SELECT ... FROM clients WHERE id = ?`).
    async fn client_profile(&self, id: &str)
        -> Result<Option<(Client, ClientProfile)>, StoreError>;
    /// Every administrator-made client with its profile, by id (`WHERE source = 'admin'`): the
    /// isolate's admin table and the admin API's list. Self-registered clients are never read
    /// whole.
    async fn admin_clients(&self) -> Result<Vec<(Client, ClientProfile)>, StoreError>;
    /// Stores a metadata document client as fetched: inserted on first sight, its profile
    /// replaced on a later fetch, its uid kept (`INSERT ... ON CONFLICT(id) DO UPDATE ... WHERE
    /// source = 'metadata' RETURNING uid`). `None`: the id belongs to a client of another source,
    /// which is left alone.
    async fn put_metadata_client(
        &self,
        client: &Client,
        profile: &ClientProfile,
        now: i64,
    ) -> Result<Option<String>, StoreError>;
    /// Registers a dynamic client (RFC 7591). `Conflict` if the id exists.
    async fn register_client(
        &self,
        client: &Client,
        profile: &ClientProfile,
        now: i64,
    ) -> Result<Write, StoreError>;
    /// Notes a dynamic client's use (`last_used_at`, at most once per hour per client: the
    /// caller coalesces).
    async fn touch_client(&self, id: &str, now: i64) -> Result<(), StoreError>;
    /// Deletes at most `limit` dynamic clients unused since `unused_since` that have no live
    /// grant, returning their ids (the cron's clean-up).
    async fn expire_dynamic_clients(
        &self,
        unused_since: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
    /// Gives client `id` the secrets `secret` (a public client made confidential, or a new secret
    /// for a confidential one) if it is still the client `uid` whose current secret is `expected`
    /// (`None`: public), in one conditional statement; `NotFound` when it is gone or another
    /// change came first. Its source and profile are left alone (a metadata document's next
    /// fetch replaces the profile, never the secret).
    async fn set_client_secret(
        &self,
        id: &str,
        uid: &str,
        expected: Option<&SecretHash>,
        secret: &SecretSet,
    ) -> Result<Write, StoreError>;
}

/// Pending consent requests (D1 `consent_requests`).
pub trait ConsentRequests {
    async fn insert_consent(&self, c: &PendingConsent) -> Result<(), StoreError>;
    /// The request behind `handle` if it is `subject`'s, unused and unexpired at `now` (the
    /// consent page's GET).
    async fn consent(
        &self,
        handle: &TokenHash,
        subject: &str,
        now: i64,
    ) -> Result<Option<PendingConsent>, StoreError>;
    /// Marks it used and returns it, in one conditional statement (`UPDATE ... SET used_at = ?
    /// WHERE handle_hash = ? AND subject = ? AND used_at IS NULL AND expires_at > ? RETURNING
    /// *`): of two concurrent answers, one gets it. Another user's handle is `None`.
    async fn take_consent(
        &self,
        handle: &TokenHash,
        subject: &str,
        now: i64,
    ) -> Result<Option<PendingConsent>, StoreError>;
}

/// Remembered approvals (D1 `remembered_approvals`).
pub trait RememberedApprovals {
    async fn remembered_approval(
        &self,
        subject: &str,
        client_uid: &str,
        redirect_key: &str,
        resource: &str,
    ) -> Result<Option<RememberedApproval>, StoreError>;
    /// Stores an approval: its scopes added to any remembered for the same four keys.
    async fn remember_approval(&self, a: &RememberedApproval) -> Result<(), StoreError>;
    /// Forgets the user's approvals of a client (revoking it on the token page).
    async fn forget_approvals(&self, subject: &str, client_uid: &str) -> Result<(), StoreError>;
}

/// Authorization codes (D1 `authorization_codes`).
pub trait AuthorizationCodes {
    async fn insert_code(&self, c: &AuthorizationCode) -> Result<(), StoreError>;
    /// The code's first use marks it used, atomically (`UPDATE ... SET used_at = ? WHERE
    /// code_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING *`, then a read to tell a
    /// replay from an expired or unknown code): exactly one caller ever gets
    /// [`CodeUse::First`].
    async fn consume_code(&self, hash: &TokenHash, now: i64) -> Result<CodeUse, StoreError>;
}

/// What revoking a grant did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRevoked {
    /// This call revoked it (false: it was revoked before).
    pub newly: bool,
    /// The hashes of every access token of the grant (revoked in D1 `tokens` by this call or an
    /// earlier one, which may have reported an error after it landed): the caller evicts them
    /// from KV through the one revocation path.
    pub access_tokens: Vec<TokenHash>,
}

/// Grants and their refresh tokens (D1 `app_grants`, `refresh_tokens`, and `tokens.grant_id`).
pub trait AppGrants {
    /// Inserts a new grant and its first refresh token, if any, in one batch.
    async fn insert_grant(
        &self,
        g: &AppGrant,
        first_refresh: Option<&RefreshTokenRecord>,
    ) -> Result<(), StoreError>;
    async fn grant(&self, id: &str) -> Result<Option<AppGrant>, StoreError>;
    /// `subject`'s grants not revoked and not expired at `now`, newest first, at most `limit`
    /// (the token page's "Authorized applications").
    async fn grants_of(
        &self,
        subject: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<AppGrant>, StoreError>;
    /// The ids of the live grants with `g`'s subject, client uid, redirect key and resource,
    /// `g` itself excepted: the ones a new grant of the same four replaces.
    async fn grants_replaced_by(&self, g: &AppGrant, now: i64) -> Result<Vec<String>, StoreError>;
    /// Revokes the grant (`UPDATE app_grants SET revoked_at = ?, revoked_reason = ? WHERE id = ?
    /// AND revoked_at IS NULL`) and, in the same batch, its access tokens (`UPDATE tokens SET
    /// revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL RETURNING token_hash`). Its
    /// refresh tokens die with it (every refresh checks the grant). In the same batch, only if
    /// that first update revoked the grant, its `a` entry in the revocation feed, stamped with
    /// `feed` (`storage::feed::APPEND_REVOKED_GRANT`): every location refuses the grant's access
    /// tokens within the feed's bound. `None`: no such grant.
    async fn revoke_grant(
        &self,
        id: &str,
        now: i64,
        why: GrantEnd,
        feed: &FeedStamp,
    ) -> Result<Option<GrantRevoked>, StoreError>;
    /// `last_used_at` (coalesced by the caller like PATs' last use).
    async fn touch_grant(&self, id: &str, now: i64) -> Result<(), StoreError>;
    async fn refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError>;
    /// Rotation, in one batch that applies only if the grant is live and still at generation
    /// `next.generation - 1` (`UPDATE app_grants SET refresh_generation = ?, rotated_generation
    /// = ?, last_used_at = ? WHERE id = ? AND refresh_generation = ? AND revoked_at IS NULL AND
    /// expires_at > ?`, then, only if that changed a row, every older token of the grant not
    /// yet rotated marked rotated at `now` (the presented one, or after a retry the successor
    /// never received) and `next` inserted). `presented`: the generation presented (the grant's
    /// new `rotated_generation`). False: another request rotated first, or the grant ended:
    /// nothing changed.
    async fn rotate_refresh(
        &self,
        next: &RefreshTokenRecord,
        presented: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// A fetched client ID metadata document (the response as received, the body cut off after
/// `max_bytes + 1` bytes so that an oversized one is seen as such).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub date: Option<String>,
    pub age: Option<String>,
}

/// Fetches client ID metadata documents: only URLs the network guard accepted
/// ([`FetchableUrl`], made by `oauth::metadata_document::fetchable_url`), `GET` with `Accept:
/// application/json`, redirects not followed (a 3xx is returned as such), at most `max_bytes +
/// 1` bytes read, given up after `timeout_ms` (an error).
pub trait MetadataFetcher {
    async fn fetch_metadata(
        &self,
        url: &FetchableUrl,
        max_bytes: usize,
        timeout_ms: u32,
    ) -> Result<Fetched, StoreError>;
}

/// The clean-up of ended authorization state (the cron). Each call deletes at most `limit`
/// rows, oldest first, and returns how many it deleted (`limit`: there may be more).
pub trait EndedState {
    /// Authorization codes that expired before `before` (used or not).
    async fn delete_expired_codes(&self, before: i64, limit: u32) -> Result<u32, StoreError>;
    /// Consent requests that expired before `before` (answered or not).
    async fn delete_expired_consents(&self, before: i64, limit: u32) -> Result<u32, StoreError>;
    /// Grants that ended before `before` (revoked then, or past their absolute expiry), each
    /// with every refresh token of it, in one batch; returns the grants deleted. Their access
    /// tokens' `tokens` rows stay (revoked or expired, they keep their own history).
    async fn delete_ended_grants(&self, before: i64, limit: u32) -> Result<u32, StoreError>;
}

/// What the authorization code flow stores (consent, approvals, codes, grants).
pub trait FlowStore:
    ConsentRequests + RememberedApprovals + AuthorizationCodes + AppGrants + EndedState
{
}

impl<T: ConsentRequests + RememberedApprovals + AuthorizationCodes + AppGrants + EndedState>
    FlowStore for T
{
}

/// Everything the authorization server stores.
pub trait AuthzBackend:
    ClientDirectory + ConsentRequests + RememberedApprovals + AuthorizationCodes + AppGrants
{
}

impl<
        T: ClientDirectory + ConsentRequests + RememberedApprovals + AuthorizationCodes + AppGrants,
    > AuthzBackend for T
{
}
