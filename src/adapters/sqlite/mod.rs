//! SQLite implementation of the storage ports: the embedded default, one file, no services.
//!
//! Representation choices are described in [`codec`]: RFC 3339 text with microseconds for time,
//! decimal strings for money, JSON text for lists and maps.

mod codec;
mod config;
mod engine_config;
mod error_rules;
mod keys;
mod logs;
mod notify;
mod pool_hygiene;
mod prices;
mod providers;
mod retention;
mod settings;
mod stats;
mod users;

crate::adapters::sensitive_words_sql::sensitive_word_store!(SqliteStore, codec::map_err);
crate::adapters::audit_sql::audit_store!(SqliteStore, codec::map_err);

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use crate::ports::store::StoreError;

/// Storage backed by a SQLite database; cheap to clone (it wraps a connection pool).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for bulk background work (log cleanup and space reclaim), opened on
    /// first use and closed after a minute idle; its worker thread runs at the lowest CPU
    /// priority ([`BACKGROUND_THREAD`]). In-memory databases share `pool` (one database).
    background: SqlitePool,
    /// One connection for the log writer's unhurried batches
    /// (`RequestLogStore::insert_logs_unhurried`); its worker thread ([`LOG_WRITER_THREAD`])
    /// runs at [`crate::adapters::thread_priority::LOG_WRITER_NICE`], so a batch insert takes a
    /// core only when no request thread wants it. Full batches (the writer is behind) go
    /// through `pool` at normal priority. In-memory databases share `pool`.
    log_quiet: SqlitePool,
    /// When the log writer merges the usage ledger's delta rows (shared by clones).
    ledger_pace: std::sync::Arc<crate::adapters::sql_ledger_deltas::MergePace>,
    /// Where an unhurried batch is composed (binding every row's values, the roll-ups): thread
    /// [`LOG_LANE_THREAD`] at the log writer's priority, so that part leaves the request
    /// threads too; SQLite then runs the statements on `log_quiet`'s worker thread.
    log_lane: crate::adapters::quiet_runtime::QuietLane<()>,
}

/// The name of the thread that composes the log writer's unhurried batches (see `log_lane`).
pub const LOG_LANE_THREAD: &str = "cch-sqlite-log";

/// The name of the background connection's worker thread (at most 15 bytes: the kernel's
/// limit), by which its priority is lowered.
pub const BACKGROUND_THREAD: &str = "cch-db-bg";

/// The name of the unhurried log writer connection's worker thread (see `log_quiet`).
pub const LOG_WRITER_THREAD: &str = "cch-db-log";

impl SqliteStore {
    /// Opens (creating if needed, with its parent folder) the database at `url`
    /// (`sqlite://data/cch.db`, `sqlite:cch.db`, or `sqlite::memory:` for tests), in WAL mode
    /// with a 5 s busy timeout and foreign keys enforced.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        engine_config::apply();
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let options = if in_memory {
            options
        } else {
            prepare_private_files(options.get_filename().to_path_buf()).await?;
            // Incremental auto-vacuum only takes effect on a new (empty) file: the log retention
            // job then returns freed pages step by step (`retention.rs`).
            options
                .auto_vacuum(SqliteAutoVacuum::Incremental)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };

        let pool_options = if in_memory {
            // One connection that never expires, or the in-memory database would vanish.
            SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        let pool = pool_options
            .after_release(|conn, _| Box::pin(pool_hygiene::fit_for_reuse(conn)))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(codec::map_err)?;
        let (background, log_quiet) = if in_memory {
            (pool.clone(), pool.clone())
        } else {
            (background_pool(options.clone()), log_writer_pool(options))
        };
        Ok(Self {
            pool,
            background,
            log_quiet,
            ledger_pace: Default::default(),
            log_lane: crate::adapters::quiet_runtime::QuietLane::new(
                LOG_LANE_THREAD,
                crate::adapters::thread_priority::LOG_WRITER_NICE,
            ),
        })
    }

    /// Applies the embedded migrations (`migrations/sqlite`); running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// Moves the usage ledger's delta rows into `usage_rollups` now (the log writer does it
    /// every few seconds; statistics read both, so this changes no answer).
    pub async fn merge_ledger(&self) -> Result<(), StoreError> {
        stats::merge_ledger(&self.pool).await
    }

    /// The underlying pool, for callers that need to close it explicitly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection of this store (the request path's, the log writer's and the
    /// background one), waiting for those in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
        self.log_quiet.close().await;
        self.background.close().await;
    }
}

/// The lazily opened, single-connection pool for background work: its connection's worker
/// thread is named [`BACKGROUND_THREAD`] and lowered to the background priority as soon as it
/// exists, so a long deletion only takes CPU the proxy leaves.
fn background_pool(options: SqliteConnectOptions) -> SqlitePool {
    low_priority_pool(
        options,
        BACKGROUND_THREAD,
        crate::adapters::thread_priority::BACKGROUND_NICE,
    )
}

/// The lazily opened, single-connection pool for the log writer's unhurried batches: its
/// worker thread is named [`LOG_WRITER_THREAD`] and runs at
/// [`crate::adapters::thread_priority::LOG_WRITER_NICE`]. It gets the same release check as
/// the main pool, so a batch that failed on a full disk cannot leave a transaction open.
fn log_writer_pool(options: SqliteConnectOptions) -> SqlitePool {
    low_priority_pool(
        options,
        LOG_WRITER_THREAD,
        crate::adapters::thread_priority::LOG_WRITER_NICE,
    )
}

/// One connection, opened on first use and closed after a minute idle, whose worker thread is
/// named `thread` and set to the CPU priority `nice` as soon as it exists.
fn low_priority_pool(options: SqliteConnectOptions, thread: &'static str, nice: i32) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(Duration::from_secs(60))
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |_, _| {
            Box::pin(async move {
                let lowered = tokio::task::spawn_blocking(move || {
                    crate::adapters::thread_priority::set_nice_of_threads_named(thread, nice)
                })
                .await
                .unwrap_or(0);
                tracing::debug!(lowered, thread, nice, "database thread at low priority");
                Ok(())
            })
        })
        .after_release(|conn, _| Box::pin(pool_hygiene::fit_for_reuse(conn)))
        .connect_lazy_with(options.thread_name(move |_| thread.to_owned()))
}

/// Creates the database's folder (0700, when missing) and file (0600) before SQLite opens it,
/// and tightens an existing database: it holds provider secrets. SQLite gives `-wal` and `-shm`
/// the mode of the database file, so they follow; existing ones are tightened too. An existing
/// folder is left as it is: a `DSN` may name a file in a shared folder (`sqlite:///tmp/x.db`
/// once made `/tmp` 0700); cch's own data folder is tightened at startup.
async fn prepare_private_files(db: std::path::PathBuf) -> Result<(), StoreError> {
    use crate::app::private_fs::{create_dir_if_missing, ensure_private_file, tighten_file};
    let prepared = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir_if_missing(dir)?;
        }
        ensure_private_file(&db)?;
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut side = db.clone().into_os_string();
            side.push(suffix);
            tighten_file(std::path::Path::new(&side))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("cannot prepare the database file: {e}")))?;
    prepared.map_err(|e| StoreError::Unavailable(format!("cannot prepare the database file: {e}")))
}

crate::adapters::sql_shared::job_leases::impl_job_lease_store!(SqliteStore, codec::map_err);

#[async_trait::async_trait]
impl crate::ports::retention::LogRetentionStore for SqliteStore {
    async fn delete_logs_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        after: Option<crate::ports::retention::DeletedUpTo>,
        batch: i64,
    ) -> crate::ports::store::StoreResult<crate::ports::retention::DeletedBatch> {
        retention::delete_before(&self.background, cutoff, after, batch).await
    }
    async fn reclaim_space(&self) -> crate::ports::store::StoreResult<String> {
        retention::reclaim(&self.background).await
    }
    fn deletes_at_background_priority(&self) -> bool {
        true
    }
}

#[async_trait::async_trait]
impl crate::ports::refusal_stats::RefusalStatsStore for SqliteStore {
    async fn limit_refusals(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> crate::ports::store::StoreResult<Vec<crate::domain::rate_limit_stats::RefusalCount>> {
        use crate::adapters::sql_shared::limit_refusals as q;
        let rows: Vec<(String, Option<i64>, Option<i64>, i64)> = sqlx::query_as(q::LIMIT_REFUSALS)
            .bind(codec::ts_to_text(&from))
            .bind(codec::ts_to_text(&to))
            .fetch_all(&self.pool)
            .await
            .map_err(codec::map_err)?;
        Ok(q::to_counts(rows))
    }
}
