//! In-process adapters: state that lives only as long as this process. `MemoryCounters` is the
//! counters store for a single instance and the fail-open fallback when Redis is down;
//! `MemoryLimits` is the same for the limits store.

mod counters;
mod entry;
mod limits;
mod ring;
mod rolling;
mod slots;

pub use counters::MemoryCounters;
pub use limits::MemoryLimits;
