//! Code Assist envelopes on the wire (see `domain::code_assist`): `gemini-cli` providers'
//! answers are unwrapped as they arrive, so routing, the content gate, converters and usage see
//! plain Gemini; answers to `/v1internal` clients are wrapped on their way out.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use crate::domain::code_assist::{Method, unwrap_answer, wrap_answer};
use crate::domain::sse::{SseEvent, SseParser};

use super::{ProxyBody, ProxyResponse};

/// Which way a stream's events are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// `{"response": X}` → `X` (from a `gemini-cli` provider).
    Unwrap,
    /// `X` → `{"response": X}` (to a `/v1internal` client).
    Wrap,
}

/// An SSE byte stream whose events' data are unwrapped or wrapped one by one. Holds at most one
/// incomplete event (the parser's bounded buffer); an event that cannot be parsed ends the
/// rewriting and the rest passes as it comes, for the next stage to judge.
pub struct EnvelopeStream<S> {
    inner: S,
    parser: SseParser,
    direction: Direction,
    raw: bool,
    done: bool,
}

impl<S> EnvelopeStream<S> {
    /// Unwraps a `gemini-cli` provider's stream.
    pub fn unwrap(inner: S) -> Self {
        Self::new(inner, Direction::Unwrap)
    }

    /// Wraps a stream for a `/v1internal` client.
    pub fn wrap(inner: S) -> Self {
        Self::new(inner, Direction::Wrap)
    }

    fn new(inner: S, direction: Direction) -> Self {
        Self {
            inner,
            parser: SseParser::new(),
            direction,
            raw: false,
            done: false,
        }
    }

    fn render(&self, events: &[SseEvent]) -> Bytes {
        let mut out = Vec::new();
        for ev in events {
            let data = ev.data.as_bytes();
            let rewritten = match self.direction {
                Direction::Unwrap => unwrap_answer(data).map(|r| data[r].to_vec()),
                Direction::Wrap => wrap_answer(data),
            };
            if let Some(e) = &ev.event {
                out.extend_from_slice(b"event: ");
                out.extend_from_slice(e.as_bytes());
                out.push(b'\n');
            }
            for line in rewritten.as_deref().unwrap_or(data).split(|b| *b == b'\n') {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            out.push(b'\n');
        }
        Bytes::from(out)
    }
}

impl<S, E> Stream for EnvelopeStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(chunk))) if self.raw => return Poll::Ready(Some(Ok(chunk))),
                Poll::Ready(Some(Ok(chunk))) => match self.parser.push(&chunk) {
                    Ok(events) if events.is_empty() => continue,
                    Ok(events) => return Poll::Ready(Some(Ok(self.render(&events)))),
                    Err(_) => {
                        self.raw = true;
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                },
                Poll::Ready(None) => {
                    self.done = true;
                    if self.raw {
                        return Poll::Ready(None);
                    }
                    return match self.parser.finish() {
                        Ok(Some(ev)) => Poll::Ready(Some(Ok(self.render(&[ev])))),
                        _ => Poll::Ready(None),
                    };
                }
            }
        }
    }
}

/// A `gemini-cli` provider's complete answer without its envelope (the same bytes, sliced;
/// an answer without `response`, such as a count or an error, is left as it is).
pub fn unwrap_full(body: Bytes) -> Bytes {
    match unwrap_answer(&body) {
        Some(r) => body.slice(r),
        None => body,
    }
}

/// The answer to a `/v1internal` client: successes wrapped as Code Assist answers them (a
/// count is bare); errors stay Google-shaped errors.
pub fn wrap_client_answer(resp: ProxyResponse, method: Method) -> ProxyResponse {
    if !(200..300).contains(&resp.status) || method == Method::CountTokens {
        return resp;
    }
    let body = match resp.body {
        ProxyBody::Full(b) => ProxyBody::Full(wrap_answer(&b).map_or(b, Bytes::from)),
        ProxyBody::Stream(s) => ProxyBody::Stream(Box::pin(EnvelopeStream::wrap(s))),
    };
    ProxyResponse { body, ..resp }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn chunks(parts: &[&str]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        let v: Vec<Result<Bytes, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(Bytes::from(p.to_string())))
            .collect();
        futures_util::stream::iter(v)
    }

    async fn collect(s: impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin) -> String {
        let parts: Vec<_> = s.collect().await;
        parts
            .into_iter()
            .filter_map(Result::ok)
            .map(|b| String::from_utf8_lossy(&b).to_string())
            .collect()
    }

    #[tokio::test]
    async fn provider_chunks_are_unwrapped_across_chunk_boundaries() {
        let s = EnvelopeStream::unwrap(chunks(&[
            "data: {\"response\":{\"candidates\":[1]},\"tra",
            "ceId\":\"t\"}\r\n\r\ndata: {\"response\":{\"candidates\":[2]}}\n\n",
            "data: {\"error\":{\"code\":500}}\n\n",
        ]));
        assert_eq!(
            collect(s).await,
            "data: {\"candidates\":[1]}\n\ndata: {\"candidates\":[2]}\n\ndata: {\"error\":{\"code\":500}}\n\n"
        );
    }

    #[tokio::test]
    async fn client_chunks_are_wrapped_and_errors_are_not() {
        let s = EnvelopeStream::wrap(chunks(&[
            "data: {\"candidates\":[1]}\n\n",
            "data: {\"error\":{\"code\":500}}",
        ]));
        assert_eq!(
            collect(s).await,
            "data: {\"response\":{\"candidates\":[1]}}\n\ndata: {\"error\":{\"code\":500}}\n\n"
        );
    }

    #[test]
    fn full_answers_unwrap_and_wrap() {
        let b = Bytes::from_static(br#"{"response":{"candidates":[]},"traceId":"x"}"#);
        assert_eq!(&unwrap_full(b)[..], br#"{"candidates":[]}"#);
        let err = Bytes::from_static(br#"{"error":{"code":403}}"#);
        assert_eq!(unwrap_full(err.clone()), err);
        let resp = ProxyResponse {
            status: 200,
            headers: vec![],
            body: ProxyBody::Full(Bytes::from_static(br#"{"candidates":[]}"#)),
        };
        match wrap_client_answer(resp, Method::Generate).body {
            ProxyBody::Full(b) => assert_eq!(&b[..], br#"{"response":{"candidates":[]}}"#),
            ProxyBody::Stream(_) => panic!("a full answer"),
        }
    }
}
