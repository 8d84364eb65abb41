//! Per-connection time bounds. A connection is *idle* while no request is in flight on it: a
//! new connection must bring a complete request head within the header timeout, a kept-alive
//! one must start its next request within the keep-alive timeout (and finish that head within
//! the header timeout). Reads that outlast the bound fail with `TimedOut`, which closes the
//! connection. While a request is in flight the connection is not timed (an upstream may take
//! minutes); its body instead must keep arriving ([`TimedBody`]).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::app::config::ClientLimits;
use crate::app::metrics::{ConnectionMetrics, TimeoutPhase};

#[derive(Debug, Clone, Copy)]
struct IdleDeadline {
    at: Instant,
    phase: TimeoutPhase,
}

#[derive(Debug)]
struct Inner {
    /// Requests in flight (more than one only on HTTP/2).
    inflight: usize,
    /// `None` while a request is in flight.
    idle: Option<IdleDeadline>,
    /// The reader that last found nothing to read while a request was in flight: woken when
    /// the connection turns idle, so that its deadline gets armed (hyper does not poll the
    /// socket again by itself after a response).
    parked_reader: Option<Waker>,
}

/// What one connection's reader and its requests share.
#[derive(Debug)]
pub struct ConnState {
    inner: Mutex<Inner>,
    header: Duration,
    keepalive: Duration,
    write: Duration,
    metrics: Arc<ConnectionMetrics>,
}

impl ConnState {
    /// A fresh connection: its first request head is due within the header timeout.
    pub fn new(limits: &ClientLimits, metrics: Arc<ConnectionMetrics>) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                inflight: 0,
                parked_reader: None,
                idle: Some(IdleDeadline {
                    at: Instant::now() + limits.header_timeout,
                    phase: TimeoutPhase::Header,
                }),
            }),
            header: limits.header_timeout,
            keepalive: limits.keepalive_timeout,
            write: limits.write_timeout,
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request head arrived: the connection is busy until the guard is dropped (when the
    /// response body has been sent, or the request was abandoned).
    pub fn begin_request(self: &Arc<Self>) -> InflightGuard {
        let mut inner = self.lock();
        inner.inflight += 1;
        inner.idle = None;
        InflightGuard(self.clone())
    }

    /// Bytes came in: a kept-alive connection that starts a request gets the header timeout
    /// for the rest of the head.
    fn on_bytes_read(&self) {
        let mut inner = self.lock();
        if inner
            .idle
            .is_some_and(|d| d.phase == TimeoutPhase::KeepAlive)
        {
            inner.idle = Some(IdleDeadline {
                at: Instant::now() + self.header,
                phase: TimeoutPhase::Header,
            });
        }
    }

    /// The idle deadline; while busy, remembers `waker` to be woken when the connection turns
    /// idle.
    fn idle_deadline_or_park(&self, waker: &Waker) -> Option<IdleDeadline> {
        let mut inner = self.lock();
        if inner.idle.is_none() {
            match inner.parked_reader.as_mut() {
                Some(w) => w.clone_from(waker),
                None => inner.parked_reader = Some(waker.clone()),
            }
        }
        inner.idle
    }
}

/// Marks one request in flight on its connection.
#[derive(Debug)]
pub struct InflightGuard(Arc<ConnState>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        let state = &self.0;
        let parked = {
            let mut inner = state.lock();
            inner.inflight = inner.inflight.saturating_sub(1);
            if inner.inflight > 0 {
                return;
            }
            inner.idle = Some(IdleDeadline {
                at: Instant::now() + state.keepalive,
                phase: TimeoutPhase::KeepAlive,
            });
            inner.parked_reader.take()
        };
        if let Some(w) = parked {
            w.wake();
        }
    }
}

/// The client socket, with reads bounded by the connection's idle deadline and writes by the
/// write timeout (a client that stops reading its answer cannot hold the connection, its slot
/// and hyper's bounded write buffer forever).
pub struct GuardedIo<T> {
    inner: T,
    state: Arc<ConnState>,
    sleep: Pin<Box<Sleep>>,
    armed_for: Option<Instant>,
    timed_out: bool,
    /// Armed when a write first finds the socket full; cleared by any write that progresses.
    write_sleep: Option<Pin<Box<Sleep>>>,
}

impl<T> GuardedIo<T> {
    /// Wraps an accepted socket.
    pub fn new(inner: T, state: Arc<ConnState>) -> Self {
        Self {
            inner,
            state,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed_for: None,
            timed_out: false,
            write_sleep: None,
        }
    }

    /// The socket would block: fails once the write has been blocked for the write timeout.
    fn blocked_write<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let write = self.state.write;
        let sleep = self
            .write_sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(write)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!("closing a client connection that stopped reading its answer");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading its answer",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Routes one write result through the write timeout.
    fn timed_write<R>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match r {
            Poll::Pending => self.blocked_write(cx),
            ready => {
                self.write_sleep = None;
                ready
            }
        }
    }
}

fn timeout_error(phase: TimeoutPhase) -> io::Error {
    let what = match phase {
        TimeoutPhase::Header => "no complete request head in time",
        TimeoutPhase::KeepAlive => "kept-alive connection idle for too long",
        TimeoutPhase::Body => "request body stalled",
    };
    io::Error::new(io::ErrorKind::TimedOut, what)
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.state.on_bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(deadline) = this.state.idle_deadline_or_park(cx.waker()) else {
                    return Poll::Pending;
                };
                if this.armed_for != Some(deadline.at) {
                    this.sleep.as_mut().reset(deadline.at);
                    this.armed_for = Some(deadline.at);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        if !this.timed_out {
                            this.timed_out = true;
                            this.state.metrics.timed_out(deadline.phase);
                            tracing::debug!(phase = ?deadline.phase, "closing a slow client connection");
                        }
                        Poll::Ready(Err(timeout_error(deadline.phase)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.timed_write(cx, r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.timed_write(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.timed_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that must keep arriving: a gap longer than the body idle timeout ends it with
/// a `TimedOut` error (the handler answers, and the connection is closed). The clock starts when
/// the handler first reads, so a body nobody reads is never timed here.
pub struct TimedBody<B> {
    inner: B,
    idle: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    metrics: Arc<ConnectionMetrics>,
    done: bool,
}

impl<B> TimedBody<B> {
    /// Wraps a request body.
    pub fn new(inner: B, idle: Duration, metrics: Arc<ConnectionMetrics>) -> Self {
        Self {
            inner,
            idle,
            sleep: None,
            metrics,
            done: false,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(s) = this.sleep.as_mut() {
                    s.as_mut().reset(Instant::now() + this.idle);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(io::Error::other(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let idle = this.idle;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.done = true;
                        this.metrics.timed_out(TimeoutPhase::Body);
                        let ms = idle.as_millis();
                        Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "no request body bytes for {ms} ms (CLIENT_BODY_IDLE_TIMEOUT_MS)"
                            ),
                        ))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request marked in flight until it has been sent.
pub struct GuardedBody<B> {
    inner: B,
    _inflight: InflightGuard,
}

impl<B> GuardedBody<B> {
    /// Ties `inflight` to `inner`'s lifetime.
    pub fn new(inner: B, inflight: InflightGuard) -> Self {
        Self {
            inner,
            _inflight: inflight,
        }
    }
}

impl<B: Body + Unpin> Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
