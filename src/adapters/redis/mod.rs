//! Redis adapters: state shared by every cch instance. `RedisCounters` implements the counters
//! port; wrap it in `app::fail_open::FailOpenCounters` so an outage never fails a request.

mod connection;
mod counters;
mod scripts;

pub use connection::RedisTimeouts;
pub use counters::RedisCounters;
