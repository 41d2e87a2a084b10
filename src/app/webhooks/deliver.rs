//! The queue consumer's delivery decision: per message, the endpoint read from D1, the payload
//! signed (Standard Webhooks), sent (POST) with a timeout, then ack or retry with the backoff of
//! [`webhook::retry_delay`]; one log line per attempt.

use crate::app::config::Config;
use crate::store::{WebhookSender, WebhookStore};
use crate::webhook::{self, Delivery};
use serde::Serialize;

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
