use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::*;
use crate::domain::limits::{DailyResetMode, Limits, ResetTime};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant")
        .with_timezone(&Utc)
}

fn rt(h: u8, m: u8) -> ResetTime {
    ResetTime { hour: h, minute: m }
}

const SH: Tz = chrono_tz::Asia::Shanghai;
const UTC: Tz = chrono_tz::UTC;

#[test]
fn daily_resets_at_the_configured_hour() {
    // 08:30 Shanghai = 00:30 UTC.
    let w = daily_window(t("2024-03-10T05:00:00Z"), SH, rt(8, 30));
    assert_eq!(w.start, t("2024-03-10T00:30:00Z"));
    assert_eq!(w.end, t("2024-03-11T00:30:00Z"));
    // Before today's reset: the window started yesterday.
    let w = daily_window(t("2024-03-10T00:29:59Z"), SH, rt(8, 30));
    assert_eq!(w.start, t("2024-03-09T00:30:00Z"));
    assert_eq!(w.end, t("2024-03-10T00:30:00Z"));
}

#[test]
fn daily_on_the_boundary_belongs_to_the_new_window() {
    let w = daily_window(t("2024-03-10T00:30:00Z"), SH, rt(8, 30));
    assert_eq!(w.start, t("2024-03-10T00:30:00Z"));
    let before = daily_window(t("2024-03-10T00:29:59.999Z"), SH, rt(8, 30));
    assert_eq!(before.end, w.start);
    assert_ne!(before.period_key(), w.period_key());
}

#[test]
fn daily_midnight_in_shanghai_is_16_utc() {
    let w = daily_window(t("2024-01-01T15:59:59Z"), SH, rt(0, 0));
    assert_eq!(w.start, t("2023-12-31T16:00:00Z"));
    assert_eq!(w.end, t("2024-01-01T16:00:00Z"));
    let w = daily_window(t("2024-01-01T16:00:00Z"), SH, rt(0, 0));
    assert_eq!(w.start, t("2024-01-01T16:00:00Z"));
}

#[test]
fn daily_last_minute_of_the_day_and_month_end() {
    let w = daily_window(t("2024-01-31T23:59:30Z"), UTC, rt(23, 59));
    assert_eq!(w.start, t("2024-01-31T23:59:00Z"));
    assert_eq!(w.end, t("2024-02-01T23:59:00Z"));
    let w = daily_window(t("2024-02-29T12:00:00Z"), UTC, rt(13, 0));
    assert_eq!(w.start, t("2024-02-28T13:00:00Z"));
    assert_eq!(w.end, t("2024-02-29T13:00:00Z"));
}

#[test]
fn daily_local_date_differs_from_utc_date() {
    // 2024-03-10T20:00Z is 2024-03-11 04:00 in Shanghai; reset 03:00 local = 19:00Z.
    let w = daily_window(t("2024-03-10T20:00:00Z"), SH, rt(3, 0));
    assert_eq!(w.start, t("2024-03-10T19:00:00Z"));
    assert_eq!(w.end, t("2024-03-11T19:00:00Z"));
}

#[test]
fn daily_negative_offset_zone() {
    let ny: Tz = chrono_tz::America::New_York; // EST, UTC-5 in January
    let w = daily_window(t("2024-01-15T04:00:00Z"), ny, rt(0, 0));
    assert_eq!(w.start, t("2024-01-14T05:00:00Z"));
    assert_eq!(w.end, t("2024-01-15T05:00:00Z"));
}

#[test]
fn daily_across_a_dst_change_has_23_hours() {
    let ny: Tz = chrono_tz::America::New_York;
    // DST starts 2024-03-10 02:00 local. Midnight to midnight is 23 h.
    let w = daily_window(t("2024-03-10T12:00:00Z"), ny, rt(0, 0));
    assert_eq!(w.start, t("2024-03-10T05:00:00Z"));
    assert_eq!(w.end, t("2024-03-11T04:00:00Z"));
    // A reset time inside the gap (02:30) moves forward to the first valid instant.
    let w = daily_window(t("2024-03-10T12:00:00Z"), ny, rt(2, 30));
    assert_eq!(w.start, t("2024-03-10T07:00:00Z"));
}

#[test]
fn weekly_starts_monday_midnight_local() {
    // 2024-03-13 is a Wednesday.
    let w = weekly_window(t("2024-03-13T10:00:00Z"), UTC);
    assert_eq!(w.start, t("2024-03-11T00:00:00Z"));
    assert_eq!(w.end, t("2024-03-18T00:00:00Z"));
    // Sunday 23:59:59 belongs to the old week; Monday 00:00 starts the next.
    let w = weekly_window(t("2024-03-17T23:59:59Z"), UTC);
    assert_eq!(w.start, t("2024-03-11T00:00:00Z"));
    let w = weekly_window(t("2024-03-18T00:00:00Z"), UTC);
    assert_eq!(w.start, t("2024-03-18T00:00:00Z"));
}

#[test]
fn weekly_in_shanghai_and_across_year_end() {
    // Monday 2024-03-18 00:00 Shanghai = Sunday 16:00 UTC.
    let w = weekly_window(t("2024-03-17T16:00:00Z"), SH);
    assert_eq!(w.start, t("2024-03-17T16:00:00Z"));
    let w = weekly_window(t("2024-03-17T15:59:59Z"), SH);
    assert_eq!(w.start, t("2024-03-10T16:00:00Z"));
    // 2025-01-01 is a Wednesday: its week starts Monday 2024-12-30.
    let w = weekly_window(t("2025-01-01T12:00:00Z"), UTC);
    assert_eq!(w.start, t("2024-12-30T00:00:00Z"));
    assert_eq!(w.end, t("2025-01-06T00:00:00Z"));
}

#[test]
fn monthly_covers_month_ends_and_leap_years() {
    let w = monthly_window(t("2024-02-29T23:59:59Z"), UTC);
    assert_eq!(w.start, t("2024-02-01T00:00:00Z"));
    assert_eq!(w.end, t("2024-03-01T00:00:00Z"));
    let w = monthly_window(t("2023-02-28T12:00:00Z"), UTC);
    assert_eq!(w.end, t("2023-03-01T00:00:00Z"));
    let w = monthly_window(t("2024-12-31T23:59:59Z"), UTC);
    assert_eq!(w.start, t("2024-12-01T00:00:00Z"));
    assert_eq!(w.end, t("2025-01-01T00:00:00Z"));
    let w = monthly_window(t("2024-01-31T10:00:00Z"), UTC);
    assert_eq!(w.end, t("2024-02-01T00:00:00Z"));
    // Exactly on the boundary: the new month.
    let w = monthly_window(t("2024-03-01T00:00:00Z"), UTC);
    assert_eq!(w.start, t("2024-03-01T00:00:00Z"));
}

#[test]
fn monthly_in_shanghai_starts_the_previous_utc_day() {
    let w = monthly_window(t("2024-02-29T16:00:00Z"), SH); // 2024-03-01 00:00 local
    assert_eq!(w.start, t("2024-02-29T16:00:00Z"));
    assert_eq!(w.end, t("2024-03-31T16:00:00Z"));
    let w = monthly_window(t("2024-02-29T15:59:59Z"), SH);
    assert_eq!(w.start, t("2024-01-31T16:00:00Z"));
}

#[test]
fn spans_follow_the_daily_mode() {
    let now = t("2024-03-10T05:00:00Z");
    let mut limits = Limits::default();
    assert_eq!(
        spend_span(LimitKind::FiveHour, &limits, now, UTC),
        Some(Span::Rolling {
            window_ms: FIVE_HOURS_MS
        })
    );
    assert!(matches!(
        spend_span(LimitKind::Daily, &limits, now, UTC),
        Some(Span::Fixed(_))
    ));
    limits.daily_reset_mode = DailyResetMode::Rolling;
    assert_eq!(
        spend_span(LimitKind::Daily, &limits, now, UTC),
        Some(Span::Rolling { window_ms: DAY_MS })
    );
    assert_eq!(
        spend_span(LimitKind::Total, &limits, now, UTC),
        Some(Span::Total)
    );
    assert_eq!(spend_span(LimitKind::Rpm, &limits, now, UTC), None);
    assert_eq!(
        span_start(Span::Rolling { window_ms: DAY_MS }, now),
        Some(t("2024-03-09T05:00:00Z"))
    );
}

#[test]
fn limit_values_in_store_units() {
    let limits = Limits {
        rpm: Some(50),
        limit_daily_usd: Some(Decimal::new(1050, 2)),
        limit_weekly_usd: Some(Decimal::ZERO),
        limit_concurrent_sessions: Some(0),
        ..Default::default()
    };
    assert_eq!(limit_value(&limits, LimitKind::Rpm), Some(50));
    assert_eq!(limit_value(&limits, LimitKind::Daily), Some(10_500_000));
    assert_eq!(
        limit_value(&limits, LimitKind::Weekly),
        None,
        "0 = unlimited"
    );
    assert_eq!(limit_value(&limits, LimitKind::Concurrency), None);
    assert_eq!(limit_value(&limits, LimitKind::Monthly), None);
}

#[test]
fn money_conversion_rounds_to_micro_usd() {
    assert_eq!(usd_to_micros(Decimal::new(1, 6)), 1);
    assert_eq!(usd_to_micros(Decimal::new(15, 7)), 2); // 0.0000015 → 2
    assert_eq!(usd_to_micros(Decimal::new(14, 7)), 1);
    assert_eq!(usd_to_micros(Decimal::from(3)), 3_000_000);
    assert_eq!(micros_to_usd(1_500_000), Decimal::new(15, 1));
    assert_eq!(usd_to_micros(Decimal::MAX), i64::MAX);
    assert_eq!(usd_to_micros(Decimal::MIN), i64::MIN);
    assert_eq!(usd_to_micros(Decimal::new(-25, 7)), -3); // half away from zero
}

/// The integer shortcut for amounts with at most six fractional digits gives what the decimal
/// multiplication and rounding give, at every scale and sign, and at the edge of `i64`.
#[test]
fn money_conversion_shortcut_matches_the_decimal_path() {
    let by_decimal = |usd: Decimal| {
        usd.checked_mul(Decimal::from(1_000_000))
            .map(|v| {
                v.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
            })
            .and_then(|v| v.to_i64())
            .unwrap_or(if usd.is_sign_negative() {
                i64::MIN
            } else {
                i64::MAX
            })
    };
    let mantissas = [
        0i64,
        1,
        5,
        9,
        10,
        999_999,
        1_234_567_890,
        i64::MAX / 7,
        i64::MAX,
    ];
    for m in mantissas {
        for sign in [1i64, -1] {
            for scale in 0..=9u32 {
                let usd = Decimal::new(m.saturating_mul(sign), scale);
                assert_eq!(usd_to_micros(usd), by_decimal(usd), "{usd}");
            }
        }
    }
    // Just inside and just outside what micro-USD in an i64 can hold.
    let top = Decimal::new(i64::MAX, 6);
    assert_eq!(usd_to_micros(top), i64::MAX);
    assert_eq!(usd_to_micros(top + Decimal::new(1, 6)), i64::MAX);
    assert_eq!(usd_to_micros(Decimal::new(i64::MIN + 1, 6)), i64::MIN + 1);
}

#[test]
fn kinds_have_stable_names() {
    let names: Vec<_> = LimitKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "total",
            "concurrent_sessions",
            "rpm",
            "5h",
            "daily",
            "weekly",
            "monthly"
        ]
    );
    assert!(LimitKind::Daily.is_spend() && !LimitKind::Rpm.is_spend());
}

#[test]
fn rings_pick_the_documented_bucket_widths() {
    assert_eq!(Ring::for_window(RPM_WINDOW_MS).bucket_ms, 1_000);
    assert_eq!(Ring::for_window(FIVE_HOURS_MS).bucket_ms, 180_000);
    assert_eq!(Ring::for_window(DAY_MS).bucket_ms, 900_000);
    for w in [RPM_WINDOW_MS, FIVE_HOURS_MS, DAY_MS, 300_000, 7 * DAY_MS, 1] {
        let r = Ring::for_window(w);
        assert!(r.slots() <= MAX_BUCKETS + 1, "{w}: {r:?}");
    }
}

#[test]
fn ring_buckets_leave_at_most_one_bucket_late_never_early() {
    let r = Ring::for_window(RPM_WINDOW_MS);
    // An event at the very start of a bucket is released one full bucket late.
    let t0 = 1_700_000_000_000;
    let i = r.index(t0);
    assert_eq!(r.released_at(i), t0 + 61_000);
    assert!(r.is_live(i, t0 + 60_999));
    assert!(!r.is_live(i, t0 + 61_000));
    // The last instant of a bucket is released 1 ms late.
    assert_eq!(r.index(t0 + 999), i);
    assert_eq!(r.released_at(r.index(t0 + 999)), t0 + 999 + 60_000 + 1);
    for t in [t0, t0 + 1, t0 + 499, t0 + 999, t0 + 1_000, -5, 0] {
        let late = r.released_at(r.index(t)) - (t + r.window_ms);
        assert!(late > 0 && late <= r.bucket_ms, "{t}: {late}");
        // Live exactly until the release, not one millisecond longer.
        let rel = r.released_at(r.index(t));
        assert!(r.is_live(r.index(t), rel - 1) && !r.is_live(r.index(t), rel));
    }
}
