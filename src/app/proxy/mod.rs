//! The proxy pipeline: authenticate, route, forward with retries and failover, pass the answer
//! through, and account for it. Everything here reads the in-memory snapshot; nothing queries
//! the SQL database.

mod admission;
mod attempt;
pub mod body;
mod body_shape;
pub mod code_assist;
mod content_filter;
pub mod convert_io;
mod detached;
pub mod diagnose;
mod failover;
mod finish;
pub mod forward;
mod gate;
mod inbound;
mod models;
pub mod record;
mod rectify;
pub mod reject;
pub mod stream;
pub mod token_count;

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

use bytes::Bytes;

use crate::domain::api_key::hash_key;
use crate::domain::chain::{ChainReason, ProviderChain};
use crate::domain::client_error::{GatewayErrorKind, error_body};
use crate::domain::format::ClientFormat;
use crate::domain::usage::Usage;
use crate::ports::clock::Clock;
use crate::ports::counters::{CounterStore, SessionBind, SessionTouch, session_binding_key};
use crate::ports::upstream::UpstreamClient;

use super::log_writer::LogWriter;
use super::policy::{Breakers, Limiter, NoBreakers, NoLimits, ProviderOutcome};
use super::provider_tokens::ProviderTokens;
use super::snapshot::{ConfigSnapshot, SnapshotHolder};
use crate::domain::convert::dispatch;
use record::Ending;

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
    /// What a `/v1internal` (Code Assist) client's envelope carried; its body is already the
    /// unwrapped Gemini request.
    pub code_assist: Option<crate::domain::code_assist::Envelope>,
    /// This request's id, made by the front: the log row's id, the `x-cch-request-id` answer
    /// header and, when traces are exported, the trace id.
    pub request_id: String,
}

impl ClientRequest {
    /// Codex's remote compaction (`POST /v1/responses/compact`): served only by providers that
    /// speak Responses natively (its answer is opaque to every converter).
    pub fn is_compaction(&self) -> bool {
        self.format == ClientFormat::Response && self.path.ends_with("/responses/compact")
    }

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
    clean_parts: content_filter::CleanParts,
    tokens: Arc<ProviderTokens>,
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

/// The error answer for a request that failed, with its log row (the chain so far, no usage).
fn failed(
    facts: &record::RequestFacts,
    recorder: &record::Recorder,
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

/// A fresh request id, 32 hex digits (the shape of a W3C trace id): the Unix time in
/// milliseconds (48 bits) then 80 random bits. Time first keeps the log's unique index on
/// `request_id` growing at its end: with fully random ids every insert landed on a random page
/// of that index, and once it outgrew SQLite's page cache (a few hundred thousand rows) the log
/// writer fell behind a busy gateway.
pub fn new_request_id() -> String {
    use rand::RngCore;
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    rand::rng().fill_bytes(&mut b[6..]);
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
            upstream: upstream.clone(),
            logs,
            clock: clock.clone(),
            config,
            limiter: policies.limiter,
            breakers: policies.breakers,
            metrics: Arc::default(),
            shutdown_cut: stream::ShutdownCut::never(),
            clean_parts: content_filter::CleanParts::default(),
            tokens: Arc::new(ProviderTokens::new(upstream, None, clock)),
        }
    }

    /// Lets refreshed OAuth credentials be stored (and so shared with other instances); without
    /// it they are kept in memory only.
    pub fn with_provider_tokens(mut self, tokens: Arc<ProviderTokens>) -> Self {
        self.tokens = tokens;
        self
    }

    /// The provider secrets this service resolves (for provider tests outside the proxy).
    pub fn provider_tokens(&self) -> &Arc<ProviderTokens> {
        &self.tokens
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
        request_id: &str,
    ) -> Result<reject::Caller, ProxyResponse> {
        let snap = self.snapshot.get();
        self.checked_auth(
            &snap,
            api_key,
            format,
            endpoint,
            user_agent,
            Some(request_id),
        )
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

    /// Handles one client request end to end, in named stages: `inbound` (body checks,
    /// session, facts), `content_filter` (sensitive words), `admission` (the caller's limits and the routing state) and
    /// `forward_with_failover` (provider selection, conversion, tries and failover).
    pub async fn handle(&self, req: ClientRequest) -> ProxyResponse {
        let inbound = match self.inbound(&req) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        if let Err(resp) = self.content_filter(&inbound) {
            return resp;
        }
        let limits = tracing::info_span!(target: crate::app::tracing_spans::TARGET, "limits");
        let admitted = match self.admission(&req, &inbound).instrument(limits).await {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        self.forward_with_failover(&req, inbound, admitted).await
    }

    /// Answers the client with an error in its format and logs the request with the chain so
    /// far.
    fn fail(
        &self,
        inb: &inbound::Inbound,
        chain: &ProviderChain,
        kind: GatewayErrorKind,
        message: &str,
    ) -> ProxyResponse {
        failed(&inb.facts, &inb.recorder, chain, kind, message)
    }

    /// Like [`Self::fail`] before any attempt, with a different message in the log row than
    /// the one the client sees (a limit's refusal keeps its tag there).
    fn fail_logged(
        &self,
        inb: &inbound::Inbound,
        kind: GatewayErrorKind,
        client_message: &str,
        log_message: &str,
    ) -> ProxyResponse {
        let resp = ProxyResponse::error(inb.facts.format, kind, client_message);
        inb.recorder.record(
            &inb.facts,
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
    fn estimate_tokens(&self, inb: &inbound::Inbound) -> ProxyResponse {
        let body = inb.body.value();
        let claude =
            dispatch::request_to_claude(inb.facts.format, body).unwrap_or_else(|_| body.clone());
        let n = crate::domain::token_estimate::estimate_input_tokens(&claude);
        self.counted(inb, n, "estimated")
    }

    /// A token count answer in the client's shape, marked with how it was counted, and its log
    /// row.
    fn counted(&self, inb: &inbound::Inbound, n: u64, how: &str) -> ProxyResponse {
        let (facts, recorder) = (&inb.facts, &inb.recorder);
        let answer = convert_io::count_answer(facts.format, n);
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
                ("x-cch-token-count".into(), how.into()),
            ],
            body: ProxyBody::Full(Bytes::from(answer.to_string())),
        }
    }

    /// `count_tokens` for an OpenAI-compatible or Codex provider: the converted request counted
    /// with the model's tokenizer off the runtime threads, marked `tokenizer`; the estimate
    /// when the request cannot be read back.
    async fn tokenize_tokens(
        &self,
        inb: &inbound::Inbound,
        provider_body: &Bytes,
        model: &str,
    ) -> ProxyResponse {
        let Ok(request) = serde_json::from_slice::<serde_json::Value>(provider_body) else {
            return self.estimate_tokens(inb);
        };
        let model = model.to_string();
        match tokio::task::spawn_blocking(move || {
            token_count::count_request_tokens(&request, &model)
        })
        .await
        {
            Ok(n) => self.counted(inb, n, "tokenizer"),
            Err(_) => self.estimate_tokens(inb),
        }
    }

    async fn bound_provider(&self, session_id: &str) -> Option<i64> {
        match self.counters.get(&session_binding_key(session_id)).await {
            Ok(Some(v)) => v.parse().ok(),
            _ => None,
        }
    }

    /// What a provider's answer leaves in the shared store; the client never waits a round trip
    /// for it (in-process stores finish on the spot, a Redis round trip runs as a task:
    /// `detached`): the session's binding to the provider and
    /// its listing entry (one round trip, see `CounterStore::touch_session`), the refresh of a
    /// provider slot granted from memory (`Limiter::settle_provider_slot`) and, when
    /// `report_success`, the success for its breaker.
    fn after_answer(
        &self,
        facts: &record::RequestFacts,
        session_id: &str,
        provider_id: i64,
        reason: ChainReason,
        report_success: bool,
    ) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let work = self.left_after_answer(facts, session_id, provider_id, reason, report_success);
        detached::run_or_spawn(&handle, work);
    }

    /// The work of [`Self::after_answer`], for a caller that runs it together with the spend
    /// record (`Recorder::record_with`): one task per request instead of two when both wait
    /// for Redis, and a spawn that finds the runtime's LIFO slot taken wakes its other worker.
    fn left_after_answer(
        &self,
        facts: &record::RequestFacts,
        session_id: &str,
        provider_id: i64,
        reason: ChainReason,
        report_success: bool,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let counters = self.counters.clone();
        let breakers = self.breakers.clone();
        let limiter = self.limiter.clone();
        let snapshot = self.snapshot.get();
        let now = self.clock.now();
        let bind = match reason {
            ChainReason::InitialSelection => SessionBind::IfAbsent,
            ChainReason::Failover => SessionBind::Replace,
            ChainReason::SessionReuse | ChainReason::Retry | ChainReason::RectifiedRetry => {
                SessionBind::Refresh
            }
        };
        let touch = SessionTouch {
            id: session_id.to_owned(),
            user_id: facts.user_id,
            key_id: facts.key_id,
            provider_id,
            model: bounded(facts.requested_model.as_deref().unwrap_or_default(), 200),
            client_format: facts.format.as_str().to_owned(),
            now_ms: now.timestamp_millis(),
            ttl: self.config.session_ttl,
            bind,
        };
        async move {
            let bind = async {
                if let Err(e) = counters.touch_session(&touch).await {
                    tracing::debug!(error = %e, "session binding not saved");
                }
            };
            let success = async {
                if let (true, Some(p)) = (report_success, snapshot.provider(provider_id)) {
                    breakers.record(p, ProviderOutcome::Success, now).await;
                }
            };
            let slot = limiter.settle_provider_slot(provider_id, &touch.id, now);
            tokio::join!(bind, success, slot);
        }
    }
}

/// At most `max` characters of `s` (client-supplied text kept in shared state).
fn bounded(s: &str, max: usize) -> String {
    // No more bytes than `max` means no more characters: copied without decoding them.
    if s.len() <= max {
        return s.to_owned();
    }
    s.chars().take(max).collect()
}

#[cfg(test)]
mod request_id_tests {
    use super::new_request_id;

    #[test]
    fn request_ids_are_hex_distinct_and_sort_by_time() {
        let a = new_request_id();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let b = new_request_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(a[..12] < b[..12], "{a} then {b}");
        // The same millisecond still gives different ids.
        assert_ne!(new_request_id(), new_request_id());
    }
}
