//! `RedisLimits`: the shared `LimitStore`. Each call is one `EVALSHA` of a Lua script
//! (`lua/limits_*.lua`, all but the refresh sharing `limits_common.lua`), so an admission
//! checks every window of key and user and takes the session's slots atomically in one round
//! trip, across instances. The check, read and record send their parameters as one packed
//! argument (`pack.rs`). Keys live under the configured prefix: request and rolling-spend
//! windows are hashes of time buckets (at most 101, plus the running sum the checks read;
//! listpack-encoded), sessions a sorted set of at most `session_cap(limit)` members, periods
//! and totals plain integers; all but totals expire when idle. Per request: one `EVALSHA` to
//! admit; the spend record and a held slot's refresh (`lua/limits_refresh.lua`, three
//! commands) go out with the batched writes (`write_batch`). On a Redis Cluster all keys of
//! one request would need one hash slot, which this adapter does not arrange (a single Redis
//! or a primary/replica pair is assumed).

use std::sync::Arc;

use ::redis::{Script, cmd};
use async_trait::async_trait;

use super::connection::RedisTimeouts;
use super::counters::RedisCounters;
use super::pack::ArgPack;
use super::write_batch::{ArgRoom, ScriptCall, parse};
use crate::domain::windows::{Ring, session_cap};
use crate::ports::counters::{CounterError, CounterMode, CounterResult};
use crate::ports::limits::{CheckOutcome, CheckRequest, Counter, LimitStore};

const COMMON: &str = include_str!("lua/limits_common.lua");

/// The limit scripts, hashed once (calls use EVALSHA, falling back to EVAL after a flush).
struct LimitScripts {
    check: Script,
    record: Script,
    read: Script,
    replace: Script,
    /// The refresh of a held session slot (`lua/limits_refresh.lua`, standalone).
    refresh: Script,
    /// Sources of the scripts sent as `ScriptCall`s, loaded again after a `NOSCRIPT`.
    check_source: Arc<str>,
    record_source: Arc<str>,
    read_source: Arc<str>,
    refresh_source: Arc<str>,
}

impl LimitScripts {
    fn load() -> Self {
        let source = |body: &str| -> Arc<str> { Arc::from(format!("{COMMON}\n{body}")) };
        let check_source = source(include_str!("lua/limits_check.lua"));
        let record_source = source(include_str!("lua/limits_record.lua"));
        let read_source = source(include_str!("lua/limits_read.lua"));
        let refresh_source: Arc<str> = Arc::from(include_str!("lua/limits_refresh.lua"));
        Self {
            check: Script::new(&check_source),
            record: Script::new(&record_source),
            read: Script::new(&read_source),
            replace: Script::new(&source(include_str!("lua/limits_replace.lua"))),
            refresh: Script::new(&refresh_source),
            check_source,
            record_source,
            read_source,
            refresh_source,
        }
    }
}

/// Limit counters in Redis behind the same self-healing connection as `RedisCounters`.
pub struct RedisLimits {
    base: Arc<RedisCounters>,
    scripts: LimitScripts,
}

/// The script kind code and its two numeric parameters (see `lua/limits_common.lua`); `limit`
/// sets the member cap of session counters.
fn kind(counter: &Counter, limit: i64) -> (&'static str, i64, i64) {
    match counter {
        Counter::Requests { window_ms, .. } => ("r", *window_ms, ring_bucket(*window_ms)),
        Counter::RollingSpend { window_ms, .. } => ("s", *window_ms, ring_bucket(*window_ms)),
        Counter::Sessions { ttl_ms, .. } => ("c", *ttl_ms, session_cap(limit)),
        Counter::PeriodSpend { expires_at_ms, .. } => ("p", *expires_at_ms, 0),
        Counter::TotalSpend { .. } => ("t", 0, 0),
    }
}

/// The check script's reply `{index, current, oldest}` as an outcome (index 0: admitted).
fn check_outcome((index, current, oldest): (i64, i64, i64)) -> CheckOutcome {
    if index == 0 {
        return CheckOutcome::Admitted;
    }
    CheckOutcome::Rejected {
        index: usize::try_from(index - 1).unwrap_or(0),
        current,
        oldest_ms: (oldest >= 0).then_some(oldest),
    }
}

/// The bucket width the shared ring arithmetic picks for a window.
fn ring_bucket(window_ms: i64) -> i64 {
    Ring::for_window(window_ms).bucket_ms
}

impl RedisLimits {
    /// Connects with the default (fail-fast) timeouts; like `RedisCounters::connect`, fails only
    /// on an invalid URL.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self, CounterError> {
        Self::connect_with(url, key_prefix, RedisTimeouts::default()).await
    }

    /// Limits on the connection (and write batches) of a counters store, so a request's
    /// writes after its answer (spend, session touch, slot refresh) share one round trip.
    pub fn sharing(counters: Arc<RedisCounters>) -> Self {
        Self {
            base: counters,
            scripts: LimitScripts::load(),
        }
    }

    /// The check script's call for `req`; `None` when there is nothing to check.
    fn check_call(&self, req: &CheckRequest<'_>) -> Option<ScriptCall> {
        if req.checks.is_empty() {
            return None;
        }
        let keys: Vec<&str> = req.checks.iter().map(|c| c.counter.key()).collect();
        let mut pack = ArgPack::with_capacity(2 + 4 * req.checks.len());
        pack.int(req.now_ms).str(req.session_id);
        for check in req.checks {
            let (code, p1, p2) = kind(&check.counter, check.limit);
            pack.str(code).int(check.limit).int(p1).int(p2);
        }
        Some(self.packed_call(
            self.scripts.check.get_hash(),
            &self.scripts.check_source,
            &keys,
            pack,
        ))
    }

    /// The call of a script whose only argument is its packed parameters (`ARGV[1]`).
    fn packed_call(
        &self,
        sha: &str,
        source: &Arc<str>,
        keys: &[&str],
        pack: ArgPack,
    ) -> ScriptCall {
        let packed = pack.finish();
        let room = ArgRoom {
            args: 1,
            bytes: packed.len(),
        };
        let mut call = ScriptCall::new(sha, source, self.base.prefix(), keys, room);
        call.cmd.arg(packed);
        call
    }

    /// `connect` with explicit timeouts.
    pub async fn connect_with(
        url: &str,
        key_prefix: &str,
        timeouts: RedisTimeouts,
    ) -> Result<Self, CounterError> {
        Ok(Self {
            base: Arc::new(RedisCounters::connect_with(url, key_prefix, timeouts).await?),
            scripts: LimitScripts::load(),
        })
    }
}

#[async_trait]
impl LimitStore for RedisLimits {
    async fn check(&self, req: CheckRequest<'_>) -> CounterResult<CheckOutcome> {
        let Some(call) = self.check_call(&req) else {
            return Ok(CheckOutcome::Admitted);
        };
        let reply = self.base.run_script("limits_check", call).await?;
        Ok(check_outcome(parse("limits_check", reply)?))
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
        let mut call = ScriptCall::new(
            self.scripts.refresh.get_hash(),
            &self.scripts.refresh_source,
            self.base.prefix(),
            &[key.as_str()],
            ArgRoom {
                args: 4,
                bytes: 60 + member.len(),
            },
        );
        call.cmd
            .arg(now_ms)
            .arg(member)
            .arg(*ttl_ms)
            .arg(now_ms.saturating_sub(*ttl_ms));
        let reply = self.base.run_batched("limits_refresh", call).await?;
        Ok(parse::<i64>("limits_refresh", reply)? == 1)
    }

    async fn record(&self, at_ms: i64, amount: i64, counters: &[Counter]) -> CounterResult<()> {
        let spend: Vec<&Counter> = counters.iter().filter(|c| c.is_spend()).collect();
        if spend.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = spend.iter().map(|c| c.key()).collect();
        let mut pack = ArgPack::with_capacity(3 + 3 * spend.len());
        pack.int(at_ms).int(amount).str(&amount.to_string());
        for counter in &spend {
            let (code, p1, p2) = kind(counter, i64::MAX);
            pack.str(code).int(p1).int(p2);
        }
        let call = self.packed_call(
            self.scripts.record.get_hash(),
            &self.scripts.record_source,
            &keys,
            pack,
        );
        self.base.run_batched("limits_record", call).await?;
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
        let keys: Vec<&str> = counters.iter().map(|c| c.key()).collect();
        let mut pack = ArgPack::with_capacity(2 + 3 * counters.len());
        pack.int(now_ms).str(member.unwrap_or(""));
        for counter in counters {
            let (code, p1, p2) = kind(counter, i64::MAX);
            pack.str(code).int(p1).int(p2);
        }
        let call = self.packed_call(
            self.scripts.read.get_hash(),
            &self.scripts.read_source,
            &keys,
            pack,
        );
        let reply = self.base.run_script("limits_read", call).await?;
        parse("limits_read", reply)
    }

    async fn replace(
        &self,
        now_ms: i64,
        counter: &Counter,
        entries: &[(i64, i64)],
        seen: i64,
    ) -> CounterResult<()> {
        if !counter.is_spend() {
            return Ok(());
        }
        let key = self.base.key(counter.key());
        let total: i64 = entries.iter().map(|(_, a)| *a).sum();
        self.base
            .run("limits_replace", |mut c| async move {
                let mut inv = self.scripts.replace.key(&key);
                let (code, p1, p2) = kind(counter, i64::MAX);
                inv.arg(now_ms)
                    .arg(code)
                    .arg(p1)
                    .arg(p2)
                    .arg(total)
                    .arg(seen);
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
        let keys: Vec<String> = counters.iter().map(|c| self.base.key(c.key())).collect();
        self.base
            .run("limits_clear", |mut c| async move {
                cmd("DEL").arg(&keys).query_async::<()>(&mut c).await
            })
            .await
    }

    async fn release_session(&self, counters: &[Counter], member: &str) -> CounterResult<()> {
        let keys: Vec<String> = counters
            .iter()
            .filter(|c| matches!(c, Counter::Sessions { .. }))
            .map(|c| self.base.key(c.key()))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.base
            .run("limits_release_session", |mut c| async move {
                let mut p = ::redis::pipe();
                for k in &keys {
                    p.cmd("ZREM").arg(k).arg(member).ignore();
                }
                p.query_async::<()>(&mut c).await
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
