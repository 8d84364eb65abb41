//! Calendar windows (daily, weekly, monthly) remembered per thread, so the up to 35 counters
//! a request builds (its check, the providers' reads, the spend record) do not each redo the
//! time-zone arithmetic: callgrind counted 38 local-time conversions per request, about 5 % of
//! the proxy's instructions, for windows that change once a day at most.
//!
//! A hit is exact, not approximate: windows of one kind, zone and reset time partition time,
//! so the window computed at any instant is the window of every instant in its `[start, end)`.

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::limits::Limits;
use crate::domain::windows::{FixedWindow, LimitKind, Span, spend_span};

/// Entries per thread. Bound: distinct (kind, zone, daily reset time) triples in use; a
/// deployment has one zone and a few reset times, so eight slots hold them all, and past that
/// the oldest slot is replaced (a miss only costs the computation).
const SLOTS: usize = 8;

/// Which calendar window an entry is.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Which {
    kind: LimitKind,
    tz: Tz,
    /// The daily reset time as (hour, minute); (0, 0) for weeks and months.
    reset: (u8, u8),
}

/// One remembered window.
#[derive(Clone, Copy)]
struct Entry {
    which: Which,
    window: FixedWindow,
}

/// The slots and the next one to replace.
struct Slots {
    entries: [Option<Entry>; SLOTS],
    next: usize,
}

thread_local! {
    static CACHE: RefCell<Slots> = const {
        RefCell::new(Slots { entries: [None; SLOTS], next: 0 })
    };
}

/// `spend_span`, with calendar windows taken from this thread's cache when `now` lies in one.
pub fn cached_spend_span(
    kind: LimitKind,
    limits: &Limits,
    now: DateTime<Utc>,
    tz: Tz,
) -> Option<Span> {
    let reset = match kind {
        LimitKind::Daily
            if limits.daily_reset_mode == crate::domain::limits::DailyResetMode::Fixed =>
        {
            (limits.daily_reset_time.hour, limits.daily_reset_time.minute)
        }
        LimitKind::Weekly | LimitKind::Monthly => (0, 0),
        // Rolling windows, totals, RPM and sessions need no calendar.
        _ => return spend_span(kind, limits, now, tz),
    };
    let which = Which { kind, tz, reset };
    CACHE.with(|cell| {
        let Ok(mut slots) = cell.try_borrow_mut() else {
            return spend_span(kind, limits, now, tz);
        };
        let mut same = None;
        for (i, e) in slots.entries.iter().enumerate() {
            if let Some(e) = e.filter(|e| e.which == which) {
                if e.window.start <= now && now < e.window.end {
                    return Some(Span::Fixed(e.window));
                }
                same = Some(i);
            }
        }
        let span = spend_span(kind, limits, now, tz)?;
        let Span::Fixed(w) = span else {
            return Some(span);
        };
        let slot = same.unwrap_or_else(|| {
            let s = slots.next;
            slots.next = (s + 1) % SLOTS;
            s
        });
        slots.entries[slot] = Some(Entry { which, window: w });
        Some(span)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::limits::{DailyResetMode, ResetTime};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn limits(reset: (u8, u8)) -> Limits {
        Limits {
            daily_reset_mode: DailyResetMode::Fixed,
            daily_reset_time: ResetTime {
                hour: reset.0,
                minute: reset.1,
            },
            ..Limits::default()
        }
    }

    #[test]
    fn cached_windows_equal_computed_ones_across_edges_zones_and_reset_times() {
        let zones: [Tz; 4] = [
            chrono_tz::UTC,
            chrono_tz::Asia::Shanghai,
            chrono_tz::America::New_York,
            chrono_tz::Asia::Kolkata,
        ];
        // Instants around a daily reset, a week's end, a month's end and a DST change, visited
        // out of order so the cache is hit, missed and replaced.
        let instants = [
            "2026-03-08T06:59:59Z",
            "2026-03-08T07:00:00Z",
            "2026-03-31T23:59:59.999Z",
            "2026-04-01T00:00:00Z",
            "2026-03-08T06:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:00:00Z",
            "2026-03-29T16:00:00Z",
            "2026-03-30T15:59:59Z",
            "2026-03-30T16:00:00Z",
            "2026-03-08T07:00:00Z",
        ];
        let resets = [(0, 0), (3, 30), (23, 59), (12, 0), (0, 0)];
        let kinds = [LimitKind::Daily, LimitKind::Weekly, LimitKind::Monthly];
        for round in 0..2 {
            for tz in zones {
                for reset in resets {
                    let l = limits(reset);
                    for t in instants {
                        for kind in kinds {
                            let now = at(t);
                            assert_eq!(
                                cached_spend_span(kind, &l, now, tz),
                                spend_span(kind, &l, now, tz),
                                "round {round} {kind:?} {tz} reset {reset:?} at {t}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rolling_and_untimed_kinds_pass_through() {
        let rolling = Limits {
            daily_reset_mode: DailyResetMode::Rolling,
            ..Limits::default()
        };
        let now = at("2026-12-07T18:00:00Z");
        for kind in [
            LimitKind::Daily,
            LimitKind::FiveHour,
            LimitKind::Total,
            LimitKind::Rpm,
            LimitKind::Concurrency,
        ] {
            assert_eq!(
                cached_spend_span(kind, &rolling, now, chrono_tz::UTC),
                spend_span(kind, &rolling, now, chrono_tz::UTC)
            );
        }
    }
}
