//! `POST /oauth/token` (RFC 6749 section 3.2).
//!
//! Grants: `client_credentials` for confidential clients (reference or JWT access tokens, per
//! client), and RFC 8693 token exchange (see `exchange`).

use super::{client_auth, ratelimit, Ctx};
use crate::error::Error;
use crate::http::{Form, Request, Response};
use crate::model::{Client, TokenFormat};
use crate::store::{Backend, Limit};
use crate::token::TokenKind;
use serde::Serialize;

pub const CLIENT_CREDENTIALS: &str = "client_credentials";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// RFC 6749 section 5.1 (plus RFC 8693 `issued_token_type`).
#[derive(Serialize, Debug)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

pub async fn handle<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let ip = ratelimit::client_ip(req);
    ratelimit::count(ctx, Limit::TokenEndpointPerIp, &ip).await?;
    let form = req.form()?;
    let presented = client_auth::presented(req, &form)?;
    let grant_type = form.require("grant_type")?;
    let body = match grant_type {
        CLIENT_CREDENTIALS => client_credentials(ctx, presented, &form, &ip).await?,
        TOKEN_EXCHANGE => super::exchange::handle(ctx, presented, &form, &ip).await?,
        other => {
            return Err(Error::UnsupportedGrantType(format!(
                "grant_type {other} is not supported"
            )))
        }
    };
    Ok(Response::json(200, &body))
}

/// Requested scopes: a subset of `allowed`, or all of `allowed` when `scope` is absent.
pub fn requested_scopes(form: &Form, allowed: &[String]) -> Result<Vec<String>, Error> {
    let Some(requested) = form.get("scope") else {
        if allowed.is_empty() {
            return Err(Error::InvalidScope("the client has no scopes".into()));
        }
        return Ok(allowed.to_vec());
    };
    let mut out: Vec<String> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(Error::InvalidScope(format!("scope {s} is not allowed")));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if out.is_empty() {
        return Err(Error::InvalidScope("scope is empty".into()));
    }
    Ok(out)
}

async fn client_credentials<B: Backend>(
    ctx: &Ctx<'_, B>,
    presented: client_auth::Presented,
    form: &Form,
    ip: &str,
) -> Result<TokenResponse, Error> {
    let client =
        client_auth::authenticate_client(ctx, presented, client_auth::Freshness::Fresh, ip).await?;
    if client.secret.is_none() {
        return Err(Error::UnauthorizedClient(
            "a public client cannot use client_credentials".into(),
        ));
    }
    let scopes = requested_scopes(form, &client.allowed_scopes)?;
    issue_access_token(ctx, &client, &client.id, scopes, client.token_lifetime).await
}

/// Issues an access token to `client` for `subject`, in the client's configured format.
pub async fn issue_access_token<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &Client,
    subject: &str,
    scopes: Vec<String>,
    lifetime: i64,
) -> Result<TokenResponse, Error> {
    let lifetime = lifetime.max(1);
    let scope = scopes.join(" ");
    let access_token = match client.token_format {
        TokenFormat::Jwt => {
            super::jwt_tokens::sign_access_token(ctx, client, subject, &scopes, lifetime, None)
                .await?
        }
        TokenFormat::Reference => {
            let new = super::reference::NewToken {
                kind: TokenKind::Access,
                subject: subject.to_owned(),
                client_id: client.id.clone(),
                name: None,
                scopes,
                expires_at: ctx.now + lifetime,
                client_uid: client.uid.clone(),
                allow_self_rotation: false,
                revoke_on_reuse: false,
            };
            let (_, token, _) = super::reference::issue(ctx, new).await?;
            token.expose_secret().to_owned()
        }
    };
    ctx.isolate.emit(super::events::Event::TokenIssued {
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
    })
}
