//! Where domain events worth telling an operator go: breaker transitions and smart-probing
//! verdicts. The log always gets them; the notification service delivers them to webhooks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::breaker::BreakerEvent;

/// Smart probing's verdict on a provider whose breaker is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The provider.
    pub provider_id: i64,
    /// Its name.
    pub provider_name: String,
    /// True when the probe succeeded (the provider is answering again).
    pub recovered: bool,
    /// What the probe saw (status or failure), without secrets.
    pub detail: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Receives notable events. Implementations must not fail or block the caller: they log their
/// own errors and queue slow work.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait Notifier: Send + Sync {
    /// A circuit breaker changed state.
    async fn breaker_event(&self, event: &BreakerEvent);
    /// Smart probing tested an open provider.
    async fn probe_result(&self, report: &ProbeReport);
}
