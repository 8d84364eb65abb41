//! Format conversion at the edges of an attempt: what to send a provider that speaks another
//! format (path, query, body), and how to turn its complete answer back into the client's.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::domain::code_assist::{Method, count_request, wrap_generate_request};
use crate::domain::convert::{ConvertError, dispatch};
use crate::domain::format::ClientFormat;
use crate::domain::oauth_credential::OAuthCredential;
use crate::domain::provider::{Provider, ProviderType};
use crate::domain::usage::{Usage, usage_from_claude_response};

use super::ClientRequest;
use super::body::RequestBody;

/// The upstream side of one attempt.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// API path on the provider.
    pub path: String,
    /// Query string for the provider.
    pub query: Option<String>,
    /// Body to send.
    pub body: Bytes,
    /// The provider's own format.
    pub provider_format: ClientFormat,
    /// Whether the request was converted to another format.
    pub converted: bool,
}

/// Whether the request is a token count rather than an inference.
pub fn is_count_tokens(path: &str) -> bool {
    path.ends_with("/count_tokens") || path.ends_with(":countTokens")
}

/// A `gemini-cli` provider's path for one Code Assist method (`alt=sse` on streams).
fn code_assist_path(method: Method) -> (String, Option<String>) {
    let query = (method == Method::StreamGenerate).then(|| "alt=sse".to_string());
    (format!("/v1internal:{}", method.as_str()), query)
}

/// A public Gemini request as a `gemini-cli` provider takes it: a count's contents, or the
/// generate envelope with the credential's project (else the client's) and the client's ids.
fn code_assist_body(
    public: Value,
    method: Method,
    req: &ClientRequest,
    provider: &Provider,
    model: &str,
) -> Value {
    if method == Method::CountTokens {
        return count_request(&public, model);
    }
    let credential = OAuthCredential::parse(&provider.api_key).and_then(Result::ok);
    let project = credential.as_ref().and_then(OAuthCredential::project_id);
    wrap_generate_request(public, model, project, req.code_assist.as_ref())
}

fn gemini_path(model: &str, stream: bool) -> (String, Option<String>) {
    if stream {
        (
            format!("/v1beta/models/{model}:streamGenerateContent"),
            Some("alt=sse".into()),
        )
    } else {
        (format!("/v1beta/models/{model}:generateContent"), None)
    }
}

/// Builds what `provider` receives for this request, converting when its format differs.
pub fn prepare(
    req: &ClientRequest,
    body: &RequestBody,
    provider: &Provider,
    requested_model: &str,
    forwarded_model: &str,
    is_stream: bool,
) -> Result<Prepared, ConvertError> {
    let target = provider.provider_type.native_format();
    let code_assist = provider.provider_type == ProviderType::GeminiCli;
    if target == req.format && code_assist {
        let method = req
            .path
            .rsplit_once(':')
            .and_then(|(_, a)| Method::parse(a))
            .unwrap_or(if is_stream {
                Method::StreamGenerate
            } else {
                Method::Generate
            });
        let (path, query) = code_assist_path(method);
        let out = code_assist_body(body.value().clone(), method, req, provider, forwarded_model);
        return Ok(Prepared {
            path,
            query,
            body: Bytes::from(serde_json::to_vec(&out).unwrap_or_else(|_| req.body.to_vec())),
            provider_format: target,
            converted: false,
        });
    }
    if target == req.format {
        let (path, query) = match target {
            ClientFormat::Gemini => {
                let action = req
                    .path
                    .rsplit_once(':')
                    .map_or("generateContent", |(_, a)| a);
                let prefix = if req.path.starts_with("/v1/") {
                    "/v1"
                } else {
                    "/v1beta"
                };
                (
                    format!("{prefix}/models/{forwarded_model}:{action}"),
                    req.query.clone(),
                )
            }
            _ => (req.path.clone(), req.query.clone()),
        };
        let body = if target != ClientFormat::Gemini && requested_model != forwarded_model {
            let mut v = body.value().clone();
            if let Some(o) = v.as_object_mut() {
                o.insert("model".into(), Value::String(forwarded_model.to_string()));
            }
            Bytes::from(serde_json::to_vec(&v).unwrap_or_else(|_| req.body.to_vec()))
        } else {
            req.body.clone()
        };
        return Ok(Prepared {
            path,
            query,
            body,
            provider_format: target,
            converted: false,
        });
    }

    let mut claude = dispatch::request_to_claude(req.format, body.value())?;
    if let Some(o) = claude.as_object_mut() {
        o.insert("model".into(), Value::String(forwarded_model.to_string()));
        o.insert("stream".into(), Value::Bool(is_stream));
    }
    let count = is_count_tokens(&req.path);
    if target == ClientFormat::Claude {
        dispatch::strip_foreign_thinking(&mut claude);
    }
    let mut out = dispatch::request_from_claude(target, &claude)?;
    let (path, query) = match target {
        ClientFormat::Claude if count => ("/v1/messages/count_tokens".to_string(), None),
        ClientFormat::Claude => ("/v1/messages".to_string(), None),
        ClientFormat::OpenAi => ("/v1/chat/completions".to_string(), None),
        ClientFormat::Response => ("/v1/responses".to_string(), None),
        ClientFormat::Gemini if count => (
            format!("/v1beta/models/{forwarded_model}:countTokens"),
            None,
        ),
        ClientFormat::Gemini => gemini_path(forwarded_model, is_stream),
    };
    if let Some(o) = out.as_object_mut() {
        match target {
            ClientFormat::Gemini => {
                o.remove("model");
                o.remove("stream");
            }
            ClientFormat::OpenAi => {
                o.insert("model".into(), Value::String(forwarded_model.to_string()));
                o.insert("stream".into(), Value::Bool(is_stream));
                if is_stream {
                    // Usage is needed for accounting whatever the client asked for.
                    o.insert("stream_options".into(), json!({"include_usage": true}));
                } else {
                    o.remove("stream_options");
                }
            }
            ClientFormat::Claude | ClientFormat::Response => {
                o.insert("model".into(), Value::String(forwarded_model.to_string()));
                if count {
                    o.remove("stream");
                } else {
                    o.insert("stream".into(), Value::Bool(is_stream));
                }
            }
        }
    }
    let (path, query) = if code_assist {
        let method = match (count, is_stream) {
            (true, _) => Method::CountTokens,
            (false, true) => Method::StreamGenerate,
            (false, false) => Method::Generate,
        };
        out = code_assist_body(out, method, req, provider, forwarded_model);
        code_assist_path(method)
    } else {
        (path, query)
    };
    if count && target == ClientFormat::Gemini && !code_assist {
        // `:countTokens` counts a whole generate request (system instruction and tools
        // included) when it is wrapped as `generateContentRequest` with its model.
        if let Some(o) = out.as_object_mut() {
            o.insert(
                "model".into(),
                Value::String(format!("models/{forwarded_model}")),
            );
        }
        out = json!({ "generateContentRequest": out });
    }
    let bytes = serde_json::to_vec(&out).map_err(|e| ConvertError::Invalid {
        format: "json",
        message: e.to_string(),
    })?;
    Ok(Prepared {
        path,
        query,
        body: Bytes::from(bytes),
        provider_format: target,
        converted: true,
    })
}

/// The only field a passed-through Claude answer is read for.
#[derive(serde::Deserialize)]
struct UsageField {
    #[serde(default)]
    usage: Option<Value>,
}

/// Whether a provider of this format has a token-count endpoint (the others are estimated).
pub fn counts_tokens(provider_format: ClientFormat) -> bool {
    matches!(provider_format, ClientFormat::Claude | ClientFormat::Gemini)
}

/// A provider's token count (`{"input_tokens": N}` from Claude, `{"totalTokens": N}` from
/// Gemini) in the client's shape.
pub fn convert_count(
    client: ClientFormat,
    provider_format: ClientFormat,
    body: &Bytes,
) -> Result<Bytes, ConvertError> {
    let parsed: Value = serde_json::from_slice(body).map_err(|e| ConvertError::Invalid {
        format: provider_format.as_str(),
        message: format!("upstream count is not JSON: {e}"),
    })?;
    let field = match provider_format {
        ClientFormat::Gemini => "totalTokens",
        _ => "input_tokens",
    };
    let n = parsed
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| ConvertError::Invalid {
            format: provider_format.as_str(),
            message: format!("upstream count has no `{field}`"),
        })?;
    if client == provider_format {
        // The provider's own answer, details included.
        return Ok(body.clone());
    }
    Ok(Bytes::from(count_answer(client, n).to_string()))
}

/// A token count in the shape each client format expects.
pub fn count_answer(client: ClientFormat, n: u64) -> Value {
    match client {
        ClientFormat::Gemini => json!({ "totalTokens": n }),
        ClientFormat::Response => json!({"object": "response.input_tokens", "input_tokens": n}),
        ClientFormat::Claude | ClientFormat::OpenAi => json!({ "input_tokens": n }),
    }
}

/// Turns a complete upstream answer into the client's format and reads its usage.
pub fn convert_full(
    client: ClientFormat,
    provider_format: ClientFormat,
    body: &Bytes,
    ctx: &dispatch::ClientContext<'_>,
) -> Result<(Bytes, Usage), ConvertError> {
    if client == ClientFormat::Claude && provider_format == ClientFormat::Claude {
        // Pass-through: the bytes go out as they came; only `usage` is read, without building
        // (and then deep-copying) a JSON tree of the whole answer.
        let head: UsageField = serde_json::from_slice(body).map_err(|e| ConvertError::Invalid {
            format: provider_format.as_str(),
            message: format!("upstream answer is not JSON: {e}"),
        })?;
        let usage = head
            .usage
            .map(|u| usage_from_claude_response(&json!({ "usage": u })).unwrap_or_default())
            .unwrap_or_default();
        return Ok((body.clone(), usage));
    }
    let parsed: Value = serde_json::from_slice(body).map_err(|e| ConvertError::Invalid {
        format: provider_format.as_str(),
        message: format!("upstream answer is not JSON: {e}"),
    })?;
    let claude = dispatch::response_to_claude(provider_format, &parsed)?;
    let usage = usage_from_claude_response(&claude).unwrap_or_default();
    if client == provider_format {
        return Ok((body.clone(), usage));
    }
    let out = dispatch::response_from_claude(client, &claude, ctx)?;
    let bytes = serde_json::to_vec(&out).map_err(|e| ConvertError::Invalid {
        format: client.as_str(),
        message: e.to_string(),
    })?;
    Ok((Bytes::from(bytes), usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_pass_through_keeps_the_bytes_and_reads_the_usage() {
        let raw = Bytes::from_static(
            br#"{"id":"m","type":"message","content":[{"type":"text","text":"hi \u00e9"}],"usage":{"input_tokens":25,"output_tokens":15,"cache_read_input_tokens":7}}"#,
        );
        let ctx = dispatch::ClientContext {
            request: &Value::Null,
            model: "m",
            created_at: 0,
        };
        let (out, usage) =
            convert_full(ClientFormat::Claude, ClientFormat::Claude, &raw, &ctx).unwrap();
        assert_eq!(out, raw, "bytes pass through untouched");
        assert_eq!(out.as_ptr(), raw.as_ptr(), "and are not copied");
        assert_eq!(
            (
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens
            ),
            (25, 15, 7)
        );
        let no_usage = Bytes::from_static(br#"{"id":"m","content":[]}"#);
        let (_, usage) =
            convert_full(ClientFormat::Claude, ClientFormat::Claude, &no_usage, &ctx).unwrap();
        assert_eq!(usage, Usage::default());
        let broken = Bytes::from_static(b"{not json");
        assert!(convert_full(ClientFormat::Claude, ClientFormat::Claude, &broken, &ctx).is_err());
    }
}
