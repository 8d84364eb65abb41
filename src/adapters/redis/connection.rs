//! A Redis connection that never gives up: a `ConnectionManager` tuned to fail fast, replaced by
//! a fresh lazily-connecting one whenever a call fails at the connection level. The manager
//! alone only reconnects after some I/O errors (a timed-out or black-holed connection can stay
//! stuck), and fail-open needs the shared store to come back by itself once Redis answers.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, ErrorKind, RedisError};
use arc_swap::ArcSwap;

/// Timing knobs for reaching Redis; the defaults favour deciding quickly that Redis is down.
#[derive(Debug, Clone, Copy)]
pub struct RedisTimeouts {
    /// TCP connect timeout of one attempt.
    pub connect: Duration,
    /// How long one command may wait for its reply.
    pub response: Duration,
    /// Reconnect attempts after the first one fails.
    pub retries: usize,
    /// Longest pause between reconnect attempts.
    pub max_retry_delay: Duration,
    /// Upper bound of a whole adapter call (connecting included).
    pub operation: Duration,
    /// Upper bound of the first round trip made by `connect`.
    pub initial_connect: Duration,
    /// A call its caller abandons (drops) after running this long counts as a hung connection
    /// and gets the connection replaced; a healthy Redis answers in a few milliseconds.
    pub abandoned_after: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(500),
            response: Duration::from_millis(500),
            retries: 1,
            max_retry_delay: Duration::from_millis(200),
            operation: Duration::from_secs(1),
            initial_connect: Duration::from_secs(2),
            abandoned_after: Duration::from_millis(250),
        }
    }
}

/// The current connection manager, swapped for a new one after connection-level failures.
pub(super) struct Connection {
    client: Client,
    config: ConnectionManagerConfig,
    current: ArcSwap<ConnectionManager>,
}

impl Connection {
    /// A handle that connects on first use; never touches the network itself.
    pub(super) fn lazy(client: Client, timeouts: &RedisTimeouts) -> Result<Self, RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(timeouts.retries)
            .set_max_delay(timeouts.max_retry_delay)
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        Ok(Self {
            client,
            config,
            current: ArcSwap::from_pointee(manager),
        })
    }

    /// The manager to use for one call (keep the `Arc` to report a failure on it).
    pub(super) fn current(&self) -> Arc<ConnectionManager> {
        self.current.load_full()
    }

    /// Replaces `failed` with a fresh lazy manager, unless another caller already did.
    pub(super) fn reset(&self, failed: &Arc<ConnectionManager>) {
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(fresh) => {
                self.current.compare_and_swap(failed, Arc::new(fresh));
            }
            Err(e) => tracing::debug!(error = %e, "could not rebuild the Redis connection manager"),
        }
    }
}

/// True for failures that say nothing reached Redis or the link is broken (as opposed to
/// Redis answering with an error, where the connection is fine).
pub(super) fn is_connection_failure(e: &RedisError) -> bool {
    !matches!(
        e.kind(),
        ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType
    )
}
