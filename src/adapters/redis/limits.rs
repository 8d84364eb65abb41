//! `RedisLimits`: the shared `LimitStore`. Each call is one `EVALSHA` of a Lua script
//! (`lua/limits_*.lua`, sharing `limits_common.lua`), so an admission checks every window of
//! key and user and takes the session's slots atomically in one round trip, across instances.
//! Keys live under the configured prefix (rolling spend windows also use `<key>:sum`); on a
//! Redis Cluster all keys of one request would need one hash slot, which this adapter does not
//! arrange (a single Redis or a primary/replica pair is assumed).

use ::redis::{Script, cmd};
use async_trait::async_trait;

use super::connection::RedisTimeouts;
use super::counters::RedisCounters;
use crate::ports::counters::{CounterError, CounterMode, CounterResult};
use crate::ports::limits::{CheckOutcome, CheckRequest, Counter, LimitStore};

const COMMON: &str = include_str!("lua/limits_common.lua");

/// The limit scripts, hashed once (calls use EVALSHA, falling back to EVAL after a flush).
struct LimitScripts {
    check: Script,
    record: Script,
    read: Script,
    replace: Script,
}

impl LimitScripts {
    fn load() -> Self {
        let with_common = |body: &str| Script::new(&format!("{COMMON}\n{body}"));
        Self {
            check: with_common(include_str!("lua/limits_check.lua")),
            record: with_common(include_str!("lua/limits_record.lua")),
            read: with_common(include_str!("lua/limits_read.lua")),
            replace: with_common(include_str!("lua/limits_replace.lua")),
        }
    }
}

/// Limit counters in Redis behind the same self-healing connection as `RedisCounters`.
pub struct RedisLimits {
    base: RedisCounters,
    scripts: LimitScripts,
}

/// The script kind code and its numeric parameter.
fn kind(counter: &Counter) -> (&'static str, i64) {
    match counter {
        Counter::Requests { window_ms, .. } => ("r", *window_ms),
        Counter::RollingSpend { window_ms, .. } => ("s", *window_ms),
        Counter::Sessions { ttl_ms, .. } => ("c", *ttl_ms),
        Counter::PeriodSpend { expires_at_ms, .. } => ("p", *expires_at_ms),
        Counter::TotalSpend { .. } => ("t", 0),
    }
}

impl RedisLimits {
    /// Connects with the default (fail-fast) timeouts; like `RedisCounters::connect`, fails only
    /// on an invalid URL.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self, CounterError> {
        Self::connect_with(url, key_prefix, RedisTimeouts::default()).await
    }

    /// `connect` with explicit timeouts.
    pub async fn connect_with(
        url: &str,
        key_prefix: &str,
        timeouts: RedisTimeouts,
    ) -> Result<Self, CounterError> {
        Ok(Self {
            base: RedisCounters::connect_with(url, key_prefix, timeouts).await?,
            scripts: LimitScripts::load(),
        })
    }
}

#[async_trait]
impl LimitStore for RedisLimits {
    async fn check(&self, req: CheckRequest<'_>) -> CounterResult<CheckOutcome> {
        if req.checks.is_empty() {
            return Ok(CheckOutcome::Admitted);
        }
        let keys: Vec<String> = req
            .checks
            .iter()
            .map(|c| self.base.key(c.counter.key()))
            .collect();
        let (index, current, oldest): (i64, i64, i64) = self
            .base
            .run("limits_check", |mut c| async move {
                let mut inv = self.scripts.check.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(req.now_ms).arg(req.request_id).arg(req.session_id);
                for check in req.checks {
                    let (code, param) = kind(&check.counter);
                    inv.arg(code).arg(check.limit).arg(param);
                }
                inv.invoke_async(&mut c).await
            })
            .await?;
        if index == 0 {
            return Ok(CheckOutcome::Admitted);
        }
        Ok(CheckOutcome::Rejected {
            index: usize::try_from(index - 1).unwrap_or(0),
            current,
            oldest_ms: (oldest >= 0).then_some(oldest),
        })
    }

    async fn record(
        &self,
        at_ms: i64,
        member: &str,
        amount: i64,
        counters: &[Counter],
    ) -> CounterResult<()> {
        let spend: Vec<&Counter> = counters.iter().filter(|c| c.is_spend()).collect();
        if spend.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = spend.iter().map(|c| self.base.key(c.key())).collect();
        self.base
            .run("limits_record", |mut c| async move {
                let mut inv = self.scripts.record.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(at_ms).arg(member).arg(amount);
                for counter in &spend {
                    let (code, param) = kind(counter);
                    inv.arg(code).arg(param);
                }
                inv.invoke_async::<i64>(&mut c).await
            })
            .await?;
        Ok(())
    }

    async fn read(
        &self,
        now_ms: i64,
        counters: &[Counter],
        member: Option<&str>,
    ) -> CounterResult<Vec<i64>> {
        if counters.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = counters.iter().map(|c| self.base.key(c.key())).collect();
        self.base
            .run("limits_read", |mut c| async move {
                let mut inv = self.scripts.read.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                inv.arg(now_ms).arg(member.unwrap_or(""));
                for counter in counters {
                    let (code, param) = kind(counter);
                    inv.arg(code).arg(param);
                }
                inv.invoke_async(&mut c).await
            })
            .await
    }

    async fn replace(
        &self,
        now_ms: i64,
        counter: &Counter,
        entries: &[(i64, i64)],
    ) -> CounterResult<()> {
        if !counter.is_spend() {
            return Ok(());
        }
        let key = self.base.key(counter.key());
        let total: i64 = entries.iter().map(|(_, a)| *a).sum();
        self.base
            .run("limits_replace", |mut c| async move {
                let mut inv = self.scripts.replace.key(&key);
                let (code, param) = kind(counter);
                inv.arg(now_ms).arg(code).arg(param).arg(total);
                if code == "s" {
                    for (at, amount) in entries {
                        inv.arg(*at).arg(*amount);
                    }
                }
                inv.invoke_async::<i64>(&mut c).await
            })
            .await?;
        Ok(())
    }

    async fn clear(&self, counters: &[Counter]) -> CounterResult<()> {
        if counters.is_empty() {
            return Ok(());
        }
        let mut keys = Vec::with_capacity(counters.len() * 2);
        for c in counters {
            let k = self.base.key(c.key());
            keys.push(format!("{k}:sum"));
            keys.push(k);
        }
        self.base
            .run("limits_clear", |mut c| async move {
                cmd("DEL").arg(&keys).query_async::<()>(&mut c).await
            })
            .await
    }

    async fn mark(&self, key: &str, value: &str) -> CounterResult<bool> {
        let key = self.base.key(key);
        let reply: ::redis::Value = self
            .base
            .run("limits_mark", |mut c| async move {
                cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("NX")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(!matches!(reply, ::redis::Value::Nil))
    }

    async fn unmark(&self, key: &str) -> CounterResult<()> {
        let key = self.base.key(key);
        self.base
            .run("limits_unmark", |mut c| async move {
                cmd("DEL").arg(&key).query_async::<()>(&mut c).await
            })
            .await
    }

    async fn ping(&self) -> CounterResult<()> {
        use crate::ports::counters::CounterStore;
        self.base.ping().await
    }

    fn mode(&self) -> CounterMode {
        CounterMode::Shared
    }
}
