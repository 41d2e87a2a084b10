//! The authorization server's records: what D1 stores (`migrations/0011_authorization_server.sql`,
//! row mappings in `crate::storage::authz_rows`). Secrets appear only as hashes.
//!
//! - [`ClientProfile`]: what a client is for the authorization code flow (redirect URIs, grant
//!   types, display name, logo, where its registration comes from), beside `model::Client`;
//! - [`Approved`]: an authorization request as the user approves it (client, redirect URI, PKCE
//!   challenge, audience, scopes), shared by a [`PendingConsent`] and the
//!   [`AuthorizationCode`] it turns into;
//! - [`AppGrant`]: a user's authorization of one client for one resource, the family of every
//!   token issued from one code ("authorized applications" on the token page);
//! - [`RefreshTokenRecord`]: one refresh token of a grant (one row per generation, kept for
//!   reuse detection until the grant ends);
//! - [`RememberedApproval`]: consent remembered for exactly (user, client, redirect URI,
//!   resource), covering a scope set.

use crate::oauth::authorize::CodeChallenge;
use crate::oauth::client_metadata::GrantType;
use crate::token::TokenHash;

/// Where a client's registration comes from: what the consent page says about its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSource {
    /// Created through the admin API ("registered by an administrator").
    Admin,
    /// A client ID metadata document (its `client_id` is the document's URL; the page shows
    /// that URL's host).
    MetadataDocument,
    /// RFC 7591 dynamic registration ("self-registered, not verified").
    Dynamic,
}

impl ClientSource {
    /// The D1 value (`clients.source`). Never change them.
    pub const fn as_db(self) -> &'static str {
        match self {
            ClientSource::Admin => "admin",
            ClientSource::MetadataDocument => "metadata",
            ClientSource::Dynamic => "dynamic",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(ClientSource::Admin),
            "metadata" => Some(ClientSource::MetadataDocument),
            "dynamic" => Some(ClientSource::Dynamic),
            _ => None,
        }
    }
}

/// The authorization-code side of a client (new columns of D1 `clients`). A client without
/// redirect URIs cannot use the authorization endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientProfile {
    pub source: ClientSource,
    /// Shown on the consent page (`client_name`); `None`: the page shows the client id.
    pub display_name: Option<String>,
    /// An `https` logo URL.
    pub logo_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    /// The authorization server's grant types the client may use; `None` for clients made
    /// before they existed (they keep `client_credentials` / token exchange only).
    pub grant_types: Option<Vec<GrantType>>,
    /// Whether the authorization code grant also issues refresh tokens (per client).
    pub refresh_tokens: bool,
    /// A metadata document client: until when the fetched document may be used.
    pub metadata_expires_at: Option<i64>,
    /// A dynamic client: its last authorization or token request (unused ones expire).
    pub last_used_at: Option<i64>,
}

impl ClientProfile {
    /// What an administrator-made client had before the authorization server existed.
    pub fn legacy() -> Self {
        ClientProfile {
            source: ClientSource::Admin,
            display_name: None,
            logo_uri: None,
            redirect_uris: Vec::new(),
            grant_types: None,
            refresh_tokens: true,
            metadata_expires_at: None,
            last_used_at: None,
        }
    }

    pub fn allows(&self, g: GrantType) -> bool {
        self.grant_types.as_ref().is_some_and(|gs| gs.contains(&g))
    }
}

/// The API a grant is for: the RFC 8707 indicator as approved, and the API resource it named
/// then (id and never-reused uid: a resource deleted and created again does not inherit it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    pub resource: String,
    pub api_id: String,
    pub api_uid: String,
}

/// An authorization request as the user sees and approves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub subject: String,
    pub client_id: String,
    pub client_uid: String,
    /// Exactly as the request sent it (a loopback IP's port included): the token request's
    /// `redirect_uri`, if any, must equal it.
    pub redirect_uri: String,
    /// What remembered approvals and grant replacement compare
    /// (`oauth::authorize::Redirect::approval_key`).
    pub redirect_key: String,
    pub code_challenge: CodeChallenge,
    pub audience: Audience,
    /// The scopes asked for (already restricted to the audience's and the client's).
    pub scopes: Vec<String>,
}

/// Longest life of a pending consent request (the consent page's one-time handle).
pub const CONSENT_TTL_SECS: i64 = 600;

/// A consent request waiting for the user's answer (D1 `consent_requests`): one-time, for the
/// signed-in user who started it only, [`CONSENT_TTL_SECS`] at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConsent {
    pub handle_hash: TokenHash,
    pub request: Approved,
    /// Returned unchanged in the redirect.
    pub state: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set when the user answered (Approve or Deny): a handle works once.
    pub used_at: Option<i64>,
}

/// Longest life of an authorization code. RFC 6749 4.1.2 allows up to 10 minutes (the edge peer
/// uses 10); clients exchange a code at once, and a shorter life narrows what a leaked code
/// (browser history, logs, a `Referer`) is good for.
pub const CODE_TTL_SECS: i64 = 60;

/// An authorization code (D1 `authorization_codes`): single use, [`CODE_TTL_SECS`] at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub hash: TokenHash,
    /// The grant its exchange creates (chosen at approval, so that a second use of the code
    /// finds, and revokes, everything the first one issued).
    pub grant_id: String,
    pub approved: Approved,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set by the first exchange.
    pub used_at: Option<i64>,
}

/// Why a grant ended (D1 `app_grants.revoked_reason`). Never change the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantEnd {
    /// The user revoked it on the token page.
    User,
    /// An administrator revoked it (admin API).
    Admin,
    /// Its authorization code was used a second time.
    CodeReuse,
    /// A rotated-away refresh token was presented.
    RefreshReuse,
    /// A newer grant of the same user, client, redirect URI and resource replaced it.
    Replaced,
    /// One of its tokens was reported leaked (secret scanning) or revoked with RFC 7009.
    TokenRevoked,
}

impl GrantEnd {
    pub const fn as_db(self) -> &'static str {
        match self {
            GrantEnd::User => "user",
            GrantEnd::Admin => "admin",
            GrantEnd::CodeReuse => "code_reuse",
            GrantEnd::RefreshReuse => "refresh_reuse",
            GrantEnd::Replaced => "replaced",
            GrantEnd::TokenRevoked => "token_revoked",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        [
            GrantEnd::User,
            GrantEnd::Admin,
            GrantEnd::CodeReuse,
            GrantEnd::RefreshReuse,
            GrantEnd::Replaced,
            GrantEnd::TokenRevoked,
        ]
        .into_iter()
        .find(|e| e.as_db() == s)
    }
}

/// A user's authorization of one client for one resource (D1 `app_grants`): the family of the
/// access and refresh tokens issued from one authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppGrant {
    /// Random (`token::random_id`), chosen when the user approved.
    pub id: String,
    pub subject: String,
    pub client_id: String,
    pub client_uid: String,
    pub redirect_key: String,
    pub audience: Audience,
    pub scopes: Vec<String>,
    pub created_at: i64,
    /// Its last token issuance (code exchange or refresh).
    pub last_used_at: Option<i64>,
    /// The generation of its current refresh token (`0`: it has none).
    pub refresh_generation: i64,
    /// The generation last presented and rotated away (`0`: none yet): the only rotated-away
    /// token a retry may present (see `authz::refresh`).
    pub rotated_generation: i64,
    /// The absolute end of its refresh tokens (`REFRESH_ABSOLUTE_SECONDS` after creation).
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<GrantEnd>,
}

impl AppGrant {
    /// Whether it may still issue tokens at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A refresh token of a grant (D1 `refresh_tokens`, one row per generation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub hash: TokenHash,
    pub grant_id: String,
    /// 1 for the first one; each rotation issues the grant's next generation.
    pub generation: i64,
    pub created_at: i64,
    /// Unused past this (`REFRESH_IDLE_SECONDS` after it was issued, at most the grant's end).
    pub idle_expires_at: i64,
    /// When it stopped being current: when it was presented and rotated, or when a retry
    /// replaced it before it was ever used. Presenting it after that is a reuse, unless it is a
    /// retry of a lost answer (see `authz::refresh`).
    pub rotated_at: Option<i64>,
}

/// Consent remembered for exactly (user, client uid, redirect key, resource): a later request
/// for the same four whose scopes it covers skips the consent page; anything new asks again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedApproval {
    pub subject: String,
    pub client_uid: String,
    pub redirect_key: String,
    pub resource: String,
    pub scopes: Vec<String>,
    pub approved_at: i64,
}

impl RememberedApproval {
    /// Whether this approval answers `request` without asking: the same four keys (simple
    /// string comparison) and every requested scope among the remembered ones.
    pub fn covers(&self, request: &Approved) -> bool {
        self.subject == request.subject
            && self.client_uid == request.client_uid
            && self.redirect_key == request.redirect_key
            && self.resource == request.audience.resource
            && request.scopes.iter().all(|s| self.scopes.contains(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn approved() -> Approved {
        Approved {
            subject: "alice".into(),
            client_id: "https://app.example/c.json".into(),
            client_uid: "u1".into(),
            redirect_uri: "http://127.0.0.1:5000/cb".into(),
            redirect_key: "http://127.0.0.1/cb".into(),
            code_challenge: CodeChallenge::from_stored(
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            )
            .expect("challenge"),
            audience: Audience {
                resource: "http://localhost:8787/gw/demo/".into(),
                api_id: "demo_api".into(),
                api_uid: "r1".into(),
            },
            scopes: vec!["demo_api:read".into()],
        }
    }

    #[test]
    fn remembered_approvals_cover_only_the_exact_four_and_a_subset() {
        let a = approved();
        let remembered = RememberedApproval {
            subject: "alice".into(),
            client_uid: "u1".into(),
            redirect_key: "http://127.0.0.1/cb".into(),
            resource: "http://localhost:8787/gw/demo/".into(),
            scopes: vec!["demo_api:read".into(), "demo_api:write".into()],
            approved_at: 1,
        };
        assert!(remembered.covers(&a));
        let change: [fn(&mut Approved); 6] = [
            |a| a.subject = "bob".into(),
            |a| a.client_uid = "u2".into(),
            |a| a.redirect_key = "http://127.0.0.1/other".into(),
            |a| a.audience.resource = "http://localhost:8787/gw/other/".into(),
            |a| a.scopes.push("demo_api:admin".into()),
            |a| a.audience.resource = "http://localhost:8787/gw/demo".into(),
        ];
        for (i, f) in change.iter().enumerate() {
            let mut b = a.clone();
            f(&mut b);
            assert!(!remembered.covers(&b), "change {i}");
        }
        // the client id alone does not decide: another client with the same id (new uid) asks
        let mut same_id = a.clone();
        same_id.client_uid = "u9".into();
        assert!(!remembered.covers(&same_id));
    }

    #[test]
    fn stored_enum_values_are_pinned() {
        for (s, v) in [
            (ClientSource::Admin, "admin"),
            (ClientSource::MetadataDocument, "metadata"),
            (ClientSource::Dynamic, "dynamic"),
        ] {
            assert_eq!((s.as_db(), ClientSource::from_db(v)), (v, Some(s)));
        }
        assert_eq!(ClientSource::from_db("Admin"), None);
        for (e, v) in [
            (GrantEnd::User, "user"),
            (GrantEnd::Admin, "admin"),
            (GrantEnd::CodeReuse, "code_reuse"),
            (GrantEnd::RefreshReuse, "refresh_reuse"),
            (GrantEnd::Replaced, "replaced"),
            (GrantEnd::TokenRevoked, "token_revoked"),
        ] {
            assert_eq!((e.as_db(), GrantEnd::from_db(v)), (v, Some(e)));
        }
        assert_eq!(GrantEnd::from_db(""), None);
    }

    #[test]
    fn a_legacy_client_has_no_authorization_code_grant() {
        let p = ClientProfile::legacy();
        assert!(!p.allows(GrantType::AuthorizationCode));
        let mut p = p;
        p.grant_types = Some(vec![GrantType::AuthorizationCode]);
        assert!(p.allows(GrantType::AuthorizationCode) && !p.allows(GrantType::RefreshToken));
    }
}
