//! patgate's JWT access tokens in the token decision: local verification for introspection and
//! revocation (with a `jti` denylist in KV; a JWT exchanged from a PAT lives only as long as that
//! PAT, one of an authorization grant only as long as that grant), and RFC 9701 signed
//! introspection responses. Issuing them is the server's part.

use super::active::{client_holds, client_holds_with, Active, Source};
use crate::app::client_auth::Freshness;
use crate::app::ctx::Ctx;
use crate::app::revocations::{self, Check};
use crate::error::Error;
use crate::http::Response;
use crate::jose::{AccessTokenClaims, IntrospectionResponseClaims, SigningKeys};
use crate::model::{ApiResource, Client, Status};
use crate::oauth::introspection::{IntrospectionResponse, INTROSPECTION_JWT_MEDIA};
use crate::revocation::decide::Basis;
use crate::revocation::feed::Key;
use crate::revocation::push::{Change, Initiator, Notice};
use crate::revocation::snapshot::Subject;
use crate::store::Backend;
use crate::store::FeedAppend;
use std::rc::Rc;

pub use crate::jose::looks_like_jwt;

fn keys<'a, B>(ctx: &'a Ctx<'_, B>) -> Option<&'a Rc<SigningKeys>> {
    ctx.cfg.signing_keys.as_ref()
}

/// A verified, unrevoked JWT access token of ours whose client still holds it (enabled, the
/// same uid: [`client_holds`]), with what the answer rests on, or `None`. Its revocation is
/// looked up in KV's denylist and in the revocation feed (a `j` entry: KV at this location may
/// not have the denylist entry yet); a view of the feed too old to vouch asks D1.
pub async fn verify_active<B: Backend>(
    ctx: &Ctx<'_, B>,
    jwt: &str,
) -> Result<Option<(AccessTokenClaims, i64, Basis)>, Error> {
    let Some(keys) = keys(ctx) else {
        return Ok(None);
    };
    let Ok((claims, exp)) = keys.verify_access_token(jwt, ctx.now) else {
        return Ok(None);
    };
    if claims.iss != ctx.cfg.issuer {
        return Ok(None);
    }
    // The client it was issued to, as it was then (a JWT without the uid predates it: refused).
    let Some(uid) = claims.client_uid.as_deref() else {
        return Ok(None);
    };
    if ctx.backend.is_jti_revoked(&claims.jti).await? {
        return Ok(None);
    }
    let mut deferred = Vec::new();
    let subject = Subject {
        jti: Some(&claims.jti),
        // a grant's access token dies with it (its `a` entry)
        grant: claims.grant_id.as_deref(),
        ..Subject::default()
    };
    let basis = match revocations::check(ctx, &subject, &mut deferred).await {
        Check::Revoked => return Ok(None),
        Check::Active { age_ms } => Basis::View { age_ms },
        Check::AskSource => match revocations::fallback(ctx.isolate) {
            // at the cap of D1 fallbacks: answered as when D1 cannot be reached
            None => Basis::Unconfirmed,
            Some(_place) => match ctx.backend.jti_in_feed(&claims.jti, ctx.now_ms).await {
                Ok(true) => return Ok(None),
                Ok(false) => Basis::SourceOfTruth,
                Err(e) => {
                    ctx.isolate
                        .warn(format!("revocation unconfirmed, KV answered: {}", e.0));
                    Basis::Unconfirmed
                }
            },
        },
    };
    // The background refresh a fresh-enough view asked for is left to the next reference token:
    // a JWT's answer never waits for it.
    drop(deferred);
    let freshness = if basis == Basis::SourceOfTruth {
        Freshness::Fresh
    } else {
        Freshness::Cached
    };
    if !client_holds_with(ctx, &claims.client_id, Some(uid), freshness).await? {
        return Ok(None);
    }
    if let Some(pat_id) = &claims.pat_id {
        if !source_pat_active(ctx, pat_id, claims.pat_gen).await? {
            return Ok(None);
        }
    }
    if let Some(grant_id) = &claims.grant_id {
        if !source_grant_active(ctx, grant_id, uid).await? {
            return Ok(None);
        }
    }
    Ok(Some((claims, exp, basis)))
}

/// A JWT of an authorization grant lives only as long as that grant: not ended, and of the
/// client the JWT names (the same uid). One D1 read by primary key, so the end of a grant
/// refuses its JWTs at once everywhere (the feed's `a` entry refuses them without the read); an
/// ended grant is remembered by the isolate (that answer never changes).
async fn source_grant_active<B: Backend>(
    ctx: &Ctx<'_, B>,
    grant_id: &str,
    client_uid: &str,
) -> Result<bool, Error> {
    // (grant ids and PAT ids share the isolate's memory of dead sources: `a:` keeps them apart)
    let key = format!("a:{grant_id}");
    if ctx.isolate.is_dead_source(&key, None, ctx.now) {
        return Ok(false);
    }
    match ctx.backend.grant(grant_id).await? {
        Some(g) if g.revoked_at.is_none() => Ok(g.client_uid == client_uid),
        // unknown or ended: for good (a JWT naming another client's grant proves nothing of it)
        _ => {
            ctx.isolate.mark_dead_source(&key, None, ctx.now);
            Ok(false)
        }
    }
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
            rec.status(ctx.now) == Status::Active
                && Some(rec.generation) == generation
                && client_holds(ctx, &rec.client_id, rec.client_uid.as_deref()).await?
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
    let Some((claims, exp, basis)) = verify_active(ctx, jwt).await? else {
        return Ok(None);
    };
    let visible = claims.scope.intersection(&resource.scopes);
    if visible.is_empty() {
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
        basis,
        // a grant's JWT: its resource (the gate refuses it on any other)
        aud: claims
            .grant_id
            .as_ref()
            .and_then(|_| claims.aud.first().cloned()),
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
    if claims.client_uid.as_deref() != Some(client.uid.as_str()) {
        // Issued to an earlier client with this id (or before uids were carried): inactive
        // everywhere already, nothing to revoke (RFC 7009 2.2: no error for such a token).
        return Ok(());
    }
    // D1's feed first (the record every location reads within the bound), then KV's denylist.
    let stamp = ctx.feed_stamp();
    let entry = FeedAppend {
        key: Key::Jti(claims.jti.clone()),
        at_ms: stamp.at_ms,
        until_ms: stamp.until_jti(exp),
    };
    ctx.backend.append_feed(&[entry]).await?;
    ctx.backend.revoke_jti(&claims.jti, exp).await?;
    ctx.isolate
        .emit(crate::events::Event::revocation_notice(Notice {
            change: Change::JwtRevoked { jti: claims.jti },
            at: ctx.now,
            initiator: Initiator::User,
            reason: "revoked",
        }));
    Ok(())
}

/// RFC 9701: the typed introspection answer signed, for the calling API resource.
pub fn signed_introspection<B>(
    ctx: &Ctx<'_, B>,
    resource: &ApiResource,
    answer: &IntrospectionResponse<'_>,
) -> Result<Response, Error> {
    let keys = keys(ctx).ok_or_else(|| {
        Error::InvalidRequest("signed introspection responses are not configured".into())
    })?;
    let claims = IntrospectionResponseClaims {
        aud: &resource.id,
        iat: ctx.now,
        iss: &ctx.cfg.issuer,
        token_introspection: answer,
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
