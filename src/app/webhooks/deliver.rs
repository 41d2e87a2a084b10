//! The queue consumer's delivery decision: per message, the endpoint read from D1, the payload
//! signed (Standard Webhooks), sent (POST) with a timeout, then ack or retry with the backoff of
//! [`webhook::retry_delay`] spread by jitter; one log line per attempt, one row in the delivery
//! log (D1 `webhook_deliveries`), and the endpoint's health after it: a run of failures as long as
//! `WEBHOOK_DISABLE_AFTER_SECONDS` disables the endpoint, with a `webhook_endpoint.disabled`
//! event.

use super::secevents;
use crate::app::config::Config;
use crate::events::Event;
use crate::store::{
    DeliveryLog as Log, EndpointFormat, WebhookEndpoint, WebhookSender, WebhookStore, Write,
};
use crate::store_usage::Attempt;
use crate::webhook::health::{after_attempt, retry_delay_with_jitter, Change};
use crate::webhook::{self, Delivery};
use serde::Serialize;

/// What the runtime gives an attempt: a clock in milliseconds (the latency) and a random number
/// (the retry's jitter).
pub struct Sending<'a> {
    pub millis: &'a dyn Fn() -> f64,
    pub jitter: u32,
}

/// A delivery attempt's result: the queue's verdict, its log line, and the event of an endpoint
/// it disabled.
#[derive(Debug)]
pub struct Delivered {
    pub verdict: Verdict,
    pub log: DeliveryLog,
    pub disabled: Option<Event>,
    /// What could not be recorded (the delivery log, the endpoint's health): warnings.
    pub warnings: Vec<String>,
}

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

/// The dead-letter queue's consumer (wrangler.toml `dead_letter_queue`): a message ends there
/// when the delivery consumer failed on it (threw, or asked for more retries) as often as the
/// queue's `max_retries` allows. It is not delivered again: the answer is its log line,
/// `webhook.failed` (`webhook.dropped` if it is not a delivery at all), and the caller acks it.
pub fn dead_lettered(body: &str, attempts: u32) -> DeliveryLog {
    match serde_json::from_str::<Delivery>(body) {
        Ok(d) => DeliveryLog {
            event: "webhook.failed",
            endpoint: d.endpoint,
            msg_id: d.msg_id,
            event_type: d.event_type,
            attempt: attempts,
            status: None,
            error: Some(
                "the delivery consumer failed on this message as often as the queue allows \
                 (dead-letter queue)"
                    .into(),
            ),
            retry_in: None,
        },
        Err(_) => DeliveryLog {
            event: "webhook.dropped",
            endpoint: String::new(),
            msg_id: String::new(),
            event_type: String::new(),
            attempt: attempts,
            status: None,
            error: Some("malformed message in the dead-letter queue".into()),
            retry_in: None,
        },
    }
}

/// Delivers one queue message (`body`, attempt `attempt`, 1-based), records the attempt and the
/// endpoint's health, and says what to do with the message.
pub async fn deliver<B: WebhookStore + WebhookSender + Log>(
    cfg: &Config,
    backend: &B,
    body: &str,
    attempt: u32,
    now: i64,
    sending: &Sending<'_>,
) -> Delivered {
    let started = (sending.millis)();
    let (verdict, log, sent) = attempt_once(cfg, backend, body, attempt, now, sending).await;
    let mut done = Delivered {
        verdict,
        log,
        disabled: None,
        warnings: Vec::new(),
    };
    let Some((endpoint, d, ok)) = sent else {
        return done;
    };
    let latency = ((sending.millis)() - started).clamp(0.0, f64::from(u32::MAX)) as u32;
    let l = &done.log;
    let row = Attempt {
        id: None,
        endpoint: endpoint.id.clone(),
        msg_id: l.msg_id.clone(),
        event_type: l.event_type.clone(),
        attempt: l.attempt,
        at: now,
        outcome: l.event.trim_start_matches("webhook.").to_owned(),
        status: l.status,
        latency_ms: ok.is_some().then_some(latency),
        error: l.error.clone(),
        payload: d.payload,
        redelivery: d.redelivery,
    };
    if let Err(e) = backend.record_attempt(&row).await {
        done.warnings.push(format!(
            "webhooks: the delivery log missed an attempt: {}",
            e.0
        ));
    }
    let Some(ok) = ok else {
        return done;
    };
    let change = after_attempt(&endpoint.health, ok, now, cfg.webhooks.disable_after_secs);
    let (health, disabled) = match change {
        Change::Same => return done,
        Change::Set(h) => (h, false),
        Change::Disabled(h) => (h, true),
    };
    match backend.set_health(&endpoint.id, &health).await {
        Ok(Write::Done) if disabled => {
            done.disabled = Some(disabled_event(&endpoint.id, &health, now));
        }
        Ok(_) => {}
        Err(e) => {
            done.warnings.push(format!(
                "webhooks: the health of {} was not recorded: {}",
                endpoint.id, e.0
            ));
            // The write may have landed: then the endpoint is disabled, and its event is due now
            // (no later attempt would send it).
            if disabled {
                if let Ok(Some(w)) = backend.webhook(&endpoint.id).await {
                    if w.health.disabled_at.is_some() && w.health.disabled_at == health.disabled_at
                    {
                        done.disabled = Some(disabled_event(&endpoint.id, &health, now));
                    }
                }
            }
        }
    }
    done
}

fn disabled_event(endpoint: &str, health: &crate::webhook::health::Health, now: i64) -> Event {
    Event::WebhookEndpointDisabled {
        endpoint: endpoint.to_owned(),
        failing_since: health.failing_since.unwrap_or(now),
        reason: health.disabled_reason.clone().unwrap_or_default(),
    }
}

/// What one attempt did: the verdict, its log line and, if the message was for an endpoint that
/// exists, the endpoint, the message and whether it was sent and delivered (`Some(ok)`; `None`:
/// dropped without sending, e.g. the endpoint is disabled).
type Attempted = (
    Verdict,
    DeliveryLog,
    Option<(WebhookEndpoint, Delivery, Option<bool>)>,
);

async fn attempt_once<B: WebhookStore + WebhookSender>(
    cfg: &Config,
    backend: &B,
    body: &str,
    attempt: u32,
    now: i64,
    sending: &Sending<'_>,
) -> Attempted {
    let attempt = attempt.max(1);
    let Ok(d) = serde_json::from_str::<Delivery>(body) else {
        let mut log = DeliveryLog::new("webhook.dropped", None, attempt);
        log.error = Some("malformed queue message".into());
        return (Verdict::Ack, log, None);
    };
    let mut log = DeliveryLog::new("webhook.delivered", Some(&d), attempt);
    let dropped = |mut log: DeliveryLog, why: &str| {
        log.event = "webhook.dropped";
        log.error = Some(why.to_owned());
        (Verdict::Ack, log)
    };
    let failed = |mut log: DeliveryLog, error: Option<String>| {
        log.error = error;
        if let Some(delay) = retry_delay_with_jitter(attempt, sending.jitter) {
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
        Ok(None) => {
            let (v, l) = dropped(log, "the endpoint was deleted");
            return (v, l, None);
        }
        Err(e) => {
            let (v, l) = failed(log, Some(format!("endpoint unreadable: {}", e.0)));
            return (v, l, None);
        }
    };
    let not_sent = |(v, l): (Verdict, DeliveryLog), endpoint: WebhookEndpoint, d: Delivery| {
        (v, l, Some((endpoint, d, None)))
    };
    if endpoint.health.is_disabled() {
        return not_sent(dropped(log, "the endpoint is disabled"), endpoint, d);
    }
    if webhook::check_url(&endpoint.url, cfg.webhooks.allow_http_localhost).is_err() {
        let r = dropped(log, "the endpoint URL is not allowed by this configuration");
        return not_sent(r, endpoint, d);
    }
    let secevent = matches!(endpoint.format, EndpointFormat::SecEvent(_));
    let Some(headers) = headers_for(&endpoint, &d, now) else {
        return not_sent(
            dropped(log, "the endpoint's stored secret is unusable"),
            endpoint,
            d,
        );
    };
    let (verdict, log, ok) = match backend
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
            (Verdict::Ack, log, true)
        }
        // RFC 8935 2.3: a SET the receiver refused is not sent again.
        Ok(status) if secevent && secevents::refused(status) => {
            log.status = Some(status);
            let (v, l) = dropped(log, "the receiver refused the SET (400): not sent again");
            (v, l, false)
        }
        Ok(status) => {
            log.status = Some(status);
            let (v, l) = failed(log, None);
            (v, l, false)
        }
        Err(e) => {
            let (v, l) = failed(log, Some(e.0));
            (v, l, false)
        }
    };
    (verdict, log, Some((endpoint, d, Some(ok))))
}

impl DeliveryLog {
    /// The line of an attempt at `d` (none: the message did not parse), before its outcome.
    fn new(event: &'static str, d: Option<&Delivery>, attempt: u32) -> Self {
        let field = |f: fn(&Delivery) -> &String| d.map(f).cloned().unwrap_or_default();
        DeliveryLog {
            event,
            endpoint: field(|d| &d.endpoint),
            msg_id: field(|d| &d.msg_id),
            event_type: field(|d| &d.event_type),
            attempt,
            status: None,
            error: None,
            retry_in: None,
        }
    }
}

/// The headers of a delivery in the endpoint's format: a Security Event Token's (the SET signs
/// itself), or signed Standard Webhooks headers; `None` if a stored secret is unusable.
fn headers_for(
    endpoint: &WebhookEndpoint,
    d: &Delivery,
    now: i64,
) -> Option<Vec<(&'static str, String)>> {
    match endpoint.format {
        EndpointFormat::SecEvent(_) => Some(secevents::headers().to_vec()),
        EndpointFormat::Standard => signed_headers(endpoint, d, now).map(|h| h.to_vec()),
    }
}

/// The headers of a delivery, signed with the endpoint's secret (and its previous one while in its
/// grace period); `None` if a stored secret is unusable.
fn signed_headers(
    endpoint: &WebhookEndpoint,
    d: &Delivery,
    now: i64,
) -> Option<[(&'static str, String); 5]> {
    let mut secrets = vec![&endpoint.secret];
    if let Some((prev, until)) = &endpoint.previous_secret {
        if now < *until {
            secrets.push(prev);
        }
    }
    let signature =
        webhook::signature_header(&secrets, &d.msg_id, now, d.payload.as_bytes()).ok()?;
    Some([
        ("content-type", "application/json".to_owned()),
        ("user-agent", "patgate-webhooks".to_owned()),
        ("webhook-id", d.msg_id.clone()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", signature),
    ])
}

/// The hourly scan's part: deletes delivery log rows older than `WEBHOOK_DELIVERY_RETENTION_DAYS`.
pub async fn prune<B: Log>(
    cfg: &Config,
    backend: &B,
    now: i64,
) -> Result<(), crate::store::StoreError> {
    backend
        .prune_attempts(now - cfg.webhooks.retention_days * 86_400)
        .await
}
