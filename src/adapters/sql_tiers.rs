//! The SQL of the ledger's period tiers (`usage_tiers`, `domain::usage_tiers`), written once
//! for SQLite and PostgreSQL like the ledger's own (`adapters::sql_ledger`). Statistics read
//! whole local periods from the tiers and the leftover edge hours from the hourly ledger, in
//! one statement, so an answer never mixes two snapshots.

use chrono_tz::Tz;

use super::sql_ledger::{Arg, Dialect, Sql, bucket_expr, hours_where, metric_sum, sum_columns};
use crate::domain::periods::{BucketWidth, HourSpan};
use crate::domain::rollup::{OutcomeClass, RollupKey, RollupSums};
use crate::domain::usage_tiers::{Piece, TierDim, TierKey, TierKind, decompose};
use crate::ports::stats::{Dimension, Metric, RankQuery, SeriesQuery};

/// The zone the tiers are cut in and the first hour not yet summed into them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TierState {
    /// IANA name; empty before the first build.
    pub zone: String,
    /// Hours at and after this are not in the tiers yet (`i64::MAX` once built).
    pub covered_below: i64,
}

impl TierState {
    /// Whether the tiers hold every hour of `hours`, cut in `zone`.
    pub fn serves(&self, zone: Tz, hours: HourSpan) -> bool {
        !self.zone.is_empty() && self.zone == zone.name() && hours.end <= self.covered_below
    }

    /// The zone to cut new rows in, when there is one.
    pub fn zone(&self) -> Option<Tz> {
        self.zone.parse().ok()
    }
}

/// Reads the state row; `lock` adds Postgres' row lock (`FOR SHARE` for writers, so a rebuild
/// step waits for them and they for it; `FOR UPDATE` for the rebuild).
pub(crate) fn state(dialect: Dialect, lock: Option<&str>) -> String {
    let mut q = "SELECT zone, covered_below FROM usage_tier_state WHERE id = 1".to_string();
    if let (Dialect::Postgres, Some(l)) = (dialect, lock) {
        q.push(' ');
        q.push_str(l);
    }
    q
}

/// Sets the state row.
pub(crate) fn set_state(dialect: Dialect, zone: &str, covered_below: i64) -> Sql {
    let mut q = Sql::new(dialect);
    q.push("UPDATE usage_tier_state SET zone = ")
        .bind(Arg::Text(zone.to_string()))
        .push(", covered_below = ")
        .bind(Arg::I64(covered_below))
        .push(" WHERE id = 1");
    q
}

/// Empties the tiers (a zone change): SQLite's unqualified `DELETE` and Postgres' `TRUNCATE`
/// both drop the pages instead of deleting row by row.
pub(crate) fn clear(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "DELETE FROM usage_tiers",
        Dialect::Postgres => "TRUNCATE usage_tiers",
    }
}

/// The first ledger hour at or after `from` (NULL when none).
pub(crate) fn first_hour_from(dialect: Dialect, from: i64) -> Sql {
    let mut q = Sql::new(dialect);
    q.push("SELECT MIN(hour) FROM usage_rollups WHERE hour >= ")
        .bind(Arg::I64(from));
    q
}

/// Hours a rebuild step looks ahead when choosing its hours.
const STEP_HOURS: i64 = 24 * 7;

/// The ledger's next hours from `from` with their row counts, in order: rows of (hour, count).
pub(crate) fn hours_from(dialect: Dialect, from: i64) -> Sql {
    let mut q = Sql::new(dialect);
    q.push("SELECT hour, CAST(COUNT(*) AS BIGINT) FROM usage_rollups WHERE hour >= ")
        .bind(Arg::I64(from))
        .push(" GROUP BY hour ORDER BY hour LIMIT ")
        .bind(Arg::I64(STEP_HOURS));
    q
}

/// The hours one rebuild step sums, from [`hours_from`]'s rows: from the first hour up to
/// (excluding) the hour whose rows would pass `max_rows`; `None` when the ledger has no hour
/// left.
pub(crate) fn step_span(counts: &[(i64, i64)], max_rows: i64) -> Option<HourSpan> {
    let (first, _) = *counts.first()?;
    let mut rows = 0i64;
    let mut end = first + crate::domain::rollup::HOUR_SECS;
    for (hour, n) in counts {
        if rows > 0 && rows.saturating_add(*n) > max_rows {
            return Some(HourSpan { first, end: *hour });
        }
        rows = rows.saturating_add(*n);
        end = hour + crate::domain::rollup::HOUR_SECS;
    }
    Some(HourSpan { first, end })
}

/// The columns summed in a tier row (no histogram: the overview reads the hourly totals).
fn tier_columns() -> Vec<String> {
    sum_columns(false)
}

/// Values in [`tier_columns`] order.
fn tier_values(s: &RollupSums) -> [i64; 13] {
    [
        s.requests,
        s.errors,
        s.input_tokens,
        s.output_tokens,
        s.cache_read_tokens,
        s.cache_write_5m_tokens,
        s.cache_write_1h_tokens,
        s.cost_micros,
        s.cost_pico,
        s.duration_ms,
        s.ttfb_ms,
        s.ttfb_count,
        s.converted,
    ]
}

/// Ledger rows of an hour span, summed over format and outcome (the tiers do not keep them):
/// (hour, user, key, provider, model) then the 13 tier columns.
pub(crate) fn ledger_rows(dialect: Dialect, hours: HourSpan) -> Sql {
    let sums: Vec<String> = tier_columns()
        .iter()
        .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
        .collect();
    let mut q = Sql::new(dialect);
    q.push("SELECT hour, user_id, key_id, provider_id, model, ")
        .push(&sums.join(", "))
        .push(" FROM usage_rollups");
    hours_where(&mut q, hours);
    q.push(" GROUP BY hour, user_id, key_id, provider_id, model");
    q
}

/// Rebuilds a ledger row from [`ledger_rows`]' columns (format and outcome left blank: the
/// tiers do not group by them).
pub(crate) fn ledger_row(ids: [i64; 4], model: String, v: &[i64]) -> (RollupKey, RollupSums) {
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    (
        RollupKey {
            hour: ids[0],
            user_id: ids[1],
            key_id: ids[2],
            provider_id: ids[3],
            model,
            endpoint_format: String::new(),
            outcome: OutcomeClass::Success,
        },
        RollupSums {
            requests: at(0),
            errors: at(1),
            input_tokens: at(2),
            output_tokens: at(3),
            cache_read_tokens: at(4),
            cache_write_5m_tokens: at(5),
            cache_write_1h_tokens: at(6),
            cost_micros: at(7),
            cost_pico: at(8),
            duration_ms: at(9),
            ttfb_ms: at(10),
            ttfb_count: at(11),
            converted: at(12),
            ..Default::default()
        },
    )
}

/// Columns per row of [`ledger_rows`] after the five key columns.
pub(crate) const LEDGER_ROW_SUMS: usize = 13;

/// One statement adding tier rows (new keys inserted, existing ones summed).
pub(crate) fn upsert(dialect: Dialect, rows: &[(TierKey, RollupSums)]) -> Sql {
    let cols = tier_columns();
    let mut q = Sql::new(dialect);
    q.push("INSERT INTO usage_tiers (dim, kind, start, grp, ")
        .push(&cols.join(", "))
        .push(") VALUES ");
    for (i, (k, s)) in rows.iter().enumerate() {
        q.push(if i == 0 { "(" } else { ", (" });
        q.bind(Arg::Text(k.dim.as_str().into())).push(", ");
        q.bind(Arg::Text(k.kind.as_str().into())).push(", ");
        q.bind(Arg::I64(k.start)).push(", ");
        q.bind(Arg::Text(k.group.clone()));
        for v in tier_values(s) {
            q.push(", ").bind(Arg::I64(v));
        }
        q.push(")");
    }
    q.push(" ON CONFLICT (dim, kind, start, grp) DO UPDATE SET ");
    let set: Vec<String> = cols
        .iter()
        .map(|c| format!("{c} = usage_tiers.{c} + excluded.{c}"))
        .collect();
    q.push(&set.join(", "));
    q
}

fn tier_dim(d: Dimension) -> TierDim {
    match d {
        Dimension::User => TierDim::User,
        Dimension::Key => TierDim::Key,
        Dimension::Provider => TierDim::Provider,
        Dimension::Model => TierDim::Model,
    }
}

/// `WHERE` over the tier pieces of one dimension.
fn tiers_where(q: &mut Sql, dim: TierDim, pieces: &[(TierKind, i64, i64)]) {
    q.push(" WHERE dim = ")
        .bind(Arg::Text(dim.as_str().into()))
        .push(" AND (");
    for (i, (kind, first, last)) in pieces.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push("(kind = ")
            .bind(Arg::Text(kind.as_str().into()))
            .push(" AND start >= ")
            .bind(Arg::I64(*first))
            .push(" AND start <= ")
            .bind(Arg::I64(*last))
            .push(")");
    }
    q.push(")");
}

/// `WHERE` over several hour spans of the ledger.
fn spans_where(q: &mut Sql, spans: &[HourSpan]) {
    q.push(" WHERE (");
    for (i, h) in spans.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push("(hour >= ")
            .bind(Arg::I64(h.first))
            .push(" AND hour < ")
            .bind(Arg::I64(h.end))
            .push(")");
    }
    q.push(")");
}

/// Splits pieces into tier runs and ledger spans.
fn split(pieces: &[Piece]) -> (Vec<(TierKind, i64, i64)>, Vec<HourSpan>) {
    let mut tiers = Vec::new();
    let mut spans = Vec::new();
    for p in pieces {
        match *p {
            Piece::Tiers {
                kind,
                first_start,
                last_start,
            } => tiers.push((kind, first_start, last_start)),
            Piece::Hours(h) => spans.push(h),
        }
    }
    (tiers, spans)
}

/// [`sql_ledger::rank`](super::sql_ledger::rank) over whole periods from the tiers and the
/// edge hours from the ledger: rows of (group text, 13 integers), best first.
pub(crate) fn rank(dialect: Dialect, r: &RankQuery) -> Sql {
    let dim = tier_dim(r.dimension);
    let (tiers, spans) = split(&decompose(r.hours, r.zone, dim.kinds()));
    let cols = tier_columns().join(", ");
    let col = r.dimension.column();
    let mut q = Sql::new(dialect);
    q.push("SELECT grp, ")
        .push(&super::sql_ledger::select_sums(false))
        .push(" FROM (");
    let mut parts = 0;
    if !tiers.is_empty() {
        q.push("SELECT grp, ").push(&cols).push(" FROM usage_tiers");
        tiers_where(&mut q, dim, &tiers);
        parts += 1;
    }
    if !spans.is_empty() {
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        q.push("SELECT CAST(")
            .push(col)
            .push(" AS TEXT) AS grp, ")
            .push(&cols)
            .push(" FROM usage_rollups");
        spans_where(&mut q, &spans);
    }
    let none = match r.dimension {
        Dimension::Model => "''",
        _ => "'0'",
    };
    q.push(") u WHERE grp <> ").push(none);
    q.push(" GROUP BY grp ORDER BY ");
    let order = match r.order {
        Metric::Cost => "SUM(cost_micros) + SUM(cost_pico) / 1000000".to_string(),
        m => metric_sum(m).to_string(),
    };
    // Ties in id order, as the ledger's ranking.
    let tie = match r.dimension {
        Dimension::Model => "grp",
        _ => "CAST(grp AS BIGINT)",
    };
    q.push(&order)
        .push(" DESC, ")
        .push(tie)
        .push(" LIMIT ")
        .bind(Arg::I64(r.limit.max(0)));
    q
}

/// The per-row value of a metric.
fn row_metric(m: Metric) -> &'static str {
    match m {
        Metric::Requests => "requests",
        Metric::Errors => "errors",
        Metric::Tokens => {
            "input_tokens + output_tokens + cache_read_tokens + cache_write_5m_tokens \
             + cache_write_1h_tokens"
        }
        Metric::Cost => "cost_micros",
    }
}

fn keep_case(q: &mut Sql, col: &str, dim: Dimension, keep: &[String], as_text: bool) {
    q.push("CASE WHEN ").push(col).push(" IN (");
    if keep.is_empty() {
        q.push("NULL");
    }
    for (i, g) in keep.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        match (dim, as_text) {
            (Dimension::Model, _) | (_, true) => q.bind(Arg::Text(g.clone())),
            _ => q.bind(Arg::I64(g.parse().unwrap_or(-1))),
        };
    }
    q.push(") THEN CAST(").push(col).push(" AS TEXT) END");
}

/// A series from the tiers (hour and day tiers for providers and models, day tiers for users
/// and keys; an ungrouped series reads the model tiers) and the edge hours from the ledger:
/// rows of (bucket, group text or NULL, value, cost picos), as
/// [`sql_ledger::series`](super::sql_ledger::series). `None` when no tier fits (hour buckets
/// by user or key).
pub(crate) fn series(dialect: Dialect, s: &SeriesQuery) -> Option<Sql> {
    let dim = s.group.as_ref().map_or(Dimension::Model, |(d, _)| *d);
    let kinds: Vec<TierKind> = tier_dim(dim)
        .kinds()
        .iter()
        .copied()
        .filter(|k| {
            *k == TierKind::Hour || (*k == TierKind::Day && s.plan.width == BucketWidth::Day)
        })
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let (tiers, spans) = split(&decompose(s.plan.hours, s.zone, &kinds));
    let pico = if s.metric == Metric::Cost {
        "cost_pico"
    } else {
        "0"
    };
    let mut q = Sql::new(dialect);
    q.push("SELECT b, g, CAST(COALESCE(SUM(v), 0) AS BIGINT), CAST(COALESCE(SUM(p), 0) AS BIGINT) FROM (");
    let mut parts = 0;
    if !tiers.is_empty() {
        // A period's bucket is its first hour's bucket.
        let first_hour = "(((start + 3599) / 3600) * 3600)";
        q.push("SELECT CAST(")
            .push(&bucket_expr(&s.plan, first_hour))
            .push(" AS BIGINT) AS b, ");
        match &s.group {
            Some((d, keep)) => keep_case(&mut q, "grp", *d, keep, true),
            None => {
                q.push("CAST(NULL AS TEXT)");
            }
        }
        q.push(" AS g, CAST(")
            .push(row_metric(s.metric))
            .push(" AS BIGINT) AS v, CAST(")
            .push(pico)
            .push(" AS BIGINT) AS p FROM usage_tiers");
        tiers_where(&mut q, tier_dim(dim), &tiers);
        parts += 1;
    }
    if !spans.is_empty() {
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        q.push("SELECT CAST(")
            .push(&bucket_expr(&s.plan, "hour"))
            .push(" AS BIGINT) AS b, ");
        match &s.group {
            Some((d, keep)) => keep_case(&mut q, d.column(), *d, keep, false),
            None => {
                q.push("CAST(NULL AS TEXT)");
            }
        }
        q.push(" AS g, CAST(")
            .push(row_metric(s.metric))
            .push(" AS BIGINT) AS v, CAST(")
            .push(pico)
            .push(" AS BIGINT) AS p FROM usage_rollups");
        spans_where(&mut q, &spans);
    }
    q.push(") u GROUP BY b, g");
    Some(q)
}

/// An hourly series without groups, from the per-hour totals (one row per hour).
pub(crate) fn hourly_totals_series(dialect: Dialect, s: &SeriesQuery) -> Option<Sql> {
    if s.plan.width != BucketWidth::Hour || s.group.is_some() {
        return None;
    }
    let pico = if s.metric == Metric::Cost {
        "cost_pico"
    } else {
        "0"
    };
    let mut q = Sql::new(dialect);
    q.push("SELECT CAST(")
        .push(&bucket_expr(&s.plan, "hour"))
        .push(" AS BIGINT), CAST(NULL AS TEXT), CAST(")
        .push(row_metric(s.metric))
        .push(" AS BIGINT), CAST(")
        .push(pico)
        .push(" AS BIGINT) FROM usage_hourly_totals");
    hours_where(&mut q, s.plan.hours);
    Some(q)
}

/// The ranking statement: from the tiers when they hold the span in the query's zone, else
/// from the ledger alone.
pub(crate) fn rank_sql(dialect: Dialect, r: &RankQuery, state: &TierState) -> Sql {
    if state.serves(r.zone, r.hours) {
        rank(dialect, r)
    } else {
        super::sql_ledger::rank(dialect, r)
    }
}

/// The series statement: ungrouped hours from the hourly totals, days from the tiers when
/// they hold the span in the query's zone, else the ledger alone.
pub(crate) fn series_sql(dialect: Dialect, s: &SeriesQuery, state: &TierState) -> Sql {
    if let Some(q) = hourly_totals_series(dialect, s) {
        return q;
    }
    if state.serves(s.zone, s.plan.hours)
        && let Some(q) = series(dialect, s)
    {
        return q;
    }
    super::sql_ledger::series(dialect, s)
}

/// What one rebuild step does, decided from the state (read under the rebuild's lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RebuildStep {
    /// The zone changed (or the tiers were never built): empty them and start again from
    /// the first ledger hour.
    Restart,
    /// Sum the first ledger hour at or after this one into the tiers.
    Continue(i64),
    /// Every hour is in the tiers.
    Done,
}

/// The next rebuild step for `zone`.
pub(crate) fn next_step(state: &TierState, zone: Tz) -> RebuildStep {
    if state.zone != zone.name() {
        RebuildStep::Restart
    } else if state.covered_below == i64::MAX {
        RebuildStep::Done
    } else {
        RebuildStep::Continue(state.covered_below)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_step_takes_whole_hours_up_to_its_row_budget() {
        assert_eq!(step_span(&[], 20_000), None);
        let h = |i: i64| 1_000 * 3600 + i * 3600;
        // One huge hour is a step by itself.
        assert_eq!(
            step_span(&[(h(0), 60_000), (h(1), 5)], 20_000),
            Some(HourSpan {
                first: h(0),
                end: h(1)
            })
        );
        // Small hours (with gaps) are taken together until the next would pass the budget.
        let counts = [(h(0), 9_000), (h(2), 9_000), (h(5), 9_000)];
        assert_eq!(
            step_span(&counts, 20_000),
            Some(HourSpan {
                first: h(0),
                end: h(5)
            })
        );
        // All of them, when they fit: the step ends after the last hour seen.
        assert_eq!(
            step_span(&counts[..2], 20_000),
            Some(HourSpan {
                first: h(0),
                end: h(3)
            })
        );
    }
}
