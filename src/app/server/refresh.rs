//! `POST /oauth/token`, `grant_type=refresh_token` (RFC 6749 6): the client, the refresh token,
//! its grant (read in D1 on every refresh: a revoked or expired grant refuses at once), then
//! `authz::refresh::decide`. The current token rotates (one conditional D1 batch; a concurrent
//! rotation that won makes this request read again and decide once more); the token rotated
//! away last, again within the retry grace, is a retry of a lost answer; any other rotated-away
//! token is a reuse, which ends the grant with every token issued from it.

use super::grant_tokens::{access_token, rng};
use crate::app::client_auth::{self, Freshness};
use crate::app::ctx::{Ctx, Deferred};
use crate::app::tokens;
use crate::authz::records::GrantEnd;
use crate::authz::refresh::{decide, successor, token_scopes, Outcome};
use crate::authz::secrets::{GrantSecret, SecretKind};
use crate::error::Error;
use crate::events::Event;
use crate::oauth::code_grants::RefreshToken;
use crate::oauth::{Presented, TokenResponse};
use crate::store::Backend;

/// Rotations tried before giving up on a refresh token other requests keep rotating.
const ATTEMPTS: usize = 2;

/// Refreshes. Work left for after the response (KV purges of a revoked grant) goes to
/// `deferred`, also when the answer is an error.
pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    presented: &Presented<'_>,
    grant: Result<RefreshToken<'_>, Error>,
    ip: &str,
    deferred: &mut Vec<Deferred>,
) -> Result<TokenResponse, Error> {
    let client = client_auth::authenticate_client(ctx, presented, Freshness::Fresh, ip).await?;
    let request = grant?;
    let unknown = || Error::InvalidGrant("unknown refresh token".into());
    let Ok(presented_token) = GrantSecret::parse(&request.refresh_token, SecretKind::Refresh)
    else {
        return Err(unknown());
    };
    let hash = presented_token.hash();
    let policy = ctx.cfg.refresh;
    for _ in 0..ATTEMPTS {
        let rec = ctx
            .backend
            .refresh_token(&hash)
            .await?
            .ok_or_else(unknown)?;
        let g = ctx
            .backend
            .grant(&rec.grant_id)
            .await?
            .ok_or_else(unknown)?;
        match decide(&rec, &g, &client.uid, ctx.now, &policy) {
            Outcome::Refused(why) => return Err(Error::InvalidGrant(why.into())),
            Outcome::Reuse => {
                let ended = tokens::end_grant(ctx, &g, GrantEnd::RefreshReuse).await?;
                let origin = ctx.backend.request_origin();
                ctx.isolate.emit(Event::GrantReuseDetected {
                    grant_id: g.id.clone(),
                    sub: g.subject.clone(),
                    client_id: g.client_id.clone(),
                    ip: origin.ip,
                    colo: origin.colo,
                    country: origin.country,
                    family_revoked: true,
                });
                if let Some(p) = ended {
                    deferred.extend(p.deferred);
                }
                return Err(Error::InvalidGrant(
                    "the refresh token was already used: the grant is revoked".into(),
                ));
            }
            Outcome::Rotate | Outcome::Retry => {
                let scopes = token_scopes(&g, request.scope.as_ref(), request.resource.as_ref())?;
                let next_secret = GrantSecret::generate(SecretKind::Refresh).map_err(rng)?;
                let next = successor(&g, next_secret.hash(), ctx.now, &policy);
                if !ctx
                    .backend
                    .rotate_refresh(&next, rec.generation, ctx.now)
                    .await?
                {
                    // Another request rotated first (or the grant just ended): decide again.
                    continue;
                }
                let mut answer = access_token(ctx, &client, &g, scopes, "refresh_token").await?;
                answer.refresh_token = Some(next_secret.expose_secret().to_owned());
                return Ok(answer);
            }
        }
    }
    Err(Error::InvalidGrant(
        "the refresh token is being used concurrently".into(),
    ))
}
