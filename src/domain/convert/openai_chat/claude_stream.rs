//! Reading and writing Claude stream events, shared by the OpenAI stream converters.

use serde_json::{Value, json};

use super::shared::{Tokens, invalid};
use crate::domain::convert::{ConvertError, OutEvent};
use crate::domain::sse::SseEvent;

/// One Claude stream event, as the converters need it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClaudeEv {
    Start {
        id: String,
        model: String,
        usage: Value,
    },
    BlockStart {
        block: Value,
    },
    Delta {
        delta: Value,
    },
    BlockStop,
    MessageDelta {
        stop_reason: Option<String>,
        usage: Option<Value>,
    },
    Stop,
    Error {
        etype: String,
        message: String,
    },
    Ignore,
}

/// Parses one upstream Claude event. Unknown types are ignored; broken JSON or a known event
/// missing its required fields is an error.
pub(crate) fn read_claude(ev: &SseEvent) -> Result<ClaudeEv, ConvertError> {
    let bad = |m: &str| invalid("claude", m.to_string());
    let data = ev.data.trim();
    if data.is_empty() || data == "[DONE]" {
        return Ok(ClaudeEv::Ignore);
    }
    let v: Value =
        serde_json::from_str(data).map_err(|e| bad(&format!("event is not JSON: {e}")))?;
    let ty = v
        .get("type")
        .and_then(Value::as_str)
        .or(ev.event.as_deref())
        .unwrap_or("");
    Ok(match ty {
        "message_start" => {
            let m = v
                .get("message")
                .ok_or_else(|| bad("message_start without message"))?;
            ClaudeEv::Start {
                id: m
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("msg")
                    .to_string(),
                model: m
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                usage: m.get("usage").cloned().unwrap_or(Value::Null),
            }
        }
        "content_block_start" => {
            let b = v
                .get("content_block")
                .filter(|b| b.is_object())
                .ok_or_else(|| bad("content_block_start without content_block"))?;
            ClaudeEv::BlockStart { block: b.clone() }
        }
        "content_block_delta" => {
            let d = v
                .get("delta")
                .filter(|d| d.is_object())
                .ok_or_else(|| bad("content_block_delta without delta"))?;
            ClaudeEv::Delta { delta: d.clone() }
        }
        "content_block_stop" => ClaudeEv::BlockStop,
        "message_delta" => ClaudeEv::MessageDelta {
            stop_reason: v
                .pointer("/delta/stop_reason")
                .and_then(Value::as_str)
                .map(str::to_string),
            usage: v.get("usage").filter(|u| u.is_object()).cloned(),
        },
        "message_stop" => ClaudeEv::Stop,
        "error" => ClaudeEv::Error {
            etype: v
                .pointer("/error/type")
                .and_then(Value::as_str)
                .unwrap_or("api_error")
                .to_string(),
            message: v
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error")
                .to_string(),
        },
        _ => ClaudeEv::Ignore,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool,
}

/// Writes a Claude event stream: its own dense block indexes, one block open at a time,
/// `message_start` with placeholder usage and the final usage in `message_delta`.
#[derive(Debug, Default)]
pub(crate) struct ClaudeWriter {
    started: bool,
    next_index: u64,
    open: Option<Open>,
    /// Usage reported so far (last wins).
    pub usage: Option<Tokens>,
    /// Whether a tool_use block was written.
    pub saw_tool: bool,
    /// Whether the stream ended (message_stop or error written).
    pub ended: bool,
}

fn ev(name: &str, data: Value) -> OutEvent {
    OutEvent::named(name, &data)
}

impl ClaudeWriter {
    /// Whether `message_start` was written.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Writes `message_start` once.
    pub fn start(&mut self, out: &mut Vec<OutEvent>, id: &str, model: &str) {
        if self.started {
            return;
        }
        self.started = true;
        let id = if id.starts_with("msg_") {
            id.to_string()
        } else {
            format!("msg_{id}")
        };
        let usage = self.usage.unwrap_or_default();
        let mut u = usage.to_claude();
        u["output_tokens"] = json!(0);
        out.push(ev(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null, "usage": u}}),
        ));
    }

    fn open_block(&mut self, out: &mut Vec<OutEvent>, kind: Open, block: Value) {
        self.close(out);
        self.open = Some(kind);
        out.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": self.next_index, "content_block": block}),
        ));
    }

    fn delta(&self, out: &mut Vec<OutEvent>, delta: Value) {
        out.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.next_index, "delta": delta}),
        ));
    }

    /// Appends text, opening a text block if needed. Empty text is skipped.
    pub fn text(&mut self, out: &mut Vec<OutEvent>, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.open != Some(Open::Text) {
            self.open_block(out, Open::Text, json!({"type": "text", "text": ""}));
        }
        self.delta(out, json!({"type": "text_delta", "text": text}));
    }

    /// Appends thinking text, opening a thinking block if needed.
    pub fn thinking(&mut self, out: &mut Vec<OutEvent>, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.open != Some(Open::Thinking) {
            self.open_block(
                out,
                Open::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
            );
        }
        self.delta(out, json!({"type": "thinking_delta", "thinking": text}));
    }

    /// Whether a thinking block is open.
    pub fn thinking_open(&self) -> bool {
        self.open == Some(Open::Thinking)
    }

    /// Writes a signature on the open thinking block (opening an empty one if none is open)
    /// and closes it.
    pub fn signature(&mut self, out: &mut Vec<OutEvent>, sig: &str) {
        if self.open != Some(Open::Thinking) {
            self.open_block(
                out,
                Open::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
            );
        }
        self.delta(out, json!({"type": "signature_delta", "signature": sig}));
        self.close(out);
    }

    /// Opens a tool_use block.
    pub fn tool_start(&mut self, out: &mut Vec<OutEvent>, id: &str, name: &str) {
        self.saw_tool = true;
        self.open_block(
            out,
            Open::Tool,
            json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
        );
    }

    /// Appends a piece of tool arguments to the open tool block (ignored when none is open).
    pub fn tool_args(&mut self, out: &mut Vec<OutEvent>, piece: &str) {
        if piece.is_empty() || self.open != Some(Open::Tool) {
            return;
        }
        self.delta(
            out,
            json!({"type": "input_json_delta", "partial_json": piece}),
        );
    }

    /// Closes the open block, if any.
    pub fn close(&mut self, out: &mut Vec<OutEvent>) {
        if self.open.take().is_some() {
            out.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.next_index}),
            ));
            self.next_index += 1;
        }
    }

    /// Closes the open block and writes `message_delta` (stop reason, final usage) and
    /// `message_stop`.
    pub fn finish(&mut self, out: &mut Vec<OutEvent>, stop_reason: &str) {
        if self.ended {
            return;
        }
        self.start(out, "msg_cch", "");
        self.close(out);
        self.ended = true;
        out.push(ev(
            "message_delta",
            json!({"type": "message_delta",
                   "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                   "usage": self.usage.unwrap_or_default().to_claude()}),
        ));
        out.push(ev("message_stop", json!({"type": "message_stop"})));
    }

    /// Writes an `error` event and ends the stream (no block stop, no message_delta).
    pub fn error(&mut self, out: &mut Vec<OutEvent>, etype: &str, message: &str) {
        if self.ended {
            return;
        }
        self.ended = true;
        out.push(ev(
            "error",
            json!({"type": "error", "error": {"type": etype, "message": message}}),
        ));
    }
}

/// Claude `error.type` for an OpenAI error `type`/`code`.
pub(crate) fn claude_error_type(code: &str) -> &'static str {
    match code {
        "rate_limit_exceeded" | "rate_limit_error" | "insufficient_quota" => "rate_limit_error",
        "invalid_request_error" | "context_length_exceeded" | "invalid_prompt" => {
            "invalid_request_error"
        }
        "invalid_api_key" | "authentication_error" => "authentication_error",
        "permission_denied" => "permission_error",
        "model_not_found" => "not_found_error",
        "timeout" => "timeout_error",
        "overloaded" | "server_is_overloaded" => "overloaded_error",
        _ => "api_error",
    }
}

/// OpenAI error body for a Claude error (status and body), shared by both OpenAI formats.
pub(crate) fn openai_error_from_claude(status: u16, body: &Value) -> Value {
    let ctype = body.pointer("/error/type").and_then(Value::as_str);
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .or_else(|| body.get("message").and_then(Value::as_str))
        .unwrap_or("upstream error");
    let (ty, code): (&str, Value) = match ctype.unwrap_or_else(|| {
        crate::domain::client_error::GatewayErrorKind::claude_type_for_status(status)
    }) {
        "invalid_request_error" | "request_too_large" => ("invalid_request_error", Value::Null),
        "authentication_error" => ("invalid_request_error", json!("invalid_api_key")),
        "permission_error" => ("invalid_request_error", json!("permission_denied")),
        "not_found_error" => ("invalid_request_error", json!("model_not_found")),
        "rate_limit_error" => ("rate_limit_error", json!("rate_limit_exceeded")),
        "billing_error" => ("insufficient_quota", json!("insufficient_quota")),
        "timeout_error" => ("server_error", json!("timeout")),
        "overloaded_error" => ("server_error", json!("server_is_overloaded")),
        _ => ("server_error", json!("server_error")),
    };
    json!({"error": {"message": message, "type": ty, "param": null, "code": code}})
}
