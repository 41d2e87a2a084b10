//! `/admin/webhooks/{id}/deliveries...`, `/ping` and `/enable`: what operators expect of a
//! webhook sender (GitHub's and Stripe's): the endpoint's recent delivery attempts (event, time,
//! attempt, status, latency, error), one attempt with its payload, sending a delivery again, and
//! a test ping, and enabling an endpoint disabled after a run of failures. The caller in `admin`
//! has authorized the request and logs an `admin.change` event for every write.

use super::checks::written;
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::store::{Backend, WebhookEndpoint};

use crate::store_usage::Attempt;
use crate::webhook::health::Health;
use crate::webhook::{self, Delivery};
use serde::Serialize;
use serde_json::json;

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;

/// `/admin/webhooks/{id}/...` (the segments after the endpoint id), for endpoint `w`.
pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    w: &WebhookEndpoint,
    rest: &[&str],
) -> Result<Response, Error> {
    match (rest, req.method) {
        (["deliveries"], Method::Get) => list(ctx, req, w).await,
        (["deliveries", id], Method::Get) => {
            let a = attempt(ctx, w, id).await?;
            Ok(Response::json(200, &view(&a, true)))
        }
        (["deliveries", id, "redeliver"], Method::Post) => {
            let a = attempt(ctx, w, id).await?;
            enabled(w)?;
            send(
                ctx,
                Delivery {
                    endpoint: w.id.clone(),
                    msg_id: a.msg_id.clone(),
                    event_type: a.event_type.clone(),
                    payload: a.payload.clone(),
                    redelivery: true,
                },
            )
            .await
        }
        (["ping"], Method::Post) => {
            enabled(w)?;
            let msg_id = webhook::new_msg_id()
                .map_err(|e| Error::Internal(format!("randomness unavailable: {e}")))?;
            let (event_type, payload) = webhook::health::ping(&w.id, ctx.now);
            send(
                ctx,
                Delivery {
                    endpoint: w.id.clone(),
                    msg_id,
                    event_type,
                    payload,
                    redelivery: false,
                },
            )
            .await
        }
        (["enable"], Method::Post) => {
            written(ctx.backend.set_health(&w.id, &Health::default()).await?)?;
            ctx.isolate.forget_webhooks();
            let mut w = w.clone();
            w.health = Health::default();
            Ok(Response::json(200, &super::webhooks::view(&w)))
        }
        (["deliveries"] | ["deliveries", _], _) => Err(Error::MethodNotAllowed("GET")),
        (["deliveries", _, "redeliver"] | ["ping" | "enable"], _) => {
            Err(Error::MethodNotAllowed("POST"))
        }
        _ => Err(Error::NotFound),
    }
}

fn enabled(w: &WebhookEndpoint) -> Result<(), Error> {
    if w.health.is_disabled() {
        return Err(Error::Conflict(
            "the endpoint is disabled; enable it first (POST .../enable)".into(),
        ));
    }
    Ok(())
}

/// Queues one delivery now (202 with its `webhook-id`).
async fn send<B: Backend>(ctx: &Ctx<'_, B>, d: Delivery) -> Result<Response, Error> {
    let msg_id = d.msg_id.clone();
    let redelivery = d.redelivery;
    ctx.backend
        .enqueue(std::slice::from_ref(&d))
        .await
        .map_err(|e| Error::Unavailable(format!("webhook queue: {}", e.0)))?;
    Ok(Response::json(
        202,
        &json!({ "msg_id": msg_id, "redelivery": redelivery }),
    ))
}

/// Attempt `id` of endpoint `w` (any other id, or another endpoint's attempt, is a 404).
async fn attempt<B: Backend>(
    ctx: &Ctx<'_, B>,
    w: &WebhookEndpoint,
    id: &str,
) -> Result<Attempt, Error> {
    let id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0 && id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(Error::NotFound)?;
    ctx.backend.attempt(&w.id, id).await?.ok_or(Error::NotFound)
}

#[derive(Serialize)]
struct View<'a> {
    id: i64,
    msg_id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    attempt: u32,
    /// Unix seconds, like the endpoint views.
    at: i64,
    outcome: &'a str,
    status: Option<u16>,
    latency_ms: Option<u32>,
    error: Option<&'a str>,
    redelivery: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
}

fn view(a: &Attempt, with_payload: bool) -> View<'_> {
    View {
        id: a.id.unwrap_or_default(),
        msg_id: &a.msg_id,
        event_type: &a.event_type,
        attempt: a.attempt,
        at: a.at,
        outcome: &a.outcome,
        status: a.status,
        latency_ms: a.latency_ms,
        error: a.error.as_deref(),
        redelivery: a.redelivery,
        payload: with_payload.then_some(a.payload.as_str()),
    }
}

async fn list<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    w: &WebhookEndpoint,
) -> Result<Response, Error> {
    let q = req.query_params()?;
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| Error::InvalidRequest(format!("limit must be 1 to {MAX_PAGE}")))?,
    };
    let before = q
        .get("before")
        .map(|b| {
            b.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::InvalidRequest("before must be a delivery id".into()))
        })
        .transpose()?;
    let all = ctx.backend.attempts(&w.id, before, limit + 1).await?;
    let more = all.len() > limit as usize;
    let page = &all[..all.len().min(limit as usize)];
    let next = if more {
        page.last().and_then(|a| a.id)
    } else {
        None
    };
    let views: Vec<View<'_>> = page.iter().map(|a| view(a, false)).collect();
    Ok(Response::json(
        200,
        &json!({ "deliveries": views, "next_before": next }),
    ))
}
