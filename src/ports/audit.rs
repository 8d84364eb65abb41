//! Storage of the admin audit log. Written once per admin write, read by the audit API and
//! page, pruned by the log retention job; one implementation serves SQLite and PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::audit::{AuditEntry, AuditFilter};

use super::store::StoreResult;

/// The `audit_logs` table.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait AuditStore: Send + Sync {
    /// Appends an entry and returns its id.
    async fn insert_audit(&self, e: &AuditEntry) -> StoreResult<i64>;
    /// Entries matching the filter, newest first, at most `filter.limit`.
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// Deletes entries older than `cutoff`; returns how many.
    async fn delete_audit_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;
}
