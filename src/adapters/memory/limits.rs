//! `MemoryLimits`: the in-process `LimitStore`, for a single instance and as the fail-open
//! fallback. One mutex makes a check of many windows atomic, like the Redis script. Times come
//! from the caller; periods and windows expire by the passed time, and a sweep every
//! `SWEEP_EVERY` calls drops dead keys.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::ports::counters::{CounterMode, CounterResult};
use crate::ports::limits::{CheckOutcome, CheckRequest, Counter, LimitStore};

/// Calls between two sweeps of dead keys.
const SWEEP_EVERY: u32 = 4096;

/// Timestamped members with amounts (the Redis sorted set plus its running sum).
#[derive(Debug, Default)]
struct Timeline {
    by_time: BTreeMap<(i64, String), i64>,
    by_member: HashMap<String, i64>,
    sum: i64,
    /// Longest window this timeline is used with (for the sweep).
    window_ms: i64,
}

impl Timeline {
    /// Drops entries at or before `cutoff`.
    fn trim(&mut self, cutoff: i64) {
        while let Some(entry) = self.by_time.first_entry() {
            if entry.key().0 > cutoff {
                break;
            }
            let ((_, member), amount) = entry.remove_entry();
            self.by_member.remove(&member);
            self.sum -= amount;
        }
    }

    /// Adds or moves `member` to `at`.
    fn put(&mut self, member: &str, at: i64, amount: i64) {
        if let Some(old) = self.by_member.insert(member.to_owned(), at)
            && let Some(a) = self.by_time.remove(&(old, member.to_owned()))
        {
            self.sum -= a;
        }
        self.by_time.insert((at, member.to_owned()), amount);
        self.sum += amount;
    }

    fn count(&self) -> i64 {
        i64::try_from(self.by_time.len()).unwrap_or(i64::MAX)
    }

    fn oldest(&self) -> Option<i64> {
        self.by_time.keys().next().map(|(t, _)| *t)
    }

    fn newest(&self) -> Option<i64> {
        self.by_time.keys().next_back().map(|(t, _)| *t)
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Request, rolling-spend and session windows.
    timelines: HashMap<String, Timeline>,
    /// Period and total spend: value and expiry.
    values: HashMap<String, (i64, Option<i64>)>,
    /// Warm-up markers.
    markers: HashSet<String>,
    calls: u32,
    /// Latest time seen, for the sweep.
    latest_ms: i64,
}

impl Inner {
    fn tick(&mut self, now_ms: i64) {
        self.latest_ms = self.latest_ms.max(now_ms);
        self.calls += 1;
        if self.calls >= SWEEP_EVERY {
            self.calls = 0;
            let now = self.latest_ms;
            self.timelines
                .retain(|_, t| t.newest().is_some_and(|n| n > now - t.window_ms));
            self.values
                .retain(|_, (_, expires)| expires.is_none_or(|e| e > now));
        }
    }

    /// The timeline under `key`, trimmed to `window_ms` before `now_ms` (created when absent).
    fn timeline(&mut self, key: &str, now_ms: i64, window_ms: i64) -> &mut Timeline {
        let t = self.timelines.entry(key.to_owned()).or_default();
        t.window_ms = t.window_ms.max(window_ms);
        t.trim(now_ms.saturating_sub(window_ms));
        t
    }

    /// A period or total value, 0 when absent or expired at `now_ms`.
    fn value(&self, key: &str, now_ms: i64) -> i64 {
        match self.values.get(key) {
            Some((value, expires_at_ms)) if expires_at_ms.is_none_or(|e| e > now_ms) => *value,
            _ => 0,
        }
    }

    fn add_value(&mut self, key: &str, now_ms: i64, amount: i64, expires_at_ms: Option<i64>) {
        let current = self.value(key, now_ms);
        self.values.insert(
            key.to_owned(),
            (current.saturating_add(amount), expires_at_ms),
        );
    }

    /// Current value of a counter at `now_ms` (sessions: excluding `member`), plus the oldest
    /// entry of windowed counters.
    fn current(&mut self, counter: &Counter, now_ms: i64, member: &str) -> (i64, Option<i64>) {
        match counter {
            Counter::Requests { key, window_ms } => {
                let t = self.timeline(key, now_ms, *window_ms);
                (t.count(), t.oldest())
            }
            Counter::RollingSpend { key, window_ms } => {
                let t = self.timeline(key, now_ms, *window_ms);
                (t.sum, t.oldest())
            }
            Counter::Sessions { key, ttl_ms } => {
                let t = self.timeline(key, now_ms, *ttl_ms);
                let own = i64::from(t.by_member.contains_key(member));
                (t.count() - own, t.oldest())
            }
            Counter::PeriodSpend { key, .. } | Counter::TotalSpend { key } => {
                (self.value(key, now_ms), None)
            }
        }
    }
}

/// In-process limit counters with the same semantics as the Redis adapter.
#[derive(Debug, Default)]
pub struct MemoryLimits {
    inner: Mutex<Inner>,
}

impl MemoryLimits {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl LimitStore for MemoryLimits {
    async fn check(&self, req: CheckRequest<'_>) -> CounterResult<CheckOutcome> {
        let mut inner = self.lock();
        inner.tick(req.now_ms);
        for (index, check) in req.checks.iter().enumerate() {
            let (current, oldest_ms) = inner.current(&check.counter, req.now_ms, req.session_id);
            if current >= check.limit {
                return Ok(CheckOutcome::Rejected {
                    index,
                    current,
                    oldest_ms,
                });
            }
        }
        for check in req.checks {
            match &check.counter {
                Counter::Requests { key, window_ms } => {
                    inner
                        .timeline(key, req.now_ms, *window_ms)
                        .put(req.request_id, req.now_ms, 0);
                }
                Counter::Sessions { key, ttl_ms } => {
                    inner
                        .timeline(key, req.now_ms, *ttl_ms)
                        .put(req.session_id, req.now_ms, 0);
                }
                _ => {}
            }
        }
        Ok(CheckOutcome::Admitted)
    }

    async fn record(
        &self,
        at_ms: i64,
        member: &str,
        amount: i64,
        counters: &[Counter],
    ) -> CounterResult<()> {
        let mut inner = self.lock();
        inner.tick(at_ms);
        for counter in counters {
            match counter {
                Counter::RollingSpend { key, window_ms } => {
                    inner
                        .timeline(key, at_ms, *window_ms)
                        .put(member, at_ms, amount);
                }
                Counter::PeriodSpend { key, expires_at_ms } => {
                    inner.add_value(key, at_ms, amount, Some(*expires_at_ms));
                }
                Counter::TotalSpend { key } => inner.add_value(key, at_ms, amount, None),
                Counter::Requests { .. } | Counter::Sessions { .. } => {}
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        now_ms: i64,
        counters: &[Counter],
        member: Option<&str>,
    ) -> CounterResult<Vec<i64>> {
        let mut inner = self.lock();
        inner.tick(now_ms);
        let member = member.unwrap_or("");
        Ok(counters
            .iter()
            .map(|c| inner.current(c, now_ms, member).0)
            .collect())
    }

    async fn replace(
        &self,
        now_ms: i64,
        counter: &Counter,
        entries: &[(i64, i64)],
    ) -> CounterResult<()> {
        let mut inner = self.lock();
        inner.timelines.remove(counter.key());
        inner.values.remove(counter.key());
        let total: i64 = entries.iter().map(|(_, a)| *a).sum();
        match counter {
            Counter::RollingSpend { key, window_ms } => {
                let t = inner.timeline(key, now_ms, *window_ms);
                for (i, (at, amount)) in entries.iter().enumerate() {
                    t.put(&format!("rebuilt-{i}"), *at, *amount);
                }
                t.trim(now_ms.saturating_sub(*window_ms));
            }
            Counter::PeriodSpend { key, expires_at_ms } => {
                inner.add_value(key, now_ms, total, Some(*expires_at_ms));
            }
            Counter::TotalSpend { key } => inner.add_value(key, now_ms, total, None),
            Counter::Requests { .. } | Counter::Sessions { .. } => {}
        }
        Ok(())
    }

    async fn clear(&self, counters: &[Counter]) -> CounterResult<()> {
        let mut inner = self.lock();
        for c in counters {
            inner.timelines.remove(c.key());
            inner.values.remove(c.key());
        }
        Ok(())
    }

    async fn mark(&self, key: &str, _value: &str) -> CounterResult<bool> {
        Ok(self.lock().markers.insert(key.to_owned()))
    }

    async fn unmark(&self, key: &str) -> CounterResult<()> {
        self.lock().markers.remove(key);
        Ok(())
    }

    async fn ping(&self) -> CounterResult<()> {
        Ok(())
    }

    fn mode(&self) -> CounterMode {
        CounterMode::Local
    }
}
