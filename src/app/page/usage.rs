//! A token's usage page (`GET /tokens/{id}/usage`): its uses of the last 30 UTC days as a chart
//! (server-rendered SVG, no script; a caption and a table say the same as text), its totals, and
//! the last few places it was used from. Read from the token's D1 row (what its `LastUsed`
//! object last wrote): complete up to `LAST_USED_COALESCE_SECONDS` plus the flush delay.

use super::dates::{ago, exact};
use super::identity::{csrf_for, viewer, Who};
use super::respond::{html, Fail};
use super::session::Key;
use super::views::{layout, status_badge, Viewer};
use crate::app::ctx::{Ctx, Outcome};
use crate::app::tokens;
use crate::last_use::FromEntry;
use crate::model::{Status, TokenRecord};
use crate::store::Backend;
use crate::usage::chart::chart;
use maud::{html, Markup};

/// Days the chart shows.
pub const CHART_DAYS: i64 = 30;

pub(super) async fn page<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    let rec = tokens::owned(ctx, &who.user, id).await?;
    let status = tokens::status(ctx, &rec).await?;
    let csrf = csrf_for(key, who)?;
    let body = usage_page(
        &viewer(who, &csrf),
        &rec,
        status,
        ctx.now,
        ctx.cfg.last_used_coalesce_secs,
    );
    Ok(html(200, body).into())
}

/// Where a use came from, in words: through the gate the caller's own request; through
/// introspection the API's request (the holder's address is not seen there).
fn via_text(f: &FromEntry) -> String {
    match f.via.as_str() {
        "gate" => format!("Gate route {}", f.name),
        "introspection" => format!(
            "API {} (it asked patgate; the caller's address is not seen)",
            f.name
        ),
        other => format!("{other} {}", f.name),
    }
}

fn dash(v: Option<&str>) -> &str {
    v.unwrap_or("—")
}

/// The Cloudflare location and country, `—` when neither is known.
fn place(f: &FromEntry) -> String {
    match (f.colo.as_deref(), f.country.as_deref()) {
        (None, None) => "—".into(),
        (colo, country) => format!("{} · {}", dash(colo), dash(country)),
    }
}

/// The page of token `rec` (`status`: its one status).
pub fn usage_page(
    viewer: &Viewer<'_>,
    rec: &TokenRecord,
    status: Status,
    now: i64,
    window_secs: i64,
) -> Markup {
    let name = rec.name.as_deref().unwrap_or("");
    let t = rec.daily_uses.totals(now);
    let series = rec.daily_uses.series(now, CHART_DAYS);
    let body = html! {
        p { a href="/tokens" { "← Your tokens" } }
        h1 { "Usage of " q.name { (name) } " " (status_badge(status)) }
        @if rec.revoked_reason.as_deref() == Some("admin") {
            div.notice.admin-revoked {
                strong { "Revoked by an administrator" }
                @if let Some(m) = &rec.revoked_message { ": " span.admin-reason { (m) } }
            }
        }
        dl.totals {
            dt { "Today" } dd { (t.today) }
            dt { "Last 7 days" } dd { (t.last_7_days) }
            dt { "Last 30 days" } dd { (t.last_30_days) }
            dt { "Last 90 days" } dd { (t.last_90_days) }
            dt { "Since created" } dd { (rec.use_count) }
            dt { "Last used" }
            dd {
                @match rec.last_used_at {
                    None => { "Never" }
                    Some(ts) => { time datetime=(crate::time::rfc3339(ts)) title=(exact(ts)) data-ago { (ago(ts, now)) } }
                }
            }
        }
        (chart(&series, &rec.id))
        h2 { "Last used from" }
        @if rec.last_used_from.is_empty() {
            p.muted { "No use recorded yet." }
        } @else {
            table.from {
                thead { tr {
                    th scope="col" { "Through" }
                    th scope="col" { "Location" }
                    th scope="col" { "IP address" }
                    th scope="col" { "First seen" }
                    th scope="col" { "Last seen" }
                } }
                tbody {
                    @for f in &rec.last_used_from {
                        tr {
                            td data-label="Through" { (via_text(f)) }
                            td.place data-label="Location" { (place(f)) }
                            td data-label="IP address" { (dash(f.ip.as_deref())) }
                            td data-label="First seen" { time datetime=(crate::time::rfc3339(f.first_at)) title=(exact(f.first_at)) { (exact(f.first_at)) } }
                            td data-label="Last seen" { time datetime=(crate::time::rfc3339(f.last_at)) title=(exact(f.last_at)) { (exact(f.last_at)) } }
                        }
                    }
                }
            }
        }
        p.muted {
            "Uses are reported in batches: those of the last " (window_secs)
            @if window_secs == 1 { " second" } @else { " seconds" } ", and a "
            "few more while they are written, may not be counted yet. Location and country are "
            "as Cloudflare reports them."
        }
    };
    layout(&format!("Usage of {name}"), Some(viewer), &body)
}
