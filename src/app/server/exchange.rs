//! RFC 8693 token exchange at `POST /oauth/token`.
//!
//! - Single sign-on to PAT: an identity-provider JWT (`subject_token_type` `...:jwt`,
//!   `...:id_token` or `...:access_token`) exchanged by the public `pat_client` for a new PAT,
//!   with `name`, `scope` and `expires_in_days` or `expires_at` as parameters. A CLI gets a PAT
//!   without a browser page.
//! - PAT to JWT: a PAT (`subject_token_type` `...:access_token`) exchanged for a short-lived
//!   (at most one hour, never past the PAT), optionally down-scoped RFC 9068 JWT that APIs can
//!   verify offline against `/.well-known/jwks.json`. Holding the PAT is enough: the public
//!   `pat_client` may ask without a secret.
//!
//! A subject token that is well-formed but not acceptable (revoked, expired, unknown, bad
//! signature) is `invalid_grant`: it is the grant of this request (RFC 6749 section 5.2);
//! malformed requests, unsupported token types and `actor_token` are `invalid_request`.

use super::jwt;
use crate::app::ctx::Ctx;
use crate::app::tokens::{self, CreatePat};
use crate::app::{client_auth, clients, user};
use crate::error::Error;
use crate::model::Status;
use crate::model::PAT_CLIENT_ID;
use crate::oauth::token::{granted_scopes, TokenExchange, TokenType, TT_ACCESS_TOKEN, TT_JWT};
use crate::oauth::{Presented, TokenResponse};
use crate::store::Backend;
use crate::token::{PlainToken, TokenKind};

/// Answers a token exchange: `grant` holds its parameters, or the first error in them,
/// reported once the client is authenticated.
pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    presented: &Presented<'_>,
    grant: Result<TokenExchange<'_>, Error>,
    ip: &str,
) -> Result<TokenResponse, Error> {
    // Authenticated against the cached registry first, so that a forged subject token costs no
    // D1 query; the client is read fresh from D1 right before anything is issued.
    let client =
        client_auth::authenticate_client(ctx, presented, client_auth::Freshness::Cached, ip)
            .await?;
    if clients::is_self_registered(&client.id) {
        return Err(Error::UnauthorizedClient(
            "a self-registered client may use authorization_code and refresh_token only".into(),
        ));
    }
    let grant = grant?;
    let requested = grant.requested_token_type.as_ref();
    match PlainToken::parse(&grant.subject_token) {
        Ok(pat) if pat.kind() == TokenKind::Pat => {
            if grant.subject_token_type != TokenType::AccessToken {
                return Err(Error::InvalidRequest(format!(
                    "a PAT has subject_token_type {TT_ACCESS_TOKEN}"
                )));
            }
            if requested.is_some_and(|r| *r != TokenType::Jwt) {
                return Err(Error::InvalidRequest(format!(
                    "a PAT can be exchanged only for requested_token_type {TT_JWT}"
                )));
            }
            if ctx.cfg.signing_keys.is_none() {
                // RFC 8693 2.2.2: a subject token unacceptable by policy is invalid_request.
                return Err(Error::InvalidRequest(
                    "this server issues no JWTs (no signing keys are configured), so a PAT cannot be exchanged".into(),
                ));
            }
            pat_to_jwt(ctx, &client, &pat, &grant).await
        }
        _ => {
            if let TokenType::Other(other) = &grant.subject_token_type {
                return Err(Error::InvalidRequest(format!(
                    "unsupported subject_token_type {other}"
                )));
            }
            if requested.is_some_and(|r| *r != TokenType::AccessToken) {
                return Err(Error::InvalidRequest(format!(
                    "an identity-provider token can be exchanged only for requested_token_type {TT_ACCESS_TOKEN} (a PAT)"
                )));
            }
            if client.id != PAT_CLIENT_ID {
                return Err(Error::UnauthorizedClient(format!(
                    "only {PAT_CLIENT_ID} may exchange identity-provider tokens for PATs"
                )));
            }
            sso_to_pat(ctx, &client, grant).await
        }
    }
}

async fn sso_to_pat<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &crate::model::Client,
    grant: TokenExchange<'_>,
) -> Result<TokenResponse, Error> {
    let sub = user::verify(ctx, &grant.subject_token).await.map_err(|_| {
        Error::InvalidGrant("subject_token is not a valid identity-provider token".into())
    })?;
    still_enabled(ctx, client).await?;
    let new = grant.new_pat?;
    let body = CreatePat {
        name: new.name.into_owned(),
        scopes: crate::scopes::split(
            &grant
                .scope
                .ok_or_else(|| Error::InvalidScope("scope is required".into()))?,
        ),
        expires_at: new.expires_at.map(std::borrow::Cow::into_owned),
        expires_in_days: new.expires_in_days,
        allow_self_rotation: false,
        revoke_on_reuse: false,
    };
    let (rec, token) = tokens::issue_pat(ctx, sub, body).await?;
    Ok(TokenResponse {
        access_token: token.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_in: rec.expires_at - ctx.now,
        scope: crate::scopes::join(&rec.scopes),
        issued_token_type: Some(TT_ACCESS_TOKEN),
        pat_id: Some(rec.id),
        refresh_token: None,
    })
}

async fn pat_to_jwt<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &crate::model::Client,
    pat: &PlainToken,
    grant: &TokenExchange<'_>,
) -> Result<TokenResponse, Error> {
    let inactive = || Error::InvalidGrant("subject_token is not an active token".into());
    if !tokens::may_exist(ctx, &pat.hash()).await {
        return Err(inactive());
    }
    // Then the source of truth, not KV: a PAT revoked a second ago must not mint a JWT here.
    let Some(rec) = ctx.backend.token_by_hash(&pat.hash()).await? else {
        // A token rotated away: used after its grace, a detected reuse (see `reuse`).
        // (This answer carries no work for after it: what failed is logged as a warning.)
        let _done = tokens::check_unknown(ctx, &pat.hash()).await?;
        return Err(inactive());
    };
    let rec = Some(rec)
        .filter(|r| r.status(ctx.now) == Status::Active)
        .ok_or_else(inactive)?;
    // A PAT of a disabled client is inactive everywhere: it mints nothing either.
    if !tokens::client_holds(ctx, &rec.client_id, rec.client_uid.as_deref()).await? {
        return Err(inactive());
    }
    still_enabled(ctx, client).await?;
    let scopes = granted_scopes(grant.scope.as_ref(), &rec.scopes)?;
    // Offline verifiers cannot see the PAT's revocation: keep the JWT short (README).
    let lifetime = ctx.cfg.exchanged_jwt_secs.min(rec.expires_at - ctx.now);
    let access_token = jwt::sign_access_token(
        ctx,
        client,
        &rec.subject,
        &scopes,
        lifetime,
        Some((&rec.id, rec.generation)),
    )
    .await?;
    ctx.isolate.emit(crate::events::Event::TokenIssued {
        client_id: client.id.clone(),
        sub: rec.subject.clone(),
        format: "jwt",
        grant: "token_exchange",
    });
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetime,
        scope: crate::scopes::join(&scopes),
        issued_token_type: Some(TT_JWT),
        pat_id: None,
        refresh_token: None,
    })
}

/// Issuing: a client disabled a moment ago (at any location) gets nothing. One D1 read.
async fn still_enabled<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &crate::model::Client,
) -> Result<(), Error> {
    client_auth::load_client_with(ctx, &client.id, client_auth::Freshness::Fresh)
        .await?
        .filter(|c| c.enabled)
        .map(|_| ())
        .ok_or_else(|| Error::InvalidClient(format!("client {} is disabled", client.id)))
}
