//! The logging notifier: writes every event as a structured `tracing` line (prefix
//! `[CircuitBreaker]`, as the original's troubleshooting guide expects). Webhook delivery wraps it
//! (`app::notify::notifier`).

use async_trait::async_trait;

use crate::domain::breaker::{BreakerEvent, BreakerEventKind};
use crate::ports::notifier::{Notifier, ProbeReport};

/// Logs events; never fails.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn breaker_event(&self, e: &BreakerEvent) {
        let recovery = e.expected_recovery.map(|t| t.to_rfc3339());
        match e.kind {
            BreakerEventKind::Opened => tracing::warn!(
                provider_id = e.provider_id,
                provider = %e.provider_name,
                failures = e.failure_count,
                expected_recovery = ?recovery,
                last_error = ?e.last_error,
                "[CircuitBreaker] opened"
            ),
            BreakerEventKind::HalfOpened => tracing::info!(
                provider_id = e.provider_id,
                provider = %e.provider_name,
                failures = e.failure_count,
                "[CircuitBreaker] half-open"
            ),
            BreakerEventKind::Closed => tracing::info!(
                provider_id = e.provider_id,
                provider = %e.provider_name,
                "[CircuitBreaker] closed"
            ),
        }
    }

    async fn probe_result(&self, r: &ProbeReport) {
        if r.recovered {
            tracing::info!(provider_id = r.provider_id, provider = %r.provider_name, "[CircuitBreaker] probe succeeded");
        } else {
            tracing::debug!(provider_id = r.provider_id, provider = %r.provider_name, detail = ?r.detail, "[CircuitBreaker] probe failed");
        }
    }
}
