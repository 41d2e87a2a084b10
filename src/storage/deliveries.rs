//! D1 `webhook_deliveries` (migration 0012) as the runtime reads and writes it, and its mapping
//! to [`Attempt`]; and D1 `token_usage` rows. An outcome or status that does not parse is an
//! error (the log is unreadable), never a default.

use crate::store::StoreError;
use crate::store_usage::Attempt;
use crate::usage::book::UsageRow;
use serde::Deserialize;

/// The columns the runtime selects, in the order of [`DeliveryRow`].
pub const DELIVERY_COLUMNS: &str = "id, endpoint_id, msg_id, event_type, attempt, at, outcome, \
    status, latency_ms, error, payload, redelivery";

/// The columns of an insert, in the order of [`insert_values`].
pub const DELIVERY_INSERT_COLUMNS: &str = "endpoint_id, msg_id, event_type, attempt, at, \
    outcome, status, latency_ms, error, payload, redelivery";

/// Outcomes an attempt may have.
pub const OUTCOMES: [&str; 4] = ["delivered", "retrying", "failed", "dropped"];

/// Longest error text kept per attempt.
pub const MAX_ERROR_CHARS: usize = 300;

/// A row of D1 `webhook_deliveries`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryRow {
    pub id: i64,
    pub endpoint_id: String,
    pub msg_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub at: i64,
    pub outcome: String,
    pub status: Option<i64>,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
    pub payload: String,
    pub redelivery: i64,
}

impl DeliveryRow {
    pub fn into_attempt(self) -> Result<Attempt, StoreError> {
        let bad = |what: &str| {
            StoreError::new(format!(
                "webhook_deliveries.{what} of attempt {} is unusable",
                self.id
            ))
        };
        if !OUTCOMES.contains(&self.outcome.as_str()) {
            return Err(bad("outcome"));
        }
        let status = self
            .status
            .map(|s| u16::try_from(s).map_err(|_| bad("status")))
            .transpose()?;
        let latency_ms = self
            .latency_ms
            .map(|l| u32::try_from(l).map_err(|_| bad("latency_ms")))
            .transpose()?;
        let attempt = u32::try_from(self.attempt).map_err(|_| bad("attempt"))?;
        Ok(Attempt {
            id: Some(self.id),
            endpoint: self.endpoint_id,
            msg_id: self.msg_id,
            event_type: self.event_type,
            attempt,
            at: self.at,
            outcome: self.outcome,
            status,
            latency_ms,
            error: self.error,
            payload: self.payload,
            redelivery: self.redelivery != 0,
        })
    }
}

/// A value of an insert: text, optional text, or an integer (optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(Option<i64>),
    OptText(Option<String>),
}

/// The values of an attempt's insert (see [`DELIVERY_INSERT_COLUMNS`]); the error is cut to
/// [`MAX_ERROR_CHARS`].
pub fn insert_values(a: &Attempt) -> Vec<Value> {
    vec![
        Value::Text(a.endpoint.clone()),
        Value::Text(a.msg_id.clone()),
        Value::Text(a.event_type.clone()),
        Value::Int(Some(i64::from(a.attempt))),
        Value::Int(Some(a.at)),
        Value::Text(a.outcome.clone()),
        Value::Int(a.status.map(i64::from)),
        Value::Int(a.latency_ms.map(i64::from)),
        Value::OptText(
            a.error
                .as_ref()
                .map(|e| e.chars().take(MAX_ERROR_CHARS).collect()),
        ),
        Value::Text(a.payload.clone()),
        Value::Int(Some(i64::from(a.redelivery))),
    ]
}

/// The columns of D1 `token_usage` the runtime selects, in the order of [`UsageDbRow`].
pub const USAGE_COLUMNS: &str = "day, via, name, outcome, uses";

/// A row of D1 `token_usage`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageDbRow {
    pub day: i64,
    pub via: String,
    pub name: String,
    pub outcome: String,
    pub uses: i64,
}

impl UsageDbRow {
    pub fn into_row(self) -> Result<UsageRow, StoreError> {
        Ok(UsageRow {
            uses: u64::try_from(self.uses)
                .map_err(|_| StoreError::new("token_usage.uses is negative"))?,
            day: self.day,
            via: self.via,
            name: self.name,
            outcome: self.outcome,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as J};

    fn row(columns: &str, values: &[J]) -> J {
        let names: Vec<&str> = columns.split(',').map(str::trim).collect();
        assert_eq!(names.len(), values.len(), "one value per column");
        J::Object(
            names
                .into_iter()
                .map(str::to_owned)
                .zip(values.iter().cloned())
                .collect(),
        )
    }

    fn attempt() -> Attempt {
        Attempt {
            id: None,
            endpoint: "wh_0123456789abcdef".into(),
            msg_id: "msg_x".into(),
            event_type: "pat.revoked".into(),
            attempt: 2,
            at: 1_795_000_000,
            outcome: "retrying".into(),
            status: Some(503),
            latency_ms: Some(41),
            error: None,
            payload: r#"{"type":"pat.revoked"}"#.into(),
            redelivery: false,
        }
    }

    /// Golden: the columns of an insert and of a read, and how a row becomes an attempt. The
    /// insert's columns are the read's without `id`.
    #[test]
    fn delivery_row_contract() {
        assert_eq!(
            DELIVERY_COLUMNS.strip_prefix("id, "),
            Some(DELIVERY_INSERT_COLUMNS)
        );
        let a = attempt();
        let values = insert_values(&a);
        assert_eq!(
            values,
            [
                Value::Text("wh_0123456789abcdef".into()),
                Value::Text("msg_x".into()),
                Value::Text("pat.revoked".into()),
                Value::Int(Some(2)),
                Value::Int(Some(1_795_000_000)),
                Value::Text("retrying".into()),
                Value::Int(Some(503)),
                Value::Int(Some(41)),
                Value::OptText(None),
                Value::Text(r#"{"type":"pat.revoked"}"#.into()),
                Value::Int(Some(0)),
            ]
        );
        let v = row(
            DELIVERY_COLUMNS,
            &[
                json!(7),
                json!("wh_0123456789abcdef"),
                json!("msg_x"),
                json!("pat.revoked"),
                json!(2),
                json!(1_795_000_000),
                json!("retrying"),
                json!(503),
                json!(41),
                J::Null,
                json!(r#"{"type":"pat.revoked"}"#),
                json!(0),
            ],
        );
        let back = serde_json::from_value::<DeliveryRow>(v)
            .unwrap()
            .into_attempt()
            .unwrap();
        assert_eq!(back, Attempt { id: Some(7), ..a });
    }

    #[test]
    fn unusable_rows_are_errors_and_long_errors_are_cut() {
        let with = |outcome: &str, status: J| {
            serde_json::from_value::<DeliveryRow>(row(
                DELIVERY_COLUMNS,
                &[
                    json!(1),
                    json!("wh_1"),
                    json!("m"),
                    json!("t"),
                    json!(1),
                    json!(1),
                    json!(outcome),
                    status,
                    J::Null,
                    J::Null,
                    json!("{}"),
                    json!(1),
                ],
            ))
            .unwrap()
            .into_attempt()
        };
        assert!(with("delivered", json!(200)).unwrap().redelivery);
        assert!(with("lost", json!(200)).is_err());
        assert!(with("delivered", json!(70_000)).is_err());
        assert!(with("delivered", json!(-1)).is_err());
        let long = Attempt {
            error: Some("é".repeat(1000)),
            ..attempt()
        };
        match &insert_values(&long)[8] {
            Value::OptText(Some(e)) => assert_eq!(e.chars().count(), MAX_ERROR_CHARS),
            v => panic!("{v:?}"),
        }
    }

    /// Golden: `token_usage` rows.
    #[test]
    fn usage_row_contract() {
        let v = row(
            USAGE_COLUMNS,
            &[
                json!(20_775),
                json!("gate"),
                json!("demo"),
                json!("active"),
                json!(12),
            ],
        );
        let r = serde_json::from_value::<UsageDbRow>(v)
            .unwrap()
            .into_row()
            .unwrap();
        assert_eq!(
            r,
            UsageRow {
                day: 20_775,
                via: "gate".into(),
                name: "demo".into(),
                outcome: "active".into(),
                uses: 12,
            }
        );
        let neg = row(
            USAGE_COLUMNS,
            &[json!(1), json!("g"), json!("d"), json!("a"), json!(-1)],
        );
        assert!(serde_json::from_value::<UsageDbRow>(neg)
            .unwrap()
            .into_row()
            .is_err());
    }
}
