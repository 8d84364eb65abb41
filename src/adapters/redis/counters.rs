//! `RedisCounters`: the shared `CounterStore`, so limits and slots hold across cch instances.
//! Every key gets the configured prefix; multi-step operations run as Lua scripts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::{RedisResult, Value, cmd};
use async_trait::async_trait;

use super::call::Caller;
use super::connection::{Connection, Link, RedisTimeouts};
use super::scripts::{Scripts, TOUCH_SESSION_LUA};
use super::topology::Topology;
use super::write_batch::{ArgRoom, ScriptCall, WriteBatch, send_alone};
use crate::ports::counters::{
    ActiveSession, CounterError, CounterMode, CounterResult, CounterStore, SessionBind,
    SessionFilter, SessionTouch, SlotOutcome, session_binding_key,
};

/// Longest TTL sent to Redis (100 years), so huge durations never overflow its expire math.
const MAX_TTL_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// The sorted set indexing active sessions by last activity (bounded by `MAX_INDEXED_SESSIONS`
/// and trimmed of idle members on every write).
const SESSION_INDEX: &str = "sessions:index";
/// Most sessions the index keeps (the least recently seen are dropped first).
const MAX_INDEXED_SESSIONS: i64 = 100_000;
/// Most index members one filtered listing looks at (newest first).
const MAX_SESSION_SCAN: usize = 5_000;
/// Fields of a session's listing entry, in the order `session_from_fields` reads them.
const SESSION_FIELDS: [&str; 8] = ["u", "k", "p", "m", "f", "s", "l", "n"];

/// The key of a session's listing entry (beside its binding, `session_binding_key`).
fn session_info_key(id: &str) -> String {
    format!("session_info:{id}")
}

/// A listing entry from its `SESSION_FIELDS` values; `None` when it no longer exists.
fn session_from_fields(id: &str, f: &[Option<String>]) -> Option<ActiveSession> {
    let get = |i: usize| f.get(i).cloned().flatten();
    let int = |i: usize| get(i).and_then(|v| v.parse::<i64>().ok());
    let last_ms = int(6)?;
    Some(ActiveSession {
        id: id.to_owned(),
        user_id: int(0),
        key_id: int(1),
        provider_id: int(2),
        model: get(3).unwrap_or_default(),
        client_format: get(4).unwrap_or_default(),
        started_ms: int(5).unwrap_or(last_ms),
        last_ms,
        requests: int(7).unwrap_or(0),
        in_flight: None,
    })
}

/// Counters in Redis behind a self-healing connection.
pub struct RedisCounters {
    caller: Caller,
    /// Writes off the answer's path, sent together (its task ends with this store).
    batch: WriteBatch,
    prefix: String,
    scripts: Scripts,
    touch_session_source: Arc<str>,
}

impl RedisCounters {
    /// Connects with the default (fail-fast) timeouts. Fails only on an invalid URL: when Redis
    /// is down the store is returned anyway, its calls fail until Redis answers again.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self, CounterError> {
        Self::connect_with(url, key_prefix, RedisTimeouts::default()).await
    }

    /// `connect` with explicit timeouts.
    pub async fn connect_with(
        url: &str,
        key_prefix: &str,
        timeouts: RedisTimeouts,
    ) -> Result<Self, CounterError> {
        let topology = Topology::parse(url)
            .map_err(|e| CounterError::Unavailable(format!("invalid Redis URL: {e}")))?;
        let conn = Connection::open(&topology, &timeouts)
            .await
            .map_err(|e| CounterError::Unavailable(format!("Redis client setup: {e}")))?;
        // In a Cluster a script may only touch keys of one slot: every key shares the prefix's
        // hash tag (one slot for all: Cluster for availability, not for sharding).
        let prefix = if topology.is_cluster() && !key_prefix.contains('{') {
            format!(
                "{{{}}}",
                if key_prefix.is_empty() {
                    "cch"
                } else {
                    key_prefix
                }
            )
        } else {
            key_prefix.to_owned()
        };
        let caller = Caller::new(conn, timeouts.operation, timeouts.abandoned_after);
        let store = Self {
            batch: WriteBatch::start(caller.clone(), timeouts.write_linger),
            caller,
            prefix,
            scripts: Scripts::load(),
            touch_session_source: Arc::from(TOUCH_SESSION_LUA),
        };
        match tokio::time::timeout(timeouts.initial_connect, store.ping()).await {
            Ok(Ok(())) => tracing::info!(prefix = key_prefix, "connected to Redis"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Redis unreachable at startup; will keep trying")
            }
            Err(_) => tracing::warn!("Redis did not answer at startup; will keep trying"),
        }
        Ok(store)
    }

    /// The prefix every key of this store starts with.
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespaced Redis key.
    pub(super) fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    /// Runs one call on the current connection within the operation timeout (see `Caller`).
    pub(super) async fn run<T, F, Fut>(&self, op: &'static str, call: F) -> CounterResult<T>
    where
        F: FnOnce(Link) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.caller.run(op, call).await
    }

    /// Pipelines of batched writes sent so far: with writes spread evenly, requests per
    /// pipeline shows how well the round trips after answers are shared.
    pub fn write_batches_sent(&self) -> u64 {
        self.batch.batches_sent()
    }

    /// Sends a script call now, on its own (a caller waits for the answer).
    pub(super) async fn run_script(
        &self,
        op: &'static str,
        call: ScriptCall,
    ) -> CounterResult<Value> {
        send_alone(&self.caller, op, call).await
    }

    /// Sends a script call with the next batch of writes no client waits for (see
    /// `write_batch`) and returns its reply.
    pub(super) async fn run_batched(
        &self,
        op: &'static str,
        call: ScriptCall,
    ) -> CounterResult<Value> {
        self.batch.send(op, call).await
    }
}

/// A TTL in whole milliseconds as Redis wants it (at least 1, at most `MAX_TTL_MS`).
fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis())
        .unwrap_or(MAX_TTL_MS)
        .clamp(1, MAX_TTL_MS)
}

#[async_trait]
impl CounterStore for RedisCounters {
    async fn incr(&self, key: &str, amount: i64, ttl: Duration) -> CounterResult<i64> {
        let key = self.key(key);
        self.run("incr", |mut c| async move {
            let mut inv = self.scripts.incr.key(&key);
            inv.arg(amount).arg(ttl_ms(ttl));
            inv.invoke_async(&mut c).await
        })
        .await
    }

    async fn get_counter(&self, key: &str) -> CounterResult<i64> {
        let key = self.key(key);
        let raw: Option<String> = self
            .run("get_counter", |mut c| async move {
                cmd("GET").arg(&key).query_async(&mut c).await
            })
            .await?;
        Ok(raw.and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    async fn rolling_add(
        &self,
        key: &str,
        now_ms: i64,
        member: &str,
        amount: i64,
        window_ms: i64,
    ) -> CounterResult<i64> {
        let key = self.key(key);
        let member = format!("{member}:{amount}");
        let cutoff = now_ms.saturating_sub(window_ms);
        self.run("rolling_add", |mut c| async move {
            let mut inv = self.scripts.rolling_add.key(&key);
            inv.arg(now_ms).arg(&member).arg(cutoff).arg(window_ms);
            inv.invoke_async(&mut c).await
        })
        .await
    }

    async fn rolling_sum(&self, key: &str, now_ms: i64, window_ms: i64) -> CounterResult<i64> {
        let key = self.key(key);
        let cutoff = now_ms.saturating_sub(window_ms);
        self.run("rolling_sum", |mut c| async move {
            let mut inv = self.scripts.rolling_sum.key(&key);
            inv.arg(cutoff);
            inv.invoke_async(&mut c).await
        })
        .await
    }

    async fn get(&self, key: &str) -> CounterResult<Option<String>> {
        let key = self.key(key);
        self.run("get", |mut c| async move {
            cmd("GET").arg(&key).query_async(&mut c).await
        })
        .await
    }

    async fn get_many(&self, keys: &[String]) -> CounterResult<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.run("mget", |mut c| async move {
            cmd("MGET").arg(&keys).query_async(&mut c).await
        })
        .await
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CounterResult<()> {
        let key = self.key(key);
        self.run("set", |mut c| async move {
            let mut set = cmd("SET");
            set.arg(&key).arg(value);
            if let Some(ttl) = ttl {
                set.arg("PX").arg(ttl_ms(ttl));
            }
            set.query_async::<()>(&mut c).await
        })
        .await
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CounterResult<bool> {
        let key = self.key(key);
        let reply: Value = self
            .run("set_if_absent", |mut c| async move {
                cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms(ttl))
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        ttl: Option<Duration>,
    ) -> CounterResult<bool> {
        let key = self.key(key);
        let swapped: i64 = self
            .run("compare_and_swap", |mut c| async move {
                let mut inv = self.scripts.compare_and_swap.key(&key);
                inv.arg(if expected.is_some() { "1" } else { "0" })
                    .arg(expected.unwrap_or(""))
                    .arg(new)
                    .arg(ttl.map_or(0, ttl_ms));
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(swapped == 1)
    }

    async fn expire(&self, key: &str, ttl: Duration) -> CounterResult<bool> {
        let key = self.key(key);
        let set: i64 = self
            .run("expire", |mut c| async move {
                cmd("PEXPIRE")
                    .arg(&key)
                    .arg(ttl_ms(ttl))
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(set == 1)
    }

    async fn delete(&self, key: &str) -> CounterResult<()> {
        let key = self.key(key);
        self.run("delete", |mut c| async move {
            cmd("DEL").arg(&key).query_async::<()>(&mut c).await
        })
        .await
    }

    async fn acquire_slot(
        &self,
        key: &str,
        member: &str,
        now_ms: i64,
        ttl_ms: i64,
        limit: Option<i64>,
    ) -> CounterResult<SlotOutcome> {
        let key = self.key(key);
        let cutoff = now_ms.saturating_sub(ttl_ms);
        let limit = limit.map(|l| l.to_string()).unwrap_or_default();
        let (acquired, active): (i64, i64) = self
            .run("acquire_slot", |mut c| async move {
                let mut inv = self.scripts.acquire_slot.key(&key);
                inv.arg(member)
                    .arg(now_ms)
                    .arg(cutoff)
                    .arg(ttl_ms.max(1))
                    .arg(&limit);
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(SlotOutcome {
            acquired: acquired == 1,
            active,
        })
    }

    async fn release_slot(&self, key: &str, member: &str) -> CounterResult<()> {
        let key = self.key(key);
        self.run("release_slot", |mut c| async move {
            cmd("ZREM")
                .arg(&key)
                .arg(member)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn count_slots(&self, key: &str, now_ms: i64, ttl_ms: i64) -> CounterResult<i64> {
        let key = self.key(key);
        let min = format!("({}", now_ms.saturating_sub(ttl_ms));
        self.run("count_slots", |mut c| async move {
            cmd("ZCOUNT")
                .arg(&key)
                .arg(&min)
                .arg("+inf")
                .query_async(&mut c)
                .await
        })
        .await
    }

    async fn touch_session(&self, t: &SessionTouch) -> CounterResult<()> {
        let (binding, info) = (session_binding_key(&t.id), session_info_key(&t.id));
        let keys = [binding.as_str(), info.as_str(), SESSION_INDEX];
        let mode = match t.bind {
            SessionBind::IfAbsent => "n",
            SessionBind::Replace => "r",
            SessionBind::Refresh => "e",
        };
        let ttl = ttl_ms(t.ttl);
        let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        let room = ArgRoom {
            args: 11,
            bytes: 120 + t.model.len() + t.client_format.len() + t.id.len(),
        };
        let mut call = ScriptCall::new(
            self.scripts.touch_session.get_hash(),
            &self.touch_session_source,
            &self.prefix,
            &keys,
            room,
        );
        call.cmd
            .arg(mode)
            .arg(t.provider_id)
            .arg(ttl)
            .arg(t.now_ms)
            .arg(opt(t.user_id))
            .arg(opt(t.key_id))
            .arg(&t.model)
            .arg(&t.client_format)
            .arg(&t.id)
            .arg(t.now_ms.saturating_sub(ttl))
            .arg(MAX_INDEXED_SESSIONS);
        self.run_batched("touch_session", call).await.map(|_| ())
    }

    async fn list_sessions(
        &self,
        now_ms: i64,
        ttl_ms: i64,
        filter: &SessionFilter,
    ) -> CounterResult<Vec<ActiveSession>> {
        let index = self.key(SESSION_INDEX);
        let min = format!("({}", now_ms.saturating_sub(ttl_ms));
        let filtered =
            filter.user_id.is_some() || filter.key_id.is_some() || filter.provider_id.is_some();
        let scan = if filtered {
            MAX_SESSION_SCAN
        } else {
            filter.capped_limit()
        };
        let ids: Vec<String> = self
            .run("list_sessions", |mut c| async move {
                cmd("ZREVRANGEBYSCORE")
                    .arg(&index)
                    .arg("+inf")
                    .arg(&min)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(scan)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let info_keys: Vec<String> = ids
            .iter()
            .map(|id| self.key(&session_info_key(id)))
            .collect();
        let rows: Vec<Vec<Option<String>>> = self
            .run("list_sessions", |mut c| async move {
                let mut p = ::redis::pipe();
                for k in &info_keys {
                    p.cmd("HMGET").arg(k).arg(&SESSION_FIELDS[..]);
                }
                p.query_async(&mut c).await
            })
            .await?;
        let all = ids
            .iter()
            .zip(rows.iter())
            .filter_map(|(id, f)| session_from_fields(id, f))
            .collect();
        Ok(filter.apply(all, now_ms.saturating_sub(ttl_ms)))
    }

    async fn end_session(&self, id: &str) -> CounterResult<Option<ActiveSession>> {
        let binding = self.key(&session_binding_key(id));
        let info = self.key(&session_info_key(id));
        let index = self.key(SESSION_INDEX);
        let (fields, bound): (Vec<Option<String>>, Option<String>) = self
            .run("end_session", |mut c| async move {
                ::redis::pipe()
                    .atomic()
                    .cmd("HMGET")
                    .arg(&info)
                    .arg(&SESSION_FIELDS[..])
                    .cmd("GET")
                    .arg(&binding)
                    .cmd("DEL")
                    .arg(&binding)
                    .arg(&info)
                    .ignore()
                    .cmd("ZREM")
                    .arg(&index)
                    .arg(id)
                    .ignore()
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let bound: Option<i64> = bound.and_then(|v| v.parse().ok());
        Ok(match session_from_fields(id, &fields) {
            Some(mut s) => {
                s.provider_id = bound.or(s.provider_id);
                Some(s)
            }
            None => bound.map(|p| ActiveSession {
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
            }),
        })
    }

    async fn ping(&self) -> CounterResult<()> {
        self.run("ping", |mut c| async move {
            cmd("PING").query_async::<()>(&mut c).await
        })
        .await
    }

    fn mode(&self) -> CounterMode {
        CounterMode::Shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_clamped_to_what_redis_accepts() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }
}
