//! Removing expired request-log rows in small steps, and giving the space back, for the log
//! retention job. Roll-up tables are never touched through this port.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::store::StoreResult;

/// The last row a cleanup batch deleted, in `(created_at, id)` order. The next batch starts
/// after it instead of at the oldest row: PostgreSQL keeps a deleted row's index entries until
/// VACUUM, so a batch that starts at the oldest row walks every entry the earlier batches
/// deleted (2 M rows in, each batch took four times as long as the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedUpTo {
    /// `created_at` of the last deleted row.
    pub created_at: DateTime<Utc>,
    /// Its id (ties on `created_at` are ordered by id).
    pub id: i64,
}

/// What one cleanup batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedBatch {
    /// Rows deleted.
    pub rows: u64,
    /// The last of them, `None` when none went.
    pub last: Option<DeletedUpTo>,
}

/// Deletion of expired request logs.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait LogRetentionStore: Send + Sync {
    /// Deletes at most `batch` request-log rows created before `cutoff` and after `after`
    /// (all of them when `None`), oldest first, in one short transaction, without reading the
    /// rows into memory (only their `(created_at, id)`, for the cursor).
    async fn delete_logs_before(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<DeletedUpTo>,
        batch: i64,
    ) -> StoreResult<DeletedBatch>;
    /// Gives the space freed by deletions back where the database needs it, in bounded steps
    /// that never hold a lock for long; returns a short description of what it did.
    async fn reclaim_space(&self) -> StoreResult<String>;
    /// Keeps the database's own background vacuum off the request log while a cleanup
    /// deletes: it would vacuum the table, every index included, each time about a fifth of it
    /// is dead, where the cleanup vacuums once at its end. The hold is recorded in the
    /// database, so [`Self::release_background_vacuum`] undoes it after a crash too. False
    /// when there is nothing to hold (SQLite) or the table carries an operator's own setting,
    /// which is left alone.
    async fn hold_background_vacuum(&self) -> StoreResult<bool> {
        Ok(false)
    }
    /// Undoes a hold recorded in the database, whether this process or one that crashed made
    /// it; nothing when there is none.
    async fn release_background_vacuum(&self) -> StoreResult<()> {
        Ok(())
    }
    /// True when the deletions run at a lower CPU priority than the proxy (SQLite's cleanup
    /// thread); a database server deletes at its own priority, so the job paces itself more.
    fn deletes_at_background_priority(&self) -> bool {
        false
    }
}
