//! Use cases that orchestrate the domain and the ports, plus the one wiring module that builds
//! concrete adapters from configuration.

pub mod admin;
pub mod admin_token;
pub mod body_budget;
pub mod breakers;
pub mod config;
pub mod config_commands;
pub mod config_transfer;
pub mod context;
pub mod error_rules;
pub mod fail_open;
pub mod limits;
pub mod log_writer;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod private_fs;
pub mod probe;
pub mod provider_test;
pub mod provider_tokens;
pub mod proxy;
pub mod retention;
pub mod scheduler;
pub mod sensitive_words;
pub mod sessions;
pub mod shutdown;
pub mod snapshot;
pub mod stats;
pub mod system_settings;
pub mod tracing_spans;
pub mod wiring;
