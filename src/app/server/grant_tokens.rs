//! What the authorization code and refresh token grants share: the client's profile and the
//! access token of a grant (a reference token naming the grant, or an RFC 9068 JWT carrying its
//! id for a client whose `token_format` is `jwt`; its audience the grant's resource, living the
//! client's `token_lifetime`).

use crate::app::clients::{self, Freshness};
use crate::app::ctx::Ctx;
use crate::app::tokens::{self, NewToken};
use crate::authz::records::{AppGrant, ClientProfile};
use crate::error::Error;
use crate::events::Event;
use crate::model::{Client, TokenFormat};
use crate::oauth::TokenResponse;
use crate::store::Backend;
use crate::token::TokenKind;
use std::rc::Rc;

/// The authorization-code side of an authenticated client.
pub(super) async fn client_profile<B: Backend>(
    ctx: &Ctx<'_, B>,
    id: &str,
) -> Result<Rc<ClientProfile>, Error> {
    clients::stored(ctx, id, Freshness::Cached)
        .await?
        .map(|c| c.profile)
        .ok_or_else(|| Error::InvalidClient(format!("unknown client {id}")))
}

/// Issues an access token of grant `g` with `scopes` (`grant`: the grant type, for the event).
pub(super) async fn access_token<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &Client,
    g: &AppGrant,
    scopes: Vec<String>,
    grant: &'static str,
) -> Result<TokenResponse, Error> {
    let lifetime = client.token_lifetime.max(1);
    let scope = crate::scopes::join(&scopes);
    if client.token_format == TokenFormat::Jwt {
        let jwt = super::jwt::sign_grant_access_token(ctx, client, g, &scopes, lifetime)?;
        ctx.isolate.emit(Event::TokenIssued {
            client_id: client.id.clone(),
            sub: g.subject.clone(),
            format: "jwt",
            grant,
        });
        return Ok(response(jwt, lifetime, scope));
    }
    let new = NewToken {
        kind: TokenKind::Access,
        subject: g.subject.clone(),
        client_id: client.id.clone(),
        name: None,
        scopes,
        expires_at: ctx.now + lifetime,
        client_uid: client.uid.clone(),
        allow_self_rotation: false,
        revoke_on_reuse: false,
        grant_id: Some(g.id.clone()),
        audience: Some(g.audience.resource.clone()),
    };
    let (_, token) = tokens::issue(ctx, new).await?;
    ctx.isolate.emit(Event::TokenIssued {
        client_id: client.id.clone(),
        sub: g.subject.clone(),
        format: "reference",
        grant,
    });
    Ok(response(token.expose_secret().to_owned(), lifetime, scope))
}

fn response(access_token: String, lifetime: i64, scope: String) -> TokenResponse {
    TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetime,
        scope,
        issued_token_type: None,
        pat_id: None,
        refresh_token: None,
    }
}

pub(super) fn rng(e: getrandom::Error) -> Error {
    Error::Internal(format!("randomness unavailable: {e}"))
}
