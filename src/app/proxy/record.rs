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
        self.record_with(facts, served, end, None::<std::future::Ready<()>>)
    }

    /// [`Self::record`], and `also` (other work the request leaves behind) run in the same
    /// detached future as the spend record: at most one task per request when both wait.
    pub fn record_with<F>(
        &self,
        facts: &RequestFacts,
        served: Option<&Served>,
        end: Ending<'_>,
        also: Option<F>,
    ) -> (Decimal, bool)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
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
        let spend = match (facts.user_id, facts.key_id) {
            (Some(user_id), Some(key_id)) if !cost_usd.is_zero() => Some(SpendRecord {
                user_id,
                key_id,
                provider_id: served.map(|s| s.provider_id),
                cost_usd,
                at: facts.created_at,
            }),
            _ => None,
        };
        if (spend.is_some() || also.is_some())
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let limiter = self.limiter.clone();
            super::detached::run_or_spawn(&handle, async move {
                let spend = async {
                    if let Some(spend) = spend {
                        limiter.record_spend(spend).await;
                    }
                };
                let also = async {
                    if let Some(also) = also {
                        also.await;
                    }
                };
                tokio::join!(spend, also);
            });
        }
        (cost_usd, known)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use rust_decimal::Decimal;

    use super::*;
    use crate::app::policy::MockLimiter;
    use crate::ports::spool::MockLogSpool;
    use crate::ports::store::MockRequestLogStore;

    fn recorder(limiter: MockLimiter) -> Recorder {
        let mut store = MockRequestLogStore::new();
        store.expect_insert_logs().returning(|r| {
            let n = r.len() as u64;
            Box::pin(async move { Ok(n) })
        });
        store.expect_insert_logs_unhurried().returning(|r| {
            let n = r.len() as u64;
            Box::pin(async move { Ok(n) })
        });
        let mut spool = MockLogSpool::new();
        spool
            .expect_is_empty()
            .returning(|| Box::pin(async { true }));
        Recorder {
            logs: LogWriter::start(Arc::new(store), Arc::new(spool), Duration::from_secs(60)),
            prices: Arc::new(vec![ModelPrice {
                model: "m".into(),
                input_per_mtok: Decimal::from(3),
                output_per_mtok: Decimal::from(15),
                cache_write_5m_per_mtok: Decimal::ZERO,
                cache_write_1h_per_mtok: Decimal::ZERO,
                cache_read_per_mtok: Decimal::ZERO,
            }]),
            limiter: Arc::new(limiter),
            metrics: Default::default(),
        }
    }

    fn facts() -> RequestFacts {
        RequestFacts {
            request_id: "r1".into(),
            created_at: Utc::now(),
            started: Instant::now(),
            user_id: Some(1),
            key_id: Some(2),
            requested_model: Some("m".into()),
            endpoint: "/v1/messages".into(),
            format: ClientFormat::Claude,
            is_stream: false,
            session_id: None,
            user_agent: None,
            span: tracing::Span::none(),
        }
    }

    fn served() -> Served {
        Served {
            provider_id: 7,
            cost_multiplier: Decimal::ONE,
            forwarded_model: "m".into(),
            report_success: false,
        }
    }

    fn ending(chain: &ProviderChain, output_tokens: u64) -> Ending<'_> {
        Ending {
            status: 200,
            usage: Usage {
                input_tokens: 1_000,
                output_tokens,
                ..Usage::default()
            },
            ttfb_ms: None,
            chain,
            error: None,
        }
    }

    /// The other work handed to `record_with` runs with the spend record, and also when the
    /// request cost nothing (no spend to record).
    #[tokio::test]
    async fn the_work_handed_over_runs_with_and_without_a_spend() {
        let spent = Arc::new(AtomicUsize::new(0));
        let counted = spent.clone();
        let mut limiter = MockLimiter::new();
        limiter.expect_record_spend().returning(move |s| {
            assert_eq!(s.provider_id, Some(7));
            assert!(s.cost_usd > Decimal::ZERO);
            counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {})
        });
        let rec = recorder(limiter);
        let chain = ProviderChain::default();
        let ran = Arc::new(AtomicUsize::new(0));
        for (n, output_tokens) in [(1, 50), (2, 0)] {
            let flag = ran.clone();
            // No price for this request's model in the second round: it costs nothing.
            let mut f = facts();
            if output_tokens == 0 {
                f.requested_model = Some("unpriced".into());
            }
            let mut s = served();
            s.forwarded_model = f.requested_model.clone().unwrap_or_default();
            let (cost, _) = rec.record_with(
                &f,
                Some(&s),
                ending(&chain, output_tokens),
                Some(async move {
                    flag.fetch_add(1, Ordering::SeqCst);
                }),
            );
            assert_eq!(cost.is_zero(), output_tokens == 0);
            // Both finish on their first poll here (nothing waits), before `record_with`
            // returns.
            assert_eq!(ran.load(Ordering::SeqCst), n);
        }
        assert_eq!(
            spent.load(Ordering::SeqCst),
            1,
            "one spend: the priced request"
        );
    }
}
