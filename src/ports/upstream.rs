//! Calling an upstream provider over HTTP. The adapter (reqwest) owns connection pools, one
//! per distinct outbound-proxy setting; the app only sees requests, statuses and byte streams.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

/// Which part of an upstream call failed, to classify it (network errors are "system errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// TCP connect refused or unreachable.
    Connect,
    /// Name resolution failed.
    Dns,
    /// TLS handshake failed.
    Tls,
    /// No response headers (or first byte) in time.
    Timeout,
    /// The outbound proxy itself failed (connect/handshake to the proxy).
    Proxy,
    /// The connection broke while reading the body.
    Body,
    /// Anything else (invalid request, redirect loop, ...).
    Other,
}

/// A failed upstream call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct UpstreamFailure {
    /// What failed.
    pub kind: FailureKind,
    /// Human-readable detail without secrets.
    pub message: String,
}

impl UpstreamFailure {
    /// Builds a failure.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// A request to send upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// Full URL.
    pub url: String,
    /// Headers to send (already filtered and with the provider's credentials).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// Outbound proxy URL, if any.
    pub proxy_url: Option<String>,
    /// Time allowed until response headers arrive.
    pub header_timeout: Duration,
}

/// The body of an upstream response, delivered chunk by chunk as it arrives.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamFailure>> + Send>>;

/// An upstream response whose headers have arrived.
pub struct UpstreamResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body stream.
    pub body: ByteStream,
}

impl std::fmt::Debug for UpstreamResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Sends requests to upstream providers.
#[async_trait]
#[cfg_attr(test, mockall::automock)]
pub trait UpstreamClient: Send + Sync {
    /// POSTs the request and returns once response headers arrived (or it failed).
    async fn post(&self, req: UpstreamRequest) -> Result<UpstreamResponse, UpstreamFailure>;
}
