//! Deferred work ([`Deferred`]), run in `wait_until` after the response: last-use reports, KV
//! repairs, and the KV deletes and reuse markers of revocations and rotations, with retries.

use super::backend::EdgeBackend;
use super::isolate::{warn, ISOLATE};
use super::js::now_secs;
use crate::app::Deferred;
use worker::Env;

pub(super) async fn run_deferred(env: Env, work: Vec<Deferred>) {
    let backend = EdgeBackend::new(&env);
    for d in work {
        let result = match &d {
            Deferred::RecordUse(rec) => {
                use crate::store::UsageRecorder;
                backend.record_use(rec).await
            }
            Deferred::FlushUses { after_secs, window } => {
                sleep_secs(*after_secs).await;
                flush_uses(&backend, *window).await
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
            Deferred::RefreshRevocations => {
                let isolate = super::isolate::ISOLATE.with(std::rc::Rc::clone);
                crate::app::revocations::refresh(&backend, &isolate, super::js::now_ms())
                    .await
                    .map(|_| ())
            }
        };
        if let Err(e) = result {
            warn(format!("deferred work failed: {}", e.0));
        }
    }
}

/// Sends the uses this isolate holds whose window has passed (the timer of the first use held in
/// a window; the next use of any token does the same if this never runs).
async fn flush_uses(backend: &EdgeBackend, window: i64) -> Result<(), crate::store::StoreError> {
    use crate::store::UsageRecorder;
    let due = ISOLATE.with(|i| i.take_due_uses(now_secs(), window));
    let mut last = Ok(());
    for r in due {
        if let Err(e) = backend.record_use(&r.into_record()).await {
            last = Err(e);
        }
    }
    last
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
