//! PostgreSQL implementation of the storage ports, for production deployments with several
//! gateway instances sharing one database.
//!
//! Native types throughout: TIMESTAMPTZ, NUMERIC(24,12) money, JSONB lists and maps.

mod codec;
mod config;
mod error_rules;
mod keys;
mod logs;
mod notify;
mod prices;
mod providers;
mod retention;
mod settings;
mod stats;
mod users;

crate::adapters::sensitive_words_sql::sensitive_word_store!(PostgresStore, codec::map_err);
crate::adapters::audit_sql::audit_store!(PostgresStore, codec::map_err);

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::adapters::quiet_runtime::QuietLane;
use crate::ports::store::StoreError;

/// Storage backed by PostgreSQL; cheap to clone (it wraps a connection pool).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Tier fold steps that added rows since the planner statistics of the ledger tables were
    /// last refreshed (see `stats::tier_step`).
    folded_since_analyze: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Where the log writer's unhurried batches run (`RequestLogStore::insert_logs_unhurried`):
    /// thread [`LOG_WRITER_THREAD`] with a connection of its own, started on the first such
    /// batch; when it cannot start, those batches use `pool`.
    log_quiet: QuietLane<PgPool>,
    /// How `pool` connects, for the quiet lane's own connection.
    options: PgConnectOptions,
}

/// The name of the thread that composes and sends the log writer's unhurried batches (at most
/// 15 bytes: the kernel's limit), at [`crate::adapters::thread_priority::LOG_WRITER_NICE`].
pub const LOG_WRITER_THREAD: &str = "cch-pg-log";

impl PostgresStore {
    /// Connects a pool to `url` (`postgres://user:pass@host:5432/db`); fails fast when the
    /// server does not answer.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        // JIT off for cch's sessions: the planner's cost estimates for the statistics reads
        // (ledger ranges bounded by a subquery) pass `jit_above_cost`, and compiling took
        // 50-75 ms on statements that run in 1-5 ms (an all-time ranking of 10,000 users: 165
        // -> 22 ms). Nothing cch runs is long enough for JIT to pay back.
        let options = PgConnectOptions::from_str(url)
            .map_err(codec::map_err)?
            .options([("jit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(5))
            .after_release(|conn, _| Box::pin(fit_for_reuse(conn)))
            .connect_with(options.clone())
            .await
            .map_err(codec::map_err)?;
        Ok(Self {
            pool,
            folded_since_analyze: Default::default(),
            log_quiet: QuietLane::new(
                LOG_WRITER_THREAD,
                crate::adapters::thread_priority::LOG_WRITER_NICE,
            ),
            options,
        })
    }

    /// Inserts an unhurried log batch on the quiet lane (a copy of the rows goes to its thread),
    /// or through `pool` when the lane could not start.
    async fn insert_logs_quietly(
        &self,
        rows: &[crate::domain::request_log::RequestLog],
    ) -> crate::ports::store::StoreResult<u64> {
        let options = self.options.clone();
        // Made on the lane's thread: the connection and the pool's upkeep belong to it.
        let make = move || {
            PgPoolOptions::new()
                .max_connections(1)
                .min_connections(0)
                .idle_timeout(Duration::from_secs(60))
                .acquire_timeout(Duration::from_secs(5))
                .after_release(|conn, _| Box::pin(fit_for_reuse(conn)))
                .connect_lazy_with(options)
        };
        let on_lane = self.log_quiet.run(make, |pool| {
            let (pool, rows) = (pool.clone(), rows.to_vec());
            async move { logs::insert(&pool, &rows).await }
        });
        match on_lane.await {
            Some(inserted) => inserted,
            None => logs::insert(&self.pool, rows).await,
        }
    }

    /// Applies the embedded migrations (`migrations/postgres`); running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// The underlying pool, for callers that need to close it explicitly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Decides whether a released connection may return to the pool. sqlx's transaction depth only
/// counts transactions sqlx began, so the server is asked too: `now()` is the start of the
/// current transaction and `statement_timestamp()` the start of this statement, equal only when
/// this query (sent as one simple query) runs in its own implicit transaction, i.e. outside any transaction block. A
/// connection inside a failed transaction answers with an error and is closed the same way
/// (PostgreSQL never ends a transaction by itself, unlike SQLite on a disk error). The query
/// also flushes the queued rollback of a dropped transaction, which runs first.
async fn fit_for_reuse(conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    use sqlx::{Connection, Row};
    // The simple-query protocol: one message, so this is the first command of its transaction.
    let idle = match sqlx::raw_sql("SELECT now() = statement_timestamp()")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get::<bool, _>(0))
    {
        Ok(idle) => idle,
        // An aborted transaction refuses every statement: close the connection gracefully.
        Err(sqlx::Error::Database(_)) => false,
        Err(e) => return Err(e),
    };
    if conn.is_in_transaction() || !idle {
        tracing::warn!("discarding a database connection left inside a transaction");
        return Ok(false);
    }
    Ok(true)
}

crate::adapters::sql_shared::job_leases::impl_job_lease_store!(PostgresStore, codec::map_err);

#[async_trait::async_trait]
impl crate::ports::retention::LogRetentionStore for PostgresStore {
    async fn delete_logs_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        after: Option<crate::ports::retention::DeletedUpTo>,
        batch: i64,
    ) -> crate::ports::store::StoreResult<crate::ports::retention::DeletedBatch> {
        retention::delete_before(&self.pool, cutoff, after, batch).await
    }
    async fn reclaim_space(&self) -> crate::ports::store::StoreResult<String> {
        retention::reclaim(&self.pool).await
    }
    async fn hold_background_vacuum(&self) -> crate::ports::store::StoreResult<bool> {
        retention::hold_autovacuum(&self.pool).await
    }
    async fn release_background_vacuum(&self) -> crate::ports::store::StoreResult<()> {
        retention::release_autovacuum(&self.pool).await
    }
}

#[async_trait::async_trait]
impl crate::ports::refusal_stats::RefusalStatsStore for PostgresStore {
    async fn limit_refusals(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> crate::ports::store::StoreResult<Vec<crate::domain::rate_limit_stats::RefusalCount>> {
        use crate::adapters::sql_shared::limit_refusals as q;
        let rows: Vec<(String, Option<i64>, Option<i64>, i64)> = sqlx::query_as(q::LIMIT_REFUSALS)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await
            .map_err(codec::map_err)?;
        Ok(q::to_counts(rows))
    }
}
