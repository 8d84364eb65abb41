//! The usage ledger on SQLite: roll-ups written with the log rows, the statistics reads and the
//! backfill of rows logged before roll-ups existed. The SQL is shared (`adapters::sql_ledger`).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Connection, Row, Sqlite, SqliteConnection, SqlitePool};

use super::SqliteStore;
use super::codec::{map_err, ts_to_text};
use crate::adapters::sql_ledger::{self as ledger, Arg, Dialect, Sql};
use crate::adapters::sql_shared::statement_sizes::fixed_chunks;
use crate::adapters::sql_tier_fold::{self as fold, TierConn};
use crate::adapters::sql_tiers::{self as tiers, TierState};
use crate::domain::periods::HourSpan;
use crate::domain::request_log::RequestLog;
use crate::domain::rollup::join_cost;
use crate::ports::stats::{
    LedgerSums, LiveFigures, Metric, RankQuery, SeriesPoint, SeriesQuery, StatsStore,
};
use crate::ports::store::{CostBucket, CostQuery, StoreResult};

const D: Dialect = Dialect::Sqlite;

fn query(sql: &Sql) -> sqlx::query::Query<'_, Sqlite, SqliteArguments> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.text.clone())).persistent(false);
    for a in &sql.args {
        q = match a {
            Arg::I64(v) => q.bind(*v),
            Arg::Text(t) => q.bind(t.clone()),
            // No arrays in SQLite: JSON text, for `json_each`.
            Arg::I64s(v) => q.bind(serde_json::to_string(v).unwrap_or_default()),
            Arg::Texts(v) => q.bind(serde_json::to_string(v).unwrap_or_default()),
        };
    }
    q
}

fn ints(row: &sqlx::sqlite::SqliteRow, from: usize, n: usize) -> StoreResult<Vec<i64>> {
    (from..from + n)
        .map(|i| row.try_get::<i64, _>(i).map_err(map_err))
        .collect()
}

/// Adds the roll-ups of the rows this transaction stored (`stored` request ids).
/// Returns how many delta rows it appended (see `sql_ledger_deltas::MergePace`).
pub(super) async fn add_rollups(
    conn: &mut SqliteConnection,
    rows: &[RequestLog],
    stored: HashSet<String>,
) -> StoreResult<usize> {
    let rollups = ledger::rollups_of(rows, stored);
    // Cached statements: a few distinct texts (see `ledger::sqlite_writes`).
    for sql in ledger::sqlite_writes(&rollups) {
        query(&sql)
            .persistent(true)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    for chunk in fixed_chunks(&ledger::hourly_totals(&rollups)) {
        query(&ledger::upsert_hourly_totals(D, chunk))
            .persistent(true)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    fold::add_late_rows(conn, &rollups).await?;
    Ok(rollups.len())
}

#[async_trait]
impl TierConn for SqliteConnection {
    fn dialect(&self) -> Dialect {
        D
    }

    async fn exec(&mut self, sql: &Sql, cached: bool) -> StoreResult<()> {
        query(sql)
            .persistent(cached)
            .execute(&mut *self)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn exec_raw(&mut self, sql: &'static str) -> StoreResult<()> {
        sqlx::raw_sql(sql)
            .execute(&mut *self)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn int_rows(&mut self, sql: &Sql, width: usize) -> StoreResult<Vec<Vec<i64>>> {
        let rows = query(sql).fetch_all(&mut *self).await.map_err(map_err)?;
        rows.iter().map(|r| ints(r, 0, width)).collect()
    }

    async fn tier_state(&mut self, lock: Option<&str>) -> StoreResult<TierState> {
        let (zone, covered_below): (String, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(tiers::state(D, lock)))
                .fetch_one(&mut *self)
                .await
                .map_err(map_err)?;
        Ok(TierState {
            zone,
            covered_below,
        })
    }
}

/// Cost per entity: whole hours from the roll-ups (one entity's from the period tiers),
/// partial edge hours (and fine buckets) from the log.
pub(super) async fn cost_buckets(pool: &SqlitePool, q: &CostQuery) -> StoreResult<Vec<CostBucket>> {
    let Some((hours, edges)) = ledger::cost_split(q) else {
        return super::logs::cost_buckets(pool, q).await;
    };
    // One entity's figure reads the tiers (the ledger has no per-entity index).
    let state = pool
        .acquire()
        .await
        .map_err(map_err)?
        .tier_state(None)
        .await?;
    let rows = query(&tiers::cost_sql(D, q.scope, q.id, hours, &state))
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    let mut parts = Vec::with_capacity(rows.len());
    for r in &rows {
        let v = ints(r, 0, 3)?;
        parts.push((v[0], join_cost(v[1], v[2])));
    }
    for e in &edges {
        for b in super::logs::cost_buckets(pool, e).await? {
            parts.push((b.entity_id, b.cost_usd));
        }
    }
    Ok(ledger::merge_costs(parts))
}

/// Moves the ledger's delta rows into `usage_rollups` in a transaction of its own.
pub(super) async fn merge_ledger(pool: &SqlitePool) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(map_err)?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
    fold::merge_deltas(&mut *tx).await?;
    tx.commit().await.map_err(map_err)
}

/// Merges the delta rows when `pace` says it is due, after a log batch committed. A failure
/// is logged, not returned: the batch is stored; the next due batch merges again.
pub(super) async fn merge_when_due(
    pool: &SqlitePool,
    pace: &crate::adapters::sql_ledger_deltas::MergePace,
    appended: usize,
) {
    if !pace.due(appended) {
        return;
    }
    let started = std::time::Instant::now();
    match merge_ledger(pool).await {
        Ok(()) => tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "usage ledger deltas merged"
        ),
        Err(e) => tracing::warn!(error = %e, "usage ledger deltas not merged yet"),
    }
}

/// Summarises the next chunk of log rows older than the roll-ups; the rows left afterwards.
pub(super) async fn backfill_step(pool: &SqlitePool) -> StoreResult<i64> {
    let mut conn = pool.acquire().await.map_err(map_err)?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
    let (from, to): (i64, i64) = sqlx::query_as(ledger::BACKFILL_STATE)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
    if from >= to {
        return Ok(0);
    }
    let next = (from + ledger::BACKFILL_CHUNK).min(to);
    let rows = super::logs::by_id_range(&mut tx, from, next).await?;
    let ids: HashSet<String> = rows.iter().map(|r| r.request_id.clone()).collect();
    add_rollups(&mut tx, &rows, ids).await?;
    // A backfill writes chunk after chunk: each one's deltas go into the ledger at once.
    fold::merge_deltas(&mut *tx).await?;
    let moved = query(&ledger::backfill_advance(D, from, next))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
    if moved == 1 {
        tx.commit().await.map_err(map_err)?;
    }
    Ok(to - next)
}

#[async_trait]
impl StatsStore for SqliteStore {
    async fn totals(&self, hours: HourSpan) -> StoreResult<LedgerSums> {
        let row = query(&ledger::totals(D, hours))
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(ledger::sums_from(
            &ints(&row, 0, ledger::TOTALS_WIDTH)?,
            true,
        ))
    }

    async fn rank(&self, q: &RankQuery) -> StoreResult<Vec<(String, LedgerSums)>> {
        let state = self
            .pool
            .acquire()
            .await
            .map_err(map_err)?
            .tier_state(None)
            .await?;
        let rows = query(&tiers::rank_sql(D, q, &state))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let g: String = r.try_get(0).map_err(map_err)?;
                Ok((
                    g,
                    ledger::sums_from(&ints(r, 1, ledger::RANK_WIDTH)?, false),
                ))
            })
            .collect()
    }

    async fn series(&self, q: &SeriesQuery) -> StoreResult<Vec<SeriesPoint>> {
        let state = self
            .pool
            .acquire()
            .await
            .map_err(map_err)?
            .tier_state(None)
            .await?;
        let rows = query(&tiers::series_sql(D, q, &state))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let bucket: i64 = r.try_get(0).map_err(map_err)?;
                let group: Option<String> = r.try_get(1).map_err(map_err)?;
                let v = ints(r, 2, 2)?;
                let value = if q.metric == Metric::Cost {
                    join_cost(v[0], v[1])
                } else {
                    v[0].into()
                };
                Ok(SeriesPoint {
                    bucket,
                    group,
                    value,
                })
            })
            .collect()
    }

    async fn live(
        &self,
        requests_since: DateTime<Utc>,
        sessions_since: DateTime<Utc>,
    ) -> StoreResult<LiveFigures> {
        // With a bound instant the planner cannot tell that the range is small and walked the
        // session-id index over the whole log for the DISTINCT (21 s on 5 M rows).
        let (requests, sessions): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM request_logs WHERE created_at >= ?), \
             (SELECT COUNT(DISTINCT session_id) FROM request_logs \
              INDEXED BY request_logs_created_at_idx \
              WHERE created_at >= ? AND session_id IS NOT NULL)",
        )
        .bind(ts_to_text(&requests_since))
        .bind(ts_to_text(&sessions_since))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(LiveFigures { requests, sessions })
    }

    async fn tier_step(&self, zone: Tz, max_rows: i64, fold_before: i64) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let more = fold::tier_step(&mut *tx, zone, max_rows, fold_before).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(more)
    }

    async fn backfill_step(&self) -> StoreResult<i64> {
        backfill_step(&self.pool).await
    }
}
