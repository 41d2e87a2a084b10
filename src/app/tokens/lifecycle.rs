//! Token lifecycle beyond create/revoke: self-rotation for automation, and ending the grace
//! period of a rotated-away token (see [`super::rotation::rotate_record`]; the grace as the
//! decision reads it from D1, and reuse after it, are in [`super::reuse`]).

use super::active::same_uid;
use super::{decision, pats, reuse, rotation};
use crate::app::client_auth;
use crate::app::ctx::{Ctx, Deferred, Outcome};
use crate::error::Error;
use crate::http::Request;
use crate::model::Status;
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
    let Some(rec) = ctx.backend.token_by_hash(&hash).await? else {
        // Rotated away: refused, and a use after its grace is a detected reuse.
        let refused = bad("not an active PAT (rotated away)");
        ctx.isolate.error(&refused);
        let response = refused.into_response();
        let deferred = match reuse::check_unknown(ctx, &hash).await? {
            Some(done) => done.deferred,
            None => Vec::new(),
        };
        return Ok(Outcome { response, deferred });
    };
    let rec = Some(rec)
        .filter(|r| r.kind == TokenKind::Pat && r.status(ctx.now) == Status::Active)
        .ok_or_else(|| bad("not an active PAT"))?;
    // Like introspection: a PAT of a disabled (or recreated) PAT client is dead.
    if !client_auth::load_client(ctx, &rec.client_id)
        .await?
        .is_some_and(|c| c.enabled && same_uid(rec.client_uid.as_deref(), &c.uid))
    {
        return Err(bad("the PAT client is disabled"));
    }
    if !rec.allow_self_rotation {
        return Err(Error::Forbidden(
            "this token was not created with allow_self_rotation".into(),
        ));
    }
    let grace = rotation::grace_from_body(ctx, req)?;
    Ok(pats::rotated_outcome(
        rotation::rotate_record(ctx, rec, grace, "self").await?,
    ))
}

/// A retired hash whose grace [`end_grace`] ended.
pub struct GraceEnded {
    pub token_id: String,
    /// It was still in its grace period (false: it was dead already).
    pub was_in_grace: bool,
    pub deferred: Vec<Deferred>,
}

/// Ends the grace period of `hash` now, if it is a retired hash (a token rotated away): D1
/// first, then KV: a reuse marker while the PAT is active ([`super::reuse::mark_retired`]),
/// else a delete (a failed delete is retried after the response, and every delete repeated
/// [`crate::app::config::REVOCATION_RECHECK_SECS`] later, as for revocations). `None`: not a
/// retired hash.
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
    // The token stays known to KV as a reuse marker while its PAT lives: a use after this is a
    // detected reuse, like after a grace that ran out (see `reuse`).
    let pat = ctx
        .backend
        .token_by_id(&retired.token_id)
        .await
        .ok()
        .flatten()
        .filter(|r| r.status(ctx.now) == Status::Active);
    if let Some(pat) = pat {
        let mut ended = retired.clone();
        if was_in_grace {
            ended.grace_until = Some(ctx.now);
        }
        let marked = reuse::mark_retired(ctx, &pat, Some(ended)).await;
        return Ok(Some(GraceEnded {
            token_id: retired.token_id,
            was_in_grace,
            deferred: marked.deferred,
        }));
    }
    ctx.isolate.mark_inactive(hash, ctx.now);
    let mut deferred = Vec::new();
    if let Err(e) = ctx.backend.delete_grant(&hash).await {
        ctx.isolate.warn(format!(
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
        after_secs: crate::app::config::REVOCATION_RECHECK_SECS,
    });
    Ok(Some(GraceEnded {
        token_id: retired.token_id,
        was_in_grace,
        deferred,
    }))
}
