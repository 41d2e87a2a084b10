//! Webhooks: `/admin/webhooks` (operators register endpoints), the fan-out of security events
//! into the delivery queue (after the response), and the queue consumer's delivery decision.
//!
//! Flow: a handler emits [`Event`]s; after the response is sent the runtime logs them and calls
//! [`fan_out`] (`wait_until`), which queues one [`Delivery`] per (event, subscribed endpoint);
//! the queue consumer calls [`deliver`] per message: it reads the endpoint (URL, secret) from D1,
//! signs the payload (Standard Webhooks), POSTs it with a timeout and answers ack or retry with
//! the backoff of [`webhook::retry_delay`]. Nothing of this runs before or during a request's
//! answer: a slow or failing endpoint, or a failing queue, never changes or delays it.
//!
//! Delivery is at least once: a retried send, or an enqueue that landed but reported an error
//! and was sent again, may deliver a message twice, always with the same `webhook-id`.

use super::events::Event;
use super::{Config, Ctx, IsolateState};
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::store::{
    Backend, DeliveryQueue, WebhookEndpoint, WebhookSender, WebhookStore, WebhookSubscription,
};
use crate::webhook::{self, Delivery, WebhookSecret};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::rc::Rc;

/// Webhook settings (README "Webhooks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `WEBHOOK_ALLOW_HTTP_LOCALHOST=true`: endpoints may be `http://localhost` or
    /// `http://127.0.0.1` (local development and tests only).
    pub allow_http_localhost: bool,
    /// `WEBHOOK_TIMEOUT_SECONDS` (1 to 30): how long one delivery attempt may take.
    pub timeout_secs: u32,
}

pub const DEFAULT_TIMEOUT_SECS: u32 = 10;
pub const MAX_TIMEOUT_SECS: u32 = 30;

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_http_localhost: false,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
        }
    }
}

/// Most endpoints registered at once (bounds the fan-out per event).
pub const MAX_ENDPOINTS: usize = 20;
/// Default grace of a rotated-away secret (it keeps signing alongside the new one), and the
/// longest.
const DEFAULT_SECRET_GRACE_SECS: i64 = 86_400;
const MAX_SECRET_GRACE_SECS: i64 = 7 * 86_400;
/// Messages per `sendBatch` (the Queues limit).
const MAX_BATCH: usize = 100;

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

/// `/admin/webhooks...` (the caller in `admin` has authorized the request and logs an
/// `admin.change` event for every write).
pub async fn admin<B: Backend>(
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
            super::admin::written(ctx.backend.delete_webhook(id).await?)?;
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
        .map_err(|e| Error::InvalidRequest(e.into()))?;
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
        health: crate::webhook::health::Health::default(),
    };
    super::admin::written(ctx.backend.create_webhook(&w).await?)?;
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
    super::admin::written(ctx.backend.update_webhook_secrets(&w).await?)?;
    Ok(Response::json(
        200,
        &json!({
            "secret": w.secret.expose_secret(),
            "previous_secret_valid_until": w.previous_secret.as_ref().map(|p| p.1),
        }),
    ))
}

// --- Fan-out --------------------------------------------------------------------------------

/// The endpoints' subscriptions, from this isolate's cache (fresh for `REGISTRY_CACHE_SECONDS`)
/// or D1. A failed read falls back to the stale list if there is one.
async fn subscriptions<B: WebhookStore>(
    cfg: &Config,
    backend: &B,
    isolate: &IsolateState,
    now: i64,
) -> Result<Rc<Vec<WebhookSubscription>>, crate::store::StoreError> {
    if let Some(subs) = isolate.cached_webhooks(now, cfg.registry_cache_secs) {
        return Ok(subs);
    }
    match backend.list_webhooks().await {
        Ok(all) => {
            let subs = Rc::new(
                all.into_iter()
                    .map(|w| WebhookSubscription {
                        id: w.id,
                        event_types: w.event_types,
                    })
                    .collect::<Vec<_>>(),
            );
            isolate.store_webhooks(now, subs.clone());
            Ok(subs)
        }
        Err(e) => isolate.stale_webhooks().ok_or(e),
    }
}

/// Whether this isolate knows, without any read, that no endpoint is registered (then the
/// runtime does not even schedule a fan-out).
pub fn none_registered(cfg: &Config, isolate: &IsolateState, now: i64) -> bool {
    isolate
        .cached_webhooks(now, cfg.registry_cache_secs)
        .is_some_and(|s| s.is_empty())
}

/// Whether any of `events` can be delivered (error causes never are): without one, the fan-out
/// reads nothing (a refused request's `error` event must not cost a storage read).
pub fn any_deliverable(events: &[Event]) -> bool {
    events.iter().any(|e| webhook::event_type(e).is_some())
}

/// What [`fan_out`] did: messages queued, and warnings for the log (never fanned out again).
#[derive(Debug, Default, PartialEq)]
pub struct FanOut {
    pub queued: usize,
    pub warnings: Vec<Event>,
}

/// Queues one delivery per (event, subscribed endpoint). Runs after the response; its failures
/// are warnings in the log and never touch the request's outcome (already sent and committed).
/// A failed send is sent once more with the same message ids: if the first one landed after
/// all, the receiver gets the message twice with one `webhook-id` and dedupes.
pub async fn fan_out<B: WebhookStore + DeliveryQueue>(
    cfg: &Config,
    backend: &B,
    isolate: &IsolateState,
    now: i64,
    events: &[Event],
) -> FanOut {
    let mut out = FanOut::default();
    if !any_deliverable(events) {
        return out;
    }
    let subs = match subscriptions(cfg, backend, isolate, now).await {
        Ok(s) => s,
        Err(e) => {
            out.warnings.push(Event::Warning {
                message: format!(
                    "webhooks: endpoints unreadable, {} event(s) not delivered: {}",
                    events.len(),
                    e.0
                ),
            });
            return out;
        }
    };
    if subs.is_empty() {
        return out;
    }
    let mut msgs = Vec::new();
    for e in events {
        let Some(ty) = webhook::event_type(e) else {
            continue;
        };
        let targets: Vec<&WebhookSubscription> = subs
            .iter()
            .filter(|s| webhook::subscribed(&s.event_types, &ty))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let Some((ty, body)) = webhook::payload(e, now) else {
            continue;
        };
        if body.len() > webhook::MAX_PAYLOAD_BYTES {
            out.warnings.push(Event::Warning {
                message: format!("webhooks: a {ty} payload is too large to deliver"),
            });
            continue;
        }
        for s in targets {
            let msg_id = match webhook::new_msg_id() {
                Ok(id) => id,
                Err(e) => {
                    out.warnings.push(Event::Warning {
                        message: format!("webhooks: randomness unavailable: {e}"),
                    });
                    return out;
                }
            };
            msgs.push(Delivery {
                endpoint: s.id.clone(),
                msg_id,
                event_type: ty.clone(),
                payload: body.clone(),
            });
        }
    }
    for chunk in msgs.chunks(MAX_BATCH) {
        let sent = match backend.enqueue(chunk).await {
            Ok(()) => Ok(()),
            Err(_) => backend.enqueue(chunk).await,
        };
        match sent {
            Ok(()) => out.queued += chunk.len(),
            Err(e) => {
                let ids: Vec<&str> = chunk.iter().map(|d| d.msg_id.as_str()).collect();
                out.warnings.push(Event::Warning {
                    message: format!(
                        "webhooks: {} deliveries not queued ({}): {}",
                        chunk.len(),
                        ids.join(" "),
                        e.0
                    ),
                });
            }
        }
    }
    out
}

// --- Delivery (the queue consumer) ------------------------------------------------------------

/// What the consumer does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done: delivered, or dropped for good (a log line says which).
    Ack,
    /// Try again after this many seconds.
    Retry(u32),
}

/// One log line per delivery attempt: `webhook.delivered`, `webhook.retrying`, `webhook.failed`
/// (the last attempt failed: the message is dropped) or `webhook.dropped` (endpoint deleted,
/// malformed message, ...). Never a secret; never delivered as a webhook itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryLog {
    pub event: &'static str,
    pub endpoint: String,
    pub msg_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in: Option<u32>,
}

impl DeliveryLog {
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"event":"unserializable"}"#.into())
    }
}

/// Delivers one queue message (`body`, attempt `attempt`, 1-based) and says what to do with it.
pub async fn deliver<B: WebhookStore + WebhookSender>(
    cfg: &Config,
    backend: &B,
    body: &str,
    attempt: u32,
    now: i64,
) -> (Verdict, DeliveryLog) {
    let attempt = attempt.max(1);
    let Ok(d) = serde_json::from_str::<Delivery>(body) else {
        return (
            Verdict::Ack,
            DeliveryLog {
                event: "webhook.dropped",
                endpoint: String::new(),
                msg_id: String::new(),
                event_type: String::new(),
                attempt,
                status: None,
                error: Some("malformed queue message".into()),
                retry_in: None,
            },
        );
    };
    let mut log = DeliveryLog {
        event: "webhook.delivered",
        endpoint: d.endpoint.clone(),
        msg_id: d.msg_id.clone(),
        event_type: d.event_type.clone(),
        attempt,
        status: None,
        error: None,
        retry_in: None,
    };
    let dropped = |mut log: DeliveryLog, why: &str| {
        log.event = "webhook.dropped";
        log.error = Some(why.to_owned());
        (Verdict::Ack, log)
    };
    let failed = |mut log: DeliveryLog, error: Option<String>| {
        log.error = error;
        if let Some(delay) = webhook::retry_delay(attempt) {
            log.event = "webhook.retrying";
            log.retry_in = Some(delay);
            (Verdict::Retry(delay), log)
        } else {
            log.event = "webhook.failed";
            (Verdict::Ack, log)
        }
    };
    let endpoint = match backend.webhook(&d.endpoint).await {
        Ok(Some(w)) => w,
        Ok(None) => return dropped(log, "the endpoint was deleted"),
        Err(e) => return failed(log, Some(format!("endpoint unreadable: {}", e.0))),
    };
    if webhook::check_url(&endpoint.url, cfg.webhooks.allow_http_localhost).is_err() {
        return dropped(log, "the endpoint URL is not allowed by this configuration");
    }
    let mut secrets = vec![&endpoint.secret];
    if let Some((prev, until)) = &endpoint.previous_secret {
        if now < *until {
            secrets.push(prev);
        }
    }
    let Ok(signature) = webhook::signature_header(&secrets, &d.msg_id, now, d.payload.as_bytes())
    else {
        return dropped(log, "the endpoint's stored secret is unusable");
    };
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("user-agent", "patgate-webhooks".to_owned()),
        ("webhook-id", d.msg_id.clone()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", signature),
    ];
    match backend
        .post(
            &endpoint.url,
            &headers,
            &d.payload,
            cfg.webhooks.timeout_secs,
        )
        .await
    {
        Ok(status) if (200..300).contains(&status) => {
            log.status = Some(status);
            (Verdict::Ack, log)
        }
        Ok(status) => {
            log.status = Some(status);
            failed(log, None)
        }
        Err(e) => failed(log, Some(e.0)),
    }
}
