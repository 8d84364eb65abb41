//! Turning a successful attempt (or a non-retryable client error) into the client's answer:
//! session binding, breaker success, answer conversion, stream pipeline, log row.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::app::policy::ProviderOutcome;
use crate::domain::chain::{ChainEntry, ChainOutcome, ChainReason, ProviderChain};
use crate::domain::client_error::{GatewayErrorKind, error_body};
use crate::domain::convert::dispatch;
use crate::domain::failure::ErrorClass;
use crate::domain::provider::Provider;
use crate::domain::usage::Usage;

use super::attempt::AttemptOk;
use super::body::RequestBody;
use super::record::{Ending, Recorder, RequestFacts, Served};
use super::stream::{Pipeline, StreamFinish, TappedStream};
use super::{ProxyBody, ProxyResponse, ProxyService, convert_io, forward};

impl ProxyService {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish_ok(
        &self,
        client_body: &RequestBody,
        prepared: &convert_io::Prepared,
        ok: AttemptOk,
        mut entry: ChainEntry,
        mut chain: ProviderChain,
        facts: RequestFacts,
        served: Served,
        recorder: Arc<Recorder>,
        provider: &Provider,
        reason: ChainReason,
        session_id: &str,
    ) -> ProxyResponse {
        let ttfb_ms = Some(i64::try_from(facts.started.elapsed().as_millis()).unwrap_or(i64::MAX));
        let requested_model = facts.requested_model.clone().unwrap_or_default();
        let null = Value::Null;
        let client_ctx = dispatch::ClientContext {
            request: if prepared.converted {
                client_body.value()
            } else {
                &null
            },
            model: &requested_model,
            created_at: facts.created_at.timestamp(),
        };
        match ok {
            AttemptOk::Full {
                status,
                headers,
                body,
            } => {
                entry.status = Some(status);
                chain.push(entry);
                // Runs with the spend record, in one detached future (`record_with`).
                let left = self.left_after_answer(
                    &facts,
                    session_id,
                    provider.id,
                    reason,
                    served.report_success,
                );
                let counted = convert_io::is_count_tokens(&facts.endpoint);
                let converted_answer = if counted {
                    convert_io::convert_count(facts.format, prepared.provider_format, &body)
                        .map(|b| (b, Usage::default()))
                } else {
                    convert_io::convert_full(
                        facts.format,
                        prepared.provider_format,
                        &body,
                        &client_ctx,
                    )
                };
                let (body, usage) = match converted_answer {
                    Ok(v) => v,
                    Err(e) if !prepared.converted => {
                        tracing::debug!(error = %e, "no usage in the upstream answer");
                        (body, Usage::default())
                    }
                    Err(e) => {
                        if let Ok(handle) = tokio::runtime::Handle::try_current() {
                            super::detached::run_or_spawn(&handle, left);
                        }
                        let msg = format!("cannot convert the upstream answer: {e}");
                        return super::failed(
                            &facts,
                            &recorder,
                            &chain,
                            GatewayErrorKind::UpstreamFailed,
                            &msg,
                        );
                    }
                };
                let mut headers = forward::client_response_headers(&headers);
                if prepared.converted || counted {
                    headers.retain(|(k, _)| k != "content-type" && k != "content-encoding");
                    headers.push(("content-type".into(), "application/json".into()));
                }
                if counted {
                    headers.push(("x-cch-token-count".into(), "upstream".into()));
                }
                recorder.record_with(
                    &facts,
                    Some(&served),
                    Ending {
                        status,
                        usage,
                        ttfb_ms,
                        chain: &chain,
                        error: None,
                    },
                    Some(left),
                );
                ProxyResponse {
                    status,
                    headers,
                    body: ProxyBody::Full(body),
                }
            }
            AttemptOk::Stream {
                status,
                headers,
                first,
                rest,
            } => {
                entry.status = Some(status);
                entry.converted = prepared.converted;
                chain.push(entry);
                // The stream's outcome goes to the breaker when it ends (see `stream`).
                self.after_answer(&facts, session_id, provider.id, reason, false);
                let facts_format = facts.format;
                let finish = StreamFinish {
                    facts,
                    served,
                    chain,
                    status,
                    ttfb_ms,
                    recorder,
                    snapshot: self.snapshot.get(),
                    breakers: self.breakers.clone(),
                    cut: self.shutdown_cut.clone(),
                };
                let idle = Duration::from_millis(
                    u64::try_from(provider.timeouts.idle_timeout_ms).unwrap_or(60_000),
                );
                let pipeline = Pipeline {
                    to_claude: dispatch::stream_to_claude(prepared.provider_format),
                    from_claude: if prepared.converted {
                        dispatch::stream_from_claude(facts_format, &client_ctx)
                    } else {
                        None
                    },
                    passthrough: !prepared.converted,
                };
                let stream = TappedStream::new(first, rest, idle, finish, pipeline);
                let mut headers = forward::client_response_headers(&headers);
                if prepared.converted {
                    headers.retain(|(k, _)| k != "content-type" && k != "content-encoding");
                    headers.push(("content-type".into(), "text/event-stream".into()));
                    headers.push(("cache-control".into(), "no-cache".into()));
                }
                ProxyResponse {
                    status,
                    headers,
                    body: ProxyBody::Stream(Box::pin(stream)),
                }
            }
            AttemptOk::ClientError {
                status,
                body,
                message,
                override_,
                ..
            } => {
                entry.outcome = ChainOutcome::Failure;
                entry.status = Some(status);
                entry.error_class = Some(ErrorClass::NonRetryableClientError);
                entry.error = Some(message.clone());
                chain.push(entry);
                // Never counted, but releases a half-open trial this request held.
                self.breakers
                    .record(
                        provider,
                        ProviderOutcome::failure(
                            ErrorClass::NonRetryableClientError,
                            message.clone(),
                        ),
                        self.clock.now(),
                    )
                    .await;
                let (out_status, out_body) = match override_ {
                    Some((st, msg)) => {
                        let st = st.unwrap_or(status);
                        let msg = msg.unwrap_or_else(|| message.clone());
                        let t = GatewayErrorKind::claude_type_for_status(st);
                        (
                            st,
                            Bytes::from(error_body(facts.format, st, t, &msg).to_string()),
                        )
                    }
                    // Relayed verbatim only when it is the upstream's own JSON error in the
                    // client's format; an HTML page or plain text becomes our error shape.
                    None if prepared.converted || !is_json_object(&body) => {
                        let t = GatewayErrorKind::claude_type_for_status(status);
                        (
                            status,
                            Bytes::from(error_body(facts.format, status, t, &message).to_string()),
                        )
                    }
                    None => (status, body),
                };
                recorder.record(
                    &facts,
                    Some(&served),
                    Ending {
                        status: out_status,
                        usage: Usage::default(),
                        ttfb_ms,
                        chain: &chain,
                        error: Some(message),
                    },
                );
                ProxyResponse {
                    status: out_status,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: ProxyBody::Full(out_body),
                }
            }
        }
    }
}

/// Whether an upstream error body is a JSON object (an API error), not a page or plain text.
fn is_json_object(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
        && body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}
