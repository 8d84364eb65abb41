//! `WriteBatch`: the writes no client waits for (a request's spend, its session's touch, the
//! refresh of a held provider slot) go to Redis together. A task collects what arrives within
//! the linger (`RedisTimeouts::write_linger`, 2 ms by default) of the first write, at most
//! `MAX_BATCH`, and sends it as one pipeline: a request's writes after its answer take one
//! round trip, shared with the requests that ended at about the same time. Each caller still
//! gets its own command's reply (or error), so the ports' contract is unchanged; a write lands
//! at most the linger later than it would have alone.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::{Cmd, RedisWrite, ServerErrorKind, ToRedisArgs, Value};
use tokio::sync::{mpsc, oneshot};

use super::call::Caller;
use crate::ports::counters::{CounterError, CounterResult};

/// Most commands in one pipeline.
const MAX_BATCH: usize = 128;
/// Most writes waiting for the batcher; a write that finds the queue full is sent on its own.
const QUEUE_CAP: usize = 4_096;

/// One Lua script call: its `EVALSHA` and the script's source, loaded when Redis lost it.
pub(super) struct ScriptCall {
    /// `EVALSHA sha numkeys keys… args…`.
    pub(super) cmd: Cmd,
    /// The script's source, for `SCRIPT LOAD` after a `NOSCRIPT` reply (Redis restarted or
    /// flushed its scripts).
    pub(super) source: Arc<str>,
}

impl ScriptCall {
    /// The `EVALSHA` of a script with hash `sha` on `keys`, each written as `prefix` + key
    /// straight into the command (no string per key). `room` is what the caller adds with
    /// `cmd.arg` afterwards, so the command's buffers are sized once instead of growing
    /// argument by argument (about 16 reallocations per request before).
    pub(super) fn new(
        sha: &str,
        source: &Arc<str>,
        prefix: &str,
        keys: &[&str],
        room: ArgRoom,
    ) -> Self {
        let key_bytes: usize = keys.iter().map(|k| prefix.len() + k.len()).sum();
        // EVALSHA, sha, numkeys, the keys, then the caller's arguments.
        let mut cmd = Cmd::with_capacity(
            3 + keys.len() + room.args,
            "EVALSHA".len() + sha.len() + 20 + key_bytes + room.bytes,
        );
        cmd.arg("EVALSHA").arg(sha).arg(keys.len());
        for key in keys {
            cmd.arg(PrefixedKey { prefix, key });
        }
        Self {
            cmd,
            source: source.clone(),
        }
    }
}

/// How many arguments, and about how many bytes, a caller appends to a [`ScriptCall`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ArgRoom {
    /// Arguments after the keys.
    pub(super) args: usize,
    /// Their total length (an estimate is fine: it only sizes a buffer).
    pub(super) bytes: usize,
}

/// A key with the store's prefix, written into a command as one argument.
struct PrefixedKey<'a> {
    prefix: &'a str,
    key: &'a str,
}

impl ToRedisArgs for PrefixedKey<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut arg = out.writer_for_next_arg();
        // The writer appends to the command's own buffer, which cannot fail.
        let _ = arg.write_all(self.prefix.as_bytes());
        let _ = arg.write_all(self.key.as_bytes());
    }
}

struct Queued {
    call: ScriptCall,
    done: oneshot::Sender<CounterResult<Value>>,
}

/// The sending side of the batcher; its task ends when this is dropped.
pub(super) struct WriteBatch {
    queue: mpsc::Sender<Queued>,
    caller: Caller,
    /// Pipelines sent by the batcher's task.
    batches: Arc<AtomicU64>,
}

impl WriteBatch {
    /// Starts the batcher's task on the current runtime; a batch waits `linger` after its
    /// first write.
    pub(super) fn start(caller: Caller, linger: Duration) -> Self {
        // Bounded: QUEUE_CAP writes; beyond that `send` bypasses the queue.
        let (queue, rx) = mpsc::channel(QUEUE_CAP);
        let batches = Arc::new(AtomicU64::new(0));
        tokio::spawn(run_batches(rx, caller.clone(), linger, batches.clone()));
        Self {
            queue,
            caller,
            batches,
        }
    }

    /// Pipelines the batcher's task has sent so far.
    pub(super) fn batches_sent(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Sends `call` in the next batch and returns its reply.
    pub(super) async fn send(&self, op: &'static str, call: ScriptCall) -> CounterResult<Value> {
        let (done, reply) = oneshot::channel();
        match self.queue.try_send(Queued { call, done }) {
            Ok(()) => reply.await.unwrap_or_else(|_| {
                Err(CounterError::Unavailable(format!(
                    "redis {op}: the write batch was dropped"
                )))
            }),
            Err(mpsc::error::TrySendError::Full(q) | mpsc::error::TrySendError::Closed(q)) => {
                send_alone(&self.caller, op, q.call).await
            }
        }
    }
}

/// Sends one script call at once, on its own (loading the script after a `NOSCRIPT`).
pub(super) async fn send_alone(
    caller: &Caller,
    op: &'static str,
    call: ScriptCall,
) -> CounterResult<Value> {
    let mut replies = flush(caller, vec![call]).await;
    replies
        .pop()
        .unwrap_or_else(|| Err(CounterError::Unavailable(format!("redis {op}: no reply"))))
}

/// Collects writes for `linger` after the first of each batch, then sends them together.
async fn run_batches(
    mut rx: mpsc::Receiver<Queued>,
    caller: Caller,
    linger: Duration,
    batches: Arc<AtomicU64>,
) {
    while let Some(first) = rx.recv().await {
        // The linger is slept, not spent waiting on the queue: a write queued meanwhile then
        // wakes no task (each wake could make the runtime wake its other worker thread), and
        // the batch is taken from the queue when the linger ends.
        tokio::time::sleep(linger).await;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let (calls, waiters): (Vec<ScriptCall>, Vec<_>) =
            batch.into_iter().map(|q| (q.call, q.done)).unzip();
        let replies = flush(&caller, calls).await;
        batches.fetch_add(1, Ordering::Relaxed);
        for (waiter, reply) in waiters.into_iter().zip(replies) {
            // A caller that stopped waiting does not matter: its write was made.
            let _ = waiter.send(reply);
        }
    }
}

/// Sends `calls` as one pipeline and returns one reply per call, in order. Scripts Redis does
/// not know are loaded and their calls sent again (a second round trip, only after Redis lost
/// its scripts).
async fn flush(caller: &Caller, calls: Vec<ScriptCall>) -> Vec<CounterResult<Value>> {
    let n = calls.len();
    let mut pipe = ::redis::pipe();
    pipe.ignore_errors();
    let mut sources = Vec::with_capacity(n);
    for c in calls {
        pipe.add_command(c.cmd);
        sources.push(c.source);
    }
    let first: Vec<Value> = match caller
        .run("write_batch", |mut c| {
            let pipe = &pipe;
            async move { pipe.query_async(&mut c).await }
        })
        .await
    {
        Ok(v) => v,
        Err(e) => return vec![Err(e); n],
    };
    let mut replies: Vec<CounterResult<Value>> = Vec::with_capacity(n);
    let mut missing = Vec::new();
    for (i, v) in first.into_iter().enumerate() {
        match v {
            Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript) => {
                missing.push(i);
                replies.push(Err(CounterError::Unavailable("redis: NOSCRIPT".into())));
            }
            Value::ServerError(e) => {
                replies.push(Err(CounterError::Unavailable(format!("redis write: {e}"))))
            }
            v => replies.push(Ok(v)),
        }
    }
    replies.resize_with(n, || {
        Err(CounterError::Unavailable("redis write: no reply".into()))
    });
    if !missing.is_empty() {
        retry_after_load(caller, &pipe, &sources, &missing, &mut replies).await;
    }
    replies
}

/// Loads the scripts of the `missing` calls and sends those calls again.
async fn retry_after_load(
    caller: &Caller,
    sent: &::redis::Pipeline,
    sources: &[Arc<str>],
    missing: &[usize],
    replies: &mut [CounterResult<Value>],
) {
    let cmds: Vec<&Cmd> = sent.cmd_iter().collect();
    let mut again = ::redis::pipe();
    again.ignore_errors();
    let mut loaded: Vec<&str> = Vec::new();
    for &i in missing {
        if !loaded.contains(&&*sources[i]) {
            loaded.push(&sources[i]);
            again.cmd("SCRIPT").arg("LOAD").arg(&*sources[i]).ignore();
        }
        if let Some(c) = cmds.get(i) {
            again.add_command((*c).clone());
        }
    }
    let out: CounterResult<Vec<Value>> = caller
        .run("write_batch_reload", |mut c| {
            let again = &again;
            async move { again.query_async(&mut c).await }
        })
        .await;
    match out {
        Ok(values) => {
            for (&i, v) in missing.iter().zip(values) {
                replies[i] = match v {
                    Value::ServerError(e) => {
                        Err(CounterError::Unavailable(format!("redis write: {e}")))
                    }
                    v => Ok(v),
                };
            }
        }
        Err(e) => {
            for &i in missing {
                replies[i] = Err(e.clone());
            }
        }
    }
}

/// Reads a typed reply.
pub(super) fn parse<T: ::redis::FromRedisValue>(op: &'static str, v: Value) -> CounterResult<T> {
    T::from_redis_value(v).map_err(|e| CounterError::Unavailable(format!("redis {op}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::redis::RedisTimeouts;
    use crate::adapters::redis::connection::Connection;
    use crate::adapters::redis::topology::Topology;

    /// A caller on the test Redis (`CCH_TEST_REDIS_URL`, which CI sets).
    async fn caller() -> Option<Caller> {
        let Ok(url) = std::env::var("CCH_TEST_REDIS_URL") else {
            eprintln!("skipped: CCH_TEST_REDIS_URL is not set");
            return None;
        };
        let topology = Topology::parse(&url).expect("redis url");
        let timeouts = RedisTimeouts::default();
        let conn = Connection::open(&topology, &timeouts)
            .await
            .expect("connection");
        Some(Caller::new(
            conn,
            timeouts.operation,
            timeouts.abandoned_after,
        ))
    }

    /// The command built in one buffer is byte for byte the one built argument by argument
    /// from prefixed key strings, whatever room the caller announced.
    #[test]
    fn script_call_writes_prefixed_keys_as_the_plain_command_would() {
        let source: Arc<str> = Arc::from("return 1");
        for room in [
            ArgRoom::default(),
            ArgRoom {
                args: 2,
                bytes: 4096,
            },
        ] {
            let mut call = ScriptCall::new("abc123", &source, "cch:", &["lim:u:1", ""], room);
            call.cmd.arg("ä packed").arg(42);
            let mut plain = ::redis::cmd("EVALSHA");
            plain
                .arg("abc123")
                .arg(2)
                .arg(&["cch:lim:u:1", "cch:"])
                .arg("ä packed")
                .arg(42);
            assert_eq!(call.cmd.get_packed_command(), plain.get_packed_command());
        }
        let call = ScriptCall::new("s", &source, "", &[], ArgRoom::default());
        assert_eq!(
            call.cmd.get_packed_command(),
            ::redis::cmd("EVALSHA").arg("s").arg(0).get_packed_command()
        );
    }

    /// Twenty writes a millisecond apart go out in one pipeline, each gets its own reply, and
    /// a script Redis has never seen (its source is unique to this run) is loaded and run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_close_together_share_one_pipeline() {
        let Some(caller) = caller().await else {
            return;
        };
        let batch = Arc::new(WriteBatch::start(caller, Duration::from_millis(250)));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let source: Arc<str> = Arc::from(format!(
            "-- write_batch test {} {nanos}\nreturn ARGV[1] .. KEYS[1]",
            std::process::id()
        ));
        let sha = ::redis::Script::new(&source).get_hash().to_string();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (batch, source, sha) = (batch.clone(), source.clone(), sha.clone());
            tasks.push(tokio::spawn(async move {
                let key = format!("k{i}");
                let room = ArgRoom { args: 1, bytes: 8 };
                let mut call = ScriptCall::new(&sha, &source, "", &[key.as_str()], room);
                call.cmd.arg(i);
                batch.send("test", call).await
            }));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for (i, task) in tasks.into_iter().enumerate() {
            let reply: String = parse("test", task.await.unwrap().unwrap()).unwrap();
            assert_eq!(reply, format!("{i}k{i}"));
        }
        assert_eq!(batch.batches_sent(), 1);
    }
}
