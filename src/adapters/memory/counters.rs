//! `MemoryCounters`: the in-process `CounterStore`. Used alone for a single instance and as the
//! fail-open fallback when Redis is unreachable, so it is on the request hot path: keys are
//! spread over a fixed number of mutex-protected shards, expired keys are dropped lazily when
//! touched and by a cheap sweep of a shard every `SWEEP_EVERY` operations on it.
//!
//! Bounds: what the app stores here all expires — session bindings after `SESSION_TTL`,
//! breaker records 24 h after their last change (one per provider); limit windows live in
//! `MemoryLimits`. On top of that a shard holds at most `MAX_KEYS_PER_SHARD` keys: a new key in
//! a full shard first sweeps it, then evicts the soonest-expiring of a few keys (like Redis'
//! sampled eviction), so a flood of new session ids cannot grow memory without limit.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::entry::{Entry, Value, deadline, ms};
use super::rolling::RollingWindow;
use super::slots::SlotSet;
use crate::ports::counters::{
    ActiveSession, CounterMode, CounterResult, CounterStore, SessionBind, SessionFilter,
    SessionTouch, SlotOutcome, session_binding_key,
};

/// Number of shards (a power of two); enough to keep lock contention low on a few cores.
const SHARDS: usize = 32;
/// Operations on one shard between two sweeps of its expired keys.
const SWEEP_EVERY: u32 = 1024;
/// Most keys one shard holds (32 shards: about a million keys in all).
const MAX_KEYS_PER_SHARD: usize = 32_768;
/// Keys looked at to choose one to evict from a full shard.
const EVICTION_SAMPLE: usize = 16;

/// In-process counters with TTLs, the same semantics as the Redis adapter.
pub struct MemoryCounters {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

/// One lock's worth of keys.
#[derive(Default)]
struct Shard {
    /// Bounded by expiry (lazy, and the periodic sweep) and by `MAX_KEYS_PER_SHARD`.
    entries: super::FastMap<String, Entry>,
    ops: u32,
}

impl Shard {
    /// Counts an operation and sweeps the shard when its turn comes.
    fn tick(&mut self, now: Instant) {
        self.ops += 1;
        if self.ops >= SWEEP_EVERY {
            self.ops = 0;
            self.sweep(now);
        }
    }

    /// Drops every expired key of this shard.
    fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.is_live(now));
    }

    /// Stores `entry` under `key`, making room first when the shard is full: a sweep of expired
    /// keys, then eviction of the soonest-expiring (or, all eternal, any) of a few sampled keys.
    fn insert(&mut self, key: &str, entry: Entry, now: Instant) {
        if self.entries.len() >= MAX_KEYS_PER_SHARD && !self.entries.contains_key(key) {
            self.sweep(now);
            if self.entries.len() >= MAX_KEYS_PER_SHARD {
                let victim = self
                    .entries
                    .iter()
                    .take(EVICTION_SAMPLE)
                    .min_by_key(|(_, e)| e.expires_at.map_or((1, now), |at| (0, at)))
                    .map(|(k, _)| k.clone());
                if let Some(victim) = victim {
                    self.entries.remove(&victim);
                }
            }
        }
        self.entries.insert(key.to_owned(), entry);
    }

    /// Forgets `key` if it has expired, so the lookups that follow only see live keys.
    fn purge_if_expired(&mut self, key: &str, now: Instant) {
        if self.entries.get(key).is_some_and(|e| !e.is_live(now)) {
            self.entries.remove(key);
        }
    }

    /// The live entry under `key`, if any.
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        self.purge_if_expired(key, now);
        self.entries.get_mut(key)
    }
}

impl Default for MemoryCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCounters {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Drops every expired key now; the app may call it from a periodic job (the store also
    /// sweeps each shard by itself every few hundred operations).
    pub fn prune(&self) {
        let now = Instant::now();
        for shard in self.shards.iter() {
            lock(shard).sweep(now);
        }
    }

    /// Keys held, expired ones not yet swept included; for metrics and tests.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` on the shard owning `key` with the current instant, under its lock.
    fn with_shard<T>(&self, key: &str, f: impl FnOnce(&mut Shard, Instant) -> T) -> T {
        let idx = (self.hasher.hash_one(key) as usize) & (SHARDS - 1);
        let mut shard = lock(&self.shards[idx]);
        let now = Instant::now();
        shard.tick(now);
        f(&mut shard, now)
    }
}

/// The key of a session's listing entry (beside its binding, `session_binding_key`).
fn session_info_key(id: &str) -> String {
    format!("session_info:{id}")
}

/// Locks a shard, ignoring poisoning (a panic elsewhere must not stop counting).
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl CounterStore for MemoryCounters {
    async fn incr(&self, key: &str, amount: i64, ttl: Duration) -> CounterResult<i64> {
        Ok(self.with_shard(key, |shard, now| {
            if let Some(entry) = shard.live(key, now)
                && let Some(current) = entry.value.as_int()
            {
                let next = current.wrapping_add(amount);
                entry.value = Value::Int(next);
                if entry.expires_at.is_none() {
                    entry.expires_at = deadline(now, ttl);
                }
                return next;
            }
            let entry = Entry::new(Value::Int(amount), now, Some(ttl));
            shard.insert(key, entry, now);
            amount
        }))
    }

    async fn get_counter(&self, key: &str) -> CounterResult<i64> {
        Ok(self.with_shard(key, |shard, now| {
            shard
                .live(key, now)
                .and_then(|e| e.value.as_int())
                .unwrap_or(0)
        }))
    }

    async fn rolling_add(
        &self,
        key: &str,
        now_ms: i64,
        member: &str,
        amount: i64,
        window_ms: i64,
    ) -> CounterResult<i64> {
        // Same identity as the Redis adapter, which stores the amount inside the member.
        let member = format!("{member}:{amount}");
        let cutoff = now_ms.saturating_sub(window_ms);
        Ok(self.with_shard(key, |shard, now| {
            shard.purge_if_expired(key, now);
            let total = match shard.entries.get_mut(key) {
                Some(Entry {
                    value: Value::Rolling(window),
                    expires_at,
                }) => {
                    window.add(now_ms, &member, amount);
                    window.prune(cutoff);
                    *expires_at = deadline(now, ms(window_ms));
                    if !window.is_empty() {
                        return window.total();
                    }
                    0
                }
                _ => {
                    let mut window = RollingWindow::default();
                    window.add(now_ms, &member, amount);
                    window.prune(cutoff);
                    if !window.is_empty() {
                        let total = window.total();
                        let entry = Entry::new(Value::Rolling(window), now, Some(ms(window_ms)));
                        shard.insert(key, entry, now);
                        return total;
                    }
                    0
                }
            };
            // The window ended up empty: like Redis, an empty set is no key at all.
            shard.entries.remove(key);
            total
        }))
    }

    async fn rolling_sum(&self, key: &str, now_ms: i64, window_ms: i64) -> CounterResult<i64> {
        Ok(
            self.with_shard(key, |shard, now| match shard.live(key, now) {
                Some(Entry {
                    value: Value::Rolling(window),
                    ..
                }) => window.sum_after(now_ms.saturating_sub(window_ms)),
                _ => 0,
            }),
        )
    }

    async fn get(&self, key: &str) -> CounterResult<Option<String>> {
        Ok(self.with_shard(key, |shard, now| {
            shard.live(key, now).and_then(|e| e.value.as_string())
        }))
    }

    async fn get_many(&self, keys: &[String]) -> CounterResult<Vec<Option<String>>> {
        Ok(keys
            .iter()
            .map(|key| {
                self.with_shard(key, |shard, now| {
                    shard.live(key, now).and_then(|e| e.value.as_string())
                })
            })
            .collect())
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CounterResult<()> {
        self.with_shard(key, |shard, now| {
            let entry = Entry::new(Value::Str(value.to_owned()), now, ttl);
            shard.insert(key, entry, now);
        });
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CounterResult<bool> {
        Ok(self.with_shard(key, |shard, now| {
            if shard.live(key, now).is_some() {
                return false;
            }
            let entry = Entry::new(Value::Str(value.to_owned()), now, Some(ttl));
            shard.insert(key, entry, now);
            true
        }))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        ttl: Option<Duration>,
    ) -> CounterResult<bool> {
        Ok(self.with_shard(key, |shard, now| {
            let current = shard.live(key, now).and_then(|e| e.value.as_string());
            if current.as_deref() != expected {
                return false;
            }
            let entry = Entry::new(Value::Str(new.to_owned()), now, ttl);
            shard.insert(key, entry, now);
            true
        }))
    }

    async fn expire(&self, key: &str, ttl: Duration) -> CounterResult<bool> {
        Ok(
            self.with_shard(key, |shard, now| match shard.live(key, now) {
                Some(entry) => {
                    entry.expires_at = deadline(now, ttl);
                    true
                }
                None => false,
            }),
        )
    }

    async fn delete(&self, key: &str) -> CounterResult<()> {
        self.with_shard(key, |shard, _| shard.entries.remove(key));
        Ok(())
    }

    async fn acquire_slot(
        &self,
        key: &str,
        member: &str,
        now_ms: i64,
        ttl_ms: i64,
        limit: Option<i64>,
    ) -> CounterResult<SlotOutcome> {
        Ok(self.with_shard(key, |shard, now| {
            shard.purge_if_expired(key, now);
            if let Some(Entry {
                value: Value::Slots(set),
                expires_at,
            }) = shard.entries.get_mut(key)
            {
                let outcome = set.acquire(member, now_ms, ttl_ms, limit);
                *expires_at = deadline(now, ms(ttl_ms));
                if set.len() == 0 {
                    shard.entries.remove(key);
                }
                return outcome;
            }
            let mut set = SlotSet::default();
            let outcome = set.acquire(member, now_ms, ttl_ms, limit);
            if set.len() > 0 {
                let entry = Entry::new(Value::Slots(set), now, Some(ms(ttl_ms)));
                shard.insert(key, entry, now);
            }
            outcome
        }))
    }

    async fn release_slot(&self, key: &str, member: &str) -> CounterResult<()> {
        self.with_shard(key, |shard, now| {
            if let Some(Entry {
                value: Value::Slots(set),
                ..
            }) = shard.live(key, now)
            {
                set.release(member);
                if set.len() == 0 {
                    shard.entries.remove(key);
                }
            }
        });
        Ok(())
    }

    async fn count_slots(&self, key: &str, now_ms: i64, ttl_ms: i64) -> CounterResult<i64> {
        Ok(
            self.with_shard(key, |shard, now| match shard.live(key, now) {
                Some(Entry {
                    value: Value::Slots(set),
                    ..
                }) => set.count_after(now_ms.saturating_sub(ttl_ms)),
                _ => 0,
            }),
        )
    }

    async fn touch_session(&self, t: &SessionTouch) -> CounterResult<()> {
        let binding = session_binding_key(&t.id);
        let provider = t.provider_id.to_string();
        match t.bind {
            SessionBind::IfAbsent => {
                self.set_if_absent(&binding, &provider, t.ttl).await?;
            }
            SessionBind::Replace => self.set(&binding, &provider, Some(t.ttl)).await?,
            SessionBind::Refresh => {
                self.expire(&binding, t.ttl).await?;
            }
        }
        let bound = self
            .get(&binding)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(t.provider_id);
        let key = session_info_key(&t.id);
        self.with_shard(&key, |shard, now| {
            if let Some(Entry {
                value: Value::Session(s),
                expires_at,
            }) = shard.live(&key, now)
            {
                s.user_id = t.user_id;
                s.key_id = t.key_id;
                s.provider_id = Some(bound);
                s.model.clone_from(&t.model);
                s.client_format.clone_from(&t.client_format);
                s.last_ms = s.last_ms.max(t.now_ms);
                s.requests = s.requests.saturating_add(1);
                *expires_at = deadline(now, t.ttl);
                return;
            }
            let s = ActiveSession {
                id: t.id.clone(),
                user_id: t.user_id,
                key_id: t.key_id,
                provider_id: Some(bound),
                model: t.model.clone(),
                client_format: t.client_format.clone(),
                started_ms: t.now_ms,
                last_ms: t.now_ms,
                requests: 1,
                in_flight: None,
            };
            shard.insert(
                &key,
                Entry::new(Value::Session(Box::new(s)), now, Some(t.ttl)),
                now,
            );
        });
        Ok(())
    }

    async fn list_sessions(
        &self,
        now_ms: i64,
        ttl_ms: i64,
        filter: &SessionFilter,
    ) -> CounterResult<Vec<ActiveSession>> {
        let cutoff = now_ms.saturating_sub(ttl_ms);
        let limit = filter.capped_limit();
        // Bounded by the store's key cap; each shard keeps only its newest `limit` matches, so
        // the result buffer never exceeds SHARDS × limit entries.
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let now = Instant::now();
            let mut found: Vec<ActiveSession> = lock(shard)
                .entries
                .values()
                .filter(|e| e.is_live(now))
                .filter_map(|e| match &e.value {
                    Value::Session(s) if s.last_ms > cutoff && filter.matches(s) => {
                        Some((**s).clone())
                    }
                    _ => None,
                })
                .collect();
            found.sort_by_key(|s| std::cmp::Reverse(s.last_ms));
            found.truncate(limit);
            all.extend(found);
        }
        Ok(filter.apply(all, cutoff))
    }

    async fn end_session(&self, id: &str) -> CounterResult<Option<ActiveSession>> {
        let key = session_info_key(id);
        let info = self.with_shard(&key, |shard, now| {
            shard.purge_if_expired(&key, now);
            match shard.entries.remove(&key) {
                Some(Entry {
                    value: Value::Session(s),
                    ..
                }) => Some(*s),
                _ => None,
            }
        });
        let binding = session_binding_key(id);
        let bound = self.get(&binding).await?.and_then(|v| v.parse().ok());
        self.delete(&binding).await?;
        Ok(info.or_else(|| {
            bound.map(|p| ActiveSession {
                id: id.to_owned(),
                user_id: None,
                key_id: None,
                provider_id: Some(p),
                model: String::new(),
                client_format: String::new(),
                started_ms: 0,
                last_ms: 0,
                requests: 0,
                in_flight: None,
            })
        }))
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
    use super::*;

    #[test]
    fn sweep_drops_expired_keys_without_touching_them() {
        let store = MemoryCounters::new();
        let now = Instant::now();
        {
            let mut shard = lock(&store.shards[0]);
            for i in 0..10 {
                let ttl = Duration::from_millis(if i < 7 { 10 } else { 60_000 });
                let entry = Entry::new(Value::Int(i), now, Some(ttl));
                shard.entries.insert(format!("k{i}"), entry);
            }
            shard.sweep(now + Duration::from_millis(11));
            assert_eq!(shard.entries.len(), 3);
        }
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn every_operation_counts_towards_the_shard_sweep() {
        let mut shard = Shard::default();
        let now = Instant::now();
        let entry = Entry::new(Value::Int(1), now, Some(Duration::from_millis(1)));
        shard.entries.insert("old".into(), entry);
        let later = now + Duration::from_millis(2);
        for _ in 0..SWEEP_EVERY - 1 {
            shard.tick(later);
        }
        assert_eq!(shard.entries.len(), 1);
        shard.tick(later);
        assert!(shard.entries.is_empty());
    }

    #[test]
    fn a_full_shard_evicts_instead_of_growing() {
        let mut shard = Shard::default();
        let now = Instant::now();
        for i in 0..MAX_KEYS_PER_SHARD + 500 {
            let ttl = Duration::from_secs(60 + (i % 7) as u64);
            shard.insert(
                &format!("k{i}"),
                Entry::new(Value::Int(1), now, Some(ttl)),
                now,
            );
        }
        assert_eq!(shard.entries.len(), MAX_KEYS_PER_SHARD);
        // The newest key is always kept; rewriting an existing key evicts nothing.
        assert!(
            shard
                .entries
                .contains_key(&format!("k{}", MAX_KEYS_PER_SHARD + 499))
        );
        shard.insert("k0", Entry::new(Value::Int(2), now, None), now);
        assert_eq!(shard.entries.len(), MAX_KEYS_PER_SHARD);
    }

    #[tokio::test]
    async fn lazily_expired_key_reads_as_absent() {
        let store = MemoryCounters::new();
        store
            .set("k", "v", Some(Duration::from_millis(20)))
            .await
            .unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some("v"));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(store.get("k").await.unwrap(), None);
        assert!(!store.expire("k", Duration::from_secs(1)).await.unwrap());
    }

    #[tokio::test]
    async fn counters_read_back_as_strings_like_redis() {
        let store = MemoryCounters::new();
        store.incr("c", 5, Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.get("c").await.unwrap().as_deref(), Some("5"));
        store.set("s", "41", None).await.unwrap();
        assert_eq!(
            store.incr("s", 1, Duration::from_secs(60)).await.unwrap(),
            42
        );
    }
}
