//! Smart probing (`ENABLE_SMART_PROBING`): every `PROBE_INTERVAL_MS` (±10 % jitter, so
//! instances spread out) each provider whose breaker is OPEN gets the minimal test request with
//! `PROBE_TIMEOUT_MS`; a success moves it to HALF-OPEN early, so a recovered provider is back in
//! service within one interval instead of waiting out the whole open duration. At most one probe
//! per provider is in flight in this instance; the job stops when shutdown is signalled.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::breaker::BreakerState;
use crate::ports::clock::Clock;
use crate::ports::notifier::ProbeReport;
use crate::ports::upstream::UpstreamClient;

use super::breakers::BreakerService;
use super::provider_test::test_provider;
use super::provider_tokens::ProviderTokens;
use super::snapshot::SnapshotHolder;

/// The probe job.
pub struct Prober {
    snapshot: Arc<SnapshotHolder>,
    breakers: Arc<BreakerService>,
    upstream: Arc<dyn UpstreamClient>,
    tokens: Arc<ProviderTokens>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    timeout: Duration,
    in_flight: Mutex<HashSet<i64>>,
}

/// Removes the provider from the in-flight set when its probe ends (even on panic).
struct InFlight<'a>(&'a Prober, i64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.in_flight.lock() {
            set.remove(&self.1);
        }
    }
}

impl Prober {
    /// Builds the job.
    pub fn new(
        snapshot: Arc<SnapshotHolder>,
        breakers: Arc<BreakerService>,
        upstream: Arc<dyn UpstreamClient>,
        tokens: Arc<ProviderTokens>,
        clock: Arc<dyn Clock>,
        interval: Duration,
        timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            snapshot,
            breakers,
            upstream,
            tokens,
            clock,
            interval,
            timeout,
            in_flight: Mutex::new(HashSet::new()),
        })
    }

    fn jittered(&self) -> Duration {
        let f: f64 = rand::Rng::random_range(&mut rand::rng(), 0.9..1.1);
        self.interval.mul_f64(f)
    }

    /// Runs until `shutdown` turns true (or its sender is gone).
    pub fn spawn(
        self: &Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(me.jittered()) => {}
                    r = shutdown.changed() => {
                        if r.is_err() || *shutdown.borrow() {
                            return;
                        }
                        continue;
                    }
                }
                me.probe_open_providers(&shutdown);
            }
        })
    }

    /// Starts a probe for every OPEN provider that has none in flight.
    fn probe_open_providers(self: &Arc<Self>, shutdown: &tokio::sync::watch::Receiver<bool>) {
        let snap = self.snapshot.get();
        for p in snap.providers.iter().filter(|p| p.enabled) {
            let fresh = self
                .in_flight
                .lock()
                .map(|mut s| s.insert(p.id))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            let me = Arc::clone(self);
            let p = p.clone();
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let _guard = InFlight(&me, p.id);
                let now = me.clock.now();
                if me.breakers.current(&p, now).await.state != BreakerState::Open {
                    return;
                }
                let result = tokio::select! {
                    r = test_provider(me.upstream.as_ref(), &me.tokens, &p, None, me.timeout) => r,
                    _ = stop.changed() => return,
                };
                let detail = match result.status {
                    Some(s) => format!("{:?}, HTTP {s}, {} ms", result.outcome, result.latency_ms),
                    None => format!("{:?}, {} ms", result.outcome, result.latency_ms),
                };
                let report = ProbeReport {
                    provider_id: p.id,
                    provider_name: p.name.clone(),
                    recovered: result.ok,
                    detail: Some(detail),
                    at: me.clock.now(),
                };
                me.breakers.notifier().probe_result(&report).await;
                if result.ok {
                    me.breakers.probe_succeeded(&p, me.clock.now()).await;
                }
            });
        }
    }
}
