//! RFC 7009 token revocation. Holding a PAT is enough to revoke it: the public PAT client
//! identifies with `client_id=pat_client` and no secret, so a leaked token dies with one curl.
//! Confidential clients authenticate and revoke tokens issued to them.
//!
//! [`serve`] parses the request once ([`RevocationRequest`]); [`handle`] returns what is left to
//! do after the (always empty) answer.

use super::revocation::{revoke_record, revoked_event, Purge};
use super::{decision, jwt, lifecycle};
use crate::app::client_auth;
use crate::app::ctx::{Ctx, Outcome};
use crate::app::ratelimit;
use crate::authz::records::GrantEnd;
use crate::authz::secrets::{GrantSecret, SecretKind};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::Client;
use crate::model::PAT_CLIENT_ID;
use crate::oauth::RevocationRequest;
use crate::store::Backend;
use crate::token::PlainToken;

/// `POST /oauth/revoke`: parse, [`handle`], an empty 200.
pub async fn serve<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    let request = RevocationRequest::parse(req)?;
    let done = handle(ctx, &request, ratelimit::client_ip(req)).await?;
    let response = Response::empty(200);
    Ok(Outcome {
        response,
        deferred: done.deferred,
    })
}

/// Authenticates the client (`ip`: the caller's, for the rate limits), then revokes the token if
/// it is one of the client's. Whatever the token was, the answer is the same (RFC 7009 2.2).
pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    request: &RevocationRequest<'_>,
    ip: &str,
) -> Result<Purge, Error> {
    let client =
        client_auth::authenticate_client(ctx, &request.client, client_auth::Freshness::Cached, ip)
            .await?;
    let presented = request.token()?;
    // A refresh token of an authorization grant ends the grant (its access tokens with it).
    if let Ok(refresh) = GrantSecret::parse(presented, SecretKind::Refresh) {
        return revoke_refresh(ctx, &client, &refresh).await;
    }
    // RFC 7009 2.2: invalid tokens get 200; the hint is only a hint.
    let Ok(token) = PlainToken::parse(presented) else {
        if jwt::looks_like_jwt(presented) {
            jwt::revoke(ctx, &client, presented).await?;
        }
        return Ok(Purge::default());
    };
    let hash = token.hash();
    if !decision::may_exist(ctx, &hash).await {
        return Ok(Purge::default());
    }
    let Some(rec) = ctx.backend.token_by_hash(&hash).await? else {
        // A PAT's token rotated away and still working in its grace period: holding it is
        // enough to end its grace (the current token is untouched).
        if client.id == PAT_CLIENT_ID {
            if let Some(ended) = lifecycle::end_grace(ctx, hash).await? {
                return Ok(Purge {
                    deferred: ended.deferred,
                    ..Purge::default()
                });
            }
        }
        return Ok(Purge::default());
    };
    if rec.client_id != client.id {
        return Err(Error::UnauthorizedClient(
            "the token was not issued to this client".into(),
        ));
    }
    let done = revoke_record(ctx, &rec.id, &hash)
        .await?
        .unwrap_or_default();
    ctx.isolate.emit(revoked_event(&rec, done.newly, "rfc7009"));
    Ok(done)
}

/// RFC 7009 of a `pgr_` refresh token: the grant it belongs to ends (`token_revoked`), if it is
/// the client's (the same uid). Unknown or dead tokens: nothing (200).
async fn revoke_refresh<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &Client,
    refresh: &GrantSecret,
) -> Result<Purge, Error> {
    let Some(rec) = ctx.backend.refresh_token(&refresh.hash()).await? else {
        return Ok(Purge::default());
    };
    let Some(grant) = ctx.backend.grant(&rec.grant_id).await? else {
        return Ok(Purge::default());
    };
    if grant.client_uid != client.uid {
        return Err(Error::UnauthorizedClient(
            "the token was not issued to this client".into(),
        ));
    }
    Ok(
        super::grants::end_grant(ctx, &grant, GrantEnd::TokenRevoked)
            .await?
            .unwrap_or_default(),
    )
}
