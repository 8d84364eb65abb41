//! One delivery attempt over the outbound HTTP stack the upstreams use (timeouts, optional
//! proxy): send the rendered call, read a bounded answer, and judge it by the platform's rules.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::domain::notify::backoff::parse_retry_after;
use crate::domain::notify::platform::{OutboundCall, Verdict, judge};
use crate::domain::notify::target::TargetKind;
use crate::ports::upstream::{UpstreamClient, UpstreamRequest};

/// The most of an answer read (enough to parse any platform's JSON reply).
const MAX_ANSWER_READ: usize = 64 * 1024;
/// The most of an answer kept in the delivery log.
pub const MAX_ANSWER_KEPT: usize = 1024;

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// The platform's verdict (network failures are `Retry`).
    pub verdict: Verdict,
    /// HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// The answer (or the failure), cut to [`MAX_ANSWER_KEPT`] bytes.
    pub answer: String,
    /// `retry-after` from the header or the platform's body, in seconds.
    pub retry_after_secs: Option<i64>,
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Sends `call` to a `kind` platform and judges the answer.
pub async fn send(
    upstream: &dyn UpstreamClient,
    kind: TargetKind,
    call: OutboundCall,
    proxy_url: Option<String>,
    timeout: Duration,
    now: DateTime<Utc>,
) -> AttemptResult {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    headers.extend(call.headers);
    let req = UpstreamRequest {
        url: call.url,
        headers,
        body: Bytes::from(call.body),
        proxy_url,
        header_timeout: timeout,
    };
    let exchange = async {
        let resp = upstream.post(req).await?;
        let status = resp.status;
        let retry_after = resp
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| parse_retry_after(v, now));
        let mut body = Vec::new();
        let mut stream = resp.body;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            let room = MAX_ANSWER_READ.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_ANSWER_READ {
                break;
            }
        }
        Ok::<_, crate::ports::upstream::UpstreamFailure>((status, retry_after, body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => AttemptResult {
            verdict: Verdict::Retry {
                retry_after_secs: None,
            },
            status: None,
            answer: format!("no answer within {} ms", timeout.as_millis()),
            retry_after_secs: None,
        },
        Ok(Err(f)) => AttemptResult {
            verdict: Verdict::Retry {
                retry_after_secs: None,
            },
            status: None,
            answer: cut(&f.to_string(), MAX_ANSWER_KEPT),
            retry_after_secs: None,
        },
        Ok(Ok((status, header_retry, body))) => {
            let text = String::from_utf8_lossy(&body);
            let verdict = judge(kind, status, &text);
            let body_retry = match &verdict {
                Verdict::Retry { retry_after_secs } => *retry_after_secs,
                _ => None,
            };
            AttemptResult {
                verdict,
                status: Some(status),
                answer: cut(&text, MAX_ANSWER_KEPT),
                retry_after_secs: header_retry.or(body_retry),
            }
        }
    }
}
