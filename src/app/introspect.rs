//! RFC 7662 token introspection: the hot path.
//!
//! Steady state for an active PAT: the API resource comes from the isolate cache, the token is
//! checked by its checksum, then exactly one KV read; last use is handed to `wait_until`
//! at most once per token per isolate per `last_used_coalesce_secs`. Garbage never reaches
//! storage; a token known to be inactive (unknown to D1, revoked, expired) is remembered by
//! the isolate.

use super::{client_auth, jwt_tokens, Ctx, Deferred, Outcome};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::{ApiResource, Grant};
use crate::store::Backend;
use crate::token::{PlainToken, TokenKind};
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
}

const INACTIVE: &[u8] = br#"{"active":false}"#;

fn inactive() -> Outcome {
    let mut r = Response::empty(200);
    r.headers.push(("content-type", "application/json".into()));
    r.body = INACTIVE.to_vec();
    r.into()
}

pub async fn handle<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    let form = req.form()?;
    let resource =
        client_auth::authenticate_resource(ctx, client_auth::presented(req, &form)?).await?;
    let presented = form.require("token")?;

    let mut outcome = if let Ok(token) = PlainToken::parse(presented) {
        reference_token(ctx, &resource, &token).await?
    } else if jwt_tokens::looks_like_jwt(presented) {
        match jwt_tokens::introspect(ctx, &resource, presented).await? {
            Some(v) => Response::json(200, &v).into(),
            None => inactive(),
        }
    } else {
        inactive()
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

async fn reference_token<B: Backend>(
    ctx: &Ctx<'_, B>,
    resource: &ApiResource,
    token: &PlainToken,
) -> Result<Outcome, Error> {
    let hash = token.hash();
    if ctx.isolate.is_known_inactive(&hash, ctx.now) {
        return Ok(inactive());
    }

    let mut deferred = Vec::new();
    let mut log = None;
    let grant = match ctx.backend.get_grant(&hash).await {
        Ok(Some(g)) => Some(g),
        Ok(None) => from_source_of_truth(ctx, token, &mut deferred).await?,
        Err(e) => {
            // KV is only a cache: answer from D1 rather than fail, and do not write back.
            log = Some(format!("KV read failed, answered from D1: {}", e.0));
            let g = from_source_of_truth(ctx, token, &mut deferred).await?;
            deferred.clear();
            g
        }
    };
    let Some(grant) = grant.filter(|g| g.exp > ctx.now && g.kind == token.kind()) else {
        let mut o = inactive();
        o.response.log = log;
        return Ok(o);
    };

    // IdentityServer's rule: a resource sees only its own scopes, and a token without any of
    // them is inactive for it.
    let visible: Vec<&str> = grant
        .scopes
        .iter()
        .map(String::as_str)
        .filter(|s| resource.scopes.iter().any(|r| r == s))
        .collect();
    if visible.is_empty() {
        return Ok(inactive());
    }
    // Tokens of a disabled or deleted client stop working within the registry cache lifetime.
    if !client_auth::load_client(ctx, &grant.client_id)
        .await?
        .is_some_and(|c| c.enabled)
    {
        return Ok(inactive());
    }

    if grant.kind == TokenKind::Pat {
        if let Some(uses) =
            ctx.isolate
                .note_use(&grant.id, ctx.now, ctx.cfg.last_used_coalesce_secs)
        {
            deferred.push(Deferred::RecordUse {
                token_id: grant.id.clone(),
                at: ctx.now,
                uses,
            });
        }
    }

    let body = IntrospectionResponse {
        active: true,
        details: Some(ActiveDetails {
            scope: visible.join(" "),
            client_id: &grant.client_id,
            sub: &grant.sub,
            exp: grant.exp,
            iat: grant.iat,
            iss: &ctx.cfg.issuer,
            token_type: "Bearer",
            jti: &grant.id,
            name: grant.name.as_deref(),
            aud: &resource.id,
        }),
    };
    let mut response = Response::json(200, &body);
    response.log = log;
    Ok(Outcome { response, deferred })
}

/// KV did not have the grant: ask D1. An active token is written back to KV after the response;
/// an inactive or unknown one is remembered by the isolate (that answer never changes).
async fn from_source_of_truth<B: Backend>(
    ctx: &Ctx<'_, B>,
    token: &PlainToken,
    deferred: &mut Vec<Deferred>,
) -> Result<Option<Grant>, Error> {
    let hash = token.hash();
    match ctx.backend.token_by_hash(&hash).await? {
        Some(rec) if rec.status(ctx.now) == crate::model::Status::Active => {
            let grant = rec.grant();
            deferred.push(Deferred::CacheGrant {
                hash,
                grant: grant.clone(),
                until: (ctx.now + ctx.cfg.grant_cache_secs).min(grant.exp),
            });
            Ok(Some(grant))
        }
        _ => {
            ctx.isolate.mark_inactive(hash, ctx.now);
            Ok(None)
        }
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
