use chrono::{TimeZone, Utc};
use chrono_tz::{America, Asia, UTC};

use super::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

#[test]
fn shanghai_days_weeks_and_months_start_at_local_midnight() {
    // 2026-03-04 (a Wednesday) 01:00 in Shanghai is 03-03 17:00 UTC.
    let now = utc(2026, 3, 3, 17, 0);
    let today = period_range(Period::Today, now, Asia::Shanghai).unwrap();
    assert_eq!(today.from, utc(2026, 3, 3, 16, 0));
    assert_eq!(today.to, utc(2026, 3, 4, 16, 0));
    let y = period_range(Period::Yesterday, now, Asia::Shanghai).unwrap();
    assert_eq!(
        (y.from, y.to),
        (utc(2026, 3, 2, 16, 0), utc(2026, 3, 3, 16, 0))
    );
    let w = period_range(Period::Week, now, Asia::Shanghai).unwrap();
    assert_eq!(
        (w.from, w.to),
        (utc(2026, 3, 1, 16, 0), utc(2026, 3, 8, 16, 0))
    );
    let m = period_range(Period::Month, now, Asia::Shanghai).unwrap();
    assert_eq!(
        (m.from, m.to),
        (utc(2026, 2, 28, 16, 0), utc(2026, 3, 31, 16, 0))
    );
    // Whole-hour zone: the hours counted are exactly the period.
    assert_eq!(m.hours().as_range(), m);
}

#[test]
fn utc_periods_and_hour_buckets() {
    let now = utc(2026, 12, 31, 23, 59);
    let m = period_range(Period::Month, now, UTC).unwrap();
    assert_eq!(
        (m.from, m.to),
        (utc(2026, 12, 1, 0, 0), utc(2027, 1, 1, 0, 0))
    );
    let t = period_range(Period::Today, now, UTC).unwrap();
    let plan = BucketPlan::new(t, BucketWidth::Hour, UTC).unwrap();
    assert_eq!(plan.starts.len(), 24);
    assert_eq!(plan.bucket_of(t.from.timestamp() + 5 * 3600), 5);
    let days = BucketPlan::new(m, BucketWidth::Day, UTC).unwrap();
    assert_eq!(days.starts.len(), 31);
    assert_eq!(days.bucket_of(utc(2026, 12, 31, 23, 0).timestamp()), 30);
}

#[test]
fn new_york_days_across_the_spring_and_autumn_dst_changes() {
    let ny = America::New_York;
    // 2026-03-08: clocks go 02:00 EST -> 03:00 EDT; the day has 23 hours.
    let spring = period_range(Period::Today, utc(2026, 3, 8, 15, 0), ny).unwrap();
    assert_eq!(spring.from, utc(2026, 3, 8, 5, 0));
    assert_eq!(spring.to, utc(2026, 3, 9, 4, 0));
    assert_eq!((spring.to - spring.from).num_hours(), 23);
    // 2026-11-01: clocks go 02:00 EDT -> 01:00 EST; the day has 25 hours.
    let autumn = period_range(Period::Today, utc(2026, 11, 1, 15, 0), ny).unwrap();
    assert_eq!(autumn.from, utc(2026, 11, 1, 4, 0));
    assert_eq!(autumn.to, utc(2026, 11, 2, 5, 0));
    assert_eq!((autumn.to - autumn.from).num_hours(), 25);

    // Day buckets over a week holding the spring change: each hour lands in its local day.
    let range = Range {
        from: utc(2026, 3, 6, 5, 0),
        to: utc(2026, 3, 11, 4, 0),
    };
    let plan = BucketPlan::new(range, BucketWidth::Day, ny).unwrap();
    assert_eq!(plan.segments.len(), 2);
    assert_eq!(plan.starts.len(), 5);
    assert_eq!(plan.starts[2], utc(2026, 3, 8, 5, 0));
    assert_eq!(plan.starts[3], utc(2026, 3, 9, 4, 0));
    // 03-08 23:00 EDT = 03-09 03:00 UTC is still the 8th; 00:00 EDT on the 9th starts day 3.
    assert_eq!(plan.bucket_of(utc(2026, 3, 9, 3, 0).timestamp()), 2);
    assert_eq!(plan.bucket_of(utc(2026, 3, 9, 4, 0).timestamp()), 3);
    // 03-08 01:00 EST = 06:00 UTC and 03:00 EDT = 07:00 UTC are both the 8th.
    assert_eq!(plan.bucket_of(utc(2026, 3, 8, 6, 0).timestamp()), 2);
    assert_eq!(plan.bucket_of(utc(2026, 3, 8, 7, 0).timestamp()), 2);
    assert_eq!(plan.bucket_of(utc(2026, 3, 8, 4, 0).timestamp()), 1);
}

#[test]
fn half_hour_zone_counts_the_hour_holding_midnight_in_the_day_it_starts_in() {
    let kolkata = Asia::Kolkata; // UTC+5:30
    let today = period_range(Period::Today, utc(2026, 3, 3, 12, 0), kolkata).unwrap();
    assert_eq!(today.from, utc(2026, 3, 2, 18, 30));
    assert_eq!(today.to, utc(2026, 3, 3, 18, 30));
    // Hours starting inside the day: 19:00 UTC (00:30 local) .. 18:00 UTC (23:30 local).
    let hours = today.hours();
    assert_eq!(hours.as_range().from, utc(2026, 3, 2, 19, 0));
    assert_eq!(hours.as_range().to, utc(2026, 3, 3, 19, 0));
    let range = Range {
        from: utc(2026, 3, 1, 18, 30),
        to: utc(2026, 3, 3, 18, 30),
    };
    let plan = BucketPlan::new(range, BucketWidth::Day, kolkata).unwrap();
    assert_eq!(
        plan.starts,
        vec![utc(2026, 3, 1, 18, 30), utc(2026, 3, 2, 18, 30)]
    );
    // 18:00 UTC = 23:30 local: the earlier day; 19:00 UTC = 00:30: the next.
    assert_eq!(plan.bucket_of(utc(2026, 3, 2, 18, 0).timestamp()), 0);
    assert_eq!(plan.bucket_of(utc(2026, 3, 2, 19, 0).timestamp()), 1);
}

#[test]
fn empty_and_oversized_ranges_are_refused() {
    let t = utc(2026, 1, 1, 0, 0);
    assert_eq!(
        period_range(Period::Custom { from: t, to: t }, t, UTC),
        Err(PeriodError::Empty)
    );
    let long = Range {
        from: t,
        to: t + chrono::Duration::days(200),
    };
    assert_eq!(
        BucketPlan::new(long, BucketWidth::Hour, UTC),
        Err(PeriodError::TooManyBuckets)
    );
    assert!(BucketPlan::new(long, BucketWidth::Day, UTC).is_ok());
}
