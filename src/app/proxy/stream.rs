//! Passing an upstream SSE stream to the client chunk by chunk, unbuffered, while a tap parses
//! events for usage. Idle gaps are bounded; a break after the first byte ends the stream with a
//! Claude `error` event (never a retry); a client that goes away cancels the upstream (the
//! stream is dropped) and the request is still logged.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

use crate::app::policy::ProviderOutcome;
use crate::domain::chain::{ChainOutcome, ProviderChain};
use crate::domain::client_error::claude_stream_error_event;
use crate::domain::failure::ErrorClass;
use crate::domain::sse::SseParser;
use crate::domain::usage::ClaudeStreamTap;
use crate::ports::upstream::ByteStream;

use super::record::{Ending, Recorder, RequestFacts, Served};

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
    /// The serving provider (its breaker learns how the stream ended).
    pub provider: crate::domain::provider::Provider,
    /// Circuit breakers.
    pub breakers: Arc<dyn crate::app::policy::Breakers>,
}

/// The client-facing stream.
pub struct TappedStream {
    first: Option<Bytes>,
    inner: ByteStream,
    parser: SseParser,
    tap: ClaudeStreamTap,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    finish: Option<StreamFinish>,
    tail: [u8; 2],
    done: bool,
}

impl TappedStream {
    /// Wraps the upstream body whose first chunk has already been read.
    pub fn new(first: Bytes, inner: ByteStream, idle: Duration, finish: StreamFinish) -> Self {
        Self {
            first: Some(first),
            inner,
            parser: SseParser::new(),
            tap: ClaudeStreamTap::new(),
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            finish: Some(finish),
            tail: [b'\n', b'\n'],
            done: false,
        }
    }

    fn observe(&mut self, chunk: &Bytes) {
        match chunk.len() {
            0 => {}
            1 => self.tail = [self.tail[1], chunk[0]],
            n => self.tail = [chunk[n - 2], chunk[n - 1]],
        }
        match self.parser.push(chunk) {
            Ok(events) => {
                for ev in &events {
                    self.tap.on_event(ev);
                }
            }
            Err(e) => tracing::warn!(error = %e, "unparseable upstream SSE; passing bytes through"),
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
        let status = if outcome == ChainOutcome::ClientAbort {
            499
        } else {
            f.status
        };
        // A stream that completes is a success; one that breaks mid-way is a provider failure;
        // a client abort is nobody's failure.
        let verdict = match outcome {
            ChainOutcome::Success => Some(ProviderOutcome::Success),
            ChainOutcome::Failure => Some(ProviderOutcome::Failure(ErrorClass::ProviderError)),
            ChainOutcome::ClientAbort => None,
        };
        if let Some(v) = verdict
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (breakers, provider) = (f.breakers.clone(), f.provider.clone());
            let elapsed = i64::try_from(f.facts.started.elapsed().as_millis()).unwrap_or(0);
            let now = f.facts.created_at + chrono::Duration::milliseconds(elapsed);
            handle.spawn(async move { breakers.record(&provider, v, now).await });
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

    /// Ends the stream with an `error` event (after a blank line if an event was cut short).
    fn fail(&mut self, message: String) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        self.done = true;
        let mut out = String::new();
        if self.tail != [b'\n', b'\n'] {
            out.push_str("\n\n");
        }
        out.push_str(&claude_stream_error_event("api_error", &message));
        self.complete(Some(message), ChainOutcome::Failure);
        Poll::Ready(Some(Ok(Bytes::from(out))))
    }
}

impl Stream for TappedStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            this.observe(&first);
            return Poll::Ready(Some(Ok(first)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let deadline = tokio::time::Instant::now() + this.idle;
                this.sleep.as_mut().reset(deadline);
                this.observe(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => this.fail(format!("upstream stream broke: {}", e.message)),
            Poll::Ready(None) => {
                if let Ok(Some(ev)) = this.parser.finish() {
                    this.tap.on_event(&ev);
                }
                if !this.tap.completed() && !this.tap.saw_error() {
                    return this.fail("upstream stream ended before message_stop".into());
                }
                this.done = true;
                this.complete(None, ChainOutcome::Success);
                Poll::Ready(None)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let ms = this.idle.as_millis();
                    this.fail(format!("upstream stream idle for more than {ms} ms"))
                }
                Poll::Pending => Poll::Pending,
            },
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
