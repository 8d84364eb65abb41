//! PostgreSQL implementation of the storage ports, for production deployments with several
//! gateway instances sharing one database.
//!
//! Native types throughout: TIMESTAMPTZ, NUMERIC(24,12) money, JSONB lists and maps.

mod codec;
mod config;
mod error_rules;
mod keys;
mod logs;
mod prices;
mod providers;
mod settings;
mod users;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::ports::store::StoreError;

/// Storage backed by PostgreSQL; cheap to clone (it wraps a connection pool).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects a pool to `url` (`postgres://user:pass@host:5432/db`); fails fast when the
    /// server does not answer.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(5))
            .after_release(|conn, _| Box::pin(fit_for_reuse(conn)))
            .connect(url)
            .await
            .map_err(codec::map_err)?;
        Ok(Self { pool })
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

/// Decides whether a released connection may return to the pool: the queued rollback of a
/// dropped transaction is flushed first (the ping runs after it), and a connection still inside
/// a transaction is closed rather than handed to the next caller. PostgreSQL keeps a failed
/// transaction open until `ROLLBACK` (it never ends one silently, unlike SQLite on a disk error),
/// so sqlx's own transaction depth is an accurate view here.
async fn fit_for_reuse(conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("discarding a database connection left inside a failed transaction");
        return Ok(false);
    }
    Ok(true)
}
