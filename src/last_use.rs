//! The contract of the `LastUsed` Durable Object (`src/edge/last_used.rs`), shared by the caller
//! (`EdgeBackend::record_use`) and the object, and pinned by golden tests: the request body of
//! `POST /record` and the state the object keeps in its storage (key `state`).

use serde::{Deserialize, Serialize};

/// `POST /record` body: `uses` uses of token `token_id`, the last at `at` (unix seconds).
///
/// **Wire format** between isolates that may run different versions during a deploy: add only
/// optional fields; never rename or remove one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UseRecord {
    pub token_id: String,
    pub at: i64,
    pub uses: u32,
}

/// What the object stores (DO storage key `state`) and writes to D1 on its alarm.
///
/// **Persisted format**: read back by later versions of the object; add only optional fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UseState {
    pub token_id: String,
    pub last_used_at: i64,
    pub use_count: i64,
}

impl UseState {
    /// Applies a record: `last_used_at` only ever rises, `use_count` adds up.
    pub fn apply(&mut self, r: UseRecord) {
        self.token_id = r.token_id;
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
        let mut s = UseState::default();
        s.apply(UseRecord {
            token_id: "t".into(),
            at: 100,
            uses: 2,
        });
        s.apply(UseRecord {
            token_id: "t".into(),
            at: 90,
            uses: 1,
        }); // a late report
        assert_eq!((s.last_used_at, s.use_count), (100, 3));
        s.apply(UseRecord {
            token_id: "t".into(),
            at: 120,
            uses: u32::MAX,
        });
        assert_eq!(
            (s.last_used_at, s.use_count),
            (120, 3 + i64::from(u32::MAX))
        );
    }
}
