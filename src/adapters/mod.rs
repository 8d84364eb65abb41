//! Concrete implementations of the ports (databases, Redis, memory, HTTP upstreams) and the
//! HTTP front that drives the app.

pub mod http;
pub mod postgres;
pub mod spool_file;
pub mod sqlite;
pub mod upstream;
