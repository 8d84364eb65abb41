//! The SQL of the ledger's period tiers (`usage_tiers`, `domain::usage_tiers`), written once
//! for SQLite and PostgreSQL like the ledger's own (`adapters::sql_ledger`). Statistics read
//! whole local periods from the tiers and the leftover edge hours from the hourly ledger, in
//! one statement, so an answer never mixes two snapshots.

use chrono_tz::Tz;

use super::sql_ledger::{Arg, Dialect, Sql, bucket_expr, hours_where, metric_sum, sum_columns};
use crate::domain::periods::{BucketWidth, HourSpan};
use crate::domain::rollup::RollupSums;
use crate::domain::usage_tiers::{Piece, TierDim, TierKey, TierKind, decompose};
use crate::ports::stats::{Dimension, Metric, RankQuery, SeriesQuery};
use crate::ports::store::StoreResult;

/// The zone the tiers are cut in and the first hour not yet summed into them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TierState {
    /// IANA name; empty before the first build.
    pub zone: String,
    /// Hours at and after this are not in the tiers yet (it trails the clock by an hour or
    /// two; `i64::MAX` when everything was folded on purpose, as tests do).
    pub covered_below: i64,
}

impl TierState {
    /// Whether the tiers hold any hour of `hours` cut in `zone` (those before `covered_below`).
    pub fn serves(&self, zone: Tz, hours: HourSpan) -> bool {
        !self.zone.is_empty() && self.zone == zone.name() && hours.first < self.covered_below
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
        // The WHERE above also keeps SQLite from reading this ON as a join's.
        .push(" ON CONFLICT (dim, kind, start, grp) DO UPDATE SET ");
    let set: Vec<String> = cols
        .iter()
        .map(|c| format!("{c} = usage_tiers.{c} + excluded.{c}"))
        .collect();
    q.push(&set.join(", "));
    q
}

/// The periods of every hour of `span`, for [`rebuild_from_ledger`].
pub(crate) fn span_periods(span: HourSpan, zone: Tz, dim: TierDim) -> Vec<(i64, TierKind, i64)> {
    let mut out = Vec::new();
    let mut h = span.first;
    while h < span.end {
        for p in crate::domain::usage_tiers::periods_of_hour(h, zone) {
            if dim.kinds().contains(&p.kind) {
                out.push((h, p.kind, p.start));
            }
        }
        h += crate::domain::rollup::HOUR_SECS;
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

/// `WHERE` over one run of tier periods of one dimension: a range of the primary key. (One
/// statement per run, joined with `UNION ALL`: SQLite scanned the whole table for an `OR` of
/// runs.)
fn tiers_where(q: &mut Sql, dim: TierDim, run: (TierKind, i64, i64)) {
    let (kind, first, last) = run;
    q.push(" WHERE dim = ")
        .bind(Arg::Text(dim.as_str().into()))
        .push(" AND kind = ")
        .bind(Arg::Text(kind.as_str().into()))
        .push(" AND start >= ")
        .bind(Arg::I64(first))
        .push(" AND start <= ")
        .bind(Arg::I64(last));
}

/// Consecutive tier periods of one kind: (kind, first start, last start).
type TierRun = (TierKind, i64, i64);

/// Which side of `covered_below` a ledger span is read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Hours the tiers do not hold in this answer (edge hours): those before the state's
    /// `covered_below`; the hours after it are read by the tail.
    Before,
    /// The tail: hours at and after `covered_below`.
    From,
}

/// `WHERE` over one ledger span and one side of `covered_below`, read in the statement itself:
/// a fold that commits between reading the state and running this statement moves hours
/// into the tiers, and the statement's own snapshot then reads them there and not here.
fn span_where(q: &mut Sql, h: HourSpan, side: Side) {
    q.push(" WHERE hour >= ")
        .bind(Arg::I64(h.first))
        .push(" AND hour < ")
        .bind(Arg::I64(h.end))
        .push(match side {
            Side::Before => " AND hour < ",
            Side::From => " AND hour >= ",
        })
        .push("(SELECT covered_below FROM usage_tier_state WHERE id = 1)");
}

/// Where each hour of `span` is read: whole periods from the tiers (which hold their hours
/// before `covered_below`), and from the ledger the edge hours before `covered_below` and every
/// hour at and after it. `covered` is the value read before the statement: it bounds the tail's
/// index range; the statement compares with the value it sees itself. No hour is read twice.
fn plan(
    span: HourSpan,
    zone: Tz,
    kinds: &[TierKind],
    covered: i64,
) -> (Vec<TierRun>, Vec<(HourSpan, Side)>) {
    let mut tiers = Vec::new();
    let mut spans = Vec::new();
    for p in decompose(span, zone, kinds) {
        match p {
            Piece::Tiers {
                kind,
                first_start,
                last_start,
            } => tiers.push((kind, first_start, last_start)),
            Piece::Hours(h) => spans.push((h, Side::Before)),
        }
    }
    // `covered_below` only grows while the zone stays, so the tail starts at or after this.
    let tail = HourSpan {
        first: span.first.max(covered),
        end: span.end,
    };
    if tail.first < tail.end {
        spans.push((tail, Side::From));
    }
    (tiers, spans)
}

/// [`sql_ledger::rank`](super::sql_ledger::rank) over whole periods from the tiers and the
/// edge hours from the ledger: rows of (group text, 13 integers), best first.
pub(crate) fn rank(dialect: Dialect, r: &RankQuery, covered: i64) -> Sql {
    let dim = tier_dim(r.dimension);
    let (tiers, spans) = plan(r.hours, r.zone, dim.kinds(), covered);
    let cols = tier_columns().join(", ");
    let col = r.dimension.column();
    // Two passes over the rows (materialised once): the ranking sums only the ordering
    // metric per group, then the top groups get every sum. Postgres sums BIGINT as NUMERIC,
    // and 13 of them for each of 10,000 users cost more than reading the rows.
    let mut q = Sql::new(dialect);
    q.push("WITH u AS MATERIALIZED (");
    let mut parts = 0;
    for (i, run) in tiers.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push("SELECT grp, ").push(&cols).push(" FROM usage_tiers");
        tiers_where(&mut q, dim, *run);
        parts += 1;
    }
    for (h, side) in &spans {
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        q.push("SELECT CAST(")
            .push(col)
            .push(" AS TEXT) AS grp, ")
            .push(&cols)
            .push(" FROM usage_rollups");
        span_where(&mut q, *h, *side);
        parts += 1;
    }
    let none = match r.dimension {
        Dimension::Model => "''",
        _ => "'0'",
    };
    let order = match r.order {
        Metric::Cost => "SUM(cost_micros) + SUM(cost_pico) / 1000000".to_string(),
        m => metric_sum(m).to_string(),
    };
    // Ties in id order, as the ledger's ranking.
    let tie = |t: &str| match r.dimension {
        Dimension::Model => format!("{t}.grp"),
        _ => format!("CAST({t}.grp AS BIGINT)"),
    };
    q.push("), top AS (SELECT grp FROM u WHERE grp <> ")
        .push(none)
        .push(" GROUP BY grp ORDER BY ")
        .push(&order)
        .push(" DESC, ")
        .push(&tie("u"))
        .push(" LIMIT ")
        .bind(Arg::I64(r.limit.max(0)))
        .push(") SELECT u.grp, ")
        .push(&super::sql_ledger::select_sums(false))
        .push(" FROM u JOIN top ON top.grp = u.grp GROUP BY u.grp ORDER BY ")
        .push(&order)
        .push(" DESC, ")
        .push(&tie("u"));
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
pub(crate) fn series(dialect: Dialect, s: &SeriesQuery, covered: i64) -> Option<Sql> {
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
    let (tiers, spans) = plan(s.plan.hours, s.zone, &kinds, covered);
    let pico = if s.metric == Metric::Cost {
        "cost_pico"
    } else {
        "0"
    };
    let mut q = Sql::new(dialect);
    q.push("SELECT b, g, CAST(COALESCE(SUM(v), 0) AS BIGINT), CAST(COALESCE(SUM(p), 0) AS BIGINT) FROM (");
    let mut parts = 0;
    if !tiers.is_empty() {
        // Every group's rows would be 30 days × 10,000 users for a daily series by user; the
        // kept groups' rows are a few index lookups. So "other" is the whole (from the model
        // rows: every request has one model, '' included) less the kept groups.
        let keep = s.group.as_ref().map(|(_, k)| k).filter(|k| !k.is_empty());
        let metric = row_metric(s.metric);
        let select = |q: &mut Sql, from_dim: TierDim, group: bool, sign: &str, kept: bool| {
            for (i, run) in tiers.iter().enumerate() {
                if i > 0 {
                    q.push(" UNION ALL ");
                }
                // A period's bucket is its first hour's bucket.
                let first_hour = "(((start + 3599) / 3600) * 3600)";
                q.push("SELECT CAST(")
                    .push(&bucket_expr(&s.plan, first_hour))
                    .push(" AS BIGINT) AS b, ")
                    .push(if group { "grp" } else { "CAST(NULL AS TEXT)" })
                    .push(" AS g, CAST(")
                    .push(sign)
                    .push("(")
                    .push(metric)
                    .push(") AS BIGINT) AS v, CAST(")
                    .push(sign)
                    .push("(")
                    .push(pico)
                    .push(") AS BIGINT) AS p FROM usage_tiers");
                tiers_where(q, from_dim, *run);
                if let (Some(keep), true) = (keep, kept) {
                    q.push(" AND grp IN (");
                    for (i, g) in keep.iter().enumerate() {
                        if i > 0 {
                            q.push(", ");
                        }
                        q.bind(Arg::Text(g.clone()));
                    }
                    q.push(")");
                }
            }
        };
        select(&mut q, TierDim::Model, false, "", false);
        if let (Some((d, _)), Some(_)) = (&s.group, keep) {
            q.push(" UNION ALL ");
            select(&mut q, tier_dim(*d), true, "", true);
            q.push(" UNION ALL ");
            select(&mut q, tier_dim(*d), false, "-", true);
        }
        parts += 1;
    }
    for (h, side) in &spans {
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        parts += 1;
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
        span_where(&mut q, *h, *side);
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
        rank(dialect, r, state.covered_below)
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
        && let Some(q) = series(dialect, s, state.covered_below)
    {
        return q;
    }
    super::sql_ledger::series(dialect, s)
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

/// One step of the tiers (see `StatsStore::tier_step`), inside the caller's transaction.
pub(crate) async fn tier_step(
    conn: &mut dyn TierConn,
    zone: Tz,
    max_rows: i64,
    fold_before: i64,
) -> StoreResult<bool> {
    let d = conn.dialect();
    let state = conn.tier_state(Some("FOR UPDATE")).await?;
    let (span, covered) = match next_step(&state, zone, fold_before) {
        TierStep::Idle => return Ok(false),
        TierStep::Restart => {
            conn.exec_raw(clear(d)).await?;
            let first = first_of(conn.int_rows(&first_hour_from(d, i64::MIN), 1).await?);
            (None, first.min(fold_before))
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
                None => (None, fold_before),
                Some(span) => (Some(span), span.end),
            }
        }
    };
    if let Some(span) = span {
        for dim in TierDim::ALL {
            let periods = span_periods(span, zone, dim);
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
