//! Pure rules of the gateway: entities, validation, limits, keys. No I/O and no clock here.

pub mod api_key;
pub mod breaker;
pub mod chain;
pub mod client_error;
pub mod content_gate;
pub mod convert;
pub mod cost;
pub mod error;
pub mod failure;
pub mod format;
pub mod limits;
pub mod price;
pub mod provider;
pub mod request_log;
pub mod routing;
pub mod session;
pub mod settings;
pub mod sse;
pub mod text;
pub mod thinking_rectifier;
pub mod token_estimate;
pub mod usage;
pub mod user;
pub mod windows;
