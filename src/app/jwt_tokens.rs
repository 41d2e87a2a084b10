//! JWT access tokens in the service: the JWKS document, signing for clients, local verification
//! for introspection and revocation (with a `jti` denylist in KV), and RFC 9701 signed
//! introspection responses.

use super::decision::{Active, Source};
use super::{client_auth, Ctx};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::jose::{AccessTokenClaims, IntrospectionResponseClaims, SigningKeys};
use crate::model::{ApiResource, Client};
use crate::store::Backend;
use crate::token::random_id;
use std::rc::Rc;

pub use crate::jose::INTROSPECTION_MEDIA_TYPE as INTROSPECTION_JWT_MEDIA;

pub use crate::jose::looks_like_jwt;

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
        scope: crate::scopes::Scopes::from_trusted(scopes),
        pat_id: source.map(|(id, _)| id.to_owned()),
        pat_gen: source.map(|(_, generation)| generation),
    };
    keys.sign_access_token(&claims, ctx.now + lifetime)
        .map_err(|e| Error::Internal(format!("signing failed: {e}")))
}

/// A verified, unrevoked JWT access token of ours, or `None`.
pub async fn verify_active<B: Backend>(
    ctx: &Ctx<'_, B>,
    jwt: &str,
) -> Result<Option<(AccessTokenClaims, i64)>, Error> {
    let Some(keys) = keys(ctx) else {
        return Ok(None);
    };
    let Ok((claims, exp)) = keys.verify_access_token(jwt, ctx.now) else {
        return Ok(None);
    };
    if claims.iss != ctx.cfg.issuer || ctx.backend.is_jti_revoked(&claims.jti).await? {
        return Ok(None);
    }
    if let Some(pat_id) = &claims.pat_id {
        if !source_pat_active(ctx, pat_id, claims.pat_gen).await? {
            return Ok(None);
        }
    }
    Ok(Some((claims, exp)))
}

/// A JWT exchanged from a PAT lives only as long as that PAT: active (not revoked, not expired),
/// not rotated since (same generation), and its client enabled. One D1 read by primary key; a
/// dead source is remembered by the isolate (that answer never changes).
async fn source_pat_active<B: Backend>(
    ctx: &Ctx<'_, B>,
    pat_id: &str,
    generation: Option<i64>,
) -> Result<bool, Error> {
    if ctx.isolate.is_dead_source(pat_id, generation, ctx.now) {
        return Ok(false);
    }
    let alive = match ctx.backend.token_by_id(pat_id).await? {
        Some(rec) => {
            rec.status(ctx.now) == crate::model::Status::Active
                && Some(rec.generation) == generation
                && client_auth::load_client(ctx, &rec.client_id)
                    .await?
                    .is_some_and(|c| {
                        c.enabled && super::decision::same_uid(rec.client_uid.as_deref(), &c.uid)
                    })
        }
        None => false,
    };
    if !alive {
        ctx.isolate.mark_dead_source(pat_id, generation, ctx.now);
    }
    Ok(alive)
}

/// A JWT access token as `resource` may see it (the shared decision's JWT half): the same
/// rules as reference tokens.
pub async fn introspect<B: Backend>(
    ctx: &Ctx<'_, B>,
    resource: &ApiResource,
    jwt: &str,
) -> Result<Option<Active>, Error> {
    let Some((claims, exp)) = verify_active(ctx, jwt).await? else {
        return Ok(None);
    };
    let visible = claims.scope.intersection(&resource.scopes);
    if visible.is_empty()
        || !client_auth::load_client(ctx, &claims.client_id)
            .await?
            .is_some_and(|c| c.enabled)
    {
        return Ok(None);
    }
    Ok(Some(Active {
        source: Source::Jwt,
        sub: claims.sub,
        client_id: claims.client_id,
        scopes: visible,
        jti: claims.jti,
        exp,
        iat: claims.iat,
        iss: Some(claims.iss),
        name: None,
        grace: None,
    }))
}

/// Revokes a JWT access token presented to RFC 7009 by `client`.
pub async fn revoke<B: Backend>(ctx: &Ctx<'_, B>, client: &Client, jwt: &str) -> Result<(), Error> {
    let Some(keys) = keys(ctx) else {
        return Ok(());
    };
    let Ok((claims, exp)) = keys.verify_access_token(jwt, ctx.now) else {
        return Ok(()); // invalid or already expired: nothing to do (RFC 7009 2.2)
    };
    if claims.client_id != client.id {
        return Err(Error::UnauthorizedClient(
            "the token was not issued to this client".into(),
        ));
    }
    ctx.backend.revoke_jti(&claims.jti, exp).await?;
    Ok(())
}

/// Whether `Accept` asks for an RFC 9701 signed answer: a media range that is exactly
/// `application/token-introspection+jwt` (case-insensitive) with a weight above zero
/// (RFC 9110 12.4.2: `q=0` means "not acceptable"). Wildcards do not ask for it.
pub fn wants_jwt_response(req: &Request) -> bool {
    req.get_header("accept")
        .ok()
        .flatten()
        .is_some_and(accepts_introspection_jwt)
}

fn accepts_introspection_jwt(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case(INTROSPECTION_JWT_MEDIA) {
            return false;
        }
        let mut weight = 1.0_f64;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    // A malformed weight counts as 0: not a request for this type.
                    weight = parse_qvalue(v.trim()).unwrap_or(0.0);
                }
            }
        }
        weight > 0.0
    })
}

/// RFC 9110 12.4.2 `qvalue`: `0[.ddd]` or `1[.000]`.
fn parse_qvalue(v: &str) -> Option<f64> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let ok = matches!(int, "0" | "1")
        && frac.len() <= 3
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || frac.bytes().all(|b| b == b'0'));
    ok.then(|| v.parse().ok()).flatten()
}

/// RFC 9701: the introspection result signed, for the calling API resource.
pub fn signed_introspection<B>(
    ctx: &Ctx<'_, B>,
    resource: &ApiResource,
    result: &serde_json::Value,
) -> Result<Response, Error> {
    let keys = keys(ctx).ok_or_else(|| {
        Error::InvalidRequest("signed introspection responses are not configured".into())
    })?;
    let claims = IntrospectionResponseClaims {
        aud: &resource.id,
        iat: ctx.now,
        iss: &ctx.cfg.issuer,
        token_introspection: result,
    };
    let jwt = keys
        .sign_introspection(&claims)
        .map_err(|e| Error::Internal(format!("signing failed: {e}")))?;
    let mut r = Response::empty(200);
    r.headers
        .push(("content-type", INTROSPECTION_JWT_MEDIA.into()));
    r.body = jwt.into_bytes();
    Ok(r)
}

#[cfg(test)]
mod accept_tests {
    use super::accepts_introspection_jwt as accepts;

    #[test]
    fn accept_negotiation_honours_q() {
        assert!(accepts("application/token-introspection+jwt"));
        assert!(accepts("Application/Token-Introspection+JWT"));
        assert!(accepts(
            "application/json;q=0.5, application/token-introspection+jwt"
        ));
        assert!(accepts("application/token-introspection+jwt; q=0.001"));
        assert!(accepts(
            "application/token-introspection+jwt;charset=utf-8;q=1.000"
        ));
        assert!(!accepts("application/token-introspection+jwt;q=0"));
        assert!(!accepts("application/token-introspection+jwt; Q=0.000"));
        assert!(!accepts(
            "application/json, application/token-introspection+jwt;q=0"
        ));
        assert!(!accepts("application/token-introspection+jwt;q=abc"));
        assert!(!accepts("application/token-introspection+jwt;q=1.5"));
        assert!(!accepts("application/token-introspection+jwtx"));
        assert!(!accepts("*/*"));
        assert!(!accepts("application/json"));
        assert!(!accepts(""));
    }
}
