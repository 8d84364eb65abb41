//! Limit windows: which instants bound the current window of each limit, given `now`, the
//! configured timezone and the daily reset mode. Pure arithmetic; the clock is passed in.
//!
//! - RPM: sliding 60 s; 5 h: rolling 5 h; daily `rolling`: rolling 24 h. Sliding windows are
//!   rings of time buckets (`Ring`): 1 s for RPM, 3 min for 5 h, 15 min for 24 h; an event
//!   leaves its window at most one bucket late.
//! - Daily `fixed`: from the last `HH:MM` in the timezone to the next one.
//! - Weekly: Monday 00:00 to the next Monday 00:00 in the timezone.
//! - Monthly: the 1st 00:00 to the next 1st 00:00 in the timezone.
//! - Total: no window (until an admin resets it).
//!
//! A fixed window contains its start instant and excludes its end instant. Local times that do
//! not exist (a DST gap) move forward to the first instant that does; ambiguous local times
//! (a DST fold) take the earlier instant.

use chrono::{
    DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::limits::{DailyResetMode, Limits, ResetTime};

/// Length of the RPM window.
pub const RPM_WINDOW_MS: i64 = 60_000;
/// Length of the rolling 5 hour window.
pub const FIVE_HOURS_MS: i64 = 5 * 3_600_000;
/// Length of the rolling daily window.
pub const DAY_MS: i64 = 24 * 3_600_000;

/// Stored money unit: one micro-USD (10⁻⁶ USD). Counters hold integers of this unit.
pub const MICROS_PER_USD: i64 = 1_000_000;

/// Most buckets a rolling window is split into (the ring holds one more: the partial bucket at
/// each end). 100 keeps a Redis hash of one window in its compact listpack encoding (≤ 128
/// fields by default) and the in-process ring at about a hundred small entries.
pub const MAX_BUCKETS: i64 = 100;

/// Bucket widths a ring may use, smallest first: 1 s, 5 s, 15 s, 1 min, 3 min, 5 min, 15 min,
/// 1 h, 3 h, 6 h, 1 day. A ring takes the smallest one that splits its window into at most
/// `MAX_BUCKETS`: RPM (60 s) → 1 s, 5 h → 3 min, 24 h → 15 min.
const BUCKET_WIDTHS_MS: [i64; 11] = [
    1_000, 5_000, 15_000, 60_000, 180_000, 300_000, 900_000, 3_600_000, 10_800_000, 21_600_000,
    86_400_000,
];

/// Most session members kept per session counter. A limited counter never holds more than its
/// limit (at most 1000 by validation); an unlimited one (counted for display only) drops its
/// oldest members beyond this, so its displayed count saturates here.
pub const SESSION_MEMBERS_CAP: i64 = 128;

/// Most members a session counter checked against `limit` keeps: the limit itself is never
/// exceeded by admissions, and an unlimited counter (`i64::MAX`, display only) keeps
/// `SESSION_MEMBERS_CAP`, dropping its least recently seen members beyond that.
pub fn session_cap(limit: i64) -> i64 {
    if limit == i64::MAX {
        SESSION_MEMBERS_CAP
    } else {
        limit.max(SESSION_MEMBERS_CAP)
    }
}

/// `a / b` rounded up, for positive `a` and `b`.
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// A sliding window kept as a ring of fixed time buckets instead of one entry per event.
///
/// Bucket `i` holds what happened in `[i·bucket, (i+1)·bucket)` (epoch-aligned). Everything in
/// a bucket counts as if it happened at the bucket's end, `(i+1)·bucket`: an event at `t`
/// stops counting at `(i+1)·bucket + window`, between just after `t + window` and one bucket
/// later. Limits therefore err on the strict side, by at most one bucket, never the lenient
/// one. Shared by the memory adapter and mirrored by the Redis Lua (`limits_common.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ring {
    /// Window length (ms).
    pub window_ms: i64,
    /// Bucket width (ms).
    pub bucket_ms: i64,
}

impl Ring {
    /// The ring of a window, with the bucket width chosen from `BUCKET_WIDTHS_MS`.
    pub fn for_window(window_ms: i64) -> Self {
        let window_ms = window_ms.max(1);
        let bucket_ms = BUCKET_WIDTHS_MS
            .into_iter()
            .find(|b| ceil_div(window_ms, *b) <= MAX_BUCKETS)
            .unwrap_or_else(|| ceil_div(window_ms, MAX_BUCKETS));
        Self {
            window_ms,
            bucket_ms,
        }
    }

    /// The bucket holding instant `t_ms`.
    pub fn index(&self, t_ms: i64) -> i64 {
        t_ms.div_euclid(self.bucket_ms)
    }

    /// The oldest bucket still counted at `now_ms`; older ones can be dropped.
    pub fn first_live(&self, now_ms: i64) -> i64 {
        now_ms
            .saturating_sub(self.window_ms)
            .div_euclid(self.bucket_ms)
    }

    /// True when bucket `index` still counts at `now_ms`.
    pub fn is_live(&self, index: i64, now_ms: i64) -> bool {
        index >= self.first_live(now_ms)
    }

    /// The instant every event of bucket `index` counts as (the bucket's end).
    pub fn effective_ms(&self, index: i64) -> i64 {
        index.saturating_add(1).saturating_mul(self.bucket_ms)
    }

    /// When bucket `index` stops counting.
    pub fn released_at(&self, index: i64) -> i64 {
        self.effective_ms(index).saturating_add(self.window_ms)
    }

    /// Most buckets live at once (the bound on what a ring stores).
    pub fn slots(&self) -> i64 {
        ceil_div(self.window_ms, self.bucket_ms) + 1
    }
}

/// Which limit a window belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitKind {
    /// Requests per sliding minute.
    Rpm,
    /// Spend in a rolling 5 hours.
    FiveHour,
    /// Spend per day (fixed or rolling).
    Daily,
    /// Spend per week.
    Weekly,
    /// Spend per month.
    Monthly,
    /// Spend ever.
    Total,
    /// Concurrently active sessions.
    Concurrency,
}

impl LimitKind {
    /// Every kind, in the order a request is checked after totals and concurrency.
    pub const ALL: [LimitKind; 7] = [
        LimitKind::Total,
        LimitKind::Concurrency,
        LimitKind::Rpm,
        LimitKind::FiveHour,
        LimitKind::Daily,
        LimitKind::Weekly,
        LimitKind::Monthly,
    ];

    /// Short stable name (used in store keys, the API and messages).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rpm => "rpm",
            Self::FiveHour => "5h",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Total => "total",
            Self::Concurrency => "concurrent_sessions",
        }
    }

    /// Human-readable name for 429 messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::Rpm => "requests per minute",
            Self::FiveHour => "5-hour spend",
            Self::Daily => "daily spend",
            Self::Weekly => "weekly spend",
            Self::Monthly => "monthly spend",
            Self::Total => "total spend",
            Self::Concurrency => "concurrent sessions",
        }
    }

    /// True for the spend (money) limits.
    pub fn is_spend(self) -> bool {
        !matches!(self, Self::Rpm | Self::Concurrency)
    }
}

/// A calendar window: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow {
    /// First instant of the window.
    pub start: DateTime<Utc>,
    /// First instant after the window (when it resets).
    pub end: DateTime<Utc>,
}

impl FixedWindow {
    /// A key naming this period, unique per window start (epoch seconds of the start).
    pub fn period_key(&self) -> String {
        self.start.timestamp().to_string()
    }
}

/// How a spend window accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The entries of the last `window_ms` milliseconds.
    Rolling {
        /// Window length.
        window_ms: i64,
    },
    /// A calendar period.
    Fixed(FixedWindow),
    /// No window: everything since the last reset.
    Total,
}

/// The instant for a local date and time in `tz`: DST gaps move forward, folds take the
/// earlier instant.
pub fn local_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut candidate = local;
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&candidate).earliest() {
            return t.with_timezone(&Utc);
        }
        candidate += chrono::Duration::minutes(30);
    }
    local.and_utc()
}

fn at(date: NaiveDate, time: NaiveTime) -> NaiveDateTime {
    date.and_time(time)
}

/// The fixed daily window containing `now`, resetting at `reset` local time in `tz`.
pub fn daily_window(now: DateTime<Utc>, tz: Tz, reset: ResetTime) -> FixedWindow {
    let time = NaiveTime::from_hms_opt(u32::from(reset.hour), u32::from(reset.minute), 0)
        .unwrap_or(NaiveTime::MIN);
    let today = now.with_timezone(&tz).date_naive();
    let this = local_instant(tz, at(today, time));
    if this <= now {
        let next_day = today.checked_add_days(Days::new(1)).unwrap_or(today);
        FixedWindow {
            start: this,
            end: local_instant(tz, at(next_day, time)),
        }
    } else {
        let prev_day = today.checked_sub_days(Days::new(1)).unwrap_or(today);
        FixedWindow {
            start: local_instant(tz, at(prev_day, time)),
            end: this,
        }
    }
}

/// The week containing `now`: Monday 00:00 to the next Monday 00:00 in `tz`.
pub fn weekly_window(now: DateTime<Utc>, tz: Tz) -> FixedWindow {
    let today = now.with_timezone(&tz).date_naive();
    let back = u64::from(today.weekday().num_days_from_monday());
    let monday = today.checked_sub_days(Days::new(back)).unwrap_or(today);
    let next = monday.checked_add_days(Days::new(7)).unwrap_or(monday);
    FixedWindow {
        start: local_instant(tz, at(monday, NaiveTime::MIN)),
        end: local_instant(tz, at(next, NaiveTime::MIN)),
    }
}

/// The calendar month containing `now`: the 1st 00:00 to the next 1st 00:00 in `tz`.
pub fn monthly_window(now: DateTime<Utc>, tz: Tz) -> FixedWindow {
    let today = now.with_timezone(&tz).date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
    FixedWindow {
        start: local_instant(tz, at(first, NaiveTime::MIN)),
        end: local_instant(tz, at(next, NaiveTime::MIN)),
    }
}

/// The span of a spend window of `kind` under `limits` (daily mode and reset time), at `now`.
/// `None` for kinds that are not spend windows.
pub fn spend_span(kind: LimitKind, limits: &Limits, now: DateTime<Utc>, tz: Tz) -> Option<Span> {
    Some(match kind {
        LimitKind::FiveHour => Span::Rolling {
            window_ms: FIVE_HOURS_MS,
        },
        LimitKind::Daily => match limits.daily_reset_mode {
            DailyResetMode::Rolling => Span::Rolling { window_ms: DAY_MS },
            DailyResetMode::Fixed => Span::Fixed(daily_window(now, tz, limits.daily_reset_time)),
        },
        LimitKind::Weekly => Span::Fixed(weekly_window(now, tz)),
        LimitKind::Monthly => Span::Fixed(monthly_window(now, tz)),
        LimitKind::Total => Span::Total,
        LimitKind::Rpm | LimitKind::Concurrency => return None,
    })
}

/// The first instant counted by a span at `now` (`None` for totals).
pub fn span_start(span: Span, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match span {
        Span::Rolling { window_ms } => Some(now - chrono::Duration::milliseconds(window_ms)),
        Span::Fixed(w) => Some(w.start),
        Span::Total => None,
    }
}

/// The configured limit of `kind` in store units (requests, sessions or micro-USD); `None` when
/// unlimited. Zero means unlimited, as in the original.
pub fn limit_value(limits: &Limits, kind: LimitKind) -> Option<i64> {
    let money = |v: Option<Decimal>| v.map(usd_to_micros);
    let value = match kind {
        LimitKind::Rpm => limits.rpm.map(i64::from),
        LimitKind::FiveHour => money(limits.limit_5h_usd),
        LimitKind::Daily => money(limits.limit_daily_usd),
        LimitKind::Weekly => money(limits.limit_weekly_usd),
        LimitKind::Monthly => money(limits.limit_monthly_usd),
        LimitKind::Total => money(limits.limit_total_usd),
        LimitKind::Concurrency => limits.limit_concurrent_sessions.map(i64::from),
    };
    value.filter(|v| *v > 0)
}

/// USD → micro-USD, rounded to the nearest unit (half away from zero), saturating.
pub fn usd_to_micros(usd: Decimal) -> i64 {
    // Configured limits (about 36 conversions per request) have at most six fractional digits
    // and a 64-bit mantissa: their micro-USD are that mantissa scaled up, exact, in a few
    // integer instructions instead of a decimal multiplication and rounding (~125 each,
    // callgrind).
    const SCALE_UP: [u64; 7] = [1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];
    let d = usd.unpack();
    if d.hi == 0
        && let Some(&up) = SCALE_UP.get(d.scale as usize)
        && let Some(magnitude) = ((u64::from(d.mid) << 32) | u64::from(d.lo)).checked_mul(up)
        && let Ok(v) = i64::try_from(magnitude)
    {
        return if d.negative { -v } else { v };
    }
    usd.checked_mul(Decimal::from(MICROS_PER_USD))
        .map(|v| v.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero))
        .and_then(|v| v.to_i64())
        .unwrap_or(if usd.is_sign_negative() {
            i64::MIN
        } else {
            i64::MAX
        })
}

/// micro-USD → USD.
pub fn micros_to_usd(micros: i64) -> Decimal {
    Decimal::new(micros, 6)
}

#[cfg(test)]
#[path = "windows_tests.rs"]
mod tests;
