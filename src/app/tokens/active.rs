//! What the one token decision answers: an active token as the asking API resource may see it
//! ([`Active`]), or inactive; and the two rules both kinds of token (reference tokens and JWTs)
//! are held to: the client still holds the token ([`client_holds`]: enabled, the uid recorded at
//! issuance), and a resource sees only the scopes it owned at issuance ([`visible_scopes`]).

use crate::app::client_auth;
use crate::app::ctx::{Ctx, Deferred};
use crate::error::Error;
use crate::model::{ApiResource, Grant};
use crate::scopes::Scopes;
use crate::store::Backend;

/// Where an active token came from (introspection serializes each as it always has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A reference token (PAT or client access token), from KV or D1.
    Reference,
    /// One of patgate's JWT access tokens, verified locally.
    Jwt,
}

/// An active token as the resource may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub source: Source,
    pub sub: String,
    pub client_id: String,
    /// The token's scopes that belong to the resource (never empty).
    pub scopes: Scopes,
    /// The token id (`jti` in introspection).
    pub jti: String,
    pub exp: i64,
    pub iat: i64,
    /// The `iss` of a JWT (equal to the configured issuer); `None` for reference tokens.
    pub iss: Option<String>,
    pub name: Option<String>,
    /// A token rotated away with a grace period: (rotated at, works until). `exp` is the latter.
    pub grace: Option<(i64, i64)>,
    /// What the answer rests on: how long an API may cache it (`Cache-Control: max-age`).
    pub basis: crate::revocation::decide::Basis,
    /// An access token of an authorization grant: the RFC 8707 resource it was issued for (the
    /// gate refuses it on any other; introspection's `aud`).
    pub aud: Option<String>,
}

impl Active {
    /// The visible scopes, space-delimited (RFC 7662 `scope`).
    pub fn scope(&self) -> String {
        self.scopes.to_string()
    }
}

/// Made once per request and consumed by its answer, never stored: not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Active(Active),
    Inactive,
}

/// A decision and the work to do after the response (last use, KV repair). Causes worth logging
/// went to the isolate's event sink.
#[derive(Debug)]
pub struct Decided {
    pub decision: Decision,
    pub deferred: Vec<Deferred>,
    /// The id of the live reference token presented, when its use counts (active, or refused
    /// only because it carries none of the resource's scopes): the caller notes the use with
    /// its outcome ([`super::usage::note_use`]).
    pub used: Option<String>,
}

impl Decided {
    pub(super) fn inactive() -> Self {
        Decided {
            decision: Decision::Inactive,
            deferred: Vec::new(),
            used: None,
        }
    }
}

/// Whether a record's uid is the one a token recorded at issuance (`None`: a token issued before
/// uids existed, matched by id alone).
pub fn same_uid(recorded: Option<&str>, current: &str) -> bool {
    recorded.is_none_or(|r| r == current)
}

/// Whether the client a token was issued to still holds it: it exists, is enabled, and is the
/// same client (`recorded`: its uid at issuance, see [`same_uid`]). Tokens of a disabled or
/// deleted client stop working within the registry cache lifetime, and a client created again
/// with the same id (another uid) revives none. Every place that accepts a token asks this: the
/// decision (reference tokens and JWTs), token exchange, and [`super::one_status::status`].
pub async fn client_holds<B: Backend>(
    ctx: &Ctx<'_, B>,
    client_id: &str,
    recorded: Option<&str>,
) -> Result<bool, Error> {
    client_holds_with(ctx, client_id, recorded, client_auth::Freshness::Cached).await
}

/// [`client_holds`], the client read as fresh as `freshness` says (`Fresh`: from D1, when no
/// view of the revocation feed vouches for this isolate's copy).
pub async fn client_holds_with<B: Backend>(
    ctx: &Ctx<'_, B>,
    client_id: &str,
    recorded: Option<&str>,
    freshness: client_auth::Freshness,
) -> Result<bool, Error> {
    Ok(client_auth::load_client_with(ctx, client_id, freshness)
        .await?
        .is_some_and(|c| c.enabled && same_uid(recorded, &c.uid)))
}

/// IdentityServer's rule: a resource sees only its own scopes, and a token without any of them is
/// inactive for it. A scope counts only if this resource (this uid) owned it when the token was
/// issued: a scope deleted and created again under another resource stays invisible to it.
pub fn visible_scopes(grant: &Grant, resource: &ApiResource) -> Scopes {
    visible_in(&grant.scopes, grant.scope_owners.as_deref(), resource)
}

/// [`visible_scopes`] of a token's `scopes` and their owners at issuance (`None`: issued before
/// owners were recorded, matched by name alone).
pub(super) fn visible_in(
    scopes: &[String],
    owners: Option<&[String]>,
    resource: &ApiResource,
) -> Scopes {
    scopes
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            resource.scopes.iter().any(|r| r == *s)
                && owners.is_none_or(|o| o.get(*i).is_some_and(|u| *u == resource.uid))
        })
        .map(|(_, s)| s.clone())
        .collect()
}
