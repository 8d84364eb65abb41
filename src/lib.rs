//! cch: a gateway between AI coding clients and upstream AI providers.
//!
//! Layers (see `docs/architecture.md`): `domain` holds the pure rules, `ports` the traits the
//! application needs from the outside world, `app` the use cases and the single wiring module,
//! `adapters` the concrete implementations (databases, Redis, HTTP).

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;
