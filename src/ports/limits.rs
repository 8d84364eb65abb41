//! The limits store: every window counter of users, keys and providers, checked and updated in
//! one round trip per request. Redis in production (one Lua script per call), memory when alone
//! or while Redis is down.
//!
//! Units: request and session counters count; spend counters hold integer **micro-USD**
//! (10⁻⁶ USD, see `domain::windows::MICROS_PER_USD`). Times are Unix milliseconds passed in by
//! the caller, so tests control the clock. Correctness never depends on key expiry: rolling
//! windows are trimmed by the passed time and calendar periods use one key per period; TTLs only
//! free memory.

use async_trait::async_trait;

use super::counters::{CounterMode, CounterResult};

/// One counter of the store, with how it accumulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counter {
    /// Requests in a sliding window (a ring of per-bucket counts).
    Requests {
        /// Store key.
        key: String,
        /// Window length.
        window_ms: i64,
    },
    /// Spend in a rolling window (a ring of per-bucket sums).
    RollingSpend {
        /// Store key.
        key: String,
        /// Window length.
        window_ms: i64,
    },
    /// Spend of one calendar period; the key names the period.
    PeriodSpend {
        /// Store key (including the period).
        key: String,
        /// When the period ends (the key may be dropped after it).
        expires_at_ms: i64,
    },
    /// Spend without a window (until reset).
    TotalSpend {
        /// Store key.
        key: String,
    },
    /// Active sessions: a session stops counting `ttl_ms` after its last request. Members are
    /// bounded by the check's limit, or by `SESSION_MEMBERS_CAP` when unlimited (oldest dropped).
    Sessions {
        /// Store key.
        key: String,
        /// Idle time after which a session no longer counts.
        ttl_ms: i64,
    },
}

impl Counter {
    /// The store key.
    pub fn key(&self) -> &str {
        match self {
            Self::Requests { key, .. }
            | Self::RollingSpend { key, .. }
            | Self::PeriodSpend { key, .. }
            | Self::TotalSpend { key }
            | Self::Sessions { key, .. } => key,
        }
    }

    /// True for the spend counters (`record` adds to them).
    pub fn is_spend(&self) -> bool {
        matches!(
            self,
            Self::RollingSpend { .. } | Self::PeriodSpend { .. } | Self::TotalSpend { .. }
        )
    }
}

/// A counter and its limit: the request is refused when the counter is at or over the limit
/// (for sessions: when the session is new and the others already fill every slot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The counter.
    pub counter: Counter,
    /// The limit in the counter's unit.
    pub limit: i64,
}

/// Everything one admission checks, atomically.
#[derive(Debug, Clone, Copy)]
pub struct CheckRequest<'a> {
    /// Now, Unix ms.
    pub now_ms: i64,
    /// The session (its slot in session counters).
    pub session_id: &'a str,
    /// The checks, in the order they are reported.
    pub checks: &'a [Check],
}

/// Result of an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Every check passed; the request was counted in every request window and the session
    /// holds (or refreshed) a slot in every session counter.
    Admitted,
    /// The first failing check (by index); nothing was counted.
    Rejected {
        /// Index into `checks`.
        index: usize,
        /// The counter's current value.
        current: i64,
        /// For requests and rolling spend, the instant the oldest live bucket counts as (its
        /// end, see `Ring`); for sessions, when the oldest active session was last seen. Room
        /// frees up one window (or session TTL) after it.
        oldest_ms: Option<i64>,
    },
}

/// Window counters of users, keys and providers.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait LimitStore: Send + Sync {
    /// Checks every limit and, only when all pass, counts the request and takes or refreshes
    /// the session's slots: one atomic step, one round trip.
    async fn check(&self, req: CheckRequest<'_>) -> CounterResult<CheckOutcome>;

    /// Refreshes `member`'s slot in the session counter `counter` at `now_ms` (its last-seen
    /// time moves to `now_ms`) if it still holds one; false when it holds none (ended, or idle
    /// past the TTL), and then nothing is taken. For the slot a request went through on without
    /// asking (a remembered holder): cheaper than a check, and off the answer's path, so a
    /// shared store may send it together with other such writes, a little later. Any other kind
    /// of counter: false.
    async fn refresh_session(
        &self,
        now_ms: i64,
        counter: &Counter,
        member: &str,
    ) -> CounterResult<bool>;

    /// Adds `amount` (micro-USD) at `at_ms` to every spend counter given (others are ignored).
    /// Not idempotent: call it once per request.
    async fn record(&self, at_ms: i64, amount: i64, counters: &[Counter]) -> CounterResult<()>;
    /// Current values, in order. For sessions, the count of sessions other than `member`.
    async fn read(
        &self,
        now_ms: i64,
        counters: &[Counter],
        member: Option<&str>,
    ) -> CounterResult<Vec<i64>>;
    /// Replaces a spend counter's content: rolling windows get these `(at_ms, amount)` entries
    /// in their buckets (entries already out of the window are dropped), period and total
    /// counters their sum. Used to rebuild counters from the request log. `seen` is the
    /// counter's value read before the log was summed: spend recorded since (its value now
    /// minus `seen`, when positive) is kept on top, in the bucket of `now_ms`, so requests that
    /// finished while the rebuild ran are not overwritten.
    async fn replace(
        &self,
        now_ms: i64,
        counter: &Counter,
        entries: &[(i64, i64)],
        seen: i64,
    ) -> CounterResult<()>;
    /// Deletes counters (e.g. a total reset).
    async fn clear(&self, counters: &[Counter]) -> CounterResult<()>;
    /// Frees `member`'s slot in each session counter given (others are ignored): an ended
    /// session stops counting against concurrent-session limits at once.
    async fn release_session(&self, counters: &[Counter], member: &str) -> CounterResult<()>;
    /// Sets `key` to `value` unless it exists; true when it was set (a warm-up marker).
    async fn mark(&self, key: &str, value: &str) -> CounterResult<bool>;
    /// Deletes a marker.
    async fn unmark(&self, key: &str) -> CounterResult<()>;
    /// A cheap round trip proving the backend answers.
    async fn ping(&self) -> CounterResult<()>;
    /// Where counting currently happens.
    fn mode(&self) -> CounterMode;
}
