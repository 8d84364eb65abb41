//! Use cases that orchestrate the domain and the ports, plus the one wiring module that builds
//! concrete adapters from configuration.

pub mod admin;
pub mod admin_token;
pub mod config;
pub mod context;
pub mod snapshot;
