//! When a daily job is due: a local time of day in a time zone, resolved to UTC instants. Pure,
//! so daylight-saving edges are tested without a clock.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The UTC instant at which local time `at` happens on `date` in `tz`. When the clock is set
/// back and the time occurs twice, the first one counts; when it is skipped (set forward), the
/// first local time after the gap, in 15-minute steps, counts, so the run still happens that day.
pub fn occurrence(date: NaiveDate, tz: Tz, at: NaiveTime) -> DateTime<Utc> {
    let local = date.and_time(at);
    for step in 0..=12 {
        if let Some(t) = tz
            .from_local_datetime(&(local + Duration::minutes(15 * step)))
            .earliest()
        {
            return t.with_timezone(&Utc);
        }
    }
    // No zone skips three hours; reading the wall time as UTC keeps this total.
    Utc.from_utc_datetime(&local)
}

/// The latest occurrence of `at` at or before `now`: its local date and instant. A run keyed by
/// that date that has not happened yet is due.
pub fn latest_due(now: DateTime<Utc>, tz: Tz, at: NaiveTime) -> (NaiveDate, DateTime<Utc>) {
    let today = now.with_timezone(&tz).date_naive();
    let due = occurrence(today, tz, at);
    if due <= now {
        return (today, due);
    }
    let yesterday = today.pred_opt().unwrap_or(today);
    (yesterday, occurrence(yesterday, tz, at))
}

/// The first occurrence of `at` strictly after `now`.
pub fn next_due(now: DateTime<Utc>, tz: Tz, at: NaiveTime) -> DateTime<Utc> {
    let (date, due) = latest_due(now, tz, at);
    let mut next = date;
    for _ in 0..3 {
        next = next.succ_opt().unwrap_or(next);
        let t = occurrence(next, tz, at);
        if t > due && t > now {
            return t;
        }
    }
    due + Duration::days(1)
}

/// Parses a time of day written `HH:MM` (24-hour clock).
pub fn parse_time_of_day(text: &str) -> Option<NaiveTime> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }
    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn due_today_once_the_local_time_has_passed() {
        let sh = chrono_tz::Asia::Shanghai;
        // 09:00 Shanghai is 01:00 UTC.
        let (d, t) = latest_due(utc("2026-12-04T01:00:00Z"), sh, hm(9, 0));
        assert_eq!((d, t), (day("2026-12-04"), utc("2026-12-04T01:00:00Z")));
        let (d, _) = latest_due(utc("2026-12-04T00:59:59Z"), sh, hm(9, 0));
        assert_eq!(d, day("2026-12-03"));
        // Local date differs from the UTC date: 23:30 UTC on the 3rd is the 4th in Shanghai.
        let (d, _) = latest_due(utc("2026-12-03T23:30:00Z"), sh, hm(3, 0));
        assert_eq!(d, day("2026-12-04"));
    }

    #[test]
    fn daylight_saving_gap_and_overlap() {
        let ny = chrono_tz::America::New_York;
        // 2026-03-08: 02:00 → 03:00 local, so 02:30 does not exist; it runs at 03:00 EDT.
        assert_eq!(
            occurrence(day("2026-03-08"), ny, hm(2, 30)),
            utc("2026-03-08T07:00:00Z")
        );
        // 2026-11-01: 01:30 happens twice; the first (EDT, UTC-4) counts.
        assert_eq!(
            occurrence(day("2026-11-01"), ny, hm(1, 30)),
            utc("2026-11-01T05:30:00Z")
        );
        // After the first 01:30 the run is not due again at the second one.
        let (d, _) = latest_due(utc("2026-11-01T06:30:00Z"), ny, hm(1, 30));
        assert_eq!(d, day("2026-11-01"));
    }

    #[test]
    fn half_hour_zone_and_next_due() {
        let kolkata = chrono_tz::Asia::Kolkata; // UTC+5:30
        assert_eq!(
            occurrence(day("2026-12-04"), kolkata, hm(0, 0)),
            utc("2026-12-03T18:30:00Z")
        );
        assert_eq!(
            next_due(utc("2026-12-03T18:30:00Z"), kolkata, hm(0, 0)),
            utc("2026-12-04T18:30:00Z")
        );
        assert_eq!(
            next_due(utc("2026-12-03T18:29:00Z"), kolkata, hm(0, 0)),
            utc("2026-12-03T18:30:00Z")
        );
    }

    #[test]
    fn time_of_day_parsing() {
        assert_eq!(parse_time_of_day("03:00"), Some(hm(3, 0)));
        assert_eq!(parse_time_of_day("23:59"), Some(hm(23, 59)));
        for bad in ["24:00", "3:00", "03:60", "0300", "", "ab:cd", "03:00:00"] {
            assert_eq!(parse_time_of_day(bad), None, "{bad}");
        }
    }
}
