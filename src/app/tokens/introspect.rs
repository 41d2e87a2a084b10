//! RFC 7662 token introspection: the hot path.
//!
//! [`serve`] parses the request once ([`IntrospectionRequest`]), [`handle`] authenticates the
//! API resource and asks the shared decision ([`decision::decide`], also the gate's), and the
//! typed answer ([`IntrospectionResponse`]) is serialized once: as JSON, or signed (RFC 9701).

use super::active::{Decided, Decision};
use super::{decision, jwt, usage};
use crate::app::ctx::{Ctx, Outcome};
use crate::app::{client_auth, ratelimit};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::ApiResource;
use crate::oauth::introspection::{ActiveClaims, INACTIVE_JSON};
use crate::oauth::{IntrospectionRequest, IntrospectionResponse, ResponseFormat};
use crate::revocation::decide::{max_age_secs, Basis};
use crate::store::Backend;
use crate::usage::{Outcome as UseOutcome, UseKey, Via};
use std::rc::Rc;

/// What introspection decided, for the API resource that asked.
#[derive(Debug)]
pub struct Introspected {
    pub resource: Rc<ApiResource>,
    pub decided: Decided,
}

impl Introspected {
    /// The RFC 7662 answer (`iss`: a JWT's own, else `issuer`; `aud`: the RFC 8707 resource of
    /// a grant's access token, else the calling resource).
    pub fn response<'a>(&'a self, issuer: &'a str) -> IntrospectionResponse<'a> {
        match &self.decided.decision {
            Decision::Inactive => IntrospectionResponse::Inactive,
            Decision::Active(a) => IntrospectionResponse::Active(ActiveClaims {
                scope: &a.scopes,
                client_id: &a.client_id,
                sub: &a.sub,
                exp: a.exp,
                iat: a.iat,
                iss: a.iss.as_deref().unwrap_or(issuer),
                jti: &a.jti,
                name: a.name.as_deref(),
                aud: a.aud.as_deref().unwrap_or(&self.resource.id),
                rotated_at: a.grace.map(|g| g.0),
                grace_until: a.grace.map(|g| g.1),
            }),
        }
    }
}

/// `POST /oauth/introspect`: parse, [`handle`], serialize.
pub async fn serve<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    let request = IntrospectionRequest::parse(req)?;
    let done = handle(ctx, &request, ratelimit::client_ip(req)).await?;
    let mut response = match request.format {
        ResponseFormat::Json => json(ctx, &done),
        ResponseFormat::SignedJwt => {
            jwt::signed_introspection(ctx, &done.resource, &done.response(&ctx.cfg.issuer))?
        }
    };
    response.headers.push((
        "cache-control",
        cache_control(ctx.now, &done.decided.decision),
    ));
    Ok(Outcome {
        response,
        deferred: done.decided.deferred,
    })
}

/// Authenticates the API resource (`ip`: the caller's, for the rate limits), then decides on
/// the token.
pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    request: &IntrospectionRequest<'_>,
    ip: &str,
) -> Result<Introspected, Error> {
    let resource = client_auth::authenticate_resource(ctx, &request.client, ip).await?;
    let mut decided = decision::decide(ctx, &resource, request.token()?).await?;
    if let Some(id) = decided.used.take() {
        let outcome = match decided.decision {
            Decision::Active(_) => UseOutcome::Active,
            Decision::Inactive => UseOutcome::NoScope,
        };
        let key = UseKey {
            via: Via::Introspection,
            name: &resource.id,
            outcome,
        };
        usage::note_use(ctx, &id, &key, &mut decided.deferred);
    }
    Ok(Introspected { resource, decided })
}

/// How long the calling API may reuse the answer: an active one reflects every revocation up to
/// its basis's age, so it may be cached for the rest of the 5 s bound and never past the token's
/// `exp`; an inactive one for the bound (a token not yet visible here may work a moment later).
/// `private`: the answer is for the authenticated caller only.
fn cache_control(now: i64, decision: &Decision) -> String {
    let secs = match decision {
        Decision::Inactive => max_age_secs(false, Basis::SourceOfTruth, now, None),
        Decision::Active(a) => max_age_secs(true, a.basis, now, Some(a.exp)),
    };
    format!("private, max-age={secs}")
}

fn json<B>(ctx: &Ctx<'_, B>, done: &Introspected) -> Response {
    match done.response(&ctx.cfg.issuer) {
        IntrospectionResponse::Inactive => {
            let mut r = Response::empty(200);
            r.headers.push(("content-type", "application/json".into()));
            r.body = INACTIVE_JSON.to_vec();
            r
        }
        active @ IntrospectionResponse::Active(_) => Response::json(200, &active),
    }
}
