//! In-process adapters: state that lives only as long as this process. `MemoryCounters` is the
//! counters store for a single instance and the fail-open fallback when Redis is down;
//! `MemoryLimits` is the same for the limits store.

mod counters;
mod entry;
mod limits;
mod ring;
mod rolling;
mod slots;

/// The maps of in-process state, keyed by store keys and session ids. Hashed with foldhash
/// (seeded per process) rather than SipHash: hashing these keys was a measurable share of a
/// request's CPU, and the seed keeps collisions unpredictable from outside.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub use counters::MemoryCounters;
pub use limits::MemoryLimits;
