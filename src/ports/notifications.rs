//! Durable notification state: targets, the outbox of messages waiting for delivery (claimed by
//! one worker at a time across instances), and the delivery log. One implementation serves
//! SQLite and PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::notify::Notice;
use crate::domain::notify::target::Target;

use super::store::StoreResult;

/// A message claimed for delivery to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// The target.
    pub target_id: i64,
    /// What to say.
    pub notice: Notice,
    /// How many events were merged into this message (≥ 1).
    pub repeats: u32,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The platform accepted it; the message is done.
    Delivered,
    /// It failed and will be tried again at the given time.
    Retry(DateTime<Utc>),
    /// It failed for good.
    Failed,
}

impl Outcome {
    /// The wire name in the delivery log.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry(_) => "retry",
            Self::Failed => "failed",
        }
    }
}

/// One line of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Row id.
    pub id: i64,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// The target (it may have been deleted since).
    pub target_id: i64,
    /// Its name at the time.
    pub target_name: String,
    /// The event wire name.
    pub event: String,
    /// The outbox row (0 for test messages, which bypass the outbox).
    pub outbox_id: i64,
    /// 1-based attempt number.
    pub attempt: u32,
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    /// The platform's answer or the network error, cut to 1 KB.
    pub answer: String,
    /// When the next attempt is due (for `retry`).
    pub next_at: Option<DateTime<Utc>>,
}

/// Storage for notifications.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait NotificationStore: Send + Sync {
    /// All targets, by id.
    async fn list_targets(&self) -> StoreResult<Vec<Target>>;
    /// One target.
    async fn get_target(&self, id: i64) -> StoreResult<Target>;
    /// Inserts a target (its id is ignored) and returns it with its id.
    async fn insert_target(&self, t: &Target, now: DateTime<Utc>) -> StoreResult<Target>;
    /// Replaces a target by id.
    async fn update_target(&self, t: &Target, now: DateTime<Utc>) -> StoreResult<Target>;
    /// Deletes a target and its undelivered messages.
    async fn delete_target(&self, id: i64) -> StoreResult<()>;

    /// Stores `notice` for `target_id`, due now; when a message with the same coalescing key is
    /// still waiting for that target, it is merged into it instead (its count grows).
    async fn enqueue(&self, target_id: i64, notice: &Notice, now: DateTime<Utc>)
    -> StoreResult<()>;
    /// Claims up to `limit` due messages until `lease_until` (a crashed worker's claims lapse
    /// then); two workers never claim the same message at once.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>>;
    /// When a message with this key was last delivered to the target.
    async fn last_delivered(
        &self,
        target_id: i64,
        coalesce_key: &str,
    ) -> StoreResult<Option<DateTime<Utc>>>;
    /// Puts a claimed message back, due at `until`, without counting an attempt (the coalescing
    /// window); merges it into a newer waiting message with the same key if there is one.
    async fn defer(&self, item: &OutboxItem, until: DateTime<Utc>) -> StoreResult<()>;
    /// Records an attempt on a claimed message: the delivery log line and the message's new
    /// state (done, failed, or waiting for `Retry`'s time, merged as in [`Self::defer`]).
    async fn finish(&self, item: &OutboxItem, outcome: Outcome, log: &Delivery) -> StoreResult<()>;
    /// Appends a delivery-log line that has no outbox message (test sends).
    async fn log_delivery(&self, log: &Delivery) -> StoreResult<()>;
    /// Delivery log, newest first: optionally one target, rows with id < `before_id`.
    async fn list_deliveries(
        &self,
        target_id: Option<i64>,
        before_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    /// Deletes delivery-log lines and finished messages older than `before`; returns how many.
    async fn prune_notifications(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}
