//! `POST /oauth/token` (RFC 6749 section 3.2): the per-IP rate limit, the request parsed once
//! ([`TokenRequest`]), then its grant: `client_credentials` here (confidential clients,
//! reference or JWT access tokens per client), RFC 8693 token exchange in `exchange`, the
//! authorization code and refresh token grants in `authorization_code` and `refresh`.

use super::{authorization_code, exchange, jwt, refresh};
use crate::app::ctx::{Ctx, Deferred, Outcome};
use crate::app::tokens::{self, NewToken};
use crate::app::{client_auth, ratelimit};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::{Client, TokenFormat};
use crate::oauth::token::{granted_scopes, ClientCredentials};
use crate::oauth::{Grant, Presented, TokenRequest, TokenResponse};
use crate::store::{Backend, Limit};
use crate::token::TokenKind;

/// `POST /oauth/token`: count the call, parse, [`handle`], serialize. Work left for after the
/// response (a revoked grant's KV purges) is kept also when the answer is an error.
pub async fn serve<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    let ip = ratelimit::client_ip(req);
    ratelimit::count(ctx, Limit::TokenEndpointPerIp, ip).await?;
    let request = TokenRequest::parse(req)?;
    let mut deferred = Vec::new();
    match handle(ctx, request, ip, &mut deferred).await {
        Ok(answer) => Ok(Outcome {
            response: Response::json(200, &answer),
            deferred,
        }),
        Err(e) if deferred.is_empty() => Err(e),
        Err(e) => {
            ctx.isolate.error(&e);
            Ok(Outcome {
                response: e.into_response(),
                deferred,
            })
        }
    }
}

/// Answers a token request (`ip`: the caller's, for the rate limits); work for after the
/// response goes to `deferred`.
pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    request: TokenRequest<'_>,
    ip: &str,
    deferred: &mut Vec<Deferred>,
) -> Result<TokenResponse, Error> {
    match request.grant {
        Grant::ClientCredentials(grant) => {
            client_credentials(ctx, &request.client, &grant, ip).await
        }
        Grant::TokenExchange(grant) => exchange::handle(ctx, &request.client, grant, ip).await,
        Grant::AuthorizationCode(grant) => {
            authorization_code::handle(ctx, &request.client, grant, ip, deferred).await
        }
        Grant::RefreshToken(grant) => {
            refresh::handle(ctx, &request.client, grant, ip, deferred).await
        }
    }
}

async fn client_credentials<B: Backend>(
    ctx: &Ctx<'_, B>,
    presented: &Presented<'_>,
    grant: &ClientCredentials<'_>,
    ip: &str,
) -> Result<TokenResponse, Error> {
    let client =
        client_auth::authenticate_client(ctx, presented, client_auth::Freshness::Fresh, ip).await?;
    if client.secret.is_none() {
        return Err(Error::UnauthorizedClient(
            "a public client cannot use client_credentials".into(),
        ));
    }
    let scopes = granted_scopes(grant.scope.as_ref(), &client.allowed_scopes)?;
    issue_access_token(ctx, &client, &client.id, scopes, client.token_lifetime).await
}

/// Issues an access token to `client` for `subject`, in the client's configured format.
async fn issue_access_token<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &Client,
    subject: &str,
    scopes: Vec<String>,
    lifetime: i64,
) -> Result<TokenResponse, Error> {
    let lifetime = lifetime.max(1);
    let scope = crate::scopes::join(&scopes);
    let access_token = match client.token_format {
        TokenFormat::Jwt => {
            jwt::sign_access_token(ctx, client, subject, &scopes, lifetime, None).await?
        }
        TokenFormat::Reference => {
            let new = NewToken {
                kind: TokenKind::Access,
                subject: subject.to_owned(),
                client_id: client.id.clone(),
                name: None,
                scopes,
                expires_at: ctx.now + lifetime,
                client_uid: client.uid.clone(),
                allow_self_rotation: false,
                revoke_on_reuse: false,
                grant_id: None,
                audience: None,
            };
            let (_, token) = tokens::issue(ctx, new).await?;
            token.expose_secret().to_owned()
        }
    };
    ctx.isolate.emit(crate::events::Event::TokenIssued {
        client_id: client.id.clone(),
        sub: subject.to_owned(),
        format: match client.token_format {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Reference => "reference",
        },
        grant: "client_credentials",
    });
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetime,
        scope,
        issued_token_type: None,
        pat_id: None,
        refresh_token: None,
    })
}
