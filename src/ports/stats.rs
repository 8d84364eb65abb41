//! Reads of the usage ledger (hourly roll-ups) for the statistics APIs. Roll-ups are written by
//! `RequestLogStore::insert_logs` with the log rows they sum; these reads never touch the log
//! except for the live figures (last minute, active sessions), which only make sense from it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::domain::periods::{BucketPlan, HourSpan};
use crate::domain::rollup::TTFB_BUCKETS;
use crate::ports::store::StoreResult;

/// What statistics can be grouped and ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Per user.
    User,
    /// Per key.
    Key,
    /// Per final provider.
    Provider,
    /// Per billed model.
    Model,
}

impl Dimension {
    /// The roll-up column.
    pub fn column(self) -> &'static str {
        match self {
            Self::User => "user_id",
            Self::Key => "key_id",
            Self::Provider => "provider_id",
            Self::Model => "model",
        }
    }
}

/// A summed quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Requests.
    Requests,
    /// Error requests.
    Errors,
    /// All tokens (input, output, cache reads and writes).
    Tokens,
    /// Cost in USD.
    Cost,
}

/// Sums over some roll-up rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LedgerSums {
    /// Requests.
    pub requests: i64,
    /// Error requests.
    pub errors: i64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache-read tokens.
    pub cache_read_tokens: i64,
    /// Cache writes, 5 minute TTL.
    pub cache_write_5m_tokens: i64,
    /// Cache writes, 1 hour TTL.
    pub cache_write_1h_tokens: i64,
    /// Cost in USD (exact).
    pub cost_usd: Decimal,
    /// Sum of durations (ms).
    pub duration_ms: i64,
    /// Sum of times to first byte (ms).
    pub ttfb_ms: i64,
    /// Requests with a time to first byte.
    pub ttfb_count: i64,
    /// Time-to-first-byte histogram (filled by `totals` only).
    pub ttfb_hist: [i64; TTFB_BUCKETS],
    /// Converted requests.
    pub converted: i64,
}

/// Ranked groups over an hour span.
#[derive(Debug, Clone)]
pub struct RankQuery {
    /// Hours counted.
    pub hours: HourSpan,
    /// The zone whose local periods the span is cut into (the period tiers' zone).
    pub zone: Tz,
    /// Grouped by.
    pub dimension: Dimension,
    /// Ranked by (descending).
    pub order: Metric,
    /// At most this many groups.
    pub limit: i64,
}

/// A time series over a bucket plan.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    /// Buckets (and the hours they cover).
    pub plan: BucketPlan,
    /// The zone the plan's days are cut in.
    pub zone: Tz,
    /// Summed quantity.
    pub metric: Metric,
    /// Grouping and the groups shown by name; the others are summed as one "other" group.
    pub group: Option<(Dimension, Vec<String>)>,
}

/// One bucket of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// Bucket index in the plan.
    pub bucket: i64,
    /// Group (an id or model as text); `None` for "other" or an ungrouped series.
    pub group: Option<String>,
    /// The metric's value.
    pub value: Decimal,
}

/// Live figures read from the request log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveFigures {
    /// Requests logged since the given instant.
    pub requests: i64,
    /// Distinct session ids logged since the session instant.
    pub sessions: i64,
}

/// Reads of the usage ledger.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait StatsStore: Send + Sync {
    /// Sums over every roll-up of the span, with the time-to-first-byte histogram.
    async fn totals(&self, hours: HourSpan) -> StoreResult<LedgerSums>;
    /// Groups ranked by a metric, best first, each with its sums (no histogram).
    async fn rank(&self, query: &RankQuery) -> StoreResult<Vec<(String, LedgerSums)>>;
    /// The non-empty buckets of a series.
    async fn series(&self, query: &SeriesQuery) -> StoreResult<Vec<SeriesPoint>>;
    /// Requests logged at or after `requests_since`, and distinct sessions at or after
    /// `sessions_since`.
    async fn live(
        &self,
        requests_since: DateTime<Utc>,
        sessions_since: DateTime<Utc>,
    ) -> StoreResult<LiveFigures>;
    /// Summarises the next chunk of log rows written before roll-ups existed, in one
    /// transaction (safe with several instances); returns how many rows are left.
    async fn backfill_step(&self) -> StoreResult<i64>;
    /// Brings the period tiers one step closer to holding every ledger hour before
    /// `fold_before`, cut in `zone`: after a zone change the tiers are emptied first, then
    /// each step sums the next whole ledger hours, about `max_rows` ledger rows (at least one
    /// hour), into them in one transaction (safe with several instances, safe to stop). Rows
    /// logged later for hours already summed are added to the tiers by the log insert.
    /// Returns whether more steps are needed now.
    async fn tier_step(&self, zone: Tz, max_rows: i64, fold_before: i64) -> StoreResult<bool>;
}
