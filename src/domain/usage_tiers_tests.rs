use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

use super::*;
use crate::domain::rollup::OutcomeClass;

fn at(y: i32, m: u32, d: u32, h: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().timestamp()
}

/// Every hour a piece covers, in order.
fn hours_of(pieces: &[Piece], tz: Tz) -> Vec<i64> {
    let mut out = Vec::new();
    for piece in pieces {
        match *piece {
            Piece::Hours(h) => out.extend((h.first..h.end).step_by(3600)),
            Piece::Tiers {
                kind,
                first_start,
                last_start,
            } => {
                let idx = TierKind::ALL.iter().position(|k| *k == kind).unwrap();
                let mut start = first_start;
                loop {
                    // The period starting at `start`: the one holding its first hour.
                    let first_hour = LocalPeriod {
                        kind,
                        start,
                        end: start,
                    }
                    .hours()
                    .first;
                    let p = periods_of_hour(first_hour, tz)[idx];
                    assert_eq!(p.start, start, "{kind:?} starts at a period start");
                    let h = p.hours();
                    out.extend((h.first..h.end).step_by(3600));
                    if start == last_start {
                        break;
                    }
                    start = p.end;
                    assert!(start <= last_start, "last start is a period start");
                }
            }
        }
    }
    out
}

#[test]
fn pieces_cover_every_hour_of_a_span_once_in_every_zone() {
    let zones: [Tz; 5] = [
        chrono_tz::UTC,
        chrono_tz::Asia::Shanghai,
        chrono_tz::America::New_York,
        chrono_tz::Asia::Kolkata,
        chrono_tz::Asia::Kathmandu,
    ];
    // Spans starting and ending at odd hours, across month ends and New York's DST changes.
    let firsts = [
        at(2026, 1, 28, 5),
        at(2026, 2, 27, 17),
        at(2026, 3, 5, 0),
        at(2026, 10, 30, 11),
    ];
    let lengths = [
        1,
        7,
        23,
        24,
        25,
        24 * 7 + 3,
        24 * 31,
        24 * 45 + 13,
        24 * 100,
    ];
    for tz in zones {
        for first in firsts {
            for len in lengths {
                let span = HourSpan {
                    first,
                    end: first + len * 3600,
                };
                let pieces = decompose(span, tz, &TierKind::ALL);
                let want: Vec<i64> = (span.first..span.end).step_by(3600).collect();
                assert_eq!(hours_of(&pieces, tz), want, "{tz} {first} {len}");
                // Whole periods are used: a span of 100 days is a handful of pieces.
                assert!(pieces.len() <= 8, "{tz} {first} {len}: {pieces:?}");
                // Days only (a daily series): still every hour once, days merged into one piece.
                let days = decompose(span, tz, &[TierKind::Day]);
                assert_eq!(hours_of(&days, tz), want, "{tz} {first} {len} days");
                assert!(days.len() <= 3, "{tz} {first} {len}: {days:?}");
                // With hours allowed, nothing is left to the ledger.
                let all = decompose(span, tz, &TierKind::ALL);
                assert_eq!(hours_of(&all, tz), want, "{tz} {first} {len} all");
                assert!(all.iter().all(|p| matches!(p, Piece::Tiers { .. })));
            }
        }
    }
}

#[test]
fn a_calendar_period_is_one_tier_row_per_group() {
    let tz = chrono_tz::Asia::Shanghai;
    let now = Utc.with_ymd_and_hms(2026, 12, 5, 3, 0, 0).unwrap();
    for (period, kind) in [
        (Period::Today, TierKind::Day),
        (Period::Week, TierKind::Week),
        (Period::Month, TierKind::Month),
    ] {
        let r = period_range(period, now, tz).unwrap();
        let pieces = decompose(r.hours(), tz, &TierKind::ALL[1..]);
        assert_eq!(
            pieces,
            vec![Piece::Tiers {
                kind,
                first_start: r.from.timestamp(),
                last_start: r.from.timestamp(),
            }]
        );
    }
}

#[test]
fn an_hour_counts_in_the_period_its_start_falls_in_in_half_hour_zones() {
    // Kolkata is UTC+5:30: local midnight of 2026-12-05 is 18:30 UTC on the 4th, so the hour
    // starting 18:00 UTC (23:30 local) counts in the 4th and 19:00 UTC in the 5th.
    let tz = chrono_tz::Asia::Kolkata;
    let day4 = periods_of_hour(at(2026, 12, 4, 18), tz)[1];
    let day5 = periods_of_hour(at(2026, 12, 4, 19), tz)[1];
    assert_eq!(day4.end, day5.start);
    assert_eq!(day5.start, at(2026, 12, 4, 18) + 1800);
    assert_eq!(day5.hours().first, at(2026, 12, 4, 19));
}

fn key(hour: i64, user: i64, provider: i64, model: &str) -> RollupKey {
    RollupKey {
        hour,
        user_id: user,
        key_id: user * 10,
        provider_id: provider,
        model: model.into(),
        endpoint_format: "claude".into(),
        outcome: OutcomeClass::Success,
    }
}

fn sums(requests: i64, micros: i64) -> RollupSums {
    RollupSums {
        requests,
        cost_micros: micros,
        ..Default::default()
    }
}

#[test]
fn tier_rows_sum_every_ledger_row_once_per_dimension_and_kind() {
    let tz = chrono_tz::America::New_York;
    let base = at(2026, 3, 31, 2);
    let rows: Vec<(RollupKey, RollupSums)> = (0..40)
        .map(|i| {
            (
                key(
                    base + (i % 9) * 3600 * 5,
                    1 + i % 3,
                    7 + i % 2,
                    ["a", ""][i as usize % 2],
                ),
                sums(1 + i, 10 * i),
            )
        })
        .collect();
    let tiers = tier_rows(&rows, tz, i64::MAX);
    let total_requests: i64 = rows.iter().map(|r| r.1.requests).sum();
    for dim in TierDim::ALL {
        for kind in TierKind::ALL {
            let got: i64 = tiers
                .iter()
                .filter(|(k, _)| k.dim == dim && k.kind == kind)
                .map(|(_, s)| s.requests)
                .sum();
            assert_eq!(got, total_requests, "{dim:?} {kind:?}");
        }
    }
    // The rows span New York's March 31 and April 1: two month rows per user.
    let months: Vec<_> = tiers
        .iter()
        .filter(|(k, _)| k.dim == TierDim::User && k.kind == TierKind::Month && k.group == "1")
        .collect();
    assert_eq!(months.len(), 2);
    // Sorted keys, no duplicates.
    assert!(tiers.windows(2).all(|w| w[0].0 < w[1].0));
    // Hours are kept for every dimension: one entity's figures read them.
    for dim in TierDim::ALL {
        assert!(
            tiers
                .iter()
                .any(|(k, _)| k.kind == TierKind::Hour && k.dim == dim)
        );
    }
}

#[test]
fn hours_a_rebuild_has_not_reached_are_left_to_it() {
    let tz = chrono_tz::UTC;
    let h = at(2026, 6, 1, 10);
    let rows = vec![
        (key(h, 1, 1, "m"), sums(1, 1)),
        (key(h + 3600, 1, 1, "m"), sums(2, 1)),
    ];
    let tiers = tier_rows(&rows, tz, h + 3600);
    let requests: i64 = tiers
        .iter()
        .filter(|(k, _)| k.dim == TierDim::Model && k.kind == TierKind::Day)
        .map(|(_, s)| s.requests)
        .sum();
    assert_eq!(requests, 1);
    assert!(tier_rows(&rows, tz, h).is_empty());
}

#[test]
fn a_span_of_years_is_whole_months_between_short_edges() {
    let tz = chrono_tz::Asia::Shanghai;
    let span = HourSpan {
        first: at(2000, 1, 1, 0),
        end: at(2026, 12, 5, 7),
    };
    let pieces = decompose(span, tz, &TierKind::ALL[1..]);
    let months = pieces
        .iter()
        .filter(|p| {
            matches!(
                p,
                Piece::Tiers {
                    kind: TierKind::Month,
                    ..
                }
            )
        })
        .count();
    assert_eq!(months, 1, "{pieces:?}");
    assert!(pieces.len() <= 8, "{pieces:?}");
    let want: Vec<i64> = (span.first..span.end).step_by(3600).collect();
    assert_eq!(hours_of(&pieces, tz), want);
}
