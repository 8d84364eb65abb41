//! The record kept for every client request: who, where, what it cost, how it went.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One request log row (append-only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLog {
    /// Database id (0 before insertion).
    pub id: i64,
    /// Unique id assigned when the request arrived; makes replays from the spool idempotent.
    pub request_id: String,
    /// When the request arrived.
    pub created_at: DateTime<Utc>,
    /// The user, if the key was recognised.
    pub user_id: Option<i64>,
    /// The key, if recognised.
    pub key_id: Option<i64>,
    /// The provider that served (or last tried) the request.
    pub provider_id: Option<i64>,
    /// Model the client asked for.
    pub requested_model: Option<String>,
    /// Model sent upstream after redirects.
    pub forwarded_model: Option<String>,
    /// Client endpoint, e.g. `/v1/messages`.
    pub endpoint: String,
    /// Client wire format (`claude`, `openai`, `response`, `gemini`).
    pub client_format: String,
    /// HTTP status returned to the client.
    pub status_code: i32,
    /// Whether the answer was streamed.
    pub is_stream: bool,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache writes, 5 minute TTL.
    pub cache_creation_5m_tokens: i64,
    /// Cache writes, 1 hour TTL.
    pub cache_creation_1h_tokens: i64,
    /// Cache reads.
    pub cache_read_tokens: i64,
    /// Cost in USD after the provider multiplier.
    pub cost_usd: Decimal,
    /// False when the model had no price (cost recorded as 0).
    pub cost_known: bool,
    /// Whole duration in ms.
    pub duration_ms: i64,
    /// Time to the first byte sent to the client, in ms.
    pub ttfb_ms: Option<i64>,
    /// Attempts made (provider, reason, outcome, status, class, duration) as JSON.
    pub provider_chain: serde_json::Value,
    /// Session id derived from the request.
    pub session_id: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
    /// Error shown to the client, redacted of secrets.
    pub error_message: Option<String>,
}

/// Filters for listing request logs; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    /// Only this user.
    pub user_id: Option<i64>,
    /// Only this key.
    pub key_id: Option<i64>,
    /// Only this provider.
    pub provider_id: Option<i64>,
    /// Requested or forwarded model equals this.
    pub model: Option<String>,
    /// Status class: 2, 4 or 5 (2xx, 4xx, 5xx).
    pub status_class: Option<i32>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// Only this session.
    pub session_id: Option<String>,
    /// Cursor: only rows with an id below this (newest first).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: i64,
}
