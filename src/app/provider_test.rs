//! Testing a provider with a minimal real request (admin "test connection" and the smart
//! probes): one tiny generation in the provider's own protocol, sent through its outbound proxy
//! settings, reporting the status, the latency and the upstream's error message.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::domain::failure::extract_error_message;
use crate::domain::provider::{Provider, ProviderType};
use crate::ports::upstream::{FailureKind, UpstreamClient, UpstreamRequest};

use super::provider_tokens::ProviderTokens;
use super::proxy::forward::{join_url, upstream_headers};
use crate::domain::code_assist::wrap_generate_request;
use crate::domain::oauth_credential::OAuthCredential;

/// Largest answer body read during a test.
const MAX_TEST_BODY: usize = 64 * 1024;

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// A 2xx answer.
    Success,
    /// 401 or 403: the provider's key is wrong or lacks access.
    AuthFailed,
    /// No complete answer within the timeout.
    Timeout,
    /// Another HTTP error status.
    HttpError,
    /// The connection failed (refused, DNS, TLS, proxy).
    NetworkError,
}

/// The result of a provider test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    /// True on a 2xx answer.
    pub ok: bool,
    /// How it ended.
    pub outcome: TestOutcome,
    /// The upstream status, when one arrived.
    pub status: Option<u16>,
    /// Time until the answer was complete (or the failure), in ms.
    pub latency_ms: u64,
    /// The upstream's error message (or the network error), when not ok.
    pub message: Option<String>,
    /// The model the test asked for.
    pub model: String,
    /// The URL tested.
    pub url: String,
}

/// The model a test uses: the given one, else the provider's first allowed model or redirect
/// target, else a cheap default of its protocol.
pub fn test_model(p: &Provider, requested: Option<&str>) -> String {
    if let Some(m) = requested.map(str::trim).filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    if let Some(m) = p
        .allowed_models
        .first()
        .or_else(|| p.model_redirects.values().next())
    {
        return m.clone();
    }
    match p.provider_type {
        ProviderType::Claude | ProviderType::ClaudeAuth => "claude-haiku-4-5",
        ProviderType::Codex => "gpt-5-codex",
        ProviderType::OpenAiCompatible => "gpt-4o-mini",
        ProviderType::Gemini | ProviderType::GeminiCli => "gemini-2.5-flash",
    }
    .to_string()
}

/// The minimal request for `p`: path and body in its own protocol, its credentials (`secret`,
/// what its key resolves to: see `ProviderTokens`).
pub fn minimal_request(
    p: &Provider,
    model: &str,
    secret: &str,
    timeout: Duration,
) -> UpstreamRequest {
    let (path, body) = match p.provider_type {
        ProviderType::Claude | ProviderType::ClaudeAuth => (
            "/v1/messages".to_string(),
            json!({"model": model, "max_tokens": 1,
                   "messages": [{"role": "user", "content": "ping"}]}),
        ),
        ProviderType::Codex => (
            "/v1/responses".to_string(),
            json!({"model": model, "input": "ping", "max_output_tokens": 16}),
        ),
        ProviderType::OpenAiCompatible => (
            "/v1/chat/completions".to_string(),
            json!({"model": model, "max_tokens": 1,
                   "messages": [{"role": "user", "content": "ping"}]}),
        ),
        ProviderType::Gemini => (
            format!("/v1beta/models/{model}:generateContent"),
            gemini_ping(),
        ),
        ProviderType::GeminiCli => {
            let credential = OAuthCredential::parse(&p.api_key).and_then(Result::ok);
            let project = credential.as_ref().and_then(OAuthCredential::project_id);
            (
                "/v1internal:generateContent".to_string(),
                wrap_generate_request(gemini_ping(), model, project, None),
            )
        }
    };
    UpstreamRequest {
        url: join_url(&p.base_url, &path, None),
        headers: upstream_headers(&[], p, secret, &[]),
        body: Bytes::from(body.to_string()),
        proxy_url: p.proxy_url.clone(),
        header_timeout: timeout,
    }
}

fn gemini_ping() -> serde_json::Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "ping"}]}],
           "generationConfig": {"maxOutputTokens": 1}})
}

async fn read_capped(body: &mut crate::ports::upstream::ByteStream) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.message)?;
        buf.extend_from_slice(&chunk);
        if buf.len() >= MAX_TEST_BODY {
            break;
        }
    }
    Ok(buf)
}

/// Sends the minimal request to `p` (through its proxy; directly again when the proxy fails and
/// the provider allows it) and reports the outcome within `timeout` overall.
pub async fn test_provider(
    upstream: &dyn UpstreamClient,
    tokens: &ProviderTokens,
    p: &Provider,
    model: Option<&str>,
    timeout: Duration,
) -> TestResult {
    let model = test_model(p, model);
    let started = Instant::now();
    let secret = match tokens.secret_for(p, true).await {
        Ok(s) => s,
        Err(e) => {
            return TestResult {
                ok: false,
                outcome: TestOutcome::AuthFailed,
                status: None,
                latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                message: Some(e.0),
                model,
                url: p.base_url.clone(),
            };
        }
    };
    let req = minimal_request(p, &model, &secret, timeout);
    let url = req.url.clone();
    let attempt = async {
        let mut resp = match upstream.post(req.clone()).await {
            Err(f) if f.kind == FailureKind::Proxy && p.proxy_fallback_to_direct => {
                let direct = UpstreamRequest {
                    proxy_url: None,
                    ..req
                };
                upstream.post(direct).await
            }
            other => other,
        }?;
        let body = read_capped(&mut resp.body).await;
        Ok::<_, crate::ports::upstream::UpstreamFailure>((resp.status, body))
    };
    let result = tokio::time::timeout(timeout, attempt).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let done = |outcome, status, message| TestResult {
        ok: outcome == TestOutcome::Success,
        outcome,
        status,
        latency_ms,
        message,
        model: model.clone(),
        url: url.clone(),
    };
    match result {
        Err(_) => done(
            TestOutcome::Timeout,
            None,
            Some(format!("no answer within {} ms", timeout.as_millis())),
        ),
        Ok(Err(f)) if f.kind == FailureKind::Timeout => {
            done(TestOutcome::Timeout, None, Some(f.message))
        }
        Ok(Err(f)) => done(TestOutcome::NetworkError, None, Some(f.message)),
        Ok(Ok((status, body))) => {
            let text = match body {
                Ok(b) => String::from_utf8_lossy(&b).to_string(),
                Err(m) => return done(TestOutcome::NetworkError, Some(status), Some(m)),
            };
            if (200..300).contains(&status) {
                return done(TestOutcome::Success, Some(status), None);
            }
            let outcome = if matches!(status, 401 | 403) {
                TestOutcome::AuthFailed
            } else {
                TestOutcome::HttpError
            };
            done(outcome, Some(status), Some(extract_error_message(&text)))
        }
    }
}
