//! Domain records: what D1 stores and what KV caches.

use crate::secret::{ClientSecret, SecretHash};
use crate::token::{TokenHash, TokenKind};
use serde::{Deserialize, Serialize};

/// The KV value for a reference token (key: `g:{hex sha256}`), read by introspection.
///
/// KV says which tokens exist: an entry is written when a token is issued and lives until the
/// token expires (KV expiration = `exp`), and revocation deletes it, so a hash without an entry
/// is inactive with no D1 read. What the entry says is trusted only until `fresh_until` (at most
/// `GRANT_CACHE_SECONDS` after it was written): after that D1 is asked again and the entry is
/// rewritten, or deleted if D1 says the token is gone. That bounds how long a lost KV delete can
/// keep a revoked token alive.
///
/// **Persisted format**: records written by one version are read by the next, in every
/// location, until they expire. Add only optional fields; never rename or remove one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The token record's id (`jti` in introspection).
    pub id: String,
    pub kind: TokenKind,
    pub sub: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Until when this entry may be trusted without asking D1. Absent in entries written before
    /// it existed: those count as stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_until: Option<i64>,
    /// See [`TokenRecord::client_uid`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uid: Option<String>,
    /// See [`TokenRecord::scope_owners`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_owners: Option<Vec<String>>,
    /// Only in the grant of a token rotated away with a grace period: when it was rotated. Its
    /// `exp` is then the end of the grace (`grace_until`), when it stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<i64>,
    /// See `rotated_at`: the end of the grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<i64>,
    /// Until when KV keeps the entry, if not until `exp`: the entry of a rotated-away token is
    /// kept until its PAT expires, so that a use after it stopped working reaches D1 once and is
    /// detected as a reuse (README "Reuse detection").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_until: Option<i64>,
    /// A reuse marker, not a grant: the entry of a token that no longer works (rotated away, its
    /// grace over). It never makes a token active: its `exp` is already past when it is written,
    /// its `scopes` are empty, and the decision refuses it by this flag too. Stale (trusted until
    /// `fresh_until`, at most the end of the grace) it sends the next use to D1, which detects
    /// the reuse; fresh it answers inactive with no D1 read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub marker: bool,
    /// See [`TokenRecord::grant_id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// See [`TokenRecord::audience`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl Grant {
    /// Whether the entry may answer without D1 at `now`.
    pub fn is_fresh(&self, now: i64) -> bool {
        self.fresh_until.is_some_and(|f| now < f)
    }

    /// Until when KV keeps the entry (its KV expiration).
    pub fn kv_expires_at(&self) -> i64 {
        self.keep_until.map_or(self.exp, |k| k.max(self.exp))
    }

    /// Whether the entry may make its token active at `now` (not a marker, not past `exp`).
    pub fn can_be_active(&self, now: i64) -> bool {
        !self.marker && self.exp > now
    }
}

/// What a detected reuse left in D1 (see [`TokenRecord::reuse`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReuseInfo {
    /// Detections so far (at most one per stolen token per location per `GRANT_CACHE_SECONDS`).
    pub count: i64,
    pub first_at: i64,
    pub last_at: i64,
    /// Where the last one came from, as Cloudflare reported it.
    pub last_origin: crate::origin::ClientOrigin,
    /// When the token used the last time had been rotated away.
    pub last_rotated_at: Option<i64>,
}

/// A row of D1 `tokens`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub kind: TokenKind,
    pub hash: TokenHash,
    pub subject: String,
    pub client_id: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub use_count: i64,
    /// How many times the token was rotated. JWTs exchanged from a PAT carry the generation they
    /// were minted from, so rotating the PAT kills them.
    pub generation: i64,
    /// The uid of the client when the token was issued: a client deleted and created again with
    /// the same id has another uid, and does not revive the token. `None`: issued before uids.
    pub client_uid: Option<String>,
    /// For each scope (same order), the uid of the API resource that owned it at issuance ("-":
    /// none). A scope moved to another resource stays invisible to it. `None`: issued before.
    pub scope_owners: Option<Vec<String>>,
    /// Why it was revoked, when that was recorded: `leaked` (a secret scanning report).
    pub revoked_reason: Option<String>,
    /// For a leak: the public URL where the token was found (from the report).
    pub revoked_url: Option<String>,
    /// The PAT may rotate itself (an explicit permission chosen at creation).
    pub allow_self_rotation: bool,
    /// A detected reuse of one of its rotated-away tokens revokes the PAT (an explicit option
    /// chosen at creation).
    pub revoke_on_reuse: bool,
    /// Reuse of its rotated-away tokens detected so far (`None`: never).
    pub reuse: Option<ReuseInfo>,
    /// Uses per UTC day of the last 90 days (D1 `daily_uses`, written by the token's `LastUsed`
    /// Durable Object, like `last_used_at` and `use_count`).
    pub daily_uses: crate::usage::summary::DailyUses,
    /// The last few places it was used from (D1 `last_used_from`, same writer).
    pub last_used_from: Vec<crate::last_use::FromEntry>,
    /// An administrator's reason for revoking it, shown to its owner (`revoked_reason` is then
    /// `admin`).
    pub revoked_message: Option<String>,
    /// Where leak reports found the token (or one of its rotated-away tokens): the newest
    /// [`MAX_LEAK_URLS`] distinct `http(s)` URLs, newest first (D1 `leak_reports`).
    pub leak_urls: Vec<String>,
    /// An access token issued from an authorization grant: the grant's id (revoking the grant
    /// revokes it).
    pub grant_id: Option<String>,
    /// An access token issued from an authorization grant: the RFC 8707 resource it is for (its
    /// audience; the gate refuses it on other resources).
    pub audience: Option<String>,
}

/// Most leak report URLs kept per token (the newest distinct ones).
pub const MAX_LEAK_URLS: usize = 10;

/// The columns of a new `tokens` row, in the order of [`token_insert_values`]: the one place that
/// maps a [`TokenRecord`] to a D1 insert (the Worker binds the values; the benchmark's seeding
/// tool writes them as SQL).
pub const TOKEN_INSERT_COLUMNS: &str = "id, kind, token_hash, subject, client_id, name, scopes, \
    created_at, expires_at, client_uid, scope_owners, allow_self_rotation, revoke_on_reuse, \
    grant_id, audience";

/// A value bound to a D1 statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Text(String),
    OptText(Option<String>),
    Int(i64),
}

/// The values of a new `tokens` row (see [`TOKEN_INSERT_COLUMNS`]).
pub fn token_insert_values(rec: &TokenRecord) -> Vec<SqlValue> {
    vec![
        SqlValue::Text(rec.id.clone()),
        SqlValue::Text(rec.kind.as_str().to_owned()),
        SqlValue::Text(rec.hash.to_hex()),
        SqlValue::Text(rec.subject.clone()),
        SqlValue::Text(rec.client_id.clone()),
        SqlValue::OptText(rec.name.clone()),
        SqlValue::Text(crate::scopes::join(&rec.scopes)),
        SqlValue::Int(rec.created_at),
        SqlValue::Int(rec.expires_at),
        SqlValue::OptText(rec.client_uid.clone()),
        SqlValue::OptText(rec.scope_owners.as_deref().map(crate::scopes::join)),
        SqlValue::Int(i64::from(rec.allow_self_rotation)),
        SqlValue::Int(i64::from(rec.revoke_on_reuse)),
        SqlValue::OptText(rec.grant_id.clone()),
        SqlValue::OptText(rec.audience.clone()),
    ]
}

/// A scope owned by no resource (at issuance).
pub const NO_OWNER: &str = "-";

/// A token's status as every view reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Expired,
    Revoked,
    /// Neither revoked nor expired, yet no introspection or gate answers it active: its client is
    /// disabled, deleted or created again (another uid), or no enabled API resource owns any of
    /// its scopes any more. Computed only by `app::decision::status`, never by the record alone.
    Inactive,
}

impl TokenRecord {
    /// What the record alone says: revoked, expired or neither (`Active`). Views report
    /// `app::decision::status`, which adds what the token decision checks besides.
    pub fn status(&self, now: i64) -> Status {
        if self.revoked_at.is_some() {
            Status::Revoked
        } else if self.expires_at <= now {
            Status::Expired
        } else {
            Status::Active
        }
    }

    /// The KV entry for this record, trusted until `fresh_until`.
    pub fn grant(&self, fresh_until: i64) -> Grant {
        Grant {
            id: self.id.clone(),
            kind: self.kind,
            sub: self.subject.clone(),
            client_id: self.client_id.clone(),
            scopes: self.scopes.clone(),
            iat: self.created_at,
            exp: self.expires_at,
            name: self.name.clone(),
            fresh_until: Some(fresh_until.min(self.expires_at)),
            client_uid: self.client_uid.clone(),
            scope_owners: self.scope_owners.clone(),
            rotated_at: None,
            grace_until: None,
            keep_until: None,
            marker: false,
            grant_id: self.grant_id.clone(),
            aud: self.audience.clone(),
        }
    }

    /// The KV entry for this record's token `rotated_at`, now rotated away and working until
    /// `grace_until` (bounded by the record's expiry); trusted until `fresh_until`.
    pub fn grace_grant(&self, rotated_at: i64, grace_until: i64, fresh_until: i64) -> Grant {
        let until = grace_until.min(self.expires_at);
        let mut g = self.grant(fresh_until.min(until));
        g.exp = until;
        g.rotated_at = Some(rotated_at);
        g.grace_until = Some(until);
        // kept after the grace, as the reuse marker it then is (stale: its next use asks D1)
        g.keep_until = Some(self.expires_at);
        g
    }

    /// The reuse marker of this record's token `rotated_at` (see [`Grant::marker`]), dead since
    /// `dead_since` (the end of its grace, or its rotation), trusted until `fresh_until` (at
    /// most `dead_since`: a marker that must send the next use to D1; later: one that answers
    /// inactive cheaply after a recorded reuse). Kept in KV until the PAT expires. It carries no
    /// scopes and no name.
    pub fn marker(
        &self,
        rotated_at: i64,
        grace_until: Option<i64>,
        dead_since: i64,
        fresh_until: i64,
    ) -> Grant {
        let mut g = self.grant(fresh_until);
        g.scopes = Vec::new();
        g.scope_owners = None;
        g.name = None;
        g.exp = dead_since.min(self.expires_at);
        g.fresh_until = Some(fresh_until.min(self.expires_at));
        g.rotated_at = Some(rotated_at);
        g.grace_until = grace_until;
        g.keep_until = Some(self.expires_at);
        g.marker = true;
        g
    }
}

/// A secret with an optional predecessor that keeps working until a deadline (rotation grace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSet {
    pub current: SecretHash,
    pub previous: Option<(SecretHash, i64)>,
}

impl SecretSet {
    /// Constant-time check against the current secret, and the previous one while it is valid.
    pub fn verify(&self, presented: &ClientSecret, now: i64) -> bool {
        self.verify_hash(&presented.hash(), now)
    }

    /// [`SecretSet::verify`] of a presented secret already hashed (hashed once for both checks).
    pub fn verify_hash(&self, presented: &crate::secret::SecretHash, now: i64) -> bool {
        let current = self.current.matches(presented);
        let previous = self
            .previous
            .as_ref()
            .is_some_and(|(h, until)| now < *until && h.matches(presented));
        current | previous
    }
}

/// An API resource: authenticates to introspection, owns scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    pub id: String,
    /// Internal id, never reused (assigned by the store at creation; empty before it).
    pub uid: String,
    pub secret: SecretSet,
    pub enabled: bool,
    pub scopes: Vec<String>,
    /// What each scope is for, as (scope, description), for the scopes that have one (D1
    /// `scopes.description`): the consent page shows them.
    pub descriptions: Vec<(String, String)>,
    /// The URI that names this API in RFC 8707 `resource` (an API that introspects tokens
    /// itself rather than sitting behind a gate route), unique among API resources.
    pub resource_uri: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    Reference,
    Jwt,
}

/// The id of the public client that PATs are issued to.
pub const PAT_CLIENT_ID: &str = "pat_client";

/// An OAuth client. `secret: None` is a public client (the PAT client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    /// Internal id, never reused (assigned by the store at creation; empty before it).
    pub uid: String,
    pub secret: Option<SecretSet>,
    pub allowed_scopes: Vec<String>,
    pub token_format: TokenFormat,
    pub token_lifetime: i64,
    pub enabled: bool,
}

/// A client with its authorization-code side (redirect URIs, grant types, display name, where
/// its registration comes from), as the isolate caches share it (cheap to clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzClient {
    pub client: std::rc::Rc<Client>,
    pub profile: std::rc::Rc<crate::authz::records::ClientProfile>,
}

impl AuthzClient {
    pub fn new(client: Client, profile: crate::authz::records::ClientProfile) -> Self {
        AuthzClient {
            client: std::rc::Rc::new(client),
            profile: std::rc::Rc::new(profile),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The KV grant format is read across versions and locations: this JSON must not change.
    #[test]
    fn grant_json_format_unchanged() {
        let g = Grant {
            id: "abc".into(),
            kind: TokenKind::Pat,
            sub: "alice".into(),
            client_id: "pat_client".into(),
            scopes: vec!["demo_api:read".into()],
            iat: 1_700_000_000,
            exp: 1_800_000_000,
            name: Some("ci".into()),
            fresh_until: Some(1_700_003_600),
            client_uid: None,
            scope_owners: None,
            rotated_at: None,
            grace_until: None,
            keep_until: None,
            marker: false,
            grant_id: None,
            aud: None,
        };
        let json = serde_json::to_string(&g).expect("serializes");
        assert_eq!(
            json,
            r#"{"id":"abc","kind":"pat","sub":"alice","client_id":"pat_client","scopes":["demo_api:read"],"iat":1700000000,"exp":1800000000,"name":"ci","fresh_until":1700003600}"#
        );
        assert_eq!(serde_json::from_str::<Grant>(&json).expect("parses"), g);
        let no_name =
            r#"{"id":"a","kind":"access","sub":"c","client_id":"c","scopes":[],"iat":1,"exp":2}"#;
        let old = serde_json::from_str::<Grant>(no_name).expect("parses");
        assert_eq!(old.name, None);
        // entries written before `fresh_until` existed are stale: D1 is asked
        assert_eq!(old.fresh_until, None);
        assert!(!old.is_fresh(0));
        // an app's access token names its grant and audience; older entries have neither
        assert_eq!((old.grant_id.as_deref(), old.aud.as_deref()), (None, None));
        let mut app = g.clone();
        app.grant_id = Some("g1".into());
        app.aud = Some("https://api.example/mcp".into());
        let json = serde_json::to_string(&app).expect("serializes");
        assert!(
            json.ends_with(r#","grant_id":"g1","aud":"https://api.example/mcp"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Grant>(&json).expect("parses"), app);
        // a rotated-away token in its grace period carries both times
        let mut graced = g.clone();
        graced.exp = 1_700_000_600;
        graced.rotated_at = Some(1_700_000_000);
        graced.grace_until = Some(1_700_000_600);
        let json = serde_json::to_string(&graced).expect("serializes");
        assert!(
            json.ends_with(
                r#""fresh_until":1700003600,"rotated_at":1700000000,"grace_until":1700000600}"#
            ),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<Grant>(&json).expect("parses"),
            graced
        );
        // a reuse marker: kept until the PAT's expiry, never active
        let mut marker = graced.clone();
        marker.scopes = Vec::new();
        marker.name = None;
        marker.keep_until = Some(1_800_000_000);
        marker.marker = true;
        let json = serde_json::to_string(&marker).expect("serializes");
        assert_eq!(
            json,
            r#"{"id":"abc","kind":"pat","sub":"alice","client_id":"pat_client","scopes":[],"iat":1700000000,"exp":1700000600,"fresh_until":1700003600,"rotated_at":1700000000,"grace_until":1700000600,"keep_until":1800000000,"marker":true}"#
        );
        assert_eq!(
            serde_json::from_str::<Grant>(&json).expect("parses"),
            marker
        );
        assert_eq!(marker.kv_expires_at(), 1_800_000_000);
        assert!(!marker.can_be_active(0), "a marker is never active");
        assert_eq!(g.kv_expires_at(), g.exp);
    }

    #[test]
    fn secret_set_honours_grace_period() {
        let old = ClientSecret::new("old");
        let new = ClientSecret::new("new");
        let set = SecretSet {
            current: new.hash(),
            previous: Some((old.hash(), 100)),
        };
        assert!(set.verify(&new, 50));
        assert!(set.verify(&old, 99));
        assert!(!set.verify(&old, 100));
        assert!(!set.verify(&ClientSecret::new("x"), 50));
    }
}
