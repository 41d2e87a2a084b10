//! The one token decision: is `presented` an active token for this API resource, and what may
//! the resource see of it? Used by `/oauth/introspect` (which only serializes the answer) and by
//! the gate (which turns it into a 401/403 or forwards the request).
//!
//! Reference tokens (PATs, client access tokens) and patgate's JWT access tokens follow the same
//! rules: expiry, revocation, the issuing client still enabled, and IdentityServer's scope rule
//! (a resource sees only its own scopes; a token without any of them is inactive for it).
//!
//! Steady state for an active PAT: exactly one KV read; last use is handed to `wait_until` at
//! most once per token per isolate per `last_used_coalesce_secs`. Garbage never reaches storage;
//! a token known to be inactive (unknown to D1, revoked, expired) is remembered by the isolate.

use super::active::{client_holds, visible_scopes, Active, Decided, Decision, Source};
use super::{jwt, reuse};
use crate::app::ctx::{Ctx, Deferred};
use crate::error::Error;
use crate::model::{ApiResource, Grant, Status};
use crate::store::Backend;
use crate::token::{PlainToken, TokenHash, TokenKind};

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
    let grant = match ctx.backend.get_grant(&hash).await {
        Ok(Some(g)) if g.is_fresh(ctx.now) => {
            // A fresh reuse marker (a reuse was just recorded): final, remembered here.
            if g.marker {
                ctx.isolate.mark_inactive(hash, ctx.now);
            }
            Some(g)
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
        return Ok(Decided::inactive());
    }
    if !client_holds(ctx, &grant.client_id, grant.client_uid.as_deref()).await? {
        return Ok(Decided::inactive());
    }

    if grant.kind == TokenKind::Pat {
        if let Some(uses) =
            ctx.isolate
                .note_use(&grant.id, ctx.now, ctx.cfg.last_used_coalesce_secs)
        {
            deferred.push(Deferred::RecordUse {
                token_id: grant.id.clone(),
                at: ctx.now,
                uses,
            });
        }
    }

    Ok(Decided {
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
            aud: grant.aud,
        }),
        deferred,
    })
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
