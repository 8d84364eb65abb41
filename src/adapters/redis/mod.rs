//! Redis adapters: state shared by every cch instance. `RedisCounters` implements the counters
//! port and `RedisLimits` the limits port; wrap them in the fail-open wrappers of `app` so an
//! outage never fails a request.

mod call;
mod connection;
mod counters;
mod limits;
mod pack;
mod scripts;
mod topology;
mod write_batch;

pub use connection::RedisTimeouts;
pub use counters::RedisCounters;
pub use limits::RedisLimits;
