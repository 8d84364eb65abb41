//! Circuit breakers shared between instances: the domain state machine
//! ([`crate::domain::breaker`]) applied to a JSON record per provider in the counters store
//! (`breaker:{provider_id}`; Redis when configured, memory otherwise, and memory while Redis is
//! down through the fail-open wrapper). Every transition is a compare-and-swap on that record,
//! retried on conflict, so two instances never both perform the same transition (one
//! `HalfOpened`, one `Opened` event). Transitions go to the notifier.
//!
//! HALF-OPEN trials are slots in the same record: [`Breakers::admit`] takes one by CAS (so at most
//! `half_open_success_threshold` requests across all instances try a half-open provider at once),
//! [`Breakers::record`] gives it back, and an unreleased slot lapses after the provider's request
//! timeout. When the store fails, requests are admitted (fail open).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::breaker::{Admission, BreakerRecord, BreakerState, Observation, Step};
use crate::domain::provider::Provider;
use crate::ports::counters::CounterStore;
use crate::ports::notifier::Notifier;

use super::policy::{BreakerReadings, Breakers, ProviderOutcome};

/// How often a transition is retried when another instance changed the record meanwhile.
const MAX_CAS_TRIES: usize = 16;
/// How long a record outlives its open period (closed records expire after this too). With
/// one record per provider, this is what bounds breaker state in the counters store.
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
    /// Half-open trial requests in flight now.
    pub trials_in_flight: u32,
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
        self.transition_with(p, now, |r| (step(r), ()))
            .await
            .map(|(r, ())| r)
    }

    /// [`Self::transition`] for a step that also decides something (returned with the record
    /// from the attempt that was saved).
    async fn transition_with<T>(
        &self,
        p: &Provider,
        now: DateTime<Utc>,
        step: impl Fn(&BreakerRecord) -> (Step, T),
    ) -> Option<(BreakerRecord, T)> {
        let key = breaker_key(p.id);
        for _ in 0..MAX_CAS_TRIES {
            let (raw, cur) = self.load(p.id).await?;
            let ((next, event), decision) = step(&cur);
            if next == cur && event.is_none() {
                return Some((cur, decision));
            }
            let Ok(json) = serde_json::to_string(&next) else {
                return Some((cur, decision));
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
                    return Some((next, decision));
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

    /// Where transitions are reported (smart probing reports its verdicts there too).
    pub fn notifier(&self) -> &Arc<dyn Notifier> {
        &self.notifier
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
        Self::view_of(p, r, now)
    }

    /// The admin views of many breakers, read in one `get_many` (one round trip with Redis,
    /// whatever the number of providers: the providers page lists them all). A breaker whose
    /// OPEN period just ran out is moved on and saved as `current` does (rare).
    pub async fn views(&self, providers: &[&Provider], now: DateTime<Utc>) -> Vec<BreakerView> {
        let keys: Vec<String> = providers.iter().map(|p| breaker_key(p.id)).collect();
        let raws = match self.counters.get_many(&keys).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "[CircuitBreaker] states unreadable");
                vec![None; providers.len()]
            }
        };
        let mut out = Vec::with_capacity(providers.len());
        for (p, raw) in providers.iter().copied().zip(raws) {
            let rec = raw
                .as_deref()
                .and_then(|s| serde_json::from_str::<BreakerRecord>(s).ok())
                .unwrap_or_default();
            let (eff, event) = rec.effective(&p.breaker, now);
            let eff = if event.is_some() {
                self.current(p, now).await
            } else {
                eff
            };
            out.push(Self::view_of(p, eff, now));
        }
        out
    }

    fn view_of(p: &Provider, r: BreakerRecord, now: DateTime<Utc>) -> BreakerView {
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
            trials_in_flight: u32::try_from(r.live_trials(now)).unwrap_or(u32::MAX),
            last_error: r.last_error,
        }
    }

    /// How long a half-open trial of `p` may stay unreleased: its request timeout (at least 1 s).
    fn trial_ttl(p: &Provider) -> chrono::Duration {
        chrono::Duration::milliseconds(p.timeouts.request_timeout_ms.max(1000))
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
    async fn readings<'a>(
        &self,
        providers: &[&'a Provider],
        now: DateTime<Utc>,
    ) -> BreakerReadings {
        let enabled: Vec<&Provider> = providers.iter().copied().filter(|p| p.enabled).collect();
        let keys: Vec<String> = enabled.iter().map(|p| breaker_key(p.id)).collect();
        let raws = match self.counters.get_many(&keys).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "[CircuitBreaker] states unreadable");
                return BreakerReadings::default();
            }
        };
        let mut out = BreakerReadings::default();
        let mut expired = Vec::new();
        for (p, raw) in enabled.into_iter().zip(raws) {
            let rec = raw
                .as_deref()
                .and_then(|s| serde_json::from_str::<BreakerRecord>(s).ok())
                .unwrap_or_default();
            let (eff, event) = rec.effective(&p.breaker, now);
            if event.is_some() {
                // Rare (an OPEN breaker just ran out): saved and notified like `current` does.
                expired.push(p);
                continue;
            }
            sort_reading(&mut out, p, &eff, now);
        }
        for p in expired {
            let eff = self.current(p, now).await;
            sort_reading(&mut out, p, &eff, now);
        }
        out
    }

    async fn admit(&self, provider: &Provider, now: DateTime<Utc>) -> Admission {
        let ttl = Self::trial_ttl(provider);
        let decided = self
            .transition_with(provider, now, |r| r.admit(&provider.breaker, ttl, now))
            .await;
        match decided {
            Some((_, admission)) => admission,
            // The store failed (the fail-open wrapper already fell back): let the request go.
            None => Admission::Pass,
        }
    }

    async fn record(&self, provider: &Provider, outcome: ProviderOutcome, now: DateTime<Utc>) {
        let message;
        let obs = match outcome {
            ProviderOutcome::Success => Observation::Success,
            ProviderOutcome::Failure { class, message: m } => {
                message = redact_key(&m, &provider.api_key);
                Observation::Failure {
                    class,
                    message: if message.trim().is_empty() {
                        class_message(class)
                    } else {
                        &message
                    },
                }
            }
        };
        self.observe(provider, &obs, now).await;
    }
}

/// Files one provider's effective record into the readings.
fn sort_reading(out: &mut BreakerReadings, p: &Provider, eff: &BreakerRecord, now: DateTime<Utc>) {
    if let Some(until) = eff.unavailable(&p.breaker, now) {
        out.unavailable.insert(p.id, until);
    } else if eff.state == BreakerState::Closed {
        out.closed.insert(p.id);
        if eff.failure_count == 0 {
            out.clean.insert(p.id);
        }
    }
}

/// `message` with the provider's API key masked, should an upstream echo it back.
fn redact_key(message: &str, api_key: &str) -> String {
    if api_key.len() < 8 {
        return message.to_string();
    }
    message.replace(api_key, "[redacted]")
}

fn class_message(class: crate::domain::failure::ErrorClass) -> &'static str {
    use crate::domain::failure::ErrorClass;
    match class {
        ErrorClass::ProviderError => "provider error",
        ErrorClass::SystemError => "network error",
        ErrorClass::NotFound => "not found",
        ErrorClass::NonRetryableClientError => "client error",
        ErrorClass::RectifyThinkingSignature => "thinking signature rejected",
        ErrorClass::ClientAbort => "client abort",
    }
}
