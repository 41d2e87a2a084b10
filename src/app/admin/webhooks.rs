//! `/admin/webhooks`: operators register webhook endpoints (URL, event types; the signing
//! secret shown once) or Security Event Token receivers (`"format": "secevent"`, an `audience`,
//! `token_hash` consent), read, delete them, and rotate a secret with a grace period for the old
//! one. The caller in `admin` has authorized the request and logs an `admin.change` event for
//! every write.

use super::checks::written;
use crate::app::ctx::Ctx;
use crate::app::webhooks::MAX_ENDPOINTS;
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::revocation::push::Receiver;
use crate::store::{Backend, EndpointFormat, WebhookEndpoint};
use crate::webhook::{self, WebhookSecret};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Default grace of a rotated-away secret (it keeps signing alongside the new one), and the
/// longest.
const DEFAULT_SECRET_GRACE_SECS: i64 = 86_400;
const MAX_SECRET_GRACE_SECS: i64 = 7 * 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
    /// Standard Webhooks endpoints only.
    event_types: Option<Vec<String>>,
    /// `standard` (the default) or `secevent` (a Security Event Token receiver).
    format: Option<String>,
    /// A receiver's `aud` (required with `secevent`, refused otherwise).
    audience: Option<String>,
    /// Whether a receiver's SETs carry token hashes (`secevent` only; default false).
    token_hash: Option<bool>,
}

/// Longest audience a receiver may register.
const MAX_AUDIENCE_LEN: usize = 512;

/// The endpoint's format and event types from a registration, or why it is refused.
fn format_of(body: &NewWebhook) -> Result<(EndpointFormat, Vec<String>), Error> {
    let bad = |m: &str| Err(Error::InvalidRequest(m.to_owned()));
    match body.format.as_deref() {
        None | Some("standard") => {
            if body.audience.is_some() || body.token_hash.is_some() {
                return bad("audience and token_hash are for format \"secevent\" only");
            }
            let types = body.event_types.clone().unwrap_or_default();
            webhook::check_event_types(&types).map_err(Error::InvalidRequest)?;
            Ok((EndpointFormat::Standard, types))
        }
        Some("secevent") => {
            if body.event_types.is_some() {
                return bad("a secevent receiver gets every revocation: no event_types");
            }
            let audience = body.audience.clone().unwrap_or_default();
            if audience.is_empty()
                || audience.len() > MAX_AUDIENCE_LEN
                || audience.chars().any(char::is_control)
            {
                return bad("a secevent receiver needs an audience (1 to 512 characters)");
            }
            let receiver = Receiver {
                audience,
                token_hash: body.token_hash.unwrap_or(false),
            };
            Ok((EndpointFormat::SecEvent(receiver), Vec::new()))
        }
        Some(_) => bad("format must be \"standard\" or \"secevent\""),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateSecret {
    grace_seconds: Option<i64>,
}

/// Every webhook admin body type (fuzzing and property tests).
#[cfg(test)]
pub(super) fn parse_bodies(body: &[u8]) {
    use crate::http::parse_json_object as p;
    let _ = p::<NewWebhook>(body);
    let _ = p::<RotateSecret>(body);
}

/// What reads show of an endpoint: never its secret.
#[derive(Serialize)]
pub(super) struct View<'a> {
    id: &'a str,
    url: &'a str,
    event_types: &'a [String],
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_valid_until: Option<i64>,
    /// Delivered to (false: disabled after a run of failures, until enabled again).
    enabled: bool,
    /// Since when every attempt failed (absent: the last attempt succeeded, or none failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    failing_since: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<&'a str>,
    /// `secevent` for a Security Event Token receiver (a standard endpoint shows none).
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audience: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_hash: Option<bool>,
}

pub(super) fn view(w: &WebhookEndpoint) -> View<'_> {
    let (format, audience, token_hash) = match &w.format {
        EndpointFormat::Standard => (None, None, None),
        EndpointFormat::SecEvent(r) => (
            Some("secevent"),
            Some(r.audience.as_str()),
            Some(r.token_hash),
        ),
    };
    View {
        id: &w.id,
        url: &w.url,
        event_types: &w.event_types,
        created_at: w.created_at,
        previous_secret_valid_until: w.previous_secret.as_ref().map(|p| p.1),
        enabled: !w.health.is_disabled(),
        failing_since: w.health.failing_since,
        disabled_at: w.health.disabled_at,
        disabled_reason: w.health.disabled_reason.as_deref(),
        format,
        audience,
        token_hash,
    }
}

fn rng(e: getrandom::Error) -> Error {
    Error::Internal(format!("randomness unavailable: {e}"))
}

/// The table of `/admin/webhooks...`.
pub(super) async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    rest: &[&str],
) -> Result<Response, Error> {
    match (rest, req.method) {
        ([], Method::Get) => {
            let all = ctx.backend.list_webhooks().await?;
            let views: Vec<_> = all.iter().map(view).collect();
            Ok(Response::json(200, &json!({ "webhooks": views })))
        }
        ([], Method::Post) => create(ctx, req).await,
        ([], _) => Err(Error::MethodNotAllowed("GET, POST")),
        ([id], Method::Get) => {
            let w = ctx.backend.webhook(id).await?.ok_or(Error::NotFound)?;
            Ok(Response::json(200, &view(&w)))
        }
        ([id], Method::Delete) => {
            written(ctx.backend.delete_webhook(id).await?)?;
            ctx.isolate.forget_webhooks();
            Ok(Response::empty(204))
        }
        ([_], _) => Err(Error::MethodNotAllowed("GET, DELETE")),
        ([id, "rotate-secret"], Method::Post) => rotate_secret(ctx, req, id).await,
        ([_, "rotate-secret"], _) => Err(Error::MethodNotAllowed("POST")),
        _ => Err(Error::NotFound),
    }
}

async fn create<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Response, Error> {
    let body: NewWebhook = req.json()?;
    webhook::check_url(&body.url, ctx.cfg.webhooks.allow_http_localhost)
        .map_err(Error::InvalidRequest)?;
    let (format, event_types) = format_of(&body)?;
    if ctx.backend.list_webhooks().await?.len() >= MAX_ENDPOINTS {
        return Err(Error::Conflict(format!(
            "at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
        )));
    }
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(rng)?;
    let secret = WebhookSecret::generate().map_err(rng)?;
    let w = WebhookEndpoint {
        id: format!("wh_{}", crate::encoding::hex(&id)),
        url: body.url,
        event_types,
        secret,
        previous_secret: None,
        created_at: ctx.now,
        health: crate::webhook::health::Health::default(),
        format,
    };
    written(ctx.backend.create_webhook(&w).await?)?;
    ctx.isolate.forget_webhooks();
    let mut v = serde_json::to_value(view(&w)).unwrap_or_default();
    // Shown this once: no read returns it again (a SET receiver verifies with the JWKS instead).
    if w.format == EndpointFormat::Standard {
        v["secret"] = json!(w.secret.expose_secret());
    }
    Ok(Response::json(201, &v).with_header("location", format!("/admin/webhooks/{}", w.id)))
}

async fn rotate_secret<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    let r: RotateSecret = if req.body.is_empty() {
        RotateSecret::default()
    } else {
        req.json()?
    };
    let grace = r.grace_seconds.unwrap_or(DEFAULT_SECRET_GRACE_SECS);
    if !(0..=MAX_SECRET_GRACE_SECS).contains(&grace) {
        return Err(Error::InvalidRequest(format!(
            "grace_seconds must be 0 to {MAX_SECRET_GRACE_SECS}"
        )));
    }
    let mut w = ctx.backend.webhook(id).await?.ok_or(Error::NotFound)?;
    let fresh = WebhookSecret::generate().map_err(rng)?;
    let old = std::mem::replace(&mut w.secret, fresh);
    w.previous_secret = (grace > 0).then_some((old, ctx.now + grace));
    written(ctx.backend.update_webhook_secrets(&w).await?)?;
    Ok(Response::json(
        200,
        &json!({
            "secret": w.secret.expose_secret(),
            "previous_secret_valid_until": w.previous_secret.as_ref().map(|p| p.1),
        }),
    ))
}
