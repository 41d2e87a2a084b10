//! The one token decision: is `presented` an active token for this API resource, and what may
//! the resource see of it? Used by `/oauth/introspect` (which only serializes the answer) and by
//! the gate (which turns it into a 401/403 or forwards the request).
//!
//! Reference tokens (PATs, client access tokens) and patgate's JWT access tokens follow the same
//! rules: expiry, revocation, the issuing client still enabled, and IdentityServer's scope rule
//! (a resource sees only its own scopes; a token without any of them is inactive for it).
//!
//! Steady state for an active PAT: exactly one KV read. The caller notes the use of a live
//! reference token with its outcome ([`Decided::used`]); it reaches `wait_until` at most once per
//! token per isolate per `last_used_coalesce_secs`. Garbage never reaches storage;
//! a token known to be inactive (unknown to D1, revoked, expired) is remembered by the isolate.

use super::active::{client_holds_with, visible_scopes, Active, Decided, Decision, Source};
use super::{jwt, reuse};
use crate::app::client_auth::Freshness;
use crate::app::ctx::{Ctx, Deferred};
use crate::app::revocations::{self, Check};
use crate::error::Error;
use crate::model::{ApiResource, Grant, Status};
use crate::revocation::decide::Basis;
use crate::revocation::snapshot::Subject;
use crate::store::Backend;
use crate::token::{PlainToken, TokenHash};

/// Decides whether `presented` is an active token for `resource`.
pub async fn decide<B: Backend>(
    ctx: &Ctx<'_, B>,
    resource: &ApiResource,
    presented: &str,
) -> Result<Decided, Error> {
    if let Ok(token) = PlainToken::parse(presented) {
        reference_token(ctx, resource, &token).await
    } else if jwt::looks_like_jwt(presented) {
        Ok(match jwt::introspect(ctx, resource, presented).await? {
            Some(active) => Decided {
                decision: Decision::Active(active),
                deferred: Vec::new(),
                used: None,
            },
            None => Decided::inactive(),
        })
    } else {
        Ok(Decided::inactive())
    }
}

async fn reference_token<B: Backend>(
    ctx: &Ctx<'_, B>,
    resource: &ApiResource,
    token: &PlainToken,
) -> Result<Decided, Error> {
    let hash = token.hash();
    if ctx.isolate.is_known_inactive(&hash, ctx.now) {
        return Ok(Decided::inactive());
    }

    let mut deferred = Vec::new();
    // What the answer rests on (how long it may be cached): the feed's view, or D1.
    let mut basis = None;
    let grant = match ctx.backend.get_grant(&hash).await {
        Ok(Some(g)) if g.is_fresh(ctx.now) && g.marker => {
            // A fresh reuse marker (a reuse was just recorded): final, remembered here.
            ctx.isolate.mark_inactive(hash, ctx.now);
            Some(g)
        }
        // KV would let it through: the revocation feed may take that away (KV at this location
        // can lag a revocation elsewhere by a minute or more).
        Ok(Some(g)) if g.is_fresh(ctx.now) => {
            let (g, b) = through_feed(ctx, token, &hash, g, &mut deferred).await;
            basis = b;
            g
        }
        // Past its trust time: D1 says whether it still holds (and the entry is rewritten). A
        // stale reuse marker lands here too: that is how a rotated-away token's reuse is seen.
        Ok(Some(_)) => from_source_of_truth(ctx, token, &mut deferred).await?,
        // KV knows every issued token until it expires and loses it when revoked: a hash it does
        // not know is inactive, with no D1 read (forged tokens that pass the checksum cost one
        // KV read, once per isolate).
        Ok(None) => {
            ctx.isolate.mark_inactive(hash, ctx.now);
            None
        }
        Err(e) => {
            // KV is only a cache: answer from D1 rather than fail, and do not write back.
            ctx.isolate
                .warn(format!("KV read failed, answered from D1: {}", e.0));
            let g = from_source_of_truth(ctx, token, &mut deferred).await?;
            // no KV write-back (deletes and a revocation's follow-up deletes are kept)
            deferred.retain(|d| !matches!(d, Deferred::CacheGrant { .. }));
            g
        }
    };
    // A reuse marker is never a grant, fresh or not (its `exp` is past and its scopes empty too).
    let Some(grant) = grant.filter(|g| g.can_be_active(ctx.now) && g.kind == token.kind()) else {
        let mut d = Decided::inactive();
        // the KV purge of a dead entry, a detected reuse's revocation follow-ups
        d.deferred = deferred;
        return Ok(d);
    };

    let visible = visible_scopes(&grant, resource);
    if visible.is_empty() {
        // A live token, shown to a resource none of whose scopes it carries: a refusal of it.
        let mut d = Decided::inactive();
        d.deferred = deferred;
        d.used = Some(grant.id);
        return Ok(d);
    }
    // An answer from D1 (or unconfirmed) without a view that vouches for this isolate's client
    // record reads the client from D1 too.
    let basis = match basis {
        Some(b @ (Basis::View { .. } | Basis::Unconfirmed)) => b,
        _ => match revocations::fresh_age(ctx).await {
            Some(age_ms) => Basis::View { age_ms },
            None => Basis::SourceOfTruth,
        },
    };
    let freshness = if basis == Basis::SourceOfTruth {
        Freshness::Fresh
    } else {
        Freshness::Cached
    };
    if !client_holds_with(
        ctx,
        &grant.client_id,
        grant.client_uid.as_deref(),
        freshness,
    )
    .await?
    {
        return Ok(Decided::inactive());
    }

    Ok(Decided {
        used: Some(grant.id.clone()),
        decision: Decision::Active(Active {
            source: Source::Reference,
            sub: grant.sub,
            client_id: grant.client_id,
            scopes: visible,
            jti: grant.id,
            exp: grant.exp,
            iat: grant.iat,
            iss: None,
            name: grant.name,
            grace: grant.rotated_at.zip(grant.grace_until),
            basis,
            aud: grant.aud,
        }),
        deferred,
    })
}

/// A fresh KV grant that would let `token` through, checked against the revocation feed's view:
/// the grant (or D1's answer when the view is too old) and what that rests on.
async fn through_feed<B: Backend>(
    ctx: &Ctx<'_, B>,
    token: &PlainToken,
    hash: &TokenHash,
    g: Grant,
    deferred: &mut Vec<Deferred>,
) -> (Option<Grant>, Option<Basis>) {
    let subject = Subject {
        token: Some(hash),
        record: Some(&g.id),
        // an app's access token dies with its authorization grant
        grant: g.grant_id.as_deref(),
        ..Subject::default()
    };
    match revocations::check(ctx, &subject, deferred).await {
        Check::Active { age_ms } => (Some(g), Some(Basis::View { age_ms })),
        Check::Revoked => {
            ctx.isolate.mark_inactive(*hash, ctx.now);
            (None, None)
        }
        Check::AskSource => {
            let Some(_place) = revocations::fallback(ctx.isolate) else {
                // Too many D1 fallbacks under way here: answered as when D1 cannot be reached.
                ctx.isolate
                    .warn("revocation unconfirmed (D1 fallbacks at their cap), KV answered".into());
                return (Some(g), Some(Basis::Unconfirmed));
            };
            source_behind_feed(ctx, token, g, deferred).await
        }
    }
}

/// The fresh KV grant `g` of `token`, checked in D1 because the view was too old.
async fn source_behind_feed<B: Backend>(
    ctx: &Ctx<'_, B>,
    token: &PlainToken,
    g: Grant,
    deferred: &mut Vec<Deferred>,
) -> (Option<Grant>, Option<Basis>) {
    match from_source_of_truth(ctx, token, deferred).await {
        // KV's grant is fresh: no rewrite (while the feed cannot be read, every such
        // request asks D1; none may cost a KV write too).
        Ok(from_d1) => {
            deferred.retain(|d| !matches!(d, Deferred::CacheGrant { .. }));
            (from_d1, Some(Basis::SourceOfTruth))
        }
        // D1 cannot be read either: answer what KV says (fail open), uncacheable.
        Err(e) => {
            ctx.isolate
                .warn(format!("revocation unconfirmed, KV answered: {e:?}"));
            (Some(g), Some(Basis::Unconfirmed))
        }
    }
}

/// Whether the token may exist, asked the cheap way: this isolate's negative cache, then KV. A
/// hash KV does not know is inactive (see [`crate::model::Grant`]), so endpoints that would read
/// D1 for a token (revocation, exchange) ask this first: a forged token that passes the checksum
/// costs one KV read, never a D1 query. A KV failure says "maybe" (D1 decides).
pub async fn may_exist<B: Backend>(ctx: &Ctx<'_, B>, hash: &TokenHash) -> bool {
    if ctx.isolate.is_known_inactive(hash, ctx.now) {
        return false;
    }
    match ctx.backend.get_grant(hash).await {
        Ok(None) => {
            ctx.isolate.mark_inactive(*hash, ctx.now);
            false
        }
        Ok(Some(_)) | Err(_) => true,
    }
}

/// KV's entry is stale (or KV failed): ask D1. An active token's entry is rewritten after the
/// response; an inactive or unknown one is deleted from KV and remembered by the isolate (that
/// answer never changes).
async fn from_source_of_truth<B: Backend>(
    ctx: &Ctx<'_, B>,
    token: &PlainToken,
    deferred: &mut Vec<Deferred>,
) -> Result<Option<Grant>, Error> {
    use reuse::RetiredState;
    let hash = token.hash();
    let grant = match ctx.backend.token_by_hash(&hash).await? {
        Some(rec) if rec.status(ctx.now) == Status::Active => {
            Some(rec.grant(ctx.now + ctx.cfg.grant_cache_secs))
        }
        Some(_) => None,
        // Not a current hash: a token rotated away may still be in its grace period, or be
        // used after it: a reuse (its marker stays in KV, see `reuse`).
        None => match reuse::retired_state(ctx, &hash).await? {
            RetiredState::InGrace(g) => Some(*g),
            RetiredState::Reused { retired, pat } => {
                let done = reuse::detected(ctx, &retired, &pat).await;
                deferred.extend(done.deferred);
                return Ok(None);
            }
            RetiredState::Unknown | RetiredState::Dead => None,
        },
    };
    if let Some(grant) = grant {
        deferred.push(Deferred::CacheGrant {
            hash,
            grant: Box::new(grant.clone()),
        });
        return Ok(Some(grant));
    }
    ctx.isolate.mark_inactive(hash, ctx.now);
    deferred.push(Deferred::PurgeGrants {
        hashes: vec![hash],
        after_secs: 0,
    });
    Ok(None)
}
