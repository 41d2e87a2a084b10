//! The expiry scan, run by a Cron Trigger (wrangler.toml `[triggers]`): PATs expiring within 30, 7
//! and 1 days, and PATs expired within the last day, each get one event per threshold, never
//! twice (D1 `expiry_notices` records each notice in the statement that finds it). A PAT is
//! noticed only for the tightest window it is in (`(7, 30]` days ahead: 30; `(1, 7]`: 7;
//! `(0, 1]`: 1; expired in the last day: 0), so a PAT created with 5 days left gets the 7-day and
//! then the 1-day notice, not the 30-day one. Revoked PATs are skipped.

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
