//! Removing expired request-log rows in small steps, and giving the space back, for the log
//! retention job. Roll-up tables are never touched through this port.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::store::StoreResult;

/// Deletion of expired request logs.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait LogRetentionStore: Send + Sync {
    /// Deletes at most `batch` request-log rows created before `cutoff` (oldest first) in one
    /// short transaction, without reading them into memory; returns how many went.
    async fn delete_logs_before(&self, cutoff: DateTime<Utc>, batch: i64) -> StoreResult<u64>;
    /// Gives the space freed by deletions back where the database needs it, in bounded steps
    /// that never hold a lock for long; returns a short description of what it did.
    async fn reclaim_space(&self) -> StoreResult<String>;
    /// True when the deletions run at a lower CPU priority than the proxy (SQLite's cleanup
    /// thread); a database server deletes at its own priority, so the job paces itself more.
    fn deletes_at_background_priority(&self) -> bool {
        false
    }
}
