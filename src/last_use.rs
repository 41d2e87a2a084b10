//! The contract of the `LastUsed` Durable Object (`src/edge/last_used.rs`), shared by the caller
//! (`EdgeBackend::record_use`) and the object, and pinned by golden tests: the request body of
//! `POST /record`, the state the object keeps in its storage (key `state`) and its daily count
//! buckets (keys `day:{n}`). The object's bookkeeping is [`crate::usage::book`].

use serde::{Deserialize, Serialize};

/// `POST /record` body: `uses` uses of token `token_id`, the last at `at` (unix seconds), and
/// (from the version that counts per day) what they were, per UTC day, and where the use that
/// triggered the report came from.
///
/// **Wire format** between isolates that may run different versions during a deploy: add only
/// optional fields; never rename or remove one. An object of the previous version ignores
/// `counts` and `from` (it adds `uses`); this version counts a record without `counts` on the
/// day of `at` under `unknown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UseRecord {
    pub token_id: String,
    pub at: i64,
    pub uses: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<DayCount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<UsedFrom>,
}

/// Uses on one UTC day (days since 1970-01-01) of one (via, name, outcome): see
/// [`crate::usage::UseKey`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    pub day: i64,
    pub via: String,
    pub name: String,
    pub outcome: String,
    pub uses: u32,
}

/// Where a use came from, as Cloudflare reported it (see [`crate::origin`]). Through the gate
/// the caller is the token's holder: its IP and country, and the location (colo) that received
/// it. Through introspection the caller is the API: the place is the resource (`name`), without
/// IP, country or location (they would be the API server's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedFrom {
    pub via: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colo: Option<String>,
}

/// One place the token was used from ([`UsedFrom`]'s fields), with the first and last time it
/// was seen there. Also the D1 column `tokens.last_used_from` (a JSON array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromEntry {
    pub via: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colo: Option<String>,
    pub first_at: i64,
    pub last_at: i64,
}

impl FromEntry {
    /// Whether this entry is the place `f`.
    pub fn is(&self, f: &UsedFrom) -> bool {
        self.via == f.via
            && self.name == f.name
            && self.ip == f.ip
            && self.country == f.country
            && self.colo == f.colo
    }
}

/// What the object stores (DO storage key `state`) and writes to D1 on its alarm.
///
/// **Persisted format**: read back by later versions of the object; add only optional fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UseState {
    pub token_id: String,
    pub last_used_at: i64,
    pub use_count: i64,
    /// Uses per UTC day, `[day, uses]` ascending, the last [`crate::usage::RETENTION_DAYS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub daily: Vec<(i64, u64)>,
    /// Days whose bucket changed since the last write to D1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirty: Vec<i64>,
    /// Where the token was used from, most recent first (at most [`crate::usage::MAX_FROM`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<FromEntry>,
    /// Records applied so far: the alarm writes D1, then clears `dirty` only if no record came
    /// in meanwhile.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One UTC day's counts (DO storage key `day:{day}`).
///
/// **Persisted format**: add only optional fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayBucket {
    pub day: i64,
    pub counts: Vec<Count>,
}

/// Uses of one (via, name, outcome) on a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub via: String,
    pub name: String,
    pub outcome: String,
    pub uses: u64,
}

/// The DO storage key of a day's bucket.
pub fn day_key(day: i64) -> String {
    format!("day:{day}")
}

impl UseState {
    /// Applies a record's totals: `last_used_at` only ever rises, `use_count` adds up.
    pub fn apply(&mut self, r: &UseRecord) {
        self.token_id.clone_from(&r.token_id);
        self.last_used_at = self.last_used_at.max(r.at);
        self.use_count = self.use_count.saturating_add(i64::from(r.uses));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers and the object may be one version apart during a deploy: this must not change.
    #[test]
    fn record_wire_format_unchanged() {
        let r = UseRecord {
            token_id: "t1".into(),
            at: 1_795_000_000,
            uses: 3,
            counts: Vec::new(),
            from: None,
        };
        let json = serde_json::to_string(&r).expect("json");
        assert_eq!(json, r#"{"token_id":"t1","at":1795000000,"uses":3}"#);
        assert_eq!(serde_json::from_str::<UseRecord>(&json).expect("parse"), r);
        assert!(serde_json::from_str::<UseRecord>(r#"{"token_id":"t","at":1,"uses":-1}"#).is_err());
    }

    /// Stored in every object's storage and read by later versions: this must not change.
    #[test]
    fn state_storage_format_unchanged() {
        let s = UseState {
            token_id: "t1".into(),
            last_used_at: 1_795_000_000,
            use_count: 42,
            ..UseState::default()
        };
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(
            json,
            r#"{"token_id":"t1","last_used_at":1795000000,"use_count":42}"#
        );
        assert_eq!(serde_json::from_str::<UseState>(&json).expect("parse"), s);
    }

    #[test]
    fn last_use_only_rises_and_counts_add_up() {
        let rec = |at, uses| UseRecord {
            token_id: "t".into(),
            at,
            uses,
            counts: Vec::new(),
            from: None,
        };
        let mut s = UseState::default();
        s.apply(&rec(100, 2));
        s.apply(&rec(90, 1)); // a late report
        assert_eq!((s.last_used_at, s.use_count), (100, 3));
        s.apply(&rec(120, u32::MAX));
        assert_eq!(
            (s.last_used_at, s.use_count),
            (120, 3 + i64::from(u32::MAX))
        );
    }

    /// What an object of the previous version reads of a record: its three fields.
    #[derive(Deserialize)]
    struct Previous {
        token_id: String,
        at: i64,
        uses: u32,
    }

    /// The record of the version that counts per day: pinned like the old one, and the old
    /// shape is still what an object of either version accepts.
    #[test]
    fn record_with_counts_wire_format_unchanged() {
        let r = UseRecord {
            token_id: "t1".into(),
            at: 1_795_000_000,
            uses: 3,
            counts: vec![DayCount {
                day: 20_775,
                via: "gate".into(),
                name: "demo".into(),
                outcome: "insufficient_scope".into(),
                uses: 3,
            }],
            from: Some(UsedFrom {
                via: "gate".into(),
                name: "demo".into(),
                ip: Some("203.0.113.7".into()),
                country: Some("US".into()),
                colo: Some("DFW".into()),
            }),
        };
        let json = serde_json::to_string(&r).expect("json");
        assert_eq!(
            json,
            r#"{"token_id":"t1","at":1795000000,"uses":3,"counts":[{"day":20775,"via":"gate","name":"demo","outcome":"insufficient_scope","uses":3}],"from":{"via":"gate","name":"demo","ip":"203.0.113.7","country":"US","colo":"DFW"}}"#
        );
        assert_eq!(serde_json::from_str::<UseRecord>(&json).expect("parse"), r);
        // an old caller's record
        let old: UseRecord =
            serde_json::from_str(r#"{"token_id":"t1","at":5,"uses":2}"#).expect("old record");
        assert!(old.counts.is_empty() && old.from.is_none());
        // what an object of the previous version reads of a new record
        let p: Previous = serde_json::from_str(&json).expect("the previous version reads it");
        assert_eq!(
            (p.token_id.as_str(), p.at, p.uses),
            ("t1", 1_795_000_000, 3)
        );
    }

    /// The state with every field of the version that counts per day, and the state of the
    /// previous version read by this one.
    #[test]
    fn state_with_counts_storage_format_unchanged() {
        let s = UseState {
            token_id: "t1".into(),
            last_used_at: 100,
            use_count: 7,
            daily: vec![(20_774, 4), (20_775, 3)],
            dirty: vec![20_775],
            from: vec![FromEntry {
                via: "introspection".into(),
                name: "demo_api".into(),
                ip: None,
                country: None,
                colo: Some("FRA".into()),
                first_at: 90,
                last_at: 100,
            }],
            seq: 2,
        };
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(
            json,
            r#"{"token_id":"t1","last_used_at":100,"use_count":7,"daily":[[20774,4],[20775,3]],"dirty":[20775],"from":[{"via":"introspection","name":"demo_api","colo":"FRA","first_at":90,"last_at":100}],"seq":2}"#
        );
        assert_eq!(serde_json::from_str::<UseState>(&json).expect("parse"), s);
        let old: UseState =
            serde_json::from_str(r#"{"token_id":"t1","last_used_at":1,"use_count":42}"#)
                .expect("the previous version's state");
        assert_eq!(old.use_count, 42);
        assert!(old.daily.is_empty() && old.from.is_empty());
    }

    /// A day's bucket (key `day:{n}`).
    #[test]
    fn day_bucket_storage_format_unchanged() {
        let b = DayBucket {
            day: 20_775,
            counts: vec![Count {
                via: "introspection".into(),
                name: "demo_api".into(),
                outcome: "active".into(),
                uses: 12,
            }],
        };
        let json = serde_json::to_string(&b).expect("json");
        assert_eq!(
            json,
            r#"{"day":20775,"counts":[{"via":"introspection","name":"demo_api","outcome":"active","uses":12}]}"#
        );
        assert_eq!(serde_json::from_str::<DayBucket>(&json).expect("parse"), b);
        assert_eq!(day_key(20_775), "day:20775");
    }
}
