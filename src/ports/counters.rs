//! State that must be shared between cch instances: windowed counters, session bindings,
//! breaker state and concurrency slots. Redis in production, memory when alone; a fail-open
//! wrapper switches between them so a request never fails because Redis is down.

use std::time::Duration;

use async_trait::async_trait;

/// Why a counters call failed (only the shared backend fails; memory never does).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CounterError {
    /// The backend could not be reached or answered with an error.
    #[error("counter backend unavailable: {0}")]
    Unavailable(String),
}

/// Result of a counters call.
pub type CounterResult<T> = Result<T, CounterError>;

/// Where counting currently happens, for `/ready` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterMode {
    /// In-process only: a single instance, by configuration.
    Local,
    /// Shared backend (Redis) answering.
    Shared,
    /// Shared backend configured but unreachable: counting in memory until it returns.
    Degraded,
}

impl CounterMode {
    /// Name used in health output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Shared => "shared",
            Self::Degraded => "degraded",
        }
    }
}

/// Outcome of trying to take a concurrency slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotOutcome {
    /// True when the member holds a slot now (newly taken or already held).
    pub acquired: bool,
    /// Active members after the call.
    pub active: i64,
}

/// Shared counters and small state with TTLs. Keys are plain strings; implementations add
/// their own namespace prefix.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait CounterStore: Send + Sync {
    /// Adds `amount` to a counter, setting its TTL when it is created; returns the new value.
    /// Used for fixed-period windows (a key per period).
    async fn incr(&self, key: &str, amount: i64, ttl: Duration) -> CounterResult<i64>;
    /// Current value of a counter (0 when absent).
    async fn get_counter(&self, key: &str) -> CounterResult<i64>;

    /// Records `amount` at `now_ms` under the unique `member` in a rolling window, drops entries
    /// older than `window_ms`, and returns the sum within the window.
    async fn rolling_add(
        &self,
        key: &str,
        now_ms: i64,
        member: &str,
        amount: i64,
        window_ms: i64,
    ) -> CounterResult<i64>;
    /// Sum of the entries of a rolling window newer than `now_ms - window_ms`.
    async fn rolling_sum(&self, key: &str, now_ms: i64, window_ms: i64) -> CounterResult<i64>;

    /// A string value, if present and not expired.
    async fn get(&self, key: &str) -> CounterResult<Option<String>>;
    /// Several string values in one round trip (`MGET`), in the order of `keys`. The caller bounds
    /// `keys` (one per configured provider at most).
    async fn get_many(&self, keys: &[String]) -> CounterResult<Vec<Option<String>>>;
    /// Sets a value, with an optional TTL.
    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CounterResult<()>;
    /// Sets a value only when the key is absent; true when it was set.
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CounterResult<bool>;
    /// Atomically replaces the value when it currently equals `expected` (`None` = absent);
    /// true when it was replaced.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        ttl: Option<Duration>,
    ) -> CounterResult<bool>;
    /// Resets a key's TTL; false when the key does not exist.
    async fn expire(&self, key: &str, ttl: Duration) -> CounterResult<bool>;
    /// Removes a key of any kind.
    async fn delete(&self, key: &str) -> CounterResult<()>;

    /// Atomically: drops members idle for `ttl_ms`, then takes or refreshes a slot for `member`
    /// unless `limit` active members already exist (a member that holds a slot always keeps it).
    async fn acquire_slot(
        &self,
        key: &str,
        member: &str,
        now_ms: i64,
        ttl_ms: i64,
        limit: Option<i64>,
    ) -> CounterResult<SlotOutcome>;
    /// Gives a slot back.
    async fn release_slot(&self, key: &str, member: &str) -> CounterResult<()>;
    /// Active members (idle less than `ttl_ms`).
    async fn count_slots(&self, key: &str, now_ms: i64, ttl_ms: i64) -> CounterResult<i64>;

    /// A cheap round trip proving the backend answers.
    async fn ping(&self) -> CounterResult<()>;
    /// Where counting currently happens.
    fn mode(&self) -> CounterMode;
}
