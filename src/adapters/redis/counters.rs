//! `RedisCounters`: the shared `CounterStore`, so limits and slots hold across cch instances.
//! Every key gets the configured prefix; multi-step operations run as Lua scripts.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManager;
use ::redis::{Client, RedisResult, Value, cmd};
use async_trait::async_trait;

use super::connection::{Connection, RedisTimeouts, is_connection_failure};
use super::scripts::Scripts;
use crate::ports::counters::{CounterError, CounterMode, CounterResult, CounterStore, SlotOutcome};

/// Longest TTL sent to Redis (100 years), so huge durations never overflow its expire math.
const MAX_TTL_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// Counters in Redis behind a self-healing connection.
pub struct RedisCounters {
    conn: Connection,
    prefix: String,
    scripts: Scripts,
    operation_timeout: Duration,
    /// A call abandoned by its caller after this long is treated as a hung connection.
    slow_call: Duration,
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
        let client = Client::open(url)
            .map_err(|e| CounterError::Unavailable(format!("invalid Redis URL: {e}")))?;
        let conn = Connection::lazy(client, &timeouts)
            .map_err(|e| CounterError::Unavailable(format!("Redis client setup: {e}")))?;
        let store = Self {
            conn,
            prefix: key_prefix.to_owned(),
            scripts: Scripts::load(),
            operation_timeout: timeouts.operation,
            slow_call: timeouts.abandoned_after,
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

    /// The namespaced Redis key.
    pub(super) fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    /// Runs one call on the current connection within the operation timeout; a connection-level
    /// failure or a timeout replaces the connection so the next call reconnects.
    pub(super) async fn run<T, F, Fut>(&self, op: &'static str, call: F) -> CounterResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let handle = self.conn.current();
        let conn = (*handle).clone();
        let mut guard = ResetIfAbandoned {
            conn: &self.conn,
            handle: &handle,
            started: Instant::now(),
            slow: self.slow_call,
            armed: true,
        };
        let outcome = tokio::time::timeout(self.operation_timeout, call(conn)).await;
        guard.armed = false;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if is_connection_failure(&e) {
                    self.conn.reset(&handle);
                }
                Err(CounterError::Unavailable(format!("redis {op}: {e}")))
            }
            Err(_) => {
                self.conn.reset(&handle);
                Err(CounterError::Unavailable(format!(
                    "redis {op}: no answer within {:?}",
                    self.operation_timeout
                )))
            }
        }
    }
}

/// Resets the connection when a slow call is dropped before it finished: a caller (such as the
/// fail-open wrapper) gave up on a hung Redis before this adapter's own timeout fired.
struct ResetIfAbandoned<'a> {
    conn: &'a Connection,
    handle: &'a Arc<ConnectionManager>,
    started: Instant,
    slow: Duration,
    armed: bool,
}

impl Drop for ResetIfAbandoned<'_> {
    fn drop(&mut self) {
        // Rebuilding spawns a task, which needs a runtime (absent while one shuts down).
        if self.armed
            && self.started.elapsed() >= self.slow
            && tokio::runtime::Handle::try_current().is_ok()
        {
            self.conn.reset(self.handle);
        }
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
