//! Stage 3 of the pipeline: pick a provider, convert the request for it, reserve it (breaker
//! trial, concurrent-session slot), try it with its retries, and fail over to the next one until
//! a provider answers or the attempts run out. Each step is a named method so later stages
//! (content gate, rectifier) slot in without growing one function.

use tracing::Instrument as _;

use crate::app::tracing_spans::TARGET;
use std::collections::HashSet;
use std::time::Instant;

use crate::domain::breaker::Admission;
use crate::domain::chain::{
    ChainEntry, ChainOutcome, ChainReason, ProviderChain, listed_exclusions,
};
use crate::domain::client_error::GatewayErrorKind;
use crate::domain::failure::ErrorClass;
use crate::domain::provider::Provider;
use crate::domain::routing::{
    RouteRequest, RouteState, forwarded_model, select_provider, session_provider_still_eligible,
};

use super::admission::{Admitted, route_request};
use super::attempt::AttemptOk;
use super::convert_io::{self, Prepared};
use super::inbound::Inbound;
use super::record::Served;
use super::rectify;
use super::{ClientRequest, ProxyResponse, ProxyService, RETRY_PAUSE};
use crate::app::policy::ProviderOutcome;
use crate::app::snapshot::ConfigSnapshot;

/// One request's walk over the providers: what was tried and how it went.
struct Walk {
    /// Providers to skip, growing as they fail or refuse.
    state: RouteState,
    /// The session's bound provider, offered first (once).
    bound: Option<i64>,
    /// Every attempt so far, for the log.
    chain: ProviderChain,
    /// Upstream attempts so far (bounded by `max_attempts`).
    attempts: u32,
    /// The last failure, answered to the client when nothing succeeds.
    last_error: Option<(GatewayErrorKind, String)>,
    /// Breakers read CLOSED before routing: admitting to them needs no store call.
    closed_breakers: HashSet<i64>,
    /// Breakers read CLOSED with no failures: a success needs no recording.
    clean_breakers: HashSet<i64>,
}

/// The provider chosen for the next try.
struct Pick<'s> {
    provider: &'s Provider,
    reason: ChainReason,
    /// Providers selection excluded on the way (logged on the first attempt's entry).
    excluded: Vec<crate::domain::routing::Exclusion>,
}

/// Why no provider could be picked.
enum NoPick {
    /// Routing found none left (the reasons, for the 503).
    NoneLeft(String),
    /// The snapshot lost the provider selection chose (a configuration race).
    Vanished,
}

/// How trying one provider ended. Built once per provider tried and moved at once, so the
/// size difference between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Tried {
    /// It answered; the response still has to be passed through and accounted.
    Answered {
        ok: AttemptOk,
        entry: ChainEntry,
        reason: ChainReason,
    },
    /// Its tries are spent (or it must not be retried).
    Failed,
}

impl ProxyService {
    /// OpenAI's answer to a route it does not have (404, `invalid_request_error`, code null),
    /// logged like any refusal.
    fn unknown_route(&self, inb: &Inbound, path: &str) -> ProxyResponse {
        let message = format!("Invalid URL (POST {path})");
        let body = serde_json::json!({"error": {"message": message,
            "type": "invalid_request_error", "param": null, "code": null}});
        inb.recorder.record(
            &inb.facts,
            None,
            super::record::Ending {
                status: 404,
                usage: crate::domain::usage::Usage::default(),
                ttfb_ms: None,
                chain: &ProviderChain::default(),
                error: Some(message),
            },
        );
        ProxyResponse {
            status: 404,
            headers: vec![("content-type".into(), "application/json".into())],
            body: super::ProxyBody::Full(bytes::Bytes::from(body.to_string())),
        }
    }

    /// The answer when routing has no provider left: OpenAI's unknown-route 404 for a
    /// compaction no native provider can take (so Codex compacts locally), else the last
    /// attempt's error or why nothing could be picked.
    fn nothing_left(
        &self,
        req: &ClientRequest,
        inb: &Inbound,
        walk: &mut Walk,
        none: NoPick,
    ) -> ProxyResponse {
        if matches!(none, NoPick::NoneLeft(_)) && req.is_compaction() && walk.chain.0.is_empty() {
            return self.unknown_route(inb, &req.path);
        }
        let fallback = match none {
            NoPick::NoneLeft(why) => (
                GatewayErrorKind::NoProvider,
                format!("no provider available: {why}"),
            ),
            NoPick::Vanished => (
                GatewayErrorKind::Internal,
                "provider vanished from the configuration".into(),
            ),
        };
        let (kind, message) = walk.last_error.take().unwrap_or(fallback);
        self.fail(inb, &walk.chain, kind, &message)
    }

    /// Stage 3: serves the request from the first provider that answers.
    pub(super) async fn forward_with_failover(
        &self,
        req: &ClientRequest,
        inb: Inbound,
        admitted: Admitted,
    ) -> ProxyResponse {
        let route = route_request(req, &inb);
        let mut walk = Walk {
            state: admitted.state,
            bound: admitted.bound,
            chain: ProviderChain::default(),
            attempts: 0,
            last_error: None,
            closed_breakers: admitted.closed_breakers,
            clean_breakers: admitted.clean_breakers,
        };
        loop {
            let routing = tracing::info_span!(target: TARGET, "routing",
                cch.provider = tracing::field::Empty);
            let pick = match routing.in_scope(|| pick_provider(&inb.snap, &route, &mut walk)) {
                Ok(p) => p,
                Err(none) => return self.nothing_left(req, &inb, &mut walk, none),
            };
            let provider = pick.provider;
            let fwd_model = forwarded_model(provider, &inb.model).to_string();
            let prepared = match convert_io::prepare(
                req,
                &inb.body,
                provider,
                &inb.model,
                &fwd_model,
                inb.is_stream,
            ) {
                Ok(p) => p,
                Err(e) => {
                    let msg = e.to_string();
                    let kind = GatewayErrorKind::InvalidRequest;
                    return self.fail(&inb, &walk.chain, kind, &msg);
                }
            };
            if convert_io::is_count_tokens(&req.path)
                && !convert_io::counts_tokens(prepared.provider_format)
            {
                return self.tokenize_tokens(&inb, &prepared.body, &fwd_model).await;
            }
            routing.record("cch.provider", provider.name.as_str());
            if !self
                .reserve_provider(provider, &inb.session_id, &mut walk)
                .instrument(routing)
                .await
            {
                continue;
            }
            let tried = self
                .try_provider(req, &inb, provider, &prepared, pick, &mut walk)
                .await;
            if let Tried::Answered { ok, entry, reason } = tried {
                let served = Served {
                    provider_id: provider.id,
                    cost_multiplier: provider.cost_multiplier,
                    forwarded_model: fwd_model,
                    report_success: !walk.clean_breakers.contains(&provider.id),
                };
                return self
                    .finish_ok(
                        &inb.body,
                        &prepared,
                        ok,
                        entry,
                        walk.chain,
                        inb.facts,
                        served,
                        inb.recorder,
                        provider,
                        reason,
                        &inb.session_id,
                    )
                    .await;
            }
            if walk.attempts >= self.config.max_attempts {
                let (kind, message) = walk
                    .last_error
                    .take()
                    .unwrap_or((GatewayErrorKind::UpstreamFailed, "upstream failed".into()));
                return self.fail(&inb, &walk.chain, kind, &message);
            }
        }
    }

    /// Two admissions for the chosen provider, asked concurrently (one round trip with Redis,
    /// none in the common case): the breaker (a half-open one admits a limited number of
    /// trials; a breaker read CLOSED before routing is not asked) and the provider's
    /// concurrent-session slot (checked and taken atomically, only when the provider limits
    /// concurrent sessions). False when either refuses: the provider is marked in the walk's
    /// state and selection picks again. A slot taken while the breaker refuses (rare: the
    /// breaker changed since the pre-routing read) idles out after SESSION_TTL.
    async fn reserve_provider(
        &self,
        provider: &Provider,
        session_id: &str,
        walk: &mut Walk,
    ) -> bool {
        let now = self.clock.now();
        let known_closed = walk.closed_breakers.contains(&provider.id);
        let (admission, slot) = tokio::join!(
            async {
                if known_closed {
                    Admission::Pass
                } else {
                    self.breakers.admit(provider, now).await
                }
            },
            self.limiter.take_provider_slot(provider, session_id, now),
        );
        let state = &mut walk.state;
        if let Admission::Refused { until } = admission {
            tracing::debug!(provider = %provider.name, "breaker refused the request; selecting again");
            state.open_breakers.insert(provider.id, until);
            return false;
        }
        if !slot {
            tracing::debug!(provider = %provider.name, "provider concurrent sessions full; selecting again");
            if admission == Admission::Trial {
                // Free the half-open trial this request took without counting an outcome.
                let outcome = ProviderOutcome::failure(
                    ErrorClass::ClientAbort,
                    "not sent: concurrent sessions full",
                );
                self.breakers
                    .record(provider, outcome, self.clock.now())
                    .await;
            }
            state.concurrency_full.insert(provider.id);
            return false;
        }
        true
    }

    /// Tries one provider up to its retry count (a proxy failure may fall back to a direct
    /// try without using up a retry). Failures go into the chain; the breaker counts the
    /// provider's failure once, after its tries are spent.
    async fn try_provider(
        &self,
        req: &ClientRequest,
        inb: &Inbound,
        provider: &Provider,
        prepared: &Prepared,
        pick: Pick<'_>,
        walk: &mut Walk,
    ) -> Tried {
        let tries = provider
            .max_retry_attempts
            .map_or(self.config.max_retry_default, |n| n.max(1) as u32);
        let mut use_proxy = provider.proxy_url.is_some();
        let mut try_no = 0u32;
        let mut last_failure: Option<(ErrorClass, String)> = None;
        let mut excluded = Some(pick.excluded);
        // The request without thinking blocks, once the rectifier acted (see `rectify`).
        let mut rectified: Option<Prepared> = None;
        let mut next_reason: Option<ChainReason> = None;
        while try_no < tries && walk.attempts < self.config.max_attempts {
            walk.attempts += 1;
            let reason = match next_reason.take() {
                Some(r) => r,
                None if try_no == 0 => pick.reason,
                None => ChainReason::Retry,
            };
            try_no += 1;
            let attempt_started = Instant::now();
            let current = rectified.as_ref().unwrap_or(prepared);
            let span = tracing::info_span!(target: TARGET, "upstream_attempt",
                cch.provider = provider.name.as_str(), cch.provider_id = provider.id,
                cch.try = try_no, cch.reason = snake_name(&reason).as_str(),
                http.response.status_code = tracing::field::Empty,
                cch.error_class = tracing::field::Empty, otel.status_code = tracing::field::Empty);
            let result = async {
                match self
                    .attempt(req, provider, current, inb.is_stream, use_proxy)
                    .await
                {
                    Ok(ok) => {
                        super::gate::content_gate(ok, provider, current, attempt_started).await
                    }
                    Err(e) => Err(e),
                }
            }
            .instrument(span.clone())
            .await;
            if !span.is_disabled() {
                match &result {
                    Ok(ok) => {
                        span.record("http.response.status_code", ok.status());
                    }
                    Err(err) => {
                        if let Some(s) = err.status {
                            span.record("http.response.status_code", s);
                        }
                        span.record("cch.error_class", snake_name(&err.class).as_str());
                        span.record("otel.status_code", "ERROR");
                    }
                }
            }
            let mut entry = ChainEntry {
                provider_id: provider.id,
                provider_name: provider.name.clone(),
                reason,
                outcome: ChainOutcome::Success,
                status: None,
                error_class: None,
                error: None,
                duration_ms: u64::try_from(attempt_started.elapsed().as_millis())
                    .unwrap_or(u64::MAX),
                converted: false,
                excluded: Vec::new(),
                excluded_more: 0,
                detection: None,
            };
            (entry.excluded, entry.excluded_more) =
                listed_exclusions(excluded.take().unwrap_or_default());
            let err = match result {
                Ok(ok) => match rectify::after_attempt(ok, current, rectified.is_some()) {
                    rectify::AfterAttempt::Answer(ok) => {
                        // A rectified try binds the session as the provider's first try would.
                        let reason = match reason {
                            ChainReason::RectifiedRetry => pick.reason,
                            r => r,
                        };
                        return Tried::Answered { ok, entry, reason };
                    }
                    rectify::AfterAttempt::Retry {
                        fixed,
                        status,
                        message,
                        rectified: what,
                    } => {
                        tracing::info!(provider = %provider.name, blocks = what.blocks_removed,
                            thinking_disabled = what.thinking_disabled,
                            "thinking blocks refused; retrying once without them");
                        entry.outcome = ChainOutcome::Failure;
                        entry.status = Some(status);
                        entry.error_class = Some(ErrorClass::RectifyThinkingSignature);
                        entry.error = Some(message);
                        entry.detection = Some(rectify::DETECTION.into());
                        walk.chain.push(entry);
                        rectified = Some(fixed);
                        next_reason = Some(ChainReason::RectifiedRetry);
                        try_no = try_no.saturating_sub(1); // does not use up a retry
                        continue;
                    }
                },
                Err(err) => err,
            };
            entry.outcome = ChainOutcome::Failure;
            entry.status = err.status;
            entry.error_class = Some(err.class);
            entry.error = Some(err.message.clone());
            entry.detection = err.detection.map(str::to_string);
            walk.chain.push(entry);
            last_failure = Some((err.class, err.message.clone()));
            tracing::info!(provider = %provider.name, class = ?err.class, status = ?err.status, "upstream attempt failed");
            let kind = if err.timeout {
                GatewayErrorKind::Timeout
            } else {
                GatewayErrorKind::UpstreamFailed
            };
            walk.last_error = Some((kind, err.client_text()));
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
        walk.state.tried.insert(provider.id);
        if let Some((class, message)) = last_failure {
            // Counted once per request, after this provider's retries are spent.
            let outcome = ProviderOutcome::failure(class, message);
            self.breakers
                .record(provider, outcome, self.clock.now())
                .await;
        }
        Tried::Failed
    }
}

/// The next provider: the session's bound one if it is still eligible, else by the routing
/// rules.
fn pick_provider<'s>(
    snap: &'s ConfigSnapshot,
    route: &RouteRequest<'_>,
    walk: &mut Walk,
) -> Result<Pick<'s>, NoPick> {
    let reused = walk.bound.take().and_then(|pid| {
        let p = snap.provider(pid)?;
        session_provider_still_eligible(p, route, &walk.state)
            .ok()
            .map(|_| p)
    });
    if let Some(provider) = reused {
        return Ok(Pick {
            provider,
            reason: ChainReason::SessionReuse,
            excluded: Vec::new(),
        });
    }
    let mut rng = rand::rng();
    let mut rand01 = || rand::Rng::random::<f64>(&mut rng);
    let sel = select_provider(&snap.providers, route, &walk.state, &mut rand01)
        .map_err(|none| NoPick::NoneLeft(none.message))?;
    let provider = snap.provider(sel.provider_id).ok_or(NoPick::Vanished)?;
    let reason = if walk.chain.0.is_empty() {
        ChainReason::InitialSelection
    } else {
        ChainReason::Failover
    };
    Ok(Pick {
        provider,
        reason,
        excluded: sel.excluded,
    })
}

/// The wire name of a chain enum (`provider_error`, `failover`), for trace attributes.
fn snake_name(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
