//! Authenticating the signed-in user on the management API: a JWT from the organisation's
//! identity provider, in `Authorization: Bearer` or Cloudflare Access's `Cf-Access-Jwt-Assertion`.

use super::isolate::Lookup;
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::http::Request;
use crate::jose::{verify_user_jwt, AuthFailure, Jwks};
use crate::store::Backend;
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
    let stale = match ctx.isolate.lookup_jwks(ctx.now) {
        Lookup::Fresh(j) => return Ok(j),
        Lookup::Stale(j) => j,
        Lookup::Miss => None,
    };
    match fetch_jwks(ctx, url).await {
        Ok(jwks) => {
            ctx.isolate.store_jwks(ctx.now, jwks.clone());
            Ok(Some(jwks))
        }
        // stale-if-error: keep the keys we had (bounded by JWKS_MAX_STALE_SECS)
        Err(_) if stale.is_some() => Ok(stale),
        Err(e) => Err(e),
    }
}

async fn fetch_jwks<B: Backend>(ctx: &Ctx<'_, B>, url: &str) -> Result<Rc<Jwks>, Error> {
    let text = ctx.backend.fetch_jwks(url).await?;
    Jwks::parse(&text)
        .map(Rc::new)
        .map_err(|e| Error::Unavailable(format!("identity provider JWKS unusable: {e:?}")))
}
