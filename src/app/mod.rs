//! Use cases that orchestrate the domain and the ports, plus the one wiring module that builds
//! concrete adapters from configuration.
pub mod fail_open;
