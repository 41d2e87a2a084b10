//! Dates and durations as the page shows and reads them: exact UTC times, calendar dates,
//! "5 minutes ago", expiry texts. Written by hand: chrono's `format` (strftime) machinery grew
//! the wasm noticeably.

/// Exact UTC time for hover titles, e.g. `2026-11-29 05:10:00 UTC`.
pub fn exact(ts: i64) -> String {
    use chrono::Timelike as _;
    chrono::DateTime::from_timestamp(ts, 0).map_or_else(
        || ts.to_string(),
        |d| {
            format!(
                "{} {:02}:{:02}:{:02} UTC",
                date(ts),
                d.hour(),
                d.minute(),
                d.second()
            )
        },
    )
}

/// A calendar date in UTC, e.g. `2026-12-29`.
pub fn date(ts: i64) -> String {
    use chrono::Datelike as _;
    chrono::DateTime::from_timestamp(ts, 0).map_or_else(
        || ts.to_string(),
        |d| format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
    )
}

/// Parses `YYYY-MM-DD` (what `<input type=date>` sends) to 00:00 UTC of that day.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let d = chrono::NaiveDate::from_ymd_opt(num(0..4)?.try_into().ok()?, num(5..7)?, num(8..10)?)?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// "just now", "5 minutes ago", "3 hours ago", "2 days ago" (same rule as the script).
pub fn ago(ts: i64, now: i64) -> String {
    let s = (now - ts).max(0);
    if s < 60 {
        return "just now".into();
    }
    for (secs, unit) in [(86_400, "day"), (3_600, "hour"), (60, "minute")] {
        if s >= secs {
            return format!("{} ago", plural(s / secs, unit));
        }
    }
    "just now".into()
}

/// Expiry text and whether it deserves a warning (expired, or 7 days or less left, counting a
/// started day as a day).
pub fn expiry_text(expires_at: i64, now: i64) -> (String, bool) {
    let left = expires_at - now;
    if left <= 0 {
        return (format!("Expired on {}", date(expires_at)), true);
    }
    // Rounded up: a 30-day token reads "30 days" until a full day has passed.
    let days = (left + 86_399) / 86_400;
    (format!("Expires in {}", plural(days, "day")), days <= 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = 1_795_000_000;
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - 59, now), "just now");
        assert_eq!(ago(now - 60, now), "1 minute ago");
        assert_eq!(ago(now - 7_199, now), "1 hour ago");
        assert_eq!(ago(now - 7_200, now), "2 hours ago");
        assert_eq!(ago(now - 3 * 86_400, now), "3 days ago");
        assert_eq!(ago(now + 100, now), "just now", "clock skew");
        assert_eq!(exact(now), "2026-11-18 11:06:40 UTC");
    }

    #[test]
    fn dates() {
        assert_eq!(date(1_795_000_000), "2026-11-18");
        assert_eq!(parse_date("2026-12-25"), Some(1_798_156_800));
        assert_eq!(parse_date("2026-11-18"), Some(1_795_000_000 - 40_000));
        for bad in [
            "",
            "2026-13-01",
            "2026-02-30",
            "2026-1-01",
            "+026-12-25",
            "2026-12-2x",
            "2026/12/25",
            "２０２６-12-25",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn expiry_texts_and_warnings() {
        let now = 1_795_000_000;
        let d = 86_400;
        assert_eq!(
            expiry_text(now + 30 * d, now),
            ("Expires in 30 days".into(), false)
        );
        assert_eq!(
            expiry_text(now + 30 * d - 5, now),
            ("Expires in 30 days".into(), false)
        );
        assert_eq!(
            expiry_text(now + 8 * d, now),
            ("Expires in 8 days".into(), false)
        );
        assert_eq!(
            expiry_text(now + 7 * d + 1, now),
            ("Expires in 8 days".into(), false)
        );
        assert_eq!(
            expiry_text(now + 7 * d, now),
            ("Expires in 7 days".into(), true)
        );
        assert_eq!(
            expiry_text(now + 10, now),
            ("Expires in 1 day".into(), true)
        );
        assert_eq!(
            expiry_text(now, now),
            ("Expired on 2026-11-18".into(), true)
        );
    }
}
