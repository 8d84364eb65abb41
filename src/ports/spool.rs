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
    /// Rows waiting to be replayed (they stay spooled until `commit_replay`).
    async fn pending(&self) -> std::io::Result<Vec<RequestLog>>;
    /// Forgets the rows returned by the last `pending` after they were stored.
    async fn commit_replay(&self) -> std::io::Result<()>;
    /// Whether anything is waiting.
    async fn is_empty(&self) -> bool;
}
