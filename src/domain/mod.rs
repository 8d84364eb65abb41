//! Pure rules of the gateway: entities, validation, limits, keys. No I/O and no clock here.

pub mod api_key;
pub mod error;
pub mod limits;
pub mod price;
pub mod provider;
pub mod request_log;
pub mod settings;
pub mod user;
pub mod format;
pub mod routing;
pub mod session;
pub mod sse;
pub mod usage;
pub mod cost;
