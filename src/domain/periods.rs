//! Statistics periods and buckets, cut in the configured time zone.
//!
//! Roll-ups have UTC-hour resolution. A period `[from, to)` counts the roll-up hours that
//! *start* inside it. In zones whose offset is a whole number of hours that is exact. In zones
//! with half- or quarter-hour offsets (India +5:30, Nepal +5:45, Newfoundland −3:30) a local day
//! starts inside a UTC hour; that hour is counted in the day it starts in, so each edge of a
//! period is off by the zone's minutes (30 or 45) and no request is counted twice or lost. We
//! chose this over cutting the edges from the request log because answers must not change when
//! the log is cleaned up. The effective (hour-aligned) range is returned with every answer.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::rollup::{HOUR_SECS, hour_of};
use super::windows::local_instant;

/// Seconds in a day.
const DAY_SECS: i64 = 86_400;
/// Most buckets a time series may have (bounds the answer and the SQL it needs).
pub const MAX_BUCKETS: i64 = 2_500;

/// A named period, or a custom range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The local calendar day holding now.
    Today,
    /// The local day before.
    Yesterday,
    /// Monday 00:00 local of this week to next Monday.
    Week,
    /// The 1st 00:00 local of this month to the next 1st.
    Month,
    /// A range given by the caller.
    Custom {
        /// First instant.
        from: DateTime<Utc>,
        /// First instant after the range.
        to: DateTime<Utc>,
    },
}

/// Why a period or bucket request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// `from` is not before `to`.
    #[error("`from` must be before `to`")]
    Empty,
    /// Too many buckets for one answer.
    #[error(
        "the range holds more than {MAX_BUCKETS} buckets; use a wider bucket or a shorter range"
    )]
    TooManyBuckets,
}

/// An exact UTC range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First instant.
    pub from: DateTime<Utc>,
    /// First instant after.
    pub to: DateTime<Utc>,
}

/// The roll-up hours a range counts: those starting in `[first, end)` (epoch seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourSpan {
    /// First hour counted.
    pub first: i64,
    /// First hour not counted.
    pub end: i64,
}

fn day_start(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    local_instant(tz, day.and_time(NaiveTime::MIN))
}

/// The exact range of `period` at `now` in `tz`.
pub fn period_range(period: Period, now: DateTime<Utc>, tz: Tz) -> Result<Range, PeriodError> {
    let today = now.with_timezone(&tz).date_naive();
    let next = |d: NaiveDate, n: u64| d.checked_add_days(Days::new(n)).unwrap_or(d);
    let (from, to) = match period {
        Period::Today => (day_start(tz, today), day_start(tz, next(today, 1))),
        Period::Yesterday => {
            let y = today.checked_sub_days(Days::new(1)).unwrap_or(today);
            (day_start(tz, y), day_start(tz, today))
        }
        Period::Week => {
            let back = u64::from(today.weekday().num_days_from_monday());
            let monday = today.checked_sub_days(Days::new(back)).unwrap_or(today);
            (day_start(tz, monday), day_start(tz, next(monday, 7)))
        }
        Period::Month => {
            let first = today.with_day(1).unwrap_or(today);
            let after = first.checked_add_months(Months::new(1)).unwrap_or(first);
            (day_start(tz, first), day_start(tz, after))
        }
        Period::Custom { from, to } => (from, to),
    };
    if from >= to {
        return Err(PeriodError::Empty);
    }
    Ok(Range { from, to })
}

fn ceil_hour(secs: i64) -> i64 {
    let h = hour_of(secs);
    if h == secs { h } else { h + HOUR_SECS }
}

impl Range {
    /// The roll-up hours this range counts (those starting inside it).
    pub fn hours(&self) -> HourSpan {
        HourSpan {
            first: ceil_hour(self.from.timestamp()),
            end: ceil_hour(self.to.timestamp()),
        }
    }
}

impl HourSpan {
    /// The span as instants.
    pub fn as_range(&self) -> Range {
        let at = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default();
        Range {
            from: at(self.first),
            to: at(self.end),
        }
    }
}

/// Bucket width of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketWidth {
    /// UTC hours.
    Hour,
    /// Local calendar days.
    Day,
}

/// One stretch of a range during which the zone's UTC offset is constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetSegment {
    /// First hour (epoch seconds) with this offset.
    pub from_hour: i64,
    /// Offset in seconds (local = UTC + offset).
    pub offset_secs: i64,
}

/// How roll-up hours map to time-series buckets: for hours, `(hour − origin) / 3600`; for days,
/// `(hour + offset(hour) − origin) / 86400`, where `offset` is piecewise constant (`segments`,
/// a handful per year) and `origin` the local midnight of the first day as local seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPlan {
    /// The hours counted.
    pub hours: HourSpan,
    /// Width.
    pub width: BucketWidth,
    /// See the type's doc.
    pub origin: i64,
    /// Offset changes over the span (the first starts at `hours.first`); empty for hours.
    pub segments: Vec<OffsetSegment>,
    /// Start instant of each bucket, in order.
    pub starts: Vec<DateTime<Utc>>,
}

fn offset_at(tz: Tz, secs: i64) -> i64 {
    let at = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
    i64::from(
        tz.offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

impl BucketPlan {
    /// The buckets of `range` at `width` in `tz`.
    pub fn new(range: Range, width: BucketWidth, tz: Tz) -> Result<Self, PeriodError> {
        let hours = range.hours();
        if hours.first >= hours.end {
            return Err(PeriodError::Empty);
        }
        match width {
            BucketWidth::Hour => {
                let n = (hours.end - hours.first) / HOUR_SECS;
                if n > MAX_BUCKETS {
                    return Err(PeriodError::TooManyBuckets);
                }
                let starts = (0..n)
                    .filter_map(|i| DateTime::from_timestamp(hours.first + i * HOUR_SECS, 0))
                    .collect();
                Ok(Self {
                    hours,
                    width,
                    origin: hours.first,
                    segments: Vec::new(),
                    starts,
                })
            }
            BucketWidth::Day => {
                if (hours.end - hours.first) / DAY_SECS > MAX_BUCKETS {
                    return Err(PeriodError::TooManyBuckets);
                }
                let mut segments = vec![OffsetSegment {
                    from_hour: hours.first,
                    offset_secs: offset_at(tz, hours.first),
                }];
                let mut h = hours.first + HOUR_SECS;
                while h < hours.end {
                    let o = offset_at(tz, h);
                    if segments.last().is_some_and(|s| s.offset_secs != o) {
                        segments.push(OffsetSegment {
                            from_hour: h,
                            offset_secs: o,
                        });
                    }
                    h += HOUR_SECS;
                }
                let local = |h: i64, o: i64| h + o;
                let first_local = local(hours.first, segments[0].offset_secs);
                let origin = first_local.div_euclid(DAY_SECS) * DAY_SECS;
                let last_hour = hours.end - HOUR_SECS;
                let last_offset = segments.last().map_or(0, |s| s.offset_secs);
                let days = (local(last_hour, last_offset) - origin).div_euclid(DAY_SECS) + 1;
                let first_day = DateTime::<Utc>::from_timestamp(origin, 0)
                    .unwrap_or_default()
                    .date_naive();
                let starts = (0..days)
                    .filter_map(|i| u64::try_from(i).ok())
                    .filter_map(|i| first_day.checked_add_days(Days::new(i)))
                    .map(|d| day_start(tz, d))
                    .collect();
                Ok(Self {
                    hours,
                    width,
                    origin,
                    segments,
                    starts,
                })
            }
        }
    }

    /// The bucket index of a roll-up hour (what the SQL computes; used to check it).
    pub fn bucket_of(&self, hour: i64) -> i64 {
        match self.width {
            BucketWidth::Hour => (hour - self.origin) / HOUR_SECS,
            BucketWidth::Day => {
                let o = self
                    .segments
                    .iter()
                    .rev()
                    .find(|s| s.from_hour <= hour)
                    .map_or(0, |s| s.offset_secs);
                (hour + o - self.origin).div_euclid(DAY_SECS)
            }
        }
    }
}

#[cfg(test)]
#[path = "periods_tests.rs"]
mod tests;
