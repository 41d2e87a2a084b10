//! Signed webhooks, the pure part: Standard Webhooks signatures (<https://www.standardwebhooks.com>),
//! endpoint secrets, the payload built from a security [`Event`](crate::events::Event), the queue message format, the
//! retry schedule, and validation of what operators register (URL, event types).
//!
//! A delivery is an HTTP POST of the JSON payload with three headers:
//! - `webhook-id`: the message id (`msg_...`), the same on every retry, so receivers dedupe by it;
//! - `webhook-timestamp`: Unix seconds of this attempt (receivers refuse old ones: replay bound);
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`, keyed with
//!   the decoded bytes of the endpoint secret `whsec_<base64>`; several space-separated
//!   signatures while a rotated-away secret is still in its grace period.
//!
//! By idea: [`signing`] (secrets and signatures), [`mod@payload`] (the queue message, payloads, the
//! retry schedule), [`sampling`] (event types anyone can cause, delivered as summaries),
//! [`endpoint`] (validation of what operators register).

pub mod endpoint;
pub mod payload;
pub mod sampling;
pub mod signing;

pub use endpoint::{
    check_event_types, check_url, subscribed, EVENT_TYPES, MAX_EVENT_TYPES, MAX_URL_LEN,
};
pub use payload::{
    event_type, payload, queue_batches, queue_message_bytes, retry_delay, summary_payload,
    Delivery, MAX_PAYLOAD_BYTES, QUEUE_MAX_BATCH_BYTES, QUEUE_MAX_BATCH_MESSAGES,
    QUEUE_MAX_MESSAGE_BYTES, RETRY_DELAYS,
};
pub use signing::{
    hmac_sha256, new_msg_id, sign, signature_header, verify, BadSecret, WebhookSecret,
    SECRET_PREFIX,
};
