//! Period tiers of the usage ledger: the hourly roll-ups summed again per local day, week and
//! month of one time zone, per user, key, provider and model. A monthly leaderboard of 10,000
//! users then reads one row per user instead of every hourly roll-up of the month (about
//! 1.5 M rows on the benchmark's data). The tiers trail the clock: a background step sums each
//! hour into them once it is over ([`fold_before`]), so the log writer's cost per request does
//! not grow with them; the latest hours are read from the ledger. Hours count in the period their start instant falls
//! in, exactly as the hourly ledger's periods do (`domain::periods`), so an answer from the
//! tiers equals the answer from the ledger.

use std::collections::{BTreeMap, HashMap};

use chrono::DateTime;
use chrono_tz::Tz;

use super::periods::{HourSpan, Period, period_range};
use super::rollup::{HOUR_SECS, RollupKey, RollupSums, hour_of};

/// Ledger rows a rebuild step sums, about: a step takes whole hours, at least one, until their
/// ledger rows pass this. Bounds how long a step's transaction holds the log writer back; a
/// bigger step sums more of a user's hours into one tier row.
pub const REBUILD_STEP_ROWS: i64 = 20_000;

/// Minutes after an hour ends before it is summed into the tiers. Rows logged for an hour
/// after that (a stream longer than this, a spool replayed after an outage) are added to the
/// tiers by the log insert itself; until then the hour is read from the hourly ledger.
pub const FOLD_GRACE_SECS: i64 = 15 * 60;

/// The first hour not to sum into the tiers yet at `now` (epoch seconds): every hour that
/// ended at least [`FOLD_GRACE_SECS`] ago is summed.
pub fn fold_before(now: i64) -> i64 {
    hour_of(now - FOLD_GRACE_SECS)
}

/// A tier's period length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TierKind {
    /// A UTC hour. For a user or key it is about one row per ledger row, but it is written by
    /// the background fold, not the log writer, and it is what per-entity reads use: the
    /// ledger has no per-entity index, so the writer keeps only its hour-ordered key.
    Hour,
    /// A local day.
    Day,
    /// A local week, Monday first (as the `week` period).
    Week,
    /// A local calendar month.
    Month,
    /// Every hour ever folded (one row per group, `start` 0): an all-time ranking reads one
    /// row per user instead of every month of the ledger's life. Not a calendar period, so
    /// [`decompose`] never yields it; reads subtract the ledger hours outside their span
    /// (`adapters::sql_tiers`).
    Total,
}

impl TierKind {
    /// Every kind, shortest first.
    pub const ALL: [TierKind; 5] = [
        TierKind::Hour,
        TierKind::Day,
        TierKind::Week,
        TierKind::Month,
        TierKind::Total,
    ];

    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "h",
            Self::Day => "d",
            Self::Week => "w",
            Self::Month => "m",
            Self::Total => "t",
        }
    }
}

/// What a tier row is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TierDim {
    /// Per user.
    User,
    /// Per key.
    Key,
    /// Per final provider.
    Provider,
    /// Per billed model.
    Model,
}

impl TierDim {
    /// Every dimension.
    pub const ALL: [TierDim; 4] = [
        TierDim::User,
        TierDim::Key,
        TierDim::Provider,
        TierDim::Model,
    ];

    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Key => "key",
            Self::Provider => "provider",
            Self::Model => "model",
        }
    }

    /// The group of a roll-up row in this dimension, as stored (ids as decimal text; the
    /// "none" group is "0" or "", as in the ledger).
    pub fn group_of(self, k: &RollupKey) -> String {
        match self {
            Self::User => k.user_id.to_string(),
            Self::Key => k.key_id.to_string(),
            Self::Provider => k.provider_id.to_string(),
            Self::Model => k.model.clone(),
        }
    }
}

/// The identity of one tier row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TierKey {
    /// Grouped by.
    pub dim: TierDim,
    /// Period length.
    pub kind: TierKind,
    /// The period's local start instant, in UTC epoch seconds (not always on an hour: a
    /// half-hour zone's midnight).
    pub start: i64,
    /// The group (see [`TierDim::group_of`]).
    pub group: String,
}

/// A local period: its start and end instants (epoch seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPeriod {
    /// Period length.
    pub kind: TierKind,
    /// Start instant.
    pub start: i64,
    /// End instant (the next period's start).
    pub end: i64,
}

impl LocalPeriod {
    /// The ledger hours this period counts: those starting inside it.
    pub fn hours(&self) -> HourSpan {
        let ceil = |s: i64| {
            let h = hour_of(s);
            if h == s { h } else { h + HOUR_SECS }
        };
        HourSpan {
            first: ceil(self.start),
            end: ceil(self.end),
        }
    }
}

/// Spans starting at or before this instant (2000-01-01 00:00 UTC, where the console's "all
/// time" starts) are read from the [`TierKind::Total`] rows: they hold every hour, so no
/// ledger hour before it is missed (those few are subtracted if any exist).
pub const ALL_TIME_FROM: i64 = 946_684_800;

/// The end given to the [`TierKind::Total`] period: far beyond any hour, and far enough from
/// `i64::MAX` that hour arithmetic on it cannot overflow.
pub const TOTAL_END: i64 = i64::MAX / 4;

/// The hour itself, the local day, week and month holding its start, and the total (in
/// [`TierKind::ALL`] order).
pub fn periods_of_hour(hour: i64, tz: Tz) -> [LocalPeriod; 5] {
    let at = DateTime::from_timestamp(hour, 0).unwrap_or_default();
    TierKind::ALL.map(|kind| {
        let period = match kind {
            TierKind::Hour => {
                return LocalPeriod {
                    kind,
                    start: hour,
                    end: hour + HOUR_SECS,
                };
            }
            TierKind::Total => {
                return LocalPeriod {
                    kind,
                    start: 0,
                    end: TOTAL_END,
                };
            }
            TierKind::Day => Period::Today,
            TierKind::Week => Period::Week,
            TierKind::Month => Period::Month,
        };
        match period_range(period, at, tz) {
            Ok(r) => LocalPeriod {
                kind,
                start: r.from.timestamp(),
                end: r.to.timestamp(),
            },
            // Unreachable for real zones (a period is never empty); an hour-long period keeps
            // the hour counted somewhere.
            Err(_) => LocalPeriod {
                kind,
                start: hour,
                end: hour + HOUR_SECS,
            },
        }
    })
}

/// The tier rows of some ledger rows, in key order (a stable order keeps concurrent upserts
/// from deadlocking in Postgres). Only hours before `covered_below` are summed: the hours at
/// and after it are still to be summed from the ledger by a rebuild. Bounded by the rows
/// given: at most 20 tier rows per ledger row (4 dimensions × 5 kinds).
pub fn tier_rows(
    rows: &[(RollupKey, RollupSums)],
    tz: Tz,
    covered_below: i64,
) -> Vec<(TierKey, RollupSums)> {
    // One entry per distinct hour of the batch.
    let mut periods: HashMap<i64, [LocalPeriod; 5]> = HashMap::new();
    let mut out: BTreeMap<TierKey, RollupSums> = BTreeMap::new();
    for (k, s) in rows.iter().filter(|(k, _)| k.hour < covered_below) {
        let ps = *periods
            .entry(k.hour)
            .or_insert_with(|| periods_of_hour(k.hour, tz));
        for dim in TierDim::ALL {
            let group = dim.group_of(k);
            for p in ps.iter() {
                out.entry(TierKey {
                    dim,
                    kind: p.kind,
                    start: p.start,
                    group: group.clone(),
                })
                .or_default()
                .merge(s);
            }
        }
    }
    out.into_iter().collect()
}

/// A part of an hour span: whole tier periods, or hours read from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Consecutive periods of one kind, by the starts of the first and the last.
    Tiers {
        /// Period length.
        kind: TierKind,
        /// Start of the first period.
        first_start: i64,
        /// Start of the last period.
        last_start: i64,
    },
    /// Hours not covering a whole period.
    Hours(HourSpan),
}

/// Cuts an hour span into the longest whole local periods of the allowed `kinds` it holds (a
/// month before a week before a day before an hour) and the leftover hours at its edges. Consecutive periods
/// of one kind are one piece, so a span of years is a handful of pieces.
pub fn decompose(span: HourSpan, tz: Tz, kinds: &[TierKind]) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut p = span.first;
    while p < span.end {
        let ps = periods_of_hour(p, tz);
        let fits = |lp: &LocalPeriod| {
            let h = lp.hours();
            h.first == p && h.end <= span.end && h.end > h.first
        };
        // A week across a month's start is left for days when that whole month is in the
        // span: reaching the month start lets whole months follow (a span of years would
        // otherwise be weeks all along).
        let month_end = ps[3].hours().end;
        let blocks_a_month = |lp: &LocalPeriod| {
            lp.kind == TierKind::Week
                && lp.hours().end > month_end
                && kinds.contains(&TierKind::Month)
                && periods_of_hour(month_end, tz)[3].hours().end <= span.end
        };
        match ps
            .iter()
            .rev()
            .filter(|lp| lp.kind != TierKind::Total)
            .find(|lp| kinds.contains(&lp.kind) && fits(lp) && !blocks_a_month(lp))
        {
            Some(lp) => {
                match pieces.last_mut() {
                    Some(Piece::Tiers {
                        kind, last_start, ..
                    }) if *kind == lp.kind => *last_start = lp.start,
                    _ => pieces.push(Piece::Tiers {
                        kind: lp.kind,
                        first_start: lp.start,
                        last_start: lp.start,
                    }),
                }
                p = lp.hours().end;
            }
            None => {
                let day_end = ps[1].hours().end;
                let next = if day_end > p { day_end } else { p + HOUR_SECS }.min(span.end);
                match pieces.last_mut() {
                    Some(Piece::Hours(h)) if h.end == p => h.end = next,
                    _ => pieces.push(Piece::Hours(HourSpan {
                        first: p,
                        end: next,
                    })),
                }
                p = next;
            }
        }
    }
    pieces
}

#[cfg(test)]
#[path = "usage_tiers_tests.rs"]
mod tests;
