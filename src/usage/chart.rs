//! The token page's usage chart: the uses of each of the last days as bars, server-rendered
//! inline SVG (no script, no style attribute: the page's CSP allows neither), scaling to any
//! width. The numbers show on hover (each bar's `<title>`) and on keyboard focus (days with uses
//! are focusable, each a labelled image); a caption gives the total and a table below gives every
//! day's number as text.

use super::date;
use maud::{html, Markup};

/// Width of one day's slot and the height of the tallest bar, in SVG units.
const SLOT: u64 = 10;
const BAR: u64 = 7;
const TALL: u64 = 80;
/// Room above the tallest bar for its number.
const HEAD: u64 = 12;

/// `Nov 29` of a day number.
fn short(day: i64) -> String {
    chrono::DateTime::from_timestamp(day.saturating_mul(super::SECS_PER_DAY), 0)
        .map_or_else(|| date(day), |d| d.format("%b %-d").to_string())
}

fn uses_text(n: u64) -> String {
    if n == 1 {
        "1 use".into()
    } else {
        format!("{n} uses")
    }
}

/// The chart of `series` (`(day, uses)`, oldest first, as [`super::summary::DailyUses::series`]
/// gives it); `id` makes its element ids unique on the page.
pub fn chart(series: &[(i64, u64)], id: &str) -> Markup {
    let total: u64 = series.iter().map(|(_, u)| *u).sum();
    let max = series.iter().map(|(_, u)| *u).max().unwrap_or(0).max(1);
    let width = SLOT * series.len() as u64;
    let height = HEAD + TALL + 1;
    let caption = format!("usage-{id}");
    let busiest = series
        .iter()
        .filter(|(_, u)| *u > 0)
        .max_by_key(|(d, u)| (*u, *d))
        .map(|(d, u)| format!(", most on {} ({})", short(*d), uses_text(*u)));
    html! {
        figure.usage {
            figcaption id=(caption) {
                "Uses per day, last " (series.len()) " days (UTC): "
                strong { (total) } " in all" (busiest.unwrap_or_default())
            }
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (width) " " (height) }
                role="group" aria-labelledby=(caption) focusable="false" {
                line.axis x1="0" y1=(height - 1) x2=(width) y2=(height - 1) {}
                @for (i, (day, uses)) in series.iter().enumerate() {
                    @let x = i as u64 * SLOT;
                    @let h = if *uses == 0 { 0 } else { (uses * TALL).div_ceil(max).max(2) };
                    @let label = format!("{}: {}", date(*day), uses_text(*uses));
                    @if *uses > 0 {
                        g.day tabindex="0" role="img" aria-label=(label) {
                            title { (label) }
                            rect.hit x=(x) y="0" width=(SLOT) height=(height) {}
                            rect.b x=(x + 1) y=(HEAD + TALL - h) width=(BAR) height=(h) {}
                            text.v x=(x + 1 + BAR / 2) y=(HEAD + TALL - h - 2) { (uses) }
                        }
                    } @else {
                        g.day aria-hidden="true" {
                            title { (label) }
                            rect.hit x=(x) y="0" width=(SLOT) height=(height) {}
                        }
                    }
                }
            }
            @if let (Some((first, _)), Some((last, _))) = (series.first(), series.last()) {
                div.axis-labels aria-hidden="true" {
                    span { (short(*first)) }
                    span { (short(*last)) }
                }
            }
            details {
                summary { "Uses per day as a table" }
                @if total == 0 {
                    p.muted { "No uses in these days." }
                } @else {
                    table {
                        thead { tr { th scope="col" { "Day (UTC)" } th scope="col" { "Uses" } } }
                        tbody {
                            @for (day, uses) in series.iter().rev().filter(|(_, u)| *u > 0) {
                                tr { td { (date(*day)) } td { (uses) } }
                            }
                        }
                    }
                    p.muted { "Days not listed had no uses." }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Vec<(i64, u64)> {
        let mut s: Vec<(i64, u64)> = (20_392..=20_421).map(|d| (d, 0)).collect();
        s[27].1 = 1;
        s[29].1 = 12;
        s
    }

    #[test]
    fn bars_scale_to_the_busiest_day_and_each_says_its_number() {
        let html = chart(&series(), "p1").into_string();
        assert!(html.contains(r#"viewBox="0 0 300 93""#), "{html}");
        // the busiest day is the full height, a day with one use at least 2 units tall
        assert!(
            html.contains(r#"<rect class="b" x="291" y="12" width="7" height="80">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<rect class="b" x="271" y="85" width="7" height="7">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"aria-label="2025-11-29: 12 uses""#),
            "{html}"
        );
        assert!(html.contains(r#"aria-label="2025-11-27: 1 use""#), "{html}");
        assert!(html.contains("<title>2025-11-29: 12 uses</title>"));
        assert!(
            html.contains(r#"<text class="v" x="294" y="10">12</text>"#),
            "{html}"
        );
        // only days with uses take keyboard focus
        assert_eq!(html.matches(r#"tabindex="0""#).count(), 2);
        assert!(
            html.contains("<strong>13</strong> in all, most on Nov 29 (12 uses)"),
            "{html}"
        );
        assert!(html.contains("<td>2025-11-29</td><td>12</td>"));
        assert!(!html.contains("style="), "no style attributes (CSP)");
    }

    #[test]
    fn an_unused_token_has_a_flat_chart_and_says_so() {
        let s: Vec<(i64, u64)> = (0..30).map(|d| (20_000 + d, 0)).collect();
        let html = chart(&s, "p2").into_string();
        assert!(!html.contains(r#"class="b""#));
        assert!(!html.contains("tabindex"));
        assert!(html.contains("<strong>0</strong> in all"));
        assert!(html.contains("No uses in these days."));
        assert!(html.contains(r#"aria-labelledby="usage-p2""#));
    }
}
