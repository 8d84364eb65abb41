//! The spans of a proxied request that are exported as OpenTelemetry traces: `request` (made by
//! the HTTP front), and under it `limits`, `routing`, one `upstream_attempt` per try and
//! `log_write`. They are ordinary `tracing` spans under one target, which the subscriber
//! switches off at its call sites unless traces are exported (see `adapters::otel`), so they
//! cost nothing when tracing is off; the text and JSON logs never show them.

/// The `tracing` target of every exported span.
pub const TARGET: &str = "cch_trace";
