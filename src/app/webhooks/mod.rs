//! Webhooks: the fan-out of security events into the delivery queue (after the response) and the
//! queue consumer's delivery decision. Operators register endpoints in the admin API
//! (`/admin/webhooks`).
//!
//! Flow: a handler emits [`Event`](crate::events::Event)s; after the response is sent the runtime
//! logs them and calls [`fan_out`] (`wait_until`), which samples the types anyone can cause
//! without authenticating ([`crate::webhook::sampling`]) and queues one
//! [`Delivery`](crate::webhook::Delivery) per (event, subscribed endpoint), in batches within the
//! Queues limits; the queue consumer calls [`deliver`] per message: it reads the endpoint (URL,
//! secret) from D1, signs the payload (Standard Webhooks), POSTs it with a timeout and answers ack
//! or retry with the backoff of [`crate::webhook::retry_delay`]. Nothing of this runs before or
//! during a request's answer: a slow or failing endpoint, or a failing queue, never changes or
//! delays it.
//!
//! Delivery is at least once: a retried send, or an enqueue that landed but reported an error and
//! was sent again, may deliver a message twice, always with the same `webhook-id`.
//!
//! It may use the shared pieces of `app/` (configuration, the isolate's cache of endpoints),
//! storage traits and the pure layer (`crate::webhook`: signatures, payloads, the queue message);
//! the runtime calls it after each request, on the scheduled scan and in the queue consumer.

mod deliver;
mod fan_out;

pub use deliver::{dead_lettered, deliver, DeliveryLog, Verdict};
pub use fan_out::{
    any_deliverable, fan_out, none_registered, outgoing, queue_outgoing, FanOut, Outgoing,
    MAX_ENDPOINTS,
};
