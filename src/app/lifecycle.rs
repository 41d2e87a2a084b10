//! Token lifecycle beyond create/revoke: self-rotation for automation, and the grace period of
//! rotated-away tokens as the decision reads it from D1 (see [`super::pats::rotate_record`]).

use super::{client_auth, decision, pats, Ctx, Deferred, Outcome};
use crate::error::Error;
use crate::http::Request;
use crate::model::{Grant, Status};
use crate::store::Backend;
use crate::token::{PlainToken, TokenHash, TokenKind};

/// `POST /api/pats/self/rotate` with the PAT itself as `Authorization: Bearer`: a PAT created
/// with `allow_self_rotation` gets its successor (same semantics as the owner's rotate, optional
/// `{"grace_seconds": N}`). Without the permission: 403 `insufficient_scope`. Only the current
/// token can do it: a rotated-away token in its grace period, a revoked, expired or unknown one
/// is a 401 `invalid_token`.
pub async fn rotate_self<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    let presented = req.bearer()?.ok_or(Error::MissingBearer)?;
    let bad = |cause: &str| Error::InvalidToken {
        description: "the token is not valid",
        cause: cause.to_owned(),
    };
    let token = PlainToken::parse(presented).map_err(|_| bad("not a patgate token"))?;
    if token.kind() != TokenKind::Pat {
        return Err(bad("not a personal access token"));
    }
    let hash = token.hash();
    // A forged token that passes the checksum costs a KV read, never a D1 query.
    if !decision::may_exist(ctx, &hash).await {
        return Err(bad("unknown token"));
    }
    let rec = ctx
        .backend
        .token_by_hash(&hash)
        .await?
        .filter(|r| r.kind == TokenKind::Pat && r.status(ctx.now) == Status::Active)
        .ok_or_else(|| bad("not an active PAT (or rotated away)"))?;
    // Like introspection: a PAT of a disabled (or recreated) PAT client is dead.
    if !client_auth::load_client(ctx, &rec.client_id)
        .await?
        .is_some_and(|c| c.enabled && decision::same_uid(rec.client_uid.as_deref(), &c.uid))
    {
        return Err(bad("the PAT client is disabled"));
    }
    if !rec.allow_self_rotation {
        return Err(Error::Forbidden(
            "this token was not created with allow_self_rotation".into(),
        ));
    }
    let grace = pats::grace_from_body(ctx, req)?;
    Ok(pats::rotated_outcome(
        pats::rotate_record(ctx, rec, grace, "self").await?,
    ))
}

/// A retired hash whose grace [`end_grace`] ended.
pub struct GraceEnded {
    pub token_id: String,
    /// It was still in its grace period (false: it was dead already).
    pub was_in_grace: bool,
    pub deferred: Vec<Deferred>,
    pub log: Option<String>,
}

/// Ends the grace period of `hash` now, if it is a retired hash (a token rotated away): D1
/// first, then KV (a failed delete is retried after the response, and every delete repeated
/// [`super::REVOCATION_RECHECK_SECS`] later, as for revocations). `None`: not a retired hash.
pub async fn end_grace<B: Backend>(
    ctx: &Ctx<'_, B>,
    hash: TokenHash,
) -> Result<Option<GraceEnded>, Error> {
    let Some(retired) = ctx.backend.retired_by_hash(&hash).await? else {
        return Ok(None);
    };
    let was_in_grace = retired.in_grace(ctx.now);
    if was_in_grace {
        ctx.backend.end_grace(&hash, ctx.now).await?;
    }
    ctx.isolate.mark_inactive(hash, ctx.now);
    let mut deferred = Vec::new();
    let mut log = None;
    if let Err(e) = ctx.backend.delete_grant(&hash).await {
        log = Some(format!(
            "KV delete of a retired token of {} failed (retried): {}",
            retired.token_id, e.0
        ));
        deferred.push(Deferred::PurgeGrants {
            hashes: vec![hash],
            after_secs: 0,
        });
    }
    deferred.push(Deferred::PurgeGrants {
        hashes: vec![hash],
        after_secs: super::REVOCATION_RECHECK_SECS,
    });
    Ok(Some(GraceEnded {
        token_id: retired.token_id,
        was_in_grace,
        deferred,
        log,
    }))
}

/// The grant of a rotated-away token still in its grace period, from D1 (the retired hash and
/// its PAT, which must still be active); `None` otherwise. Read only when KV's entry is stale or
/// KV failed: the steady state of a token in grace is one KV read.
pub async fn grace_grant<B: Backend>(
    ctx: &Ctx<'_, B>,
    hash: &TokenHash,
) -> Result<Option<Grant>, Error> {
    let Some(retired) = ctx.backend.retired_by_hash(hash).await? else {
        return Ok(None);
    };
    let Some(until) = retired.grace_until.filter(|g| ctx.now < *g) else {
        return Ok(None);
    };
    Ok(ctx
        .backend
        .token_by_id(&retired.token_id)
        .await?
        .filter(|r| r.status(ctx.now) == Status::Active)
        .map(|r| {
            r.grace_grant(
                retired.retired_at,
                until,
                ctx.now + ctx.cfg.grant_cache_secs,
            )
        }))
}
