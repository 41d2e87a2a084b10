//! RFC 7662 token introspection: the hot path.
//!
//! [`serve`] parses the request once ([`IntrospectionRequest`]), [`handle`] authenticates the
//! API resource and asks the shared decision ([`decision::decide`], also the gate's), and the
//! typed answer ([`IntrospectionResponse`]) is serialized once: as JSON, or signed (RFC 9701).

use super::active::{Decided, Decision};
use super::{decision, jwt};
use crate::app::ctx::{Ctx, Outcome};
use crate::app::{client_auth, ratelimit};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::ApiResource;
use crate::oauth::introspection::{ActiveClaims, INACTIVE_JSON};
use crate::oauth::{IntrospectionRequest, IntrospectionResponse, ResponseFormat};
use crate::store::Backend;
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
    let response = match request.format {
        ResponseFormat::Json => json(ctx, &done),
        ResponseFormat::SignedJwt => {
            jwt::signed_introspection(ctx, &done.resource, &done.response(&ctx.cfg.issuer))?
        }
    };
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
    let decided = decision::decide(ctx, &resource, request.token()?).await?;
    Ok(Introspected { resource, decided })
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
