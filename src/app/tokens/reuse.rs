//! Reuse detection: a token rotated away and used after it stopped working (its grace ended, or
//! it was rotated without grace) was probably copied. Such a use is recorded on the PAT (time,
//! client IP and Cloudflare location, [`crate::origin`]), emits `pat.reuse_detected`, and, if the
//! owner chose `revoke_on_reuse` at creation, revokes the whole PAT (the current token too)
//! through the one revocation path ([`revoke_record_because`], reason `reuse`).
//!
//! How a use reaches D1 without costing D1 reads elsewhere (README "Reuse detection"):
//! - A rotated-away token keeps a KV entry until its PAT expires: during a grace the grace grant,
//!   after it (or at once without grace) a **reuse marker** ([`crate::model::Grant::marker`]):
//!   no scopes, `exp` already past, flagged: it never makes a token active.
//! - Its trust time (`fresh_until`) ends at the latest when the token stops working, so the first
//!   use after that is stale, asks D1, finds the retired hash of an active PAT: that is the
//!   detection. Live tokens keep their one KV read; a forged token still costs no D1 read (a
//!   hash KV does not know is inactive, markers are only written for real retired hashes).
//! - After a detection the marker is rewritten fresh for `GRANT_CACHE_SECONDS` and the isolate
//!   remembers the hash as inactive: repeated uses of a stolen token cost one KV read (or
//!   nothing), and at most one detection (3 D1 reads and 1 write) per stolen token per location
//!   per `GRANT_CACHE_SECONDS`. A step that failed (the record, the revocation, the marker) leaves
//!   the marker stale, so the next use tries again.
//! - A revocation deletes the PAT's markers (the most recent
//!   [`super::revocation::MAX_PURGED_RETIRED`]); one left behind costs one D1 read on its next use, which finds the PAT revoked and deletes it.

use super::revocation::{revoke_record_because, revoked_event, Purge};
use crate::app::ctx::{Ctx, Deferred};
use crate::error::Error;
use crate::events::Event;
use crate::model::{Grant, Status, TokenRecord};
use crate::store::{Backend, Retired, RevocationNote};
use crate::token::TokenHash;

/// The reason recorded with a revocation caused by a detected reuse.
pub const REASON: &str = "reuse";

/// What D1 says about a hash that is no current token's.
pub enum RetiredState {
    /// Not a retired hash (never issued, or a deleted record).
    Unknown,
    /// Rotated away but its PAT is no longer active (revoked, expired): dead, nothing to detect.
    Dead,
    /// Rotated away and still in its grace period: it works (the grant to cache).
    InGrace(Box<Grant>),
    /// Rotated away, no longer working, its PAT active: a reuse.
    Reused {
        retired: Retired,
        pat: Box<TokenRecord>,
    },
}

/// Reads what D1 knows of `hash` as a retired hash (and its PAT). Only called when `hash` is not
/// a current token's and KV knew it: never for forged tokens.
pub async fn retired_state<B: Backend>(
    ctx: &Ctx<'_, B>,
    hash: &TokenHash,
) -> Result<RetiredState, Error> {
    let Some(retired) = ctx.backend.retired_by_hash(hash).await? else {
        return Ok(RetiredState::Unknown);
    };
    let Some(pat) = ctx
        .backend
        .token_by_id(&retired.token_id)
        .await?
        .filter(|r| r.status(ctx.now) == Status::Active)
    else {
        return Ok(RetiredState::Dead);
    };
    if let Some(until) = retired.grace_until.filter(|g| ctx.now < *g) {
        return Ok(RetiredState::InGrace(Box::new(pat.grace_grant(
            retired.retired_at,
            until,
            ctx.now + ctx.cfg.grant_cache_secs,
        ))));
    }
    Ok(RetiredState::Reused {
        retired,
        pat: Box::new(pat),
    })
}

/// When a retired token stopped working: the end of its grace, or its rotation.
fn dead_since(r: &Retired) -> i64 {
    r.grace_until.unwrap_or(r.retired_at)
}

/// Handles a detected reuse of `retired`, a token of `pat` (read from D1, active): records it,
/// emits the event, revokes the PAT if its owner chose that, and makes the marker answer
/// cheaply for a while. Never fails: the old token is inactive whatever happens here; a step
/// that failed is logged and retried by the next use. Returns the work for after the response.
pub async fn detected<B: Backend>(ctx: &Ctx<'_, B>, retired: &Retired, pat: &TokenRecord) -> Purge {
    let origin = ctx.backend.request_origin();
    let mut settled = true;
    let mut record = ctx
        .backend
        .record_reuse(&pat.id, ctx.now, &origin, retired.retired_at)
        .await;
    if record.is_err() && pat.revoke_on_reuse {
        // The revocation below deletes the markers: no later use would record it. Once more.
        record = ctx
            .backend
            .record_reuse(&pat.id, ctx.now, &origin, retired.retired_at)
            .await;
    }
    if let Err(e) = record {
        ctx.isolate.warn(format!(
            "recording a reuse of PAT {} failed: {}",
            pat.id, e.0
        ));
        settled = false;
    }
    let mut deferred = Vec::new();
    let mut family_revoked = false;
    if pat.revoke_on_reuse {
        let note = RevocationNote {
            reason: REASON,
            url: None,
        };
        match revoke_record_because(ctx, &pat.id, &pat.hash, Some(&note)).await {
            Ok(Some(done)) => {
                deferred.extend(done.deferred);
                family_revoked = done.newly;
                ctx.isolate.emit(revoked_event(pat, done.newly, REASON));
            }
            Ok(None) => {}
            Err(e) => {
                ctx.isolate.warn(format!(
                    "revoking PAT {} after a reuse failed (retried on the next reuse): {e:?}",
                    pat.id
                ));
                settled = false;
            }
        }
    }
    ctx.isolate.emit(Event::PatReuseDetected {
        pat_id: pat.id.clone(),
        sub: pat.subject.clone(),
        rotated_at: retired.retired_at,
        ip: origin.ip,
        colo: origin.colo,
        country: origin.country,
        family_revoked,
    });
    // A revocation deleted the markers already; otherwise the marker answers without D1 for a
    // while (a failed step leaves it stale: the next use tries again).
    if settled && !pat.revoke_on_reuse {
        let quiet = pat.marker(
            retired.retired_at,
            retired.grace_until,
            dead_since(retired),
            ctx.now + ctx.cfg.grant_cache_secs,
        );
        match ctx.backend.put_grant(&retired.hash, &quiet).await {
            Ok(()) => ctx.isolate.mark_inactive(retired.hash, ctx.now),
            Err(e) => ctx.isolate.warn(format!(
                "KV write of a reuse marker of PAT {} failed: {}",
                pat.id, e.0
            )),
        }
    }
    Purge {
        deferred,
        newly: family_revoked,
    }
}

/// Checks a hash that KV knows but D1 does not hold as a current token (a token rotated away),
/// for endpoints other than the decision (token exchange, self-rotation) that refuse it anyway:
/// a use after its grace is detected like in introspection. One D1 read for a retired hash in
/// its grace or of a dead PAT; nothing more for an unknown one.
pub async fn check_unknown<B: Backend>(
    ctx: &Ctx<'_, B>,
    hash: &TokenHash,
) -> Result<Option<Purge>, Error> {
    match retired_state(ctx, hash).await? {
        RetiredState::Reused { retired, pat } => Ok(Some(detected(ctx, &retired, &pat).await)),
        RetiredState::Unknown | RetiredState::Dead | RetiredState::InGrace(_) => Ok(None),
    }
}

/// Most retired hashes whose reuse marker one rotation (or grace end) writes: the rotated one
/// and the most recently retired others. Bounds the KV writes of a rotation (a marker now and
/// again [`super::REVOCATION_RECHECK_SECS`] later) whatever the number of earlier rotations:
/// without it, n rotations within `GRANT_CACHE_SECONDS` cost about n squared KV writes.
pub const MAX_MARKED_PER_ROTATION: usize = 8;

/// After a rotation of `pat` (its record before the rotation, `rotated` its old hash, now
/// retired): the rotated hash and the PAT's other retired hashes that no longer work and may
/// still be trusted in KV (retired within `GRANT_CACHE_SECONDS`), the most recent
/// [`MAX_MARKED_PER_ROTATION`] in all, get a stale reuse marker in place of whatever KV holds (a
/// grant a lost write left there, or a repair of a concurrent request). Tokens still in a grace
/// period are left alone. A marker write that fails falls back to a delete (no detection for
/// that token, never a live grant), retried after the response; every marker is written again
/// [`crate::app::config::REVOCATION_RECHECK_SECS`] later.
///
/// An older retired hash is not rewritten: it got its marker when it was retired (and again
/// 10 s later, and at each of the next rotations while among the most recent), so its entry is
/// a marker, which never makes a token active. Only if every one of those writes and their
/// fallback deletes failed could a live grant of it remain, and that grant is trusted at most
/// `GRANT_CACHE_SECONDS` after it was written, like one a lost revocation delete leaves.
pub async fn mark_retired<B: Backend>(
    ctx: &Ctx<'_, B>,
    pat: &TokenRecord,
    rotated: Option<Retired>,
) -> Purge {
    let mut retired: Vec<Retired> = rotated.into_iter().collect();
    match ctx
        .backend
        .retired_hashes(&pat.id, ctx.now - ctx.cfg.grant_cache_secs)
        .await
    {
        Ok(mut rows) => {
            rows.sort_by_key(|r| std::cmp::Reverse(r.retired_at));
            for r in rows {
                if !retired.iter().any(|x| x.hash == r.hash) {
                    retired.push(r);
                }
            }
        }
        Err(e) => ctx.isolate.warn(format!(
            "reading the retired hashes of {} failed: {}",
            pat.id, e.0
        )),
    }
    let mut markers = Vec::new();
    let mut failed = Vec::new();
    for r in retired
        .iter()
        .filter(|r| !r.in_grace(ctx.now))
        .take(MAX_MARKED_PER_ROTATION)
    {
        let dead = dead_since(r);
        let marker = pat.marker(r.retired_at, r.grace_until, dead, dead.min(ctx.now));
        // Not remembered as inactive by this isolate: its next use must reach D1 (detection).
        if let Err(e) = ctx.backend.put_grant(&r.hash, &marker).await {
            ctx.isolate.mark_inactive(r.hash, ctx.now);
            ctx.isolate.warn(format!(
                "KV write of a reuse marker of {} failed ({}), deleting instead",
                pat.id, e.0
            ));
            if ctx.backend.delete_grant(&r.hash).await.is_err() {
                failed.push(r.hash);
            }
        }
        markers.push((r.hash, Box::new(marker)));
    }
    let mut deferred = Vec::new();
    if !failed.is_empty() {
        deferred.push(Deferred::PurgeGrants {
            hashes: failed,
            after_secs: 0,
        });
    }
    if !markers.is_empty() {
        deferred.push(Deferred::PutMarkers {
            markers,
            after_secs: crate::app::config::REVOCATION_RECHECK_SECS,
        });
    }
    Purge {
        deferred,
        newly: false,
    }
}
