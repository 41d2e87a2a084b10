//! Signed webhooks, the pure part: Standard Webhooks signatures (<https://www.standardwebhooks.com>),
//! endpoint secrets, the payload built from a security [`Event`], the queue message format, the
//! retry schedule, and validation of what operators register (URL, event types).
//!
//! A delivery is an HTTP POST of the JSON payload with three headers:
//! - `webhook-id`: the message id (`msg_...`), the same on every retry, so receivers dedupe by it;
//! - `webhook-timestamp`: Unix seconds of this attempt (receivers refuse old ones: replay bound);
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`, keyed with
//!   the decoded bytes of the endpoint secret `whsec_<base64>`; several space-separated
//!   signatures while a rotated-away secret is still in its grace period.

use crate::app::events::Event;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use std::fmt;
use subtle::ConstantTimeEq;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The prefix of an endpoint secret (Standard Webhooks convention).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a generated secret (the spec allows 24 to 64).
const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret, `whsec_<base64 of 32 random bytes>`. `Debug` never shows it.
///
/// Unlike client secrets (hashed at rest), it is stored as is: HMAC signing needs the key itself,
/// and a hash of it could not sign. It is shown once, when generated, never in a read.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

/// Why a stored or presented secret is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSecret;

impl WebhookSecret {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = [0u8; SECRET_BYTES];
        getrandom::fill(&mut key)?;
        Ok(WebhookSecret(format!("{SECRET_PREFIX}{}", B64.encode(key))))
    }

    /// A secret as stored (D1): `whsec_` and base64 of 24 to 64 bytes.
    pub fn parse(s: &str) -> Result<Self, BadSecret> {
        let secret = WebhookSecret(s.to_owned());
        let n = secret.key()?.len();
        if (24..=64).contains(&n) {
            Ok(secret)
        } else {
            Err(BadSecret)
        }
    }

    /// The HMAC key: the decoded bytes after the prefix.
    fn key(&self) -> Result<Vec<u8>, BadSecret> {
        let b64 = self.0.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?;
        B64.decode(b64).map_err(|_| BadSecret)
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The signed content: `{id}.{timestamp}.{body}`.
fn signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(msg_id.len() + body.len() + 24);
    v.extend_from_slice(msg_id.as_bytes());
    v.push(b'.');
    v.extend_from_slice(timestamp.to_string().as_bytes());
    v.push(b'.');
    v.extend_from_slice(body);
    v
}

/// One `v1,<base64>` signature.
pub fn sign(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, BadSecret> {
    let mac = hmac_sha256(&secret.key()?, &signed_content(msg_id, timestamp, body));
    Ok(format!("v1,{}", B64.encode(mac)))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, BadSecret> {
    let sigs: Result<Vec<String>, BadSecret> = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect();
    Ok(sigs?.join(" "))
}

/// What a receiver does (README "Webhooks"): true if any `v1` signature in `header` matches
/// (constant-time). The timestamp tolerance is the receiver's own check.
pub fn verify(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let Ok(expected) = sign(secret, msg_id, timestamp, body) else {
        return false;
    };
    header
        .split(' ')
        .any(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
}

/// A new message id: `msg_` and 22 characters of URL-safe base64 (128 random bits).
pub fn new_msg_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    Ok(format!(
        "msg_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    ))
}

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

/// The payload of a sampling summary ([`crate::app::sampling`]): the sampled event's own type,
/// with `data` `{"summary": true, "count": N, "window_start": T0, "window_end": T1}` (Unix
/// seconds): `N` events of that type in `[T0, T1)` were not delivered one by one.
pub fn summary_payload(s: &crate::app::sampling::Summary, now: i64) -> (String, String) {
    let body = serde_json::json!({
        "type": s.event_type,
        "timestamp": crate::app::rfc3339(now),
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
                *v = crate::app::rfc3339(ts).into();
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
        "timestamp": crate::app::rfc3339(now),
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
/// `app::decision::status`), and expiry is its own event (`pat.expired`).
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

/// Event types an endpoint can subscribe to: every security event (`pat.reuse_detected` comes
/// with reuse detection), plus `*` (all). `webhook.*` delivery outcomes are log lines only.
pub const EVENT_TYPES: [&str; 13] = [
    "pat.created",
    "pat.rotated",
    "pat.revoked",
    "pat.expiring",
    "pat.expired",
    "pat.reuse_detected",
    "token.leaked",
    "token.revoked",
    "token.issued",
    "admin.change",
    "client_auth.failed",
    "rate_limited",
    "warning",
];

/// Most event types one endpoint lists.
pub const MAX_EVENT_TYPES: usize = 32;

/// Checks an endpoint's event type filter: 1 to [`MAX_EVENT_TYPES`] known names (or `*`), no
/// repeats.
pub fn check_event_types(types: &[String]) -> Result<(), String> {
    if types.is_empty() || types.len() > MAX_EVENT_TYPES {
        return Err(format!(
            "event_types must list 1 to {MAX_EVENT_TYPES} event types"
        ));
    }
    for (i, t) in types.iter().enumerate() {
        if t != "*" && !EVENT_TYPES.contains(&t.as_str()) {
            let shown: String = t.chars().take(64).collect();
            return Err(format!(
                "unknown event type {shown:?} (known: *, {})",
                EVENT_TYPES.join(", ")
            ));
        }
        if types[..i].contains(t) {
            return Err(format!("event type {t} is repeated"));
        }
    }
    Ok(())
}

/// Whether an endpoint with filter `types` gets events of type `ty`.
pub fn subscribed(types: &[String], ty: &str) -> bool {
    !ty.starts_with("webhook.") && types.iter().any(|t| t == "*" || t == ty)
}

/// Longest endpoint URL.
pub const MAX_URL_LEN: usize = crate::net_guard::MAX_URL_LEN;

/// Checks an endpoint URL with [`crate::net_guard::public_https_url`]: absolute `https` to a
/// public DNS name (no numeric, loopback, private or link-local host, no `localhost`), no
/// credentials, no fragment, at most [`MAX_URL_LEN`]. With `allow_local`
/// (`WEBHOOK_ALLOW_HTTP_LOCALHOST`, local development and tests only) any host over `https`, and
/// plain `http` to `localhost`, `127.0.0.1` or `[::1]`.
pub fn check_url(url: &str, allow_local: bool) -> Result<(), String> {
    crate::net_guard::public_https_url(url, allow_local)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 4231 section 4: HMAC-SHA-256 test cases 1-4, 6 and 7 (5 is truncated output).
    #[test]
    fn hmac_sha256_rfc4231_vectors() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, want) in cases {
            assert_eq!(hmac_sha256(&key, &data).to_vec(), unhex(want));
        }
    }

    /// The reference vector of the Standard Webhooks libraries (standard-webhooks/standard-webhooks
    /// `libraries/javascript/src/index.test.ts` and the Python/Go tests): this secret, id,
    /// timestamp and payload sign to exactly this.
    #[test]
    fn standard_webhooks_reference_vector() {
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = 1_614_265_330;
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&secret, id, ts, body).expect("sign");
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(&secret, id, ts, body, &sig));
        assert!(verify(&secret, id, ts, body, &format!("v1,bogus {sig}")));
        // Anything changed: no match.
        assert!(!verify(&secret, id, ts + 1, body, &sig));
        assert!(!verify(&secret, "msg_other", ts, body, &sig));
        assert!(!verify(&secret, id, ts, br#"{"test": 2432232315}"#, &sig));
        let other = WebhookSecret::generate().expect("rng");
        assert!(!verify(&other, id, ts, body, &sig));
    }

    #[test]
    fn secrets_are_random_prefixed_and_redacted() {
        let a = WebhookSecret::generate().expect("rng");
        let b = WebhookSecret::generate().expect("rng");
        assert_ne!(a, b);
        assert!(a.expose_secret().starts_with("whsec_"));
        assert_eq!(a.key().expect("key").len(), 32);
        assert_eq!(WebhookSecret::parse(a.expose_secret()), Ok(a.clone()));
        assert_eq!(format!("{a:?}"), "WebhookSecret([REDACTED])");
        assert!(!format!("{a:?}").contains(&a.expose_secret()[6..]));
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!!",
            "whsec_AAAA",
        ] {
            assert_eq!(WebhookSecret::parse(bad), Err(BadSecret), "{bad}");
        }
    }

    #[test]
    fn several_secrets_sign_several_times() {
        let a = WebhookSecret::generate().expect("rng");
        let b = WebhookSecret::generate().expect("rng");
        let h = signature_header(&[&a, &b], "msg_1", 5, b"{}").expect("sign");
        assert_eq!(h.split(' ').count(), 2);
        assert!(verify(&a, "msg_1", 5, b"{}", &h));
        assert!(verify(&b, "msg_1", 5, b"{}", &h));
    }

    #[test]
    fn message_ids_are_unique_and_url_safe() {
        let a = new_msg_id().expect("rng");
        let b = new_msg_id().expect("rng");
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 22);
        assert!(a[4..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

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

    /// Every event the service emits today can be subscribed to by name.
    #[test]
    fn every_event_type_is_subscribable() {
        let all = [
            Event::PatCreated {
                pat_id: "p".into(),
                sub: "s".into(),
                scopes: vec![],
                expires_at: 0,
            },
            Event::PatRevoked {
                pat_id: "p".into(),
                newly: true,
                via: "api",
            },
            Event::TokenLeaked {
                token_id: "t".into(),
                kind: "pat",
                newly: true,
                grace_ended: false,
                url: None,
                source: None,
            },
            Event::TokenRevoked {
                token_id: "t".into(),
                client_id: "c".into(),
            },
            Event::PatExpiring {
                pat_id: "p".into(),
                sub: "s".into(),
                expires_at: 0,
                threshold_days: 1,
            },
            Event::PatExpired {
                pat_id: "p".into(),
                sub: "s".into(),
                expires_at: 0,
            },
            Event::PatRotated {
                pat_id: "p".into(),
                generation: 1,
                grace_until: None,
                via: "api",
            },
            Event::TokenIssued {
                client_id: "c".into(),
                sub: "s".into(),
                format: "reference",
                grant: "client_credentials",
            },
            Event::AdminChange {
                method: "POST",
                target: "clients".into(),
                status: 201,
                outcome: "ok",
            },
            Event::ClientAuthFailed {
                client_id: "c".into(),
                ip: "ip".into(),
                reason: "r".into(),
            },
            Event::RateLimited {
                limit: "l",
                key: "k".into(),
            },
            Event::Warning {
                message: "m".into(),
            },
            Event::PatReuseDetected {
                pat_id: "p".into(),
                sub: "s".into(),
                rotated_at: 1,
                ip: None,
                colo: None,
                country: None,
                family_revoked: true,
            },
        ];
        for e in &all {
            let ty = event_type(e).expect("type");
            assert!(EVENT_TYPES.contains(&ty.as_str()), "{ty}");
            assert_eq!(payload(e, 0).expect("payload").0, ty);
        }
    }

    #[test]
    fn event_type_filters() {
        let ok =
            |v: &[&str]| check_event_types(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert!(ok(&["pat.revoked"]).is_ok());
        assert!(ok(&["*"]).is_ok());
        assert!(ok(&["pat.revoked", "pat.reuse_detected"]).is_ok());
        assert!(ok(&[]).is_err());
        assert!(ok(&["pat.revoked", "pat.revoked"]).is_err());
        assert!(ok(&["pat.*"]).is_err());
        assert!(ok(&["PAT.REVOKED"]).is_err());
        assert!(ok(&["webhook.failed"]).is_err());
        assert!(ok(&["pat.revoked\n"]).is_err());
        let long = "x".repeat(10_000);
        let e = ok(&[long.as_str()]).expect_err("long");
        assert!(e.len() < 1000, "the error does not echo huge input");
        let many: Vec<String> = (0..33).map(|_| "*".to_owned()).collect();
        assert!(check_event_types(&many).is_err());
        let types = vec!["pat.revoked".to_owned()];
        assert!(subscribed(&types, "pat.revoked"));
        assert!(!subscribed(&types, "pat.created"));
        assert!(subscribed(&["*".to_owned()], "pat.created"));
        assert!(!subscribed(&["*".to_owned()], "webhook.failed"));
    }

    #[test]
    fn urls_are_https_without_credentials() {
        for ok in [
            "https://hooks.example.com/patgate",
            "https://hooks.example.com",
            "https://hooks.example.com:8443/a/b?x=1",
        ] {
            assert_eq!(check_url(ok, false), Ok(()), "{ok}");
        }
        // Numeric hosts (the guard's own tests cover every form and range).
        for bad in [
            "https://[2001:db8::1]:443/h",
            "https://192.0.2.7/h",
            "https://127.0.0.1/h",
            "https://[::1]/h",
            "https://169.254.169.254/h",
            "https://10.0.0.1/h",
            "https://2130706433/h",
            "https://localhost/h",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
            assert!(check_url(bad, true).is_ok(), "{bad} in local development");
        }
        assert_eq!(check_url("http://127.0.0.1:8989/h", true), Ok(()));
        assert_eq!(check_url("http://localhost:8989/h", true), Ok(()));
        assert_eq!(check_url("http://LOCALHOST/h", true), Ok(()));
        for bad in [
            "http://127.0.0.1:8989/h",
            "http://hooks.example.com/h",
            "ftp://hooks.example.com/h",
            "javascript:alert(1)",
            "//hooks.example.com/h",
            "https://user:pw@hooks.example.com/h",
            "https://user@hooks.example.com/h",
            "https://hooks.example.com/h#frag",
            "https://hooks.example.com/a b",
            "https://hooks.example.com/\n",
            "https:///h",
            "https://hooks..example.com/",
            "https://hooks.example.com:99999/",
            "https://hooks.example.com:/",
            "https://hooks.example.com:12a/",
            "https://ho_st.example.com/",
            "https://hooks.example.com\\@evil.example/",
            "https://[::1/",
            "https://hooks.example.com/ü",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        // Even with the flag, http is for the local machine only.
        assert!(check_url("http://127.0.0.2/h", true).is_err());
        assert!(check_url("http://localhost.evil.example/h", true).is_err());
        assert!(check_url("http://localhost@evil.example/h", true).is_err());
        let long = format!("https://h.example/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_url(&long, false).is_err());
    }
}
