//! The expiry scan, run by a Cron Trigger (wrangler.toml `[triggers]`): PATs expiring within 30, 7
//! and 1 days, and PATs expired within the last day, each get one event per threshold, never
//! twice (D1 `expiry_notices` records each notice in the statement that finds it). A PAT is
//! noticed only for the tightest window it is in (`(7, 30]` days ahead: 30; `(1, 7]`: 7;
//! `(0, 1]`: 1; expired in the last day: 0), so a PAT created with 5 days left gets the 7-day and
//! then the 1-day notice, not the 30-day one. Revoked PATs are skipped.
//!
//! A notice is claimed (recorded) before its event is queued for webhook delivery; if the queue
//! refuses it, [`release_unqueued`] forgets the claim, so the next scan claims and queues it
//! again (a new delivery, with a new `webhook-id`: an endpoint whose copy was queued before the
//! failure can get it twice).

use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::events::Event;
use crate::store::Backend;

const DAY: i64 = 86_400;
/// Notices claimed per threshold per run (the Cron runs hourly: a backlog drains over runs).
pub const MAX_NOTICES_PER_RUN: u32 = 500;

/// (threshold in days, window start, window end), relative to now, in seconds.
const WINDOWS: [(i64, i64, i64); 4] = [
    (30, 7 * DAY, 30 * DAY),
    (7, DAY, 7 * DAY),
    (1, 0, DAY),
    (0, -DAY, 0),
];

/// Runs one scan; returns how many events it emitted.
pub async fn scan<B: Backend>(ctx: &Ctx<'_, B>) -> Result<usize, Error> {
    let mut emitted = 0;
    for (days, from, to) in WINDOWS {
        let due = ctx
            .backend
            .claim_expiry_notices(
                days,
                ctx.now + from,
                ctx.now + to,
                ctx.now,
                MAX_NOTICES_PER_RUN,
            )
            .await?;
        for n in due {
            ctx.isolate.emit(if days == 0 {
                Event::PatExpired {
                    pat_id: n.token_id,
                    sub: n.subject,
                    expires_at: n.expires_at,
                }
            } else {
                Event::PatExpiring {
                    pat_id: n.token_id,
                    sub: n.subject,
                    expires_at: n.expires_at,
                    threshold_days: days,
                }
            });
            emitted += 1;
        }
    }
    Ok(emitted)
}

/// After the scan's events were fanned out: releases the notices of the events whose
/// deliveries could not all be queued (`not_queued`: indices into `events`,
/// [`crate::app::webhooks::FanOut::not_queued`]), so that the next scan sends them again. Returns how
/// many were released; a release that fails is a warning (those notices are lost).
pub async fn release_unqueued<B: Backend>(
    ctx: &Ctx<'_, B>,
    events: &[Event],
    not_queued: &[usize],
) -> usize {
    let notices: Vec<(String, i64)> = not_queued
        .iter()
        .filter_map(|i| match events.get(*i)? {
            Event::PatExpiring {
                pat_id,
                threshold_days,
                ..
            } => Some((pat_id.clone(), *threshold_days)),
            Event::PatExpired { pat_id, .. } => Some((pat_id.clone(), 0)),
            _ => None,
        })
        .collect();
    if notices.is_empty() {
        return 0;
    }
    match ctx.backend.release_expiry_notices(&notices).await {
        Ok(()) => notices.len(),
        Err(e) => {
            ctx.isolate.warn(format!(
                "expiry: {} notice(s) neither queued nor released, lost: {}",
                notices.len(),
                e.0
            ));
            0
        }
    }
}
