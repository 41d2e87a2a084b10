//! The fan-out, after the response: the types anyone can cause without authenticating sampled
//! ([`crate::webhook::sampling`]), then one queued [`Delivery`] per (event, subscribed endpoint),
//! in batches within the Queues limits; the endpoints' subscriptions read through this isolate's
//! cache.

use crate::app::config::Config;
use crate::app::isolate::IsolateState;
use crate::events::Event;
use crate::store::{DeliveryQueue, StoreError, WebhookStore, WebhookSubscription};
use crate::webhook::sampling::{self, Summary};
use crate::webhook::{self, Delivery};
use std::rc::Rc;

/// Most endpoints registered at once (bounds the fan-out per event).
pub const MAX_ENDPOINTS: usize = 20;

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

/// What [`fan_out`] did: messages queued, warnings for the log (never fanned out again), and
/// which events had a delivery that could not be queued.
#[derive(Debug, Default, PartialEq)]
pub struct FanOut {
    pub queued: usize,
    pub warnings: Vec<Event>,
    /// Indices (into the events given) of events with at least one delivery not queued (the
    /// queue or the endpoint list failed): the expiry scan releases their notices.
    pub not_queued: Vec<usize>,
}

/// One webhook payload to fan out: an event, or a sampling summary
/// ([`Summary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub event_type: String,
    pub payload: String,
    /// The index of its event in the events given to [`outgoing`]; `None` for a summary.
    pub event: Option<usize>,
}

/// The payloads to fan out for `events` (synchronous, before anything is read): deliverable
/// events, except the sampled types past the first of their window ([`sampling`]), plus
/// the summaries of sampling windows that have ended.
pub fn outgoing(isolate: &IsolateState, now: i64, events: &[Event]) -> Vec<Outgoing> {
    let sampler = isolate.sampler();
    let summary = |s: &Summary| {
        let (event_type, payload) = webhook::summary_payload(s, now);
        Outgoing {
            event_type,
            payload,
            event: None,
        }
    };
    let mut out: Vec<Outgoing> = sampler.take_due(now).iter().map(summary).collect();
    for (i, e) in events.iter().enumerate() {
        let Some(ty) = webhook::event_type(e) else {
            continue;
        };
        if sampling::is_sampled(&ty) {
            let (admit, previous) = sampler.admit(&ty, now);
            out.extend(previous.as_ref().map(summary));
            if admit == sampling::Admit::Counted {
                continue;
            }
        }
        if let Some((event_type, payload)) = webhook::payload(e, now) {
            out.push(Outgoing {
                event_type,
                payload,
                event: Some(i),
            });
        }
    }
    out
}

/// Queues one delivery per (event, subscribed endpoint): [`outgoing`], then [`queue_outgoing`].
pub async fn fan_out<B: WebhookStore + DeliveryQueue>(
    cfg: &Config,
    backend: &B,
    isolate: &IsolateState,
    now: i64,
    events: &[Event],
) -> FanOut {
    if events.is_empty() && !isolate.sampler().summary_due(now) {
        return FanOut::default();
    }
    let items = outgoing(isolate, now, events);
    queue_outgoing(cfg, backend, isolate, now, &items).await
}

/// Queues one delivery per (payload, subscribed endpoint), in batches within the Queues limits
/// (count and bytes, [`webhook::queue_batches`]). Runs after the response; its failures are
/// warnings in the log and never touch the request's outcome (already sent and committed). A
/// failed send is sent once more with the same message ids: if the first one landed after all,
/// the receiver gets the message twice with one `webhook-id` and dedupes.
pub async fn queue_outgoing<B: WebhookStore + DeliveryQueue>(
    cfg: &Config,
    backend: &B,
    isolate: &IsolateState,
    now: i64,
    items: &[Outgoing],
) -> FanOut {
    let mut out = FanOut::default();
    if items.is_empty() {
        return out;
    }
    let subs = match subscriptions(cfg, backend, isolate, now).await {
        Ok(s) => s,
        Err(e) => {
            out.warnings.push(Event::Warning {
                message: format!(
                    "webhooks: endpoints unreadable, {} event(s) not delivered: {}",
                    items.len(),
                    e.0
                ),
            });
            out.not_queued = items.iter().filter_map(|o| o.event).collect();
            return out;
        }
    };
    if subs.is_empty() {
        return out;
    }
    let mut msgs = Vec::new();
    let mut sizes = Vec::new();
    let mut sources = Vec::new();
    for item in items {
        let ty = &item.event_type;
        let targets: Vec<&WebhookSubscription> = subs
            .iter()
            .filter(|s| webhook::subscribed(&s.event_types, ty))
            .collect();
        if targets.is_empty() {
            continue;
        }
        if item.payload.len() > webhook::MAX_PAYLOAD_BYTES {
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
            let d = Delivery {
                endpoint: s.id.clone(),
                msg_id,
                event_type: ty.clone(),
                payload: item.payload.clone(),
            };
            let size = webhook::queue_message_bytes(&d);
            if size > webhook::QUEUE_MAX_MESSAGE_BYTES {
                out.warnings.push(Event::Warning {
                    message: format!("webhooks: a {ty} message is too large to queue"),
                });
                break;
            }
            msgs.push(d);
            sizes.push(size);
            sources.push(item.event);
        }
    }
    for range in webhook::queue_batches(&sizes) {
        let chunk = &msgs[range.clone()];
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
                for i in sources[range].iter().flatten() {
                    if !out.not_queued.contains(i) {
                        out.not_queued.push(*i);
                    }
                }
            }
        }
    }
    out
}
