//! Circuit breakers shared between instances: the domain state machine
//! ([`crate::domain::breaker`]) applied to a JSON record per provider in the counters store
//! (`breaker:{provider_id}`; Redis when configured, memory otherwise, and memory while Redis is
//! down through the fail-open wrapper). Every transition is a compare-and-swap on that record,
//! retried on conflict, so two instances never both perform the same transition (one
//! `HalfOpened`, one `Opened` event). Transitions go to the notifier.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde::Serialize;

use crate::domain::breaker::{BreakerRecord, BreakerState, Observation, Step};
use crate::domain::provider::Provider;
use crate::ports::counters::CounterStore;
use crate::ports::notifier::Notifier;

use super::policy::{Breakers, ProviderOutcome};

/// How often a transition is retried when another instance changed the record meanwhile.
const MAX_CAS_TRIES: usize = 16;
/// How long a record outlives its open period (closed records expire after this too).
const RECORD_TTL: Duration = Duration::from_secs(24 * 3600);

/// The counters key of a provider's breaker.
pub fn breaker_key(provider_id: i64) -> String {
    format!("breaker:{provider_id}")
}

/// A provider's breaker as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerView {
    /// The provider.
    pub provider_id: i64,
    /// Its name.
    pub provider_name: String,
    /// Effective state now.
    pub state: BreakerState,
    /// Consecutive counted failures.
    pub failure_count: u32,
    /// Consecutive half-open successes.
    pub half_open_successes: u32,
    /// When it last opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// When an open breaker may be tried again.
    pub next_try_at: Option<DateTime<Utc>>,
    /// The last counted failure's message.
    pub last_error: Option<String>,
}

/// The breaker service the proxy, the probe job and the admin API use.
pub struct BreakerService {
    counters: Arc<dyn CounterStore>,
    notifier: Arc<dyn Notifier>,
    network_errors_count: bool,
}

impl BreakerService {
    /// Builds the service; `network_errors_count` is `ENABLE_CIRCUIT_BREAKER_ON_NETWORK_ERRORS`.
    pub fn new(
        counters: Arc<dyn CounterStore>,
        notifier: Arc<dyn Notifier>,
        network_errors_count: bool,
    ) -> Self {
        Self {
            counters,
            notifier,
            network_errors_count,
        }
    }

    /// The stored raw value and the record it holds (a missing or unreadable record is a closed
    /// breaker). `None` when the store failed.
    async fn load(&self, provider_id: i64) -> Option<(Option<String>, BreakerRecord)> {
        match self.counters.get(&breaker_key(provider_id)).await {
            Ok(raw) => {
                let rec = raw
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<BreakerRecord>(s).ok())
                    .unwrap_or_default();
                Some((raw, rec))
            }
            Err(e) => {
                tracing::warn!(error = %e, provider_id, "[CircuitBreaker] state unreadable");
                None
            }
        }
    }

    fn ttl(rec: &BreakerRecord, now: DateTime<Utc>) -> Duration {
        let open_left = rec
            .open_until
            .and_then(|u| (u - now).to_std().ok())
            .unwrap_or_default();
        RECORD_TTL + open_left
    }

    /// Applies `step` atomically (CAS, retried on conflict) and notifies the transition, if any.
    /// Returns the record now in force.
    async fn transition(
        &self,
        p: &Provider,
        now: DateTime<Utc>,
        step: impl Fn(&BreakerRecord) -> Step,
    ) -> Option<BreakerRecord> {
        let key = breaker_key(p.id);
        for _ in 0..MAX_CAS_TRIES {
            let (raw, cur) = self.load(p.id).await?;
            let (next, event) = step(&cur);
            if next == cur && event.is_none() {
                return Some(cur);
            }
            let Ok(json) = serde_json::to_string(&next) else {
                return Some(cur);
            };
            let ttl = Self::ttl(&next, now);
            match self
                .counters
                .compare_and_swap(&key, raw.as_deref(), &json, Some(ttl))
                .await
            {
                Ok(true) => {
                    if let Some(kind) = event {
                        let ev = next.event(kind, p.id, &p.name, now);
                        self.notifier.breaker_event(&ev).await;
                    }
                    return Some(next);
                }
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, provider = %p.name, "[CircuitBreaker] state not saved");
                    return None;
                }
            }
        }
        tracing::warn!(provider = %p.name, "[CircuitBreaker] gave up after repeated conflicts");
        None
    }

    /// The effective state of `p` at `now` (the OPEN → HALF-OPEN expiry is applied, and saved).
    pub async fn current(&self, p: &Provider, now: DateTime<Utc>) -> BreakerRecord {
        let Some((_, rec)) = self.load(p.id).await else {
            return BreakerRecord::default();
        };
        let (eff, event) = rec.effective(&p.breaker, now);
        if event.is_none() {
            return eff;
        }
        self.transition(p, now, |r| r.effective(&p.breaker, now))
            .await
            .unwrap_or(eff)
    }

    /// The admin view of `p`'s breaker.
    pub async fn view(&self, p: &Provider, now: DateTime<Utc>) -> BreakerView {
        let r = self.current(p, now).await;
        BreakerView {
            provider_id: p.id,
            provider_name: p.name.clone(),
            state: r.state,
            failure_count: r.failure_count,
            half_open_successes: r.half_open_successes,
            opened_at: r.opened_at,
            next_try_at: (r.state == BreakerState::Open)
                .then_some(r.open_until)
                .flatten(),
            last_error: r.last_error,
        }
    }

    /// Applies an outcome with its message (kept as the breaker's last error).
    pub async fn observe(
        &self,
        p: &Provider,
        obs: &Observation<'_>,
        now: DateTime<Utc>,
    ) -> Option<BreakerRecord> {
        let net = self.network_errors_count;
        self.transition(p, now, |r| r.observe(obs, &p.breaker, net, now))
            .await
    }

    /// A successful probe: an OPEN breaker goes HALF-OPEN now.
    pub async fn probe_succeeded(&self, p: &Provider, now: DateTime<Utc>) -> Option<BreakerRecord> {
        self.transition(p, now, |r| r.probe_succeeded(&p.breaker, now))
            .await
    }

    /// Admin reset: the breaker is CLOSED with no failures (a `Closed` event when it was not).
    pub async fn reset(&self, p: &Provider, now: DateTime<Utc>) -> Option<BreakerRecord> {
        self.transition(p, now, |r| {
            let fresh = BreakerRecord::default();
            let event = (r.state != BreakerState::Closed)
                .then_some(crate::domain::breaker::BreakerEventKind::Closed);
            (fresh, event)
        })
        .await
    }
}

#[async_trait]
impl Breakers for BreakerService {
    async fn open_providers(
        &self,
        providers: &[Provider],
        now: DateTime<Utc>,
    ) -> HashMap<i64, Option<DateTime<Utc>>> {
        let states = join_all(
            providers
                .iter()
                .filter(|p| p.enabled)
                .map(|p| async move { (p.id, self.current(p, now).await) }),
        )
        .await;
        states
            .into_iter()
            .filter(|(_, r)| r.state == BreakerState::Open)
            .map(|(id, r)| (id, r.open_until))
            .collect()
    }

    async fn record(&self, provider: &Provider, outcome: ProviderOutcome, now: DateTime<Utc>) {
        let obs = match outcome {
            ProviderOutcome::Success => Observation::Success,
            ProviderOutcome::Failure(class) => Observation::Failure {
                class,
                message: class_message(class),
            },
        };
        self.observe(provider, &obs, now).await;
    }
}

fn class_message(class: crate::domain::failure::ErrorClass) -> &'static str {
    use crate::domain::failure::ErrorClass;
    match class {
        ErrorClass::ProviderError => "provider error",
        ErrorClass::SystemError => "network error",
        ErrorClass::NotFound => "not found",
        ErrorClass::NonRetryableClientError => "client error",
        ErrorClass::ClientAbort => "client abort",
    }
}
