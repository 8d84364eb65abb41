//! Passing an upstream SSE stream to the client chunk by chunk, unbuffered, while a tap parses
//! events for usage. Idle gaps are bounded; a break after the first byte ends the stream with a
//! Claude `error` event (never a retry); a client that goes away cancels the upstream (the
//! stream is dropped) and the request is still logged. A stream still open when shutdown's drain
//! time is over ends with an `error` event ("the server is shutting down; retry") and a proper
//! end of body, and is logged as a server-side cut (status 503), not as a client abort.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

use crate::app::policy::ProviderOutcome;
use crate::domain::chain::{ChainOutcome, ProviderChain};
use crate::domain::client_error::claude_stream_error_event;
use crate::domain::convert::{OutEvent, StreamConverter, dispatch};
use crate::domain::failure::ErrorClass;
use crate::domain::sse::{SseEvent, SseParser};
use crate::domain::usage::ClaudeStreamTap;
use crate::ports::upstream::ByteStream;

use super::record::{Ending, Recorder, RequestFacts, Served};

/// What a client reads when shutdown cuts its stream.
pub const SHUTDOWN_CLIENT_MESSAGE: &str = "the server is shutting down; retry";
/// The request-log error of a stream cut by shutdown.
pub const SHUTDOWN_LOG_MESSAGE: &str =
    "stream cut by server shutdown: the drain time (SHUTDOWN_DRAIN_TIMEOUT_MS) ended first";
/// The request-log status of a stream cut by shutdown (the client got 200 and then an error
/// event; the row says the server, not the client or the provider, ended it).
pub const SHUTDOWN_CUT_STATUS: u16 = 503;

/// Tells open streams that shutdown's drain time is over and they must end now.
#[derive(Debug, Clone)]
pub struct ShutdownCut(tokio::sync::watch::Receiver<bool>);

impl ShutdownCut {
    /// A cut signal and its trigger (send `true` to cut every open stream).
    pub fn channel() -> (tokio::sync::watch::Sender<bool>, Self) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Self(rx))
    }

    /// A signal that never fires (for services built without a server).
    pub fn never() -> Self {
        Self::channel().1
    }

    fn wait(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut rx = self.0.clone();
        Box::pin(async move {
            if rx.wait_for(|cut| *cut).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// Everything needed to write the log row when the stream ends.
pub struct StreamFinish {
    /// Request facts.
    pub facts: RequestFacts,
    /// The provider that serves the stream.
    pub served: Served,
    /// The attempts so far (the last one is the serving attempt, marked success).
    pub chain: ProviderChain,
    /// Status sent to the client.
    pub status: u16,
    /// Time to first byte.
    pub ttfb_ms: Option<i64>,
    /// Where rows go.
    pub recorder: Arc<Recorder>,
    /// The configuration the serving provider comes from (its breaker learns how the stream
    /// ended; held by reference rather than copying the provider for every stream).
    pub snapshot: Arc<crate::app::snapshot::ConfigSnapshot>,
    /// Circuit breakers.
    pub breakers: Arc<dyn crate::app::policy::Breakers>,
    /// Fires when shutdown cuts open streams.
    pub cut: ShutdownCut,
}

/// How events travel from the upstream's format to the client's.
pub struct Pipeline {
    /// Upstream format → Claude events (`None` when the upstream speaks Claude).
    pub to_claude: Option<Box<dyn StreamConverter>>,
    /// Claude events → client format (`None` when the client speaks Claude).
    pub from_claude: Option<Box<dyn StreamConverter>>,
    /// Same format on both sides: forward the upstream bytes untouched (converters, if any,
    /// only feed the usage tap).
    pub passthrough: bool,
}

/// The client-facing stream.
pub struct TappedStream {
    first: Option<Bytes>,
    inner: ByteStream,
    parser: SseParser,
    tap: ClaudeStreamTap,
    pipeline: Pipeline,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    finish: Option<StreamFinish>,
    tail: [u8; 2],
    done: bool,
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
    cut_by_shutdown: bool,
}

/// The breaker's last error for a stream that broke mid-way: the proxy's own description of the
/// break (transport error, idle timeout, early end, unreadable event), never stream content.
fn stream_break_message(error: Option<&str>) -> String {
    match error {
        Some(e) if !e.trim().is_empty() => format!("stream broke mid-way: {e}"),
        _ => "stream broke mid-way".to_string(),
    }
}

fn as_sse_event(e: &OutEvent) -> SseEvent {
    SseEvent {
        event: e.event.clone(),
        data: e.data.clone(),
        id: None,
        retry: None,
    }
}

impl TappedStream {
    /// Wraps the upstream body whose first chunk has already been read.
    pub fn new(
        first: Bytes,
        inner: ByteStream,
        idle: Duration,
        finish: StreamFinish,
        pipeline: Pipeline,
    ) -> Self {
        let cut = finish.cut.wait();
        Self {
            first: Some(first),
            inner,
            parser: SseParser::new(),
            tap: ClaudeStreamTap::new(),
            pipeline,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            finish: Some(finish),
            tail: [b'\n', b'\n'],
            done: false,
            cut,
            cut_by_shutdown: false,
        }
    }

    /// Feeds Claude events to the tap and, when converting, renders them for the client.
    fn on_claude_events(&mut self, events: &[SseEvent], out: &mut String) {
        for ev in events {
            self.tap.on_event(ev);
            if self.pipeline.passthrough {
                continue;
            }
            match self.pipeline.from_claude.as_mut() {
                None => out.push_str(
                    &OutEvent {
                        event: ev.event.clone(),
                        data: ev.data.clone(),
                    }
                    .to_sse(),
                ),
                Some(conv) => match conv.push(ev) {
                    Ok(evs) => evs.iter().for_each(|e| out.push_str(&e.to_sse())),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot convert a stream event for the client")
                    }
                },
            }
        }
    }

    /// Parses a chunk; returns what the client must receive for it.
    fn observe(&mut self, chunk: &Bytes) -> Result<Bytes, String> {
        match chunk.len() {
            0 => {}
            1 => self.tail = [self.tail[1], chunk[0]],
            n => self.tail = [chunk[n - 2], chunk[n - 1]],
        }
        let events = match self.parser.push(chunk) {
            Ok(events) => events,
            Err(e) => {
                if self.pipeline.passthrough {
                    tracing::warn!(error = %e, "unparseable upstream SSE; passing bytes through");
                    return Ok(chunk.clone());
                }
                return Err(format!("unparseable upstream stream: {e}"));
            }
        };
        let mut out = String::new();
        for ev in &events {
            let claude_events = match self.pipeline.to_claude.as_mut() {
                None => vec![ev.clone()],
                Some(conv) => match conv.push(ev) {
                    Ok(evs) => evs.iter().map(as_sse_event).collect(),
                    Err(e) if self.pipeline.passthrough => {
                        tracing::debug!(error = %e, "usage tap could not read an event");
                        Vec::new()
                    }
                    Err(e) => return Err(format!("malformed upstream event: {e}")),
                },
            };
            self.on_claude_events(&claude_events, &mut out);
        }
        if self.pipeline.passthrough {
            Ok(chunk.clone())
        } else {
            Ok(Bytes::from(out))
        }
    }

    /// Closing events of the converters when the upstream ended.
    fn closing(&mut self) -> Bytes {
        let mut out = String::new();
        if let Ok(Some(ev)) = self.parser.finish() {
            let mut tmp = String::new();
            let evs = match self.pipeline.to_claude.as_mut() {
                None => vec![ev],
                Some(conv) => conv
                    .push(&ev)
                    .map(|v| v.iter().map(as_sse_event).collect())
                    .unwrap_or_default(),
            };
            self.on_claude_events(&evs, &mut tmp);
            out.push_str(&tmp);
        }
        if let Some(conv) = self.pipeline.to_claude.as_mut() {
            let evs: Vec<SseEvent> = conv.finish().iter().map(as_sse_event).collect();
            self.on_claude_events(&evs, &mut out);
        }
        if !self.pipeline.passthrough
            && let Some(conv) = self.pipeline.from_claude.as_mut()
        {
            conv.finish().iter().for_each(|e| out.push_str(&e.to_sse()));
        }
        if self.pipeline.passthrough {
            Bytes::new()
        } else {
            Bytes::from(out)
        }
    }

    fn complete(&mut self, error: Option<String>, outcome: ChainOutcome) {
        let Some(mut f) = self.finish.take() else {
            return;
        };
        if let Some(last) = f.chain.0.last_mut() {
            last.outcome = outcome;
            if let Some(e) = &error {
                last.error = Some(e.clone());
            }
        }
        let status = if self.cut_by_shutdown {
            SHUTDOWN_CUT_STATUS
        } else if outcome == ChainOutcome::ClientAbort {
            499
        } else {
            f.status
        };
        // A stream that completes is a success; one that breaks mid-way is a provider failure;
        // a client abort or a shutdown cut is nobody's failure (recorded only to release a
        // half-open trial).
        let verdict = match outcome {
            _ if self.cut_by_shutdown => {
                ProviderOutcome::failure(ErrorClass::ClientAbort, "cut by server shutdown")
            }
            ChainOutcome::Success => ProviderOutcome::Success,
            ChainOutcome::Failure => ProviderOutcome::failure(
                ErrorClass::ProviderError,
                stream_break_message(error.as_deref()),
            ),
            ChainOutcome::ClientAbort => {
                ProviderOutcome::failure(ErrorClass::ClientAbort, "client closed the connection")
            }
        };
        let needless = verdict == ProviderOutcome::Success && !f.served.report_success;
        if let (Ok(handle), false) = (tokio::runtime::Handle::try_current(), needless) {
            let (breakers, snapshot, id) =
                (f.breakers.clone(), f.snapshot.clone(), f.served.provider_id);
            let elapsed = i64::try_from(f.facts.started.elapsed().as_millis()).unwrap_or(0);
            let now = f.facts.created_at + chrono::Duration::milliseconds(elapsed);
            super::detached::run_or_spawn(&handle, async move {
                if let Some(provider) = snapshot.provider(id) {
                    breakers.record(provider, verdict, now).await;
                }
            });
        }
        let error = error.or_else(|| self.tap.error_message().map(str::to_string));
        f.recorder.record(
            &f.facts,
            Some(&f.served),
            Ending {
                status,
                usage: self.tap.usage(),
                ttfb_ms: f.ttfb_ms,
                chain: &f.chain,
                error,
            },
        );
    }

    /// Ends the stream with an error event in the client's format (after a blank line if an
    /// event was cut short).
    fn fail(&mut self, message: String) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        let out = self.error_event(&message);
        self.complete(Some(message), ChainOutcome::Failure);
        Poll::Ready(Some(Ok(out)))
    }

    /// Ends the stream because shutdown's drain time is over: the client is told to retry, the
    /// body ends properly, and the row records a server-side cut (the provider keeps its
    /// success: it did nothing wrong).
    fn cut_by_shutdown(&mut self) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        self.first = None;
        let out = self.error_event(SHUTDOWN_CLIENT_MESSAGE);
        self.cut_by_shutdown = true;
        self.complete(Some(SHUTDOWN_LOG_MESSAGE.into()), ChainOutcome::Success);
        Poll::Ready(Some(Ok(out)))
    }

    /// The final error event, in the client's format; marks the stream done.
    fn error_event(&mut self, message: &str) -> Bytes {
        self.done = true;
        let mut out = String::new();
        if self.pipeline.passthrough && self.tail != [b'\n', b'\n'] {
            out.push_str("\n\n");
        }
        let client = self.finish.as_ref().map(|f| f.facts.format);
        let empty = serde_json::Value::Null;
        let ctx = dispatch::ClientContext {
            request: &empty,
            model: "",
            created_at: 0,
        };
        let mut fresh = client.and_then(|c| dispatch::stream_from_claude(c, &ctx));
        let conv = if self.pipeline.passthrough {
            fresh.as_mut()
        } else {
            self.pipeline.from_claude.as_mut()
        };
        match conv {
            Some(c) => c
                .error(message)
                .iter()
                .for_each(|e| out.push_str(&e.to_sse())),
            None => out.push_str(&claude_stream_error_event("api_error", message)),
        }
        Bytes::from(out)
    }
}

impl Stream for TappedStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if !this.done && this.cut.as_mut().poll(cx).is_ready() {
            return this.cut_by_shutdown();
        }
        if let Some(first) = this.first.take() {
            match this.observe(&first) {
                Ok(out) if !out.is_empty() => return Poll::Ready(Some(Ok(out))),
                Ok(_) => {}
                Err(m) => return this.fail(m),
            }
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let deadline = tokio::time::Instant::now() + this.idle;
                    this.sleep.as_mut().reset(deadline);
                    match this.observe(&chunk) {
                        Ok(out) if !out.is_empty() => return Poll::Ready(Some(Ok(out))),
                        Ok(_) => continue,
                        Err(m) => return this.fail(m),
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return this.fail(format!("upstream stream broke: {}", e.message));
                }
                Poll::Ready(None) => {
                    let tail = this.closing();
                    if !this.tap.completed() && !this.tap.saw_error() {
                        return this.fail("upstream stream ended before its final event".into());
                    }
                    this.done = true;
                    this.complete(None, ChainOutcome::Success);
                    return Poll::Ready(if tail.is_empty() {
                        None
                    } else {
                        Some(Ok(tail))
                    });
                }
                Poll::Pending => {
                    return match this.sleep.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            let ms = this.idle.as_millis();
                            this.fail(format!("upstream stream idle for more than {ms} ms"))
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl Drop for TappedStream {
    fn drop(&mut self) {
        if self.finish.is_some() {
            // The client went away mid-stream: the upstream request is cancelled with us.
            self.complete(
                Some("client closed the connection".into()),
                ChainOutcome::ClientAbort,
            );
        }
    }
}
