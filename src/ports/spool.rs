//! A local append-only spool for request-log rows the database could not take, so accepted
//! requests are never lost while the database is down (and across restarts).

use async_trait::async_trait;

use crate::domain::request_log::RequestLog;

/// Durable local storage for pending log rows.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait LogSpool: Send + Sync {
    /// Appends rows durably.
    async fn append(&self, rows: &[RequestLog]) -> std::io::Result<()>;
    /// Up to `max` rows waiting to be replayed, from `cursor` (0 starts a replay; then the
    /// cursor the previous call returned), and the cursor of the rest (`None` when these were
    /// the last). Read in chunks so a long outage's spool is never held in memory whole; the
    /// rows stay spooled until `commit_replay`.
    async fn pending_chunk(
        &self,
        cursor: u64,
        max: usize,
    ) -> std::io::Result<(Vec<RequestLog>, Option<u64>)>;
    /// Forgets the rows of the replay after they were all stored.
    async fn commit_replay(&self) -> std::io::Result<()>;
    /// Whether anything is waiting.
    async fn is_empty(&self) -> bool;
}
