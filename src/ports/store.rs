//! Persistent storage: configuration (providers, users, keys, prices, settings) and request
//! logs. Implemented for SQLite and PostgreSQL; one contract test suite covers both.

use async_trait::async_trait;

use crate::domain::api_key::ApiKey;
use crate::domain::failure::StoredErrorRule;
use crate::domain::price::ModelPrice;
use crate::domain::provider::Provider;
use crate::domain::request_log::{LogFilter, RequestLog};
use crate::domain::settings::SystemSetting;
use crate::domain::user::User;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row with that id.
    #[error("not found")]
    NotFound,
    /// A unique constraint was hit (e.g. duplicate name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced row does not exist (e.g. key for an unknown user).
    #[error("invalid reference: {0}")]
    InvalidReference(String),
    /// The database could not be reached or failed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded (corruption or a bug).
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything configuration-related, read in full to build the in-memory snapshot.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait ConfigStore: Send + Sync {
    /// Lists all providers, ordered by id.
    async fn list_providers(&self) -> StoreResult<Vec<Provider>>;
    /// One provider.
    async fn get_provider(&self, id: i64) -> StoreResult<Provider>;
    /// Inserts a provider (its `id` is ignored) and returns it with the assigned id.
    async fn insert_provider(&self, p: &Provider) -> StoreResult<Provider>;
    /// Replaces every field of an existing provider.
    async fn update_provider(&self, p: &Provider) -> StoreResult<Provider>;
    /// Deletes a provider.
    async fn delete_provider(&self, id: i64) -> StoreResult<()>;
    /// Replaces only a provider's key (a refreshed OAuth credential), so a concurrent admin
    /// edit of its other fields is never overwritten.
    async fn set_provider_api_key(&self, id: i64, api_key: &str) -> StoreResult<()>;

    /// Lists all users, ordered by id.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// One user.
    async fn get_user(&self, id: i64) -> StoreResult<User>;
    /// Inserts a user and returns it with the assigned id.
    async fn insert_user(&self, u: &User) -> StoreResult<User>;
    /// Replaces every field of an existing user.
    async fn update_user(&self, u: &User) -> StoreResult<User>;
    /// Deletes a user and their keys.
    async fn delete_user(&self, id: i64) -> StoreResult<()>;

    /// Lists all keys of all users, ordered by id.
    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>>;
    /// Keys of one user, ordered by id.
    async fn list_user_keys(&self, user_id: i64) -> StoreResult<Vec<ApiKey>>;
    /// One key.
    async fn get_key(&self, id: i64) -> StoreResult<ApiKey>;
    /// Inserts a key and returns it with the assigned id.
    async fn insert_key(&self, k: &ApiKey) -> StoreResult<ApiKey>;
    /// Replaces the editable fields of an existing key (not its hash).
    async fn update_key(&self, k: &ApiKey) -> StoreResult<ApiKey>;
    /// Deletes a key.
    async fn delete_key(&self, id: i64) -> StoreResult<()>;

    /// Lists all model prices, ordered by model.
    async fn list_prices(&self) -> StoreResult<Vec<ModelPrice>>;
    /// Inserts or replaces the price of a model.
    async fn upsert_price(&self, p: &ModelPrice) -> StoreResult<ModelPrice>;
    /// Deletes the price of a model.
    async fn delete_price(&self, model: &str) -> StoreResult<()>;

    /// A number the database changes in every transaction that writes a configuration table
    /// (providers, users, keys, prices, settings, error rules, sensitive words), so a refresh
    /// can tell in one read that nothing changed.
    async fn config_version(&self) -> StoreResult<i64>;
    /// Lists all system settings.
    async fn list_settings(&self) -> StoreResult<Vec<SystemSetting>>;
    /// Inserts or replaces a setting.
    async fn put_setting(&self, s: &SystemSetting) -> StoreResult<()>;

    /// Lists the error rules, ordered by priority then id.
    async fn list_error_rules(&self) -> StoreResult<Vec<StoredErrorRule>>;
    /// Inserts an error rule and returns it with its id.
    async fn insert_error_rule(&self, r: &StoredErrorRule) -> StoreResult<StoredErrorRule>;
    /// Replaces an error rule (by id).
    async fn update_error_rule(&self, r: &StoredErrorRule) -> StoreResult<StoredErrorRule>;
    /// Deletes an error rule.
    async fn delete_error_rule(&self, id: i64) -> StoreResult<()>;

    /// A cheap query proving the database answers.
    async fn ping(&self) -> StoreResult<()>;
}

/// Request log persistence: batched inserts and filtered, cursor-paginated reads.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait RequestLogStore: Send + Sync {
    /// Inserts rows in one transaction. Rows whose `request_id` already exists are skipped, so
    /// replaying a spool is idempotent. Returns how many were inserted.
    async fn insert_logs(&self, rows: &[RequestLog]) -> StoreResult<u64>;
    /// [`Self::insert_logs`] for a batch that is in no hurry: the log writer keeps up with the
    /// traffic (the batch is not full, so nothing waits behind it). A store runs the part of
    /// such a batch that happens in this process (all of it for the embedded SQLite; composing,
    /// encoding and sending it for Postgres) on a thread at a low CPU priority, so the insert
    /// never holds a core a request is waiting for. Same contract otherwise.
    async fn insert_logs_unhurried(&self, rows: &[RequestLog]) -> StoreResult<u64> {
        self.insert_logs(rows).await
    }
    /// Rows matching the filter, newest first, at most `filter.limit`.
    async fn list_logs(&self, filter: &LogFilter) -> StoreResult<Vec<RequestLog>>;
    /// One row.
    async fn get_log(&self, id: i64) -> StoreResult<RequestLog>;
    /// Cost of the logged requests of each user, key or provider with
    /// `since <= created_at < until`, summed per entity and per bucket of `bucket_ms` counted
    /// from `since` (a bucket as wide as the range gives one sum per entity since an instant).
    async fn cost_buckets(&self, query: &CostQuery) -> StoreResult<Vec<CostBucket>>;
}

/// Whose cost `RequestLogStore::cost_buckets` sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CostScope {
    /// Per user.
    User,
    /// Per key.
    Key,
    /// Per (final) provider.
    Provider,
}

impl CostScope {
    /// The log column holding the entity id.
    pub fn column(self) -> &'static str {
        match self {
            Self::User => "user_id",
            Self::Key => "key_id",
            Self::Provider => "provider_id",
        }
    }
}

/// A cost query over the request log.
#[derive(Debug, Clone)]
pub struct CostQuery {
    /// Group by user, key or provider.
    pub scope: CostScope,
    /// Only this entity, or all.
    pub id: Option<i64>,
    /// First instant counted.
    pub since: chrono::DateTime<chrono::Utc>,
    /// First instant not counted.
    pub until: chrono::DateTime<chrono::Utc>,
    /// Bucket width (≥ 1).
    pub bucket_ms: i64,
}

/// Cost of one entity in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostBucket {
    /// The user, key or provider id.
    pub entity_id: i64,
    /// Bucket number: it covers `since + n·bucket_ms .. since + (n+1)·bucket_ms`.
    pub bucket: i64,
    /// Sum of `cost_usd`.
    pub cost_usd: rust_decimal::Decimal,
}
