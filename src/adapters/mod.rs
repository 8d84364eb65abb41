//! Concrete implementations of the ports (databases, Redis, memory, HTTP upstreams) and the
//! HTTP front that drives the app.

pub mod memory;
pub mod redis;
