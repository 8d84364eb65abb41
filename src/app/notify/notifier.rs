//! The notifier port's delivering implementation: every event goes to the inner notifier (the
//! log) and, as a notice, to the notification service's bounded queue. Never blocks the caller
//! (the breaker calls it on the proxy path).

use std::sync::Arc;

use async_trait::async_trait;

use crate::app::snapshot::SnapshotHolder;
use crate::domain::breaker::BreakerEvent;
use crate::domain::notify::events;
use crate::ports::notifier::{Notifier, ProbeReport};

use super::NotificationService;

/// Logs through `inner` and queues a notice for delivery.
pub struct DeliveringNotifier {
    inner: Arc<dyn Notifier>,
    service: Arc<NotificationService>,
    snapshot: Arc<SnapshotHolder>,
}

impl DeliveringNotifier {
    /// Wraps `inner`.
    pub fn new(
        inner: Arc<dyn Notifier>,
        service: Arc<NotificationService>,
        snapshot: Arc<SnapshotHolder>,
    ) -> Self {
        Self {
            inner,
            service,
            snapshot,
        }
    }

    /// The provider's own key, to be masked wherever its error text is quoted.
    fn provider_secret(&self, provider_id: i64) -> Option<String> {
        self.snapshot
            .get()
            .provider(provider_id)
            .map(|p| p.api_key.clone())
    }
}

#[async_trait]
impl Notifier for DeliveringNotifier {
    async fn breaker_event(&self, event: &BreakerEvent) {
        self.inner.breaker_event(event).await;
        let secret = self.provider_secret(event.provider_id);
        let secrets: Vec<&str> = secret.as_deref().into_iter().collect();
        self.service.publish(events::breaker(event, &secrets));
    }

    async fn probe_result(&self, report: &ProbeReport) {
        self.inner.probe_result(report).await;
        let secret = self.provider_secret(report.provider_id);
        let secrets: Vec<&str> = secret.as_deref().into_iter().collect();
        self.service.publish(events::probe(
            report.provider_id,
            &report.provider_name,
            report.recovered,
            report.detail.as_deref(),
            &secrets,
            report.at,
        ));
    }
}
