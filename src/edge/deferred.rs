//! Deferred work ([`Deferred`]), run in `wait_until` after the response: last-use reports, KV
//! repairs, and the KV deletes and reuse markers of revocations and rotations, with retries.

use super::backend::EdgeBackend;
use super::isolate::warn;
use crate::app::Deferred;
use worker::Env;

pub(super) async fn run_deferred(env: Env, work: Vec<Deferred>) {
    let backend = EdgeBackend::new(&env);
    for d in work {
        let result = match &d {
            Deferred::RecordUse { token_id, at, uses } => {
                use crate::store::UsageRecorder;
                backend.record_use(token_id, *at, *uses).await
            }
            Deferred::CacheGrant { hash, grant } => {
                use crate::store::GrantCache;
                backend.put_grant(hash, grant).await
            }
            Deferred::PurgeGrants { hashes, after_secs } => {
                sleep_secs(*after_secs).await;
                purge_with_retries(&backend, hashes).await
            }
            Deferred::PutMarkers {
                markers,
                after_secs,
            } => {
                sleep_secs(*after_secs).await;
                mark_with_retries(&backend, markers).await
            }
        };
        if let Err(e) = result {
            warn(format!("deferred work failed: {}", e.0));
        }
    }
}

async fn sleep_secs(secs: u64) {
    if secs > 0 {
        worker::Delay::from(std::time::Duration::from_secs(secs)).await;
    }
}

/// Deletes each grant, retrying a failed delete after 1, 2 and 4 seconds. What still fails is
/// left to the next revoke or rotate of the token and, at the latest, to the KV entry's expiry
/// (`GRANT_CACHE_SECONDS`).
async fn purge_with_retries(
    backend: &EdgeBackend,
    hashes: &[crate::token::TokenHash],
) -> Result<(), crate::store::StoreError> {
    use crate::store::GrantCache;
    let mut last = Ok(());
    for hash in hashes {
        let r = with_retries(|| backend.delete_grant(hash)).await;
        if r.is_err() {
            last = r;
        }
    }
    last
}

/// Runs `op`, and again after 1, 2 and 4 seconds while it fails: its last result.
async fn with_retries<F, Fut>(mut op: F) -> Result<(), crate::store::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::store::StoreError>>,
{
    let mut delay = 1;
    loop {
        match op().await {
            Ok(()) => return Ok(()),
            Err(e) if delay > 4 => return Err(e),
            Err(_) => {
                sleep_secs(delay).await;
                delay *= 2;
            }
        }
    }
}

/// Writes each reuse marker, retrying a failed write after 1, 2 and 4 seconds; one that still
/// fails is deleted instead (whatever KV held for that hash must not stay a live grant).
async fn mark_with_retries(
    backend: &EdgeBackend,
    markers: &[(crate::token::TokenHash, Box<crate::model::Grant>)],
) -> Result<(), crate::store::StoreError> {
    use crate::store::GrantCache;
    let mut last = Ok(());
    for (hash, marker) in markers {
        let r = with_retries(|| backend.put_grant(hash, marker)).await;
        if r.is_err() {
            last = purge_with_retries(backend, &[*hash]).await.and(r);
        }
    }
    last
}
