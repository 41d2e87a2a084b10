//! `POST /oauth/token`, `grant_type=authorization_code` (RFC 6749 4.1.3, RFC 7636, RFC 8707):
//! the client, then the code consumed at once (single use, 60 seconds: one conditional D1
//! update), then its bindings (client uid, redirect URI, PKCE verifier, resource; a failed check
//! burns the code), then the grant with its first refresh token, the grants it replaces ended,
//! and the access token (a reference token whose audience is the resource). A second use of a
//! code ends the grant its first use created, with every token issued from it.

use super::grant_tokens::{access_token, client_profile, rng};
use crate::app::client_auth::{self, Freshness};
use crate::app::ctx::{Ctx, Deferred};
use crate::app::tokens;
use crate::authz::code::{check_exchange, grant_from_code, CodeUse};
use crate::authz::records::GrantEnd;
use crate::authz::refresh::first;
use crate::authz::secrets::{GrantSecret, SecretKind};
use crate::error::Error;
use crate::events::Event;
use crate::oauth::client_metadata::GrantType;
use crate::oauth::code_grants::AuthorizationCode;
use crate::oauth::{Presented, TokenResponse};
use crate::store::Backend;

/// Exchanges a code. Work left for after the response (KV purges of a revoked grant) goes to
/// `deferred`, also when the answer is an error.
pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    presented: &Presented<'_>,
    grant: Result<AuthorizationCode<'_>, Error>,
    ip: &str,
    deferred: &mut Vec<Deferred>,
) -> Result<TokenResponse, Error> {
    let client = client_auth::authenticate_client(ctx, presented, Freshness::Fresh, ip).await?;
    let request = grant?;
    let profile = client_profile(ctx, &client.id).await?;
    if !profile.allows(GrantType::AuthorizationCode) {
        return Err(Error::UnauthorizedClient(
            "the client may not use the authorization_code grant".into(),
        ));
    }
    let invalid = || Error::InvalidGrant("the code is invalid, expired or already used".into());
    // Garbage costs no read.
    let Ok(code) = GrantSecret::parse(&request.code, SecretKind::Code) else {
        return Err(invalid());
    };
    let c = match ctx.backend.consume_code(&code.hash(), ctx.now).await? {
        CodeUse::Unknown | CodeUse::Expired => return Err(invalid()),
        CodeUse::Replayed(c) => {
            // Only the client the code was issued to can end its grant this way.
            if c.approved.client_uid == client.uid {
                if let Some(p) =
                    tokens::end_grant_by_id(ctx, &c.grant_id, GrantEnd::CodeReuse).await?
                {
                    deferred.extend(p.deferred);
                }
            }
            return Err(invalid());
        }
        CodeUse::First(c) => c,
    };
    check_exchange(&c, &client.uid, &request)?;
    let refresh = profile.allows(GrantType::RefreshToken) && profile.refresh_tokens;
    let policy = ctx.cfg.refresh;
    let g = grant_from_code(&c, ctx.now, &policy, refresh);
    let secret = refresh
        .then(|| GrantSecret::generate(SecretKind::Refresh))
        .transpose()
        .map_err(rng)?;
    let first_token = secret
        .as_ref()
        .map(|s| first(&g, s.hash(), ctx.now, &policy));
    ctx.backend.insert_grant(&g, first_token.as_ref()).await?;
    ctx.isolate.emit(Event::GrantCreated {
        grant_id: g.id.clone(),
        sub: g.subject.clone(),
        client_id: g.client_id.clone(),
        resource: g.audience.resource.clone(),
        scopes: g.scopes.clone(),
    });
    // One live grant per app installation and resource: the older ones end.
    match ctx.backend.grants_replaced_by(&g, ctx.now).await {
        Ok(ids) => {
            for id in ids {
                match tokens::end_grant_by_id(ctx, &id, GrantEnd::Replaced).await {
                    Ok(Some(p)) => deferred.extend(p.deferred),
                    Ok(None) => {}
                    Err(e) => ctx
                        .isolate
                        .warn(format!("ending replaced grant {id} failed: {e:?}")),
                }
            }
        }
        Err(e) => ctx.isolate.warn(format!(
            "reading the grants replaced by {} failed: {}",
            g.id, e.0
        )),
    }
    let mut answer = access_token(ctx, &client, &g, g.scopes.clone(), "authorization_code").await?;
    answer.refresh_token = secret.map(|s| s.expose_secret().to_owned());
    Ok(answer)
}
