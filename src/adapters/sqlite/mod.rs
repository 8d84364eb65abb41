//! SQLite implementation of the storage ports: the embedded default, one file, no services.
//!
//! Representation choices are described in [`codec`]: RFC 3339 text with microseconds for time,
//! decimal strings for money, JSON text for lists and maps.

mod codec;
mod config;
mod error_rules;
mod keys;
mod logs;
mod prices;
mod providers;
mod settings;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::ports::store::StoreError;

/// Storage backed by a SQLite database; cheap to clone (it wraps a connection pool).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed, with its parent folder) the database at `url`
    /// (`sqlite://data/cch.db`, `sqlite:cch.db`, or `sqlite::memory:` for tests), in WAL mode
    /// with a 5 s busy timeout and foreign keys enforced.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let options = if in_memory {
            options
        } else {
            if let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            options
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
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(codec::map_err)?;
        Ok(Self { pool })
    }

    /// Applies the embedded migrations (`migrations/sqlite`); running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// The underlying pool, for callers that need to close it explicitly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}
