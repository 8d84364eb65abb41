//! Counting requests refused by a limit (429s whose log message carries the limit's tag), for
//! `GET /api/v1/stats/rate-limits`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::store::StoreResult;
use crate::domain::rate_limit_stats::RefusalCount;

/// Refusal counts from the request log.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait RefusalStatsStore: Send + Sync {
    /// Refusals with `from <= created_at < to`, counted per (kind, user, key).
    async fn limit_refusals(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<RefusalCount>>;
}
