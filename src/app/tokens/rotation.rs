//! Rotation: a PAT gets a new token under the same id, name, scopes and expiry; the old token
//! stops working at once or after a grace period, and stays known as retired so that a later
//! use is detected ([`super::reuse`]). Asked for by the owner (management API, token page) or by
//! the PAT itself (self-rotation, [`super::lifecycle`]).

use super::issuance::put_grant_retrying;
use super::reuse;
use super::revocation::purge;
use crate::app::config::MAX_ROTATION_GRACE_SECS;
use crate::app::ctx::{Ctx, Deferred};
use crate::error::Error;
use crate::events::Event;
use crate::http::Request;
use crate::model::{Status, TokenRecord};
use crate::store::{Backend, Retired};
use crate::token::{PlainToken, TokenKind};
use serde::Deserialize;

/// The optional body of a rotation.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    grace_seconds: Option<i64>,
}

/// The grace period a rotation asks for: an optional JSON body `{"grace_seconds": N}` (an empty
/// body: none), 0 to `ROTATION_MAX_GRACE_SECONDS`.
pub fn grace_from_body<B>(ctx: &Ctx<'_, B>, req: &Request) -> Result<i64, Error> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(0);
    }
    let body: RotateBody = req.json()?;
    let max = ctx
        .cfg
        .lifecycle
        .max_grace_secs
        .clamp(0, MAX_ROTATION_GRACE_SECS);
    match body.grace_seconds {
        None => Ok(0),
        Some(g) if (0..=max).contains(&g) => Ok(g),
        Some(_) => Err(Error::InvalidRequest(format!(
            "grace_seconds must be 0 to {max}"
        ))),
    }
}

/// A rotated PAT: its record with the new hash, the new token (shown once), a line to log and the
/// work to run after the response.
pub struct Rotated {
    pub record: TokenRecord,
    pub token: PlainToken,
    /// The old token works until then (rotation with grace).
    pub grace_until: Option<i64>,
    pub deferred: Vec<Deferred>,
}

/// [`rotate_for`] on a record already read (its hash is the one the rotation replaces), with a
/// grace period: for `grace_secs > 0` the old token keeps working until `now + grace_secs`
/// (never past the PAT's expiry). D1 records the grace with the retired hash; KV gets the old
/// token's grant with `exp` at the end of the grace (trusted at most `GRANT_CACHE_SECONDS`, then
/// D1's retired hash answers), so introspection of the old token needs no D1 read and says
/// `rotated_at`/`grace_until`. Without grace the old token's KV entry becomes a reuse marker at
/// once ([`reuse::mark_retired`]); either way KV keeps the entry until the PAT expires,
/// so a use after the token stopped working is detected. A revocation of the PAT purges them
/// like every retired hash.
pub async fn rotate_record<B: Backend>(
    ctx: &Ctx<'_, B>,
    mut rec: TokenRecord,
    grace_secs: i64,
    via: &'static str,
) -> Result<Rotated, Error> {
    if rec.status(ctx.now) != Status::Active {
        // A repeated rotate of a revoked PAT still finishes KV deletes that failed before.
        if rec.revoked_at.is_some() {
            let _ = purge(ctx, &rec.id, vec![rec.hash]).await;
        }
        return Err(Error::Conflict(
            "only an active token can be rotated".into(),
        ));
    }
    let token = PlainToken::generate(TokenKind::Pat)
        .map_err(|e| Error::Internal(format!("randomness unavailable: {e}")))?;
    let old = rec.hash;
    let old_rec = rec.clone();
    let grace_until = (grace_secs > 0).then(|| (ctx.now + grace_secs).min(rec.expires_at));
    rec.hash = token.hash();
    match ctx
        .backend
        .rotate_token(&rec.id, &old, &rec.hash, ctx.now, grace_until)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            // Revoked meanwhile: finish its KV deletes. Rotated meanwhile: that rotation marks
            // `old` (a purge here would delete the PAT's reuse markers).
            if let Ok(Some(now)) = ctx.backend.token_by_id(&rec.id).await {
                if now.revoked_at.is_some() {
                    let _ = purge(ctx, &rec.id, vec![old]).await;
                }
            }
            return Err(Error::Conflict(
                "the token was revoked, expired or rotated concurrently".into(),
            ));
        }
        Err(e) => {
            // Unknown outcome (the update may have landed): evicting the old hash is safe.
            ctx.isolate.mark_inactive(old, ctx.now);
            let _ = ctx.backend.delete_grant(&old).await;
            return Err(e.into());
        }
    }
    rec.generation += 1;
    let retired = Retired {
        hash: old,
        token_id: rec.id.clone(),
        retired_at: ctx.now,
        grace_until,
    };
    if let Some(until) = grace_until {
        // Kept in KV until the PAT expires: after the grace it is the reuse marker.
        let grant = old_rec.grace_grant(ctx.now, until, ctx.now + ctx.cfg.grant_cache_secs);
        // If this write fails, the old entry stays until its trust time and D1's retired
        // hash answers after that: the old token still works exactly until `until`.
        if let Err(e) = ctx.backend.put_grant(&old, &grant).await {
            ctx.isolate
                .warn(format!("KV write of a grace grant failed: {}", e.0));
        }
    }
    // The old token (without grace) and the PAT's earlier ones get reuse markers in KV.
    let done = reuse::mark_retired(ctx, &old_rec, Some(retired)).await;
    // Without its KV grant the new token would be unknown everywhere: fail rather than hand out
    // a dead token (D1 already rotated; rotating again is safe).
    put_grant_retrying(ctx, &rec).await?;
    match ctx.backend.token_by_id(&rec.id).await {
        Ok(Some(now)) if now.revoked_at.is_none() && now.hash == rec.hash => {}
        // Revoked meanwhile: every hash of the PAT leaves KV (the markers written above too).
        Ok(Some(now)) if now.revoked_at.is_some() => {
            let _ = purge(ctx, &rec.id, vec![rec.hash, old]).await;
            return Err(Error::Conflict(
                "the token was revoked or rotated concurrently".into(),
            ));
        }
        Ok(_) => {
            ctx.isolate.mark_inactive(rec.hash, ctx.now);
            let _ = ctx.backend.delete_grant(&rec.hash).await;
            if grace_until.is_some() {
                ctx.isolate.mark_inactive(old, ctx.now);
                let _ = ctx.backend.delete_grant(&old).await;
            }
            return Err(Error::Conflict(
                "the token was revoked or rotated concurrently".into(),
            ));
        }
        // The revocation that might have raced us deletes the new hash again 10 s after itself.
        Err(e) => ctx
            .isolate
            .warn(format!("reading back a rotated PAT failed: {}", e.0)),
    }
    ctx.isolate.emit(Event::PatRotated {
        pat_id: rec.id.clone(),
        generation: rec.generation,
        grace_until,
        via,
    });
    Ok(Rotated {
        record: rec,
        token,
        grace_until,
        deferred: done.deferred,
    })
}
