//! What a request leaves behind when it ends: the log row, the cost, the session binding.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::domain::chain::ProviderChain;
use crate::domain::cost::{cost, find_price};
use crate::domain::format::ClientFormat;
use crate::domain::price::ModelPrice;
use crate::domain::request_log::RequestLog;
use crate::domain::usage::Usage;

use super::super::log_writer::LogWriter;
use super::super::policy::{Limiter, SpendRecord};

/// Facts about the request known before any upstream attempt.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// Unique id of this request (also the log row's idempotency key).
    pub request_id: String,
    /// Arrival time.
    pub created_at: DateTime<Utc>,
    /// Arrival instant, for durations.
    pub started: Instant,
    /// The user.
    pub user_id: Option<i64>,
    /// The key.
    pub key_id: Option<i64>,
    /// The model the client asked for.
    pub requested_model: Option<String>,
    /// The client endpoint.
    pub endpoint: String,
    /// The client format.
    pub format: ClientFormat,
    /// Whether the client asked for a stream.
    pub is_stream: bool,
    /// The session id.
    pub session_id: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The request's trace span (disabled unless traces are exported), parent of the log
    /// write's span, which may come after the request's own span ended (streams).
    pub span: tracing::Span,
}

/// The provider that answered, as far as accounting needs it.
#[derive(Debug, Clone)]
pub struct Served {
    /// Provider id.
    pub provider_id: i64,
    /// Its cost multiplier.
    pub cost_multiplier: Decimal,
    /// The model sent upstream.
    pub forwarded_model: String,
    /// Whether a success must be reported to the provider's breaker (false when it was read
    /// CLOSED with no failures, where a success changes nothing).
    pub report_success: bool,
}

/// Writes the one log row of a request.
pub struct Recorder {
    /// The log writer.
    pub logs: Arc<LogWriter>,
    /// Prices to compute cost from.
    pub prices: Arc<Vec<ModelPrice>>,
    /// Spend is added to the limit windows when a request ends.
    pub limiter: Arc<dyn Limiter>,
    /// Process-wide request counters.
    pub metrics: Arc<crate::app::metrics::ProxyMetrics>,
}

/// How the request ended.
pub struct Ending<'a> {
    /// Status the client got.
    pub status: u16,
    /// Token usage read from the answer.
    pub usage: Usage,
    /// Time to the first byte sent to the client.
    pub ttfb_ms: Option<i64>,
    /// The attempts.
    pub chain: &'a ProviderChain,
    /// The error shown to the client, if any.
    pub error: Option<String>,
}

impl Recorder {
    /// Computes the cost and queues the log row.
    pub fn record(
        &self,
        facts: &RequestFacts,
        served: Option<&Served>,
        end: Ending<'_>,
    ) -> (Decimal, bool) {
        let _span = tracing::info_span!(target: crate::app::tracing_spans::TARGET,
            parent: &facts.span, "log_write", http.response.status_code = end.status)
        .entered();
        let (cost_usd, known) = match served {
            Some(s) => {
                let price = find_price(&self.prices, &s.forwarded_model).or_else(|| {
                    facts
                        .requested_model
                        .as_deref()
                        .and_then(|m| find_price(&self.prices, m))
                });
                cost(&end.usage, price, s.cost_multiplier)
            }
            None => (Decimal::ZERO, true),
        };
        let known = known || end.usage == Usage::default();
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let row = RequestLog {
            id: 0,
            request_id: facts.request_id.clone(),
            created_at: facts.created_at,
            user_id: facts.user_id,
            key_id: facts.key_id,
            provider_id: served
                .map(|s| s.provider_id)
                .or_else(|| end.chain.final_provider()),
            requested_model: facts.requested_model.clone(),
            forwarded_model: served.map(|s| s.forwarded_model.clone()),
            endpoint: facts.endpoint.clone(),
            client_format: facts.format.as_str().to_string(),
            status_code: i32::from(end.status),
            is_stream: facts.is_stream,
            input_tokens: to_i64(end.usage.input_tokens),
            output_tokens: to_i64(end.usage.output_tokens),
            cache_creation_5m_tokens: to_i64(end.usage.cache_creation_5m_tokens),
            cache_creation_1h_tokens: to_i64(end.usage.cache_creation_1h_tokens),
            cache_read_tokens: to_i64(end.usage.cache_read_tokens),
            cost_usd,
            cost_known: known,
            duration_ms: i64::try_from(facts.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            ttfb_ms: end.ttfb_ms,
            provider_chain: end.chain.to_json(),
            session_id: facts.session_id.clone(),
            user_agent: facts.user_agent.clone(),
            error_message: end.error,
        };
        let micro = (cost_usd * Decimal::from(1_000_000)).round();
        self.metrics.observe(
            end.status,
            facts.is_stream,
            u64::try_from(micro).unwrap_or(0),
        );
        self.logs.submit(row);
        if let (Some(user_id), Some(key_id)) = (facts.user_id, facts.key_id)
            && !cost_usd.is_zero()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let limiter = self.limiter.clone();
            let spend = SpendRecord {
                user_id,
                key_id,
                provider_id: served.map(|s| s.provider_id),
                cost_usd,
                at: facts.created_at,
            };
            super::detached::run_or_spawn(
                &handle,
                async move { limiter.record_spend(spend).await },
            );
        }
        (cost_usd, known)
    }
}
