//! Concrete implementations of the ports (databases, Redis, memory, HTTP upstreams) and the
//! HTTP front that drives the app.

pub mod audit_sql;
pub mod cch_ts;
pub mod heap_trim;
pub mod http;
pub mod log_notifier;
pub mod memory;
pub mod notify_sql;
pub mod otel;
pub mod postgres;
pub mod quiet_runtime;
pub mod redis;
pub mod sealed_store;
pub mod secret_box;
pub mod secret_key_file;
pub mod secret_setup;
pub mod sensitive_words_sql;
pub mod spool_file;
pub mod sql_ledger;
pub(crate) mod sql_ledger_deltas;
pub(crate) mod sql_shared;
pub mod sql_tier_fold;
pub mod sql_tiers;
pub mod sqlite;
pub mod thread_priority;
pub mod upstream;
