//! Traits the application needs from the outside world. Adapters implement them; the app and
//! its tests only see these.

pub mod clock;
pub mod counters;
pub mod limits;
pub mod notifications;
pub mod notifier;
pub mod spool;
pub mod store;
pub mod upstream;
