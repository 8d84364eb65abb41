//! The SQL of the usage ledger (`usage_rollups`), written once for SQLite and PostgreSQL: the
//! table has the same integer columns in both, so only placeholders differ. The storage
//! adapters bind the arguments and decode the rows; they hold no roll-up logic of their own.

use std::fmt::Write as _;

use crate::domain::periods::{BucketPlan, BucketWidth, HourSpan};
use crate::domain::rollup::{RollupKey, RollupSums, TTFB_BUCKETS, join_cost};
use crate::ports::stats::{Dimension, LedgerSums, Metric, RankQuery, SeriesQuery};
use crate::ports::store::CostScope;

/// Which placeholder syntax to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `?`
    Sqlite,
    /// `$1`, `$2`, …
    Postgres,
}

/// A bound argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    /// An integer.
    I64(i64),
    /// A string.
    Text(String),
    /// An array of integers (Postgres `bigint[]`; SQLite receives it as JSON text).
    I64s(Vec<i64>),
    /// An array of strings (Postgres `text[]`; SQLite receives it as JSON text).
    Texts(Vec<String>),
}

/// SQL text with its arguments in order.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    dialect: Dialect,
    /// The statement.
    pub text: String,
    /// Its arguments.
    pub args: Vec<Arg>,
}

impl Sql {
    /// The placeholder syntax and SQL flavour this statement is written in.
    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            text: String::new(),
            args: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    pub(crate) fn bind(&mut self, a: Arg) -> &mut Self {
        self.args.push(a);
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                let _ = write!(self.text, "${}", self.args.len());
            }
        }
        self
    }
}

/// The ledger's key, in primary-key order.
pub(crate) const KEY_COLUMNS: [&str; 7] = [
    "hour",
    "user_id",
    "key_id",
    "provider_id",
    "model",
    "endpoint_format",
    "outcome",
];

/// The summed columns, in [`RollupSums`] order; the histogram sits between `ttfb_count` and
/// `converted`.
pub(crate) fn sum_columns(with_hist: bool) -> Vec<String> {
    let mut cols: Vec<String> = [
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_5m_tokens",
        "cache_write_1h_tokens",
        "cost_micros",
        "cost_pico",
        "duration_ms",
        "ttfb_ms",
        "ttfb_count",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    if with_hist {
        cols.extend((0..TTFB_BUCKETS).map(|i| format!("ttfb_b{i}")));
    }
    cols.push("converted".into());
    cols
}

pub(crate) fn sum_values(s: &RollupSums) -> Vec<i64> {
    let mut v = vec![
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
    ];
    v.extend_from_slice(&s.ttfb_hist);
    v.push(s.converted);
    v
}

/// What every reader of the ledger reads: on SQLite `usage_rollups` and the delta rows not
/// merged yet (a `UNION ALL` view; SQLite pushes an hour range into each side), on Postgres
/// `usage_rollups` alone.
pub(crate) const LEDGER: &str = "usage_ledger";

/// SQLite: the statements adding `rows` to the ledger. They are appended to the delta table
/// (`sql_ledger_deltas`) in `VALUES` lists of fixed chunk sizes (see
/// `sql_shared::statement_sizes`; no arrays). An update of the key's row dirtied a random page
/// of the hour's ledger rows per key, and SQLite writes every dirty page to its WAL at commit
/// (2026-12-06, `stats_ledger -- writer`: the roll-ups added 10–11 % to the log writer's CPU
/// with updates, 4–7 % with appends and merges). Postgres logs changed rows rather than pages,
/// and appending then merging measured no cheaper there: it upserts `usage_rollups` (see
/// [`postgres_batch_write`]).
pub(crate) fn sqlite_writes(rows: &[(RollupKey, RollupSums)]) -> Vec<Sql> {
    super::sql_shared::statement_sizes::fixed_chunks(rows)
        .map(|chunk| append(Dialect::Sqlite, chunk))
        .collect()
}

/// The `ON CONFLICT` tail of every summing table (ledger, hourly totals, tiers): a row whose
/// `key` exists already is added to it, column by column.
pub(crate) fn add_on_conflict(q: &mut Sql, table: &str, key: &str, sums: &[String]) {
    q.push(" ON CONFLICT (").push(key).push(") DO UPDATE SET ");
    let set: Vec<String> = sums
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    q.push(&set.join(", "));
}

/// Postgres: what a log batch adds to the ledger, in one statement. The ledger rows are
/// upserted into `usage_rollups` (new keys inserted, existing ones summed), their per-hour
/// totals likewise, every column bound as an array (`UNNEST`), so the text never changes and
/// it is planned once (a 256-row `VALUES` list of 32 columns cut into fixed chunks was ~10
/// statements of up to 8,192 parameters per batch); and the tier state is read under the
/// writer's share lock (`FOR SHARE`: a tier fold cannot commit between this read and the late
/// rows the writer then adds to the tiers itself). One round trip per batch instead of three.
/// Sub-statements of a `WITH` run in any order against one snapshot; the fold's exclusive lock
/// on the state row makes either order safe (a fold that committed first is seen by the
/// lock's re-read, one that starts after waits for this transaction). `rows` is not empty.
pub(crate) fn postgres_batch_write(rows: &[(RollupKey, RollupSums)]) -> Sql {
    let mut q = Sql::new(Dialect::Postgres);
    q.push("WITH ledger AS (");
    push_upsert_unnest(&mut q, rows);
    q.push("), hourly AS (");
    push_hourly_unnest(&mut q, &hourly_totals(rows));
    q.push(") ");
    q.push(&super::sql_tiers::state(
        Dialect::Postgres,
        Some("FOR SHARE"),
    ));
    q
}

/// Postgres: the per-hour totals as array arguments, added to `usage_hourly_totals`.
fn push_hourly_unnest(q: &mut Sql, rows: &[(i64, RollupSums)]) {
    let sums = sum_columns(true);
    q.push("INSERT INTO usage_hourly_totals (hour, ")
        .push(&sums.join(", "))
        .push(") SELECT * FROM UNNEST(");
    q.bind(Arg::I64s(rows.iter().map(|(h, _)| *h).collect()))
        .push("::bigint[]");
    push_sum_arrays(q, rows.iter().map(|(_, s)| s), sums.len());
    q.push(")");
    add_on_conflict(q, "usage_hourly_totals", "hour", &sums);
}

/// Postgres: one `bigint[]` argument per summed column of `sums` (`width` columns).
fn push_sum_arrays<'a>(q: &mut Sql, sums: impl Iterator<Item = &'a RollupSums>, width: usize) {
    let values: Vec<Vec<i64>> = sums.map(sum_values).collect();
    for i in 0..width {
        let column = values
            .iter()
            .map(|v| v.get(i).copied().unwrap_or(0))
            .collect();
        q.push(", ").bind(Arg::I64s(column)).push("::bigint[]");
    }
}

/// Postgres: the ledger upsert of `rows`, columns as array arguments, appended to `q`.
fn push_upsert_unnest(q: &mut Sql, rows: &[(RollupKey, RollupSums)]) {
    let sums = sum_columns(true);
    q.push("INSERT INTO usage_rollups (")
        .push(&KEY_COLUMNS.join(", "))
        .push(", ")
        .push(&sums.join(", "))
        .push(") SELECT * FROM UNNEST(");
    let ints = |f: &dyn Fn(&RollupKey) -> i64| rows.iter().map(|(k, _)| f(k)).collect();
    let texts = |f: &dyn Fn(&RollupKey) -> String| rows.iter().map(|(k, _)| f(k)).collect();
    q.bind(Arg::I64s(ints(&|k| k.hour))).push("::bigint[], ");
    q.bind(Arg::I64s(ints(&|k| k.user_id))).push("::bigint[], ");
    q.bind(Arg::I64s(ints(&|k| k.key_id))).push("::bigint[], ");
    q.bind(Arg::I64s(ints(&|k| k.provider_id)))
        .push("::bigint[], ");
    q.bind(Arg::Texts(texts(&|k| k.model.clone())))
        .push("::text[], ");
    q.bind(Arg::Texts(texts(&|k| k.endpoint_format.clone())))
        .push("::text[], ");
    q.bind(Arg::Texts(texts(&|k| k.outcome.as_str().to_string())))
        .push("::text[]");
    push_sum_arrays(q, rows.iter().map(|(_, s)| s), sums.len());
    q.push(")");
    add_on_conflict(q, "usage_rollups", &KEY_COLUMNS.join(", "), &sums);
}

/// SQLite: one statement appending `rows` to the delta table.
fn append(dialect: Dialect, rows: &[(RollupKey, RollupSums)]) -> Sql {
    let sums = sum_columns(true);
    let mut q = Sql::new(dialect);
    q.push("INSERT INTO ")
        .push(super::sql_ledger_deltas::DELTAS)
        .push(" (")
        .push(&KEY_COLUMNS.join(", "))
        .push(", ")
        .push(&sums.join(", "))
        .push(") VALUES ");
    for (i, (k, s)) in rows.iter().enumerate() {
        q.push(if i == 0 { "(" } else { ", (" });
        q.bind(Arg::I64(k.hour)).push(", ");
        q.bind(Arg::I64(k.user_id)).push(", ");
        q.bind(Arg::I64(k.key_id)).push(", ");
        q.bind(Arg::I64(k.provider_id)).push(", ");
        q.bind(Arg::Text(k.model.clone())).push(", ");
        q.bind(Arg::Text(k.endpoint_format.clone())).push(", ");
        q.bind(Arg::Text(k.outcome.as_str().to_string()));
        for v in sum_values(s) {
            q.push(", ").bind(Arg::I64(v));
        }
        q.push(")");
    }
    q
}

/// The per-hour totals of `rows` (what the overview reads: one row per hour instead of every
/// roll-up of the period), in hour order. Bounded by the batch: one entry per hour it spans.
pub(crate) fn hourly_totals(rows: &[(RollupKey, RollupSums)]) -> Vec<(i64, RollupSums)> {
    let mut by_hour: std::collections::BTreeMap<i64, RollupSums> = Default::default();
    for (k, s) in rows {
        by_hour.entry(k.hour).or_default().merge(s);
    }
    by_hour.into_iter().collect()
}

/// One statement adding per-hour totals (from [`hourly_totals`]) to `usage_hourly_totals`.
pub(crate) fn upsert_hourly_totals(dialect: Dialect, rows: &[(i64, RollupSums)]) -> Sql {
    let sums = sum_columns(true);
    let mut q = Sql::new(dialect);
    q.push("INSERT INTO usage_hourly_totals (hour, ")
        .push(&sums.join(", "))
        .push(") VALUES ");
    for (i, (hour, s)) in rows.iter().enumerate() {
        q.push(if i == 0 { "(" } else { ", (" });
        q.bind(Arg::I64(*hour));
        for v in sum_values(s) {
            q.push(", ").bind(Arg::I64(v));
        }
        q.push(")");
    }
    add_on_conflict(&mut q, "usage_hourly_totals", "hour", &sums);
    q
}

pub(crate) fn select_sums(with_hist: bool) -> String {
    sum_columns(with_hist)
        .iter()
        .map(|c| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decodes the columns of `select_sums` (the histogram only when `with_hist`).
pub(crate) fn sums_from(v: &[i64], with_hist: bool) -> LedgerSums {
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    let mut hist = [0i64; TTFB_BUCKETS];
    let mut next = 12;
    if with_hist {
        for slot in hist.iter_mut() {
            *slot = at(next);
            next += 1;
        }
    }
    LedgerSums {
        requests: at(0),
        errors: at(1),
        input_tokens: at(2),
        output_tokens: at(3),
        cache_read_tokens: at(4),
        cache_write_5m_tokens: at(5),
        cache_write_1h_tokens: at(6),
        cost_usd: join_cost(at(7), at(8)),
        duration_ms: at(9),
        ttfb_ms: at(10),
        ttfb_count: at(11),
        ttfb_hist: hist,
        converted: at(next),
    }
}

/// Columns `totals` returns (all integers).
pub(crate) const TOTALS_WIDTH: usize = 13 + TTFB_BUCKETS;
/// Integer columns after the group in a `rank` row.
pub(crate) const RANK_WIDTH: usize = 13;

pub(crate) fn hours_where(q: &mut Sql, hours: HourSpan) {
    q.push(" WHERE hour >= ")
        .bind(Arg::I64(hours.first))
        .push(" AND hour < ")
        .bind(Arg::I64(hours.end));
}

/// Every sum of a span, with the histogram: one row of [`TOTALS_WIDTH`] integers, from the
/// per-hour totals (one row per hour of the span).
pub(crate) fn totals(dialect: Dialect, hours: HourSpan) -> Sql {
    let mut q = Sql::new(dialect);
    q.push("SELECT ")
        .push(&select_sums(true))
        .push(" FROM usage_hourly_totals");
    hours_where(&mut q, hours);
    q
}

pub(crate) fn metric_sum(m: Metric) -> &'static str {
    match m {
        Metric::Requests => "SUM(requests)",
        Metric::Errors => "SUM(errors)",
        Metric::Tokens => {
            "SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_5m_tokens \
             + cache_write_1h_tokens)"
        }
        Metric::Cost => "SUM(cost_micros)",
    }
}

pub(crate) fn none_value(d: Dimension) -> &'static str {
    match d {
        Dimension::Model => "''",
        _ => "0",
    }
}

/// Groups ranked by a metric: rows of (group text, [`RANK_WIDTH`] integers). The "none" group
/// (id 0, model "") is left out.
pub(crate) fn rank(dialect: Dialect, r: &RankQuery) -> Sql {
    let col = r.dimension.column();
    let mut q = Sql::new(dialect);
    q.push("SELECT CAST(")
        .push(col)
        .push(" AS TEXT), ")
        .push(&select_sums(false))
        .push(" FROM ")
        .push(LEDGER);
    hours_where(&mut q, r.hours);
    q.push(" AND ")
        .push(col)
        .push(" <> ")
        .push(none_value(r.dimension));
    q.push(" GROUP BY ").push(col).push(" ORDER BY ");
    let order = match r.order {
        // Whole micro-dollars plus the picos' micro-dollars: ties within a micro-dollar.
        Metric::Cost => "SUM(cost_micros) + SUM(cost_pico) / 1000000".to_string(),
        m => metric_sum(m).to_string(),
    };
    q.push(&order).push(" DESC, ").push(col).push(" LIMIT ");
    q.bind(Arg::I64(r.limit.max(0)));
    q
}

pub(crate) fn bucket_expr(plan: &BucketPlan, hour: &str) -> String {
    match plan.width {
        BucketWidth::Hour => format!("({hour} - {}) / 3600", plan.origin),
        BucketWidth::Day => {
            if let [only] = plan.segments.as_slice() {
                return format!("({hour} + {} - {}) / 86400", only.offset_secs, plan.origin);
            }
            let mut offset = String::from("CASE");
            let mut segs = plan.segments.iter().peekable();
            while let Some(s) = segs.next() {
                match segs.peek() {
                    Some(next) => {
                        let _ = write!(
                            offset,
                            " WHEN {hour} < {} THEN {}",
                            next.from_hour, s.offset_secs
                        );
                    }
                    None => {
                        let _ = write!(offset, " ELSE {}", s.offset_secs);
                    }
                }
            }
            offset.push_str(" END");
            format!("({hour} + {offset} - {}) / 86400", plan.origin)
        }
    }
}

/// A series: rows of (bucket, group text or NULL, value, cost picos).
pub(crate) fn series(dialect: Dialect, s: &SeriesQuery) -> Sql {
    let mut q = Sql::new(dialect);
    q.push("SELECT CAST(")
        .push(&bucket_expr(&s.plan, "hour"))
        .push(" AS BIGINT), ");
    match &s.group {
        None => {
            q.push("CAST(NULL AS TEXT)");
        }
        Some((dim, keep)) => {
            let col = dim.column();
            q.push("CASE WHEN ").push(col).push(" IN (");
            if keep.is_empty() {
                q.push("NULL");
            }
            for (i, g) in keep.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                match dim {
                    Dimension::Model => q.bind(Arg::Text(g.clone())),
                    _ => q.bind(Arg::I64(g.parse().unwrap_or(-1))),
                };
            }
            q.push(") THEN CAST(").push(col).push(" AS TEXT) END");
        }
    }
    q.push(", CAST(COALESCE(")
        .push(metric_sum(s.metric))
        .push(", 0) AS BIGINT), ");
    q.push(if s.metric == Metric::Cost {
        "CAST(COALESCE(SUM(cost_pico), 0) AS BIGINT)"
    } else {
        "CAST(0 AS BIGINT)"
    });
    q.push(" FROM ").push(LEDGER);
    hours_where(&mut q, s.plan.hours);
    q.push(" GROUP BY 1, 2");
    q
}

/// Cost per entity over whole hours: rows of (entity id, micros, picos).
pub(crate) fn cost_by_entity(
    dialect: Dialect,
    scope: CostScope,
    id: Option<i64>,
    hours: HourSpan,
) -> Sql {
    let col = scope.column();
    let mut q = Sql::new(dialect);
    q.push("SELECT ")
        .push(col)
        .push(", CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT), CAST(COALESCE(SUM(cost_pico), 0) AS BIGINT) FROM ")
        .push(LEDGER);
    hours_where(&mut q, hours);
    q.push(" AND ").push(col).push(" <> 0");
    if let Some(id) = id {
        q.push(" AND ").push(col).push(" = ").bind(Arg::I64(id));
    }
    q.push(" GROUP BY ").push(col);
    q
}

/// Backfill progress: one row (pending_from, pending_to).
pub(crate) const BACKFILL_STATE: &str =
    "SELECT pending_from, pending_to FROM usage_rollup_backfill WHERE id = 1";

/// Advances the backfill from `from` to `to`, only if no one else did (compare and set).
pub(crate) fn backfill_advance(dialect: Dialect, from: i64, to: i64) -> Sql {
    let mut q = Sql::new(dialect);
    q.push("UPDATE usage_rollup_backfill SET pending_from = ")
        .bind(Arg::I64(to))
        .push(" WHERE id = 1 AND pending_from = ")
        .bind(Arg::I64(from));
    q
}

/// The roll-up rows of the log rows a transaction actually added (`stored` request ids; a row
/// repeated in the batch counts once, as only one copy was stored).
pub(crate) fn rollups_of(
    rows: &[crate::domain::request_log::RequestLog],
    mut stored: std::collections::HashSet<String>,
) -> Vec<(RollupKey, RollupSums)> {
    crate::domain::rollup::summarise(rows.iter().filter(|r| stored.remove(&r.request_id)))
}

/// How a cost query is answered: whole hours from the roll-ups and the partial hours at each
/// edge from the log. Only single-bucket queries (a sum since an instant) use roll-ups; finer
/// buckets (the rolling windows' rings, at most 24 h back) read the log alone.
pub(crate) fn cost_split(
    q: &crate::ports::store::CostQuery,
) -> Option<(HourSpan, Vec<crate::ports::store::CostQuery>)> {
    use crate::domain::periods::Range;
    let since_ms = q.since.timestamp_millis();
    let until_ms = q.until.timestamp_millis();
    if until_ms <= since_ms || q.bucket_ms < until_ms - since_ms {
        return None;
    }
    let hours = Range {
        from: q.since,
        to: q.until,
    }
    .hours();
    // Hours wholly inside: from the first hour start at/after `since` to the last before `until`.
    let end = crate::domain::rollup::hour_of(q.until.timestamp());
    if hours.first >= end {
        return None;
    }
    let at = |s: i64| chrono::DateTime::<chrono::Utc>::from_timestamp(s, 0).unwrap_or(q.since);
    let mut edges = Vec::new();
    if q.since < at(hours.first) {
        edges.push(crate::ports::store::CostQuery {
            until: at(hours.first),
            ..q.clone()
        });
    }
    if at(end) < q.until {
        edges.push(crate::ports::store::CostQuery {
            since: at(end),
            ..q.clone()
        });
    }
    Some((
        HourSpan {
            first: hours.first,
            end,
        },
        edges,
    ))
}

/// Adds per-entity costs into one bucket-0 sum per entity.
pub(crate) fn merge_costs(
    parts: impl IntoIterator<Item = (i64, rust_decimal::Decimal)>,
) -> Vec<crate::ports::store::CostBucket> {
    let mut sums: std::collections::BTreeMap<i64, rust_decimal::Decimal> = Default::default();
    for (id, cost) in parts {
        *sums.entry(id).or_default() += cost;
    }
    sums.into_iter()
        .map(|(entity_id, cost_usd)| crate::ports::store::CostBucket {
            entity_id,
            bucket: 0,
            cost_usd: cost_usd.normalize(),
        })
        .collect()
}

/// Log rows summarised per backfill transaction.
pub(crate) const BACKFILL_CHUNK: i64 = 2_000;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::rollup::OutcomeClass;

    /// `n` ledger rows over three hours, one key each (also for `sql_ledger_deltas`' tests).
    pub(crate) fn rows(n: i64) -> Vec<(RollupKey, RollupSums)> {
        (0..n)
            .map(|i| {
                let key = RollupKey {
                    hour: 3600 * (i % 3),
                    user_id: i,
                    key_id: 10 + i,
                    provider_id: 7,
                    model: format!("m{i}"),
                    endpoint_format: "claude".into(),
                    outcome: OutcomeClass::Success,
                };
                let sums = RollupSums {
                    requests: 1 + i,
                    ..Default::default()
                };
                (key, sums)
            })
            .collect()
    }

    #[test]
    fn postgres_adds_any_batch_in_one_fixed_statement_and_sqlite_in_fixed_chunks() {
        let pg = postgres_batch_write(&rows(300));
        let width = KEY_COLUMNS.len() + sum_columns(true).len();
        let hours = hourly_totals(&rows(300)).len();
        // One array per ledger column, each as long as the batch, then one per hourly-total
        // column, each as long as the hours the batch spans.
        assert_eq!(pg.args.len(), width + 1 + sum_columns(true).len());
        assert!(pg.args.iter().enumerate().all(|(i, a)| {
            let n = if i < width { 300 } else { hours };
            match a {
                Arg::I64s(v) => v.len() == n,
                Arg::Texts(v) => v.len() == n,
                _ => false,
            }
        }));
        assert_eq!(pg.args[1], Arg::I64s((0..300).collect()));
        // The text does not depend on the batch size.
        assert_eq!(postgres_batch_write(&rows(3)).text, pg.text);

        let lite = sqlite_writes(&rows(300));
        assert_eq!(lite.len(), 1 + 2 + 3); // 256 + 16 + 16 + 4 + 4 + 4
        let bound: usize = lite.iter().map(|q| q.args.len()).sum();
        assert_eq!(bound, 300 * (KEY_COLUMNS.len() + sum_columns(true).len()));
    }
}
