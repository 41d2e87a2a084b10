//! This location's snapshot of the revocation feed in the Cache API: [`SnapshotCache`].
//!
//! One object, keyed by a fixed URL under the issuer's own origin (the Cache API keeps what a
//! zone puts, per data center: it is the location's shared copy between its isolates), body the
//! encoded `revocation::snapshot::Snapshot`. It is put with a long `max-age`: it is the base of
//! the next merge, and its freshness comes from the `as_of` inside it, never from the cache's own
//! expiry. Hosts without a functional Cache API (`*.workers.dev`, Workers behind Access) store
//! nothing and find nothing: each isolate then refreshes from D1 itself (same bound, more reads).

use super::backend::EdgeBackend;
use super::counters::{bump, Op};
use crate::store::{SnapshotCache, StoreError};

/// The key's path under the issuer; the version follows the snapshot's format version.
const PATH: &str = "/_patgate/revocation-feed/1";
/// How long the Cache API may keep the object: a day (an evicted object is rebuilt from D1).
const KEEP: &str = "max-age=86400";

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("Cache API: {e}"))
}

impl EdgeBackend {
    fn snapshot_key(&self) -> Result<String, StoreError> {
        let cfg = super::config::load(&self.env).map_err(StoreError::new)?;
        Ok(format!("{}{PATH}", cfg.issuer))
    }
}

impl SnapshotCache for EdgeBackend {
    async fn load_snapshot(&self) -> Result<Option<String>, StoreError> {
        super::dev_faults::feed_fault()?;
        bump(Op::CacheGet);
        let key = self.snapshot_key()?;
        let Some(mut found) = worker::Cache::default()
            .get(key.as_str(), false)
            .await
            .map_err(err)?
        else {
            return Ok(None);
        };
        if found.status_code() != 200 {
            return Ok(None);
        }
        found.text().await.map(Some).map_err(err)
    }

    async fn store_snapshot(&self, body: &str) -> Result<(), StoreError> {
        super::dev_faults::feed_fault()?;
        bump(Op::CachePut);
        let key = self.snapshot_key()?;
        let headers = worker::Headers::new();
        headers.set("cache-control", KEEP).map_err(err)?;
        headers
            .set("content-type", "text/plain; charset=utf-8")
            .map_err(err)?;
        let response = worker::Response::ok(body)
            .map_err(err)?
            .with_headers(headers);
        worker::Cache::default()
            .put(key.as_str(), response)
            .await
            .map_err(err)
    }
}
