//! One stored key in memory: its value (of one of the kinds Redis would hold) and its expiry.

use std::time::{Duration, Instant};

use super::rolling::RollingWindow;
use super::slots::SlotSet;
use crate::ports::counters::ActiveSession;

/// What a key holds; mirrors the Redis type each port call uses.
#[derive(Debug)]
pub(super) enum Value {
    /// A counter (`incr`); reads as its decimal string through `get`, like Redis.
    Int(i64),
    /// A plain string (`set`, `compare_and_swap`).
    Str(String),
    /// A rolling window (`rolling_add`).
    Rolling(RollingWindow),
    /// A concurrency-slot set (`acquire_slot`).
    Slots(SlotSet),
    /// A session's listing entry (`touch_session`), boxed to keep entries small.
    Session(Box<ActiveSession>),
}

impl Value {
    /// The value as `get` reports it: strings and counters only.
    pub(super) fn as_string(&self) -> Option<String> {
        match self {
            Self::Int(n) => Some(n.to_string()),
            Self::Str(s) => Some(s.clone()),
            Self::Rolling(_) | Self::Slots(_) | Self::Session(_) => None,
        }
    }

    /// The value as a counter: counters, and strings holding an integer (like Redis INCRBY).
    pub(super) fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Str(s) => s.parse().ok(),
            Self::Rolling(_) | Self::Slots(_) | Self::Session(_) => None,
        }
    }
}

/// A key's value with its optional deadline.
#[derive(Debug)]
pub(super) struct Entry {
    /// What the key holds.
    pub(super) value: Value,
    /// When the key disappears; `None` = never.
    pub(super) expires_at: Option<Instant>,
}

impl Entry {
    /// A new entry expiring `ttl` after `now` (or never).
    pub(super) fn new(value: Value, now: Instant, ttl: Option<Duration>) -> Self {
        Self {
            value,
            expires_at: ttl.and_then(|t| deadline(now, t)),
        }
    }

    /// True while the entry has not reached its deadline.
    pub(super) fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// `now + ttl`; `None` (never) when that is beyond what an `Instant` can hold.
pub(super) fn deadline(now: Instant, ttl: Duration) -> Option<Instant> {
    now.checked_add(ttl)
}

/// A millisecond count from the port as a TTL (negative counts as zero).
pub(super) fn ms(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
