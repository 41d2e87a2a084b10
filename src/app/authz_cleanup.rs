//! The cron's clean-up of ended authorization state: authorization codes, consent requests and
//! grants (with their refresh tokens) are deleted [`RETENTION_SECS`] (a day) after they ended,
//! in bounded batches: at most [`BATCH`] rows a statement and [`MAX_BATCHES`] statements per kind
//! a run, oldest first, so one run's D1 work is bounded however much piled up (the rest goes
//! next hour). A failure of one kind is logged and does not stop the others. Unused dynamic
//! client registrations expire separately ([`super::clients::expire_unused`]).
//!
//! Why a day: a code's replay ends the grant its first use created only while the code's row
//! exists (later it is just `invalid_grant`); a revoked grant stays visible to
//! `/admin/grants` for a day; nothing needs expired consent requests. Refresh tokens of a live
//! grant are never deleted: reuse detection needs every rotated-away one until the grant ends.
//! A grant ends when it is revoked or at its absolute expiry (`REFRESH_ABSOLUTE_SECONDS`); one
//! whose refresh token idled out is deleted a day after that absolute expiry.

use super::ctx::Ctx;
use crate::authz::store::EndedState;
use crate::store::StoreError;

/// How long ended state is kept.
pub const RETENTION_SECS: i64 = 86_400;
/// The most rows one delete statement removes.
pub const BATCH: u32 = 500;
/// The most delete statements per kind of state in one run.
pub const MAX_BATCHES: u32 = 10;

/// What a run deleted, and which kinds failed (their storage error was logged).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub codes: u32,
    pub consents: u32,
    pub grants: u32,
    pub failed: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Codes,
    Consents,
    Grants,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Codes => "authorization codes",
            Kind::Consents => "consent requests",
            Kind::Grants => "grants",
        }
    }
}

async fn one_batch<B: EndedState>(backend: &B, kind: Kind, before: i64) -> Result<u32, StoreError> {
    match kind {
        Kind::Codes => backend.delete_expired_codes(before, BATCH).await,
        Kind::Consents => backend.delete_expired_consents(before, BATCH).await,
        Kind::Grants => backend.delete_ended_grants(before, BATCH).await,
    }
}

/// Deletes one kind's ended state in batches until a batch is not full or the run's bound is
/// reached: what it deleted (also when a later batch failed).
async fn drain<B: EndedState>(backend: &B, kind: Kind, before: i64) -> (u32, Option<StoreError>) {
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        match one_batch(backend, kind, before).await {
            Ok(n) => {
                total += n;
                if n < BATCH {
                    break;
                }
            }
            Err(e) => return (total, Some(e)),
        }
    }
    (total, None)
}

/// One run of the clean-up at `ctx.now`.
pub async fn clean_ended<B: EndedState>(ctx: &Ctx<'_, B>) -> Cleaned {
    let before = ctx.now - RETENTION_SECS;
    let mut out = Cleaned::default();
    for kind in [Kind::Codes, Kind::Consents, Kind::Grants] {
        let (n, failed) = drain(ctx.backend, kind, before).await;
        match kind {
            Kind::Codes => out.codes = n,
            Kind::Consents => out.consents = n,
            Kind::Grants => out.grants = n,
        }
        if let Some(e) = failed {
            ctx.isolate.warn(format!(
                "clean-up of ended {} failed (next hour again): {}",
                kind.name(),
                e.0
            ));
            out.failed.push(kind.name());
        }
    }
    out
}
