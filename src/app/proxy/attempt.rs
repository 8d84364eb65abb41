//! One upstream attempt: send, classify the status, wait for the first byte of a stream or
//! read a complete body, within the provider's timeouts.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::domain::failure::{ErrorClass, classify_http};
use crate::domain::provider::{Provider, ProviderType};
use crate::ports::upstream::{ByteStream, FailureKind, UpstreamRequest};

use super::code_assist::{EnvelopeStream, unwrap_full};
use super::convert_io::Prepared;
use super::{ClientRequest, ProxyService, forward};

/// Largest upstream error body read (to classify it).
const MAX_ERROR_BODY: usize = 1 << 20;
/// Largest non-streaming upstream answer buffered.
const MAX_FULL_BODY: usize = 256 << 20;

/// A successful (or client-error) upstream answer of one attempt.
pub(super) enum AttemptOk {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    Stream {
        status: u16,
        headers: Vec<(String, String)>,
        first: Bytes,
        rest: ByteStream,
    },
    ClientError {
        status: u16,
        body: Bytes,
        message: String,
        override_: Option<(Option<u16>, Option<String>)>,
        /// An error rule says stripping the thinking blocks may cure it (see `rectify`).
        rectifiable: bool,
    },
}

impl AttemptOk {
    /// The upstream's HTTP status.
    pub(super) fn status(&self) -> u16 {
        match self {
            Self::Full { status, .. }
            | Self::Stream { status, .. }
            | Self::ClientError { status, .. } => *status,
        }
    }
}

/// A failed attempt.
pub(super) struct AttemptErr {
    pub(super) class: ErrorClass,
    pub(super) status: Option<u16>,
    pub(super) message: String,
    pub(super) proxy_failed: bool,
    pub(super) timeout: bool,
    /// What the content gate recognised (`fake_200_html`, `empty_stream`, …), for the chain.
    pub(super) detection: Option<&'static str>,
}

impl AttemptErr {
    /// What the key holder is told. Transport details (`tcp connect error`, a SOCKS failure, a
    /// broken body) stay in the provider chain for admins; the client gets a stable reason. An
    /// HTTP error answer keeps the upstream's own (summarised, capped) message.
    pub(super) fn client_text(&self) -> String {
        match (self.status, self.timeout) {
            (_, true) => "the upstream provider timed out".into(),
            (None, false) => "the upstream provider could not be reached".into(),
            (Some(_), false) if self.class == ErrorClass::SystemError => {
                "the upstream provider's answer broke off".into()
            }
            (Some(_), false) => format!("upstream request failed after retries: {}", self.message),
        }
    }
}

impl ProxyService {
    /// One upstream try.
    pub(super) async fn attempt(
        &self,
        req: &ClientRequest,
        p: &Provider,
        prepared: &Prepared,
        is_stream: bool,
        use_proxy: bool,
    ) -> Result<AttemptOk, AttemptErr> {
        let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
        let header_timeout = if is_stream {
            ms(p.timeouts.first_byte_timeout_ms)
        } else {
            ms(p.timeouts.request_timeout_ms)
        };
        let started = Instant::now();
        let secret = self
            .tokens
            .secret_for(p, use_proxy)
            .await
            .map_err(|e| AttemptErr {
                class: ErrorClass::ProviderError,
                status: None,
                message: e.0,
                proxy_failed: false,
                timeout: false,
                detection: None,
            })?;
        let up = UpstreamRequest {
            url: forward::join_url(&p.base_url, &prepared.path, prepared.query.as_deref()),
            headers: forward::upstream_headers(&req.headers, p, &secret, &prepared.body),
            body: prepared.body.clone(),
            proxy_url: if use_proxy { p.proxy_url.clone() } else { None },
            header_timeout,
        };
        let resp = self.upstream.post(up).await.map_err(|f| AttemptErr {
            class: ErrorClass::SystemError,
            status: None,
            message: f.message.clone(),
            proxy_failed: f.kind == FailureKind::Proxy,
            timeout: f.kind == FailureKind::Timeout,
            detection: None,
        })?;
        let remaining = header_timeout.saturating_sub(started.elapsed());
        let status = resp.status;
        let code_assist = p.provider_type == ProviderType::GeminiCli;
        let mut body_stream = resp.body;
        if !(200..300).contains(&status) {
            let (bytes, _) = read_body(
                &mut body_stream,
                MAX_ERROR_BODY,
                remaining.max(Duration::from_secs(5)),
            )
            .await;
            let text = String::from_utf8_lossy(&bytes).to_string();
            let rules = self.snapshot.get().error_rules.clone();
            let c = classify_http(status, &text, &rules);
            if c.class.is_client_side() {
                let override_ = c.override_.map(|o| (o.status, o.message));
                return Ok(AttemptOk::ClientError {
                    status,
                    body: bytes,
                    message: c.message,
                    override_,
                    rectifiable: c.class == ErrorClass::RectifyThinkingSignature,
                });
            }
            return Err(AttemptErr {
                class: c.class,
                status: Some(status),
                message: c.message,
                proxy_failed: false,
                timeout: false,
                detection: None,
            });
        }
        let is_sse = resp
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.contains("text/event-stream"));
        if is_sse && code_assist {
            body_stream = Box::pin(EnvelopeStream::unwrap(body_stream));
        }
        if is_sse {
            // Wait for the first body chunk within the first-byte budget, then stream.
            let first = tokio::time::timeout(remaining, body_stream.next()).await;
            return match first {
                Err(_) => Err(AttemptErr {
                    class: ErrorClass::SystemError,
                    status: Some(status),
                    message: format!("no first byte within {} ms", header_timeout.as_millis()),
                    proxy_failed: false,
                    timeout: true,
                    detection: None,
                }),
                Ok(Some(Ok(first))) => Ok(AttemptOk::Stream {
                    status,
                    headers: resp.headers,
                    first,
                    rest: body_stream,
                }),
                Ok(Some(Err(e))) => Err(AttemptErr {
                    class: ErrorClass::SystemError,
                    status: Some(status),
                    message: e.message,
                    proxy_failed: false,
                    timeout: false,
                    detection: None,
                }),
                Ok(None) => Err(AttemptErr {
                    class: ErrorClass::ProviderError,
                    status: Some(status),
                    message: "upstream sent an empty stream".into(),
                    proxy_failed: false,
                    timeout: false,
                    detection: Some("empty_stream"),
                }),
            };
        }
        let budget = if is_stream {
            ms(p.timeouts.request_timeout_ms)
        } else {
            remaining
        };
        let (bytes, complete) = read_body(&mut body_stream, MAX_FULL_BODY, budget).await;
        match complete {
            BodyEnd::Complete => Ok(AttemptOk::Full {
                status,
                headers: resp.headers,
                body: if code_assist {
                    unwrap_full(bytes)
                } else {
                    bytes
                },
            }),
            BodyEnd::TimedOut => Err(AttemptErr {
                class: ErrorClass::SystemError,
                status: Some(status),
                message: "upstream response body timed out".into(),
                proxy_failed: false,
                timeout: true,
                detection: None,
            }),
            BodyEnd::Broken(m) => Err(AttemptErr {
                class: ErrorClass::SystemError,
                status: Some(status),
                message: m,
                proxy_failed: false,
                timeout: false,
                detection: None,
            }),
        }
    }
}

enum BodyEnd {
    Complete,
    TimedOut,
    Broken(String),
}

async fn read_body(stream: &mut ByteStream, max: usize, budget: Duration) -> (Bytes, BodyEnd) {
    let deadline = tokio::time::Instant::now() + budget;
    let mut buf = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return (buf.freeze(), BodyEnd::TimedOut),
            Ok(None) => return (buf.freeze(), BodyEnd::Complete),
            Ok(Some(Err(e))) => return (buf.freeze(), BodyEnd::Broken(e.message)),
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > max {
                    return (
                        buf.freeze(),
                        BodyEnd::Broken(format!("upstream body larger than {max} bytes")),
                    );
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}
