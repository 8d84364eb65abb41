//! The proxy pipeline: authenticate, route, forward with retries and failover, pass the answer
//! through, and account for it. Everything here reads the in-memory snapshot; nothing queries
//! the SQL database.

mod attempt;
pub mod body;
mod body_shape;
pub mod convert_io;
pub mod diagnose;
mod finish;
pub mod forward;
mod models;
pub mod record;
pub mod reject;
pub mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::domain::api_key::hash_key;
use crate::domain::breaker::Admission;
use crate::domain::chain::{ChainEntry, ChainOutcome, ChainReason, ProviderChain};
use crate::domain::client_error::{GatewayErrorKind, error_body};
use crate::domain::failure::ErrorClass;
use crate::domain::format::ClientFormat;
use crate::domain::routing::{
    RouteRequest, RouteState, forwarded_model, select_provider, session_provider_still_eligible,
};
use crate::domain::session::{
    SessionSource, claude_session_id, derived_session_id, openai_session_id,
};
use crate::domain::usage::Usage;
use crate::ports::clock::Clock;
use crate::ports::counters::CounterStore;
use crate::ports::upstream::UpstreamClient;

use super::log_writer::LogWriter;
use super::policy::{AdmitRequest, Breakers, Limiter, NoBreakers, NoLimits, ProviderOutcome};
use super::snapshot::{ConfigSnapshot, SnapshotHolder};
use crate::domain::convert::dispatch;
use body::RequestBody;
use record::{Ending, Recorder, RequestFacts, Served};

/// Longest model name accepted from a client (real names are far shorter; the name is stored
/// in the request log and sent upstream).
const MAX_MODEL_NAME_CHARS: usize = 256;

/// Pause between two tries on the same provider.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Proxy settings taken from the startup configuration.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// How long a session stays bound to its provider.
    pub session_ttl: Duration,
    /// Tries per provider when it sets none.
    pub max_retry_default: u32,
    /// Upper bound of upstream attempts per client request.
    pub max_attempts: u32,
}

/// A client request as the HTTP front hands it over.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// The client's wire format.
    pub format: ClientFormat,
    /// The API path, forwarded as is (e.g. `/v1/messages`).
    pub path: String,
    /// The query string, forwarded as is (Claude Code sends `beta=true`).
    pub query: Option<String>,
    /// Request headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Bytes,
    /// Who the request was authenticated as ([`ProxyService::precheck_key`]).
    pub caller: reject::Caller,
    /// The model named in the URL (Gemini routes carry it there, not in the body).
    pub path_model: Option<String>,
    /// Whether the URL asks for a stream (Gemini `:streamGenerateContent`).
    pub path_stream: bool,
}

impl ClientRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The body of the answer to the client.
pub enum ProxyBody {
    /// A complete body.
    Full(Bytes),
    /// A stream passed through as it arrives.
    Stream(Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send>>),
}

use std::pin::Pin;

/// The answer to the client.
pub struct ProxyResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: ProxyBody,
}

impl ProxyResponse {
    /// A JSON error in the client's format.
    pub fn error(format: ClientFormat, kind: GatewayErrorKind, message: &str) -> Self {
        let status = kind.status();
        let body = error_body(format, status, kind.claude_type(), message);
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: ProxyBody::Full(Bytes::from(body.to_string())),
        }
    }
}

/// The proxy use case.
pub struct ProxyService {
    snapshot: Arc<SnapshotHolder>,
    counters: Arc<dyn CounterStore>,
    upstream: Arc<dyn UpstreamClient>,
    logs: Arc<LogWriter>,
    clock: Arc<dyn Clock>,
    config: ProxyConfig,
    limiter: Arc<dyn Limiter>,
    breakers: Arc<dyn Breakers>,
    metrics: Arc<crate::app::metrics::ProxyMetrics>,
    shutdown_cut: stream::ShutdownCut,
}

/// The policies the proxy consults (limits and breakers).
pub struct ProxyPolicies {
    /// RPM, spend and concurrency limits.
    pub limiter: Arc<dyn Limiter>,
    /// Circuit breakers.
    pub breakers: Arc<dyn Breakers>,
}

impl Default for ProxyPolicies {
    fn default() -> Self {
        Self {
            limiter: Arc::new(NoLimits),
            breakers: Arc::new(NoBreakers),
        }
    }
}

/// The counters key binding a session to its provider. One per active session, expiring
/// `SESSION_TTL` after the session's last request (the bound on stickiness state; the memory
/// store also caps its key count).
fn session_key(id: &str) -> String {
    format!("session:{id}")
}

fn new_request_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl ProxyService {
    /// Builds the service.
    pub fn new(
        snapshot: Arc<SnapshotHolder>,
        counters: Arc<dyn CounterStore>,
        upstream: Arc<dyn UpstreamClient>,
        logs: Arc<LogWriter>,
        clock: Arc<dyn Clock>,
        config: ProxyConfig,
        policies: ProxyPolicies,
    ) -> Self {
        Self {
            snapshot,
            counters,
            upstream,
            logs,
            clock,
            config,
            limiter: policies.limiter,
            breakers: policies.breakers,
            metrics: Arc::default(),
            shutdown_cut: stream::ShutdownCut::never(),
        }
    }

    /// Lets the server end this service's open streams at shutdown (see `stream::ShutdownCut`).
    pub fn with_shutdown_cut(mut self, cut: stream::ShutdownCut) -> Self {
        self.shutdown_cut = cut;
        self
    }

    /// The key check, from what the request head carries, so the HTTP front can refuse a
    /// missing, unknown or disabled key (401/403) before reading a byte of the body. A refusal
    /// is recorded ([`ProxyService::record_rejection`]); on success the caller is returned, to
    /// log later refusals in the front (413, …) under the key and to hand to [`Self::handle`].
    pub fn precheck_key(
        &self,
        api_key: Option<&str>,
        format: ClientFormat,
        endpoint: &str,
        user_agent: Option<&str>,
    ) -> Result<reject::Caller, ProxyResponse> {
        self.checked_auth(&self.snapshot.get(), api_key, format, endpoint, user_agent)
            .map(|(user, key)| reject::Caller { user, key })
    }

    /// Request counters for `/metrics`.
    pub fn metrics(&self) -> &crate::app::metrics::ProxyMetrics {
        &self.metrics
    }

    pub(super) fn authenticate(
        &self,
        snap: &ConfigSnapshot,
        api_key: Option<&str>,
        format: ClientFormat,
    ) -> Result<
        (
            Arc<crate::domain::user::User>,
            Arc<crate::domain::api_key::ApiKey>,
        ),
        ProxyResponse,
    > {
        let Some(key_text) = api_key.filter(|k| !k.is_empty()) else {
            return Err(ProxyResponse::error(
                format,
                GatewayErrorKind::Authentication,
                "missing API key: send it as x-api-key or Authorization: Bearer",
            ));
        };
        let key = snap.keys_by_hash.get(&hash_key(key_text)).cloned();
        let Some(key) = key else {
            return Err(ProxyResponse::error(
                format,
                GatewayErrorKind::Authentication,
                "invalid API key",
            ));
        };
        let Some(user) = snap.users.get(&key.user_id).cloned() else {
            return Err(ProxyResponse::error(
                format,
                GatewayErrorKind::Authentication,
                "invalid API key",
            ));
        };
        let now = self.clock.now();
        let refuse = |m: String| {
            Err(ProxyResponse::error(
                format,
                GatewayErrorKind::Permission,
                &m,
            ))
        };
        if !user.enabled {
            return refuse("this user is disabled".into());
        }
        if let Some(t) = user.expires_at.filter(|t| *t <= now) {
            return refuse(format!("this user expired at {}", t.to_rfc3339()));
        }
        if !key.enabled {
            return refuse("this API key is disabled".into());
        }
        if let Some(t) = key.expires_at.filter(|t| *t <= now) {
            return refuse(format!("this API key expired at {}", t.to_rfc3339()));
        }
        Ok((user, key))
    }

    /// Handles one client request end to end.
    pub async fn handle(&self, req: ClientRequest) -> ProxyResponse {
        let started = Instant::now();
        let snap = self.snapshot.get();
        let format = req.format;
        let reject::Caller { user, key } = req.caller.clone();
        let (body, model) = match self.routable_body(&req, req.caller.ids()) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        let is_stream = req.path_stream || body.head.stream.unwrap_or(false);
        // Session ids come from headers and small fields; only the derived fallback needs the
        // whole conversation, so only then is the full body parsed.
        let small = body.session_fields();
        let session = match format {
            ClientFormat::Claude => {
                let header = req.header("x-claude-code-session-id");
                let s = claude_session_id(&small, header, key.id);
                if s.source == SessionSource::Derived {
                    claude_session_id(body.value(), header, key.id)
                } else {
                    s
                }
            }
            ClientFormat::OpenAi | ClientFormat::Response => {
                let header = req.header("session-id");
                let s = openai_session_id(&small, header, key.id);
                if s.source == SessionSource::Derived {
                    openai_session_id(body.value(), header, key.id)
                } else {
                    s
                }
            }
            ClientFormat::Gemini => derived_session_id(key.id, body.value()),
        };
        let facts = RequestFacts {
            request_id: new_request_id(),
            created_at: self.clock.now(),
            started,
            user_id: Some(user.id),
            key_id: Some(key.id),
            requested_model: Some(model.clone()),
            endpoint: req.path.clone(),
            format,
            is_stream,
            session_id: Some(session.id.clone()),
            user_agent: req
                .header("user-agent")
                .map(|s| s.chars().take(512).collect()),
        };
        let recorder = Arc::new(Recorder {
            logs: self.logs.clone(),
            prices: snap.prices.clone(),
            limiter: self.limiter.clone(),
            metrics: self.metrics.clone(),
        });
        let now = facts.created_at;
        let admit = AdmitRequest {
            user: &user,
            key: &key,
            session_id: &session.id,
            format,
            now,
        };
        // Independent reads of the shared store run concurrently: one round trip, not four.
        let has_history = body.message_count() > 1;
        let (admitted, provider_limits, open_breakers, bound) = tokio::join!(
            self.limiter.admit(&admit),
            self.limiter
                .provider_state(&snap.providers, &session.id, now),
            self.breakers.open_providers(&snap.providers, now),
            async {
                if has_history {
                    self.bound_provider(&session.id).await
                } else {
                    None
                }
            },
        );
        if let Err(rejection) = admitted {
            let mut resp = self.fail_logged(
                &facts,
                &recorder,
                GatewayErrorKind::RateLimit,
                &rejection.message,
                &rejection.log_message,
            );
            resp.headers.extend(rejection.headers);
            return resp;
        }
        let route = RouteRequest {
            format,
            model: &model,
            user_groups: &user.provider_group,
        };
        let mut state = RouteState {
            open_breakers,
            over_limit: provider_limits.over_limit,
            concurrency_full: provider_limits.concurrency_full,
            ..RouteState::default()
        };
        let mut chain = ProviderChain::default();
        let mut attempts = 0u32;
        let mut last_error: Option<(GatewayErrorKind, String)> = None;
        let mut bound = bound;

        loop {
            // Pick a provider: the session's, if still eligible, else by the routing rules.
            let reused = bound.take().and_then(|pid| {
                let p = snap.provider(pid)?;
                session_provider_still_eligible(p, &route, &state)
                    .ok()
                    .map(|_| p)
            });
            let (provider, reason, excluded) = match reused {
                Some(p) => (p, ChainReason::SessionReuse, Vec::new()),
                None => {
                    let mut rng = rand::rng();
                    let mut rand01 = || rand::Rng::random::<f64>(&mut rng);
                    match select_provider(&snap.providers, &route, &state, &mut rand01) {
                        Ok(sel) => {
                            let Some(p) = snap.provider(sel.provider_id) else {
                                break;
                            };
                            let reason = if chain.0.is_empty() {
                                ChainReason::InitialSelection
                            } else {
                                ChainReason::Failover
                            };
                            (p, reason, sel.excluded)
                        }
                        Err(none) => {
                            let (kind, message) = match last_error.take() {
                                Some(e) => e,
                                None => (
                                    GatewayErrorKind::NoProvider,
                                    format!("no provider available: {}", none.message),
                                ),
                            };
                            return self.fail(&facts, &recorder, &chain, kind, &message);
                        }
                    }
                }
            };
            let fwd_model = forwarded_model(provider, &model).to_string();
            let prepared =
                match convert_io::prepare(&req, &body, provider, &model, &fwd_model, is_stream) {
                    Ok(p) => p,
                    Err(e) => {
                        let msg = e.to_string();
                        return self.fail(
                            &facts,
                            &recorder,
                            &chain,
                            GatewayErrorKind::InvalidRequest,
                            &msg,
                        );
                    }
                };
            if convert_io::is_count_tokens(&req.path)
                && prepared.provider_format != ClientFormat::Claude
            {
                return self.estimate_tokens(&facts, &recorder, &body);
            }
            // Two admissions, asked concurrently (one round trip with Redis): the breaker (a
            // half-open one admits a limited number of trials) and the provider's
            // concurrent-session slot (checked and taken atomically). Either refusal skips the
            // provider and selection picks again. A slot taken while the breaker refuses (rare:
            // the breaker changed since the pre-routing read) idles out after SESSION_TTL.
            let (admission, slot) = tokio::join!(
                self.breakers.admit(provider, self.clock.now()),
                self.limiter.take_provider_slot(provider, &session.id, now),
            );
            if let Admission::Refused { until } = admission {
                tracing::debug!(provider = %provider.name, "breaker refused the request; selecting again");
                state.open_breakers.insert(provider.id, until);
                continue;
            }
            if !slot {
                tracing::debug!(provider = %provider.name, "provider concurrent sessions full; selecting again");
                if admission == Admission::Trial {
                    // Free the half-open trial this request took without counting an outcome.
                    self.breakers
                        .record(
                            provider,
                            ProviderOutcome::failure(
                                ErrorClass::ClientAbort,
                                "not sent: concurrent sessions full",
                            ),
                            self.clock.now(),
                        )
                        .await;
                }
                state.concurrency_full.insert(provider.id);
                continue;
            }
            let tries = provider
                .max_retry_attempts
                .map_or(self.config.max_retry_default, |n| n.max(1) as u32);
            let mut use_proxy = provider.proxy_url.is_some();
            let mut try_no = 0u32;
            let mut last_failure: Option<(ErrorClass, String)> = None;
            let mut excluded = Some(excluded);
            while try_no < tries {
                if attempts >= self.config.max_attempts {
                    break;
                }
                attempts += 1;
                let this_reason = if try_no == 0 {
                    reason
                } else {
                    ChainReason::Retry
                };
                try_no += 1;
                let attempt_started = Instant::now();
                let result = self
                    .attempt(&req, provider, &prepared, is_stream, use_proxy)
                    .await;
                let mut entry = ChainEntry {
                    provider_id: provider.id,
                    provider_name: provider.name.clone(),
                    reason: this_reason,
                    outcome: ChainOutcome::Success,
                    status: None,
                    error_class: None,
                    error: None,
                    duration_ms: u64::try_from(attempt_started.elapsed().as_millis())
                        .unwrap_or(u64::MAX),
                    converted: false,
                    excluded: excluded.take().unwrap_or_default(),
                };
                match result {
                    Ok(ok) => {
                        let served = Served {
                            provider_id: provider.id,
                            cost_multiplier: provider.cost_multiplier,
                            forwarded_model: fwd_model.clone(),
                        };
                        return self
                            .finish_ok(
                                &body,
                                &prepared,
                                ok,
                                entry,
                                chain,
                                facts,
                                served,
                                recorder,
                                provider,
                                this_reason,
                                &session.id,
                            )
                            .await;
                    }
                    Err(err) => {
                        entry.outcome = ChainOutcome::Failure;
                        entry.status = err.status;
                        entry.error_class = Some(err.class);
                        entry.error = Some(err.message.clone());
                        chain.push(entry);
                        last_failure = Some((err.class, err.message.clone()));
                        tracing::info!(provider = %provider.name, class = ?err.class, status = ?err.status, "upstream attempt failed");
                        let kind = if err.timeout {
                            GatewayErrorKind::Timeout
                        } else {
                            GatewayErrorKind::UpstreamFailed
                        };
                        last_error = Some((kind, err.client_text()));
                        if err.proxy_failed && use_proxy && provider.proxy_fallback_to_direct {
                            use_proxy = false;
                            try_no = try_no.saturating_sub(1); // the direct try does not use up a retry
                            continue;
                        }
                        if err.class == ErrorClass::NotFound {
                            break;
                        }
                        if try_no < tries {
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                    }
                }
            }
            state.tried.insert(provider.id);
            if let Some((class, message)) = last_failure {
                // Counted once per request, after this provider's retries are spent.
                self.breakers
                    .record(
                        provider,
                        ProviderOutcome::failure(class, message),
                        self.clock.now(),
                    )
                    .await;
            }
            if attempts >= self.config.max_attempts {
                let (kind, message) = last_error
                    .take()
                    .unwrap_or((GatewayErrorKind::UpstreamFailed, "upstream failed".into()));
                return self.fail(&facts, &recorder, &chain, kind, &message);
            }
        }
        let (kind, message) = last_error.unwrap_or((
            GatewayErrorKind::Internal,
            "provider vanished from the configuration".into(),
        ));
        self.fail(&facts, &recorder, &chain, kind, &message)
    }

    fn fail(
        &self,
        facts: &RequestFacts,
        recorder: &Recorder,
        chain: &ProviderChain,
        kind: GatewayErrorKind,
        message: &str,
    ) -> ProxyResponse {
        let resp = ProxyResponse::error(facts.format, kind, message);
        recorder.record(
            facts,
            None,
            Ending {
                status: resp.status,
                usage: Usage::default(),
                ttfb_ms: None,
                chain,
                error: Some(message.to_string()),
            },
        );
        resp
    }

    /// Like [`Self::fail`] before any attempt, with a different message in the log row than
    /// the one the client sees (a limit's refusal keeps its tag there).
    fn fail_logged(
        &self,
        facts: &RequestFacts,
        recorder: &Recorder,
        kind: GatewayErrorKind,
        client_message: &str,
        log_message: &str,
    ) -> ProxyResponse {
        let resp = ProxyResponse::error(facts.format, kind, client_message);
        recorder.record(
            facts,
            None,
            Ending {
                status: resp.status,
                usage: Usage::default(),
                ttfb_ms: None,
                chain: &ProviderChain::default(),
                error: Some(log_message.to_string()),
            },
        );
        resp
    }

    /// `count_tokens` for a provider without a count endpoint: a local, upward-biased estimate
    /// (see `domain::token_estimate`), marked with `x-cch-token-count: estimated`.
    fn estimate_tokens(
        &self,
        facts: &RequestFacts,
        recorder: &Recorder,
        body: &RequestBody,
    ) -> ProxyResponse {
        let body = body.value();
        let claude =
            dispatch::request_to_claude(facts.format, body).unwrap_or_else(|_| body.clone());
        let n = crate::domain::token_estimate::estimate_input_tokens(&claude);
        let answer = match facts.format {
            ClientFormat::Gemini => serde_json::json!({"totalTokens": n}),
            ClientFormat::Response => {
                serde_json::json!({"object": "response.input_tokens", "input_tokens": n})
            }
            ClientFormat::Claude | ClientFormat::OpenAi => serde_json::json!({"input_tokens": n}),
        };
        recorder.record(
            facts,
            None,
            Ending {
                status: 200,
                usage: Usage::default(),
                ttfb_ms: None,
                chain: &ProviderChain::default(),
                error: None,
            },
        );
        ProxyResponse {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-cch-token-count".into(), "estimated".into()),
            ],
            body: ProxyBody::Full(Bytes::from(answer.to_string())),
        }
    }

    async fn bound_provider(&self, session_id: &str) -> Option<i64> {
        match self.counters.get(&session_key(session_id)).await {
            Ok(Some(v)) => v.parse().ok(),
            _ => None,
        }
    }

    async fn bind_session(&self, session_id: &str, provider_id: i64, reason: ChainReason) {
        let key = session_key(session_id);
        let ttl = self.config.session_ttl;
        let value = provider_id.to_string();
        let result = match reason {
            ChainReason::InitialSelection => self
                .counters
                .set_if_absent(&key, &value, ttl)
                .await
                .map(|_| ()),
            ChainReason::Failover => self.counters.set(&key, &value, Some(ttl)).await,
            ChainReason::SessionReuse | ChainReason::Retry => {
                self.counters.expire(&key, ttl).await.map(|_| ())
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "session binding not saved");
        }
    }
}
