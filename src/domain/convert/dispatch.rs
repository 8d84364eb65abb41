//! Picks the converter for a format: the functions the proxy calls, so it never names a
//! format module itself. Claude is the hub, so Claude → Claude is the identity.

use serde_json::Value;

use super::super::format::ClientFormat;
use super::{ConvertError, StreamConverter, gemini, openai_chat, responses};

/// What the answer converters need to know about the client's original request.
#[derive(Debug, Clone, Copy)]
pub struct ClientContext<'a> {
    /// The client's request body, in its own format.
    pub request: &'a Value,
    /// The model name the client asked for (answers carry it back).
    pub model: &'a str,
    /// Unix seconds, for formats that stamp answers with a creation time.
    pub created_at: i64,
}

impl ClientContext<'_> {
    fn include_usage(&self) -> bool {
        self.request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// A request of format `from` as a Claude request.
pub fn request_to_claude(from: ClientFormat, body: &Value) -> Result<Value, ConvertError> {
    match from {
        ClientFormat::Claude => Ok(body.clone()),
        ClientFormat::OpenAi => openai_chat::request_to_claude(body),
        ClientFormat::Response => responses::request_to_claude(body),
        ClientFormat::Gemini => gemini::request_to_claude(body),
    }
}

/// A Claude request as format `to`.
pub fn request_from_claude(to: ClientFormat, body: &Value) -> Result<Value, ConvertError> {
    match to {
        ClientFormat::Claude => Ok(body.clone()),
        ClientFormat::OpenAi => openai_chat::request_from_claude(body),
        ClientFormat::Response => responses::request_from_claude(body),
        ClientFormat::Gemini => gemini::request_from_claude(body),
    }
}

/// A complete answer of format `from` as a Claude message.
pub fn response_to_claude(from: ClientFormat, body: &Value) -> Result<Value, ConvertError> {
    match from {
        ClientFormat::Claude => Ok(body.clone()),
        ClientFormat::OpenAi => openai_chat::response_to_claude(body),
        ClientFormat::Response => responses::response_to_claude(body),
        ClientFormat::Gemini => gemini::response_to_claude(body),
    }
}

/// A Claude message as a complete answer of format `to`, carrying the client's model name.
pub fn response_from_claude(
    to: ClientFormat,
    body: &Value,
    client: &ClientContext<'_>,
) -> Result<Value, ConvertError> {
    let mut out = match to {
        ClientFormat::Claude => body.clone(),
        ClientFormat::OpenAi => openai_chat::response_from_claude_at(body, client.created_at)?,
        ClientFormat::Response => {
            let ctx = responses::ResponsesContext::from_request(client.request);
            responses::response_from_claude_with(body, &ctx, client.created_at)?
        }
        ClientFormat::Gemini => gemini::response_from_claude(body)?,
    };
    if let Some(o) = out.as_object_mut() {
        match to {
            ClientFormat::Gemini => {
                o.insert(
                    "modelVersion".into(),
                    Value::String(client.model.to_string()),
                );
            }
            _ => {
                o.insert("model".into(), Value::String(client.model.to_string()));
            }
        }
    }
    Ok(out)
}

/// A stream translator from format `from` to Claude events (`None` for Claude itself).
pub fn stream_to_claude(from: ClientFormat) -> Option<Box<dyn StreamConverter>> {
    match from {
        ClientFormat::Claude => None,
        ClientFormat::OpenAi => Some(Box::new(openai_chat::StreamToClaude::new())),
        ClientFormat::Response => Some(Box::new(responses::StreamToClaude::new())),
        ClientFormat::Gemini => Some(Box::new(gemini::StreamToClaude::new())),
    }
}

/// A stream translator from Claude events to format `to` (`None` for Claude itself).
pub fn stream_from_claude(
    to: ClientFormat,
    client: &ClientContext<'_>,
) -> Option<Box<dyn StreamConverter>> {
    match to {
        ClientFormat::Claude => None,
        ClientFormat::OpenAi => Some(Box::new(
            openai_chat::StreamFromClaude::new(client.include_usage())
                .with_created(client.created_at),
        )),
        ClientFormat::Response => {
            let ctx = responses::ResponsesContext::from_request(client.request);
            Some(Box::new(responses::StreamFromClaude::with_context(
                ctx,
                client.created_at,
            )))
        }
        ClientFormat::Gemini => Some(Box::new(gemini::StreamFromClaude::new())),
    }
}

/// Drops thinking blocks whose signature another format issued (`cch1.…` envelopes): a
/// Claude upstream would reject them. Claude's own signatures were restored on the way in.
pub fn strip_foreign_thinking(claude_request: &mut Value) {
    let Some(messages) = claude_request
        .get_mut("messages")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for m in messages {
        if let Some(blocks) = m.get_mut("content").and_then(Value::as_array_mut) {
            blocks.retain(|b| {
                let kind = b.get("type").and_then(Value::as_str);
                let sig = b.get("signature").and_then(Value::as_str).unwrap_or("");
                !(matches!(kind, Some("thinking") | Some("redacted_thinking"))
                    && sig.starts_with("cch1."))
            });
        }
    }
}
