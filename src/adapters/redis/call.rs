//! `Caller`: one adapter call against the current Redis link, bounded in time, replacing the
//! link when the call failed at the connection level or was abandoned while hung. Cheap to
//! clone, so the write batcher's task calls Redis the same way the adapters do.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::redis::RedisResult;

use super::connection::{Connection, Link, is_connection_failure};
use crate::ports::counters::{CounterError, CounterResult};

/// Runs calls on a shared connection with the adapter's timeouts.
#[derive(Clone)]
pub(super) struct Caller {
    conn: Arc<Connection>,
    /// Upper bound of one call.
    operation_timeout: Duration,
    /// A call abandoned by its caller after this long is treated as a hung connection.
    slow_call: Duration,
}

impl Caller {
    /// A caller of `conn` with these bounds.
    pub(super) fn new(conn: Connection, operation_timeout: Duration, slow_call: Duration) -> Self {
        Self {
            conn: Arc::new(conn),
            operation_timeout,
            slow_call,
        }
    }

    /// Runs one call on the current link, bounded by the operation timeout; a connection-level
    /// failure or a timeout replaces the link so the next call reconnects.
    pub(super) async fn run<T, F, Fut>(&self, op: &'static str, call: F) -> CounterResult<T>
    where
        F: FnOnce(Link) -> Fut,
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
    handle: &'a Arc<Link>,
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
