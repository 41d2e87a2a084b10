//! The one revocation path: D1 first (the truth), then the token's hashes out of KV, with
//! retries after the response. Every revocation goes through here: RFC 7009, the management API
//! and the token page, leak reports, reuse detection.

use crate::app::config::REVOCATION_RECHECK_SECS;
use crate::app::ctx::{Ctx, Deferred};
use crate::error::Error;
use crate::events::Event;
use crate::model::TokenRecord;
use crate::store::{Backend, RevocationNote};
use crate::token::{TokenHash, TokenKind};

/// What a revocation or rotation left to finish after the response (what failed went to the
/// isolate's event sink as warnings).
#[derive(Debug, Default)]
pub struct Purge {
    pub deferred: Vec<Deferred>,
    /// For a revocation: this call revoked the token (false: it was revoked before).
    pub newly: bool,
}

/// Revokes token `id` in D1 (the truth), then evicts it from KV, so this location stops seeing it
/// at once; other locations follow within KV's propagation bound (README). `known` is the hash the
/// caller presented or read: if a rotation changed it meanwhile, both are evicted.
///
/// The revocation succeeds as soon as D1 records it: KV deletes that fail are retried after the
/// response (and again by every repeated revoke or rotate of the same token). When the D1 write
/// itself fails, its outcome is unknown (it may have landed): the known hash is evicted from KV
/// anyway (always safe: KV is a cache) and the error is returned. `None`: no such token.
pub async fn revoke_record<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
    known: &TokenHash,
) -> Result<Option<Purge>, Error> {
    revoke_record_because(ctx, id, known, None).await
}

/// [`revoke_record`], recording why (in the same D1 statement, only if this call revokes it).
pub async fn revoke_record_because<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
    known: &TokenHash,
    why: Option<&RevocationNote>,
) -> Result<Option<Purge>, Error> {
    let revoked = match ctx.backend.revoke_token(id, ctx.now, why).await {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        Err(e) => {
            ctx.isolate.mark_inactive(*known, ctx.now);
            let _ = ctx.backend.delete_grant(known).await;
            return Err(e.into());
        }
    };
    let mut hashes = vec![revoked.hash];
    if *known != revoked.hash {
        hashes.push(*known);
    }
    let mut done = purge(ctx, id, hashes).await;
    done.newly = revoked.newly;
    Ok(Some(done))
}

/// The event for a revoked token record: `pat.revoked` for a PAT, `token.revoked` for a client
/// access token. `newly`: this call revoked it; `via`: who asked.
pub fn revoked_event(rec: &TokenRecord, newly: bool, via: &'static str) -> Event {
    match rec.kind {
        TokenKind::Pat => Event::PatRevoked {
            pat_id: rec.id.clone(),
            newly,
            via,
        },
        TokenKind::Access => Event::TokenRevoked {
            token_id: rec.id.clone(),
            client_id: rec.client_id.clone(),
        },
    }
}

/// Most retired hashes (reuse markers, see [`super::reuse`]) a revocation deletes from KV, those
/// still in a grace period first, then the most recent: KV calls per request are bounded. One left behind never makes a token
/// active; its next use costs one D1 read, which finds the PAT revoked and deletes it.
pub const MAX_PURGED_RETIRED: usize = 100;

/// Deletes `hashes` and the hashes token `id` had before its rotations (their reuse markers or
/// grace grants: the most recent [`MAX_PURGED_RETIRED`]) from KV, and marks them inactive in
/// this isolate. Failed deletes are retried after the response; all are deleted once more
/// [`REVOCATION_RECHECK_SECS`] later.
pub async fn purge<B: Backend>(ctx: &Ctx<'_, B>, id: &str, mut hashes: Vec<TokenHash>) -> Purge {
    match ctx.backend.retired_hashes(id, i64::MIN).await {
        Ok(mut retired) => {
            // Tokens still in a grace period (a live grant in KV) first, then the most recent.
            retired.sort_by_key(|r| (!r.in_grace(ctx.now), std::cmp::Reverse(r.retired_at)));
            for r in retired.into_iter().take(MAX_PURGED_RETIRED) {
                if !hashes.contains(&r.hash) {
                    hashes.push(r.hash);
                }
            }
        }
        Err(e) => ctx.isolate.warn(format!(
            "reading the retired hashes of {id} failed: {}",
            e.0
        )),
    }
    let mut failed = Vec::new();
    for h in &hashes {
        ctx.isolate.mark_inactive(*h, ctx.now);
        if let Err(e) = ctx.backend.delete_grant(h).await {
            ctx.isolate.warn(format!(
                "KV delete for token {id} failed (retried): {}",
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
