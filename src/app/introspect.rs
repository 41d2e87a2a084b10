//! RFC 7662 token introspection: the hot path.
//!
//! The decision (reference token or JWT, expiry, revocation, disabled client, scope rule) is
//! [`decision::decide`], shared with the gate; this module authenticates the API resource and
//! serializes the decision.

use super::decision::{self, Active, Decision, Source};
use super::{client_auth, jwt_tokens, Ctx, Outcome};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::ApiResource;
use crate::store::Backend;
use serde::Serialize;

/// The RFC 7662 response. Inactive tokens serialize as exactly `{"active":false}`.
#[derive(Debug, Serialize, PartialEq)]
pub struct IntrospectionResponse<'a> {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<ActiveDetails<'a>>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ActiveDetails<'a> {
    pub scope: String,
    pub client_id: &'a str,
    pub sub: &'a str,
    pub exp: i64,
    pub iat: i64,
    pub iss: &'a str,
    pub token_type: &'static str,
    pub jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub aud: &'a str,
    /// A token rotated away with a grace period: when it was rotated, and until when it works
    /// (also its `exp`), so that APIs can warn its user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<i64>,
}

const INACTIVE: &[u8] = br#"{"active":false}"#;

fn inactive() -> Response {
    let mut r = Response::empty(200);
    r.headers.push(("content-type", "application/json".into()));
    r.body = INACTIVE.to_vec();
    r
}

pub async fn handle<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    let form = req.form()?;
    let resource = client_auth::authenticate_resource(
        ctx,
        client_auth::presented(req, &form)?,
        &super::ratelimit::client_ip(req),
    )
    .await?;
    let presented = form.require("token")?;

    let decided = decision::decide(ctx, &resource, presented).await?;
    let mut response = match &decided.decision {
        Decision::Active(a) => active(ctx, &resource, a),
        Decision::Inactive => inactive(),
    };
    response.log = decided.log;
    let mut outcome = Outcome {
        response,
        deferred: decided.deferred,
    };
    if jwt_tokens::wants_jwt_response(req) {
        let value = serde_json::from_slice(&outcome.response.body)
            .unwrap_or_else(|_| serde_json::json!({"active": false}));
        let log = outcome.response.log.take();
        outcome.response = jwt_tokens::signed_introspection(ctx, &resource, &value)?;
        outcome.response.log = log;
    }
    Ok(outcome)
}

/// An active answer, serialized as it always was for each kind of token.
fn active<B>(ctx: &Ctx<'_, B>, resource: &ApiResource, a: &Active) -> Response {
    match a.source {
        Source::Reference => Response::json(
            200,
            &IntrospectionResponse {
                active: true,
                details: Some(ActiveDetails {
                    scope: a.scope(),
                    client_id: &a.client_id,
                    sub: &a.sub,
                    exp: a.exp,
                    iat: a.iat,
                    iss: &ctx.cfg.issuer,
                    token_type: "Bearer",
                    jti: &a.jti,
                    name: a.name.as_deref(),
                    aud: &resource.id,
                    rotated_at: a.grace.map(|g| g.0),
                    grace_until: a.grace.map(|g| g.1),
                }),
            },
        ),
        Source::Jwt => Response::json(
            200,
            &serde_json::json!({
                "active": true,
                "scope": a.scope(),
                "client_id": a.client_id,
                "sub": a.sub,
                "exp": a.exp,
                "iat": a.iat,
                "iss": a.iss.as_deref().unwrap_or(&ctx.cfg.issuer),
                "token_type": "Bearer",
                "jti": a.jti,
                "aud": resource.id,
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_is_exactly_active_false() {
        let r = IntrospectionResponse {
            active: false,
            details: None,
        };
        assert_eq!(
            serde_json::to_string(&r).expect("json"),
            r#"{"active":false}"#
        );
        assert_eq!(INACTIVE, br#"{"active":false}"#);
    }
}
