//! The writing half of the period tiers (`adapters::sql_tiers` reads them): the background
//! fold that sums ledger hours into the tiers, the restart after a zone change, and the late
//! rows the log insert adds for hours already folded. Written once for SQLite and PostgreSQL
//! behind [`TierConn`]; the adapters only bind and decode.

use chrono_tz::Tz;

use super::sql_ledger::{Arg, Dialect, Sql, add_on_conflict};

/// The tiers' primary key.
const TIER_KEY: &str = "dim, kind, start, grp";
use super::sql_tiers::{TierState, tier_columns};
use crate::domain::periods::HourSpan;
use crate::domain::rollup::RollupSums;
use crate::domain::usage_tiers::{TierDim, TierKey, TierKind};
use crate::ports::store::StoreResult;

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

/// The first ledger hour at or after `from`, `i64::MAX` when none.
pub(crate) fn first_hour_from(dialect: Dialect, from: i64) -> Sql {
    let mut q = Sql::new(dialect);
    q.push("SELECT CAST(COALESCE(MIN(hour), ")
        .bind(Arg::I64(i64::MAX))
        .push(") AS BIGINT) FROM usage_rollups WHERE hour >= ")
        .bind(Arg::I64(from));
    q
}

/// Hours a rebuild step looks ahead when choosing its hours.
const STEP_HOURS: i64 = 24 * 7;

/// The ledger's next hours in `[from, before)` with their row counts, in order: rows of
/// (hour, count).
pub(crate) fn hours_from(dialect: Dialect, from: i64, before: i64) -> Sql {
    let mut q = Sql::new(dialect);
    q.push("SELECT hour, CAST(COUNT(*) AS BIGINT) FROM usage_rollups WHERE hour >= ")
        .bind(Arg::I64(from))
        .push(" AND hour < ")
        .bind(Arg::I64(before))
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

/// One statement summing the ledger rows of `span` into the tiers of one dimension, in the
/// database (`INSERT … SELECT … GROUP BY`), so a rebuild never carries rows through the
/// gateway. `periods` maps each hour of the span to the periods it counts in (from
/// [`crate::domain::usage_tiers::periods_of_hour`], the dimension's kinds only).
pub(crate) fn rebuild_from_ledger(
    dialect: Dialect,
    dim: TierDim,
    span: HourSpan,
    periods: &[(i64, TierKind, i64)],
) -> Sql {
    let cols = tier_columns();
    let mut q = Sql::new(dialect);
    q.push("WITH p (hour, kind, start) AS (VALUES ");
    for (i, (hour, kind, start)) in periods.iter().enumerate() {
        q.push(if i == 0 { "(CAST(" } else { ", (CAST(" });
        q.bind(Arg::I64(*hour)).push(" AS BIGINT), CAST(");
        q.bind(Arg::Text(kind.as_str().into()))
            .push(" AS TEXT), CAST(");
        q.bind(Arg::I64(*start)).push(" AS BIGINT))");
    }
    if periods.is_empty() {
        q.push("(CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT))");
    }
    let group = match dim {
        TierDim::User => "r.user_id",
        TierDim::Key => "r.key_id",
        TierDim::Provider => "r.provider_id",
        TierDim::Model => "r.model",
    };
    let sums: Vec<String> = cols
        .iter()
        .map(|c| format!("CAST(SUM(r.{c}) AS BIGINT)"))
        .collect();
    q.push(") INSERT INTO usage_tiers (dim, kind, start, grp, ")
        .push(&cols.join(", "))
        .push(") SELECT ")
        .bind(Arg::Text(dim.as_str().into()))
        .push(", p.kind, p.start, CAST(")
        .push(group)
        .push(" AS TEXT), ")
        .push(&sums.join(", "))
        .push(" FROM usage_rollups r JOIN p ON p.hour = r.hour WHERE r.hour >= ")
        .bind(Arg::I64(span.first))
        .push(" AND r.hour < ")
        .bind(Arg::I64(span.end))
        .push(" GROUP BY p.kind, p.start, ")
        .push(group)
        // Rows of one period written together: Postgres keeps them in insertion order, and a
        // day's user rows scattered over the heap cost a page read each (24 hourly user
        // tiers: 45,000 rows over 27,000 pages, 0.2 s).
        .push(" ORDER BY p.kind, p.start");
    // The WHERE above also keeps SQLite from reading this ON as a join's.
    add_on_conflict(&mut q, "usage_tiers", TIER_KEY, &cols);
    q
}

/// The periods of `hours` (the ledger hours that have rows), for [`rebuild_from_ledger`].
/// Only hours with rows: a step's span can cross a gap of months (an instance idle for a
/// season, a stray row from a wrong clock), and one entry per empty hour passed the
/// databases' limit on bound values (SQLite 32,766) after about three months.
pub(crate) fn span_periods(hours: &[i64], zone: Tz) -> Vec<(i64, TierKind, i64)> {
    let mut out = Vec::with_capacity(hours.len() * TierKind::ALL.len());
    for &h in hours {
        for p in crate::domain::usage_tiers::periods_of_hour(h, zone) {
            out.push((h, p.kind, p.start));
        }
    }
    out
}

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
    add_on_conflict(&mut q, "usage_tiers", TIER_KEY, &cols);
    q
}

/// What one tier step does, decided from the state (read under the step's lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TierStep {
    /// The zone changed (or the tiers were never built): empty them and start again from
    /// the first ledger hour.
    Restart,
    /// Sum the ledger hours from this one up to the step's bound into the tiers.
    Fold(i64),
    /// Every hour before the bound is in the tiers.
    Idle,
}

/// The next step for `zone`, folding hours before `fold_before`.
pub(crate) fn next_step(state: &TierState, zone: Tz, fold_before: i64) -> TierStep {
    if state.zone != zone.name() {
        TierStep::Restart
    } else if state.covered_below >= fold_before {
        TierStep::Idle
    } else {
        TierStep::Fold(state.covered_below)
    }
}

/// What the tier steps need from a database connection: the adapters implement it by binding
/// and decoding only, so the steps themselves are written once.
#[async_trait::async_trait]
pub(crate) trait TierConn: Send {
    /// The placeholder syntax.
    fn dialect(&self) -> Dialect;
    /// Runs a statement; `cached` keeps it prepared (only for the few fixed-size texts).
    async fn exec(&mut self, sql: &Sql, cached: bool) -> StoreResult<()>;
    /// Runs fixed SQL without arguments.
    async fn exec_raw(&mut self, sql: &'static str) -> StoreResult<()>;
    /// The rows of a query whose first `width` columns are integers.
    async fn int_rows(&mut self, sql: &Sql, width: usize) -> StoreResult<Vec<Vec<i64>>>;
    /// The state row, with the row lock `lock` where the database has one (see [`state`]).
    async fn tier_state(&mut self, lock: Option<&str>) -> StoreResult<TierState>;
}

/// Adds the tier rows of a batch's ledger rows: only late rows (hours already folded) have
/// any, see [`crate::domain::usage_tiers::tier_rows`].
pub(crate) async fn add_late_rows(
    conn: &mut dyn TierConn,
    rollups: &[(crate::domain::rollup::RollupKey, RollupSums)],
) -> StoreResult<()> {
    let state = conn.tier_state(Some("FOR SHARE")).await?;
    add_late_rows_at(conn, rollups, &state).await
}

/// [`add_late_rows`] with the state already read under the writer's share lock (Postgres reads
/// it in the statement that writes the ledger rows).
pub(crate) async fn add_late_rows_at(
    conn: &mut dyn TierConn,
    rollups: &[(crate::domain::rollup::RollupKey, RollupSums)],
    state: &TierState,
) -> StoreResult<()> {
    let Some(zone) = state.zone() else {
        return Ok(());
    };
    let rows = crate::domain::usage_tiers::tier_rows(rollups, zone, state.covered_below);
    // Cached statements: `fixed_chunks` allows only a few distinct texts.
    for chunk in crate::adapters::sql_shared::statement_sizes::fixed_chunks(&rows) {
        let sql = upsert(conn.dialect(), chunk);
        conn.exec(&sql, true).await?;
    }
    Ok(())
}

/// Moves the ledger's delta rows into `usage_rollups` (see `sql_ledger_deltas::merge`; SQLite only),
/// inside the caller's transaction.
pub(crate) async fn merge_deltas(conn: &mut dyn TierConn) -> StoreResult<()> {
    for sql in crate::adapters::sql_ledger_deltas::merge(conn.dialect()) {
        conn.exec(&sql, true).await?;
    }
    Ok(())
}

/// One step of the tiers (see `StatsStore::tier_step`), inside the caller's transaction.
pub(crate) async fn tier_step(
    conn: &mut dyn TierConn,
    zone: Tz,
    max_rows: i64,
    fold_before: i64,
) -> StoreResult<bool> {
    let d = conn.dialect();
    let state = conn.tier_state(Some("FOR UPDATE")).await?;
    // The fold reads `usage_rollups` alone: SQLite's delta rows go into it first (its write
    // lock keeps log batches out until this step commits; Postgres has no delta rows).
    merge_deltas(conn).await?;
    // The hours with rows come from `hours_from`, at most `STEP_HOURS` of them.
    let (span, covered, hours) = match next_step(&state, zone, fold_before) {
        TierStep::Idle => return Ok(false),
        TierStep::Restart => {
            conn.exec_raw(clear(d)).await?;
            let first = first_of(conn.int_rows(&first_hour_from(d, i64::MIN), 1).await?);
            (None, first.min(fold_before), Vec::new())
        }
        TierStep::Fold(from) => {
            let rows = conn.int_rows(&hours_from(d, from, fold_before), 2).await?;
            let counts: Vec<(i64, i64)> = rows
                .iter()
                .map(|r| {
                    (
                        r.first().copied().unwrap_or(0),
                        r.get(1).copied().unwrap_or(0),
                    )
                })
                .collect();
            match step_span(&counts, max_rows) {
                None => (None, fold_before, Vec::new()),
                Some(span) => {
                    let hours = counts
                        .iter()
                        .map(|(h, _)| *h)
                        .filter(|h| (span.first..span.end).contains(h))
                        .collect();
                    (Some(span), span.end, hours)
                }
            }
        }
    };
    if let Some(span) = span {
        let periods = span_periods(&hours, zone);
        for dim in TierDim::ALL {
            conn.exec(&rebuild_from_ledger(d, dim, span, &periods), false)
                .await?;
        }
    }
    conn.exec(&set_state(d, zone.name(), covered), false)
        .await?;
    Ok(covered < fold_before)
}

/// The single integer of a one-row, one-column answer (`i64::MAX` when absent).
fn first_of(rows: Vec<Vec<i64>>) -> i64 {
    rows.first()
        .and_then(|r| r.first().copied())
        .unwrap_or(i64::MAX)
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
