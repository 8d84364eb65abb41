//! The client-facing TCP listener: a cap on connections open at once (beyond it a new
//! connection is accepted and closed at once, with one log line per burst), `TCP_NODELAY` on
//! every accepted socket (small SSE events leave at once instead of waiting ~40 ms for the
//! client's delayed ACK), and the open-file limit raised so the cap fits under it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::app::metrics::ConnectionMetrics;

/// File descriptors kept out of the connection cap: database and Redis pools, log files,
/// upstream pools beyond one connection per client.
const RESERVED_FDS: u64 = 256;
/// A refusal after this much quiet starts a new burst (and a new log line).
const BURST_QUIET: Duration = Duration::from_secs(10);
/// Pause after an accept error (e.g. EMFILE), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// `rlim_t` is `u64` on Linux and macOS but not everywhere.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)]
fn rlim(v: libc::rlim_t) -> u64 {
    v as u64
}

/// Raises the soft open-file limit to the hard one; returns the soft limit in force afterwards
/// (`None` where it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes into the struct passed, which we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: setrlimit only reads the struct passed.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                tracing::info!(
                    from = rlim(lim.rlim_cur),
                    to = rlim(lim.rlim_max),
                    "raised the open-file limit"
                );
                lim.rlim_cur = lim.rlim_max;
            } else {
                tracing::warn!(
                    soft = rlim(lim.rlim_cur),
                    hard = rlim(lim.rlim_max),
                    "cannot raise the open-file limit"
                );
            }
        }
        Some(rlim(lim.rlim_cur))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection cap: the configured one, lowered to fit the open-file limit (each client
/// connection may hold an upstream socket too, and some descriptors are reserved).
pub fn connection_cap(configured: usize, open_file_limit: Option<u64>) -> usize {
    let fit = open_file_limit
        .map(|n| usize::try_from(n.saturating_sub(RESERVED_FDS) / 2).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX)
        .max(1);
    if configured > fit {
        tracing::warn!(
            configured,
            cap = fit,
            "MAX_CLIENT_CONNECTIONS lowered to fit the open-file limit"
        );
    }
    configured.min(fit).clamp(1, Semaphore::MAX_PERMITS)
}

/// A connection's place under the cap; given back (and counted closed) when dropped.
pub struct ConnSlot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<ConnectionMetrics>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.metrics.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One accepted connection under the cap.
pub struct Admitted {
    /// The socket.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// Holds the connection's place under the cap.
    pub slot: ConnSlot,
}

/// The listening socket plus the connection cap.
pub struct ClientListener {
    tcp: TcpListener,
    slots: Arc<Semaphore>,
    cap: usize,
    metrics: Arc<ConnectionMetrics>,
    last_refusal: Option<Instant>,
    burst_refused: u64,
}

impl ClientListener {
    /// Wraps a bound listener; `cap` connections may be open at once.
    pub fn new(tcp: TcpListener, cap: usize, metrics: Arc<ConnectionMetrics>) -> Self {
        metrics.limit.store(cap as u64, Ordering::Relaxed);
        Self {
            tcp,
            slots: Arc::new(Semaphore::new(cap)),
            cap,
            metrics,
            last_refusal: None,
            burst_refused: 0,
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The next connection under the cap; connections beyond it are closed as they come.
    pub async fn accept(&mut self) -> Admitted {
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                drop(stream);
                self.refused();
                continue;
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            self.metrics.accepted.fetch_add(1, Ordering::Relaxed);
            self.metrics.open.fetch_add(1, Ordering::Relaxed);
            return Admitted {
                stream,
                peer,
                slot: ConnSlot {
                    _permit: permit,
                    metrics: self.metrics.clone(),
                },
            };
        }
    }

    fn refused(&mut self) {
        self.metrics.refused.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let new_burst = self
            .last_refusal
            .is_none_or(|t| now.duration_since(t) > BURST_QUIET);
        if new_burst {
            tracing::warn!(
                cap = self.cap,
                refused_in_previous_burst = self.burst_refused,
                "client connection cap reached: closing new connections until some end \
                 (see cch_client_connections_refused_total)"
            );
            self.burst_refused = 0;
        }
        self.burst_refused += 1;
        self.last_refusal = Some(now);
    }

    /// Stops listening (new connections are refused by the system from now on); the result
    /// follows the connections still open.
    pub fn close(self) -> OpenConnections {
        OpenConnections {
            slots: self.slots,
            cap: self.cap,
        }
    }
}

/// The connections admitted by a listener that has stopped listening.
pub struct OpenConnections {
    slots: Arc<Semaphore>,
    cap: usize,
}

impl OpenConnections {
    /// Waits until every admitted connection has ended, or `timeout` passed; `true` if all ended.
    pub async fn wait_all_closed(&self, timeout: Duration) -> bool {
        let all = u32::try_from(self.cap).unwrap_or(u32::MAX);
        matches!(
            tokio::time::timeout(timeout, self.slots.acquire_many(all)).await,
            Ok(Ok(_))
        )
    }

    /// Connections open now.
    pub fn count(&self) -> usize {
        self.cap.saturating_sub(self.slots.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_fits_under_the_open_file_limit() {
        assert_eq!(connection_cap(10_000, Some(20_000)), 9_872);
        assert_eq!(connection_cap(500, Some(20_000)), 500);
        assert_eq!(connection_cap(10_000, Some(1_024)), 384);
        assert_eq!(connection_cap(10_000, Some(10)), 1);
        assert_eq!(connection_cap(10_000, None), 10_000);
    }

    #[test]
    fn open_file_limit_is_raised_to_the_hard_limit() {
        let soft = raise_open_file_limit();
        #[cfg(unix)]
        {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: as above.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
            assert_eq!(lim.rlim_cur, lim.rlim_max);
            assert_eq!(soft, Some(rlim(lim.rlim_cur)));
        }
        #[cfg(not(unix))]
        assert!(soft.is_none());
    }
}
