//! Authenticating the signed-in user on the management API: a JWT from the organisation's
//! identity provider, in `Authorization: Bearer` or Cloudflare Access's `Cf-Access-Jwt-Assertion`.

use super::Ctx;
use crate::error::Error;
use crate::http::Request;
use crate::store::Backend;
use crate::user_auth::{verify_user_jwt, AuthFailure, Jwks};
use std::rc::Rc;

/// Returns the user (`sub`) or a 401 with an RFC 6750 challenge.
pub async fn authenticate<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<String, Error> {
    let jwt = match req.bearer()? {
        Some(t) => t,
        None => req
            .get_header("cf-access-jwt-assertion")?
            .ok_or(Error::MissingBearer)?,
    };
    verify(ctx, jwt).await
}

/// Verifies an identity-provider JWT and returns its `sub`.
pub async fn verify<B: Backend>(ctx: &Ctx<'_, B>, jwt: &str) -> Result<String, Error> {
    let fetched = fetched_jwks(ctx).await?;
    verify_user_jwt(&ctx.cfg.user_auth, fetched.as_deref(), jwt, ctx.now).map_err(|f| {
        Error::InvalidToken {
            description: if f == AuthFailure::Expired {
                "the token expired"
            } else {
                "the token is not valid"
            },
            cause: f.as_str().to_owned(),
        }
    })
}

async fn fetched_jwks<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Option<Rc<Jwks>>, Error> {
    let Some(url) = ctx.cfg.user_auth.jwks_url.as_deref() else {
        return Ok(None);
    };
    if let Some(j) = ctx.isolate.cached_jwks(ctx.now) {
        return Ok(Some(j));
    }
    let text = ctx.backend.fetch_jwks(url).await?;
    let jwks = Rc::new(
        Jwks::parse(&text)
            .map_err(|e| Error::Unavailable(format!("identity provider JWKS unusable: {e:?}")))?,
    );
    ctx.isolate.store_jwks(ctx.now, jwks.clone());
    Ok(Some(jwks))
}
