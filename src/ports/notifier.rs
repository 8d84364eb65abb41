//! Where domain events worth telling an operator go (breaker transitions now; webhooks later).

use async_trait::async_trait;

use crate::domain::breaker::BreakerEvent;

/// Receives notable events. Implementations must not fail the caller: they log their own errors.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait Notifier: Send + Sync {
    /// A circuit breaker changed state.
    async fn breaker_event(&self, event: &BreakerEvent);
}
