//! Where a token was used from, as the views show it (the PAT API, the admin inventory, the
//! token page): the last few places its `LastUsed` object kept, times in RFC 3339.

use crate::last_use::FromEntry;
use crate::time::rfc3339;

/// A place a token was used from, as views show it (times in RFC 3339).
#[derive(Debug, serde::Serialize)]
pub struct FromView<'a> {
    via: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colo: Option<&'a str>,
    first_at: String,
    last_at: String,
}

/// The views of the places a token was used from, most recent first.
pub fn from_views(list: &[FromEntry]) -> Vec<FromView<'_>> {
    list.iter()
        .map(|f| FromView {
            via: &f.via,
            name: &f.name,
            ip: f.ip.as_deref(),
            country: f.country.as_deref(),
            colo: f.colo.as_deref(),
            first_at: rfc3339(f.first_at),
            last_at: rfc3339(f.last_at),
        })
        .collect()
}
