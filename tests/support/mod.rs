//! Shared helpers for integration tests: where to find PostgreSQL and Redis, and how to isolate
//! each test (a fresh database, a unique Redis key prefix).
#![allow(dead_code)]

use std::sync::Once;

/// Installs the process-wide TLS crypto provider once (reqwest is built without a default one).
pub fn init_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A random lowercase alphanumeric suffix for per-test names.
pub fn unique_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..12)
        .map(|_| {
            let n = rng.random_range(0..36u8);
            (if n < 10 { b'0' + n } else { b'a' + n - 10 }) as char
        })
        .collect()
}

/// Whether a Docker daemon looks reachable (for the testcontainers fallback).
pub fn docker_available() -> bool {
    std::env::var_os("DOCKER_HOST").is_some()
        || std::path::Path::new("/var/run/docker.sock").exists()
}

/// Prints a visible skip line for a test that needs a service nobody provided.
pub fn skip(test: &str, what: &str) {
    eprintln!(
        "SKIP {test}: no {what} (set CCH_TEST_DATABASE_URL / CCH_TEST_REDIS_URL, or run a Docker daemon)"
    );
}

pub mod app;
pub mod bin;
pub mod fake_upstream;
pub mod fake_webhook;
pub mod log_rows;
pub mod logs;
pub mod postgres;
pub mod redis;
pub mod small_disk;
pub mod socks5;
pub mod tcp_proxy;
