//! Times as text: the one format of every timestamp patgate writes as a string (the management
//! API's answers, webhook payloads, the token page's `datetime` attributes).

/// RFC 3339 in UTC with seconds precision, e.g. `2026-11-23T22:00:00Z`.
pub fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).map_or_else(
        || ts.to_string(),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}
