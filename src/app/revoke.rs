//! RFC 7009 token revocation. Holding a PAT is enough to revoke it: the public PAT client
//! identifies with `client_id=pat_client` and no secret, so a leaked token dies with one curl.
//! Confidential clients authenticate and revoke tokens issued to them.

use super::{client_auth, Ctx, Deferred, Outcome};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::store::Backend;
use crate::token::PlainToken;

pub async fn handle<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    let form = req.form()?;
    let client = client_auth::authenticate_client(
        ctx,
        client_auth::presented(req, &form)?,
        client_auth::Freshness::Cached,
    )
    .await?;
    let presented = form.require("token")?;
    // RFC 7009 2.2: invalid tokens get 200; the hint is only a hint.
    let Ok(token) = PlainToken::parse(presented) else {
        if super::jwt_tokens::looks_like_jwt(presented) {
            super::jwt_tokens::revoke(ctx, &client, presented).await?;
        }
        return Ok(Response::empty(200).into());
    };
    let hash = token.hash();
    let Some(rec) = ctx.backend.token_by_hash(&hash).await? else {
        return Ok(Response::empty(200).into());
    };
    if rec.client_id != client.id {
        return Err(Error::UnauthorizedClient(
            "the token was not issued to this client".into(),
        ));
    }
    let again = revoke_record(ctx, &rec.id, &hash).await?;
    Ok(Outcome {
        response: Response::empty(200),
        deferred: vec![again],
    })
}

/// Marks D1 first (the truth), then deletes the KV grant, so this location stops seeing the token
/// at once; other locations follow within KV's propagation bound (README). Returns the second,
/// delayed KV delete to run after the response (see [`Deferred::DeleteGrantAgain`]).
pub async fn revoke_record<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
    hash: &crate::token::TokenHash,
) -> Result<Deferred, Error> {
    ctx.backend.revoke_token(id, ctx.now).await?;
    ctx.backend.delete_grant(hash).await?;
    ctx.isolate.mark_inactive(*hash, ctx.now);
    Ok(Deferred::DeleteGrantAgain { hash: *hash })
}
