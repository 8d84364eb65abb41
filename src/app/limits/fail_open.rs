//! `FailOpenLimits`: the limits store's version of `app::fail_open`. Calls go to the shared
//! primary (Redis) while it answers; its first failure or timeout switches every call to the
//! in-memory fallback (one warning per outage) and the request proceeds; a probe switches back
//! when the primary answers a ping again. During an outage each instance counts on its own.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;

use crate::app::fail_open::{FailOpen, FailOpenConfig, FailOpenMessages, FailOpenStatus, Probe};
use crate::ports::counters::{CounterMode, CounterResult};
use crate::ports::limits::{CheckOutcome, CheckRequest, Counter, LimitStore};

impl Probe for dyn LimitStore {
    fn probe(&self) -> BoxFuture<'_, CounterResult<()>> {
        self.ping()
    }
}

/// A limits store failing open from a shared primary to a local fallback.
pub struct FailOpenLimits(FailOpen<dyn LimitStore>);

impl FailOpenLimits {
    /// Pings the primary once to pick the starting mode, then spawns the probe task.
    pub async fn start(
        primary: Arc<dyn LimitStore>,
        fallback: Arc<dyn LimitStore>,
        config: FailOpenConfig,
    ) -> Self {
        let messages = FailOpenMessages {
            degraded: "limits store unreachable: limits are counted per instance in memory (fail-open) until it answers",
            recovered: "limits store answers again: back to shared counting",
        };
        Self(FailOpen::start(primary, fallback, config, messages).await)
    }

    /// Counts and timings for metrics and `/ready`.
    pub fn status(&self) -> FailOpenStatus {
        self.0.status()
    }

    async fn route<'a, T>(
        &'a self,
        op: &'static str,
        call: impl Fn(&'a (dyn LimitStore + 'static)) -> BoxFuture<'a, CounterResult<T>>,
    ) -> CounterResult<T> {
        self.0.route(op, call).await
    }
}

#[async_trait]
impl LimitStore for FailOpenLimits {
    async fn check(&self, req: CheckRequest<'_>) -> CounterResult<CheckOutcome> {
        self.route("limits_check", |s| s.check(req)).await
    }

    async fn refresh_session(
        &self,
        now_ms: i64,
        counter: &Counter,
        member: &str,
    ) -> CounterResult<bool> {
        self.route("limits_refresh_session", |s| {
            s.refresh_session(now_ms, counter, member)
        })
        .await
    }

    async fn record(&self, at_ms: i64, amount: i64, counters: &[Counter]) -> CounterResult<()> {
        self.route("limits_record", |s| s.record(at_ms, amount, counters))
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
        seen: i64,
    ) -> CounterResult<()> {
        self.route("limits_replace", |s| {
            s.replace(now_ms, counter, entries, seen)
        })
        .await
    }

    async fn clear(&self, counters: &[Counter]) -> CounterResult<()> {
        self.route("limits_clear", |s| s.clear(counters)).await
    }

    async fn release_session(&self, counters: &[Counter], member: &str) -> CounterResult<()> {
        self.route("limits_release_session", |s| {
            s.release_session(counters, member)
        })
        .await
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
        self.0.mode()
    }
}
