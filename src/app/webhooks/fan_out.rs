//! The fan-out, after the response: one queued [`Delivery`] per (event, subscribed endpoint),
//! the endpoints' subscriptions read through this isolate's cache.

use crate::app::config::Config;
use crate::app::isolate::IsolateState;
use crate::events::Event;
use crate::store::{DeliveryQueue, StoreError, WebhookStore, WebhookSubscription};
use crate::webhook::{self, Delivery};
use std::rc::Rc;

/// Most endpoints registered at once (bounds the fan-out per event).
pub const MAX_ENDPOINTS: usize = 20;
/// Messages per `sendBatch` (the Queues limit).
const MAX_BATCH: usize = 100;

/// The endpoints' subscriptions, from this isolate's cache (fresh for `REGISTRY_CACHE_SECONDS`)
/// or D1. A failed read falls back to the stale list if there is one.
async fn subscriptions<B: WebhookStore>(
    cfg: &Config,
    backend: &B,
    isolate: &IsolateState,
    now: i64,
) -> Result<Rc<Vec<WebhookSubscription>>, StoreError> {
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
