//! JWT access tokens issued: the JWKS document that publishes the signing keys, and RFC 9068
//! access tokens signed for clients (client credentials, token exchange, and the authorization
//! code and refresh token grants of a client whose `token_format` is `jwt`). Checking them later is
//! the token decision's part ([`crate::app::tokens`]).

use crate::app::ctx::Ctx;
use crate::authz::records::AppGrant;
use crate::error::Error;
use crate::http::Response;
use crate::jose::{AccessTokenClaims, SigningKeys};
use crate::model::Client;
use crate::scopes::Scopes;
use crate::store::Backend;
use crate::token::random_id;
use std::rc::Rc;

fn keys<'a, B>(ctx: &'a Ctx<'_, B>) -> Option<&'a Rc<SigningKeys>> {
    ctx.cfg.signing_keys.as_ref()
}

pub fn jwks<B>(ctx: &Ctx<'_, B>) -> Response {
    let body = keys(ctx).map_or_else(|| r#"{"keys":[]}"#.to_owned(), |k| k.jwks_json());
    let mut r = Response::empty(200);
    r.headers
        .push(("content-type", "application/jwk-set+json".into()));
    // Public keys may be cached briefly; a new key is published before it signs (README).
    r.headers
        .push(("cache-control", "public, max-age=300".into()));
    r.body = body.into_bytes();
    r
}

/// The API resources owning `scopes` (the `aud` of a JWT access token).
async fn audiences<B: Backend>(ctx: &Ctx<'_, B>, scopes: &[String]) -> Result<Vec<String>, Error> {
    let resources = ctx.backend.list_resources().await?;
    let mut aud: Vec<String> = Vec::new();
    for r in &resources {
        if r.scopes.iter().any(|s| scopes.contains(s)) && !aud.contains(&r.id) {
            aud.push(r.id.clone());
        }
    }
    Ok(aud)
}

/// Signs an RFC 9068 access token for `client` and `subject`. `source`: the PAT (id, generation)
/// a token exchange minted it from; the JWT is active only while that PAT is.
pub async fn sign_access_token<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &Client,
    subject: &str,
    scopes: &[String],
    lifetime: i64,
    source: Option<(&str, i64)>,
) -> Result<String, Error> {
    let keys = keys(ctx).ok_or_else(|| {
        Error::InvalidRequest(
            "JWT access tokens are not available: no signing keys are configured".into(),
        )
    })?;
    // RFC 9068 requires an audience: scopes no API resource owns cannot make a JWT.
    let aud = audiences(ctx, scopes).await?;
    if aud.is_empty() {
        return Err(Error::InvalidScope(
            "no API resource owns the requested scopes".into(),
        ));
    }
    let claims = AccessTokenClaims {
        iss: ctx.cfg.issuer.clone(),
        sub: subject.to_owned(),
        aud,
        iat: ctx.now,
        jti: random_id().map_err(|e| Error::Internal(format!("randomness unavailable: {e}")))?,
        client_id: client.id.clone(),
        client_uid: Some(client.uid.clone()),
        scope: Scopes::from_trusted(scopes),
        pat_id: source.map(|(id, _)| id.to_owned()),
        pat_gen: source.map(|(_, generation)| generation),
        grant_id: None,
    };
    keys.sign_access_token(&claims, ctx.now + lifetime)
        .map_err(|e| Error::Internal(format!("signing failed: {e}")))
}

/// Signs an RFC 9068 access token of authorization grant `g` for `client`: `aud` the grant's
/// resource, `sub` its user, and its id (`grant_id`): the JWT is active only while the grant is.
pub fn sign_grant_access_token<B>(
    ctx: &Ctx<'_, B>,
    client: &Client,
    g: &AppGrant,
    scopes: &[String],
    lifetime: i64,
) -> Result<String, Error> {
    let keys = keys(ctx).ok_or_else(|| {
        Error::Internal("the client's JWT access tokens need signing keys; none are set".into())
    })?;
    let claims = AccessTokenClaims {
        iss: ctx.cfg.issuer.clone(),
        sub: g.subject.clone(),
        aud: vec![g.audience.resource.clone()],
        iat: ctx.now,
        jti: random_id().map_err(|e| Error::Internal(format!("randomness unavailable: {e}")))?,
        client_id: client.id.clone(),
        client_uid: Some(client.uid.clone()),
        scope: Scopes::from_trusted(scopes),
        pat_id: None,
        pat_gen: None,
        grant_id: Some(g.id.clone()),
    };
    keys.sign_access_token(&claims, ctx.now + lifetime)
        .map_err(|e| Error::Internal(format!("signing failed: {e}")))
}
