//! `/admin/webhooks`: operators register webhook endpoints (URL, event types; the signing
//! secret shown once), read, delete them, and rotate a secret with a grace period for the old
//! one. The caller in `admin` has authorized the request and logs an `admin.change` event for
//! every write.

use super::checks::written;
use crate::app::ctx::Ctx;
use crate::app::webhooks::MAX_ENDPOINTS;
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::store::{Backend, WebhookEndpoint};
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
    event_types: Vec<String>,
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
struct View<'a> {
    id: &'a str,
    url: &'a str,
    event_types: &'a [String],
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_valid_until: Option<i64>,
}

fn view(w: &WebhookEndpoint) -> View<'_> {
    View {
        id: &w.id,
        url: &w.url,
        event_types: &w.event_types,
        created_at: w.created_at,
        previous_secret_valid_until: w.previous_secret.as_ref().map(|p| p.1),
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
    webhook::check_event_types(&body.event_types).map_err(Error::InvalidRequest)?;
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
        event_types: body.event_types,
        secret,
        previous_secret: None,
        created_at: ctx.now,
    };
    written(ctx.backend.create_webhook(&w).await?)?;
    ctx.isolate.forget_webhooks();
    let mut v = serde_json::to_value(view(&w)).unwrap_or_default();
    // Shown this once: no read returns it again.
    v["secret"] = json!(w.secret.expose_secret());
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
