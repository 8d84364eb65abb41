//! Streams: Gemini `streamGenerateContent?alt=sse` chunks ⇄ Claude Messages events.

use serde_json::{Value, json};

use super::super::super::sse::SseEvent;
use super::super::{ConvertError, OutEvent, StreamConverter};
use super::response::{
    block_to_part, error_from_claude, error_message, first_candidate, function_call, message_id,
};
use super::{
    claude_error_type, claude_signature, claude_usage_json, gemini_usage_json, invalid,
    stop_reason_from_finish, unwrap_envelope,
};

/// The Claude block currently open in [`StreamToClaude`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
}

/// Gemini SSE chunks (upstream) → Claude Messages events (client).
///
/// `message_start` goes out with the first chunk; text and thought pieces become
/// `text_delta` / `thinking_delta` as they arrive; each (whole) `functionCall` becomes a
/// `tool_use` block with its arguments as one `input_json_delta`; the chunk with
/// `finishReason` closes the stream with `message_delta` (stop reason, final usage) and
/// `message_stop`. A stream that ends without `finishReason`, or an `{"error": …}` chunk,
/// ends with an `error` event.
#[derive(Debug, Clone)]
pub struct StreamToClaude {
    model: Option<String>,
    started: bool,
    done: bool,
    response_id: String,
    next_index: usize,
    open: Open,
    calls: usize,
    usage: Value,
}

impl Default for StreamToClaude {
    fn default() -> Self {
        Self::new()
    }
}

fn ev(name: &str, data: Value) -> OutEvent {
    OutEvent::named(name, &data)
}

impl StreamToClaude {
    /// A converter that reports the upstream `modelVersion` as the model.
    pub fn new() -> Self {
        Self {
            model: None,
            started: false,
            done: false,
            response_id: String::new(),
            next_index: 0,
            open: Open::None,
            calls: 0,
            usage: Value::Null,
        }
    }

    /// A converter that reports `model` (the name the client asked for) in `message_start`.
    pub fn with_model(model: &str) -> Self {
        Self {
            model: Some(model.to_string()),
            ..Self::new()
        }
    }

    fn close(&mut self, out: &mut Vec<OutEvent>) {
        if self.open != Open::None {
            let index = self.next_index.saturating_sub(1);
            out.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
            self.open = Open::None;
        }
    }

    fn start_block(&mut self, block: Value, open: Open, out: &mut Vec<OutEvent>) -> usize {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        out.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        self.open = open;
        index
    }

    fn delta(&self, delta: Value, out: &mut Vec<OutEvent>) {
        let index = self.next_index.saturating_sub(1);
        out.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
    }

    fn signature(&mut self, sig: &str, out: &mut Vec<OutEvent>) {
        if self.open != Open::Thinking {
            self.start_block(
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                Open::Thinking,
                out,
            );
        }
        self.delta(
            json!({"type": "signature_delta", "signature": claude_signature(sig)}),
            out,
        );
        self.close(out);
    }

    fn error_event(&mut self, kind: &str, message: &str) -> Vec<OutEvent> {
        self.done = true;
        vec![ev(
            "error",
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        )]
    }

    fn part(&mut self, p: &Value, out: &mut Vec<OutEvent>) -> Result<(), ConvertError> {
        let sig = p.get("thoughtSignature").and_then(Value::as_str);
        let text = p.get("text").and_then(Value::as_str).unwrap_or("");
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            if self.open != Open::Thinking {
                self.start_block(
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                    Open::Thinking,
                    out,
                );
            }
            if !text.is_empty() {
                self.delta(json!({"type": "thinking_delta", "thinking": text}), out);
            }
            if let Some(s) = sig {
                self.signature(s, out);
            }
            return Ok(());
        }
        if let Some(s) = sig {
            self.signature(s, out);
        }
        if let Some(fc) = p.get("functionCall") {
            let (id, name, args) = function_call(fc, &self.response_id, self.calls)?;
            self.calls += 1;
            self.start_block(
                json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                Open::Text, // any non-None value: closed right below
                out,
            );
            self.delta(
                json!({"type": "input_json_delta", "partial_json": args.to_string()}),
                out,
            );
            self.close(out);
        } else if !text.is_empty() {
            if self.open != Open::Text {
                self.start_block(json!({"type": "text", "text": ""}), Open::Text, out);
            }
            self.delta(json!({"type": "text_delta", "text": text}), out);
        }
        Ok(())
    }

    fn chunk(&mut self, g: &Value, out: &mut Vec<OutEvent>) -> Result<(), ConvertError> {
        if !self.started {
            self.started = true;
            self.response_id = g
                .get("responseId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let model = self
                .model
                .clone()
                .or_else(|| {
                    g.get("modelVersion")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            let mut usage = claude_usage_json(g.get("usageMetadata").unwrap_or(&Value::Null));
            usage["output_tokens"] = json!(0);
            out.push(ev(
                "message_start",
                json!({"type": "message_start", "message": {
                    "id": message_id(&self.response_id), "type": "message", "role": "assistant",
                    "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": usage,
                }}),
            ));
        }
        if let Some(u) = g.get("usageMetadata").filter(|u| u.is_object()) {
            self.usage = u.clone();
        }
        let cand = first_candidate(g);
        if let Some(parts) = cand
            .and_then(|c| c.get("content"))
            .and_then(|c| c.get("parts"))
        {
            let parts = parts
                .as_array()
                .ok_or_else(|| invalid("candidate parts must be an array"))?;
            for p in parts {
                self.part(p, out)?;
            }
        }
        let finish = match cand {
            Some(c) => c.get("finishReason").and_then(Value::as_str),
            None if g
                .get("promptFeedback")
                .and_then(|f| f.get("blockReason"))
                .is_some() =>
            {
                Some("SAFETY")
            }
            None => None,
        };
        if let Some(reason) = finish {
            self.close(out);
            match stop_reason_from_finish(reason, self.calls > 0, self.next_index > 0) {
                Some(stop) => {
                    out.push(ev(
                        "message_delta",
                        json!({"type": "message_delta",
                               "delta": {"stop_reason": stop, "stop_sequence": null},
                               "usage": claude_usage_json(&self.usage)}),
                    ));
                    out.push(ev("message_stop", json!({"type": "message_stop"})));
                    self.done = true;
                }
                None => {
                    let msg = format!("upstream finished with {reason} and no usable output");
                    out.extend(self.error_event("api_error", &msg));
                }
            }
        }
        Ok(())
    }
}

impl StreamConverter for StreamToClaude {
    fn push(&mut self, event: &SseEvent) -> Result<Vec<OutEvent>, ConvertError> {
        let data = event.data.trim();
        if self.done || data.is_empty() {
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| invalid(format!("stream chunk is not JSON: {e}")))?;
        let g = unwrap_envelope(&v, "response", "candidates");
        if !g.is_object() {
            return Err(invalid("stream chunk must be a JSON object"));
        }
        if let Some(err) = g.get("error") {
            let code = err.get("code").and_then(Value::as_u64).unwrap_or(500);
            let status = err.get("status").and_then(Value::as_str).unwrap_or("");
            let kind = claude_error_type(code, status);
            return Ok(self.error_event(kind, &error_message(err)));
        }
        let mut out = Vec::new();
        self.chunk(g, &mut out)?;
        Ok(out)
    }

    fn finish(&mut self) -> Vec<OutEvent> {
        if self.done {
            return Vec::new();
        }
        self.error_event("api_error", "upstream stream ended without a finishReason")
    }

    fn error(&mut self, message: &str) -> Vec<OutEvent> {
        if self.done {
            return Vec::new();
        }
        self.error_event("api_error", message)
    }
}

/// The Claude block currently open in [`StreamFromClaude`].
#[derive(Debug, Clone)]
enum Block {
    None,
    Text,
    Thinking {
        signature: String,
    },
    Tool {
        id: String,
        name: String,
        args: String,
    },
}

/// Claude Messages events (upstream) → Gemini SSE chunks (client).
///
/// Text and thinking deltas go out at once as chunks with one `text` (or `thought`) part;
/// a thinking block's signature follows as an empty thought part whose `thoughtSignature` is
/// `cch1.anthropic.<signature>`; a `tool_use` block is buffered until its
/// `content_block_stop` and sent as one `functionCall` part (Gemini has no partial
/// arguments). `message_stop` sends the last chunk with `finishReason` and the complete
/// `usageMetadata`; every earlier chunk carries the prompt count as the real API does.
#[derive(Debug, Clone)]
pub struct StreamFromClaude {
    response_id: String,
    model: String,
    usage: Value,
    block: Block,
    stop_reason: Option<String>,
    done: bool,
}

impl Default for StreamFromClaude {
    fn default() -> Self {
        Self::new()
    }
}

fn claude_invalid(message: impl Into<String>) -> ConvertError {
    ConvertError::Invalid {
        format: "claude",
        message: message.into(),
    }
}

impl StreamFromClaude {
    /// A converter that has seen nothing yet.
    pub fn new() -> Self {
        Self {
            response_id: String::new(),
            model: String::new(),
            usage: json!({}),
            block: Block::None,
            stop_reason: None,
            done: false,
        }
    }

    fn merge_usage(&mut self, u: &Value) {
        if let (Some(dst), Some(src)) = (self.usage.as_object_mut(), u.as_object()) {
            for (k, v) in src {
                if !v.is_null() {
                    dst.insert(k.clone(), v.clone());
                }
            }
        }
    }

    fn envelope(&self, candidate: Value, usage: Value) -> OutEvent {
        let mut c = json!({"candidates": [candidate], "usageMetadata": usage});
        if !self.model.is_empty() {
            c["modelVersion"] = json!(self.model);
        }
        if !self.response_id.is_empty() {
            c["responseId"] = json!(self.response_id);
        }
        OutEvent::data(&c)
    }

    fn part_chunk(&self, part: Value) -> OutEvent {
        let full = gemini_usage_json(&self.usage);
        let prompt = full.get("promptTokenCount").cloned().unwrap_or(json!(0));
        self.envelope(
            json!({"index": 0, "content": {"role": "model", "parts": [part]}}),
            json!({"promptTokenCount": prompt, "totalTokenCount": prompt}),
        )
    }

    fn error_chunk(&mut self, status: u16, body: &Value) -> Vec<OutEvent> {
        self.done = true;
        vec![OutEvent::data(&error_from_claude(status, body))]
    }

    fn on(&mut self, ty: &str, d: &Value) -> Result<Vec<OutEvent>, ConvertError> {
        let mut out = Vec::new();
        match ty {
            "message_start" => {
                let m = d.get("message").unwrap_or(&Value::Null);
                if let Some(id) = m.get("id").and_then(Value::as_str) {
                    self.response_id = id.to_string();
                }
                if let Some(model) = m.get("model").and_then(Value::as_str) {
                    self.model = model.to_string();
                }
                if let Some(u) = m.get("usage") {
                    self.merge_usage(u);
                }
            }
            "content_block_start" => {
                let b = d.get("content_block").unwrap_or(&Value::Null);
                self.block = match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = b
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(self.part_chunk(json!({"text": t})));
                        }
                        Block::Text
                    }
                    Some("thinking") => {
                        if let Some(t) = b
                            .get("thinking")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(self.part_chunk(json!({"text": t, "thought": true})));
                        }
                        let signature = b
                            .get("signature")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        Block::Thinking { signature }
                    }
                    Some("tool_use") => {
                        let id = b
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let name = b
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| claude_invalid("tool_use block without name"))?
                            .to_string();
                        let args = match b.get("input") {
                            Some(Value::Object(o)) if !o.is_empty() => {
                                Value::Object(o.clone()).to_string()
                            }
                            _ => String::new(),
                        };
                        Block::Tool { id, name, args }
                    }
                    Some("redacted_thinking") => {
                        if let Some(p) = block_to_part(b)? {
                            out.push(self.part_chunk(p));
                        }
                        Block::None
                    }
                    _ => Block::None,
                };
            }
            "content_block_delta" => {
                let delta = d.get("delta").unwrap_or(&Value::Null);
                let s = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or("");
                match (delta.get("type").and_then(Value::as_str), &mut self.block) {
                    (Some("text_delta"), _) if !s("text").is_empty() => {
                        out.push(self.part_chunk(json!({"text": s("text")})));
                    }
                    (Some("thinking_delta"), _) if !s("thinking").is_empty() => {
                        out.push(self.part_chunk(json!({"text": s("thinking"), "thought": true})));
                    }
                    (Some("signature_delta"), Block::Thinking { signature }) => {
                        signature.push_str(s("signature"));
                    }
                    (Some("input_json_delta"), Block::Tool { args, .. }) => {
                        args.push_str(s("partial_json"));
                    }
                    _ => {}
                }
            }
            "content_block_stop" => match std::mem::replace(&mut self.block, Block::None) {
                Block::Thinking { signature } if !signature.is_empty() => {
                    let p = block_to_part(
                        &json!({"type": "thinking", "thinking": "", "signature": signature}),
                    )?;
                    out.extend(p.map(|p| self.part_chunk(p)));
                }
                Block::Tool { id, name, args } => {
                    let input: Value = if args.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&args).map_err(|e| {
                            claude_invalid(format!("tool_use `{id}` arguments are not JSON: {e}"))
                        })?
                    };
                    let p = block_to_part(
                        &json!({"type": "tool_use", "id": id, "name": name, "input": input}),
                    )?;
                    out.extend(p.map(|p| self.part_chunk(p)));
                }
                _ => {}
            },
            "message_delta" => {
                if let Some(r) = d
                    .get("delta")
                    .and_then(|x| x.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    self.stop_reason = Some(r.to_string());
                }
                if let Some(u) = d.get("usage") {
                    self.merge_usage(u);
                }
            }
            "message_stop" => {
                let finish = super::finish_from_stop_reason(self.stop_reason.as_deref());
                out.push(self.envelope(
                    json!({"index": 0, "finishReason": finish}),
                    gemini_usage_json(&self.usage),
                ));
                self.done = true;
            }
            "error" => {
                let kind = d
                    .get("error")
                    .and_then(|e| e.get("type"))
                    .and_then(Value::as_str);
                let status = match kind {
                    Some("overloaded_error") => 503,
                    Some("rate_limit_error") => 429,
                    Some("invalid_request_error") => 400,
                    Some("timeout_error") => 504,
                    _ => 500,
                };
                return Ok(self.error_chunk(status, d));
            }
            _ => {}
        }
        Ok(out)
    }
}

impl StreamConverter for StreamFromClaude {
    fn push(&mut self, event: &SseEvent) -> Result<Vec<OutEvent>, ConvertError> {
        let data = event.data.trim();
        if self.done || data.is_empty() {
            return Ok(Vec::new());
        }
        let d: Value = serde_json::from_str(data)
            .map_err(|e| claude_invalid(format!("stream event is not JSON: {e}")))?;
        let ty = d
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("")
            .to_string();
        self.on(&ty, &d)
    }

    fn finish(&mut self) -> Vec<OutEvent> {
        if self.done {
            return Vec::new();
        }
        self.error("upstream stream ended before message_stop")
    }

    fn error(&mut self, message: &str) -> Vec<OutEvent> {
        if self.done {
            return Vec::new();
        }
        self.error_chunk(
            500,
            &json!({"error": {"type": "api_error", "message": message}}),
        )
    }
}
