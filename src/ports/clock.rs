//! The current time, injected so rules and jobs can be tested with a controllable clock.

use chrono::{DateTime, Utc};

/// A source of the current time.
#[cfg_attr(test, mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current instant in UTC.
    fn now(&self) -> DateTime<Utc>;
}
