//! What is delivered: the queue message ([`Delivery`], pinned: messages outlive a deploy), the
//! payload built from a security event (Standard Webhooks style: `type`, `timestamp`, `data`),
//! and the retry schedule.

use super::sampling::Summary;
use crate::events::Event;
use crate::time::rfc3339;
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

/// Cloudflare Queues limits (1 KB = 1000 bytes, and up to about 100 bytes of each message's
/// metadata count too): a message at most 128 KB, one `sendBatch` at most 100 messages and
/// 256 KB in all.
pub const QUEUE_MAX_MESSAGE_BYTES: usize = 128_000;
pub const QUEUE_MAX_BATCH_BYTES: usize = 256_000;
pub const QUEUE_MAX_BATCH_MESSAGES: usize = 100;
/// Counted per message on top of its body: the platform's metadata (about 100 bytes) and the
/// serialization's framing, with a margin.
const QUEUE_MESSAGE_OVERHEAD: usize = 256;

/// What a queue message of `d` counts against the Queues limits, at most: its body (the JSON of
/// [`Delivery`], sent as a JS string, which the runtime serializes with one byte per character
/// when all are Latin-1 and two per UTF-16 unit otherwise: at most twice the UTF-8 length) and
/// [`QUEUE_MESSAGE_OVERHEAD`].
pub fn queue_message_bytes(d: &Delivery) -> usize {
    let body = serde_json::to_string(d).map_or(usize::MAX / 4, |b| {
        if b.is_ascii() {
            b.len()
        } else {
            2 * b.len()
        }
    });
    body + QUEUE_MESSAGE_OVERHEAD
}

/// Cuts `sizes` (each message's [`queue_message_bytes`], in order) into consecutive batches of at
/// most [`QUEUE_MAX_BATCH_MESSAGES`] messages and [`QUEUE_MAX_BATCH_BYTES`] bytes: the index
/// ranges. Every size must be at most [`QUEUE_MAX_MESSAGE_BYTES`] (the caller drops larger ones).
pub fn queue_batches(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, &n) in sizes.iter().enumerate() {
        let full = i - start >= QUEUE_MAX_BATCH_MESSAGES
            || bytes.saturating_add(n) > QUEUE_MAX_BATCH_BYTES;
        if full && i > start {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes = bytes.saturating_add(n);
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// The payload of a sampling summary ([`super::sampling`]): the sampled event's own type,
/// with `data` `{"summary": true, "count": N, "window_start": T0, "window_end": T1}` (Unix
/// seconds): `N` events of that type in `[T0, T1)` were not delivered one by one.
pub fn summary_payload(s: &Summary, now: i64) -> (String, String) {
    let body = serde_json::json!({
        "type": s.event_type,
        "timestamp": rfc3339(now),
        "data": {
            "summary": true,
            "count": s.count,
            "window_start": s.window_start,
            "window_end": s.window_end,
        },
    });
    (s.event_type.to_owned(), body.to_string())
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
/// gets `reason` (`user`, `leaked`, `reuse`) derived from `via`;
/// `pat.expired` gets `reason: "expired"`. Times are RFC 3339 strings throughout (`timestamp`
/// and every `*_at` / `*_until` field of `data`).
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
    // One time format per payload: RFC 3339 UTC, like `timestamp` (the log lines keep Unix
    // seconds). Every time field of an event is named `*_at` or `*_until`.
    for (k, v) in &mut data {
        if k.ends_with("_at") || k.ends_with("_until") {
            if let Some(ts) = v.as_i64() {
                *v = rfc3339(ts).into();
            }
        }
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
        "timestamp": rfc3339(now),
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
/// the token through RFC 7009) is `user`. These three are every reason produced: no admin action
/// revokes tokens (disabling or deleting a client makes its tokens inactive, see
/// `app::tokens::status`), and expiry is its own event (`pat.expired`).
pub fn revocation_reason(via: &str) -> &'static str {
    match via {
        "leaked" => "leaked",
        "reuse" | "reuse_detected" => "reuse",
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
            // every `via` a revocation is emitted with (Event::revoked's callers) is one of the
            // above; anything else is the owner, never a reason nothing produces
            ("admin", "user"),
            ("expired", "user"),
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

    /// One time format per payload: `timestamp` and every time in `data` are RFC 3339.
    #[test]
    fn payload_times_are_rfc3339_throughout() {
        let at = |e: &Event| -> serde_json::Value {
            serde_json::from_str(&payload(e, 1_800_000_000).expect("payload").1).expect("json")
        };
        let v = at(&Event::PatExpiring {
            pat_id: "p".into(),
            sub: "alice".into(),
            expires_at: 1_800_086_400,
            threshold_days: 1,
        });
        assert_eq!(v["timestamp"], "2027-01-15T08:00:00Z");
        assert_eq!(v["data"]["expires_at"], "2027-01-16T08:00:00Z");
        assert_eq!(v["data"]["threshold_days"], 1, "a count stays a number");
        let v = at(&Event::PatRotated {
            pat_id: "p".into(),
            generation: 2,
            grace_until: Some(1_800_003_600),
            via: "api",
        });
        assert_eq!(v["data"]["grace_until"], "2027-01-15T09:00:00Z");
        assert_eq!(v["data"]["generation"], 2);
        let v = at(&Event::PatRotated {
            pat_id: "p".into(),
            generation: 2,
            grace_until: None,
            via: "api",
        });
        assert!(v["data"]
            .get("grace_until")
            .is_none_or(serde_json::Value::is_null));
        let v = at(&Event::PatReuseDetected {
            pat_id: "p".into(),
            sub: "s".into(),
            rotated_at: 1_799_996_400,
            ip: None,
            colo: None,
            country: None,
            family_revoked: false,
        });
        assert_eq!(v["data"]["rotated_at"], "2027-01-15T07:00:00Z");
        let v = at(&Event::PatCreated {
            pat_id: "p".into(),
            sub: "s".into(),
            scopes: vec![],
            expires_at: 1_800_000_000,
        });
        assert_eq!(v["data"]["expires_at"], v["timestamp"]);
    }
}
