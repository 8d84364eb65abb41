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

/// The counters key binding a session to its provider (its value is the provider id). One per
/// active session, expiring `SESSION_TTL` after the session's last request.
pub fn session_binding_key(id: &str) -> String {
    format!("session:{id}")
}

/// Most sessions a listing returns.
pub const MAX_SESSION_LIST: usize = 1000;

/// How `touch_session` writes the session's provider binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionBind {
    /// Bind only when the session has no binding yet (a first selection).
    IfAbsent,
    /// Bind to this provider whatever the binding was (a failover).
    Replace,
    /// Keep the binding, only refresh its TTL (reuse, retries).
    Refresh,
}

/// What one answered request tells the session store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTouch {
    /// The session id (already sanitised: safe characters, bounded length).
    pub id: String,
    /// The user, when known.
    pub user_id: Option<i64>,
    /// The key, when known.
    pub key_id: Option<i64>,
    /// The provider that answered.
    pub provider_id: i64,
    /// The model the client asked for.
    pub model: String,
    /// The client format (`claude`, `openai`, ...).
    pub client_format: String,
    /// Now, Unix ms.
    pub now_ms: i64,
    /// `SESSION_TTL`: the session and its binding expire this long after its last request.
    pub ttl: Duration,
    /// How the binding is written.
    pub bind: SessionBind,
}

/// One active session as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    /// The session id.
    pub id: String,
    /// The user of its last request.
    pub user_id: Option<i64>,
    /// The key of its last request.
    pub key_id: Option<i64>,
    /// The provider it is bound to (the binding, else the last provider that answered).
    pub provider_id: Option<i64>,
    /// The model of its last request.
    pub model: String,
    /// The client format of its last request.
    pub client_format: String,
    /// First request seen, Unix ms.
    pub started_ms: i64,
    /// Last request seen, Unix ms.
    pub last_ms: i64,
    /// Answered requests counted.
    pub requests: i64,
    /// Requests of the session in flight now, when the store tracks it (it does not yet).
    pub in_flight: Option<i64>,
}

/// Which sessions a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only this user's sessions.
    pub user_id: Option<i64>,
    /// Only this key's sessions.
    pub key_id: Option<i64>,
    /// Only sessions bound to this provider.
    pub provider_id: Option<i64>,
    /// At most this many (capped at [`MAX_SESSION_LIST`]).
    pub limit: usize,
}

impl SessionFilter {
    /// True when `s` passes every filter.
    pub fn matches(&self, s: &ActiveSession) -> bool {
        self.user_id.is_none_or(|u| s.user_id == Some(u))
            && self.key_id.is_none_or(|k| s.key_id == Some(k))
            && self.provider_id.is_none_or(|p| s.provider_id == Some(p))
    }

    /// The effective limit (1 ..= `MAX_SESSION_LIST`).
    pub fn capped_limit(&self) -> usize {
        self.limit.clamp(1, MAX_SESSION_LIST)
    }

    /// Keeps the matching sessions active after `cutoff_ms`, newest first, at most the limit.
    pub fn apply(&self, mut all: Vec<ActiveSession>, cutoff_ms: i64) -> Vec<ActiveSession> {
        all.retain(|s| s.last_ms > cutoff_ms && self.matches(s));
        all.sort_by_key(|s| std::cmp::Reverse(s.last_ms));
        all.truncate(self.capped_limit());
        all
    }
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

    /// Records an answered request of a session, in one round trip: writes its provider
    /// binding (see [`SessionBind`]) and its listing entry (user, key, model, format, first and
    /// last activity, request count), both expiring `ttl` after this request.
    async fn touch_session(&self, touch: &SessionTouch) -> CounterResult<()>;
    /// Sessions active at `now_ms` (last request less than `ttl_ms` ago) that pass `filter`,
    /// newest first, at most `filter.capped_limit()`. Bounded work whatever the store holds.
    async fn list_sessions(
        &self,
        now_ms: i64,
        ttl_ms: i64,
        filter: &SessionFilter,
    ) -> CounterResult<Vec<ActiveSession>>;
    /// Forgets a session: its binding and listing entry. Returns what was stored, if anything
    /// (the caller frees its concurrency slots with it).
    async fn end_session(&self, id: &str) -> CounterResult<Option<ActiveSession>>;

    /// A cheap round trip proving the backend answers.
    async fn ping(&self) -> CounterResult<()>;
    /// Where counting currently happens.
    fn mode(&self) -> CounterMode;
}
