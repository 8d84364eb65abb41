//! Traits the application needs from the outside world. Adapters implement them; the app and
//! its tests only see these.

pub mod audit;
pub mod clock;
pub mod counters;
pub mod jobs;
pub mod limits;
pub mod notifications;
pub mod notifier;
pub mod refusal_stats;
pub mod retention;
pub mod sensitive_words;
pub mod spool;
pub mod stats;
pub mod store;
pub mod upstream;
