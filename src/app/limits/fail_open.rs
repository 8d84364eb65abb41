//! `FailOpenLimits`: the limits store's version of `app::fail_open`. Calls go to the shared
//! primary (Redis) while it answers; its first failure or timeout switches every call to the
//! in-memory fallback (one warning per outage) and the request proceeds; a probe switches back
//! when the primary answers a ping again. During an outage each instance counts on its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::app::fail_open::{FailOpenConfig, FailOpenStatus};
use crate::ports::counters::{CounterMode, CounterResult};
use crate::ports::limits::{CheckOutcome, CheckRequest, Counter, LimitStore};

/// What calls and the probe share.
struct State {
    primary: Arc<dyn LimitStore>,
    fallback: Arc<dyn LimitStore>,
    call_timeout: Duration,
    degraded: AtomicBool,
    outages: AtomicU64,
    fallback_calls: AtomicU64,
    since: Mutex<Option<(Instant, SystemTime)>>,
}

impl State {
    fn lock_since(&self) -> std::sync::MutexGuard<'_, Option<(Instant, SystemTime)>> {
        self.since.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn degrade(&self, op: &str, reason: &str) {
        if self
            .degraded
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.outages.fetch_add(1, Ordering::Relaxed);
            *self.lock_since() = Some((Instant::now(), SystemTime::now()));
            tracing::warn!(
                op,
                reason,
                "limits store unreachable: limits are counted per instance in memory (fail-open) until it answers"
            );
        }
    }

    fn recover(&self) {
        if self
            .degraded
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let outage = self.lock_since().take().map(|(at, _)| at.elapsed());
            tracing::info!(
                outage_ms = outage.map_or(0, |d| d.as_millis() as u64),
                "limits store answers again: back to shared counting"
            );
        }
    }
}

/// A limits store failing open from a shared primary to a local fallback.
pub struct FailOpenLimits {
    state: Arc<State>,
    probe: JoinHandle<()>,
}

impl FailOpenLimits {
    /// Pings the primary once to pick the starting mode, then spawns the probe task.
    pub async fn start(
        primary: Arc<dyn LimitStore>,
        fallback: Arc<dyn LimitStore>,
        config: FailOpenConfig,
    ) -> Self {
        let state = Arc::new(State {
            primary,
            fallback,
            call_timeout: config.call_timeout,
            degraded: AtomicBool::new(false),
            outages: AtomicU64::new(0),
            fallback_calls: AtomicU64::new(0),
            since: Mutex::new(None),
        });
        match tokio::time::timeout(config.call_timeout, state.primary.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => state.degrade("startup ping", &e.to_string()),
            Err(_) => state.degrade("startup ping", "timed out"),
        }
        let probe = tokio::spawn(probe_loop(Arc::downgrade(&state), config.probe_interval));
        Self { state, probe }
    }

    /// Counts and timings for metrics and `/ready`.
    pub fn status(&self) -> FailOpenStatus {
        let since = *self.state.lock_since();
        FailOpenStatus {
            mode: self.mode(),
            outages: self.state.outages.load(Ordering::Relaxed),
            fallback_calls: self.state.fallback_calls.load(Ordering::Relaxed),
            degraded_since: since.map(|(_, wall)| wall),
            degraded_for: since.map(|(at, _)| at.elapsed()),
        }
    }

    async fn route<'a, T>(
        &'a self,
        op: &'static str,
        call: impl Fn(&'a dyn LimitStore) -> BoxFuture<'a, CounterResult<T>>,
    ) -> CounterResult<T> {
        let state = &self.state;
        if !state.degraded.load(Ordering::Acquire) {
            match tokio::time::timeout(state.call_timeout, call(state.primary.as_ref())).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => state.degrade(op, &e.to_string()),
                Err(_) => state.degrade(op, "timed out"),
            }
        }
        state.fallback_calls.fetch_add(1, Ordering::Relaxed);
        call(state.fallback.as_ref()).await
    }
}

impl Drop for FailOpenLimits {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

async fn probe_loop(state: Weak<State>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        if state.degraded.load(Ordering::Acquire)
            && let Ok(Ok(())) = tokio::time::timeout(state.call_timeout, state.primary.ping()).await
        {
            state.recover();
        }
    }
}

#[async_trait]
impl LimitStore for FailOpenLimits {
    async fn check(&self, req: CheckRequest<'_>) -> CounterResult<CheckOutcome> {
        self.route("limits_check", |s| s.check(req)).await
    }

    async fn record(
        &self,
        at_ms: i64,
        member: &str,
        amount: i64,
        counters: &[Counter],
    ) -> CounterResult<()> {
        self.route("limits_record", |s| {
            s.record(at_ms, member, amount, counters)
        })
        .await
    }

    async fn read(
        &self,
        now_ms: i64,
        counters: &[Counter],
        member: Option<&str>,
    ) -> CounterResult<Vec<i64>> {
        self.route("limits_read", |s| s.read(now_ms, counters, member))
            .await
    }

    async fn replace(
        &self,
        now_ms: i64,
        counter: &Counter,
        entries: &[(i64, i64)],
    ) -> CounterResult<()> {
        self.route("limits_replace", |s| s.replace(now_ms, counter, entries))
            .await
    }

    async fn clear(&self, counters: &[Counter]) -> CounterResult<()> {
        self.route("limits_clear", |s| s.clear(counters)).await
    }

    async fn mark(&self, key: &str, value: &str) -> CounterResult<bool> {
        self.route("limits_mark", |s| s.mark(key, value)).await
    }

    async fn unmark(&self, key: &str) -> CounterResult<()> {
        self.route("limits_unmark", |s| s.unmark(key)).await
    }

    async fn ping(&self) -> CounterResult<()> {
        self.route("limits_ping", |s| s.ping()).await
    }

    fn mode(&self) -> CounterMode {
        if self.state.degraded.load(Ordering::Acquire) {
            CounterMode::Degraded
        } else {
            CounterMode::Shared
        }
    }
}
