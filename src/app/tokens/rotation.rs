//! Rotating a PAT (the owner's API, the token page's Regenerate, self-rotation): one path,
//! [`rotate_record`], rate limited per PAT, with a bounded number of KV writes, and ordered so
//! that every failure leaves the PAT rotatable. The old token stops working at once or after a
//! grace period, and stays known as retired so that a later use is detected ([`super::reuse`]).

use super::issuance::put_grant_retrying;
use super::reuse;
use super::revocation::purge;
use crate::app::config::MAX_ROTATION_GRACE_SECS;
use crate::app::ctx::{Ctx, Deferred};
use crate::app::ratelimit;
use crate::error::Error;
use crate::events::Event;
use crate::http::Request;
use crate::model::{Status, TokenRecord};
use crate::store::{Backend, Limit, Retired};
use crate::token::{PlainToken, TokenHash, TokenKind};
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

/// Rotates the PAT `rec` was read as: the D1 update is conditional on `rec`'s hash (the version
/// the caller checked), so of two concurrent rotations of one version exactly one happens, the
/// other is a 409. Same id, name, scopes and expiry; for `grace_secs > 0` the old token keeps
/// working until `now + grace_secs` (never past the PAT's expiry).
///
/// Rotations are rate limited per PAT ([`Limit::RotationsPerPat`]: 429), and their KV writes are
/// bounded ([`reuse::MAX_MARKED_PER_ROTATION`]).
///
/// The order makes every failure recoverable, answered 503 with the PAT still rotatable:
/// 1. the new token's KV grant is written first (a token nobody has yet: if anything later
///    fails it is deleted, and a grant left behind matches no token anyone holds); if it
///    cannot be written, nothing has changed;
/// 2. D1, with one conditional statement (the old hash, not revoked, not expired), which also
///    records the old hash as retired. A write that reports an error is read back: landed, the
///    rotation goes on and the token is returned; not landed, nothing has changed; unknown (the
///    read fails too), the old hash leaves KV and the answer is 503 (the owner rotates again:
///    the next rotation starts from whatever hash D1 holds);
/// 3. after the commit nothing can fail the rotation: the old token's grace grant or reuse
///    marker ([`super::reuse::mark_retired`]) are written, failures retried after the response;
/// 4. a revocation that lands meanwhile would be undone by those writes: the record is read
///    back, and if it is no longer active with the new hash, the new grant is evicted and the
///    rotation answers 409.
///
/// D1 records the grace with the retired hash; KV gets the old token's grant with `exp` at the
/// end of the grace (trusted at most `GRANT_CACHE_SECONDS`, then D1's retired hash answers), so
/// introspection of the old token needs no D1 read and says `rotated_at`/`grace_until`. Without
/// grace the old token's KV entry becomes a reuse marker at once; either way KV keeps the entry
/// until the PAT expires, so a use after the token stopped working is detected. A revocation of
/// the PAT purges them like every retired hash.
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
    ratelimit::count(ctx, Limit::RotationsPerPat, &rec.id).await?;
    let token = PlainToken::generate(TokenKind::Pat)
        .map_err(|e| Error::Internal(format!("randomness unavailable: {e}")))?;
    let old = rec.hash;
    let old_rec = rec.clone();
    let grace_until = (grace_secs > 0).then(|| (ctx.now + grace_secs).min(rec.expires_at));
    rec.hash = token.hash();
    // 1. Without its KV grant the new token would be unknown everywhere: written before D1
    // changes, so that a failure here changes nothing (the same rotation can be asked again).
    put_grant_retrying(ctx, &rec).await?;
    // 2. D1.
    let landed = match ctx
        .backend
        .rotate_token(&rec.id, &old, &rec.hash, ctx.now, grace_until)
        .await
    {
        Ok(landed) => landed,
        Err(e) => match ctx.backend.token_by_id(&rec.id).await {
            // Landed although it reported an error.
            Ok(Some(now)) if now.hash == rec.hash => true,
            // Did not land: nothing changed; asking again works.
            Ok(Some(now)) if now.hash == old => {
                forget(ctx, rec.hash).await;
                return Err(e.into());
            }
            // Revoked, or rotated by another request.
            Ok(_) => false,
            Err(_) => {
                // Unknown: if it landed, the old token must not stay live in KV; if it did
                // not, evicting the old hash only makes the owner rotate again.
                forget(ctx, rec.hash).await;
                forget(ctx, old).await;
                return Err(Error::Unavailable(format!(
                    "rotation of {}: outcome unknown, rotate again: {}",
                    rec.id, e.0
                )));
            }
        },
    };
    if !landed {
        forget(ctx, rec.hash).await;
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
    rec.generation += 1;
    // 3. The old token's KV entry: a grace grant, or a reuse marker.
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
    // The old token (without grace) and the PAT's recent earlier ones get reuse markers in KV.
    let done = reuse::mark_retired(ctx, &old_rec, Some(retired)).await;
    // 4. A revocation that landed meanwhile.
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
            forget(ctx, rec.hash).await;
            if grace_until.is_some() {
                forget(ctx, old).await;
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

/// Evicts `hash` from KV (best effort) and from this isolate: a grant that must not be used.
async fn forget<B: Backend>(ctx: &Ctx<'_, B>, hash: TokenHash) {
    ctx.isolate.mark_inactive(hash, ctx.now);
    let _ = ctx.backend.delete_grant(&hash).await;
}
