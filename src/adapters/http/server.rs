//! The client-facing HTTP server: accepts under the connection cap, serves each connection with
//! hyper (HTTP/1.1 and h2c) under the time bounds of `conn_guard`, hands requests to the poem
//! routes, and shuts down in three steps: stop accepting and let open requests finish
//! (`SHUTDOWN_DRAIN_TIMEOUT_MS`); then tell streams still open to end with an error event
//! (`stream_cut`) and give them a moment to send it; then close whatever is left.
//!
//! poem's own `Server` exposes none of these bounds (no header or body timeout, no cap), hence
//! this loop; the endpoint is poem's, unchanged.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Body, Endpoint, RequestParts};
use tokio::sync::watch;

use crate::app::config::ClientLimits;
use crate::app::metrics::ConnectionMetrics;

use super::conn_guard::{ConnState, GuardedBody, GuardedIo, TimedBody};
use super::listener::{Admitted, ClientListener};

/// Largest HTTP/2 header list accepted from a client.
const H2_MAX_HEADER_LIST: u32 = 16 * 1024;
/// How long streams get to send their closing error event once told to stop.
const CUT_GRACE: Duration = Duration::from_secs(2);

/// Everything the server needs besides the listener and the routes.
pub struct ServeOptions {
    /// Connection timeouts and the drain time.
    pub limits: ClientLimits,
    /// Where connection counts go.
    pub metrics: Arc<ConnectionMetrics>,
    /// Set to `true` when the drain time is over: open streams end with an error event.
    pub stream_cut: watch::Sender<bool>,
}

type Routes = Arc<BoxEndpoint<'static>>;

async fn wait_true(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Serves until `shutdown` completes, then drains, cuts and closes (see the module doc).
pub async fn run(
    mut listener: ClientListener,
    routes: BoxEndpoint<'static>,
    shutdown: impl Future<Output = ()>,
    opts: ServeOptions,
) -> std::io::Result<()> {
    let routes: Routes = Arc::new(routes);
    let local = listener.local_addr()?;
    let (drain_tx, drain_rx) = watch::channel(false);
    let (close_tx, close_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            admitted = listener.accept() => {
                let conn = Connection {
                    routes: routes.clone(),
                    local: LocalAddr(Addr::from(local)),
                    limits: opts.limits.clone(),
                    metrics: opts.metrics.clone(),
                    drain: drain_rx.clone(),
                    close: close_rx.clone(),
                };
                tokio::spawn(conn.serve(admitted));
            }
        }
    }
    let open = listener.close();
    let _ = drain_tx.send(true);
    let drain = opts.limits.shutdown_drain_timeout;
    tracing::info!(
        open = open.count(),
        drain_ms = drain.as_millis() as u64,
        "stopped accepting; waiting for open requests"
    );
    if open.wait_all_closed(drain).await {
        return Ok(());
    }
    tracing::warn!(
        open = open.count(),
        "drain time over: ending the remaining streams with an error event"
    );
    let _ = opts.stream_cut.send(true);
    if open.wait_all_closed(CUT_GRACE).await {
        return Ok(());
    }
    tracing::warn!(
        open = open.count(),
        "closing the remaining client connections"
    );
    let _ = close_tx.send(true);
    open.wait_all_closed(Duration::from_secs(1)).await;
    Ok(())
}

/// One client connection's serving context.
struct Connection {
    routes: Routes,
    local: LocalAddr,
    limits: ClientLimits,
    metrics: Arc<ConnectionMetrics>,
    drain: watch::Receiver<bool>,
    close: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(mut self, admitted: Admitted) {
        let Admitted { stream, peer, slot } = admitted;
        let state = ConnState::new(&self.limits, self.metrics.clone());
        let io = TokioIo::new(GuardedIo::new(stream, state.clone()));
        let routes = self.routes.clone();
        let local = self.local.clone();
        let remote = RemoteAddr(Addr::from(peer));
        let body_idle = self.limits.body_idle_timeout;
        let metrics = self.metrics.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let inflight = state.begin_request();
            let routes = routes.clone();
            let (local, remote, metrics) = (local.clone(), remote.clone(), metrics.clone());
            async move {
                let (parts, body) = req.into_parts();
                let body = Body::from(BoxBody::new(TimedBody::new(body, body_idle, metrics)));
                let parts = RequestParts::from((parts, local, remote, Scheme::HTTP));
                let resp = routes
                    .get_response(poem::Request::from_parts(parts, body))
                    .await;
                let resp: hyper::Response<BoxBody<bytes::Bytes, std::io::Error>> = resp.into();
                Ok::<_, Infallible>(resp.map(|b| GuardedBody::new(b, inflight)))
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // poem's limit on h2 header lists (hyper's default is 16 MiB).
        builder.http2().max_header_list_size(H2_MAX_HEADER_LIST);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                log_end(r);
                drop(slot);
                return;
            }
            _ = wait_true(&mut self.drain) => {}
            _ = wait_true(&mut self.close) => return,
        }
        conn.as_mut().graceful_shutdown();
        tokio::select! {
            r = conn.as_mut() => log_end(r),
            _ = wait_true(&mut self.close) => {}
        }
        drop(slot);
    }
}

fn log_end(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}
