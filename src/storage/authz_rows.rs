//! D1 rows of the authorization server (`migrations/0011_authorization_server.sql`) and their
//! mapping to `crate::authz::records`, plus the conditional statements the storage contracts
//! (`crate::authz::store`) rest on. As in [`super::rows`]: unknown enum values, malformed hashes
//! and unreadable JSON columns are errors (503), never a default that would change what a client
//! or token may do. Each insert's values come from one function, in the order of its column list.

use crate::authz::records::{
    AppGrant, Approved, Audience, AuthorizationCode, ClientProfile, ClientSource, GrantEnd,
    PendingConsent, RefreshTokenRecord, RememberedApproval,
};
use crate::oauth::authorize::CodeChallenge;
use crate::oauth::client_metadata::GrantType;
use crate::store::StoreError;
use crate::token::TokenHash;
use serde::Deserialize;

/// A value bound to a D1 statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

fn err(what: &str) -> StoreError {
    StoreError(format!("bad {what} in D1"))
}

fn hash(hex: &str, what: &str) -> Result<TokenHash, StoreError> {
    TokenHash::from_hex(hex).ok_or_else(|| err(what))
}

fn challenge(b64: &str) -> Result<CodeChallenge, StoreError> {
    CodeChallenge::from_stored(b64).ok_or_else(|| err("code_challenge"))
}

fn text(s: &str) -> Bind {
    Bind::Text(s.to_owned())
}

// ---- clients: the authorization-code side ----

/// The columns of [`ClientProfileRow`] (read with the existing client columns).
pub const CLIENT_PROFILE_COLUMNS: &str = "source, display_name, logo_uri, redirect_uris, \
    grant_types, refresh_tokens, metadata_expires_at, last_used_at";

#[derive(Deserialize)]
pub struct ClientProfileRow {
    pub source: String,
    pub display_name: Option<String>,
    pub logo_uri: Option<String>,
    pub redirect_uris: String,
    pub grant_types: Option<String>,
    pub refresh_tokens: i64,
    pub metadata_expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ClientProfileRow {
    pub fn into_profile(self) -> Result<ClientProfile, StoreError> {
        let redirect_uris: Vec<String> =
            serde_json::from_str(&self.redirect_uris).map_err(|_| err("redirect_uris"))?;
        let grant_types = self
            .grant_types
            .map(|g| {
                crate::scopes::split(&g)
                    .iter()
                    .map(|t| GrantType::parse(t).ok_or_else(|| err("grant type")))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(ClientProfile {
            source: ClientSource::from_db(&self.source).ok_or_else(|| err("client source"))?,
            display_name: self.display_name,
            logo_uri: self.logo_uri,
            redirect_uris,
            grant_types,
            refresh_tokens: self.refresh_tokens != 0,
            metadata_expires_at: self.metadata_expires_at,
            last_used_at: self.last_used_at,
        })
    }
}

/// The values of [`CLIENT_PROFILE_COLUMNS`] for `p`.
pub fn client_profile_values(p: &ClientProfile) -> Result<Vec<Bind>, StoreError> {
    let uris = serde_json::to_string(&p.redirect_uris).map_err(|_| err("redirect_uris"))?;
    Ok(vec![
        text(p.source.as_db()),
        Bind::OptText(p.display_name.clone()),
        Bind::OptText(p.logo_uri.clone()),
        Bind::Text(uris),
        Bind::OptText(
            p.grant_types
                .as_ref()
                .map(|g| g.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" ")),
        ),
        Bind::Int(i64::from(p.refresh_tokens)),
        Bind::OptInt(p.metadata_expires_at),
        Bind::OptInt(p.last_used_at),
    ])
}

// ---- what the user approves: consent requests and codes share these columns ----

const APPROVED_COLUMNS: &str = "subject, client_id, client_uid, redirect_uri, redirect_key, \
    code_challenge, resource, api_id, api_uid, scopes";

fn approved_values(a: &Approved) -> Vec<Bind> {
    vec![
        text(&a.subject),
        text(&a.client_id),
        text(&a.client_uid),
        text(&a.redirect_uri),
        text(&a.redirect_key),
        Bind::Text(a.code_challenge.to_stored()),
        text(&a.audience.resource),
        text(&a.audience.api_id),
        text(&a.audience.api_uid),
        Bind::Text(crate::scopes::join(&a.scopes)),
    ]
}

#[derive(Deserialize)]
pub struct ApprovedRow {
    pub subject: String,
    pub client_id: String,
    pub client_uid: String,
    pub redirect_uri: String,
    pub redirect_key: String,
    pub code_challenge: String,
    pub resource: String,
    pub api_id: String,
    pub api_uid: String,
    pub scopes: String,
}

impl ApprovedRow {
    fn into_approved(self) -> Result<Approved, StoreError> {
        Ok(Approved {
            code_challenge: challenge(&self.code_challenge)?,
            subject: self.subject,
            client_id: self.client_id,
            client_uid: self.client_uid,
            redirect_uri: self.redirect_uri,
            redirect_key: self.redirect_key,
            audience: Audience {
                resource: self.resource,
                api_id: self.api_id,
                api_uid: self.api_uid,
            },
            scopes: crate::scopes::split(&self.scopes),
        })
    }
}

/// `consent_requests` columns, in the order of [`consent_values`].
pub fn consent_columns() -> String {
    format!("handle_hash, {APPROVED_COLUMNS}, state, created_at, expires_at, used_at")
}

pub fn consent_values(c: &PendingConsent) -> Vec<Bind> {
    let mut v = vec![Bind::Text(c.handle_hash.to_hex())];
    v.extend(approved_values(&c.request));
    v.extend([
        Bind::OptText(c.state.clone()),
        Bind::Int(c.created_at),
        Bind::Int(c.expires_at),
        Bind::OptInt(c.used_at),
    ]);
    v
}

#[derive(Deserialize)]
pub struct ConsentRow {
    pub handle_hash: String,
    #[serde(flatten)]
    pub approved: ApprovedRow,
    pub state: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl ConsentRow {
    pub fn into_record(self) -> Result<PendingConsent, StoreError> {
        Ok(PendingConsent {
            handle_hash: hash(&self.handle_hash, "consent handle hash")?,
            request: self.approved.into_approved()?,
            state: self.state,
            created_at: self.created_at,
            expires_at: self.expires_at,
            used_at: self.used_at,
        })
    }
}

/// `authorization_codes` columns, in the order of [`code_values`].
pub fn code_columns() -> String {
    format!("code_hash, grant_id, {APPROVED_COLUMNS}, created_at, expires_at, used_at")
}

pub fn code_values(c: &AuthorizationCode) -> Vec<Bind> {
    let mut v = vec![Bind::Text(c.hash.to_hex()), text(&c.grant_id)];
    v.extend(approved_values(&c.approved));
    v.extend([
        Bind::Int(c.created_at),
        Bind::Int(c.expires_at),
        Bind::OptInt(c.used_at),
    ]);
    v
}

#[derive(Deserialize)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    #[serde(flatten)]
    pub approved: ApprovedRow,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl CodeRow {
    pub fn into_record(self) -> Result<AuthorizationCode, StoreError> {
        Ok(AuthorizationCode {
            hash: hash(&self.code_hash, "code hash")?,
            grant_id: self.grant_id,
            approved: self.approved.into_approved()?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            used_at: self.used_at,
        })
    }
}

// ---- grants and refresh tokens ----

pub const GRANT_COLUMNS: &str = "id, subject, client_id, client_uid, redirect_key, resource, \
    api_id, api_uid, scopes, created_at, last_used_at, refresh_generation, rotated_generation, \
    expires_at, revoked_at, revoked_reason";

pub fn grant_values(g: &AppGrant) -> Vec<Bind> {
    vec![
        text(&g.id),
        text(&g.subject),
        text(&g.client_id),
        text(&g.client_uid),
        text(&g.redirect_key),
        text(&g.audience.resource),
        text(&g.audience.api_id),
        text(&g.audience.api_uid),
        Bind::Text(crate::scopes::join(&g.scopes)),
        Bind::Int(g.created_at),
        Bind::OptInt(g.last_used_at),
        Bind::Int(g.refresh_generation),
        Bind::Int(g.rotated_generation),
        Bind::Int(g.expires_at),
        Bind::OptInt(g.revoked_at),
        Bind::OptText(g.revoked_reason.map(|r| r.as_db().to_owned())),
    ]
}

#[derive(Deserialize)]
pub struct GrantRow {
    pub id: String,
    pub subject: String,
    pub client_id: String,
    pub client_uid: String,
    pub redirect_key: String,
    pub resource: String,
    pub api_id: String,
    pub api_uid: String,
    pub scopes: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub refresh_generation: i64,
    pub rotated_generation: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

impl GrantRow {
    pub fn into_record(self) -> Result<AppGrant, StoreError> {
        Ok(AppGrant {
            revoked_reason: self
                .revoked_reason
                .as_deref()
                .map(|r| GrantEnd::from_db(r).ok_or_else(|| err("revoked_reason")))
                .transpose()?,
            id: self.id,
            subject: self.subject,
            client_id: self.client_id,
            client_uid: self.client_uid,
            redirect_key: self.redirect_key,
            audience: Audience {
                resource: self.resource,
                api_id: self.api_id,
                api_uid: self.api_uid,
            },
            scopes: crate::scopes::split(&self.scopes),
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            refresh_generation: self.refresh_generation,
            rotated_generation: self.rotated_generation,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        })
    }
}

pub const REFRESH_COLUMNS: &str =
    "token_hash, grant_id, generation, created_at, idle_expires_at, rotated_at";

pub fn refresh_values(r: &RefreshTokenRecord) -> Vec<Bind> {
    vec![
        Bind::Text(r.hash.to_hex()),
        text(&r.grant_id),
        Bind::Int(r.generation),
        Bind::Int(r.created_at),
        Bind::Int(r.idle_expires_at),
        Bind::OptInt(r.rotated_at),
    ]
}

#[derive(Deserialize)]
pub struct RefreshRow {
    pub token_hash: String,
    pub grant_id: String,
    pub generation: i64,
    pub created_at: i64,
    pub idle_expires_at: i64,
    pub rotated_at: Option<i64>,
}

impl RefreshRow {
    pub fn into_record(self) -> Result<RefreshTokenRecord, StoreError> {
        Ok(RefreshTokenRecord {
            hash: hash(&self.token_hash, "refresh token hash")?,
            grant_id: self.grant_id,
            generation: self.generation,
            created_at: self.created_at,
            idle_expires_at: self.idle_expires_at,
            rotated_at: self.rotated_at,
        })
    }
}

pub const APPROVAL_COLUMNS: &str =
    "subject, client_uid, redirect_key, resource, scopes, approved_at";

pub fn approval_values(a: &RememberedApproval) -> Vec<Bind> {
    vec![
        text(&a.subject),
        text(&a.client_uid),
        text(&a.redirect_key),
        text(&a.resource),
        Bind::Text(crate::scopes::join(&a.scopes)),
        Bind::Int(a.approved_at),
    ]
}

#[derive(Deserialize)]
pub struct ApprovalRow {
    pub subject: String,
    pub client_uid: String,
    pub redirect_key: String,
    pub resource: String,
    pub scopes: String,
    pub approved_at: i64,
}

impl ApprovalRow {
    pub fn into_record(self) -> RememberedApproval {
        RememberedApproval {
            subject: self.subject,
            client_uid: self.client_uid,
            redirect_key: self.redirect_key,
            resource: self.resource,
            scopes: crate::scopes::split(&self.scopes),
            approved_at: self.approved_at,
        }
    }
}

/// The conditional statements the storage contracts rely on (parameters `?N` as named). Each
/// was run against the migrated schema with `SQLite` 3.40 (`RETURNING` needs 3.35; D1 has it).
pub mod sql {
    /// A code's first use (`?1` hash, `?2` now); no row: used, expired or unknown (then read it).
    pub const CONSUME_CODE: &str = "UPDATE authorization_codes SET used_at = ?2 \
        WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING *";
    /// A consent answer (`?1` handle hash, `?2` subject, `?3` now).
    pub const TAKE_CONSENT: &str = "UPDATE consent_requests SET used_at = ?3 \
        WHERE handle_hash = ?1 AND subject = ?2 AND used_at IS NULL AND expires_at > ?3 RETURNING *";
    /// Revoking a grant (`?1` id, `?2` now, `?3` reason), then its access tokens (same batch).
    pub const REVOKE_GRANT: &str = "UPDATE app_grants SET revoked_at = ?2, revoked_reason = ?3 \
        WHERE id = ?1 AND revoked_at IS NULL";
    pub const REVOKE_GRANT_TOKENS: &str = "UPDATE tokens SET revoked_at = ?2 \
        WHERE grant_id = ?1 AND revoked_at IS NULL RETURNING token_hash";
    /// Rotation, one batch (`?1` grant, `?2` next generation, `?3` presented generation, `?4`
    /// now): the grant moves on only from generation `?2 - 1`; the other two statements act only
    /// if it now stands at `?2` (this batch or a concurrent winner: then the unique
    /// `(grant_id, generation)` makes the loser's insert a no-op). The answer is the first statement's change
    /// count.
    pub const ROTATE_GRANT: &str = "UPDATE app_grants SET refresh_generation = ?2, \
        rotated_generation = ?3, last_used_at = ?4 WHERE id = ?1 AND refresh_generation = ?2 - 1 \
        AND revoked_at IS NULL AND expires_at > ?4";
    pub const RETIRE_OLDER: &str = "UPDATE refresh_tokens SET rotated_at = ?3 \
        WHERE grant_id = ?1 AND generation < ?2 AND rotated_at IS NULL \
        AND (SELECT refresh_generation FROM app_grants WHERE id = ?1) = ?2";
    /// `?1` hash, `?2` grant, `?3` generation, `?4` created, `?5` idle expiry.
    pub const INSERT_NEXT: &str = "INSERT OR IGNORE INTO refresh_tokens \
        (token_hash, grant_id, generation, created_at, idle_expires_at) \
        SELECT ?1, ?2, ?3, ?4, ?5 WHERE (SELECT refresh_generation FROM app_grants \
        WHERE id = ?2 AND revoked_at IS NULL) = ?3";
    /// A metadata document client, inserted or refreshed, its uid kept; never another source's
    /// (then no row is returned). The uid is set here, not by the insert trigger: `RETURNING`
    /// does not see what an `AFTER` trigger writes.
    pub const PUT_METADATA_CLIENT: &str = "INSERT INTO clients (id, uid, secret_hash, \
        allowed_scopes, token_format, token_lifetime, enabled, created_at, source, display_name, \
        logo_uri, redirect_uris, grant_types, refresh_tokens, metadata_expires_at) \
        VALUES (?1, lower(hex(randomblob(16))), NULL, ?2, 'reference', ?3, 1, ?4, 'metadata', \
        ?5, ?6, ?7, ?8, ?9, ?10) \
        ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, \
        logo_uri = excluded.logo_uri, redirect_uris = excluded.redirect_uris, \
        grant_types = excluded.grant_types, refresh_tokens = excluded.refresh_tokens, \
        metadata_expires_at = excluded.metadata_expires_at WHERE clients.source = 'metadata' \
        RETURNING uid";
}

#[cfg(test)]
#[path = "authz_rows_tests.rs"]
mod tests;
