//! `FailOpenCounters`: a request must never fail because the shared counters store (Redis) is
//! down. Calls go to the primary while it answers; its first failure switches every call to the
//! in-memory fallback (one warning per outage), and a background probe switches back as soon as
//! the primary answers a ping again. Limits are then enforced per instance instead of globally,
//! which is the accepted trade-off of failing open.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::ports::counters::{
    ActiveSession, CounterMode, CounterResult, CounterStore, SessionFilter, SessionTouch,
    SlotOutcome,
};

/// How eagerly the wrapper gives up on, and comes back to, the primary.
#[derive(Debug, Clone, Copy)]
pub struct FailOpenConfig {
    /// Pause between two pings of the primary while degraded.
    pub probe_interval: Duration,
    /// Longest wait for one primary call; a slower answer counts as a failure.
    pub call_timeout: Duration,
}

impl Default for FailOpenConfig {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_secs(2),
            call_timeout: Duration::from_millis(750),
        }
    }
}

/// A snapshot for metrics and health output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailOpenStatus {
    /// `Shared` or `Degraded`.
    pub mode: CounterMode,
    /// Outages seen since start (each switch to the fallback counts once).
    pub outages: u64,
    /// Calls answered by the fallback since start.
    pub fallback_calls: u64,
    /// Wall-clock start of the current outage, when degraded.
    pub degraded_since: Option<SystemTime>,
    /// Length of the current outage so far, when degraded.
    pub degraded_for: Option<Duration>,
}

/// A store that can be probed: the fail-open core pings the primary through this.
pub trait Probe: Send + Sync {
    /// One cheap round trip.
    fn probe(&self) -> BoxFuture<'_, CounterResult<()>>;
}

impl Probe for dyn CounterStore {
    fn probe(&self) -> BoxFuture<'_, CounterResult<()>> {
        self.ping()
    }
}

/// The log lines of one wrapper, so operators can tell which store went away.
#[derive(Debug, Clone, Copy)]
pub struct FailOpenMessages {
    /// Logged once when an outage starts.
    pub degraded: &'static str,
    /// Logged once when the primary answers again.
    pub recovered: &'static str,
}

/// The fail-open mechanism shared by every wrapped store: route a call to the primary while it
/// answers (bounded by a timeout), switch to the fallback on its first failure (warned once
/// per outage), and probe in the background to switch back. Holds a probe task that stops when
/// this value is dropped or `shutdown` is called.
pub struct FailOpen<S: ?Sized + Probe + 'static> {
    state: Arc<State<S>>,
    probe: JoinHandle<()>,
}

/// What the calls and the probe task share.
struct State<S: ?Sized> {
    primary: Arc<S>,
    fallback: Arc<S>,
    call_timeout: Duration,
    messages: FailOpenMessages,
    degraded: AtomicBool,
    outages: AtomicU64,
    fallback_calls: AtomicU64,
    since: Mutex<Option<(Instant, SystemTime)>>,
}

impl<S: ?Sized> State<S> {
    /// Switches to the fallback; only the caller that makes the switch logs it.
    fn degrade(&self, op: &str, reason: &str) {
        if self
            .degraded
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.outages.fetch_add(1, Ordering::Relaxed);
            *self.lock_since() = Some((Instant::now(), SystemTime::now()));
            tracing::warn!(op, reason, "{}", self.messages.degraded);
        }
    }

    /// Switches back to the primary; only the caller that makes the switch logs it.
    fn recover(&self) {
        if self
            .degraded
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let outage = self.lock_since().take().map(|(at, _)| at.elapsed());
            tracing::info!(
                outage_ms = outage.map_or(0, |d| d.as_millis() as u64),
                "{}",
                self.messages.recovered
            );
        }
    }

    fn lock_since(&self) -> std::sync::MutexGuard<'_, Option<(Instant, SystemTime)>> {
        self.since.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<S: ?Sized + Probe + 'static> FailOpen<S> {
    /// Pings the primary once (bounded by `call_timeout`) to pick the starting mode, then
    /// spawns the probe task on the current tokio runtime.
    pub async fn start(
        primary: Arc<S>,
        fallback: Arc<S>,
        config: FailOpenConfig,
        messages: FailOpenMessages,
    ) -> Self {
        let state = Arc::new(State {
            primary,
            fallback,
            call_timeout: config.call_timeout,
            messages,
            degraded: AtomicBool::new(false),
            outages: AtomicU64::new(0),
            fallback_calls: AtomicU64::new(0),
            since: Mutex::new(None),
        });
        match tokio::time::timeout(config.call_timeout, state.primary.probe()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => state.degrade("startup ping", &e.to_string()),
            Err(_) => state.degrade("startup ping", "timed out"),
        }
        let probe = tokio::spawn(probe_loop(Arc::downgrade(&state), config.probe_interval));
        Self { state, probe }
    }

    /// Stops the probe task (also done on drop). Calls keep working; a degraded wrapper then
    /// stays on the fallback.
    pub fn shutdown(&self) {
        self.probe.abort();
    }

    /// `Shared` or `Degraded`.
    pub fn mode(&self) -> CounterMode {
        if self.state.degraded.load(Ordering::Acquire) {
            CounterMode::Degraded
        } else {
            CounterMode::Shared
        }
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

    /// Sends a call to the primary while healthy (bounded by the call timeout), else, or when
    /// it fails, to the fallback. Never returns the primary's error.
    pub async fn route<'a, T>(
        &'a self,
        op: &'static str,
        call: impl Fn(&'a S) -> BoxFuture<'a, CounterResult<T>>,
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

impl<S: ?Sized + Probe + 'static> Drop for FailOpen<S> {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

/// While degraded, pings the primary every `interval` and switches back when it answers. Ends
/// when the wrapper is gone.
async fn probe_loop<S: ?Sized + Probe>(state: Weak<State<S>>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        if state.degraded.load(Ordering::Acquire)
            && let Ok(Ok(())) =
                tokio::time::timeout(state.call_timeout, state.primary.probe()).await
        {
            state.recover();
        }
    }
}

/// Counters that fail open from a shared primary (Redis) to a local fallback (memory).
pub struct FailOpenCounters(FailOpen<dyn CounterStore>);

impl FailOpenCounters {
    /// Pings the primary once to pick the starting mode, then spawns the probe task.
    pub async fn start(
        primary: Arc<dyn CounterStore>,
        fallback: Arc<dyn CounterStore>,
        config: FailOpenConfig,
    ) -> Self {
        let messages = FailOpenMessages {
            degraded: "shared counters store unreachable: counting in memory (fail-open) until it answers",
            recovered: "shared counters store answers again: back to shared counting",
        };
        Self(FailOpen::start(primary, fallback, config, messages).await)
    }

    /// Stops the probe task (also done on drop).
    pub fn shutdown(&self) {
        self.0.shutdown();
    }

    /// Counts and timings for metrics and `/ready`.
    pub fn status(&self) -> FailOpenStatus {
        self.0.status()
    }

    async fn route<'a, T>(
        &'a self,
        op: &'static str,
        call: impl Fn(&'a (dyn CounterStore + 'static)) -> BoxFuture<'a, CounterResult<T>>,
    ) -> CounterResult<T> {
        self.0.route(op, call).await
    }
}

#[async_trait]
impl CounterStore for FailOpenCounters {
    async fn incr(&self, key: &str, amount: i64, ttl: Duration) -> CounterResult<i64> {
        self.route("incr", |s| s.incr(key, amount, ttl)).await
    }

    async fn get_counter(&self, key: &str) -> CounterResult<i64> {
        self.route("get_counter", |s| s.get_counter(key)).await
    }

    async fn rolling_add(
        &self,
        key: &str,
        now_ms: i64,
        member: &str,
        amount: i64,
        window_ms: i64,
    ) -> CounterResult<i64> {
        self.route("rolling_add", |s| {
            s.rolling_add(key, now_ms, member, amount, window_ms)
        })
        .await
    }

    async fn rolling_sum(&self, key: &str, now_ms: i64, window_ms: i64) -> CounterResult<i64> {
        self.route("rolling_sum", |s| s.rolling_sum(key, now_ms, window_ms))
            .await
    }

    async fn get(&self, key: &str) -> CounterResult<Option<String>> {
        self.route("get", |s| s.get(key)).await
    }

    async fn get_many(&self, keys: &[String]) -> CounterResult<Vec<Option<String>>> {
        self.route("get_many", |s| s.get_many(keys)).await
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CounterResult<()> {
        self.route("set", |s| s.set(key, value, ttl)).await
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CounterResult<bool> {
        self.route("set_if_absent", |s| s.set_if_absent(key, value, ttl))
            .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        ttl: Option<Duration>,
    ) -> CounterResult<bool> {
        self.route("compare_and_swap", |s| {
            s.compare_and_swap(key, expected, new, ttl)
        })
        .await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> CounterResult<bool> {
        self.route("expire", |s| s.expire(key, ttl)).await
    }

    async fn delete(&self, key: &str) -> CounterResult<()> {
        self.route("delete", |s| s.delete(key)).await
    }

    async fn acquire_slot(
        &self,
        key: &str,
        member: &str,
        now_ms: i64,
        ttl_ms: i64,
        limit: Option<i64>,
    ) -> CounterResult<SlotOutcome> {
        self.route("acquire_slot", |s| {
            s.acquire_slot(key, member, now_ms, ttl_ms, limit)
        })
        .await
    }

    async fn release_slot(&self, key: &str, member: &str) -> CounterResult<()> {
        self.route("release_slot", |s| s.release_slot(key, member))
            .await
    }

    async fn count_slots(&self, key: &str, now_ms: i64, ttl_ms: i64) -> CounterResult<i64> {
        self.route("count_slots", |s| s.count_slots(key, now_ms, ttl_ms))
            .await
    }

    async fn touch_session(&self, touch: &SessionTouch) -> CounterResult<()> {
        self.route("touch_session", |s| s.touch_session(touch))
            .await
    }

    async fn list_sessions(
        &self,
        now_ms: i64,
        ttl_ms: i64,
        filter: &SessionFilter,
    ) -> CounterResult<Vec<ActiveSession>> {
        self.route("list_sessions", |s| s.list_sessions(now_ms, ttl_ms, filter))
            .await
    }

    async fn end_session(&self, id: &str) -> CounterResult<Option<ActiveSession>> {
        self.route("end_session", |s| s.end_session(id)).await
    }

    async fn ping(&self) -> CounterResult<()> {
        self.route("ping", |s| s.ping()).await
    }

    fn mode(&self) -> CounterMode {
        self.0.mode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::counters::{CounterError, MockCounterStore};

    fn config() -> FailOpenConfig {
        FailOpenConfig {
            probe_interval: Duration::from_millis(20),
            call_timeout: Duration::from_millis(100),
        }
    }

    fn down() -> CounterError {
        CounterError::Unavailable("down".into())
    }

    #[tokio::test]
    async fn first_failure_switches_to_fallback_and_stays_there() {
        let mut primary = MockCounterStore::new();
        primary
            .expect_ping()
            .returning(|| Box::pin(async { Ok(()) }));
        primary
            .expect_incr()
            .times(1)
            .returning(|_, _, _| Box::pin(async { Err(down()) }));
        let mut fallback = MockCounterStore::new();
        fallback
            .expect_incr()
            .times(2)
            .returning(|_, amount, _| Box::pin(async move { Ok(amount) }));
        let config = FailOpenConfig {
            probe_interval: Duration::from_secs(3600),
            ..config()
        };
        let store = FailOpenCounters::start(Arc::new(primary), Arc::new(fallback), config).await;
        assert_eq!(store.mode(), CounterMode::Shared);
        assert_eq!(store.incr("k", 3, Duration::from_secs(1)).await.unwrap(), 3);
        assert_eq!(store.mode(), CounterMode::Degraded);
        // no second primary call (times(1) above)
        assert_eq!(store.incr("k", 4, Duration::from_secs(1)).await.unwrap(), 4);
        let status = store.status();
        assert_eq!((status.outages, status.fallback_calls), (1, 2));
    }

    #[tokio::test]
    async fn a_slow_primary_counts_as_down() {
        let mut primary = MockCounterStore::new();
        primary
            .expect_ping()
            .returning(|| Box::pin(async { Ok(()) }));
        primary.expect_get().returning(|_| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(None)
            })
        });
        let mut fallback = MockCounterStore::new();
        fallback
            .expect_get()
            .returning(|_| Box::pin(async { Ok(Some("local".into())) }));
        let store = FailOpenCounters::start(Arc::new(primary), Arc::new(fallback), config()).await;
        let started = Instant::now();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some("local"));
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(store.mode(), CounterMode::Degraded);
    }

    #[tokio::test]
    async fn probe_switches_back_when_the_primary_answers() {
        let mut primary = MockCounterStore::new();
        let mut seq = mockall::Sequence::new();
        primary
            .expect_ping()
            .times(3)
            .in_sequence(&mut seq)
            .returning(|| Box::pin(async { Err(down()) }));
        primary
            .expect_ping()
            .in_sequence(&mut seq)
            .returning(|| Box::pin(async { Ok(()) }));
        let fallback = MockCounterStore::new();
        let store = FailOpenCounters::start(Arc::new(primary), Arc::new(fallback), config()).await;
        assert_eq!(store.mode(), CounterMode::Degraded);
        let started = Instant::now();
        while store.mode() != CounterMode::Shared {
            assert!(started.elapsed() < Duration::from_secs(2));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(store.status().outages, 1);
        store.shutdown();
    }
}
