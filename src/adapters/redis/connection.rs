//! A Redis connection that never gives up: a `ConnectionManager` (or a Cluster connection)
//! tuned to fail fast, replaced by a fresh lazily-connecting one whenever a call fails at the
//! connection level. The manager alone only reconnects after some I/O errors (a timed-out or
//! black-holed connection can stay stuck), and fail-open needs the shared store to come back by
//! itself once Redis answers. Behind Sentinel, a failure looks the master up again.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::{ClusterClient, ClusterConfig};
use ::redis::cluster_async::ClusterConnection;
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{
    Client, Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    ServerErrorKind, Value,
};
use arc_swap::ArcSwap;

use super::topology::Topology;

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
    /// How long a write no client waits for (spend, session touch) waits for others to share
    /// its round trip (see `write_batch`).
    pub write_linger: Duration,
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
            write_linger: Duration::from_millis(2),
        }
    }
}

/// One live link to Redis; cheap to clone (each is a handle to multiplexed connections).
#[derive(Clone)]
pub(super) enum Link {
    /// A single server, or the master Sentinel named last.
    Server(ConnectionManager),
    /// A Cluster (the client routes each command to its slot's node).
    Cluster(ClusterConnection),
    /// Nothing to talk to yet (Sentinel could not name a master): every call fails at once,
    /// which asks for a new link.
    Down,
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Down => Box::pin(async { Err(no_master()) }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Down => Box::pin(async { Err(no_master()) }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(c) => c.get_db(),
            Self::Cluster(_) | Self::Down => 0,
        }
    }
}

fn no_master() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "no Redis master known yet (Sentinel did not answer)",
    ))
}

/// Where new links come from.
enum Source {
    Server(Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    Cluster(ClusterClient),
}

/// The current link, swapped for a new one after connection-level failures.
pub(super) struct Connection {
    source: Arc<Source>,
    config: ConnectionManagerConfig,
    cluster_config: ClusterConfig,
    current: Arc<ArcSwap<Link>>,
    /// A Sentinel lookup is running (one at a time).
    resolving: Arc<AtomicBool>,
    timeouts: RedisTimeouts,
}

/// TCP settings of every Redis connection: `TCP_NODELAY`, as the server sets on its side. The
/// crate's default leaves Nagle's algorithm on, which holds a small write (one request's
/// commands) until the previous one is acknowledged: concurrent requests sharing the
/// multiplexed connection would wait on each other's answers.
fn tcp() -> ::redis::io::tcp::TcpSettings {
    ::redis::io::tcp::TcpSettings::default().set_nodelay(true)
}

impl Connection {
    /// A handle for `topology`: a single server or a Cluster connects on first use; a Sentinel
    /// master is looked up now (within `initial_connect`), and again after every failure.
    pub(super) async fn open(
        topology: &Topology,
        timeouts: &RedisTimeouts,
    ) -> Result<Self, RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(timeouts.retries)
            .set_max_delay(timeouts.max_retry_delay)
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response));
        let cluster_config = ClusterConfig::new()
            .set_connection_timeout(timeouts.connect)
            .set_response_timeout(timeouts.response);
        let (source, link) = match topology {
            Topology::Single(url) => {
                let info = url.as_str().into_connection_info()?.set_tcp_settings(tcp());
                let client = Client::open(info)?;
                let manager =
                    ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
                (Source::Server(client), Link::Server(manager))
            }
            Topology::Cluster(nodes) => {
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .retries(u32::try_from(timeouts.retries).unwrap_or(1))
                    .tcp_settings(tcp())
                    .build()?;
                let link = client.get_pending_async_connection_with_config(cluster_config.clone());
                (Source::Cluster(client), Link::Cluster(link))
            }
            Topology::Sentinel {
                sentinels,
                master,
                db,
                username,
                password,
            } => {
                let addrs = sentinels
                    .iter()
                    .map(|(h, p)| ConnectionAddr::Tcp(h.clone(), *p));
                let mut b = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)?
                    .set_client_to_redis_db(*db)
                    .set_client_to_redis_tcp_settings(tcp())
                    .set_client_to_sentinel_tcp_settings(tcp());
                if let Some(u) = username {
                    b = b.set_client_to_redis_username(u);
                }
                if let Some(p) = password {
                    b = b.set_client_to_redis_password(p);
                }
                let mut sentinel = b.build()?;
                let link = match tokio::time::timeout(
                    timeouts.initial_connect,
                    sentinel.async_get_client(),
                )
                .await
                {
                    Ok(Ok(client)) => Link::Server(ConnectionManager::new_lazy_with_config(
                        client,
                        config.clone(),
                    )?),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "Sentinel named no master at startup; will keep asking");
                        Link::Down
                    }
                    Err(_) => {
                        tracing::warn!("Sentinel did not answer at startup; will keep asking");
                        Link::Down
                    }
                };
                (Source::Sentinel(tokio::sync::Mutex::new(sentinel)), link)
            }
        };
        Ok(Self {
            source: Arc::new(source),
            config,
            cluster_config,
            current: Arc::new(ArcSwap::from_pointee(link)),
            resolving: Arc::new(AtomicBool::new(false)),
            timeouts: *timeouts,
        })
    }

    /// The link to use for one call (keep the `Arc` to report a failure on it).
    pub(super) fn current(&self) -> Arc<Link> {
        self.current.load_full()
    }

    /// Replaces `failed` with a fresh link, unless another caller already did. A Sentinel
    /// master is looked up again in the background (the old one may have been demoted).
    pub(super) fn reset(&self, failed: &Arc<Link>) {
        let fresh = match self.source.as_ref() {
            Source::Server(client) => {
                ConnectionManager::new_lazy_with_config(client.clone(), self.config.clone())
                    .map(Link::Server)
            }
            Source::Cluster(client) => Ok(Link::Cluster(
                client.get_pending_async_connection_with_config(self.cluster_config.clone()),
            )),
            Source::Sentinel(_) => {
                self.resolve_master(failed.clone());
                return;
            }
        };
        match fresh {
            Ok(link) => {
                self.current.compare_and_swap(failed, Arc::new(link));
            }
            Err(e) => tracing::debug!(error = %e, "could not rebuild the Redis connection"),
        }
    }

    fn resolve_master(&self, failed: Arc<Link>) {
        if self.resolving.swap(true, Ordering::AcqRel) {
            return;
        }
        let (source, current, resolving) = (
            self.source.clone(),
            self.current.clone(),
            self.resolving.clone(),
        );
        let (config, limit) = (self.config.clone(), self.timeouts.operation);
        tokio::spawn(async move {
            if let Source::Sentinel(sentinel) = source.as_ref() {
                let found = tokio::time::timeout(limit, async {
                    sentinel.lock().await.async_get_client().await
                })
                .await;
                match found {
                    Ok(Ok(client)) => match ConnectionManager::new_lazy_with_config(client, config)
                    {
                        Ok(m) => {
                            current.compare_and_swap(&failed, Arc::new(Link::Server(m)));
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "could not connect to the master Sentinel named")
                        }
                    },
                    Ok(Err(e)) => tracing::debug!(error = %e, "Sentinel named no master"),
                    Err(_) => tracing::debug!("Sentinel did not answer"),
                }
            }
            resolving.store(false, Ordering::Release);
        });
    }
}

/// True for failures that say nothing reached Redis or the link is broken (as opposed to
/// Redis answering with an error, where the connection is fine).
/// A `READONLY` answer counts as one too: after a Sentinel failover the old master is a
/// replica, and the link must follow the new master.
pub(super) fn is_connection_failure(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
        || !matches!(
            e.kind(),
            ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType
        )
}
