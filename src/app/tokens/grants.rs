//! Ending an authorization grant (the family of an app's access and refresh tokens): D1 first
//! (the grant and, in the same batch, its access tokens' rows and its revocation feed entry, so
//! every location refuses its access tokens within the feed's bound), then those tokens out of
//! KV by the one revocation path's purge. Its refresh tokens need nothing more: every refresh reads
//! the grant. Used by the OAuth server (a replayed code, a reused refresh token, a replaced
//! grant), RFC 7009 and leak reports of a refresh token, the token page and the admin API.

use super::revocation::Purge;
use crate::app::config::REVOCATION_RECHECK_SECS;
use crate::app::ctx::{Ctx, Deferred};
use crate::authz::records::{AppGrant, GrantEnd};
use crate::error::Error;
use crate::events::Event;
use crate::revocation::push::{Change, Initiator, Notice};
use crate::store::Backend;
use crate::token::TokenHash;

/// Ends grant `id` for `why` and evicts its access tokens from KV (this location at once, other
/// locations through the revocation feed within 5 s, README). `None`: no such grant. A failed D1 write
/// is an error (it may have landed: a repeat purges again, since the batch returns every access
/// token of the grant, revoked now or before). Emits `grant.revoked` and, when this call ended
/// it, the revocation notice Security Event Token receivers get.
pub async fn end_grant<B: Backend>(
    ctx: &Ctx<'_, B>,
    grant: &AppGrant,
    why: GrantEnd,
) -> Result<Option<Purge>, Error> {
    let Some(done) = ctx
        .backend
        .revoke_grant(&grant.id, ctx.now, why, &ctx.feed_stamp())
        .await?
    else {
        return Ok(None);
    };
    let mut purge = purge_hashes(ctx, &grant.id, done.access_tokens).await;
    purge.newly = done.newly;
    ctx.isolate.emit(Event::GrantRevoked {
        grant_id: grant.id.clone(),
        sub: grant.subject.clone(),
        client_id: grant.client_id.clone(),
        newly: done.newly,
        via: why.as_db(),
    });
    if done.newly {
        ctx.isolate
            .emit(Event::revocation_notice(notice(grant, why, ctx.now)));
    }
    Ok(Some(purge))
}

/// The revocation notice of `grant` ended at `at` for `why`: who caused it (CAEP
/// `initiating_entity`) and why, for the receiver's administrators.
fn notice(grant: &AppGrant, why: GrantEnd, at: i64) -> Notice {
    let (initiator, reason) = match why {
        GrantEnd::User => (Initiator::User, "revoked by its user"),
        GrantEnd::Admin => (Initiator::Admin, "revoked by an administrator"),
        GrantEnd::CodeReuse => (Initiator::Policy, "its authorization code was used twice"),
        GrantEnd::RefreshReuse => (
            Initiator::Policy,
            "a rotated-away refresh token was presented",
        ),
        GrantEnd::Replaced => (Initiator::System, "replaced by a newer grant"),
        GrantEnd::TokenRevoked => (
            Initiator::User,
            "one of its tokens was revoked or reported leaked",
        ),
    };
    Notice {
        change: Change::GrantRevoked {
            grant_id: grant.id.clone(),
            client_id: grant.client_id.clone(),
            user: grant.subject.clone(),
        },
        at,
        initiator,
        reason,
    }
}

/// [`end_grant`] of the grant with this id, read first (the event names its user and app).
pub async fn end_grant_by_id<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
    why: GrantEnd,
) -> Result<Option<Purge>, Error> {
    match ctx.backend.grant(id).await? {
        Some(g) => end_grant(ctx, &g, why).await,
        None => Ok(None),
    }
}

/// Deletes `hashes` from KV and marks them inactive in this isolate; failed deletes are retried
/// after the response, and all are deleted once more [`REVOCATION_RECHECK_SECS`] later (as
/// `revocation::purge` does for one token).
pub async fn purge_hashes<B: Backend>(
    ctx: &Ctx<'_, B>,
    label: &str,
    hashes: Vec<TokenHash>,
) -> Purge {
    let mut failed = Vec::new();
    for h in &hashes {
        ctx.isolate.mark_inactive(*h, ctx.now);
        if let Err(e) = ctx.backend.delete_grant(h).await {
            ctx.isolate.warn(format!(
                "KV delete for an access token of grant {label} failed (retried): {}",
                e.0
            ));
            failed.push(*h);
        }
    }
    let mut deferred = Vec::new();
    if !failed.is_empty() {
        deferred.push(Deferred::PurgeGrants {
            hashes: failed,
            after_secs: 0,
        });
    }
    if !hashes.is_empty() {
        deferred.push(Deferred::PurgeGrants {
            hashes,
            after_secs: REVOCATION_RECHECK_SECS,
        });
    }
    Purge {
        deferred,
        newly: false,
    }
}
