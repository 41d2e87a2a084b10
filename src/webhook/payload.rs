//! What is delivered: the queue message ([`Delivery`], pinned: messages outlive a deploy), the
//! payload built from a security event (Standard Webhooks style: `type`, `timestamp`, `data`),
//! and the retry schedule.

use crate::events::Event;
use serde::{Deserialize, Serialize};

/// One queue message: a delivery of one event to one endpoint. The endpoint's URL and secret are
/// read when it is delivered (a deleted endpoint receives nothing more; no secret in the queue).
///
/// Persisted in the queue across deploys: the format is pinned by a test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// The endpoint id (`wh_...`).
    pub endpoint: String,
    /// `webhook-id`: the same on every attempt.
    pub msg_id: String,
    /// The event type (`pat.revoked`, ...).
    #[serde(rename = "type")]
    pub event_type: String,
    /// The exact bytes to POST (and sign).
    pub payload: String,
}

/// Largest payload enqueued. Cloudflare Queues take messages up to 128 KB, and the payload is a
/// JSON string inside the message (escaping can double it); events are far smaller.
pub const MAX_PAYLOAD_BYTES: usize = 32 * 1024;

/// The event type of a security event (its log line's `event` field); `None` for what is never
/// delivered (error causes).
pub fn event_type(e: &Event) -> Option<String> {
    // The cause behind an error answer is for the log only (one per refused request).
    if matches!(e, Event::ErrorCause { .. }) {
        return None;
    }
    match serde_json::to_value(e) {
        Ok(serde_json::Value::Object(m)) => m.get("event")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// The payload of an event, Standard Webhooks style:
/// `{"type": "pat.revoked", "timestamp": "2026-11-29T08:00:00Z", "data": {...}}`, where `data`
/// holds the log line's fields (any [`Event`] variant, present or future). `pat.revoked` also
/// gets `reason` (`user`, `admin`, `leaked`, `reuse`, `expired`) derived from `via`;
/// `pat.expired` gets `reason: "expired"`.
pub fn payload(e: &Event, now: i64) -> Option<(String, String)> {
    let serde_json::Value::Object(mut data) = serde_json::to_value(e).ok()? else {
        return None;
    };
    let ty = data.remove("event")?.as_str()?.to_owned();
    let reason = match ty.as_str() {
        "pat.revoked" => Some(revocation_reason(
            data.get("via").and_then(|v| v.as_str()).unwrap_or(""),
        )),
        "pat.expired" => Some("expired"),
        _ => None,
    };
    if let Some(r) = reason {
        data.entry("reason").or_insert_with(|| r.into());
    }
    if ty == "admin.change" {
        let target = data.get("target").and_then(|v| v.as_str()).unwrap_or("");
        if let Some((object, id)) = admin_object(target).map(|(o, id)| (o, id.to_owned())) {
            data.insert("object".into(), object.into());
            data.insert("object_id".into(), id.into());
        }
    }
    let body = serde_json::json!({
        "type": ty,
        "timestamp": crate::time::rfc3339(now),
        "data": data,
    });
    Some((ty, body.to_string()))
}

/// What an admin change was about (client and resource changes, ...): `target`
/// `clients/demo_client/rotate-secret` is (`client`, `demo_client`). `None` for a collection
/// (`clients`: a create, whose id is in the answer) or anything else.
fn admin_object(target: &str) -> Option<(&'static str, &str)> {
    let mut parts = target.split('/');
    let object = match parts.next()? {
        "clients" => "client",
        "resources" => "resource",
        "routes" => "route",
        "webhooks" => "webhook",
        _ => return None,
    };
    let id = parts.next().filter(|id| !id.is_empty())?;
    Some((object, id))
}

/// The `reason` of a revoked PAT from the event's `via`: the owner (API, page, or anyone holding
/// the token through RFC 7009) is `user`.
pub fn revocation_reason(via: &str) -> &'static str {
    match via {
        "leaked" => "leaked",
        "reuse" | "reuse_detected" => "reuse",
        "admin" => "admin",
        "expired" => "expired",
        _ => "user",
    }
}

/// Delays before each retry, in seconds (attempt 2 waits 5 s, ...): about 8 hours in all, then
/// the delivery has failed (`webhook.failed` log line). No delay exceeds the 12 hours Queues
/// allow. The queue consumer's `max_retries` in wrangler.toml must be at least its length.
pub const RETRY_DELAYS: [u32; 8] = [5, 30, 120, 600, 1800, 3600, 7200, 14_400];

/// After failed attempt `attempt` (1-based): the delay before the next one, or `None` when it was
/// the last.
pub fn retry_delay(attempt: u32) -> Option<u32> {
    let i = usize::try_from(attempt.checked_sub(1)?).ok()?;
    RETRY_DELAYS.get(i).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_backs_off_then_stops() {
        assert_eq!(retry_delay(0), None);
        assert_eq!(retry_delay(1), Some(5));
        let mut last = 0;
        for a in 1..=8 {
            let d = retry_delay(a).expect("delay");
            assert!(d > last, "attempt {a}");
            assert!(d <= 43_200, "Queues allow at most 12 hours");
            last = d;
        }
        assert_eq!(retry_delay(9), None);
        assert_eq!(retry_delay(u32::MAX), None);
    }

    /// Queue messages outlive deploys: this format must not change.
    #[test]
    fn queue_message_format_is_pinned() {
        let d = Delivery {
            endpoint: "wh_1".into(),
            msg_id: "msg_x".into(),
            event_type: "pat.created".into(),
            payload: "{}".into(),
        };
        let s = serde_json::to_string(&d).expect("json");
        assert_eq!(
            s,
            r#"{"endpoint":"wh_1","msg_id":"msg_x","type":"pat.created","payload":"{}"}"#
        );
        assert_eq!(serde_json::from_str::<Delivery>(&s).expect("parse"), d);
        assert!(serde_json::from_str::<Delivery>(r#"{"endpoint":"wh_1"}"#).is_err());
    }

    #[test]
    fn payloads_carry_type_time_data_and_reason() {
        let e = Event::PatRevoked {
            pat_id: "p1".into(),
            newly: true,
            via: "leaked",
        };
        let (ty, body) = payload(&e, 1_800_000_000).expect("payload");
        assert_eq!(ty, "pat.revoked");
        assert_eq!(
            body,
            r#"{"data":{"newly":true,"pat_id":"p1","reason":"leaked","via":"leaked"},"timestamp":"2027-01-15T08:00:00Z","type":"pat.revoked"}"#
        );
        for (via, reason) in [
            ("api", "user"),
            ("rfc7009", "user"),
            ("leaked", "leaked"),
            ("reuse", "reuse"),
            ("admin", "admin"),
        ] {
            let e = Event::PatRevoked {
                pat_id: "p".into(),
                newly: true,
                via,
            };
            let v: serde_json::Value =
                serde_json::from_str(&payload(&e, 0).expect("payload").1).expect("json");
            assert_eq!(v["data"]["reason"], reason, "{via}");
        }
        for (target, object, id) in [
            ("clients/demo_client", Some("client"), Some("demo_client")),
            ("resources/r1/rotate-secret", Some("resource"), Some("r1")),
            ("routes/x", Some("route"), Some("x")),
            ("webhooks/wh_1", Some("webhook"), Some("wh_1")),
            ("clients", None, None),
            ("clients/", None, None),
            ("nonsense/x", None, None),
        ] {
            let e = Event::AdminChange {
                method: "PATCH",
                target: target.into(),
                status: 200,
                outcome: "ok",
            };
            let v: serde_json::Value =
                serde_json::from_str(&payload(&e, 0).expect("payload").1).expect("json");
            assert_eq!(v["data"]["object"].as_str(), object, "{target}");
            assert_eq!(v["data"]["object_id"].as_str(), id, "{target}");
            assert_eq!(v["data"]["target"], target);
        }
        let e = Event::PatExpired {
            pat_id: "p".into(),
            sub: "alice".into(),
            expires_at: 5,
        };
        let v: serde_json::Value =
            serde_json::from_str(&payload(&e, 0).expect("payload").1).expect("json");
        assert_eq!(v["type"], "pat.expired");
        assert_eq!(v["data"]["reason"], "expired");
        let e = Event::PatExpiring {
            pat_id: "p".into(),
            sub: "alice".into(),
            expires_at: 5,
            threshold_days: 7,
        };
        let v: serde_json::Value =
            serde_json::from_str(&payload(&e, 0).expect("payload").1).expect("json");
        assert_eq!(v["data"]["threshold_days"], 7);
        assert!(v["data"].get("reason").is_none());
    }
}
