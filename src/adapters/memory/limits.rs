//! `MemoryLimits`: the in-process `LimitStore`, for a single instance and as the fail-open
//! fallback. One mutex makes a check of many windows atomic, like the Redis script. Times come
//! from the caller; windows and periods expire by the passed time, and a sweep every
//! `SWEEP_EVERY` calls drops dead keys.
//!
//! Bounds: a request or rolling-spend window is a `BucketRing` (at most 101 buckets); a session
//! counter holds at most `session_cap(limit)` members (≤ 1000) and forgets them after the
//! session TTL; a period counter is one integer dropped after its period; a total is one
//! integer per entity. Keys only exist for windows the app checks or records (limited ones).

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::ring::BucketRing;
use crate::domain::windows::session_cap;
use crate::ports::counters::{CounterMode, CounterResult};
use crate::ports::limits::{CheckOutcome, CheckRequest, Counter, LimitStore};

/// Calls between two sweeps of dead keys.
const SWEEP_EVERY: u32 = 4096;

/// Sessions of one session counter with the time each was last seen.
#[derive(Debug, Default)]
struct SessionSet {
    /// Bounded by `session_cap` (see `put`) and by `ttl_ms` (see `trim`).
    members: super::FastMap<String, i64>,
    /// The session TTL this set is used with (for the sweep).
    ttl_ms: i64,
    /// No member was last seen before this instant: exact after a trim that looked at every
    /// member, a lower bound after that (refreshes only move members later). While it is after
    /// a trim's cutoff nothing can have expired, so `trim`, which runs on every check of the
    /// counter, skips its pass over the members: a provider's set can hold hundreds of
    /// sessions, and that pass was the memory adapter's largest cost per request.
    floor: i64,
}

impl SessionSet {
    /// Drops sessions idle for `ttl_ms` at `now_ms`.
    fn trim(&mut self, now_ms: i64) {
        let cutoff = now_ms.saturating_sub(self.ttl_ms);
        if self.floor > cutoff {
            return;
        }
        self.members.retain(|_, seen| *seen > cutoff);
        self.floor = self.members.values().min().copied().unwrap_or(i64::MAX);
    }

    /// Takes or refreshes `member`'s slot, then drops the least recently seen beyond `cap`.
    fn put(&mut self, member: &str, now_ms: i64, cap: i64) {
        match self.members.get_mut(member) {
            Some(seen) => *seen = (*seen).max(now_ms),
            None => {
                self.members.insert(member.to_owned(), now_ms);
                self.floor = self.floor.min(now_ms);
            }
        }
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        while self.members.len() > cap {
            let Some(oldest) = self
                .members
                .iter()
                .min_by_key(|(_, seen)| **seen)
                .map(|(m, _)| m.clone())
            else {
                break;
            };
            self.members.remove(&oldest);
        }
    }

    fn oldest(&self) -> Option<i64> {
        self.members.values().min().copied()
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Request and rolling-spend windows: one ring (≤ 101 buckets) per limited window; dropped
    /// by the sweep once every bucket left the window.
    rings: super::FastMap<String, BucketRing>,
    /// Session counters: dropped by the sweep once every session is idle past the TTL.
    sessions: super::FastMap<String, SessionSet>,
    /// Period and total spend: value and expiry (periods are dropped by the sweep after their
    /// end; totals stay, one per limited entity).
    values: super::FastMap<String, (i64, Option<i64>)>,
    /// Warm-up markers (one name in practice).
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
            self.sweep();
        }
    }

    /// Drops every key whose content no longer counts at the latest time seen.
    fn sweep(&mut self) {
        let now = self.latest_ms;
        self.rings.retain(|_, r| r.is_live(now));
        self.sessions.retain(|_, s| {
            s.trim(now);
            !s.members.is_empty()
        });
        self.values
            .retain(|_, (_, expires)| expires.is_none_or(|e| e > now));
    }

    /// The ring under `key`, trimmed at `now_ms` (created when absent).
    fn ring(&mut self, key: &str, now_ms: i64, window_ms: i64) -> &mut BucketRing {
        let r = self
            .rings
            .entry(key.to_owned())
            .or_insert_with(|| BucketRing::new(window_ms));
        r.trim(now_ms);
        r
    }

    /// The session set under `key`, trimmed at `now_ms` (created when absent).
    fn sessions(&mut self, key: &str, now_ms: i64, ttl_ms: i64) -> &mut SessionSet {
        let s = self.sessions.entry(key.to_owned()).or_default();
        s.ttl_ms = s.ttl_ms.max(ttl_ms);
        s.trim(now_ms);
        s
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

    /// Current value of a counter at `now_ms` (sessions: excluding `member`). Absent keys
    /// read as zero without being created.
    fn current(&mut self, counter: &Counter, now_ms: i64, member: &str) -> i64 {
        match counter {
            Counter::Requests { key, .. } | Counter::RollingSpend { key, .. } => {
                match self.rings.get_mut(key.as_str()) {
                    Some(r) => {
                        r.trim(now_ms);
                        r.sum()
                    }
                    None => 0,
                }
            }
            Counter::Sessions { key, ttl_ms } => match self.sessions.get(key.as_str()) {
                Some(_) => {
                    let s = self.sessions(key, now_ms, *ttl_ms);
                    let own = i64::from(s.members.contains_key(member));
                    s.members.len() as i64 - own
                }
                None => 0,
            },
            Counter::PeriodSpend { key, .. } | Counter::TotalSpend { key } => {
                self.value(key, now_ms)
            }
        }
    }

    /// The instant the oldest entry of a counter just read by [`Self::current`] counts as:
    /// asked only for a refused counter (a session set's is a pass over its members).
    fn oldest(&self, counter: &Counter) -> Option<i64> {
        match counter {
            Counter::Requests { key, .. } | Counter::RollingSpend { key, .. } => {
                self.rings.get(key.as_str()).and_then(BucketRing::oldest)
            }
            Counter::Sessions { key, .. } => {
                self.sessions.get(key.as_str()).and_then(SessionSet::oldest)
            }
            Counter::PeriodSpend { .. } | Counter::TotalSpend { .. } => None,
        }
    }

    /// Entries held: buckets, session members, values and markers.
    fn entries(&self) -> usize {
        self.rings.values().map(BucketRing::len).sum::<usize>()
            + self
                .sessions
                .values()
                .map(|s| s.members.len())
                .sum::<usize>()
            + self.values.len()
            + self.markers.len()
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

    /// Stored entries (ring buckets, session members, period/total values, markers): what the
    /// store's memory is proportional to; for metrics and the boundedness tests.
    pub fn entries(&self) -> usize {
        self.lock().entries()
    }

    /// Keys held (windows, session counters, values, markers).
    pub fn keys(&self) -> usize {
        let inner = self.lock();
        inner.rings.len() + inner.sessions.len() + inner.values.len() + inner.markers.len()
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
            let current = inner.current(&check.counter, req.now_ms, req.session_id);
            if current >= check.limit {
                return Ok(CheckOutcome::Rejected {
                    index,
                    current,
                    oldest_ms: inner.oldest(&check.counter),
                });
            }
        }
        for check in req.checks {
            match &check.counter {
                Counter::Requests { key, window_ms } => {
                    inner
                        .ring(key, req.now_ms, *window_ms)
                        .add(req.now_ms, 1, req.now_ms);
                }
                Counter::Sessions { key, ttl_ms } => {
                    inner.sessions(key, req.now_ms, *ttl_ms).put(
                        req.session_id,
                        req.now_ms,
                        session_cap(check.limit),
                    );
                }
                _ => {}
            }
        }
        Ok(CheckOutcome::Admitted)
    }

    async fn record(&self, at_ms: i64, amount: i64, counters: &[Counter]) -> CounterResult<()> {
        let mut inner = self.lock();
        inner.tick(at_ms);
        for counter in counters {
            match counter {
                Counter::RollingSpend { key, window_ms } => {
                    inner.ring(key, at_ms, *window_ms).add(at_ms, amount, at_ms);
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
            .map(|c| inner.current(c, now_ms, member))
            .collect())
    }

    async fn replace(
        &self,
        now_ms: i64,
        counter: &Counter,
        entries: &[(i64, i64)],
        seen: i64,
    ) -> CounterResult<()> {
        let mut inner = self.lock();
        let since = (inner.current(counter, now_ms, "") - seen).max(0);
        inner.rings.remove(counter.key());
        inner.values.remove(counter.key());
        let total: i64 = entries.iter().map(|(_, a)| *a).sum::<i64>() + since;
        match counter {
            Counter::RollingSpend { key, window_ms } => {
                let r = inner.ring(key, now_ms, *window_ms);
                for (at, amount) in entries {
                    r.add(*at, *amount, now_ms);
                }
                r.add(now_ms, since, now_ms);
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
            inner.rings.remove(c.key());
            inner.sessions.remove(c.key());
            inner.values.remove(c.key());
        }
        Ok(())
    }

    async fn refresh_session(
        &self,
        now_ms: i64,
        counter: &Counter,
        member: &str,
    ) -> CounterResult<bool> {
        let Counter::Sessions { key, ttl_ms } = counter else {
            return Ok(false);
        };
        let mut inner = self.lock();
        inner.tick(now_ms);
        if !inner.sessions.contains_key(key.as_str()) {
            return Ok(false);
        }
        // Idle members leave first (`sessions` trims), so an idled-out session is not revived.
        match inner.sessions(key, now_ms, *ttl_ms).members.get_mut(member) {
            Some(seen) => {
                *seen = (*seen).max(now_ms);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn release_session(&self, counters: &[Counter], member: &str) -> CounterResult<()> {
        let mut inner = self.lock();
        for c in counters {
            if let Counter::Sessions { key, .. } = c
                && let Some(set) = inner.sessions.get_mut(key.as_str())
            {
                set.members.remove(member);
            }
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

#[cfg(test)]
mod tests {
    use super::SessionSet;

    /// A session set that skips its pass while nothing can have expired holds exactly the
    /// members one that passes over them on every trim holds, through takes, refreshes,
    /// releases, evictions beyond the cap and trims at irregular times.
    #[test]
    fn trimming_only_when_something_can_expire_changes_no_answer() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let ttl = 1_000;
        let mut set = SessionSet {
            ttl_ms: ttl,
            ..SessionSet::default()
        };
        // The reference: every member with the time it was last seen.
        let mut model: std::collections::HashMap<String, i64> = Default::default();
        let mut now = 10_000i64;
        for _ in 0..20_000 {
            // Strictly later each step: no two members share a time, so evictions are unambiguous.
            now += rng.random_range(1..120);
            let member = format!("s{}", rng.random_range(0..12));
            set.trim(now);
            model.retain(|_, seen| *seen > now - ttl);
            match rng.random_range(0..10) {
                0 => {
                    set.members.remove(&member);
                    model.remove(&member);
                }
                1 => {
                    // A refresh of a member still held (the store's `refresh`).
                    if let Some(seen) = set.members.get_mut(&member) {
                        *seen = (*seen).max(now);
                    }
                    if let Some(seen) = model.get_mut(&member) {
                        *seen = (*seen).max(now);
                    }
                }
                _ => {
                    let cap = 8;
                    set.put(&member, now, cap);
                    let seen = model.entry(member).or_insert(now);
                    *seen = (*seen).max(now);
                    while model.len() > cap as usize {
                        let oldest = model
                            .iter()
                            .min_by_key(|(_, s)| **s)
                            .map(|(m, _)| m.clone())
                            .unwrap_or_default();
                        model.remove(&oldest);
                    }
                }
            }
            let mut held: Vec<_> = set.members.iter().map(|(m, s)| (m.clone(), *s)).collect();
            let mut want: Vec<_> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
            held.sort();
            want.sort();
            assert_eq!(held, want, "at {now}");
            assert_eq!(set.oldest(), model.values().min().copied());
        }
    }
}
