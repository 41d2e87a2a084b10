//! D1 `webhook_endpoints` (migration 0007) as the runtime reads and writes it, and its mapping to
//! [`WebhookEndpoint`]. A secret or event type list that does not parse is an error (the
//! endpoint is unreadable), never a default.
//!
//! `secret` and `previous_secret` hold the `whsec_...` text as is: HMAC signing needs the key,
//! so it cannot be stored as a hash like client secrets.

use crate::store::{EndpointFormat, StoreError, WebhookEndpoint};
use crate::webhook::WebhookSecret;
use serde::Deserialize;

/// The columns the runtime selects, in the order of [`WebhookRow`].
pub const WEBHOOK_COLUMNS: &str = "id, url, event_types, secret, previous_secret, \
    previous_secret_until, created_at, failing_since, disabled_at, disabled_reason, format, \
     set_audience, set_token_hash";

/// `webhook_endpoints.format` of a Security Event Token receiver (migration 0013; the default
/// `standard` is Standard Webhooks).
pub const FORMAT_SECEVENT: &str = "secevent";

/// A row of D1 `webhook_endpoints`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub event_types: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub created_at: i64,
    pub failing_since: Option<i64>,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub format: String,
    pub set_audience: Option<String>,
    pub set_token_hash: i64,
}

impl WebhookRow {
    /// `webhook_endpoints.event_types` as stored: a JSON array of strings.
    pub fn event_types_column(types: &[String]) -> Result<String, StoreError> {
        serde_json::to_string(types).map_err(StoreError::new)
    }

    pub fn into_model(self) -> Result<WebhookEndpoint, StoreError> {
        let bad = |what: &str| {
            StoreError::new(format!(
                "webhook_endpoints.{what} of {} is unusable",
                self.id
            ))
        };
        let secret = WebhookSecret::parse(&self.secret).map_err(|_| bad("secret"))?;
        let previous_secret = match (&self.previous_secret, self.previous_secret_until) {
            (Some(p), Some(until)) => Some((
                WebhookSecret::parse(p).map_err(|_| bad("previous_secret"))?,
                until,
            )),
            _ => None,
        };
        let event_types =
            serde_json::from_str(&self.event_types).map_err(|_| bad("event_types"))?;
        let format = match (self.format.as_str(), &self.set_audience) {
            ("standard", _) => EndpointFormat::Standard,
            (FORMAT_SECEVENT, Some(audience)) if !audience.is_empty() => {
                EndpointFormat::SecEvent(crate::revocation::push::Receiver {
                    audience: audience.clone(),
                    token_hash: self.set_token_hash != 0,
                })
            }
            _ => return Err(bad("format")),
        };
        Ok(WebhookEndpoint {
            format,
            event_types,
            secret,
            previous_secret,
            id: self.id,
            url: self.url,
            created_at: self.created_at,
            health: crate::webhook::health::Health {
                failing_since: self.failing_since,
                disabled_at: self.disabled_at,
                disabled_reason: self.disabled_reason,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn row(values: &[Value]) -> Value {
        let names: Vec<&str> = WEBHOOK_COLUMNS.split(',').map(str::trim).collect();
        assert_eq!(names.len(), values.len(), "one value per column");
        Value::Object(
            names
                .into_iter()
                .map(str::to_owned)
                .zip(values.iter().cloned())
                .collect(),
        )
    }

    /// Golden: the columns the runtime selects and how a row becomes an endpoint. The column list
    /// and the row type must agree (unknown fields are refused).
    #[test]
    fn webhook_row_contract() {
        let types = WebhookRow::event_types_column(&["pat.revoked".into(), "*".into()]).unwrap();
        assert_eq!(types, r#"["pat.revoked","*"]"#);
        let v = row(&[
            json!("wh_0123456789abcdef"),
            json!("https://hooks.example.com/p"),
            json!(types),
            json!(SECRET),
            json!(SECRET),
            json!(99),
            json!(5),
            json!(40),
            json!(60),
            json!("failing"),
            json!("standard"),
            Value::Null,
            json!(0),
        ]);
        let w = serde_json::from_value::<WebhookRow>(v)
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(w.id, "wh_0123456789abcdef");
        assert_eq!(w.event_types, ["pat.revoked", "*"]);
        assert_eq!(w.secret.expose_secret(), SECRET);
        assert_eq!(w.previous_secret.as_ref().map(|p| p.1), Some(99));
        assert_eq!(w.created_at, 5);
        assert_eq!(w.health.failing_since, Some(40));
        assert_eq!(w.health.disabled_at, Some(60));
        assert_eq!(w.health.disabled_reason.as_deref(), Some("failing"));
        let no_previous = row(&[
            json!("wh_1"),
            json!("https://h.example/"),
            json!("[\"*\"]"),
            json!(SECRET),
            Value::Null,
            Value::Null,
            json!(5),
            Value::Null,
            Value::Null,
            Value::Null,
            json!("standard"),
            Value::Null,
            json!(0),
        ]);
        let w = serde_json::from_value::<WebhookRow>(no_previous)
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(w.previous_secret, None);
        assert!(!w.health.is_disabled());
        assert_eq!(w.format, EndpointFormat::Standard);
        let receiver = row(&[
            json!("wh_2"),
            json!("https://h.example/"),
            json!("[]"),
            json!(SECRET),
            Value::Null,
            Value::Null,
            json!(5),
            Value::Null,
            Value::Null,
            Value::Null,
            json!("secevent"),
            json!("https://api.example"),
            json!(1),
        ]);
        let w = serde_json::from_value::<WebhookRow>(receiver)
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(
            w.format,
            EndpointFormat::SecEvent(crate::revocation::push::Receiver {
                audience: "https://api.example".into(),
                token_hash: true,
            })
        );
    }

    #[test]
    fn unusable_rows_are_errors() {
        let with = |secret: &str, types: &str| {
            serde_json::from_value::<WebhookRow>(row(&[
                json!("wh_1"),
                json!("https://h.example/"),
                json!(types),
                json!(secret),
                Value::Null,
                Value::Null,
                json!(5),
                Value::Null,
                Value::Null,
                Value::Null,
                json!("standard"),
                Value::Null,
                json!(0),
            ]))
            .unwrap()
            .into_model()
        };
        assert!(with(SECRET, "[\"*\"]").is_ok());
        let e = with("whsec_short", "[\"*\"]").unwrap_err();
        assert!(
            !e.0.contains("whsec_short"),
            "the error does not echo the secret: {}",
            e.0
        );
        assert!(with(SECRET, "*").is_err());
        assert!(with(SECRET, "{}").is_err());
    }
}
