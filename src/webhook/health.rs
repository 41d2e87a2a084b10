//! An endpoint's delivery health, pure: retries spread with jitter, the run of failures that
//! disables an endpoint, what changes after each attempt, and the test ping's payload.
//!
//! An endpoint that fails every attempt for `WEBHOOK_DISABLE_AFTER_SECONDS` (default 3 days,
//! counted from the first failure after its last success) is disabled: nothing more is queued
//! or sent to it, a `webhook.disabled` event says so, and an operator enables it again
//! (`POST /admin/webhooks/{id}/enable`). One success ends the run.

use super::retry_delay;

/// Default of `WEBHOOK_DISABLE_AFTER_SECONDS`.
pub const DEFAULT_DISABLE_AFTER_SECS: i64 = 3 * 86_400;

/// An endpoint's health as stored (D1 `webhook_endpoints`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Since when every attempt failed (`None`: the last one succeeded, or none failed yet).
    pub failing_since: Option<i64>,
    /// Disabled (automatically, or by an operator): nothing is queued or sent.
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
}

impl Health {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

/// What an attempt changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to write.
    Same,
    /// Write this health.
    Set(Health),
    /// Write this health: the endpoint has just been disabled.
    Disabled(Health),
}

/// The health after an attempt at `now` that delivered (`ok`) or failed.
pub fn after_attempt(h: &Health, ok: bool, now: i64, disable_after: i64) -> Change {
    if ok {
        return if h.failing_since.is_some() {
            Change::Set(Health {
                failing_since: None,
                ..h.clone()
            })
        } else {
            Change::Same
        };
    }
    let Some(since) = h.failing_since else {
        return Change::Set(Health {
            failing_since: Some(now),
            ..h.clone()
        });
    };
    if h.disabled_at.is_none() && now.saturating_sub(since) >= disable_after {
        return Change::Disabled(Health {
            failing_since: Some(since),
            disabled_at: Some(now),
            disabled_reason: Some(format!(
                "every delivery attempt failed for {} s (since {})",
                now - since,
                crate::time::rfc3339(since)
            )),
        });
    }
    Change::Same
}

/// The delay before the retry after failed attempt `attempt`, spread by up to 20% either way
/// (`r`: a random number) so that deliveries failing together do not come back together.
/// `None` after the last attempt.
pub fn retry_delay_with_jitter(attempt: u32, r: u32) -> Option<u32> {
    let base = retry_delay(attempt)?;
    // base * (0.8 + 0.4 * r / 2^32), in integers
    let spread = u64::from(base) * 2 / 5;
    let low = u64::from(base) - u64::from(base) / 5;
    let d = low + ((spread * u64::from(r)) >> 32);
    Some(u32::try_from(d).unwrap_or(base).max(1))
}

/// The event type of a test ping (sent to one endpoint on request, whatever it subscribes to).
pub const PING: &str = "webhook.ping";

/// A test ping of endpoint `endpoint` at `now`: its type and payload, shaped like every event's.
pub fn ping(endpoint: &str, now: i64) -> (String, String) {
    let body = serde_json::json!({
        "type": PING,
        "timestamp": crate::time::rfc3339(now),
        "data": { "endpoint": endpoint },
    });
    (PING.to_owned(), body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_run_of_failures_disables_after_the_bound_and_a_success_ends_it() {
        let h = Health::default();
        assert_eq!(after_attempt(&h, true, 10, DAY), Change::Same);
        let Change::Set(h) = after_attempt(&h, false, 100, DAY) else {
            panic!("the first failure starts the run");
        };
        assert_eq!(h.failing_since, Some(100));
        assert_eq!(after_attempt(&h, false, 100 + DAY - 1, DAY), Change::Same);
        let Change::Disabled(d) = after_attempt(&h, false, 100 + DAY, DAY) else {
            panic!("a day of failures disables it");
        };
        assert_eq!(d.disabled_at, Some(100 + DAY));
        assert!(d.disabled_reason.as_deref().unwrap().contains("86400 s"));
        // already disabled: nothing more to say
        assert_eq!(after_attempt(&d, false, 100 + 2 * DAY, DAY), Change::Same);
        // a success in the run ends it
        let Change::Set(ok) = after_attempt(&h, true, 200, DAY) else {
            panic!("a success clears the run");
        };
        assert_eq!(ok.failing_since, None);
        assert_eq!(
            after_attempt(&ok, false, 300, DAY),
            Change::Set(Health {
                failing_since: Some(300),
                ..Health::default()
            })
        );
    }

    #[test]
    fn a_ping_is_shaped_like_an_event() {
        let (ty, body) = ping("wh_0123456789abcdef", 1_795_996_800);
        assert_eq!(ty, "webhook.ping");
        assert_eq!(
            body,
            r#"{"data":{"endpoint":"wh_0123456789abcdef"},"timestamp":"2026-11-30T00:00:00Z","type":"webhook.ping"}"#
        );
    }

    #[test]
    fn retries_are_spread_within_a_fifth_of_the_schedule() {
        for attempt in 1..=8 {
            let base = retry_delay(attempt).unwrap();
            let lo = retry_delay_with_jitter(attempt, 0).unwrap();
            let hi = retry_delay_with_jitter(attempt, u32::MAX).unwrap();
            assert_eq!(lo, base - base / 5, "attempt {attempt}");
            assert!(
                hi >= base && hi <= base + base / 5,
                "attempt {attempt}: {hi}"
            );
            let mid = retry_delay_with_jitter(attempt, 1 << 31).unwrap();
            assert!(mid.abs_diff(base) <= 1, "attempt {attempt}: {mid}");
        }
        assert_eq!(retry_delay_with_jitter(9, 7), None);
        assert_eq!(retry_delay_with_jitter(0, 7), None);
        // no delay beyond the 12 hours Queues allow
        assert!(retry_delay_with_jitter(8, u32::MAX).unwrap() < 43_200);
    }
}
