//! The SQL of the ledger's period tiers (`usage_tiers`, `domain::usage_tiers`), written once
//! for SQLite and PostgreSQL like the ledger's own (`adapters::sql_ledger`). Statistics read
//! whole local periods from the tiers and the leftover edge hours from the hourly ledger, in
//! one statement, so an answer never mixes two snapshots.

use chrono_tz::Tz;

use super::sql_ledger::{Arg, Dialect, Sql, bucket_expr, hours_where, metric_sum, sum_columns};
use crate::domain::periods::{BucketWidth, HourSpan};
use crate::domain::usage_tiers::{ALL_TIME_FROM, Piece, TierDim, TierKind, decompose};
use crate::ports::stats::{Dimension, Metric, RankQuery, SeriesQuery};
use crate::ports::store::CostScope;

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

/// The columns summed in a tier row (no histogram: the overview reads the hourly totals).
pub(crate) fn tier_columns() -> Vec<String> {
    sum_columns(false)
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

/// ` FROM usage_tiers` for rows of a few groups: SQLite, without statistics, took the primary
/// key (every group's rows in the period range, then filtered) over the group index; one
/// user's monthly spend read 30,000 rows instead of 5 (40 ms), and a ranking's second pass
/// read every group again. Postgres chooses by its statistics.
fn from_tiers_of_groups(q: &mut Sql) {
    q.push(" FROM usage_tiers");
    if q.dialect() == Dialect::Sqlite {
        q.push(" INDEXED BY usage_tiers_group_idx");
    }
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

/// Hours read from the ledger: added, or subtracted from a [`TierKind::Total`] row (which
/// holds every hour before `covered_below`, those outside the span included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LedgerPart {
    hours: HourSpan,
    side: Side,
    negate: bool,
}

/// Where each hour of `span` is read: whole periods from the tiers (which hold their hours
/// before `covered_below`), and from the ledger the edge hours before `covered_below` and every
/// hour at and after it. `covered` is the value read before the statement: it bounds the tail's
/// index range; the statement compares with the value it sees itself. No hour is read twice.
///
/// A span from [`ALL_TIME_FROM`] or earlier to the tail (the console's "all time", a one-entity
/// total) is the totals less the ledger hours before its start and after its end (none in
/// practice), plus the tail: one row per group whatever the ledger's age.
fn plan(
    span: HourSpan,
    zone: Tz,
    kinds: &[TierKind],
    covered: i64,
) -> (Vec<TierRun>, Vec<LedgerPart>) {
    let mut tiers = Vec::new();
    let mut parts = Vec::new();
    let part = |hours, side, negate| LedgerPart {
        hours,
        side,
        negate,
    };
    if kinds.contains(&TierKind::Total) && span.first <= ALL_TIME_FROM && span.end >= covered {
        tiers.push((TierKind::Total, 0, 0));
        let outside = [
            HourSpan {
                first: i64::MIN,
                end: span.first,
            },
            HourSpan {
                first: span.end,
                end: i64::MAX,
            },
        ];
        parts.extend(outside.map(|h| part(h, Side::Before, true)));
    } else {
        for p in decompose(span, zone, kinds) {
            match p {
                Piece::Tiers {
                    kind,
                    first_start,
                    last_start,
                } => tiers.push((kind, first_start, last_start)),
                Piece::Hours(h) => parts.push(part(h, Side::Before, false)),
            }
        }
    }
    // `covered_below` only grows while the zone stays, so the tail starts at or after this.
    let tail = HourSpan {
        first: span.first.max(covered),
        end: span.end,
    };
    if tail.first < tail.end {
        parts.push(part(tail, Side::From, false));
    }
    (tiers, parts)
}

/// `cols` (a comma-separated list) as a select list, each negated when `negate`.
fn signed(cols: &str, negate: bool) -> String {
    if !negate {
        return cols.to_string();
    }
    cols.split(',')
        .map(|c| format!("-({})", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`sql_ledger::rank`](super::sql_ledger::rank) over whole periods from the tiers and the
/// hours not folded yet from the ledger: rows of (group text, 13 integers), best first.
pub(crate) fn rank(dialect: Dialect, r: &RankQuery, covered: i64) -> Sql {
    let dim = tier_dim(r.dimension);
    let (tiers, spans) = plan(r.hours, r.zone, &TierKind::ALL, covered);
    let col = r.dimension.column();
    // Two passes: the ranking reads only the ordering metric's columns of every group, then
    // the top groups' rows are read again with every column, through the tiers' group
    // index. (Postgres sums BIGINT as NUMERIC, and 13 sums for each of 10,000 users cost
    // more than reading the rows; carrying 13 columns of 50,000 rows through a
    // materialised table cost SQLite as much.)
    let rows = |q: &mut Sql, cols: &str, only_top: bool| {
        let mut parts = 0;
        for run in &tiers {
            if parts > 0 {
                q.push(" UNION ALL ");
            }
            parts += 1;
            q.push("SELECT grp, ").push(cols);
            if only_top {
                from_tiers_of_groups(q);
            } else {
                q.push(" FROM usage_tiers");
            }
            tiers_where(q, dim, *run);
            if only_top {
                q.push(" AND grp IN (SELECT grp FROM top)");
            }
        }
        for l in &spans {
            if parts > 0 {
                q.push(" UNION ALL ");
            }
            parts += 1;
            q.push("SELECT CAST(")
                .push(col)
                .push(" AS TEXT) AS grp, ")
                .push(&signed(cols, l.negate))
                .push(" FROM ")
                .push(super::sql_ledger::LEDGER);
            span_where(q, l.hours, l.side);
            if only_top {
                q.push(" AND CAST(")
                    .push(col)
                    .push(" AS TEXT) IN (SELECT grp FROM top)");
            }
        }
        if parts == 0 {
            q.push("SELECT grp, ")
                .push(cols)
                .push(" FROM usage_tiers WHERE 1 = 0");
        }
    };
    let none = match r.dimension {
        Dimension::Model => "''",
        _ => "'0'",
    };
    let order = match r.order {
        Metric::Cost => "SUM(cost_micros) + SUM(cost_pico) / 1000000".to_string(),
        m => metric_sum(m).to_string(),
    };
    // Ties in id order, as the ledger's ranking.
    let tie = match r.dimension {
        Dimension::Model => "u.grp",
        _ => "CAST(u.grp AS BIGINT)",
    };
    let mut q = Sql::new(dialect);
    q.push("WITH top AS MATERIALIZED (SELECT grp FROM (");
    rows(&mut q, metric_columns(r.order), false);
    q.push(") u WHERE grp <> ")
        .push(none)
        .push(" GROUP BY grp ORDER BY ")
        .push(&order)
        .push(" DESC, ")
        .push(tie)
        .push(" LIMIT ")
        .bind(Arg::I64(r.limit.max(0)))
        .push(") SELECT u.grp, ")
        .push(&super::sql_ledger::select_sums(false))
        .push(" FROM (");
    rows(&mut q, &tier_columns().join(", "), true);
    q.push(") u GROUP BY u.grp ORDER BY ")
        .push(&order)
        .push(" DESC, ")
        .push(tie);
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

/// The columns a metric is summed from.
fn metric_columns(m: Metric) -> &'static str {
    match m {
        Metric::Requests => "requests",
        Metric::Errors => "errors",
        Metric::Tokens => {
            "input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens, \
             cache_write_1h_tokens"
        }
        Metric::Cost => "cost_micros, cost_pico",
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

/// A series from the hour and day tiers (an ungrouped series reads the model tiers) and the
/// hours not folded yet from the ledger: rows of (bucket, group text or NULL, value, cost
/// picos), as [`sql_ledger::series`](super::sql_ledger::series).
pub(crate) fn series(dialect: Dialect, s: &SeriesQuery, covered: i64) -> Sql {
    let kinds: Vec<TierKind> = TierKind::ALL
        .into_iter()
        .filter(|k| {
            *k == TierKind::Hour || (*k == TierKind::Day && s.plan.width == BucketWidth::Day)
        })
        .collect();
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
                    .push(") AS BIGINT) AS p");
                if keep.is_some() && kept {
                    from_tiers_of_groups(q);
                } else {
                    q.push(" FROM usage_tiers");
                }
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
    for l in &spans {
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        parts += 1;
        // Series read hour and day tiers only, so no part is subtracted.
        debug_assert!(!l.negate);
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
            .push(" AS BIGINT) AS p FROM ")
            .push(super::sql_ledger::LEDGER);
        span_where(&mut q, l.hours, l.side);
    }
    q.push(") u GROUP BY b, g");
    q
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
    if state.serves(s.zone, s.plan.hours) {
        return series(dialect, s, state.covered_below);
    }
    super::sql_ledger::series(dialect, s)
}

/// One entity's cost over whole hours, from the tiers when they hold the span (looked up by
/// their group index), else from the ledger: a row of (entity id, micros, picos) per entity,
/// as [`sql_ledger::cost_by_entity`](super::sql_ledger::cost_by_entity). The ledger has no
/// per-entity index (its writer keeps only the hour-ordered key), so one entity's figure
/// reads the tiers for every folded hour and scans only the ledger's unfolded tail.
pub(crate) fn cost_sql(
    dialect: Dialect,
    scope: CostScope,
    id: Option<i64>,
    hours: HourSpan,
    state: &TierState,
) -> Sql {
    match (id, state.zone()) {
        (Some(id), Some(zone)) if state.serves(zone, hours) => {
            entity_cost(dialect, scope, id, hours, zone, state.covered_below)
        }
        _ => super::sql_ledger::cost_by_entity(dialect, scope, id, hours),
    }
}

/// [`cost_sql`] from the tiers: whole periods of every kind (an hour at least) and the hours
/// from `covered_below` on from the ledger. No row when the entity has none.
fn entity_cost(
    dialect: Dialect,
    scope: CostScope,
    id: i64,
    hours: HourSpan,
    zone: Tz,
    covered: i64,
) -> Sql {
    let dim = match scope {
        CostScope::User => TierDim::User,
        CostScope::Key => TierDim::Key,
        CostScope::Provider => TierDim::Provider,
    };
    let (tiers, spans) = plan(hours, zone, &TierKind::ALL, covered);
    let mut q = Sql::new(dialect);
    q.push("SELECT id, m, p FROM (SELECT CAST(")
        .bind(Arg::I64(id))
        .push(" AS BIGINT) AS id, CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS m, ")
        .push("CAST(COALESCE(SUM(cost_pico), 0) AS BIGINT) AS p, COUNT(*) AS n FROM (");
    let mut parts = 0;
    for run in &tiers {
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        parts += 1;
        q.push("SELECT cost_micros, cost_pico");
        from_tiers_of_groups(&mut q);
        tiers_where(&mut q, dim, *run);
        q.push(" AND grp = ").bind(Arg::Text(id.to_string()));
    }
    for l in &spans {
        if parts > 0 {
            q.push(" UNION ALL ");
        }
        parts += 1;
        q.push("SELECT ")
            .push(&signed("cost_micros, cost_pico", l.negate))
            .push(" FROM ")
            .push(super::sql_ledger::LEDGER);
        span_where(&mut q, l.hours, l.side);
        q.push(" AND ")
            .push(scope.column())
            .push(" = ")
            .bind(Arg::I64(id));
    }
    if parts == 0 {
        q.push("SELECT cost_micros, cost_pico FROM usage_tiers WHERE 1 = 0");
    }
    q.push(") u) t WHERE n > 0");
    q
}
